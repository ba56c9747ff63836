package s3mount

import (
	"context"
	"errors"
	"strings"
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
		if !e.dir && f.isHidden(key, e.info.ETag) {
			return statEntry{}, syscall.ENOENT
		}
		return f.withMarker(ctx, key, e)
	} else if neg {
		return statEntry{}, syscall.ENOENT
	}
	if parent := parentPrefix(key); f.meta.relistable(parent) {
		if _, complete, errno := f.listDir(ctx, parent, 1); errno == 0 && complete {
			if e, hit, neg := f.meta.get(key); hit {
				return f.withMarker(ctx, key, e)
			} else if neg {
				return statEntry{}, syscall.ENOENT
			}
		}
	}
	info, err := f.client.HeadObject(ctx, key)
	if err == nil && f.isHidden(key, info.ETag) {
		f.meta.putNegative(key)
		return statEntry{}, syscall.ENOENT
	}
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
			if len(page.Objects) > 0 && page.Objects[0].Key == key+"/" {
				return f.withMarker(ctx, key, e) // a marker: its headers
			}
			e.info.Metadata = map[string]string{} // no marker: the defaults
			f.meta.put(key, e)
			return e, 0
		}
	}
	f.meta.putNegative(key)
	return statEntry{}, syscall.ENOENT
}

// withMarker completes a directory entry whose marker headers are unknown (nil Metadata: seen in a listing,
// or a marker found by a listing) with a HEAD of the marker "key/", and caches it. Other entries are
// returned as they are.
func (f *fsys) withMarker(ctx context.Context, key string, e statEntry) (statEntry, syscall.Errno) {
	if !e.dir || e.info.Metadata != nil {
		return e, 0
	}
	info, err := f.client.HeadObject(ctx, key+"/")
	switch {
	case errors.Is(err, s3client.ErrNotFound):
		info = s3client.ObjectInfo{} // an implicit directory (objects below, no marker)
	case err != nil:
		return statEntry{}, f.errno("HeadObject", key+"/", err)
	}
	if info.Metadata == nil {
		info.Metadata = map[string]string{}
	}
	e.info = info
	f.meta.put(key, e)
	return e, 0
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
	if e, errno = d.f.withKind(ctx, key, e); errno != 0 {
		return nil, errno
	}
	return d.childInode(ctx, name, e, out), 0
}

// Getattr of a directory shows its marker's headers (from the stat cache, or a HEAD of "dir/"); the root,
// which has no marker, the mount's defaults.
func (d *dirNode) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if d.IsRoot() {
		d.f.dirAttr(nil, &out.Attr)
		return 0
	}
	dk, errno := d.key()
	if errno != 0 {
		return errno
	}
	e, errno := d.f.stat(ctx, strings.TrimSuffix(dk, "/"))
	if errno != 0 {
		return errno
	}
	if !e.dir {
		return syscall.ENOENT // the name is a file now; the kernel looks it up again
	}
	d.f.dirAttr(e.info.Metadata, &out.Attr)
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
			out.Nlink = 0 // no name leads to it any more
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
