package s3mount

import (
	"context"
	"errors"
	"maps"
	"strconv"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/s3ftp/s3ftp/cache"
	"github.com/s3ftp/s3ftp/s3client"
)

// Open opens the file for reading or for writing a new version.
//
// O_RDONLY: a reader bound to the ETag the stat cache or a fresh HEAD gives; EBUSY while the file is being
// written through this mount (its object is incomplete). Reads never wait for a writer.
//
// O_WRONLY / O_RDWR: EROFS on a read-only mount. The handle joins the file's write state (openFile), shared
// by every handle open for writing on it; EBUSY while another process's writes are not committed yet or a
// write session failed. With O_TRUNC the file starts a new version from scratch; otherwise its first write or
// truncation decides what of the existing object is kept (openfile.go): O_APPEND and FTP's APPE and REST+STOR
// keep the bytes before the first write without downloading them. Nothing is sent to S3 before a commit.
//
// Page cache: an inode stands for one ETag (childInode), so an open for reading of the version the inode
// stands for keeps the kernel's page cache (FOPEN_KEEP_CACHE): warm re-reads cost no request. When the object
// changed since the inode was made (the stat cache or a HEAD now gives another ETag, as after a write through
// the mount or a replacement seen before the kernel looked the name up again), the open answers ESTALE: the
// kernel's path walk retries such an open once with a revalidating LOOKUP, which gives the name a new inode for
// the new version, so handles still reading the old version keep their pages. An inode holding write state
// cannot be replaced: it is rebound to the new version and opened without FOPEN_KEEP_CACHE, which empties its
// page cache.
func (n *fileNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	key, errno := n.key()
	if errno != 0 {
		return nil, 0, errno
	}
	if flags&syscall.O_ACCMODE == syscall.O_RDONLY {
		if n.activeWriter() != nil {
			return nil, 0, n.f.refuse("open", key, syscall.EBUSY, "the file is being written; it is readable once closed")
		}
		e, errno := n.f.stat(ctx, key)
		if errno != 0 {
			return nil, 0, errno
		}
		if e.dir {
			return nil, 0, syscall.EISDIR
		}
		if e.info.ETag == "" {
			// A listing without ETags cannot bind the reader to a version: ask S3.
			info, err := n.f.client.HeadObject(ctx, key)
			if err != nil {
				return nil, 0, n.f.errno("HeadObject", key, err)
			}
			e.info = info
			n.f.meta.put(key, e)
		}
		var fuseFlags uint32
		switch {
		case n.bindETag(e.info.ETag):
			fuseFlags = fuse.FOPEN_KEEP_CACHE
		case n.replaceableFor(e.info.ETag):
			n.f.log.Debug("open: the object changed since lookup; the kernel looks the name up again",
				"key", key, "etag", e.info.ETag)
			return nil, 0, syscall.ESTALE
		default:
			n.rebindETag(e.info.ETag)
		}
		e.info.Key = key
		r := n.f.cache.NewReader(n.f.client, e.info, cache.ReaderConfig{
			InitialWindow: min(n.f.opts.MaxReadahead, 1<<20),
			MaxWindow:     n.f.opts.MaxReadahead,
		})
		n.openedForReading()
		return &readHandle{f: n.f, node: n, key: key, info: e.info, r: r}, fuseFlags, 0
	}
	if n.f.opts.ReadOnly {
		return nil, 0, syscall.EROFS
	}
	trunc := flags&syscall.O_TRUNC != 0
	h, errno := n.f.openWrite(n, callerProcess(ctx), func(of *openFile) syscall.Errno {
		e, errno := n.f.stat(ctx, key)
		switch {
		case errno == syscall.ENOENT:
			// Deleted since the lookup: the file is new again, and its close creates it.
			of.baseFresh = true
			of.freshLocked("")
			return 0
		case errno != 0:
			return errno
		case e.dir:
			return syscall.EISDIR
		}
		if e.info.Metadata == nil {
			// Seen in a listing, which carries no headers: a new version keeps the mode and owner (also after
			// O_TRUNC, which the kernel may send as a truncation after the open), so ask.
			info, err := n.f.client.HeadObject(ctx, key)
			switch {
			case errors.Is(err, s3client.ErrNotFound):
				of.baseFresh = true
				of.freshLocked("")
				return 0
			case err != nil:
				return n.f.errno("HeadObject", key, err)
			}
			e.info, of.baseFresh = info, true
		}
		e.info.Key = key
		of.base, of.exists = e.info, true
		of.meta = maps.Clone(e.info.Metadata)
		if trunc {
			of.freshLocked("")
		}
		return 0
	}, func(of *openFile) syscall.Errno {
		if trunc {
			of.freshLocked("")
		}
		return 0
	})
	if errno != 0 {
		return nil, 0, errno
	}
	return h, 0, 0
}

// createAttrs returns the attribute headers a file created with mode (the kernel applied the caller's umask)
// by the calling process is stored with: its permission bits, uid and gid, each only where it differs from
// what the mount shows by default (FileMode minus Umask, UID, GID), so a file created by the mount's own user
// with the default mode carries no headers.
func (f *fsys) createAttrs(ctx context.Context, mode uint32) map[string]string {
	m := map[string]string{}
	if perm := mode & 0o7777; perm != f.perm(false) {
		m[metaMode] = strconv.FormatUint(uint64(syscall.S_IFREG|perm), 10)
	}
	if c, ok := fuse.FromContext(ctx); ok {
		if c.Uid != f.opts.UID {
			m[metaUID] = strconv.FormatUint(uint64(c.Uid), 10)
		}
		if c.Gid != f.opts.GID {
			m[metaGID] = strconv.FormatUint(uint64(c.Gid), 10)
		}
	}
	return m
}

// Create creates name and opens it for writing. Nothing is stored at create: the object appears in S3 at the
// file's first commit (its last close, see openfile.go), with every byte written, and the file is visible
// through this mount meanwhile with its current size. With O_EXCL the first commit is conditional
// (If-None-Match: *): when another host created the name first, the close fails with EEXIST and nothing is
// overwritten. The file keeps the mode it was created with and its creator's uid and gid (createAttrs).
// EROFS on a read-only mount; EBUSY while another process writes the same name;
// ENAMETOOLONG/EINVAL for names that cannot be keys.
func (d *dirNode) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	if d.f.opts.ReadOnly {
		return nil, nil, 0, syscall.EROFS
	}
	dk, errno := d.key()
	if errno != 0 {
		return nil, nil, 0, errno
	}
	key, errno := childKey(dk, name, false)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	owner := d.f.createAttrs(ctx, mode)
	// The entry the kernel caches shows the new file's mode and owner from the start: permission checks use it.
	ch := d.childInode(ctx, name, statEntry{info: s3client.ObjectInfo{Key: key, LastModified: time.Now(), Metadata: owner}}, out)
	fn := ch.Operations().(*fileNode)
	excl := flags&syscall.O_EXCL != 0
	create := func(of *openFile) syscall.Errno {
		of.excl = excl && !of.exists
		of.baseFresh = true
		of.meta = nil // a new file: nothing of an earlier one is kept
		of.freshLocked("")
		maps.Copy(of.meta, owner)
		of.publishLocked()
		return 0
	}
	h, errno := d.f.openWrite(fn, callerProcess(ctx), create, create)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	// The stat cache keeps what it knew (nothing, as the kernel's lookup found): while the file is written its
	// write state answers, and its commit records the object.
	return ch, h, 0, 0
}
