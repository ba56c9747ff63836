package cache_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/s3ftp/s3ftp/cache"
	"github.com/s3ftp/s3ftp/internal/miniotest"
	"github.com/s3ftp/s3ftp/s3client"
)

func TestMain(m *testing.M) { miniotest.Main(m) }

// counting is a Getter that counts GetObject calls.
type counting struct {
	g cache.Getter
	n atomic.Int64
}

func (c *counting) GetObject(ctx context.Context, key string, off, length int64, ifMatch string) (io.ReadCloser, s3client.ObjectInfo, error) {
	c.n.Add(1)
	return c.g.GetObject(ctx, key, off, length, ifMatch)
}

// putBig uploads size pseudo-random bytes under key with a multipart upload of 16 MiB parts, so that the test
// never holds more than one part, and returns the object's info. The content is patternAt.
func putBig(tb testing.TB, c s3client.Client, key string, size int64) s3client.ObjectInfo {
	tb.Helper()
	ctx := context.Background()
	const part = 16 << 20
	id, err := c.CreateMultipartUpload(ctx, key, s3client.PutOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	var parts []s3client.Part
	buf := make([]byte, part)
	for off, num := int64(0), int32(1); off < size; off, num = off+part, num+1 {
		n := min(part, size-off)
		patternAt(buf[:n], off)
		etag, err := c.UploadPart(ctx, key, id, num, buf[:n])
		if err != nil {
			tb.Fatal(err)
		}
		parts = append(parts, s3client.Part{Number: num, ETag: etag})
	}
	if _, err := c.CompleteMultipartUpload(ctx, key, id, parts, false); err != nil {
		tb.Fatal(err)
	}
	info, err := c.HeadObject(ctx, key)
	if err != nil {
		tb.Fatal(err)
	}
	return info
}

// patternAt fills p with the test content at offset off: each 8-byte word holds a hash of its offset, so a
// misplaced or stale block shows up as a mismatch.
func patternAt(p []byte, off int64) {
	for i := range p {
		o := uint64(off) + uint64(i)
		w := (o / 8) * 0x9e3779b97f4a7c15
		p[i] = byte(w >> (8 * (o % 8)))
	}
}

func newMinIOCache(tb testing.TB, maxBytes int64) *cache.Cache {
	tb.Helper()
	c, err := cache.New(cache.Config{MaxBytes: maxBytes, Log: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// TestMinIOSequentialRead reads a 64 MiB object sequentially through a 16 MiB cache from a real MinIO, the way
// the kernel does (128 KiB requests, a few in parallel), and compares every byte.
func TestMinIOSequentialRead(t *testing.T) {
	srv := miniotest.Shared(t)
	client := srv.Client(t, srv.NewBucket(t))
	const size = 64<<20 + 12345
	info := putBig(t, client, "big/object", size)
	const budget = 16 << 20
	c := newMinIOCache(t, budget)
	g := &counting{g: client}
	r := c.NewReader(g, info, cache.ReaderConfig{MaxWindow: 4 << 20})
	defer r.Close()

	const chunk, par = 128 << 10, 4
	var wg sync.WaitGroup
	errs := make(chan error, par)
	for base := int64(0); base < size; base += chunk * par {
		for j := range int64(par) {
			off := base + j*chunk
			if off >= size {
				break
			}
			wg.Go(func() {
				p := make([]byte, chunk)
				n, err := r.ReadAt(context.Background(), p, off)
				if err != nil && !(err == io.EOF && off+int64(n) == size) {
					errs <- fmt.Errorf("ReadAt(%d) = %d, %v", off, n, err)
					return
				}
				exp := make([]byte, n)
				patternAt(exp, off)
				if !bytes.Equal(p[:n], exp) {
					errs <- fmt.Errorf("ReadAt(%d): content differs", off)
				}
			})
		}
		wg.Wait()
		select {
		case err := <-errs:
			t.Fatal(err)
		default:
		}
	}
	if n := g.n.Load(); n != 1 {
		t.Errorf("%d GETs for a sequential read, want 1", n)
	}
	if s := c.Stats(); s.PeakBytes > budget {
		t.Errorf("peak %d above the budget %d", s.PeakBytes, budget)
	}

	// A cold sequential read from the middle: one ranged GET for the first read, then one open-ended GET from
	// the next block on.
	c.Invalidate("big/object")
	g.n.Store(0)
	r2 := c.NewReader(g, info, cache.ReaderConfig{MaxWindow: 4 << 20})
	defer r2.Close()
	p := make([]byte, chunk)
	for off := int64(40 << 20); ; off += chunk {
		n, err := r2.ReadAt(context.Background(), p, off)
		exp := make([]byte, n)
		patternAt(exp, off)
		if !bytes.Equal(p[:n], exp) {
			t.Fatalf("from the middle: content differs at %d", off)
		}
		if err == io.EOF && off+int64(n) == size {
			break
		}
		if err != nil {
			t.Fatalf("from the middle: ReadAt(%d): %v", off, err)
		}
	}
	if n := g.n.Load(); n != 2 {
		t.Errorf("%d GETs for a sequential read from the middle, want 2", n)
	}
}

// TestMinIOChangedObject checks the If-Match contract against the real server: a reader of the old version gets
// ErrPrecondition for a block it has not cached, and a reader of the new version gets the new bytes.
func TestMinIOChangedObject(t *testing.T) {
	srv := miniotest.Shared(t)
	client := srv.Client(t, srv.NewBucket(t))
	ctx := context.Background()
	v1 := bytes.Repeat([]byte("1"), 3<<20)
	v2 := bytes.Repeat([]byte("2"), 3<<20)
	if _, err := client.PutObject(ctx, "k", v1, s3client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	info1, err := client.HeadObject(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	c := newMinIOCache(t, 8<<20)
	r1 := c.NewReader(client, info1, cache.ReaderConfig{})
	defer r1.Close()
	p := make([]byte, 10)
	if _, err := r1.ReadAt(ctx, p, 2<<20); err != nil || !bytes.Equal(p, v1[:10]) {
		t.Fatalf("v1 read: %v", err)
	}
	if _, err := client.PutObject(ctx, "k", v2, s3client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	info2, err := client.HeadObject(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r1.ReadAt(ctx, p, 0); !errors.Is(err, s3client.ErrPrecondition) {
		t.Fatalf("old reader after overwrite: %v, want ErrPrecondition", err)
	}
	r2 := c.NewReader(client, info2, cache.ReaderConfig{})
	defer r2.Close()
	if _, err := r2.ReadAt(ctx, p, 2<<20); err != nil || !bytes.Equal(p, v2[:10]) {
		t.Fatalf("v2 read: %v %q", err, p)
	}
}

// BenchmarkMinIOColdSequential compares a cold sequential read through a Reader with one raw GET streamed into
// a buffer, on the same object. S3FTP_BENCH_MB sets the object size (default 256; the target is a Reader at
// 0.8x the raw GET or better on 1024).
func BenchmarkMinIOColdSequential(b *testing.B) {
	mb, _ := strconv.Atoi(os.Getenv("S3FTP_BENCH_MB"))
	if mb <= 0 {
		mb = 256
	}
	size := int64(mb) << 20
	srv := miniotest.Shared(b)
	client := srv.Client(b, srv.NewBucket(b))
	info := putBig(b, client, "bench", size)
	const chunk = 128 << 10
	b.Run("raw-GET", func(b *testing.B) {
		b.SetBytes(size)
		p := make([]byte, chunk)
		for b.Loop() {
			body, _, err := client.GetObject(context.Background(), "bench", 0, -1, info.ETag)
			if err != nil {
				b.Fatal(err)
			}
			var n int64
			for {
				m, err := io.ReadFull(body, p)
				n += int64(m)
				if err != nil {
					break
				}
			}
			body.Close()
			if n != size {
				b.Fatalf("read %d of %d", n, size)
			}
		}
	})
	b.Run("cache-Reader", func(b *testing.B) {
		b.SetBytes(size)
		c := newMinIOCache(b, 64<<20)
		p := make([]byte, chunk)
		for b.Loop() {
			c.Invalidate("bench")
			r := c.NewReader(client, info, cache.ReaderConfig{})
			for off := int64(0); off < size; off += chunk {
				if _, err := r.ReadAt(context.Background(), p, off); err != nil && err != io.EOF {
					b.Fatal(err)
				}
			}
			r.Close()
		}
	})
}
