package s3mount

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"

	"github.com/s3ftp/s3ftp/s3client"
)

// Unlink deletes the file's object; EROFS on a read-only mount. A file open for writing through this mount
// becomes unlinked (openfile.go): its upload is aborted and nothing of it is stored, ever; its handles keep
// taking writes until they are closed. A file open for reading loses its name at once and its object at the
// last close (unlinked.go).
func (d *dirNode) Unlink(ctx context.Context, name string) syscall.Errno {
	if d.f.opts.ReadOnly {
		return syscall.EROFS
	}
	dk, errno := d.key()
	if errno != 0 {
		return errno
	}
	key, errno := childKey(dk, name, false)
	if errno != 0 {
		return errno
	}
	if ch := d.GetChild(name); ch != nil {
		if fn, ok := ch.Operations().(*fileNode); ok {
			if of := d.f.openFileOf(fn); of != nil {
				of.mu.Lock()
				of.unlinkedLocked()
				of.mu.Unlock()
			}
			if d.f.deferUnlink(fn, key) {
				d.f.meta.putNegative(key)
				return 0
			}
		}
	}
	if err := d.f.client.DeleteObject(detached(ctx), key); err != nil {
		return d.f.errno("DeleteObject", key, err)
	}
	d.f.meta.putNegative(key)
	d.f.cache.Invalidate(key)
	return 0
}

// Rename moves a file with a server-side copy (CopyObject, or UploadPartCopy parts above 5 GiB), then deletes
// the source; the object keeps its metadata. A directory is moved by copying every object below it, then
// deleting the sources (see renameDir). Neither is atomic. A file being written is committed first (its bytes
// so far become the object that moves; the handles keep writing, and the next commit lands under the new
// name); EBUSY when the target is being written, EISDIR when the target is a directory, EEXIST with RENAME_NOREPLACE when the target exists, EINVAL for RENAME_EXCHANGE.
func (d *dirNode) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if d.f.opts.ReadOnly {
		return syscall.EROFS
	}
	const renameNoreplace, renameExchange = 1, 2
	if flags&renameExchange != 0 {
		return syscall.EINVAL
	}
	np, ok := newParent.(*dirNode)
	if !ok {
		return syscall.EINVAL
	}
	dk, errno := d.key()
	if errno != 0 {
		return errno
	}
	ndk, errno := np.key()
	if errno != 0 {
		return errno
	}
	src, errno := childKey(dk, name, false)
	if errno != 0 {
		return errno
	}
	dst, errno := childKey(ndk, newName, false)
	if errno != 0 {
		return errno
	}
	if ch := d.GetChild(name); ch != nil {
		switch ops := ch.Operations().(type) {
		case *dirNode:
			return d.renameDir(ctx, ops, src, dst, np, newName, flags)
		case *fileNode:
			if of := d.f.openFileOf(ops); of != nil {
				// S3 cannot move an upload in progress: the bytes written so far are committed under the old
				// name, then moved like any object; later writes start a version under the new name.
				if errno := of.commit(ctx, "rename"); errno != 0 {
					return errno
				}
			}
		}
	}
	if ch := np.GetChild(newName); ch != nil {
		if fn, ok := ch.Operations().(*fileNode); ok && fn.activeWriter() != nil {
			return d.f.refuse("rename", dst, syscall.EBUSY, "the target is being written")
		}
	}
	// Fresh metadata: the copy is conditional on this ETag and its size picks the copy method.
	d.f.meta.forget(src)
	se, errno := d.f.stat(ctx, src)
	if errno != 0 {
		return errno
	}
	if se.dir {
		return syscall.EISDIR // the kernel looked the source up as a file; it has become a directory since
	}
	if src == dst {
		return 0
	}
	d.f.meta.forget(dst)
	switch te, errno := d.f.stat(ctx, dst); {
	case errno == 0 && te.dir:
		return syscall.EISDIR
	case errno == 0 && flags&renameNoreplace != 0:
		return syscall.EEXIST
	case errno != 0 && errno != syscall.ENOENT:
		return errno
	}
	if se.info.ETag == "" || se.info.Size > s3client.MaxCopySize {
		// HEAD is authoritative for the ETag (which some listings lack) and the size.
		info, err := d.f.client.HeadObject(ctx, src)
		if err != nil {
			return d.f.errno("HeadObject", src, err)
		}
		se.info = info
	}
	mctx := detached(ctx)
	if _, err := d.f.copier.Copy(mctx, se.info, dst, s3client.PutOptions{}); err != nil {
		return d.f.errno("copy", src+" -> "+dst, err)
	}
	if err := d.f.client.DeleteObject(mctx, src); err != nil {
		return d.f.errno("DeleteObject", src, err)
	}
	d.f.meta.putNegative(src)
	d.f.meta.forget(dst)
	d.f.cache.Invalidate(src)
	d.f.cache.Invalidate(dst)
	if ch := d.GetChild(name); ch != nil {
		if fn, ok := ch.Operations().(*fileNode); ok {
			if of := d.f.openFileOf(fn); of != nil {
				of.objectChanged() // open for writing and clean: its next write session starts from the copy
			}
		}
	}
	return 0
}

// dirRenameConcurrency is how many copies, and then deletes, a directory rename runs at once.
const dirRenameConcurrency = 8

// forEachBounded calls fn(i) for every i in [0, n), at most limit at a time, each in its own goroutine under
// recovery: a panic is logged, counted, and is that call's error (a *safego.PanicError). After the first error
// no further call starts; it waits for the calls running and returns that error.
func (f *fsys) forEachBounded(n, limit int, fn func(i int) error) error {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	sem := make(chan struct{}, limit)
	for i := 0; i < n; i++ {
		mu.Lock()
		stop := firstErr != nil
		mu.Unlock()
		if stop {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := f.panics.Call(f.log, "rename: a copy or delete of a directory rename", func() error { return fn(i) }); err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return firstErr
}

// maxDirRenameKeys bounds the objects a directory rename copies: beyond it the rename is refused with EXDEV
// (mv(1) then copies file by file, showing progress, instead of one request blocking for minutes).
const maxDirRenameKeys = 10000

// renameDir moves the directory whose key prefix is src+"/" to dst+"/": every object below it (its marker
// included) is copied server-side, dirRenameConcurrency at a time, then the sources are deleted, as many at a
// time. If a copy fails, the copies made so far are deleted again and the source is untouched. If a delete
// fails, the target is complete and the sources not yet deleted remain; the rename reports EIO. Errnos: EBUSY while a file below is being written; ENOTDIR when
// the target is a file; ENOTEMPTY when the target is a non-empty directory (an empty one is replaced); EEXIST
// with RENAME_NOREPLACE; EXDEV above maxDirRenameKeys objects.
func (d *dirNode) renameDir(ctx context.Context, dn *dirNode, src, dst string, np *dirNode, newName string, flags uint32) syscall.Errno {
	const renameNoreplace = 1
	if writingBelow(&dn.Inode) {
		return d.f.refuse("rename", src+"/", syscall.EBUSY, "a file in the directory is being written")
	}
	if ch := np.GetChild(newName); ch != nil && writingBelow(ch) {
		return d.f.refuse("rename", dst+"/", syscall.EBUSY, "a file in the target directory is being written")
	}
	d.f.meta.forget(dst)
	te, errno := d.f.stat(ctx, dst)
	switch {
	case errno == 0 && !te.dir:
		return syscall.ENOTDIR
	case errno == 0 && flags&renameNoreplace != 0:
		return syscall.EEXIST
	case errno != 0 && errno != syscall.ENOENT:
		return errno
	}
	var dstKeys []string
	if errno == 0 {
		objs, errno := d.f.listAll(ctx, dst+"/", 2)
		if errno != 0 {
			return errno
		}
		for _, o := range objs {
			if o.Key != dst+"/" {
				return syscall.ENOTEMPTY
			}
			dstKeys = append(dstKeys, o.Key)
		}
	}
	objs, errno := d.f.listAll(ctx, src+"/", maxDirRenameKeys+1)
	if errno != 0 {
		return errno
	}
	if len(objs) > maxDirRenameKeys {
		return d.f.refuse("rename", src+"/", syscall.EXDEV, fmt.Sprintf("more than %d objects to copy", maxDirRenameKeys))
	}
	mctx := detached(ctx)
	copied := make([]string, len(objs)) // "" where no copy was made
	err := d.f.forEachBounded(len(objs), dirRenameConcurrency, func(i int) error {
		to := dst + "/" + strings.TrimPrefix(objs[i].Key, src+"/")
		if _, err := d.f.copier.Copy(mctx, objs[i], to, s3client.PutOptions{}); err != nil {
			return fmt.Errorf("copy %s -> %s: %w", objs[i].Key, to, err)
		}
		copied[i] = to
		return nil
	})
	copied = slices.DeleteFunc(copied, func(k string) bool { return k == "" })
	if err != nil {
		// Undo: the source is complete, so the partial copy goes and the rename fails as a whole.
		// A panic stops the undo; it was logged, and the rename fails anyway.
		_ = d.f.forEachBounded(len(copied), dirRenameConcurrency, func(i int) error {
			if derr := d.f.client.DeleteObject(mctx, copied[i]); derr != nil {
				d.f.log.Error("undoing a failed directory rename failed: the copy stays", "key", copied[i], "err", derr)
			}
			return nil
		})
		return d.f.errno("rename", src+"/ -> "+dst+"/", err)
	}
	// An empty target directory is replaced: its marker goes unless the source brought one of its own.
	for _, k := range dstKeys {
		if !slices.Contains(copied, k) {
			if err := d.f.client.DeleteObject(mctx, k); err != nil {
				return d.f.errno("DeleteObject", k, err)
			}
		}
	}
	// The target is complete from here on; a source that cannot be deleted stays (logged) and the rename
	// reports the failure.
	var delMu sync.Mutex
	var delErr error
	perr := d.f.forEachBounded(len(objs), dirRenameConcurrency, func(i int) error {
		if err := d.f.client.DeleteObject(mctx, objs[i].Key); err != nil {
			d.f.log.Error("rename: the copy is complete but a source could not be deleted: it stays",
				"key", objs[i].Key, "target", dst+"/", "err", err)
			delMu.Lock()
			if delErr == nil {
				delErr = err
			}
			delMu.Unlock()
			return nil
		}
		d.f.meta.putNegative(strings.TrimSuffix(objs[i].Key, "/"))
		d.f.cache.Invalidate(objs[i].Key)
		return nil
	})
	if delErr == nil {
		delErr = perr // a panic: it stopped the deletes
	}
	if delErr != nil {
		d.f.meta.forget(src)
		return d.f.errno("rename (deleting the sources after a complete copy)", src+"/", delErr)
	}
	for _, k := range copied {
		d.f.meta.forget(strings.TrimSuffix(k, "/"))
	}
	d.f.meta.putNegative(src)
	d.f.meta.put(dst, statEntry{dir: true})
	return 0
}

// listAll lists up to limit objects under prefix (no delimiter), paging as needed.
func (f *fsys) listAll(ctx context.Context, prefix string, limit int) ([]s3client.ObjectInfo, syscall.Errno) {
	var objs []s3client.ObjectInfo
	token := ""
	for len(objs) < limit {
		page, err := f.client.List(ctx, prefix, "", token, listPageSize)
		if err != nil {
			return nil, f.errno("List", prefix, err)
		}
		objs = append(objs, page.Objects...)
		if page.NextToken == "" {
			break
		}
		token = page.NextToken
	}
	return objs, 0
}

// writingBelow reports whether a file in the subtree of in that the kernel knows is being written.
func writingBelow(in *fs.Inode) bool {
	for _, ch := range in.Children() {
		switch ops := ch.Operations().(type) {
		case *fileNode:
			if ops.activeWriter() != nil {
				return true
			}
		case *dirNode:
			if writingBelow(ch) {
				return true
			}
		}
	}
	return false
}
