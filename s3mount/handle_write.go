package s3mount

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"syscall"
	"time"

	"github.com/s3ftp/s3ftp/s3client"
	"github.com/s3ftp/s3ftp/s3mount/upload"
)

// tailChunk is the size of the reads that copy a kept tail (the bytes of the old version after the last
// written byte) into the new version.
const tailChunk = 1 << 20

// Write streams data into the upload. The first write of an unarmed handle arms it, keeping the existing
// object's bytes before off and after the written range (see writeHandle). Errnos: EBADF after release; EIO
// once the upload failed (a failed part fails the next write) or after a Flush/Fsync completed it; EBUSY when
// another handle now writes the file; EINVAL for a write the upload cannot place (not sequential), which also
// aborts the upload so that no object with a hole is stored; EFBIG past the largest object the part schedule
// allows; EINTR when interrupted before any byte was accepted.
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
		if errno := h.armExistingLocked(ctx, "write", off, true); errno != 0 {
			return 0, errno
		}
	}
	if errno := h.node.claimWriter(h); errno != 0 {
		return 0, h.f.refuse("write", h.key, errno, "another handle is writing the file")
	}
	h.ensureWriterLocked()
	n, err := h.w.WriteAt(ctx, data, off)
	h.noteSizeLocked()
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

// armExistingLocked arms an unarmed handle whose new version starts with the first keep bytes of the existing
// object (clamped to its size); keepTail also keeps its bytes after the written end. The object is asked for
// afresh (HEAD): the kept bytes are copied conditional on its current ETag, and its mode and owner headers
// carry over to the new version.
func (h *writeHandle) armExistingLocked(ctx context.Context, op string, keep int64, keepTail bool) syscall.Errno {
	if errno := h.node.claimWriter(h); errno != 0 {
		return h.f.refuse(op, h.key, errno, "another handle is writing the file")
	}
	info, err := h.f.client.HeadObject(ctx, h.key)
	switch {
	case errors.Is(err, s3client.ErrNotFound):
		// Deleted since the open: the writes make a new object.
		info = s3client.ObjectInfo{}
	case err != nil:
		h.node.dropWriter(h)
		return h.f.errno("HeadObject", h.key, err)
	}
	info.Key = h.key
	h.base = info
	h.keep = min(max(keep, 0), info.Size)
	h.keepTail = keepTail
	h.meta = keptAttrs(info.Metadata)
	h.publishAttrsLocked()
	h.armed = true
	h.node.removeUnarmed(h)
	h.noteSizeLocked()
	if h.keep > 0 || keepTail && info.Size > 0 {
		h.f.log.Debug("writing into an existing object: its other bytes are kept", "key", h.key,
			"keep_before", h.keep, "size", info.Size, "keep_tail", keepTail)
	}
	return 0
}

// keptAttrs returns the attribute headers a new version that keeps bytes of an old one inherits: mode and
// owner; the modification time is the new version's own.
func keptAttrs(old map[string]string) map[string]string {
	m := map[string]string{}
	for _, k := range []string{metaMode, metaUID, metaGID} {
		if v, ok := old[k]; ok {
			m[k] = v
		}
	}
	return m
}

// ensureWriterLocked creates the upload of an armed handle.
func (h *writeHandle) ensureWriterLocked() {
	if h.w != nil {
		return
	}
	cfg := upload.Config{
		PartSize:    h.f.opts.PartSize,
		Concurrency: h.f.opts.UploadConcurrency,
		Budget:      h.f.budget,
		Log:         h.f.log,
		Panics:      h.f.panics,
	}
	opts := h.f.putOptions(h.name, h.meta)
	if h.keep > 0 {
		h.w = upload.NewFromExisting(h.f.client, h.key, h.base, h.keep, opts, cfg)
	} else {
		h.w = upload.New(h.f.client, h.key, opts, cfg)
	}
	h.f.registerUpload(h)
}

// noteSizeLocked publishes the size Getattr reports while the handle writes.
func (h *writeHandle) noteSizeLocked() {
	var n int64
	if h.w != nil {
		n = h.w.Size()
	} else {
		n = h.keep
	}
	if h.keepTail {
		n = max(n, h.base.Size)
	}
	h.size.Store(n)
}

// setAttrs records attribute headers (s3fs x-amz-meta-mode, -uid, -gid, -mtime) for the version this handle
// writes; they are stored with it, without a request of their own when the upload has not sent its first
// part yet. It reports false when the handle will store no new version (unarmed, completed or released): the
// caller then changes the existing object.
func (h *writeHandle) setAttrs(meta map[string]string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.released || !h.armed || h.err != nil || h.done || h.emptyStored {
		return false
	}
	if h.meta == nil {
		h.meta = map[string]string{}
	}
	maps.Copy(h.meta, meta)
	h.publishAttrsLocked()
	if h.w != nil {
		h.w.SetOptions(h.f.putOptions(h.name, h.meta))
	}
	return true
}

// publishAttrsLocked makes the current attribute headers visible to Getattr.
func (h *writeHandle) publishAttrsLocked() {
	m := maps.Clone(h.meta)
	h.attrs.Store(&m)
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
	case h.w == nil && h.keep > 0 && !h.done:
		// Truncated to a kept prefix and not written: the new version is that prefix.
		h.ensureWriterLocked()
	}
	switch {
	case h.w != nil:
		w := h.w
		err := h.copyTailLocked(ctx)
		var info s3client.ObjectInfo
		if err == nil {
			info, err = w.Close(detached(ctx))
		} else {
			if aerr := w.Abort(detached(ctx)); aerr != nil {
				h.f.log.Error("upload abort failed", "key", h.key, "err", aerr)
			}
		}
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
		opts := h.f.putOptions(h.name, h.meta)
		etag, err := h.f.client.PutObject(detached(ctx), h.key, nil, opts)
		h.node.dropWriter(h)
		if err != nil {
			h.err = err
			return h.f.errno("PutObject", h.key, err)
		}
		h.emptyStored = true
		h.stored(s3client.ObjectInfo{Key: h.key, ETag: etag, ContentType: opts.ContentType, Metadata: opts.Metadata})
		return 0
	}
	h.node.dropWriter(h)
	return 0
}

// copyTailLocked appends the old version's bytes after the written end to the upload, when the handle keeps
// them (a write into the middle of an existing object). The bytes are read with ranged GETs conditional on
// the old version's ETag, so a concurrent change fails the upload instead of splicing two versions.
func (h *writeHandle) copyTailLocked(ctx context.Context) error {
	if !h.keepTail {
		return nil
	}
	end := h.w.Size()
	if end >= h.base.Size {
		return nil
	}
	rctx := detached(ctx)
	body, _, err := h.f.client.GetObject(rctx, h.key, end, h.base.Size-end, h.base.ETag)
	if err != nil {
		return fmt.Errorf("reading the bytes after the written range: %w", err)
	}
	defer body.Close()
	buf := make([]byte, tailChunk)
	for off := end; off < h.base.Size; {
		n, err := io.ReadFull(body, buf[:min(int64(len(buf)), h.base.Size-off)])
		if n > 0 {
			if _, werr := h.w.WriteAt(rctx, buf[:n], off); werr != nil {
				return werr
			}
			off += int64(n)
		}
		if err != nil && off < h.base.Size {
			return fmt.Errorf("reading the bytes after the written range: %w", err)
		}
	}
	return nil
}

// stored records the object a completed upload created.
func (h *writeHandle) stored(info s3client.ObjectInfo) {
	info.Key = h.key
	if info.Metadata == nil {
		info.Metadata = map[string]string{} // stored without headers
	}
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

// truncate handles ftruncate/truncate on the file this handle writes (or would write). Before anything was
// written: 0 arms the handle for a new object; n below the existing object's size arms it to keep the first n
// bytes; the current size changes nothing. While writing: the bytes written so far is accepted (and drops a
// kept tail). Anything else is ENOTSUP: the upload cannot take back bytes it has sent.
func (h *writeHandle) truncate(ctx context.Context, size uint64, current func() (uint64, syscall.Errno)) syscall.Errno {
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
		h.armed = true
		h.node.removeUnarmed(h)
		h.keep, h.keepTail = 0, false
		// The empty object is stored when the handle is flushed; until then the file shows 0 bytes.
		h.emptyStored = false
		h.noteSizeLocked()
		return 0
	case h.armed && int64(size) == h.size.Load():
		return 0
	case h.armed && h.w != nil && int64(size) == h.w.Size():
		h.keepTail = false
		h.noteSizeLocked()
		return 0
	case !h.armed:
		cur, errno := current()
		if errno != 0 {
			return errno
		}
		switch {
		case size == cur:
			return 0
		case size < cur:
			return h.armExistingLocked(ctx, "truncate", int64(size), false)
		}
	}
	return h.f.refuse("truncate", h.key, syscall.ENOTSUP,
		"a file can be truncated to 0 or shortened before writing, or to its current size; not extended")
}
