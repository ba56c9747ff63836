package s3mount

import (
	"context"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/s3ftp/s3ftp/cache"
	"github.com/s3ftp/s3ftp/s3client"
	"github.com/s3ftp/s3ftp/s3mount/upload"
)

// readHandle reads one object version: the ETag seen at open. Reads run concurrently under mu's read side;
// Release takes the write side, so no read uses the cache.Reader after it was closed.
type readHandle struct {
	f    *fsys
	key  string
	info s3client.ObjectInfo // the version read, as seen at open; immutable

	mu       sync.RWMutex
	released bool          // guarded by mu
	r        *cache.Reader // owns the S3 streams; lives as long as the handle, not the request

	failMu sync.Mutex    // a leaf, taken under mu's read side
	failed []failedRange // guarded by failMu: reads that failed on an unreachable S3 (handle_read.go)
	// lastFail is the time (UnixNano) of the newest entry of failed, 0 before the first: a read long after it
	// skips failMu.
	lastFail atomic.Int64
}

// writeHandle writes one new version of an object through an upload.Writer.
//
// A handle is armed (it is the file's writer and its writes go to S3) when it was created, opened with
// O_TRUNC, opened on an empty file, truncated, or first written. Until then it is unarmed: an open that may
// never write (touch, a program that only sets times) changes nothing. How the new version starts depends on
// what armed the handle:
//
//   - creation, O_TRUNC, an empty file, or a truncation to 0 (ftruncate after open, as vsftpd does; or the
//     handle-less SETATTR(size 0) the kernel sends after OPEN for open(O_TRUNC) of an existing file): a new
//     object from scratch;
//   - a truncation to n bytes: the first n bytes of the existing object (base), then the writes;
//   - a first write at offset off (O_APPEND, FTP's APPE and REST+STOR, dd conv=notrunc): the first off bytes of
//     base, the writes, and at completion the bytes of base after the last written byte (keepTail), as on a
//     local disk. Kept bytes are copied server-side (upload.NewFromExisting), conditional on base's ETag.
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

	// size is the file's size as Getattr reports it while the handle writes (the writer's Size, or base's
	// size while a kept tail extends past it), read without mu.
	size atomic.Int64
	// attrs is a copy of meta, read without mu by Getattr.
	attrs atomic.Pointer[map[string]string]

	mu       sync.Mutex // serialises writes, flushes and release; guards the fields below
	released bool
	armed    bool
	// base is the existing object as a HEAD saw it when the handle was armed by a write or truncation (zero
	// otherwise); keep is how many of its first bytes the new version starts with, keepTail whether its bytes
	// after the written end follow.
	base        s3client.ObjectInfo
	keep        int64
	keepTail    bool
	meta        map[string]string // attribute headers (s3fs x-amz-meta-*) the new version is stored with
	w           *upload.Writer    // the upload in progress: nil before the first write and once it ended
	done        bool              // an upload with data ended (completed, failed or aborted); later writes fail
	emptyStored bool              // a Flush without writes stored an empty object
	err         error             // sticky failure, reported by every later write, flush and fsync
}

// newWriteHandle returns a handle for key; armed says whether writes start a new object right away.
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
