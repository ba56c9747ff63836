package s3mount

import (
	"context"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// dirNode is a directory: the mount's root, a "dir/" marker object, or a prefix with objects under it.
type dirNode struct {
	fs.Inode
	f *fsys
}

// fileNode is a regular file: one object. It carries the file's write state, so that a lookup, getattr or
// readdir sees a file being written through the mount before (and while) its object exists.
type fileNode struct {
	fs.Inode
	f *fsys

	mu sync.Mutex // guards etag, readers and pending; acquired after an openFile's lock, before fsys.filesMu
	// etag is the version of the object this inode stands for, and so the version of the bytes the kernel's
	// page cache holds for it: set when the inode is made for a listed or HEADed object, or by the first open
	// for reading of an inode made without one (created through the mount). "" until then.
	etag string
	// readers counts the read handles open on the inode; pending is the delete deferred by an unlink while
	// they are (unlinked.go). Both guarded by mu.
	readers int
	pending *pendingDelete
}

// key returns the key prefix of d's children: Options.Prefix for the root, otherwise prefix+path+"/".
// ENOENT when d is no longer reachable from the root.
func (d *dirNode) key() (string, syscall.Errno) {
	p, ok := d.f.relPath(&d.Inode)
	if !ok {
		return "", syscall.ENOENT
	}
	if p == "" {
		return d.f.opts.Prefix, 0
	}
	return d.f.opts.Prefix + p + "/", 0
}

// key returns n's object key; ENOENT when n was unlinked.
func (n *fileNode) key() (string, syscall.Errno) {
	p, ok := n.f.relPath(&n.Inode)
	if !ok || p == "" {
		return "", syscall.ENOENT
	}
	return n.f.opts.Prefix + p, 0
}

// activeWriter returns n's write state when n holds bytes S3 does not have yet (a dirty openFile), or nil.
func (n *fileNode) activeWriter() *openFile {
	if of := n.f.openFileOf(n); of != nil && of.dirty.Load() {
		return of
	}
	return nil
}

// bindETag makes etag the version n stands for when n has none yet, and reports whether n stands for etag.
func (n *fileNode) bindETag(etag string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.etag == "" {
		n.etag = etag
	}
	return n.etag == etag
}

// rebindETag makes etag the version n stands for, whatever it stood for before.
func (n *fileNode) rebindETag(etag string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.etag = etag
}

// replaceableFor reports whether n must give way to a new inode to stand for version etag: it stands for
// another known version and is not open for writing (write state must stay with the name).
func (n *fileNode) replaceableFor(etag string) bool {
	n.mu.Lock()
	differs := etag != "" && n.etag != "" && n.etag != etag
	n.mu.Unlock()
	return differs && n.f.openFileOf(n) == nil
}

// childInode returns the inode of d's child name described by e, and fills out. Inode numbers are allocated
// by go-fuse. The inode the tree already holds for name is reused while its type matches and, for a file,
// while it stands for the same ETag (or holds write state, which stays with the name). A changed type or a
// changed ETag gets a new inode, which the kernel sees as a different file: the kernel's page cache belongs to
// the inode, so handles opened on the old version keep the old inode and its pages, and opens of the new
// version start with an empty page cache. That is what lets Open keep the page cache (FOPEN_KEEP_CACHE).
func (d *dirNode) childInode(ctx context.Context, name string, e statEntry, out *fuse.EntryOut) *fs.Inode {
	link := e.isSymlink()
	switch {
	case e.dir:
		d.f.dirAttr(e.info.Metadata, &out.Attr)
	case link:
		d.f.linkAttr(e.info, &out.Attr)
	default:
		d.f.fileAttr(e.info, &out.Attr)
	}
	if ch := d.GetChild(name); ch != nil {
		switch n := ch.Operations().(type) {
		case *dirNode:
			if e.dir {
				return ch
			}
		case *symlinkNode:
			if link && n.etag == e.info.ETag {
				return ch
			}
		case *fileNode:
			if !e.dir && !link && !n.replaceableFor(e.info.ETag) {
				n.bindETag(e.info.ETag)
				return ch
			}
		}
	}
	if e.dir {
		return d.NewInode(ctx, &dirNode{f: d.f}, fs.StableAttr{Mode: syscall.S_IFDIR})
	}
	if link {
		return d.NewInode(ctx, &symlinkNode{f: d.f, etag: e.info.ETag}, fs.StableAttr{Mode: syscall.S_IFLNK})
	}
	return d.NewInode(ctx, &fileNode{f: d.f, etag: e.info.ETag}, fs.StableAttr{Mode: syscall.S_IFREG})
}
