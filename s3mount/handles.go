package s3mount

import (
	"context"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/s3ftp/s3ftp/cache"
	"github.com/s3ftp/s3ftp/s3mount/upload"
)

// readHandle reads one object version: the ETag seen at open. Reads run concurrently under mu's read side;
// Release takes the write side, so no read uses the cache.Reader after it was closed.
type readHandle struct {
	f   *fsys
	key string

	mu       sync.RWMutex
	released bool          // guarded by mu
	r        *cache.Reader // owns the S3 streams; lives as long as the handle, not the request
}

// writeHandle writes one new version of an object through an upload.Writer.
//
// A handle is armed (writes go to S3) when it was created, opened with O_TRUNC, opened on an empty file, or
// truncated to zero: with ftruncate (vsftpd opens O_WRONLY without O_TRUNC and then truncates), or with the
// handle-less SETATTR(size 0) the kernel sends after OPEN for open(O_TRUNC) of an existing file. While it is
// unarmed, writes are refused with ENOTSUP: they would replace an object of which they hold only a part.
//
// An armed handle is its fileNode's writer until its upload is completed: by the first Flush or Fsync after
// writes, which report a failed upload with EIO. A Flush with nothing written stores an empty object and
// lets the handle go; a later write (the shell's "open, dup2, close, write" of a redirection) claims the file
// again and a later Flush stores the data. Release aborts an upload that was never completed.
//
// Lock order: mu, then fileNode.mu, then fsys.uploadsMu.
type writeHandle struct {
	f    *fsys
	node *fileNode
	key  string
	name string // for the Content-Type

	// size is the number of bytes written so far (the writer's Size), read without mu by Getattr.
	size atomic.Int64

	mu          sync.Mutex // serialises writes, flushes and release; guards the fields below
	released    bool
	armed       bool
	w           *upload.Writer // the upload in progress: nil before the first write and once it ended
	done        bool           // an upload with data ended (completed, failed or aborted); later writes fail
	emptyStored bool           // a Flush without writes stored an empty object
	err         error          // sticky failure, reported by every later write, flush and fsync
}

// newWriteHandle returns a handle for key; armed says whether writes may start right away.
func (f *fsys) newWriteHandle(n *fileNode, key, name string, armed bool) *writeHandle {
	return &writeHandle{f: f, node: n, key: key, name: name, armed: armed}
}

// Read refuses reads on a handle open for writing: the object being written is not readable until it is
// complete, and the bytes written so far are in flight to S3, not kept.
func (h *writeHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	return nil, h.f.refuse("read", h.key, syscall.EBADF, "the handle is open for writing (reads are not supported)")
}

// abort discards the upload in progress, if any, with one log line naming the reason. Used by Release without
// a completed upload and by Unmount.
func (h *writeHandle) abort(reason string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.abortLocked(reason)
}

func (h *writeHandle) abortLocked(reason string) {
	if h.w != nil && !h.done {
		if err := h.w.Abort(context.Background()); err != nil {
			h.f.log.Error("upload abort failed", "key", h.key, "reason", reason, "err", err)
		}
		h.f.log.Warn("upload aborted: data written was not stored", "key", h.key, "reason", reason,
			"bytes", h.size.Load())
		h.done = true
		if h.err == nil {
			h.err = upload.ErrAborted
		}
	}
	h.w = nil
	h.node.dropWriter(h)
	h.node.removeUnarmed(h)
	h.f.unregisterUpload(h)
}
