package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sync"
	"testing"

	"github.com/s3ftp/s3ftp/s3client"
	"github.com/s3ftp/s3ftp/s3client/s3fake"
)

// checkIdle verifies the accounting of a cache no reader uses any more: nothing pinned or filling, the budget
// equal to the buffers held, the LRU holding exactly the cached blocks, and the disk index matching the files.
func checkIdle(t *testing.T, c *Cache) {
	t.Helper()
	if c.disk != nil {
		c.disk.wg.Wait()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var held int64
	for k, b := range c.blocks {
		if b.pins != 0 || b.state != ready || !b.cached || b.elem == nil || b.n != len(b.buf) {
			t.Errorf("block %v: pins %d state %d cached %v in lru %v filled %d/%d", k, b.pins, b.state, b.cached,
				b.elem != nil, b.n, len(b.buf))
		}
		held += int64(cap(b.buf))
	}
	for _, buf := range c.free {
		held += int64(cap(buf))
	}
	if held != c.used {
		t.Errorf("budget counts %d bytes, buffers hold %d", c.used, held)
	}
	if c.lru.Len() != len(c.blocks) {
		t.Errorf("lru has %d blocks, index %d", c.lru.Len(), len(c.blocks))
	}
	n := 0
	for _, m := range c.byKey {
		n += len(m)
	}
	if n != len(c.blocks) {
		t.Errorf("byKey has %d blocks, index %d", n, len(c.blocks))
	}
	if c.disk != nil {
		var size int64
		for _, e := range c.diskState.entries {
			if !e.ready {
				t.Errorf("disk entry %v not written after the writers ended", e.k)
			}
			size += e.size
		}
		if size != c.diskState.used || dirSize(c.disk.dir) != size {
			t.Errorf("disk index %d bytes, counted %d, directory %d", size, c.diskState.used, dirSize(c.disk.dir))
		}
	}
}

// TestChaos reads many objects from many goroutines while others invalidate keys and close readers under
// them. Every byte read must be right, the only error is the closed reader's, and the accounting must balance
// at the end.
func TestChaos(t *testing.T) {
	for _, withDisk := range []bool{false, true} {
		t.Run(fmt.Sprintf("disk=%v", withDisk), func(t *testing.T) {
			const bs = 4 << 10
			f := s3fake.New()
			type obj struct {
				data []byte
				info s3client.ObjectInfo
			}
			var objs []obj
			for i := range 6 {
				d, info := putObject(t, f, fmt.Sprintf("o%d", i), 12*bs+i*999, uint64(200+i))
				objs = append(objs, obj{d, info})
			}
			cfg := Config{MaxBytes: 8 * bs, BlockSize: bs}
			if withDisk {
				cfg.DiskDir, cfg.DiskMaxBytes = t.TempDir(), 10*bs
			}
			c := newCache(t, cfg)

			stop := make(chan struct{})
			var bg sync.WaitGroup
			bg.Go(func() { // invalidates keys all the time
				rng := rand.New(rand.NewPCG(1, 2))
				for {
					select {
					case <-stop:
						return
					default:
						c.Invalidate(objs[rng.IntN(len(objs))].info.Key)
						waitABit()
					}
				}
			})
			var wg sync.WaitGroup
			errs := make(chan error, 100)
			for g := range 8 {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(g), 3))
					for range 8 {
						o := objs[rng.IntN(len(objs))]
						r := c.NewReader(f, o.info, ReaderConfig{InitialWindow: bs, MaxWindow: 2 * bs})
						closeAt := rng.IntN(30)
						var closer sync.WaitGroup
						for op := range 30 {
							if op == closeAt {
								closer.Go(func() { r.Close() })
							}
							var off int64
							if op > 0 && rng.IntN(3) > 0 {
								off = min(int64(op*3000), int64(len(o.data)-1))
							} else {
								off = rng.Int64N(int64(len(o.data)))
							}
							p := make([]byte, 1+rng.IntN(3*bs))
							n, err := r.ReadAt(context.Background(), p, off)
							if err != nil && err != io.EOF && !errors.Is(err, os.ErrClosed) {
								errs <- fmt.Errorf("%s@%d: %w", o.info.Key, off, err)
							}
							if !bytes.Equal(p[:n], o.data[off:off+int64(n)]) {
								errs <- fmt.Errorf("%s@%d: content differs", o.info.Key, off)
							}
						}
						closer.Wait()
						r.Close()
					}
				})
			}
			wg.Wait()
			close(stop)
			bg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if s := c.Stats(); s.PeakBytes > cfg.MaxBytes {
				t.Errorf("peak %d above budget %d", s.PeakBytes, cfg.MaxBytes)
			}
			checkIdle(t, c)
		})
	}
}

// FuzzReadAt checks ReadAt against the object for arbitrary sequences of reads, with a tiny block size and
// budget so that every path (stream, ranged fetch, eviction, end of object) is reached.
func FuzzReadAt(f *testing.F) {
	f.Add(uint16(1000), []byte{0, 10, 5, 200, 3, 1, 99, 99})
	f.Add(uint16(64), []byte{1, 1, 1, 1, 1, 1, 1, 1, 1, 1})
	f.Add(uint16(0), []byte{0, 0})
	f.Add(uint16(4097), []byte{255, 255, 0, 17, 128, 64, 33, 2})
	f.Fuzz(func(t *testing.T, size uint16, ops []byte) {
		const bs = 64
		fake := s3fake.New()
		data, info := putObject(t, fake, "k", int(size), uint64(size))
		c := newCache(t, Config{MaxBytes: 3 * bs, BlockSize: bs})
		r := c.NewReader(fake, info, ReaderConfig{InitialWindow: 16, MaxWindow: 2 * bs})
		defer r.Close()
		pos := int64(0)
		for i := 0; i+1 < len(ops); i += 2 {
			if ops[i]&1 == 1 { // jump
				pos = int64(ops[i]) * int64(size) / 256
			}
			n := int(ops[i+1])
			p := make([]byte, n)
			got, err := r.ReadAt(context.Background(), p, pos)
			want := max(0, min(int64(n), int64(size)-pos))
			if int64(got) != want {
				t.Fatalf("ReadAt(%d bytes at %d) of %d = %d, want %d (%v)", n, pos, size, got, want, err)
			}
			if err != nil && !(err == io.EOF && int64(n) > want) {
				t.Fatalf("ReadAt(%d bytes at %d) of %d: %v", n, pos, size, err)
			}
			if err == nil && int64(n) > want {
				t.Fatalf("ReadAt(%d bytes at %d) of %d: short without io.EOF", n, pos, size)
			}
			if !bytes.Equal(p[:got], data[pos:pos+int64(got)]) {
				t.Fatalf("ReadAt(%d bytes at %d): content differs", n, pos)
			}
			pos += int64(got)
		}
		r.Close()
		checkIdle(t, c)
	})
}

// TestMinimumBudget runs sequential and random readers of three objects on a cache of two blocks (the least
// New accepts) with a three-block disk tier: every reader waits for memory at times, none may deadlock, and
// the accounting must balance at the end.
func TestMinimumBudget(t *testing.T) {
	const bs = 1 << 10
	f := s3fake.New()
	c := newCache(t, Config{MaxBytes: 2 * bs, BlockSize: bs, DiskDir: t.TempDir(), DiskMaxBytes: 3 * bs})
	var datas [][]byte
	var infos []s3client.ObjectInfo
	for i := range 3 {
		d, info := putObject(t, f, fmt.Sprint("o", i), 20*bs+i*77, uint64(i))
		datas, infos = append(datas, d), append(infos, info)
	}
	var wg sync.WaitGroup
	for g := range 12 {
		d, info := datas[g%3], infos[g%3]
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for range 8 {
				r := c.NewReader(f, info, ReaderConfig{})
				for op, off := 0, int64(0); op < 30 && off < int64(len(d)); op++ {
					if g%2 == 1 { // random
						off = rng.Int64N(int64(len(d)))
					}
					p := make([]byte, rng.IntN(3*bs)+1)
					n, err := r.ReadAt(context.Background(), p, off)
					if err != nil && err != io.EOF {
						t.Error(err)
					}
					if !bytes.Equal(p[:n], d[off:off+int64(n)]) {
						t.Errorf("%s@%d: content differs", info.Key, off)
					}
					off += int64(n)
				}
				r.Close()
			}
		})
	}
	wg.Wait()
	if s := c.Stats(); s.PeakBytes > 2*bs {
		t.Errorf("peak %d above budget", s.PeakBytes)
	}
	checkIdle(t, c)
}
