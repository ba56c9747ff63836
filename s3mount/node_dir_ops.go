package s3mount

import (
	"context"
	"sort"
	"strconv"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/s3ftp/s3ftp/s3client"
)

// listPageSize is the number of keys asked for per ListObjectsV2 page (S3's maximum).
const listPageSize = 1000

// Readdir lists the directory with ListObjectsV2 pages (delimiter "/"): objects become files, common prefixes
// directories, and both fill the stat cache, so `ls -l` costs no HEAD per entry. Keys that cannot be file names
// are skipped with one log line each. A file shadows a directory of the same name, as in Lookup. Files being
// written through this mount are listed even before their object exists.
func (d *dirNode) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	dk, errno := d.key()
	if errno != 0 {
		return nil, errno
	}
	kinds, _, errno := d.f.listDir(ctx, dk, 0)
	if errno != 0 {
		return nil, errno
	}
	for name, ch := range d.Children() {
		if fn, ok := ch.Operations().(*fileNode); ok && fn.activeWriter() != nil {
			kinds[name] = syscall.S_IFREG
		}
	}
	entries := make([]fuse.DirEntry, 0, len(kinds))
	for name, mode := range kinds {
		entries = append(entries, fuse.DirEntry{Name: name, Mode: mode})
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name < entries[j].Name })
	return fs.NewListDirStream(entries), 0
}

// listDir lists the directory prefix dk with ListObjectsV2 pages (delimiter "/"), at most maxPages of them (0:
// all), and returns its entries by name (S_IFREG or S_IFDIR; a file shadows a directory of the same name).
// Every entry goes into the stat cache; a listing that reached the end marks dk complete there (complete true).
func (f *fsys) listDir(ctx context.Context, dk string, maxPages int) (kinds map[string]uint32, complete bool, errno syscall.Errno) {
	kinds = make(map[string]uint32)
	start := f.meta.snapshot()
	token := ""
	for pages := 1; ; pages++ {
		page, err := f.client.List(ctx, dk, "/", token, listPageSize)
		if err != nil {
			return nil, false, f.errno("List", dk, err)
		}
		for _, p := range page.CommonPrefixes {
			name, _, ok, reason := nameFromKey(dk, p)
			if !ok {
				f.skipKey(p, reason)
				continue
			}
			if _, seen := kinds[name]; !seen {
				kinds[name] = syscall.S_IFDIR
			}
		}
		for _, o := range page.Objects {
			name, dir, ok, reason := nameFromKey(dk, o.Key)
			if !ok {
				f.skipKey(o.Key, reason)
				continue
			}
			if dir {
				// Only reachable with a listing that did not roll up "name/": treat it as the marker it is.
				if _, seen := kinds[name]; !seen {
					kinds[name] = syscall.S_IFDIR
				}
				continue
			}
			if f.isHidden(dk+name, o.ETag) {
				continue // unlinked while open for reading: gone for the name's users
			}
			kinds[name] = syscall.S_IFREG
			f.meta.putListed(dk+name, o)
		}
		if page.NextToken == "" {
			complete = true
			break
		}
		if pages == maxPages {
			break
		}
		token = page.NextToken
	}
	for name, mode := range kinds {
		if mode == syscall.S_IFDIR {
			f.meta.putListedDir(dk + name)
		}
	}
	if complete {
		f.meta.markComplete(dk, start, len(kinds) <= listPageSize)
	}
	return kinds, complete, 0
}

// skipKey logs a listed key that cannot be shown as a file name. A directory's own marker is expected, not logged.
func (f *fsys) skipKey(key, reason string) {
	if reason == "directory marker" {
		return
	}
	f.log.Warn("key skipped in listing: cannot be a file name", "key", key, "why", reason)
}

// dirContentType is the Content-Type of directory markers, as s3fs writes them.
const dirContentType = "application/x-directory"

// Mkdir creates the marker object "name/" (empty, Content-Type application/x-directory) with s3fs's mode,
// uid, gid and mtime headers. EROFS on a read-only
// mount; ENAMETOOLONG/EINVAL for names that cannot be keys.
func (d *dirNode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if d.f.opts.ReadOnly {
		return nil, syscall.EROFS
	}
	dk, errno := d.key()
	if errno != 0 {
		return nil, errno
	}
	marker, errno := childKey(dk, name, true)
	if errno != 0 {
		return nil, errno
	}
	// s3fs's directory headers: the mode (after the caller's umask, type bits included), the creator's uid and
	// gid, and the creation time as mtime, so tools that restore directory times (cp -a, tar, rsync) find them.
	meta := map[string]string{
		metaMode:  strconv.FormatUint(uint64(syscall.S_IFDIR|mode&0o7777), 10),
		metaMtime: formatMtime(time.Now()),
	}
	uid, gid := d.f.opts.UID, d.f.opts.GID
	if c, ok := fuse.FromContext(ctx); ok {
		uid, gid = c.Uid, c.Gid
	}
	meta[metaUID], meta[metaGID] = strconv.FormatUint(uint64(uid), 10), strconv.FormatUint(uint64(gid), 10)
	opts := s3client.PutOptions{ContentType: dirContentType, Metadata: meta}
	start := d.f.meta.snapshot()
	etag, err := d.f.client.PutObject(detached(ctx), marker, nil, opts)
	if err != nil {
		return nil, d.f.errno("PutObject", marker, err)
	}
	e := statEntry{dir: true, info: s3client.ObjectInfo{Key: marker, ETag: etag, ContentType: dirContentType, Metadata: meta}}
	d.f.meta.put(dk+name, e)
	d.f.meta.markComplete(marker, start, true) // created empty: anything below "name/" would have made the kernel's lookup find it
	return d.childInode(ctx, name, e, out), 0
}

// Rmdir removes an empty directory's marker. ENOTEMPTY when any other object exists below it or a file is being
// written in it; removing a directory that only exists implicitly (no marker) cannot happen, as it is not empty.
func (d *dirNode) Rmdir(ctx context.Context, name string) syscall.Errno {
	if d.f.opts.ReadOnly {
		return syscall.EROFS
	}
	dk, errno := d.key()
	if errno != 0 {
		return errno
	}
	marker, errno := childKey(dk, name, true)
	if errno != 0 {
		return errno
	}
	if ch := d.GetChild(name); ch != nil {
		for _, gc := range ch.Children() {
			if fn, ok := gc.Operations().(*fileNode); ok && fn.activeWriter() != nil {
				return syscall.ENOTEMPTY
			}
		}
	}
	page, err := d.f.client.List(ctx, marker, "", "", 2)
	if err != nil {
		return d.f.errno("List", marker, err)
	}
	for _, o := range page.Objects {
		if o.Key != marker {
			return syscall.ENOTEMPTY
		}
	}
	if len(page.CommonPrefixes) > 0 {
		return syscall.ENOTEMPTY
	}
	if err := d.f.client.DeleteObject(detached(ctx), marker); err != nil {
		return d.f.errno("DeleteObject", marker, err)
	}
	d.f.meta.putNegative(dk + name)
	return 0
}

// Statfs reports large constant numbers, as s3fs does: a bucket has no capacity to speak of, and tools such as
// FTP servers refuse uploads when free space looks short.
func (d *dirNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	const blocks = 1 << 40 // 4 PiB in 4 KiB blocks
	out.Bsize = 4096
	out.Frsize = 4096
	out.Blocks = blocks
	out.Bfree = blocks
	out.Bavail = blocks
	out.Files = 1 << 32
	out.Ffree = 1 << 32
	out.NameLen = maxNameLen
	return 0
}
