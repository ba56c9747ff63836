package s3mount

import (
	"context"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/s3ftp/s3ftp/s3mount/s3client"
)

// Setattr of a file. Size: through a write handle (or on a file being written, or to 0 on a file with a write
// handle waiting for a truncation), see writeHandle.truncate; otherwise truncate to 0 stores an empty object and truncate to the current size does nothing; other
// sizes are ENOTSUP. Mode, owner and times are accepted and not stored (objects keep what they were written
// with). EROFS on a read-only mount.
func (n *fileNode) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if n.f.opts.ReadOnly {
		return syscall.EROFS
	}
	key, errno := n.key()
	if errno != 0 {
		return errno
	}
	if size, ok := in.GetSize(); ok {
		current := func() (uint64, syscall.Errno) {
			e, errno := n.f.stat(ctx, key)
			if errno != 0 {
				return 0, errno
			}
			if e.dir {
				return 0, syscall.EISDIR
			}
			return uint64(e.info.Size), 0
		}
		h, _ := fh.(*writeHandle)
		if h == nil {
			h = n.activeWriter()
		}
		if h == nil && size == 0 {
			// open(O_TRUNC) of an existing file: OPEN without O_TRUNC, then this SETATTR without a handle.
			h = n.newestUnarmed()
		}
		if h != nil {
			if errno := h.truncate(size, current); errno != 0 {
				return errno
			}
		} else if errno := n.truncateObject(ctx, key, size, current); errno != 0 {
			return errno
		}
	}
	return n.Getattr(ctx, fh, out)
}

// truncateObject truncates the object of a file nobody writes.
func (n *fileNode) truncateObject(ctx context.Context, key string, size uint64, current func() (uint64, syscall.Errno)) syscall.Errno {
	cur, errno := current()
	if errno != 0 {
		return errno
	}
	switch {
	case size == cur:
		return 0
	case size != 0:
		return n.f.refuse("truncate", key, syscall.ENOTSUP, "only truncation to 0 or to the current size is supported")
	}
	name, _ := n.Parent()
	opts := n.f.putOptions(name)
	etag, err := n.f.client.PutObject(detached(ctx), key, nil, opts)
	if err != nil {
		return n.f.errno("PutObject", key, err)
	}
	n.f.cache.Invalidate(key)
	n.f.meta.put(key, statEntry{info: s3client.ObjectInfo{Key: key, ETag: etag, ContentType: opts.ContentType,
		LastModified: time.Now()}})
	return 0
}

// Setattr of a directory accepts mode, owner and time changes without storing them: directories have no
// metadata of their own. EROFS on a read-only mount.
func (d *dirNode) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if d.f.opts.ReadOnly {
		return syscall.EROFS
	}
	if _, ok := in.GetSize(); ok {
		return syscall.EISDIR
	}
	d.f.dirAttr(&out.Attr)
	return 0
}
