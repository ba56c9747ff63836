package s3mount

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"mime"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/s3ftp/s3ftp/cache"
	"github.com/s3ftp/s3ftp/internal/safego"
	"github.com/s3ftp/s3ftp/s3client"
	"github.com/s3ftp/s3ftp/s3mount/upload"
)

// fsys is the state shared by every node and handle of one mount.
type fsys struct {
	client    s3client.Client
	opts      Options
	log       *slog.Logger
	root      *dirNode
	meta      *statCache
	cache     *cache.Cache
	budget    *upload.Budget
	aborts    *upload.Aborts // background aborts of failed uploads, this mount's own; unmount waits for them
	copier    *upload.Copier // the server-side copies of renames and metadata changes
	panics    *safego.Panics // recovers and counts the panics of requests and of every goroutine of the mount
	mountTime time.Time
	// mounted is where the kernel mounted us, as /proc shows it; nil until Mount knows (the commit rule of a
	// FLUSH then commits, as for an unknown caller).
	mounted atomic.Pointer[mountIdentity]

	// filesMu guards files. Lock order: openFile.mu, then fileNode.mu, then filesMu.
	filesMu sync.Mutex
	files   map[*fileNode]*openFile // the files open for writing through this mount (openfile.go)

	// hiddenMu guards hidden, a leaf: key → ETag of the files unlinked while open for reading (unlinked.go).
	hiddenMu sync.Mutex
	hidden   map[string]string
}

// mountIdentity is the mount as /proc/self/mountinfo shows it.
type mountIdentity struct {
	mountpoint string
	id         int
}

func newFsys(client s3client.Client, opts Options, log *slog.Logger, c *cache.Cache, panics *safego.Panics) *fsys {
	aborts := &upload.Aborts{}
	f := &fsys{
		client:    client,
		opts:      opts,
		log:       log,
		meta:      newStatCache(opts.StatTTL, opts.NegativeTTL),
		cache:     c,
		budget:    upload.NewBudget(opts.MemoryBudget),
		aborts:    aborts,
		copier:    &upload.Copier{C: client, Aborts: aborts, Log: log, Panics: panics},
		panics:    panics,
		mountTime: time.Now(),
		files:     make(map[*fileNode]*openFile),
		hidden:    make(map[string]string),
	}
	f.root = &dirNode{f: f}
	return f
}

// fileOnMount identifies n for holdsForWrite; false while the mount's identity is unknown.
func (f *fsys) fileOnMount(n *fileNode) (fileOnMount, bool) {
	m := f.mounted.Load()
	if m == nil {
		return fileOnMount{}, false
	}
	return fileOnMount{mountpoint: m.mountpoint, mountID: m.id, ino: n.StableAttr().Ino}, true
}

// relPath returns in's path below the mount's root ("" for the root), or false when in is no longer
// reachable from the root (unlinked, or its parent was removed).
func (f *fsys) relPath(in *fs.Inode) (string, bool) {
	rootIno := f.root.EmbeddedInode()
	var segs []string
	for p := in; p != rootIno; {
		name, parent := p.Parent()
		if parent == nil {
			return "", false
		}
		segs = append(segs, name)
		p = parent
	}
	for i, j := 0, len(segs)-1; i < j; i, j = i+1, j-1 {
		segs[i], segs[j] = segs[j], segs[i]
	}
	return path.Join(segs...), true
}

// putOptions returns the upload settings of a new object named name with the attribute headers meta (nil
// for none).
func (f *fsys) putOptions(name string, meta map[string]string) s3client.PutOptions {
	ct := "application/octet-stream"
	if f.opts.ContentTypeFromExt {
		// mime reads the system's tables (/etc/mime.types and friends) besides its built-in one.
		if t := mime.TypeByExtension(path.Ext(name)); t != "" {
			ct = t
		}
	}
	o := s3client.PutOptions{ContentType: ct}
	if len(meta) > 0 {
		o.Metadata = maps.Clone(meta)
	}
	return o
}

// The attribute headers, as s3fs writes them (x-amz-meta-<name>): mode is the decimal st_mode (file type bits
// included), uid and gid are decimal, mtime is unix seconds with an optional ".nnnnnnnnn" fraction.
const (
	metaMode  = "mode"
	metaUID   = "uid"
	metaGID   = "gid"
	metaMtime = "mtime"
	metaAtime = "atime" // as utimens set it; reads do not move it (S3 objects cannot be touched per read)
	metaCtime = "ctime" // moved by chmod, chown, utimens and xattr changes; a new version starts at its mtime
)

// attrHeaders returns the attribute headers for the changes in in (mode, owner, modification time) of a file
// of type typ (S_IFREG, S_IFDIR), and false when in changes none of them. Access and change times are not
// stored.
func attrHeaders(in *fuse.SetAttrIn, typ uint32) (map[string]string, bool) {
	m := map[string]string{}
	if mode, ok := in.GetMode(); ok {
		m[metaMode] = strconv.FormatUint(uint64(typ|mode&0o7777), 10)
	}
	if uid, ok := in.GetUID(); ok {
		m[metaUID] = strconv.FormatUint(uint64(uid), 10)
	}
	if gid, ok := in.GetGID(); ok {
		m[metaGID] = strconv.FormatUint(uint64(gid), 10)
	}
	if t, ok := in.GetMTime(); ok {
		m[metaMtime] = formatMtime(t)
	}
	if t, ok := in.GetATime(); ok {
		m[metaAtime] = formatMtime(t)
	}
	if len(m) == 0 {
		return m, false
	}
	m[metaCtime] = formatMtime(time.Now())
	return m, true
}

// mergeHeaders applies changes to a copy of old: a key with an empty value is removed (an extended attribute
// removed), any other is set. old may be nil.
func mergeHeaders(old, changes map[string]string) map[string]string {
	m := maps.Clone(old)
	if m == nil {
		m = map[string]string{}
	}
	for k, v := range changes {
		if v == "" {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	return m
}

// sameHeaders reports whether a and b hold the same headers, the change time aside: a change that stores
// nothing new costs no copy.
func sameHeaders(a, b map[string]string) bool {
	for k, v := range a {
		if k != metaCtime && b[k] != v {
			return false
		}
	}
	for k, v := range b {
		if k != metaCtime && a[k] != v {
			return false
		}
	}
	return true
}

// formatMtime formats t as s3fs's x-amz-meta-mtime: seconds, and nanoseconds only when there are any.
func formatMtime(t time.Time) string {
	if t.Nanosecond() == 0 {
		return strconv.FormatInt(t.Unix(), 10)
	}
	return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond())
}

// parseMtime parses x-amz-meta-mtime ("sec" or "sec.fraction"); false when it is malformed or not positive.
func parseMtime(v string) (time.Time, bool) {
	secStr, frac, hasFrac := strings.Cut(v, ".")
	sec, err := strconv.ParseInt(secStr, 10, 64)
	if err != nil || sec <= 0 {
		return time.Time{}, false
	}
	var nsec int64
	if hasFrac {
		if frac == "" || len(frac) > 9 {
			return time.Time{}, false
		}
		n, err := strconv.ParseUint(frac, 10, 32)
		if err != nil {
			return time.Time{}, false
		}
		nsec = int64(n)
		for i := len(frac); i < 9; i++ {
			nsec *= 10
		}
	}
	return time.Unix(sec, nsec), true
}

// perm returns the permission bits of an entry without x-amz-meta-mode.
func (f *fsys) perm(dir bool) uint32 {
	m := f.opts.FileMode
	if dir {
		m = f.opts.DirMode
	}
	return uint32(m &^ f.opts.Umask)
}

// fileAttr fills out from an object's metadata. The s3fs headers x-amz-meta-mode (decimal st_mode),
// x-amz-meta-uid, x-amz-meta-gid and x-amz-meta-mtime (unix seconds, maybe with a fraction) override the
// mount's defaults; listings carry no metadata, so entries first seen in a listing show the defaults.
func (f *fsys) fileAttr(info s3client.ObjectInfo, out *fuse.Attr) {
	out.Size = uint64(info.Size)
	out.Blocks = (out.Size + 511) / 512
	out.Nlink = 1
	f.headerAttrs(info.Metadata, syscall.S_IFREG, info.LastModified, out)
}

// dirAttr fills out for a directory from its marker's headers (meta, s3fs's format as for files; nil or
// empty for a directory without a marker, or the root): the mount's defaults and the mount time where a
// header is missing.
func (f *fsys) dirAttr(meta map[string]string, out *fuse.Attr) {
	out.Nlink = 2
	out.Size = 4096
	out.Blocks = 8
	f.headerAttrs(meta, syscall.S_IFDIR, time.Time{}, out)
}

// headerAttrs sets out's mode (of type typ), owner and times from the attribute headers in meta, and from the
// mount's defaults where they are missing; mtime is the time without a header (zero: the mount time).
func (f *fsys) headerAttrs(meta map[string]string, typ uint32, mtime time.Time, out *fuse.Attr) {
	out.Mode = typ | f.perm(typ == syscall.S_IFDIR)
	out.Owner = fuse.Owner{Uid: f.opts.UID, Gid: f.opts.GID}
	if v, ok := meta[metaMode]; ok {
		if m, err := strconv.ParseUint(v, 10, 32); err == nil {
			out.Mode = typ | uint32(m)&0o7777
		}
	}
	if v, ok := meta[metaUID]; ok {
		if id, err := strconv.ParseUint(v, 10, 32); err == nil {
			out.Uid = uint32(id)
		}
	}
	if v, ok := meta[metaGID]; ok {
		if id, err := strconv.ParseUint(v, 10, 32); err == nil {
			out.Gid = uint32(id)
		}
	}
	if v, ok := meta[metaMtime]; ok {
		if t, ok := parseMtime(v); ok {
			mtime = t
		}
	}
	if mtime.IsZero() {
		mtime = f.mountTime
	}
	atime, ctime := mtime, mtime
	if t, ok := parseMtime(meta[metaAtime]); ok {
		atime = t
	}
	if t, ok := parseMtime(meta[metaCtime]); ok && t.After(mtime) {
		ctime = t
	}
	out.SetTimes(&atime, &mtime, &ctime)
}

// detached returns a context for S3 requests that change the bucket: it keeps ctx's values but not its
// cancellation, because go-fuse cancels request contexts on any signal (SIGURG included) and a mutation cut in
// half (a copy without its delete) is worse than a late answer.
func detached(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }
