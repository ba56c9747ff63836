package s3mount

import (
	"context"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// The FUSE methods of a handle open for writing. Each one acts on the file's openFile (openfile.go), which
// holds the write session every handle on the file shares.

// Write streams data into the file's new version (see openFile). The first write of a clean file starts a
// write session that keeps the existing object's bytes before off and after the written range. Errnos: EBADF
// after release; EIO once the session failed (a failed part fails the next write); EINVAL for a write the
// upload cannot place (not sequential), which also fails the session so that no object with a hole is
// stored; EFBIG past the largest object the part schedule allows; EINTR when interrupted before any byte was
// accepted. Writes to a file unlinked while open are accepted and dropped.
func (h *writeHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	return h.of.write(ctx, h, data, off)
}

// Flush is close(2) on one descriptor of the handle (it runs once per descriptor, dup'd and inherited ones
// included). It commits a dirty file by the rule at the top of openfile.go: only the last close of the file's
// opener (or of whoever holds it after the opener let go) commits; the closes of forked children and of
// duplicates do not. A commit's failure is EIO (EEXIST for a lost O_EXCL race), with a log line naming the key
// and the cause, and every later Flush answers the same. The commit runs on a detached context: an
// interrupted close still completes it.
func (h *writeHandle) Flush(ctx context.Context) syscall.Errno {
	of := h.of
	commit := of.dirty.Load() && h.commitsOnFlush(ctx)
	of.mu.Lock()
	defer of.mu.Unlock()
	switch {
	case h.released:
		return 0
	case of.state == stateFailed:
		return of.failedErrnoLocked()
	case !commit:
		return 0
	}
	return of.commitLocked(ctx, "flush")
}

// Fsync commits the file's new version whoever calls it: S3 has no durable partial object, so fsync stores
// the bytes written so far as the object. Writes may continue; the next commit keeps the committed bytes.
func (h *writeHandle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	of := h.of
	of.mu.Lock()
	defer of.mu.Unlock()
	if h.released {
		return syscall.EBADF
	}
	return of.commitLocked(ctx, "fsync")
}

// Release ends the handle. The kernel ignores its result and sends it after close(2) returned; the last
// release of a file commits what no flush committed (its failure is logged), then the file leaves the mount's
// table of open files.
func (h *writeHandle) Release(ctx context.Context) syscall.Errno {
	of := h.of
	of.mu.Lock()
	defer of.mu.Unlock()
	if h.released {
		return 0
	}
	h.released = true
	of.handles--
	if of.handles > 0 {
		return 0
	}
	if of.state == stateDirty {
		of.commitLocked(ctx, "release")
	}
	of.leaveLocked()
	return 0
}

// Read refuses reads on a handle open for writing: the bytes written so far are in flight to S3, not kept.
func (h *writeHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	key, _ := h.of.key()
	return nil, h.of.f.refuse("read", key, syscall.EBADF, "the handle is open for writing (reads are not supported)")
}
