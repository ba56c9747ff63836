package upload

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"

	"github.com/s3ftp/s3ftp/internal/safego"
	"github.com/s3ftp/s3ftp/s3client"
)

// errCopyPartLost: a part of a multipart copy ended without a result (its goroutine panicked).
var errCopyPartLost = errors.New("upload: a part of the copy was lost")

// CopyClient is the subset of s3client.Client a Copier uses.
type CopyClient interface {
	CopyObject(ctx context.Context, src, dst string, opts s3client.PutOptions) (string, error)
	CreateMultipartUpload(ctx context.Context, key string, opts s3client.PutOptions) (string, error)
	UploadPartCopy(ctx context.Context, key, uploadID string, number int32, src, srcETag string, off, length int64) (string, error)
	CompleteMultipartUpload(ctx context.Context, key, uploadID string, parts []s3client.Part, ifNoneMatch bool) (string, error)
	AbortMultipartUpload(ctx context.Context, key, uploadID string) error
}

// Server-side copies.
const (
	// CopyPartSize is the smallest part of a multipart copy. Parts grow beyond it so that an object of up to
	// 5 TiB needs at most MaxParts of them.
	CopyPartSize = 512 << 20
	// CopyConcurrency is how many UploadPartCopy requests one multipart copy keeps in flight.
	CopyConcurrency = 8
)

// Copier is the one engine of server-side copies: a rename's copy, an object copied onto itself to replace
// its metadata (chmod, chown, utimens of a file nobody writes), and a completed upload whose options changed
// after its multipart upload was created. Up to s3client.MaxCopySize it is one CopyObject; above, a multipart
// upload of UploadPartCopy parts (CopyPlan), CopyConcurrency in flight, each conditional on the source's ETag,
// and on failure the multipart upload is aborted through Aborts (retried in the background). The kept bytes
// of a Writer (NewFromExisting) use the same parts' rules.
type Copier struct {
	C      CopyClient
	Aborts *Aborts        // nil: a private one
	Log    *slog.Logger   // nil: slog.Default()
	Panics *safego.Panics // counts the panics of the copy goroutines; nil counts them nowhere
	once   sync.Once
}

func (c *Copier) init() {
	c.once.Do(func() {
		if c.Aborts == nil {
			c.Aborts = &Aborts{}
		}
		if c.Log == nil {
			c.Log = slog.Default()
		}
	})
}

// CopyPlan returns the byte ranges of a server-side copy of size bytes in parts: the fewest of nearly equal
// length, each over half of CopyPartSize when size allows (and at least 5 MiB for size >= 5 MiB: none is too
// small to precede another part) and at most MaxParts in all.
func CopyPlan(size int64) []ByteRange {
	ps := int64(CopyPartSize)
	if need := (size + s3client.MaxParts - 1) / s3client.MaxParts; need > ps {
		ps = need
	}
	n := max((size+ps-1)/ps, 1)
	rs := make([]ByteRange, 0, n)
	for i, off := int64(0), int64(0); i < n; i++ {
		end := size * (i + 1) / n
		rs = append(rs, ByteRange{Off: off, Len: end - off})
		off = end
	}
	return rs
}

// ByteRange is one part of a copy plan.
type ByteRange struct{ Off, Len int64 }

// Copy copies src (src.Key, its size and ETag must be set) to dst, which may be src.Key itself, and returns
// the new ETag. With opts.ReplaceMetadata the copy gets opts' content type and metadata, otherwise src's.
func (c *Copier) Copy(ctx context.Context, src s3client.ObjectInfo, dst string, opts s3client.PutOptions) (string, error) {
	c.init()
	if src.Size <= s3client.MaxCopySize {
		if !opts.ReplaceMetadata {
			opts = s3client.PutOptions{}
		}
		return c.C.CopyObject(ctx, src.Key, dst, opts)
	}
	if !opts.ReplaceMetadata {
		// The object a multipart upload makes gets the upload's metadata: carry the source's over.
		opts = s3client.PutOptions{ContentType: src.ContentType, Metadata: src.Metadata}
	}
	return c.copyMultipart(ctx, src, dst, opts, CopyPlan(src.Size))
}

// copyMultipart copies src to dst in the parts of plan and stores the result with opts.
func (c *Copier) copyMultipart(ctx context.Context, src s3client.ObjectInfo, dst string, opts s3client.PutOptions, plan []ByteRange) (string, error) {
	c.init()
	opts.ReplaceMetadata = false
	id, err := c.C.CreateMultipartUpload(ctx, dst, opts)
	if err != nil {
		return "", err
	}
	parts, err := c.copyParts(ctx, src, dst, id, plan)
	var etag string
	if err == nil {
		etag, err = c.C.CompleteMultipartUpload(ctx, dst, id, parts, false)
	}
	if err != nil {
		c.Aborts.start(c.C, dst, id, c.Log, c.Panics)
		return "", err
	}
	return etag, nil
}

// copyParts runs the UploadPartCopy requests of plan, CopyConcurrency at a time; the first failure stops the
// ones not started yet and is returned.
func (c *Copier) copyParts(ctx context.Context, src s3client.ObjectInfo, dst, id string, plan []ByteRange) ([]s3client.Part, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	parts := make([]s3client.Part, len(plan))
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	slots := make(chan struct{}, CopyConcurrency)
	for i, r := range plan {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		c.Panics.Go(c.Log, "upload: UploadPartCopy", func() {
			defer wg.Done()
			defer func() { <-slots }()
			etag, err := c.C.UploadPartCopy(ctx, dst, id, int32(i+1), src.Key, src.ETag, r.Off, r.Len)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if first == nil {
					first = err
					cancel()
				}
				return
			}
			parts[i] = s3client.Part{Number: int32(i + 1), ETag: etag}
		})
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if first == nil && ctx.Err() != nil {
		first = ctx.Err()
	}
	if first == nil && slices.ContainsFunc(parts, func(p s3client.Part) bool { return p.ETag == "" }) {
		first = errCopyPartLost
	}
	return parts, first
}
