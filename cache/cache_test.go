package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/s3ftp/s3ftp/s3client"
	"github.com/s3ftp/s3ftp/s3client/s3fake"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// putObject stores n pseudo-random bytes under key and returns them and the object's info.
func putObject(t testing.TB, f *s3fake.Fake, key string, n int, seed uint64) ([]byte, s3client.ObjectInfo) {
	t.Helper()
	data := randBytes(seed, n)
	f.Put(key, data)
	info, ok := f.Info(key)
	if !ok {
		t.Fatalf("fake lost %q", key)
	}
	return data, info
}

func newCache(t testing.TB, cfg Config) *Cache {
	t.Helper()
	if cfg.Log == nil {
		cfg.Log = quiet
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
	return c
}

func newReader(t testing.TB, c *Cache, g Getter, info s3client.ObjectInfo, rc ReaderConfig) *Reader {
	t.Helper()
	r := c.NewReader(g, info, rc)
	t.Cleanup(func() { r.Close() })
	return r
}

// readSeq reads the whole object with chunk-sized ReadAt calls, in order, checking the EOF contract.
func readSeq(t testing.TB, r *Reader, chunk int) []byte {
	t.Helper()
	var out []byte
	buf := make([]byte, chunk)
	for off := int64(0); ; {
		n, err := r.ReadAt(context.Background(), buf, off)
		out = append(out, buf[:n]...)
		off += int64(n)
		if err == io.EOF {
			if off != r.obj.Size {
				t.Fatalf("EOF at %d, size %d", off, r.obj.Size)
			}
			return out
		}
		if err != nil {
			t.Fatalf("ReadAt(%d): %v", off, err)
		}
		if n != chunk {
			t.Fatalf("short read without EOF at %d: %d of %d", off, n, chunk)
		}
	}
}

func TestNewValidates(t *testing.T) {
	for _, cfg := range []Config{
		{MaxBytes: 1 << 20},                        // one default block
		{MaxBytes: 100, BlockSize: 64},             // less than two blocks
		{MaxBytes: 1 << 30, BlockSize: -1},         // negative block size
		{MaxBytes: 1 << 30, DiskDir: t.TempDir()},  // disk tier without a bound
		{MaxBytes: 1 << 30, DiskMaxBytes: 1 << 20}, // bound without a disk tier
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}

func TestReadSizes(t *testing.T) {
	const bs = 1024
	f := s3fake.New()
	c := newCache(t, Config{MaxBytes: 64 * bs, BlockSize: bs})
	for _, size := range []int{0, 1, bs - 1, bs, bs + 1, 5*bs + 17} {
		for _, chunk := range []int{1000, bs, 4096} {
			key := fmt.Sprintf("obj-%d-%d", size, chunk)
			data, info := putObject(t, f, key, size, uint64(size))
			r := newReader(t, c, f, info, ReaderConfig{})
			if got := readSeq(t, r, chunk); !bytes.Equal(got, data) {
				t.Errorf("size %d chunk %d: content differs", size, chunk)
			}
			// Reads at and past the end.
			if n, err := r.ReadAt(context.Background(), make([]byte, 10), int64(size)); n != 0 || err != io.EOF {
				t.Errorf("size %d: read at end = %d, %v", size, n, err)
			}
			if size > 3 {
				p := make([]byte, 10)
				n, err := r.ReadAt(context.Background(), p, int64(size-3))
				if n != 3 || err != io.EOF || !bytes.Equal(p[:3], data[size-3:]) {
					t.Errorf("size %d: read across the end = %d, %v", size, n, err)
				}
			}
			if n, err := r.ReadAt(context.Background(), nil, int64(size)); n != 0 || err != nil {
				t.Errorf("size %d: empty read = %d, %v", size, n, err)
			}
			r.Close()
		}
	}
	if f.Calls("GetObject") == 0 {
		t.Fatal("no GET issued")
	}
}

func TestSequentialReadIssuesOneGET(t *testing.T) {
	const bs = 64 << 10
	f := s3fake.New()
	data, info := putObject(t, f, "big", 8<<20+123, 1)
	c := newCache(t, Config{MaxBytes: 4 << 20, BlockSize: bs})
	r := newReader(t, c, f, info, ReaderConfig{InitialWindow: 128 << 10, MaxWindow: 1 << 20})
	if got := readSeq(t, r, 128<<10); !bytes.Equal(got, data) {
		t.Fatal("content differs")
	}
	if n := f.Calls("GetObject"); n != 1 {
		t.Errorf("sequential read of %d bytes issued %d GETs, want 1", len(data), n)
	}
	if got := f.BytesDownloaded(); got != int64(len(data)) {
		t.Errorf("downloaded %d bytes, want %d", got, len(data))
	}
	s := c.Stats()
	if s.PeakBytes > 4<<20 {
		t.Errorf("peak %d above budget", s.PeakBytes)
	}
	if s.Prefetched != int64(r.nblocks) || s.Misses != 0 {
		t.Errorf("stats %+v: want every block prefetched, none fetched on demand", s)
	}
}

func TestWindowGrowsToMax(t *testing.T) {
	const bs = 64 << 10
	f := s3fake.New()
	_, info := putObject(t, f, "big", 4<<20, 1)
	c := newCache(t, Config{MaxBytes: 8 << 20, BlockSize: bs})
	r := newReader(t, c, f, info, ReaderConfig{InitialWindow: 32 << 10, MaxWindow: 512 << 10})
	var windows []int64
	buf := make([]byte, bs)
	for off := int64(0); off < 12*bs; off += bs {
		if _, err := r.ReadAt(context.Background(), buf, off); err != nil {
			t.Fatal(err)
		}
		r.mu.Lock()
		windows = append(windows, r.window)
		r.mu.Unlock()
	}
	got := fmt.Sprint(windows)
	want := "[32768 65536 131072 262144 524288 524288 524288 524288 524288 524288 524288 524288]"
	if got != want {
		t.Errorf("windows %s, want %s", got, want)
	}
}

func TestSecondReadServedFromCache(t *testing.T) {
	const bs = 64 << 10
	f := s3fake.New()
	data, info := putObject(t, f, "obj", 2<<20+5, 2)
	c := newCache(t, Config{MaxBytes: 4 << 20, BlockSize: bs})
	r1 := newReader(t, c, f, info, ReaderConfig{})
	readSeq(t, r1, 100_000)
	r1.Close()
	f.ResetCounters()
	before := c.Stats()

	r2 := newReader(t, c, f, info, ReaderConfig{})
	if got := readSeq(t, r2, 128<<10); !bytes.Equal(got, data) {
		t.Fatal("content differs")
	}
	r2.Close() // the stream has ended: no GET can come later
	if n := f.Calls("GetObject"); n != 0 {
		t.Errorf("second read issued %d GETs, want 0", n)
	}
	if s := c.Stats(); s.Hits <= before.Hits || s.Misses != before.Misses {
		t.Errorf("stats before %+v after %+v: want only hits", before, s)
	}
}

func TestRandomReadsFetchOnlyNeededBlocks(t *testing.T) {
	const bs = 64 << 10
	f := s3fake.New()
	data, info := putObject(t, f, "obj", 64*bs, 3)
	c := newCache(t, Config{MaxBytes: 32 << 20, BlockSize: bs})
	r := newReader(t, c, f, info, ReaderConfig{})
	// Offsets far apart (beyond the sequential tolerance of 4 blocks); the second read spans two blocks.
	reads := []struct{ off, n int64 }{{5*bs + 100, 1000}, {21*bs - 10, 20}, {40 * bs, bs}, {12*bs + 7, 1}, {60*bs + 5, 4096}}
	blocks := 0
	for _, rd := range reads {
		p := make([]byte, rd.n)
		if n, err := r.ReadAt(context.Background(), p, rd.off); err != nil || int64(n) != rd.n {
			t.Fatalf("ReadAt(%d) = %d, %v", rd.off, n, err)
		}
		if !bytes.Equal(p, data[rd.off:rd.off+rd.n]) {
			t.Fatalf("ReadAt(%d): content differs", rd.off)
		}
		blocks += int((rd.off+rd.n-1)/bs - rd.off/bs + 1)
	}
	if got, want := f.BytesDownloaded(), int64(blocks*bs); got != want {
		t.Errorf("downloaded %d bytes, want %d (%d blocks)", got, want, blocks)
	}
	if got := f.Calls("GetObject"); got != blocks {
		t.Errorf("%d GETs, want %d", got, blocks)
	}
}

func TestOutOfOrderReadsDoNotRestartStream(t *testing.T) {
	const bs = 64 << 10
	const chunk = 16 << 10
	f := s3fake.New()
	data, info := putObject(t, f, "obj", 4<<20, 4)
	c := newCache(t, Config{MaxBytes: 8 << 20, BlockSize: bs})

	t.Run("permuted", func(t *testing.T) {
		f.ResetCounters()
		r := newReader(t, c, f, info, ReaderConfig{})
		defer c.Invalidate("obj")
		got := make([]byte, len(data))
		// Pairs swapped and groups of eight reversed, as parallel readahead requests may arrive.
		order := []int{1, 0, 3, 2, 7, 6, 5, 4}
		for g := 0; g < len(data)/chunk; g += len(order) {
			for _, j := range order {
				off := int64((g + j) * chunk)
				if _, err := r.ReadAt(context.Background(), got[off:off+chunk], off); err != nil {
					t.Fatal(err)
				}
			}
		}
		if !bytes.Equal(got, data) {
			t.Fatal("content differs")
		}
		if n := f.Calls("GetObject"); n != 1 {
			t.Errorf("%d GETs, want 1", n)
		}
	})
	t.Run("parallel", func(t *testing.T) {
		f.ResetCounters()
		r := newReader(t, c, f, info, ReaderConfig{})
		defer c.Invalidate("obj")
		got := make([]byte, len(data))
		const par = 4
		var wg sync.WaitGroup
		errs := make(chan error, par)
		for g := 0; g < len(data)/chunk; g += par {
			for j := range par {
				off := int64((g + j) * chunk)
				wg.Go(func() {
					if _, err := r.ReadAt(context.Background(), got[off:off+chunk], off); err != nil {
						errs <- err
					}
				})
			}
			wg.Wait()
		}
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Fatal("content differs")
		}
		if n := f.Calls("GetObject"); n != 1 {
			t.Errorf("%d GETs, want 1", n)
		}
	})
}

// TestReadersShareBlocks runs three sequential readers of one object side by side (at most 16 blocks apart, as
// the kernel serves three processes reading one file): every block is downloaded once.
func TestReadersShareBlocks(t *testing.T) {
	const bs = 64 << 10
	f := s3fake.New()
	data, info := putObject(t, f, "obj", 256*bs, 1)
	c := newCache(t, Config{MaxBytes: 64 * bs, BlockSize: bs})
	var wg sync.WaitGroup
	const n = 3
	var rs []*Reader
	for range n {
		rs = append(rs, c.NewReader(f, info, ReaderConfig{}))
	}
	got := make([][]byte, n)
	for i := range got {
		got[i] = make([]byte, len(data))
	}
	const chunk = 128 << 10
	for off := 0; off < len(data); off += 8 * chunk {
		for i := range n {
			wg.Go(func() {
				for o := off; o < off+8*chunk && o < len(data); o += chunk {
					if _, err := rs[i].ReadAt(context.Background(), got[i][o:o+chunk], int64(o)); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
	}
	for i := range n {
		rs[i].Close()
		if !bytes.Equal(got[i], data) {
			t.Error("differs")
		}
	}
	if got := f.BytesDownloaded(); got != int64(len(data)) {
		t.Errorf("downloaded %d bytes for three readers of %d bytes, want each block once (%d GETs, %+v)",
			got, len(data), f.Calls("GetObject"), c.Stats())
	}
}

func TestETagChange(t *testing.T) {
	const bs = 1024
	f := s3fake.New()
	v1, info1 := putObject(t, f, "obj", 8*bs, 5)
	c := newCache(t, Config{MaxBytes: 64 * bs, BlockSize: bs})
	r1 := newReader(t, c, f, info1, ReaderConfig{})
	p := make([]byte, 100)
	if _, err := r1.ReadAt(context.Background(), p, 7*bs); err != nil { // random read: block 7 only
		t.Fatal(err)
	}

	v2, info2 := putObject(t, f, "obj", 8*bs, 6)
	if info1.ETag == info2.ETag {
		t.Fatal("test objects share an ETag")
	}
	// A reader of the new version never sees the old blocks.
	r2 := newReader(t, c, f, info2, ReaderConfig{})
	if got := readSeq(t, r2, 300); !bytes.Equal(got, v2) {
		t.Fatal("new version: content differs")
	}
	// The old reader still has its own version's cached block, but any other block fails.
	if _, err := r1.ReadAt(context.Background(), p, 7*bs); err != nil || !bytes.Equal(p, v1[7*bs:7*bs+100]) {
		t.Fatalf("old reader, cached block: %v", err)
	}
	if n, err := r1.ReadAt(context.Background(), p, 2*bs); !errors.Is(err, s3client.ErrPrecondition) || n != 0 {
		t.Fatalf("old reader, random read after change = %d, %v; want ErrPrecondition", n, err)
	}
	// A sequential stream of the old version fails the same way.
	r3 := newReader(t, c, f, info1, ReaderConfig{})
	if n, err := r3.ReadAt(context.Background(), p, 0); !errors.Is(err, s3client.ErrPrecondition) || n != 0 {
		t.Fatalf("old version, stream = %d, %v; want ErrPrecondition", n, err)
	}

	// Invalidate drops both versions.
	c.Invalidate("obj")
	if s := c.Stats(); s.Blocks != 0 {
		t.Errorf("%d blocks left after Invalidate", s.Blocks)
	}
	if _, err := r1.ReadAt(context.Background(), p, 7*bs); !errors.Is(err, s3client.ErrPrecondition) {
		t.Fatalf("old reader after Invalidate: %v; want ErrPrecondition", err)
	}
}

// truncating returns bodies that end early, without an error: what a server closing the connection cleanly
// mid-response looks like. The i-th GET's body ends after cuts[i] bytes, and every later one after the last cut.
type truncating struct {
	g    Getter
	cuts []int64
	n    atomic.Int64
}

func (t *truncating) GetObject(ctx context.Context, key string, off, length int64, ifMatch string) (io.ReadCloser, s3client.ObjectInfo, error) {
	body, info, err := t.g.GetObject(ctx, key, off, length, ifMatch)
	if err != nil {
		return nil, info, err
	}
	cut := t.cuts[min(int(t.n.Add(1))-1, len(t.cuts)-1)]
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(body, cut), body}, info, nil
}

func TestFailedGETGivesError(t *testing.T) {
	const bs = 64 << 10
	const chunk = 16 << 10
	// readUntilError reads sequentially and checks that every byte returned before the error is right.
	readUntilError := func(t *testing.T, r *Reader, data []byte) (int64, error) {
		buf := make([]byte, chunk)
		for off := int64(0); off < int64(len(data)); {
			n, err := r.ReadAt(context.Background(), buf, off)
			if !bytes.Equal(buf[:n], data[off:off+int64(n)]) {
				t.Fatalf("wrong bytes at %d", off)
			}
			if err != nil {
				if n == chunk {
					t.Fatalf("full read with error %v", err)
				}
				return off, err
			}
			off += int64(n)
		}
		return int64(len(data)), nil
	}

	// Each cut below is followed by len(resumeBackoff) resumed GETs that deliver nothing, so the block fails.
	t.Run("stream body fails", func(t *testing.T) {
		fastResume(t)
		f := s3fake.New()
		data, info := putObject(t, f, "obj", 8*bs, 7)
		c := newCache(t, Config{MaxBytes: 2 << 20, BlockSize: bs})
		f.FailNextBody(1, 2*bs+bs/2, nil)
		f.FailNextBody(len(resumeBackoff), 0, nil)
		r := newReader(t, c, f, info, ReaderConfig{})
		off, err := readUntilError(t, r, data)
		if !errors.Is(err, s3client.ErrUnavailable) {
			t.Fatalf("error %v at %d, want ErrUnavailable", err, off)
		}
		if off < 2*bs || off > 2*bs+bs/2 {
			t.Errorf("error at %d, want within block 2 up to the cut", off)
		}
		// Reading on retries with a new stream and yields the right bytes.
		rest := make([]byte, int64(len(data))-off)
		if n, err := r.ReadAt(context.Background(), rest, off); err != nil || !bytes.Equal(rest[:n], data[off:]) {
			t.Fatalf("retry: %d, %v", n, err)
		}
	})
	t.Run("stream body truncated", func(t *testing.T) {
		fastResume(t)
		f := s3fake.New()
		data, info := putObject(t, f, "obj", 8*bs, 8)
		c := newCache(t, Config{MaxBytes: 2 << 20, BlockSize: bs})
		r := newReader(t, c, &truncating{g: f, cuts: []int64{3*bs + 10, 0}}, info, ReaderConfig{})
		off, err := readUntilError(t, r, data)
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("error %v at %d, want io.ErrUnexpectedEOF", err, off)
		}
		if s := c.Stats(); s.Blocks > 3 {
			t.Errorf("%d blocks cached, want the 3 complete ones at most: a failed block must not stay", s.Blocks)
		}
	})
	t.Run("ranged GET truncated", func(t *testing.T) {
		fastResume(t)
		f := s3fake.New()
		_, info := putObject(t, f, "obj", 8*bs, 9)
		c := newCache(t, Config{MaxBytes: 2 << 20, BlockSize: bs})
		r := newReader(t, c, &truncating{g: f, cuts: []int64{bs - 1, 0}}, info, ReaderConfig{})
		p := make([]byte, 10)
		if n, err := r.ReadAt(context.Background(), p, 5*bs+bs-5); !errors.Is(err, io.ErrUnexpectedEOF) || n != 0 {
			t.Fatalf("ReadAt = %d, %v; want io.ErrUnexpectedEOF", n, err)
		}
	})
	t.Run("GET fails", func(t *testing.T) {
		f := s3fake.New()
		data, info := putObject(t, f, "obj", 8*bs, 10)
		c := newCache(t, Config{MaxBytes: 2 << 20, BlockSize: bs})
		r := newReader(t, c, f, info, ReaderConfig{})
		f.FailNext("GetObject", 1, s3client.ErrAccessDenied)
		p := make([]byte, 10)
		if _, err := r.ReadAt(context.Background(), p, 3*bs); !errors.Is(err, s3client.ErrAccessDenied) {
			t.Fatalf("ReadAt: %v; want ErrAccessDenied", err)
		}
		if _, err := r.ReadAt(context.Background(), p, 3*bs); err != nil || !bytes.Equal(p, data[3*bs:3*bs+10]) {
			t.Fatalf("second ReadAt: %v", err)
		}
	})
}

// recording is a Getter that records the offset of every GetObject.
type recording struct {
	g    Getter
	mu   sync.Mutex
	offs []int64
}

func (r *recording) GetObject(ctx context.Context, key string, off, length int64, ifMatch string) (io.ReadCloser, s3client.ObjectInfo, error) {
	r.mu.Lock()
	r.offs = append(r.offs, off)
	r.mu.Unlock()
	return r.g.GetObject(ctx, key, off, length, ifMatch)
}

func (r *recording) offsets() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int64(nil), r.offs...)
}

func (r *recording) count(off int64) int {
	n := 0
	for _, o := range r.offsets() {
		if o == off {
			n++
		}
	}
	return n
}

// gate blocks every GetObject of the fake until opened.
func gate(f *s3fake.Fake) (open func()) {
	ch := make(chan struct{})
	f.SetFault(func(op, key string, call int) error {
		if op == "GetObject" {
			<-ch
		}
		return nil
	})
	var once sync.Once
	return func() { once.Do(func() { close(ch) }) }
}

func TestConcurrentReadersShareOneFill(t *testing.T) {
	const bs = 64 << 10
	const readers = 8
	f := s3fake.New()
	data, info := putObject(t, f, "obj", 16*bs, 11)
	c := newCache(t, Config{MaxBytes: 2 << 20, BlockSize: bs})
	open := gate(f)
	defer open()

	var wg sync.WaitGroup
	got := make([][]byte, readers)
	errs := make([]error, readers)
	for i := range readers {
		r := newReader(t, c, f, info, ReaderConfig{})
		got[i] = make([]byte, 1000)
		wg.Go(func() { _, errs[i] = r.ReadAt(context.Background(), got[i], 9*bs+int64(i)) })
	}
	// Every reader but the first finds the block being filled; then the GET may proceed.
	for c.Stats().Hits < readers-1 {
		waitABit()
	}
	open()
	wg.Wait()
	for i := range readers {
		if errs[i] != nil || !bytes.Equal(got[i], data[9*bs+i:9*bs+i+1000]) {
			t.Errorf("reader %d: %v", i, errs[i])
		}
	}
	if n := f.Calls("GetObject"); n != 1 {
		t.Errorf("%d GETs, want 1", n)
	}
}

func TestCanceledReadLeavesFetchRunning(t *testing.T) {
	const bs = 64 << 10
	f := s3fake.New()
	data, info := putObject(t, f, "obj", 16*bs, 12)
	c := newCache(t, Config{MaxBytes: 2 << 20, BlockSize: bs})
	open := gate(f)
	defer open()
	rec := &recording{g: f}
	r := newReader(t, c, rec, info, ReaderConfig{})

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	p := make([]byte, 100)
	go func() { _, err := r.ReadAt(ctx, p, 6*bs); done <- err }()
	for f.Calls("GetObject") == 0 {
		waitABit()
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled ReadAt: %v", err)
	}
	open()
	if _, err := r.ReadAt(context.Background(), p, 6*bs); err != nil || !bytes.Equal(p, data[6*bs:6*bs+100]) {
		t.Fatalf("ReadAt after cancel: %v", err)
	}
	// The second read counts as sequential and may start a stream at the next block; block 6 itself was
	// fetched once.
	if n := rec.count(6 * bs); n != 1 {
		t.Errorf("%d GETs at block 6, want 1: the first fetch must have continued (GETs: %v)", n, rec.offsets())
	}
}

func TestCloseStopsStream(t *testing.T) {
	const bs = 64 << 10
	f := s3fake.New()
	_, info := putObject(t, f, "obj", 64*bs, 13)
	c := newCache(t, Config{MaxBytes: 2 << 20, BlockSize: bs})
	r := c.NewReader(f, info, ReaderConfig{})
	p := make([]byte, 1000)
	if _, err := r.ReadAt(context.Background(), p, 0); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadAt(context.Background(), p, 0); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("ReadAt after Close: %v", err)
	}
	// Close waited for the stream: nothing is being filled any more.
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, b := range c.blocks {
		if b.state != ready || b.pins != 0 {
			t.Errorf("block %v: state %d, pins %d after Close", k, b.state, b.pins)
		}
	}
}

func TestEvictionOrder(t *testing.T) {
	const bs = 16
	f := s3fake.New()
	data, info := putObject(t, f, "a", 30*bs, 14)
	c := newCache(t, Config{MaxBytes: 3 * bs, BlockSize: bs})
	r := newReader(t, c, f, info, ReaderConfig{})
	lru := func() string { return strings.ReplaceAll(c.lruString(), "@"+info.ETag, "") }
	read := func(block int64) {
		t.Helper()
		p := make([]byte, 3)
		if _, err := r.ReadAt(context.Background(), p, block*bs+2); err != nil || !bytes.Equal(p, data[block*bs+2:block*bs+5]) {
			t.Fatalf("block %d: %v", block, err)
		}
	}
	// Blocks far apart, so that no read counts as sequential.
	read(20)
	read(2)
	read(12)
	if got, want := lru(), "a#12 a#2 a#20"; got != want {
		t.Fatalf("lru %q, want %q", got, want)
	}
	read(2) // a hit moves the block to the front
	if got, want := lru(), "a#2 a#12 a#20"; got != want {
		t.Fatalf("lru %q, want %q", got, want)
	}
	read(27) // evicts the least recently used
	if got, want := lru(), "a#27 a#2 a#12"; got != want {
		t.Fatalf("lru %q, want %q", got, want)
	}
	s := c.Stats()
	if s.Evictions != 1 || s.Misses != 4 || s.Hits != 1 || s.PeakBytes != 3*bs {
		t.Errorf("stats %+v", s)
	}
}

func TestDiskTier(t *testing.T) {
	const bs = 16
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "00000000000000ff.blk"), []byte("stale"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := s3fake.New()
	data, info := putObject(t, f, "a", 30*bs, 15)
	c := newCache(t, Config{MaxBytes: 2 * bs, BlockSize: bs, DiskDir: dir, DiskMaxBytes: 3 * bs})
	if _, err := os.Stat(filepath.Join(dir, "00000000000000ff.blk")); !os.IsNotExist(err) {
		t.Errorf("leftover block file kept: %v", err)
	}
	r := newReader(t, c, f, info, ReaderConfig{})
	disk := func() string { return strings.ReplaceAll(c.diskString(), "@"+info.ETag, "") }
	read := func(block int64) {
		t.Helper()
		p := make([]byte, 3)
		if _, err := r.ReadAt(context.Background(), p, block*bs+2); err != nil || !bytes.Equal(p, data[block*bs+2:block*bs+5]) {
			t.Fatalf("block %d: %v", block, err)
		}
		c.disk.wg.Wait() // writes run in the background; let each finish for a deterministic order
	}
	dirBytes := func() int64 {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		for _, e := range ents {
			fi, err := e.Info()
			if err != nil {
				t.Fatal(err)
			}
			n += fi.Size()
		}
		return n
	}
	read(20)
	read(2)
	read(12)
	read(27) // the disk holds three blocks: 20 goes
	if got, want := disk(), "a#27 a#12 a#2"; got != want {
		t.Fatalf("disk %q, want %q", got, want)
	}
	if n := dirBytes(); n != 3*bs {
		t.Errorf("%d bytes on disk, want %d", n, 3*bs)
	}
	gets := f.Calls("GetObject")
	read(2) // not in memory (two blocks: 27, 12), found on disk
	if n := f.Calls("GetObject"); n != gets {
		t.Errorf("block on disk fetched from S3 (%d GETs, want %d)", n, gets)
	}
	if got, want := disk(), "a#2 a#27 a#12"; got != want {
		t.Fatalf("disk %q, want %q", got, want)
	}
	s := c.Stats()
	if s.DiskHits != 1 || s.DiskBytes != 3*bs || s.DiskEvictions != 1 {
		t.Errorf("stats %+v", s)
	}
	c.Invalidate("a")
	if n := dirBytes(); n != 0 || c.Stats().DiskBytes != 0 || disk() != "" {
		t.Errorf("after Invalidate: %d bytes on disk, index %q", n, disk())
	}
}

// TestBudgetUnderConcurrentFills runs many readers over many objects at once, sequential and random, with and
// without the disk tier, and checks that neither bound is ever exceeded and every byte read is right.
func TestBudgetUnderConcurrentFills(t *testing.T) {
	for _, withDisk := range []bool{false, true} {
		t.Run(fmt.Sprintf("disk=%v", withDisk), func(t *testing.T) {
			const bs = 4 << 10
			const maxBytes = 10 * bs
			const diskMax = 25 * bs
			f := s3fake.New()
			type obj struct {
				data []byte
				info s3client.ObjectInfo
			}
			var objs []obj
			for i := range 12 {
				d, info := putObject(t, f, fmt.Sprintf("o%d", i), 20*bs+i*777, uint64(100+i))
				objs = append(objs, obj{d, info})
			}
			cfg := Config{MaxBytes: maxBytes, BlockSize: bs}
			dir := t.TempDir()
			if withDisk {
				cfg.DiskDir, cfg.DiskMaxBytes = dir, diskMax
			}
			c := newCache(t, cfg)

			var maxMem, maxDisk atomic.Int64
			stop := make(chan struct{})
			var sampler sync.WaitGroup
			sampler.Go(func() {
				for {
					s := c.Stats()
					maxMem.Store(max(maxMem.Load(), s.MemBytes))
					maxDisk.Store(max(maxDisk.Load(), s.DiskBytes))
					if withDisk {
						maxDisk.Store(max(maxDisk.Load(), dirSize(dir)))
					}
					select {
					case <-stop:
						return
					default:
						waitABit()
					}
				}
			})

			var wg sync.WaitGroup
			errs := make(chan error, 64)
			for g := range 16 {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(g), 7))
					for range 6 {
						o := objs[rng.IntN(len(objs))]
						r := c.NewReader(f, o.info, ReaderConfig{InitialWindow: bs, MaxWindow: 4 * bs})
						if g%2 == 0 { // sequential
							got := make([]byte, 0, len(o.data))
							buf := make([]byte, 3000)
							for off := int64(0); ; {
								n, err := r.ReadAt(context.Background(), buf, off)
								got = append(got, buf[:n]...)
								off += int64(n)
								if err == io.EOF {
									break
								}
								if err != nil {
									errs <- err
									break
								}
							}
							if !bytes.Equal(got, o.data) {
								errs <- fmt.Errorf("%s: sequential content differs", o.info.Key)
							}
						} else { // random
							for range 20 {
								off := rng.Int64N(int64(len(o.data)))
								p := make([]byte, 1+rng.IntN(2*bs))
								n, err := r.ReadAt(context.Background(), p, off)
								if err != nil && err != io.EOF {
									errs <- err
								} else if !bytes.Equal(p[:n], o.data[off:off+int64(n)]) {
									errs <- fmt.Errorf("%s@%d: content differs", o.info.Key, off)
								}
							}
						}
						r.Close()
					}
				})
			}
			wg.Wait()
			close(stop)
			sampler.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			s := c.Stats()
			if s.PeakBytes > maxBytes || maxMem.Load() > maxBytes {
				t.Errorf("memory budget %d exceeded: peak %d, sampled %d", maxBytes, s.PeakBytes, maxMem.Load())
			}
			if s.Evictions == 0 {
				t.Errorf("no evictions: the test does not exercise the budget (%+v)", s)
			}
			if withDisk {
				if maxDisk.Load() > diskMax {
					t.Errorf("disk bound %d exceeded: sampled %d", diskMax, maxDisk.Load())
				}
				if s.DiskEvictions == 0 {
					t.Errorf("no disk evictions: %+v", s)
				}
			}
		})
	}
}

func dirSize(dir string) int64 {
	ents, _ := os.ReadDir(dir)
	var n int64
	for _, e := range ents {
		if fi, err := e.Info(); err == nil { // a file may vanish between the listing and the stat
			n += fi.Size()
		}
	}
	return n
}

func BenchmarkReadAtHit(b *testing.B) {
	const bs = 1 << 20
	f := s3fake.New()
	_, info := putObject(b, f, "obj", 32*bs, 16)
	c := newCache(b, Config{MaxBytes: 64 * bs, BlockSize: bs})
	r := newReader(b, c, f, info, ReaderConfig{})
	readSeq(b, r, bs) // warm
	p := make([]byte, 128<<10)
	b.SetBytes(int64(len(p)))
	b.ResetTimer()
	off := int64(0)
	for b.Loop() {
		if _, err := r.ReadAt(context.Background(), p, off); err != nil {
			b.Fatal(err)
		}
		off = (off + int64(len(p))) % info.Size
	}
}

// BenchmarkReadAtHitParallel measures the hit path with several readers of one cached object contending for
// the cache lock.
func BenchmarkReadAtHitParallel(b *testing.B) {
	const bs = 1 << 20
	f := s3fake.New()
	_, info := putObject(b, f, "obj", 32*bs, 17)
	c := newCache(b, Config{MaxBytes: 64 * bs, BlockSize: bs})
	readSeq(b, newReader(b, c, f, info, ReaderConfig{}), bs) // warm
	b.SetBytes(16 << 10)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := c.NewReader(f, info, ReaderConfig{})
		defer r.Close()
		p := make([]byte, 16<<10)
		off := int64(0)
		for pb.Next() {
			if _, err := r.ReadAt(context.Background(), p, off); err != nil {
				b.Error(err)
				return
			}
			off = (off + int64(len(p))) % info.Size
		}
	})
}
