package s3mount

import (
	"context"
	"errors"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/s3ftp/s3ftp/s3client"
)

// stat resolves key (without a trailing "/") to a file or a directory: from the stat cache while fresh,
// otherwise HEAD key and, when there is no such object, a one-key listing of "key/" (a marker or any object
// below makes a directory). A file shadows a directory of the same name. ENOENT is remembered for NegativeTTL.
// Below a small directory that was complete a moment ago (statCache.relistable), one listing of the directory
// answers instead, and the lookups after it cost nothing.
func (f *fsys) stat(ctx context.Context, key string) (statEntry, syscall.Errno) {
	if e, hit, neg := f.meta.get(key); hit {
		return e, 0
	} else if neg {
		return statEntry{}, syscall.ENOENT
	}
	if parent := parentPrefix(key); f.meta.relistable(parent) {
		if _, complete, errno := f.listDir(ctx, parent, 1); errno == 0 && complete {
			if e, hit, neg := f.meta.get(key); hit {
				return e, 0
			} else if neg {
				return statEntry{}, syscall.ENOENT
			}
		}
	}
	info, err := f.client.HeadObject(ctx, key)
	if err == nil {
		if info.Metadata == nil {
			info.Metadata = map[string]string{} // known to have no headers
		}
		e := statEntry{info: info}
		f.meta.put(key, e)
		return e, 0
	}
	if !errors.Is(err, s3client.ErrNotFound) {
		return statEntry{}, f.errno("HeadObject", key, err)
	}
	if len(key)+1 <= maxKeyLen {
		page, err := f.client.List(ctx, key+"/", "", "", 1)
		if err != nil {
			return statEntry{}, f.errno("List", key+"/", err)
		}
		if len(page.Objects) > 0 || len(page.CommonPrefixes) > 0 {
			e := statEntry{dir: true}
			f.meta.put(key, e)
			return e, 0
		}
	}
	f.meta.putNegative(key)
	return statEntry{}, syscall.ENOENT
}

// Lookup finds the child name: a file being written through this mount first (its object may not exist yet),
// then whatever stat finds in S3.
func (d *dirNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	dk, errno := d.key()
	if errno != 0 {
		return nil, errno
	}
	key, errno := childKey(dk, name, false)
	if errno != 0 {
		return nil, errno
	}
	if ch := d.GetChild(name); ch != nil {
		if fn, ok := ch.Operations().(*fileNode); ok && fn.activeWriter() != nil {
			fn.writingAttr(&out.Attr)
			return ch, 0
		}
	}
	e, errno := d.f.stat(ctx, key)
	if errno != 0 {
		return nil, errno
	}
	return d.childInode(ctx, name, e, out), 0
}

// Getattr of a directory answers without S3: directories have no metadata of their own.
func (d *dirNode) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	d.f.dirAttr(&out.Attr)
	return 0
}

// Getattr of a file being written reports the bytes written so far; otherwise the object's attributes from the
// stat cache or a HEAD. ENOENT when the object is gone or became a directory. An inode the name no longer
// leads to (it stood for a version since replaced) answers a getattr through a read handle (fstat, and the
// kernel's size checks while reading) with the version that handle reads.
func (n *fileNode) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if n.writingAttr(&out.Attr) {
		return 0
	}
	key, errno := n.key()
	if errno != 0 {
		if rh, ok := fh.(*readHandle); ok {
			n.f.fileAttr(rh.info, &out.Attr)
			return 0
		}
		return errno
	}
	e, errno := n.f.stat(ctx, key)
	if errno != 0 {
		return errno
	}
	if e.dir {
		return syscall.ENOENT
	}
	n.f.fileAttr(e.info, &out.Attr)
	return 0
}

// writingAttr fills out for a file being written and reports whether it is: size is the file's size so far,
// mode, owner and modification time those set while writing, otherwise the defaults and now.
func (n *fileNode) writingAttr(out *fuse.Attr) bool {
	h := n.activeWriter()
	if h == nil {
		return false
	}
	info := s3client.ObjectInfo{Size: h.size.Load(), LastModified: time.Now()}
	if m := h.attrs.Load(); m != nil {
		info.Metadata = *m
	}
	n.f.fileAttr(info, out)
	return true
}
