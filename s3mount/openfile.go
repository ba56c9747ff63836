package s3mount

// An openFile is the write state of one file open for writing through this mount, shared by every handle
// open for writing on it. The mount keeps one table of them (fsys.files, by inode). Its states:
//
//	                 write, truncate, create, O_TRUNC
//	      clean ─────────────────────────────────────▶ dirty
//	        ▲                                            │
//	        └──────── commit succeeds ───────────────────┤
//	                                                     │ a part, a write or the commit fails
//	                                                     ▼
//	                                                  failed ── every write, flush and fsync: an errno
//	  clean, dirty ── unlink ──▶ unlinked (the upload is aborted; writes are taken and dropped; nothing is stored)
//	  last release: a dirty file is committed, then the openFile leaves the table.
//
//   - clean: S3 holds what the file shows (base), or the file has no object and shows nothing to store. What a
//     clean file owns: base, the version its next write session starts from.
//   - dirty: the file holds bytes S3 does not have yet. It owns the new version being built: the first keep
//     bytes of base (copied server-side at the commit or when the upload starts), the bytes of w (the upload
//     streaming the writes), then, with keepTail, base's bytes after the end of w. An uncommitted new file is
//     dirty with no w: its commit stores an empty object.
//   - failed: an upload or commit failed; S3 holds the previous version untouched (or nothing, for a new file).
//     The error was logged once with its cause.
//   - unlinked: the name was removed while open for writing.
//
// A commit ends a write session: Writer.Close (after the kept tail), or one PutObject of an empty object. It
// runs (1) at a FLUSH after which the process that opened the handle holds no descriptor open for writing on
// the file (its last close, or any close once it let go), so the closes of forked children, of dup'd
// descriptors and of a shell's several commands writing one redirection never commit while the opener holds
// the file; (2) at a FLUSH of a handle whose opener is unknown; (3) at an fsync; (4) at the last release; (5)
// at a rename of the file, whose bytes so far then move as an object. Writes after a commit start the next
// session: its new version keeps the committed bytes, copied server-side (UploadPartCopy
// from 5 MiB, conditional on the committed ETag), so a commit costs at most the committed size in copies.
//
// A file created with O_EXCL commits with If-None-Match: * until its first commit succeeds: when another host
// created the name meanwhile, the commit fails with EEXIST and nothing is overwritten.
//
// Lock order: openFile.mu, then fileNode.mu, then fsys.filesMu. A writeHandle has no lock of its own.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/s3ftp/s3ftp/s3client"
	"github.com/s3ftp/s3ftp/s3mount/upload"
)

// fileState is the state of an openFile.
type fileState int

const (
	stateClean fileState = iota
	stateDirty
	stateFailed
	stateUnlinked
)

func (s fileState) String() string {
	return [...]string{"clean", "dirty", "failed", "unlinked"}[s]
}

// tailChunk is the size of the reads that copy a kept tail (the bytes of the old version after the last
// written byte) into the new version.
const tailChunk = 1 << 20

// openFile is the write state of one file; see the top of this file.
type openFile struct {
	f    *fsys
	node *fileNode

	// size is the file's size as Getattr reports it while dirty, attrs the attribute headers it reports; both
	// are read without mu. dirty mirrors state == stateDirty for readers without mu (Lookup, Getattr, Open
	// for reading, rename, rmdir).
	size  atomic.Int64
	attrs atomic.Pointer[map[string]string]
	dirty atomic.Bool

	mu      sync.Mutex // guards the fields below
	state   fileState
	handles int  // write handles open on the file
	gone    bool // the last handle was released: the openFile left the table and must not be joined
	// base is the version the next write session starts from: the object as a HEAD or a commit saw it.
	// exists says whether there is one; baseFresh whether base is current (our own commit, or a HEAD of this
	// session), otherwise the next write session asks S3 first.
	base      s3client.ObjectInfo
	exists    bool
	baseFresh bool
	excl      bool              // created with O_EXCL and not committed yet: commit with If-None-Match
	meta      map[string]string // attribute headers (x-amz-meta-*) the next version is stored with
	// The new version of a dirty file: keep bytes of base, then w's bytes, then (keepTail) base's bytes after
	// w's end.
	keep     int64
	keepTail bool
	w        *upload.Writer
	err      error // failed: the first failure
}

// writeHandle is one open(2) for writing: it refers to the file's openFile and remembers which process opened
// it, which the commit rule of Flush asks for.
type writeHandle struct {
	of     *openFile
	opener uint32 // process (thread group) that opened the handle, 0 when unknown
	// released is set by Release; guarded by of.mu.
	released bool
}

// newOpenFile returns the write state of n for a file whose object is base (exists false: none).
func newOpenFile(f *fsys, n *fileNode) *openFile {
	return &openFile{f: f, node: n}
}

// setStateLocked moves of to s.
func (of *openFile) setStateLocked(s fileState) {
	of.state = s
	of.dirty.Store(s == stateDirty)
	if s != stateDirty {
		of.keep, of.keepTail = 0, false
	}
}

// name returns the file's key, or ENOENT when the node is no longer reachable (unlinked, or its directory
// was removed).
func (of *openFile) key() (string, syscall.Errno) { return of.node.key() }

// freshLocked makes of dirty with a new version from scratch (create, O_TRUNC, truncate to 0), dropping an
// upload in progress. The new version keeps base's mode and owner headers.
func (of *openFile) freshLocked(why string) {
	of.dropWriterLocked(why)
	of.meta = keptAttrs(of.meta)
	of.setStateLocked(stateDirty)
	of.keep, of.keepTail = 0, false
	of.publishLocked()
}

// beginLocked starts a write session on a clean file at offset off: the new version keeps base's bytes before
// off, and (tail) those after the written end. A base not known to be current is asked for afresh (HEAD),
// so that the kept bytes are copied conditional on the object's current ETag.
func (of *openFile) beginLocked(ctx context.Context, key string, off int64, tail bool) syscall.Errno {
	if !of.baseFresh {
		info, err := of.f.client.HeadObject(ctx, key)
		switch {
		case errors.Is(err, s3client.ErrNotFound):
			of.base, of.exists = s3client.ObjectInfo{}, false
		case err != nil:
			return of.f.errno("HeadObject", key, err)
		default:
			info.Key = key
			of.base, of.exists = info, true
			of.meta = maps.Clone(info.Metadata)
		}
		of.baseFresh = true
	}
	of.meta = keptAttrs(of.meta)
	of.setStateLocked(stateDirty)
	if of.exists {
		of.keep = min(max(off, 0), of.base.Size)
		of.keepTail = tail && of.base.Size > off
	}
	if of.keep > 0 || of.keepTail {
		of.f.log.Debug("writing into an existing object: its other bytes are kept", "key", key,
			"keep_before", of.keep, "size", of.base.Size, "keep_tail", of.keepTail)
	}
	of.publishLocked()
	return 0
}

// keptAttrs returns the attribute headers a new version of a file inherits from the old one: mode and
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

// putOptionsLocked returns the options the new version is stored with.
func (of *openFile) putOptionsLocked(key string) s3client.PutOptions {
	o := of.f.putOptions(path.Base(key), of.meta)
	o.IfNoneMatch = of.excl
	return o
}

// ensureWriterLocked creates the upload of a dirty file.
func (of *openFile) ensureWriterLocked(key string) {
	if of.w != nil {
		return
	}
	cfg := upload.Config{
		PartSize:    of.f.opts.PartSize,
		Concurrency: of.f.opts.UploadConcurrency,
		Budget:      of.f.budget,
		Log:         of.f.log,
		Aborts:      of.f.aborts,
		Panics:      of.f.panics,
		Checksums:   of.f.opts.Checksums,
		MD5:         of.f.opts.ChecksumMD5,
	}
	opts := of.putOptionsLocked(key)
	if of.keep > 0 {
		src := of.base
		src.Key = key
		of.w = upload.NewFromExisting(of.f.client, key, src, of.keep, opts, cfg)
	} else {
		of.w = upload.New(of.f.client, key, opts, cfg)
	}
}

// write writes data at off through h (FUSE WRITE); EBADF after h's release.
func (of *openFile) write(ctx context.Context, h *writeHandle, data []byte, off int64) (uint32, syscall.Errno) {
	of.mu.Lock()
	defer of.mu.Unlock()
	if h.released {
		return 0, syscall.EBADF
	}
	switch of.state {
	case stateFailed:
		return 0, syscall.EIO
	case stateUnlinked:
		return uint32(len(data)), 0
	}
	if of.w == nil {
		// The path walk is paid once per upload, not per write.
		key, errno := of.key()
		if errno != 0 {
			return 0, errno
		}
		if of.state == stateClean {
			if errno := of.beginLocked(ctx, key, off, true); errno != 0 {
				return 0, errno
			}
		}
		of.ensureWriterLocked(key)
	}
	n, err := of.w.WriteAt(ctx, data, off)
	of.noteSizeLocked()
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
	key, _ := of.key()
	return 0, of.failLocked("write", key, err)
}

// noteSizeLocked publishes the size Getattr reports while the file is dirty.
func (of *openFile) noteSizeLocked() {
	n := of.keep
	if of.w != nil {
		n = of.w.Size()
	}
	if of.keepTail {
		n = max(n, of.base.Size)
	}
	of.size.Store(n)
}

// publishLocked makes the size and attribute headers visible to Getattr.
func (of *openFile) publishLocked() {
	m := maps.Clone(of.meta)
	of.attrs.Store(&m)
	of.noteSizeLocked()
}

// commitLocked stores the new version of a dirty file (op names the caller for the log: flush, fsync,
// release). A clean or unlinked file has nothing to store; a failed one answers its errno again.
func (of *openFile) commitLocked(ctx context.Context, op string) syscall.Errno {
	switch of.state {
	case stateClean, stateUnlinked:
		return 0
	case stateFailed:
		return of.failedErrnoLocked()
	}
	key, errno := of.key()
	if errno != 0 {
		return of.failLocked(op, "", fmt.Errorf("the file has no name any more: %w", syscall.ENOENT))
	}
	cctx := detached(ctx)
	var info s3client.ObjectInfo
	var err error
	if of.w == nil && of.keep > 0 {
		// Truncated to a kept prefix and not written: the new version is that prefix.
		of.ensureWriterLocked(key)
	}
	var sums upload.Checksums
	var haveSums bool // what this version was stored with, so that reading its checksums costs no request
	if of.w != nil {
		if err = of.copyTailLocked(cctx); err == nil {
			info, err = of.w.Close(cctx)
			sums, haveSums = of.w.Checksums()
		}
	} else {
		opts := of.putOptionsLocked(key)
		var etag string
		etag, err = of.f.client.PutObject(cctx, key, nil, opts)
		info = s3client.ObjectInfo{ETag: etag, ContentType: opts.ContentType, Metadata: opts.Metadata}
	}
	if err != nil {
		return of.failLocked(op, key, err)
	}
	of.w = nil
	info.Key = key
	if info.Metadata == nil {
		info.Metadata = map[string]string{} // stored without headers
	}
	if info.LastModified.IsZero() {
		info.LastModified = time.Now()
	}
	of.base, of.exists, of.baseFresh, of.excl = info, true, true, false
	of.meta = maps.Clone(info.Metadata)
	of.setStateLocked(stateClean)
	of.publishLocked()
	of.f.cache.Invalidate(key)
	of.f.meta.put(key, statEntry{info: info})
	of.f.meta.putSums(key, info.ETag, sums, haveSums)
	of.node.rebindETag(info.ETag)
	return 0
}

// commit stores what a dirty file holds (commitLocked) under of.mu; op names the caller for the log.
func (of *openFile) commit(ctx context.Context, op string) syscall.Errno {
	of.mu.Lock()
	defer of.mu.Unlock()
	return of.commitLocked(ctx, op)
}

// copyTailLocked appends the old version's bytes after the written end to the upload, when the session keeps
// them (a write into the middle of an existing object). The bytes are read with a ranged GET conditional on
// the old version's ETag, so a concurrent change fails the upload instead of splicing two versions.
func (of *openFile) copyTailLocked(ctx context.Context) error {
	if !of.keepTail {
		return nil
	}
	end := of.w.Size()
	if end >= of.base.Size {
		return nil
	}
	body, _, err := of.f.client.GetObject(ctx, of.base.Key, end, of.base.Size-end, of.base.ETag)
	if err != nil {
		return fmt.Errorf("reading the bytes after the written range: %w", err)
	}
	defer body.Close()
	buf := make([]byte, tailChunk)
	for off := end; off < of.base.Size; {
		n, err := io.ReadFull(body, buf[:min(int64(len(buf)), of.base.Size-off)])
		if n > 0 {
			if _, werr := of.w.WriteAt(ctx, buf[:n], off); werr != nil {
				return werr
			}
			off += int64(n)
		}
		if err != nil && off < of.base.Size {
			return fmt.Errorf("reading the bytes after the written range: %w", err)
		}
	}
	return nil
}

// failLocked moves a dirty file to failed: the upload is aborted (nothing is stored), the cause logged once,
// and the errno for it returned.
func (of *openFile) failLocked(op, key string, err error) syscall.Errno {
	of.dropWriterLocked("")
	of.err = err
	of.setStateLocked(stateFailed)
	of.size.Store(of.base.Size)
	e := uploadErrno(err, of.excl)
	of.f.log.Error("upload failed: the file was not stored", "op", op, "key", key, "errno", e.Error(), "err", err)
	return e
}

// failedErrnoLocked is what a flush or fsync of a failed file answers: EEXIST when an O_EXCL create lost to
// another host, EIO otherwise (the file was not stored; the write that failed got the precise errno).
func (of *openFile) failedErrnoLocked() syscall.Errno {
	if e := uploadErrno(of.err, of.excl); e == syscall.EEXIST {
		return e
	}
	return syscall.EIO
}

// dropWriterLocked aborts the upload in progress, if any; why, when not empty, is logged.
func (of *openFile) dropWriterLocked(why string) {
	if of.w == nil {
		return
	}
	if err := of.w.Abort(context.Background()); err != nil {
		of.f.log.Error("upload abort failed", "key", of.base.Key, "err", err)
	}
	if why != "" {
		of.f.log.Warn("upload aborted: data written was not stored", "reason", why, "bytes", of.w.Size())
	}
	of.w = nil
}

// unlinkedLocked records that the file's name was removed: the upload is aborted and nothing will be stored.
func (of *openFile) unlinkedLocked() {
	of.dropWriterLocked("")
	of.setStateLocked(stateUnlinked)
}

// abort ends the write session without storing it (unmount): the file becomes failed.
func (of *openFile) abort(reason string) {
	of.mu.Lock()
	defer of.mu.Unlock()
	if of.state != stateDirty {
		return
	}
	key, _ := of.key()
	if of.w != nil {
		of.f.log.Warn("upload aborted: data written was not stored", "key", key, "reason", reason,
			"bytes", of.w.Size())
	}
	of.dropWriterLocked("")
	of.err = upload.ErrAborted
	of.setStateLocked(stateFailed)
}

// setAttrs records attribute headers (s3fs x-amz-meta-mode, -uid, -gid, -mtime) for the new version of a
// dirty file, stored with it (Writer.SetOptions: no request of its own when the upload has not started). It
// reports false when the file is not dirty: the caller changes the object itself.
func (of *openFile) setAttrs(meta map[string]string) bool {
	of.mu.Lock()
	defer of.mu.Unlock()
	if of.state != stateDirty {
		return false
	}
	of.meta = mergeHeaders(of.meta, meta)
	of.publishLocked()
	if of.w != nil {
		key, _ := of.key()
		of.w.SetOptions(of.putOptionsLocked(key))
	}
	return true
}

// objectChanged tells a clean file that its object was changed by the mount outside a write session (a
// metadata copy, a rename): the next session asks S3 for it afresh.
func (of *openFile) objectChanged() {
	of.mu.Lock()
	defer of.mu.Unlock()
	of.baseFresh = false
}

// truncate handles ftruncate/truncate of an open file. 0 starts a new version from scratch (an upload in
// progress is dropped); the current size changes nothing; while writing, the bytes written so far drop a
// kept tail; on a clean file a smaller size starts a version with that many of its first bytes. A larger size
// appends zeros (extendLocked). Shortening a file whose upload has sent more is ENOTSUP: it cannot take back
// bytes it has sent.
func (of *openFile) truncate(ctx context.Context, size uint64) syscall.Errno {
	of.mu.Lock()
	defer of.mu.Unlock()
	key, _ := of.key()
	switch of.state {
	case stateFailed:
		return syscall.EIO
	case stateUnlinked:
		return 0
	}
	switch {
	case size == 0:
		of.freshLocked("")
		return 0
	case of.state == stateDirty && int64(size) == of.size.Load():
		return 0
	case of.state == stateDirty && of.w != nil && int64(size) == of.w.Size():
		of.keepTail = false
		of.noteSizeLocked()
		return 0
	case of.state == stateClean:
		if errno := of.beginLocked(ctx, key, int64(size), false); errno != 0 {
			return errno
		}
		if of.exists && int64(size) < of.base.Size {
			return 0
		}
		if of.exists && int64(size) == of.base.Size {
			of.setStateLocked(stateClean)
			return 0
		}
	}
	if int64(size) > of.size.Load() {
		return of.extendLocked(ctx, key, int64(size))
	}
	return of.f.refuse("truncate", key, syscall.ENOTSUP,
		"a file being written can be truncated to 0, to its current size or to the bytes written so far, or extended")
}

// extendLocked grows a dirty file to size (truncate to a larger size): the new version holds every byte it
// had, then zeros, uploaded like written bytes. A kept tail is copied first, as it comes before the zeros.
func (of *openFile) extendLocked(ctx context.Context, key string, size int64) syscall.Errno {
	if of.state == stateClean {
		if errno := of.beginLocked(ctx, key, of.base.Size, false); errno != 0 {
			return errno
		}
	}
	of.ensureWriterLocked(key)
	err := of.copyTailLocked(ctx)
	if err == nil {
		of.keepTail = false
		err = of.w.Extend(ctx, size)
	}
	of.noteSizeLocked()
	if err != nil {
		return of.failLocked("truncate", key, err)
	}
	return 0
}

// openWrite opens n for writing on behalf of process opener: it joins the file's openFile, or makes one.
// init prepares a new openFile (its state and base), with of.mu held. A file another process is writing
// (dirty) or whose write failed gives EBUSY.
func (f *fsys) openWrite(n *fileNode, opener uint32, init func(of *openFile) syscall.Errno, join func(of *openFile) syscall.Errno) (*writeHandle, syscall.Errno) {
	for {
		f.filesMu.Lock()
		of := f.files[n]
		if of == nil {
			of = newOpenFile(f, n)
			of.mu.Lock()
			f.files[n] = of
			f.filesMu.Unlock()
			if errno := init(of); errno != 0 {
				of.leaveLocked()
				of.mu.Unlock()
				return nil, errno
			}
			of.handles++
			of.mu.Unlock()
			return &writeHandle{of: of, opener: opener}, 0
		}
		f.filesMu.Unlock()
		of.mu.Lock()
		if of.gone {
			of.mu.Unlock()
			continue
		}
		if of.state == stateDirty || of.state == stateFailed {
			of.mu.Unlock()
			key, _ := n.key()
			return nil, f.refuse("open", key, syscall.EBUSY, "another process is writing the file")
		}
		if errno := join(of); errno != 0 {
			of.mu.Unlock()
			return nil, errno
		}
		of.handles++
		of.mu.Unlock()
		return &writeHandle{of: of, opener: opener}, 0
	}
}

// leaveLocked takes of out of the mount's table.
func (of *openFile) leaveLocked() {
	of.gone = true
	of.f.filesMu.Lock()
	if of.f.files[of.node] == of {
		delete(of.f.files, of.node)
	}
	of.f.filesMu.Unlock()
}

// openFileOf returns n's openFile, nil when n is not open for writing.
func (f *fsys) openFileOf(n *fileNode) *openFile {
	f.filesMu.Lock()
	defer f.filesMu.Unlock()
	return f.files[n]
}

// abortWrites ends every write session still open (unmount), with one log line each naming the key and why.
func (f *fsys) abortWrites(reason string) {
	f.filesMu.Lock()
	ofs := make([]*openFile, 0, len(f.files))
	for _, of := range f.files {
		ofs = append(ofs, of)
	}
	f.filesMu.Unlock()
	for _, of := range ofs {
		of.abort(reason)
	}
}

// procScanWait bounds how long a FLUSH waits for the opener's fd table. Reading /proc/<pid>/fd of a process
// blocks while that process is in execve(2), and execve closes its close-on-exec descriptors (sending this very
// FLUSH) before it lets go: waiting longer would deadlock the exec.
const procScanWait = 100 * time.Millisecond

// commitsOnFlush applies the commit rule of a FLUSH sent through h (see the top of this file): true when the
// handle's opener is unknown, or no longer holds a descriptor open for writing on the file. The caller's own
// fd table is never read: a FLUSH sent while a process execs (a forked child closing inherited close-on-exec
// descriptors) comes from a process /proc cannot answer for until the FLUSH is answered. When the opener's
// table does not answer within procScanWait, the opener itself is in execve, closing its close-on-exec
// descriptors: the flush commits if it comes from the opener.
func (h *writeHandle) commitsOnFlush(ctx context.Context) bool {
	file, ok := h.of.f.fileOnMount(h.of.node)
	if h.opener == 0 || !ok {
		return true
	}
	held := make(chan bool, 1)
	go func() { held <- holdsForWrite(h.opener, file) }()
	select {
	case holds := <-held:
		return !holds
	case <-time.After(procScanWait):
		// The opener's table did not answer: the opener may be in execve (its FLUSH then comes from its only
		// thread, whose ID is the process's), or the machine is slow. Commit when the FLUSH comes from the
		// opener's process, asked of /proc/<tid>/status, which an execve does not hold up.
		c, ok := fuse.FromContext(ctx)
		if !ok {
			return false
		}
		if c.Pid == h.opener {
			return true
		}
		group := make(chan uint32, 1)
		go func() { group <- threadGroup(c.Pid) }()
		select {
		case g := <-group:
			return g == h.opener
		case <-time.After(procScanWait):
			return false
		}
	}
}
