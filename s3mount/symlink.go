package s3mount

// Symbolic links in s3fs's format: an object whose body is the target and whose x-amz-meta-mode carries
// S_IFLNK, so s3fs and s3mount read each other's. Listings carry no headers, so an object seen only in a
// listing could be a link when it is small enough to hold a target: its first lookup asks S3 for its headers
// (one HEAD per object under maxLinkTarget bytes; larger objects cost none). A link's mode is always 0777;
// its owner and mtime are kept like a file's.

import (
	"context"
	"io"
	"strconv"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/s3ftp/s3ftp/s3client"
)

// maxLinkTarget bounds a link's target: PATH_MAX less the NUL.
const maxLinkTarget = 4095

// symlinkNode is a symbolic link. Its target is read from the object once and kept: the inode stands for one
// version (etag), as a fileNode does.
type symlinkNode struct {
	fs.Inode
	f    *fsys
	etag string
}

// isSymlink reports whether e is a link: a file whose mode header has the S_IFLNK type.
func (e statEntry) isSymlink() bool {
	if e.dir {
		return false
	}
	v, ok := e.info.Metadata[metaMode]
	if !ok {
		return false
	}
	m, err := strconv.ParseUint(v, 10, 32)
	return err == nil && uint32(m)&syscall.S_IFMT == syscall.S_IFLNK
}

// withKind completes a file entry seen only in a listing that is small enough to be a link with its headers
// (one HEAD), so that Lookup gives it the right type.
func (f *fsys) withKind(ctx context.Context, key string, e statEntry) (statEntry, syscall.Errno) {
	if e.dir || e.info.Metadata != nil || e.info.Size > maxLinkTarget {
		return e, 0
	}
	info, err := f.client.HeadObject(ctx, key)
	if err != nil {
		return statEntry{}, f.errno("HeadObject", key, err)
	}
	if info.Metadata == nil {
		info.Metadata = map[string]string{}
	}
	e = statEntry{info: info}
	f.meta.put(key, e)
	return e, 0
}

// linkAttr fills out for a link from its object.
func (f *fsys) linkAttr(info s3client.ObjectInfo, out *fuse.Attr) {
	out.Size = uint64(info.Size)
	out.Blocks = (out.Size + 511) / 512
	out.Nlink = 1
	f.headerAttrs(info.Metadata, syscall.S_IFLNK, info.LastModified, out)
	out.Mode = syscall.S_IFLNK | 0o777
}

// Symlink creates name pointing at target: one PutObject of the target with the link's headers, conditional
// (If-None-Match: *) so a name another host created meanwhile gives EEXIST. ENAMETOOLONG beyond
// maxLinkTarget; EROFS on a read-only mount.
func (d *dirNode) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if d.f.opts.ReadOnly {
		return nil, syscall.EROFS
	}
	if len(target) > maxLinkTarget {
		return nil, syscall.ENAMETOOLONG
	}
	dk, errno := d.key()
	if errno != 0 {
		return nil, errno
	}
	key, errno := childKey(dk, name, false)
	if errno != 0 {
		return nil, errno
	}
	uid, gid := d.f.opts.UID, d.f.opts.GID
	if c, ok := fuse.FromContext(ctx); ok {
		uid, gid = c.Uid, c.Gid
	}
	now := time.Now()
	meta := map[string]string{
		metaMode:  strconv.FormatUint(uint64(syscall.S_IFLNK|0o777), 10),
		metaUID:   strconv.FormatUint(uint64(uid), 10),
		metaGID:   strconv.FormatUint(uint64(gid), 10),
		metaMtime: formatMtime(now),
	}
	opts := s3client.PutOptions{ContentType: "application/octet-stream", Metadata: meta, IfNoneMatch: true}
	etag, err := d.f.client.PutObject(detached(ctx), key, []byte(target), opts)
	if err != nil {
		if uploadErrno(err, true) == syscall.EEXIST {
			return nil, syscall.EEXIST
		}
		return nil, d.f.errno("PutObject", key, err)
	}
	e := statEntry{info: s3client.ObjectInfo{Key: key, ETag: etag, Size: int64(len(target)), LastModified: now,
		ContentType: opts.ContentType, Metadata: meta}}
	d.f.meta.put(key, e)
	return d.childInode(ctx, name, e, out), 0
}

// Readlink returns the link's target: the body of the version the inode stands for (a GET conditional on its
// ETag; ESTALE when the object changed).
func (n *symlinkNode) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	key, errno := n.key()
	if errno != 0 {
		return nil, errno
	}
	body, _, err := n.f.client.GetObject(ctx, key, 0, -1, n.etag)
	if err != nil {
		return nil, n.f.errno("GetObject", key, err)
	}
	defer body.Close()
	target, err := io.ReadAll(io.LimitReader(body, maxLinkTarget+1))
	if err != nil {
		return nil, n.f.errno("GetObject", key, err)
	}
	if len(target) > maxLinkTarget {
		return nil, n.f.refuse("readlink", key, syscall.EIO, "the link object is larger than a target can be")
	}
	return target, 0
}

// Getattr of a link: its object's headers.
func (n *symlinkNode) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	key, errno := n.key()
	if errno != 0 {
		return errno
	}
	e, errno := n.f.stat(ctx, key)
	if errno != 0 {
		return errno
	}
	if e.info.Metadata == nil {
		if e, errno = n.f.withKind(ctx, key, e); errno != 0 {
			return errno
		}
	}
	n.f.linkAttr(e.info, &out.Attr)
	return 0
}

// Setattr of a link (lchown, lutimes: rsync -a, cp -a) stores its owner and mtime; its mode stays 0777.
func (n *symlinkNode) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if n.f.opts.ReadOnly {
		return syscall.EROFS
	}
	key, errno := n.key()
	if errno != 0 {
		return errno
	}
	if meta, ok := attrHeaders(in, syscall.S_IFLNK); ok {
		delete(meta, metaMode)
		if len(meta) > 0 {
			if errno := n.f.setObjectAttrs(ctx, key, meta); errno != 0 {
				return errno
			}
		}
	}
	return n.Getattr(ctx, fh, out)
}

// key returns the link's object key; ENOENT when it was unlinked.
func (n *symlinkNode) key() (string, syscall.Errno) {
	p, ok := n.f.relPath(&n.Inode)
	if !ok || p == "" {
		return "", syscall.ENOENT
	}
	return n.f.opts.Prefix + p, 0
}
