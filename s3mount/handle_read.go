package s3mount

import (
	"context"
	"fmt"
	"io"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/s3ftp/s3ftp/cache"
	"github.com/s3ftp/s3ftp/s3client"
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
	if err := h.recentFailure(off, len(dest)); err != nil {
		return nil, h.f.errno("read", h.key, err)
	}
	// The reader returns io.EOF itself at the end of the object. A failed GET may wrap io.EOF too (a dropped
	// connection), so only the sentinel means "end": anything else is an error, never a short read.
	if v, ok, err := h.r.ReadView(ctx, off, len(dest)); ok {
		if err != nil && err != io.EOF {
			return nil, h.readErrno(ctx, off, len(dest), err)
		}
		return &viewResult{v: v}, 0
	}
	n, err := h.r.ReadAt(ctx, dest, off)
	if err != nil && err != io.EOF {
		return nil, h.readErrno(ctx, off, len(dest), err)
	}
	return fuse.ReadResultData(dest[:n]), 0
}

// readErrno maps a failed read of n bytes at off: EINTR when the kernel interrupted the request, the errno
// table otherwise. A failure because S3 is unreachable is remembered for recentFailure.
func (h *readHandle) readErrno(ctx context.Context, off int64, n int, err error) syscall.Errno {
	if ctx.Err() != nil && s3client.KindOf(err) == s3client.ErrCanceled {
		return syscall.EINTR
	}
	if s3client.KindOf(err) == s3client.ErrUnavailable {
		h.noteFailure(off, n, err)
	}
	return h.f.errno("read", h.key, err)
}

// UnavailableRetryWindow is how long a read that failed because S3 was unreachable (the client's attempts
// used up: a silent network, refused connections, 5xx answers) answers the reads of the same bytes on the same
// handle with the same error, without asking S3 again.
//
// The kernel asks twice for the bytes of one read(2): when its readahead READ fails, it asks again at once
// for the page the caller waits for, with a plain READ. Without the window, that READ waits for another full
// retry chain of the client (about 95 s with the default timeouts and attempts), doubling the time a caller
// waits for EIO on a partition. A read after the window asks S3 again.
const UnavailableRetryWindow = 2 * time.Second

// failedRange is a read that failed because S3 was unreachable.
type failedRange struct {
	off, end int64
	at       time.Time
	err      error
}

// maxFailedRanges bounds the failures a handle remembers: the kernel has at most a few READs of one handle in
// flight (its readahead window), and older ones are dropped first.
const maxFailedRanges = 32

// noteFailure remembers that the read of n bytes at off failed with err, an unreachable S3.
func (h *readHandle) noteFailure(off int64, n int, err error) {
	h.failMu.Lock()
	defer h.failMu.Unlock()
	now := time.Now()
	h.pruneFailuresLocked(now)
	if len(h.failed) == maxFailedRanges {
		h.failed = h.failed[1:]
	}
	h.failed = append(h.failed, failedRange{off: off, end: off + int64(n), at: now, err: err})
	h.lastFail.Store(now.UnixNano())
}

// recentFailure returns the error of a read that failed within UnavailableRetryWindow because S3 was
// unreachable and overlaps [off, off+n), wrapped to say so; nil when there is none. Every READ asks, so a
// handle with no failure within the window answers without taking failMu.
func (h *readHandle) recentFailure(off int64, n int) error {
	now := time.Now()
	if last := h.lastFail.Load(); last == 0 || now.Sub(time.Unix(0, last)) >= UnavailableRetryWindow {
		return nil
	}
	h.failMu.Lock()
	defer h.failMu.Unlock()
	h.pruneFailuresLocked(now)
	for i := len(h.failed) - 1; i >= 0; i-- {
		if fr := h.failed[i]; off < fr.end && fr.off < off+int64(n) {
			return fmt.Errorf("not asking S3 again: a read of bytes [%d, %d) failed %v ago: %w", fr.off, fr.end,
				now.Sub(fr.at).Round(time.Millisecond), fr.err)
		}
	}
	return nil
}

// pruneFailuresLocked drops the failures older than UnavailableRetryWindow (in the order noted).
func (h *readHandle) pruneFailuresLocked(now time.Time) {
	i := 0
	for i < len(h.failed) && now.Sub(h.failed[i].at) >= UnavailableRetryWindow {
		i++
	}
	h.failed = h.failed[i:]
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
		if h.node != nil {
			h.node.readerReleased()
		}
	}
	return 0
}
