package upload

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"testing"

	"github.com/s3ftp/s3ftp/s3client"
)

// discardClient accepts every upload without keeping the bytes, so that memory tests measure the writer only.
// It checks that each part carries the offsets stamped by stampedWrites and counts bytes and calls.
type discardClient struct {
	partSize int64

	mu     sync.Mutex
	bytes  int64
	parts  int
	errors []string
}

func (d *discardClient) PutObject(ctx context.Context, key string, body []byte, opts s3client.PutOptions) (string, error) {
	d.check(0, body)
	return `"put"`, nil
}

func (d *discardClient) GetObject(ctx context.Context, key string, off, length int64, ifMatch string) (io.ReadCloser, s3client.ObjectInfo, error) {
	return nil, s3client.ObjectInfo{}, errors.New("discardClient: GetObject is not used by these tests")
}

func (d *discardClient) UploadPartCopy(ctx context.Context, key, uploadID string, number int32, src, srcETag string, off, length int64) (string, error) {
	return "", errors.New("discardClient: UploadPartCopy is not used by these tests")
}

func (d *discardClient) CopyObject(ctx context.Context, src, dst string, opts s3client.PutOptions) (string, error) {
	return `"copy"`, nil
}

func (d *discardClient) CreateMultipartUpload(ctx context.Context, key string, opts s3client.PutOptions) (string, error) {
	return "upload-1", nil
}

func (d *discardClient) UploadPart(ctx context.Context, key, uploadID string, number int32, body []byte) (string, error) {
	d.check(int64(number-1)*d.partSize, body)
	return fmt.Sprintf(`"p%d"`, number), nil
}

func (d *discardClient) CompleteMultipartUpload(ctx context.Context, key, uploadID string, parts []s3client.Part, ifNoneMatch bool) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(parts) != d.parts {
		d.errors = append(d.errors, fmt.Sprintf("Complete lists %d parts, %d uploaded", len(parts), d.parts))
	}
	for i, p := range parts {
		if p.Number != int32(i+1) || p.ETag != fmt.Sprintf(`"p%d"`, i+1) {
			d.errors = append(d.errors, fmt.Sprintf("Complete part %d is %+v", i+1, p))
		}
	}
	return `"complete"`, nil
}

func (d *discardClient) AbortMultipartUpload(ctx context.Context, key, uploadID string) error {
	return nil
}

// check verifies the offset stamps at every stampEvery boundary of body, which starts at object offset start.
func (d *discardClient) check(start int64, body []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.bytes += int64(len(body))
	d.parts++
	for i := int64(0); i+8 <= int64(len(body)); i += stampEvery {
		if got := int64(binary.LittleEndian.Uint64(body[i:])); got != start+i {
			d.errors = append(d.errors, fmt.Sprintf("offset %d holds the bytes of offset %d", start+i, got))
			return
		}
	}
}

const stampEvery = 1 << 20

// stampedWrites writes total bytes in writes of stampEvery bytes, each starting with its offset.
func stampedWrites(ctx context.Context, w *Writer, total int64, src []byte) error {
	for off := int64(0); off < total; off += stampEvery {
		binary.LittleEndian.PutUint64(src, uint64(off))
		if _, err := w.WriteAt(ctx, src, off); err != nil {
			return err
		}
	}
	return nil
}

// TestHeapStaysNearBudget writes 1 GiB through a 64 MiB budget: the heap obtained from the OS (the part of RSS
// the writer controls) grows by no more than the budget plus a fixed overhead, and the bytes allocated stay
// within it too, because part buffers are reused instead of left to the GC.
func TestHeapStaysNearBudget(t *testing.T) {
	const total = 1 << 30
	budget := NewBudget(64 * mib)
	d := &discardClient{partSize: 8 * mib}
	w := New(d, "big", s3client.PutOptions{}, Config{PartSize: 8 * mib, Concurrency: 4, Budget: budget})
	src := make([]byte, stampEvery)

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if err := stampedWrites(context.Background(), w, total, src); err != nil {
		t.Fatal(err)
	}
	info, err := w.Close(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)

	if info.Size != total || d.bytes != total || d.parts != total/(8*mib) {
		t.Fatalf("size %d, uploaded %d bytes in %d parts", info.Size, d.bytes, d.parts)
	}
	if len(d.errors) > 0 {
		t.Fatalf("upload content wrong: %v", d.errors)
	}
	const overhead = 16 * mib
	grown := int64(after.HeapSys) - int64(before.HeapSys)
	if grown > budget.Max()+overhead {
		t.Errorf("heap grew by %d MiB writing 1 GiB; budget %d MiB + overhead %d MiB", grown>>20, budget.Max()>>20, overhead>>20)
	}
	// Without reuse every part would be a fresh 8 MiB allocation (1 GiB in all), which the GC reclaims late.
	if allocated := int64(after.TotalAlloc - before.TotalAlloc); allocated > budget.Max()+overhead {
		t.Errorf("allocated %d MiB writing 1 GiB: part buffers are not reused", allocated>>20)
	}
	if budget.Peak() > budget.Max() {
		t.Errorf("Peak %d > Max %d", budget.Peak(), budget.Max())
	}
	t.Logf("heap grew by %d MiB, total allocated %d MiB", grown>>20, (after.TotalAlloc-before.TotalAlloc)>>20)
}

// BenchmarkWriteAt measures the write path (copy into the part buffer, hand-off of full parts, buffer reuse)
// with an S3 client that costs nothing.
func BenchmarkWriteAt(b *testing.B) {
	for _, size := range []int{4 << 10, 128 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			d := &discardClient{partSize: 8 * mib}
			w := New(d, "bench", s3client.PutOptions{}, Config{PartSize: 8 * mib, Concurrency: 4, Budget: NewBudget(64 * mib)})
			p := make([]byte, size)
			ctx := context.Background()
			b.SetBytes(int64(size))
			b.ReportAllocs()
			off := int64(0)
			for b.Loop() {
				if _, err := w.WriteAt(ctx, p, off); err != nil {
					b.Fatal(err)
				}
				off += int64(size)
			}
			if err := w.Abort(ctx); err != nil {
				b.Fatal(err)
			}
		})
	}
}
