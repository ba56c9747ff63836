package s3mount

import (
	"context"
	"io"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/s3ftp/s3ftp/cache"
	"github.com/s3ftp/s3ftp/s3mount/s3client"
)

// Read serves dest from the cache.Reader bound to the ETag seen at open: sequential detection, prefetch and
// block caching are the reader's. A short read happens only at the end of the object. ESTALE when the object
// changed since open (never a mix of two versions); EBADF after release.
func (h *readHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.released {
		return nil, syscall.EBADF
	}
	// The reader returns io.EOF itself at the end of the object. A failed GET may wrap io.EOF too (a dropped
	// connection), so only the sentinel means "end": anything else is an error, never a short read.
	if v, ok, err := h.r.ReadView(ctx, off, len(dest)); ok {
		if err != nil && err != io.EOF {
			return nil, h.readErrno(ctx, err)
		}
		return &viewResult{v: v}, 0
	}
	n, err := h.r.ReadAt(ctx, dest, off)
	if err != nil && err != io.EOF {
		return nil, h.readErrno(ctx, err)
	}
	return fuse.ReadResultData(dest[:n]), 0
}

// readErrno maps a failed read: EINTR when the kernel interrupted the request, the errno table otherwise.
func (h *readHandle) readErrno(ctx context.Context, err error) syscall.Errno {
	if ctx.Err() != nil && s3client.KindOf(err) == s3client.ErrCanceled {
		return syscall.EINTR
	}
	return h.f.errno("read", h.key, err)
}

// viewResult answers a READ straight from a cached block: go-fuse writes Slices to /dev/fuse with writev
// (its vectored path, taken for any ReadResult with a Slices method) and then calls Done, which unpins the
// block. This saves copying every byte read into the request's buffer first.
type viewResult struct {
	v *cache.View
}

// Size is the reply's payload length.
func (r *viewResult) Size() int { return len(r.v.Bytes()) }

// Bytes copies the payload into buf: a caller of Bytes may call Done before it writes the reply.
func (r *viewResult) Bytes(buf []byte) ([]byte, fuse.Status) {
	return append(buf[:0], r.v.Bytes()...), fuse.OK
}

// Slices lends the cached bytes for the writev of the reply; they stay valid until Done.
func (r *viewResult) Slices() ([][]byte, fuse.Status) { return [][]byte{r.v.Bytes()}, fuse.OK }

// Done releases the block once the reply is written (or abandoned).
func (r *viewResult) Done() { r.v.Release() }

// Release closes the reader and its S3 streams. Reads in progress finish first.
func (h *readHandle) Release(ctx context.Context) syscall.Errno {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.released {
		h.released = true
		if err := h.r.Close(); err != nil {
			h.f.log.Warn("closing reader failed", "key", h.key, "err", err)
		}
	}
	return 0
}
