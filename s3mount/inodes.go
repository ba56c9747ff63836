package s3mount

import (
	"context"
	"slices"
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

	mu     sync.Mutex   // guards writer, unarmed and etag; acquired after a handle's lock, before fsys.uploadsMu
	writer *writeHandle // the one handle writing this file, nil when none (readers-or-one-writer)
	// etag is the version of the object this inode stands for, and so the version of the bytes the kernel's
	// page cache holds for it: set when the inode is made for a listed or HEADed object, or by the first open
	// for reading of an inode made without one (created through the mount). "" until then.
	etag string
	// unarmed are the open write handles waiting for a truncation to 0, oldest first. The kernel turns
	// open(O_TRUNC) of an existing file into OPEN without O_TRUNC followed by SETATTR(size 0) without a file
	// handle; that SETATTR arms the newest of them.
	unarmed []*writeHandle
}

// addUnarmed records h as waiting for a truncation.
func (n *fileNode) addUnarmed(h *writeHandle) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.unarmed = append(n.unarmed, h)
}

// removeUnarmed forgets h (armed or released).
func (n *fileNode) removeUnarmed(h *writeHandle) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.unarmed = slices.DeleteFunc(n.unarmed, func(x *writeHandle) bool { return x == h })
}

// newestUnarmed returns the most recently opened handle waiting for a truncation, or nil.
func (n *fileNode) newestUnarmed() *writeHandle {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.unarmed) == 0 {
		return nil
	}
	return n.unarmed[len(n.unarmed)-1]
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

// activeWriter returns the handle writing n, or nil.
func (n *fileNode) activeWriter() *writeHandle {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.writer
}

// claimWriter makes h n's writer; EBUSY when another handle writes n.
func (n *fileNode) claimWriter(h *writeHandle) syscall.Errno {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.writer != nil && n.writer != h {
		return syscall.EBUSY
	}
	n.writer = h
	return 0
}

// dropWriter clears n's writer if it is h.
func (n *fileNode) dropWriter(h *writeHandle) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.writer == h {
		n.writer = nil
	}
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
// another known version and holds no write state (a writer or handles waiting for a truncation), which must
// stay with the name.
func (n *fileNode) replaceableFor(etag string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return etag != "" && n.etag != "" && n.etag != etag && n.writer == nil && len(n.unarmed) == 0
}

// childInode returns the inode of d's child name described by e, and fills out. Inode numbers are allocated
// by go-fuse. The inode the tree already holds for name is reused while its type matches and, for a file,
// while it stands for the same ETag (or holds write state, which stays with the name). A changed type or a
// changed ETag gets a new inode, which the kernel sees as a different file: the kernel's page cache belongs to
// the inode, so handles opened on the old version keep the old inode and its pages, and opens of the new
// version start with an empty page cache. That is what lets Open keep the page cache (FOPEN_KEEP_CACHE).
func (d *dirNode) childInode(ctx context.Context, name string, e statEntry, out *fuse.EntryOut) *fs.Inode {
	if e.dir {
		d.f.dirAttr(&out.Attr)
	} else {
		d.f.fileAttr(e.info, &out.Attr)
	}
	if ch := d.GetChild(name); ch != nil {
		switch n := ch.Operations().(type) {
		case *dirNode:
			if e.dir {
				return ch
			}
		case *fileNode:
			if !e.dir && !n.replaceableFor(e.info.ETag) {
				n.bindETag(e.info.ETag)
				return ch
			}
		}
	}
	if e.dir {
		return d.NewInode(ctx, &dirNode{f: d.f}, fs.StableAttr{Mode: syscall.S_IFDIR})
	}
	return d.NewInode(ctx, &fileNode{f: d.f, etag: e.info.ETag}, fs.StableAttr{Mode: syscall.S_IFREG})
}
