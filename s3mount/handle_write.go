package s3mount

import (
	"context"
	"errors"
	"syscall"
	"time"

	"github.com/s3ftp/s3ftp/s3mount/s3client"
	"github.com/s3ftp/s3ftp/s3mount/upload"
)

// Write streams data into the upload. Errnos: EBADF after release; EIO once the upload failed (a failed part
// fails the next write) or after a Flush/Fsync completed it; ENOTSUP on an unarmed handle; EBUSY when another
// handle now writes the file; EINVAL for a write the upload cannot place (not sequential), which also aborts
// the upload so that no object with a hole is stored; EFBIG past the largest object the part schedule allows;
// EINTR when interrupted before any byte was accepted.
func (h *writeHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.released:
		return 0, syscall.EBADF
	case h.err != nil:
		return 0, syscall.EIO
	case h.done:
		return 0, h.f.refuse("write", h.key, syscall.EIO, "the upload was already completed by flush or fsync")
	case !h.armed:
		return 0, h.f.refuse("write", h.key, syscall.ENOTSUP,
			"writing into an existing object needs O_TRUNC or ftruncate(0) first (in-place changes are not supported)")
	}
	if errno := h.node.claimWriter(h); errno != 0 {
		return 0, h.f.refuse("write", h.key, errno, "another handle is writing the file")
	}
	if h.w == nil {
		h.w = upload.New(h.f.client, h.key, h.f.putOptions(h.name), upload.Config{
			PartSize:    h.f.opts.PartSize,
			Concurrency: h.f.opts.UploadConcurrency,
			Budget:      h.f.budget,
			Log:         h.f.log,
		})
		h.f.registerUpload(h)
	}
	n, err := h.w.WriteAt(ctx, data, off)
	h.size.Store(h.w.Size())
	if err == nil {
		return uint32(n), 0
	}
	if ctx.Err() != nil && s3client.KindOf(err) == s3client.ErrCanceled {
		// Interrupted while waiting for the budget: nothing is lost, the bytes counted in n were accepted.
		if n > 0 {
			return uint32(n), 0
		}
		return 0, syscall.EINTR
	}
	h.err = err
	if s3client.KindOf(err) != s3client.ErrOther || errors.Is(err, upload.ErrClosed) {
		// A failed S3 request: the writer logged it with its cause when it failed the upload.
		return 0, syscall.EIO
	}
	errno := h.f.errno("write", h.key, err)
	if errors.Is(err, upload.ErrNotSequential) {
		h.abortLocked("write at an offset the upload cannot place")
	}
	return 0, errno
}

// Flush is close(2) on one descriptor of the handle (it runs once per dup'd descriptor). The first Flush after
// writes completes the upload and returns EIO, with a log line naming the key and the cause, when it failed;
// later Flushes return the same result. A Flush with nothing written stores an empty object (so a created file
// exists once close returns). The upload runs on the handle's context: an interrupted close still completes it.
func (h *writeHandle) Flush(ctx context.Context) syscall.Errno {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.completeLocked(ctx, "flush")
}

// Fsync completes the upload like Flush: S3 has no durable partial object, so fsync is the end of the upload,
// and later writes to the handle fail with EIO.
func (h *writeHandle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.completeLocked(ctx, "fsync")
}

func (h *writeHandle) completeLocked(ctx context.Context, op string) syscall.Errno {
	switch {
	case h.released:
		return 0
	case h.err != nil:
		if h.w != nil {
			// The writer failed and already logged why; end it here so that Release has nothing to report.
			if err := h.w.Abort(detached(ctx)); err != nil {
				h.f.log.Error("upload abort failed", "key", h.key, "err", err)
			}
			h.w = nil
			h.done = true
			h.node.dropWriter(h)
			h.f.unregisterUpload(h)
		}
		return syscall.EIO
	case !h.armed:
		return 0
	case h.w != nil:
		w := h.w
		info, err := w.Close(detached(ctx))
		h.w = nil
		h.done = true
		h.node.dropWriter(h)
		h.f.unregisterUpload(h)
		if err != nil {
			h.err = err
			h.f.log.Error("upload failed: the file was not stored", "op", op, "key", h.key, "errno", "EIO", "err", err)
			return syscall.EIO
		}
		h.stored(info)
		return 0
	case !h.done && !h.emptyStored:
		opts := h.f.putOptions(h.name)
		etag, err := h.f.client.PutObject(detached(ctx), h.key, nil, opts)
		h.node.dropWriter(h)
		if err != nil {
			h.err = err
			return h.f.errno("PutObject", h.key, err)
		}
		h.emptyStored = true
		h.stored(s3client.ObjectInfo{Key: h.key, ETag: etag, ContentType: opts.ContentType})
		return 0
	}
	h.node.dropWriter(h)
	return 0
}

// stored records the object a completed upload created.
func (h *writeHandle) stored(info s3client.ObjectInfo) {
	info.Key = h.key
	if info.LastModified.IsZero() {
		info.LastModified = time.Now()
	}
	h.f.cache.Invalidate(h.key)
	h.f.meta.put(h.key, statEntry{info: info})
}

// Release ends the handle. The kernel ignores its result and sends it after close(2) returned, so failures
// were reported by Flush; an upload that no Flush or Fsync completed is aborted here, with a log line.
func (h *writeHandle) Release(ctx context.Context) syscall.Errno {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.released = true
	h.abortLocked("the file was released without flush")
	return 0
}

// truncate handles ftruncate/truncate on the file this handle writes: 0 before anything was written arms the
// handle (and claims the file); the current size is a no-op; anything else is ENOTSUP.
func (h *writeHandle) truncate(size uint64, current func() (uint64, syscall.Errno)) syscall.Errno {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.released:
		return syscall.EBADF
	case h.err != nil:
		return syscall.EIO
	case size == 0 && h.w == nil && !h.done:
		if errno := h.node.claimWriter(h); errno != 0 {
			return h.f.refuse("truncate", h.key, errno, "another handle is writing the file")
		}
		if !h.armed {
			h.armed = true
			h.node.removeUnarmed(h)
			// The empty object is stored when the handle is flushed; until then the file shows 0 bytes.
			h.emptyStored = false
		}
		return 0
	case h.armed && int64(size) == h.size.Load():
		return 0
	case !h.armed:
		cur, errno := current()
		if errno != 0 {
			return errno
		}
		if size == cur {
			return 0
		}
	}
	return h.f.refuse("truncate", h.key, syscall.ENOTSUP, "only truncation to 0 before writing, or to the current size, is supported")
}
