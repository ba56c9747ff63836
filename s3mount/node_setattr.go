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
	"github.com/s3ftp/s3ftp/s3mount/upload"
)

// Setattr of a file. EROFS on a read-only mount.
//
// Size: on a file open for writing (through the handle passed, or for the handle-less SETATTR(size 0) the
// kernel sends after OPEN for open(O_TRUNC) of an existing file, through the mount's table), see
// openFile.truncate. Otherwise: 0 stores an empty object, a smaller size stores the object's first bytes
// (server-side copy), the current size does nothing, and growing is ENOTSUP.
//
// Mode, owner and modification time are stored as s3fs's headers (x-amz-meta-mode, -uid, -gid, -mtime): on a
// file with uncommitted writes they go with its new version (openFile.setAttrs); otherwise the object is
// copied onto itself with the new headers (upload.Copier), unless they are already what the object has.
// Access and change times are accepted and not stored.
func (n *fileNode) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if n.f.opts.ReadOnly {
		return syscall.EROFS
	}
	key, errno := n.key()
	if errno != 0 {
		return errno
	}
	var of *openFile
	if h, ok := fh.(*writeHandle); ok {
		of = h.of
	} else {
		of = n.f.openFileOf(n)
	}
	if size, ok := in.GetSize(); ok {
		if of != nil {
			if errno := of.truncate(ctx, size); errno != 0 {
				return errno
			}
		} else if errno := n.truncateObject(ctx, key, size); errno != 0 {
			return errno
		}
	}
	if meta, ok := attrHeaders(in, syscall.S_IFREG); ok {
		if of == nil || !of.setAttrs(meta) {
			if errno := n.f.setObjectAttrs(ctx, key, meta); errno != 0 {
				return errno
			}
			if of != nil {
				of.objectChanged()
			}
		}
	}
	return n.Getattr(ctx, fh, out)
}

// truncateObject truncates the object of a file nobody writes: to 0 with an empty PutObject; shorter or longer
// with a new version that keeps the first bytes server-side, extended with zeros (S3 has no holes, so they
// are uploaded).
func (n *fileNode) truncateObject(ctx context.Context, key string, size uint64) syscall.Errno {
	e, errno := n.f.stat(ctx, key)
	if errno != 0 {
		return errno
	}
	if e.dir {
		return syscall.EISDIR
	}
	cur := uint64(e.info.Size)
	if size == cur {
		return 0
	}
	name, _ := n.Parent()
	mctx := detached(ctx)
	if size == 0 {
		opts := n.f.putOptions(name, nil)
		etag, err := n.f.client.PutObject(mctx, key, nil, opts)
		if err != nil {
			return n.f.errno("PutObject", key, err)
		}
		n.f.cache.Invalidate(key)
		n.f.meta.put(key, statEntry{info: s3client.ObjectInfo{Key: key, ETag: etag, ContentType: opts.ContentType,
			LastModified: time.Now(), Metadata: map[string]string{}}})
		return 0
	}
	// A new version made of the first min(size, cur) bytes, copied server-side (fetched when under 5 MiB),
	// then, to extend, zeros up to size.
	src, err := n.f.client.HeadObject(ctx, key)
	if err != nil {
		return n.f.errno("HeadObject", key, err)
	}
	src.Key = key
	w := upload.NewFromExisting(n.f.client, key, src, min(int64(size), src.Size), n.f.putOptions(name, keptAttrs(src.Metadata)),
		upload.Config{PartSize: n.f.opts.PartSize, Concurrency: n.f.opts.UploadConcurrency, Budget: n.f.budget, Log: n.f.log,
			Aborts: n.f.aborts, Panics: n.f.panics, Checksums: n.f.opts.Checksums, MD5: n.f.opts.ChecksumMD5})
	if err := w.Extend(mctx, int64(size)); err != nil {
		w.Abort(context.Background())
		return n.f.errno("truncate", key, err)
	}
	info, err := w.Close(mctx)
	if err != nil {
		return n.f.errno("truncate", key, err)
	}
	n.f.cache.Invalidate(key)
	n.f.meta.put(key, statEntry{info: info})
	return 0
}

// setObjectAttrs stores attribute headers on the object key, which nobody writes through this mount (an empty
// value removes the header): a HEAD for its current headers, then, when meta changes them, a copy of the object onto itself that replaces its
// metadata (content type kept).
func (f *fsys) setObjectAttrs(ctx context.Context, key string, meta map[string]string) syscall.Errno {
	info, err := f.client.HeadObject(ctx, key)
	if err != nil {
		return f.errno("HeadObject", key, err)
	}
	info.Key = key
	merged := mergeHeaders(info.Metadata, meta)
	if sameHeaders(merged, info.Metadata) {
		f.meta.put(key, statEntry{info: info})
		return 0
	}
	opts := s3client.PutOptions{ContentType: info.ContentType, Metadata: merged, ReplaceMetadata: true}
	etag, err := f.copier.Copy(detached(ctx), info, key, opts)
	if err != nil {
		return f.errno("CopyObject", key, err)
	}
	info.ETag = etag
	info.Metadata = merged
	info.LastModified = time.Now()
	f.cache.Invalidate(key)
	f.meta.put(key, statEntry{info: info})
	return 0
}

// Setattr of a directory stores mode, owner and modification time on its marker "dir/" in s3fs's format (a
// copy of the marker onto itself with the headers replaced, or a new marker for a directory that had none).
// The root has no marker: its changes are accepted and not stored. EISDIR for a size; EROFS on a read-only
// mount.
func (d *dirNode) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if d.f.opts.ReadOnly {
		return syscall.EROFS
	}
	if _, ok := in.GetSize(); ok {
		return syscall.EISDIR
	}
	if meta, ok := attrHeaders(in, syscall.S_IFDIR); ok && !d.IsRoot() {
		dk, errno := d.key()
		if errno != 0 {
			return errno
		}
		if errno := d.f.setDirAttrs(ctx, strings.TrimSuffix(dk, "/"), meta); errno != 0 {
			return errno
		}
	}
	return d.Getattr(ctx, fh, out)
}

// setDirAttrs merges meta into the headers of key's marker (key+"/"): a copy of the marker onto itself with
// its metadata replaced, nothing when they are unchanged, a new empty marker when there is none.
func (f *fsys) setDirAttrs(ctx context.Context, key string, meta map[string]string) syscall.Errno {
	marker := key + "/"
	info, err := f.client.HeadObject(ctx, marker)
	switch {
	case errors.Is(err, s3client.ErrNotFound):
		info = s3client.ObjectInfo{Key: marker, ContentType: dirContentType}
	case err != nil:
		return f.errno("HeadObject", marker, err)
	}
	merged := mergeHeaders(info.Metadata, meta)
	if info.ETag != "" && sameHeaders(merged, info.Metadata) {
		f.meta.put(key, statEntry{dir: true, info: info})
		return 0
	}
	opts := s3client.PutOptions{ContentType: info.ContentType, Metadata: merged, ReplaceMetadata: true}
	if info.ETag == "" {
		info.ETag, err = f.client.PutObject(detached(ctx), marker, nil, opts)
		if err != nil {
			return f.errno("PutObject", marker, err)
		}
	} else if info.ETag, err = f.copier.Copy(detached(ctx), info, marker, opts); err != nil {
		return f.errno("CopyObject", marker, err)
	}
	info.Key, info.Metadata = marker, merged
	f.meta.put(key, statEntry{dir: true, info: info})
	return 0
}
