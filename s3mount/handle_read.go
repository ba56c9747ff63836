package s3mount

import (
	"context"
	"errors"
	"io"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"

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
	n, err := h.r.ReadAt(ctx, dest, off)
	if err != nil && !errors.Is(err, io.EOF) {
		if ctx.Err() != nil && s3client.KindOf(err) == s3client.ErrCanceled {
			return nil, syscall.EINTR
		}
		return nil, h.f.errno("read", h.key, err)
	}
	return fuse.ReadResultData(dest[:n]), 0
}

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
