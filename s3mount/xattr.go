package s3mount

// Extended attributes (Options.Xattr, s3fs's use_xattr): the user.* namespace, stored as s3fs does in one
// header, x-amz-meta-xattr: a JSON object of attribute names to base64 values, percent-encoded. They live on
// the object of a file and on the marker of a directory, and change as the mode and owner headers do (a copy
// of the object onto itself, or with the upload of a file being written). Other namespaces are not stored:
// reading one answers ENODATA without a request (the kernel asks for security.capability before writes),
// setting one ENOTSUP. user.sha256, user.md5 and user.crc32 are the read-only checksums of the object
// (Options.Checksums), read from its tags.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"

	"github.com/s3ftp/s3ftp/s3client"
	"github.com/s3ftp/s3ftp/s3mount/upload"
)

const (
	metaXattr   = "xattr"
	xattrPrefix = "user."
	// maxUserMetadata is S3's bound on an object's user-defined metadata: keys and values, in bytes.
	maxUserMetadata = 2048
	xattrCreate     = 1 // XATTR_CREATE
	xattrReplace    = 2 // XATTR_REPLACE
)

// decodeXattrs parses an x-amz-meta-xattr value; malformed values give no attributes.
func decodeXattrs(v string) map[string][]byte {
	out := map[string][]byte{}
	if v == "" {
		return out
	}
	if u, err := url.PathUnescape(v); err == nil {
		v = u
	}
	var raw map[string]string
	if json.Unmarshal([]byte(v), &raw) != nil {
		return out
	}
	for k, b := range raw {
		if val, err := base64.StdEncoding.DecodeString(b); err == nil {
			out[k] = val
		}
	}
	return out
}

// encodeXattrs formats attrs as an x-amz-meta-xattr value; "" for none (the header is then removed).
func encodeXattrs(attrs map[string][]byte) string {
	if len(attrs) == 0 {
		return ""
	}
	raw := make(map[string]string, len(attrs))
	for k, v := range attrs {
		raw[k] = base64.StdEncoding.EncodeToString(v)
	}
	b, _ := json.Marshal(raw) // map keys are sorted: the same attributes give the same header
	return percentEncode(string(b))
}

// percentEncode escapes every byte but the unreserved ones of RFC 3986, so the header is plain ASCII.
func percentEncode(s string) string {
	var b strings.Builder
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// metadataSize is what S3 counts against maxUserMetadata.
func metadataSize(meta map[string]string) int {
	n := 0
	for k, v := range meta {
		n += len(k) + len(v)
	}
	return n
}

// headers returns the attribute headers of the file or directory n currently shows: a file being written its
// pending ones, otherwise the object's (a HEAD when only a listing was seen).
func (f *fsys) headers(ctx context.Context, n fs.InodeEmbedder) (map[string]string, syscall.Errno) {
	switch n := n.(type) {
	case *fileNode:
		if of := n.activeWriter(); of != nil {
			if m := of.attrs.Load(); m != nil {
				return *m, 0
			}
			return nil, 0
		}
		key, errno := n.key()
		if errno != 0 {
			return nil, errno
		}
		e, errno := f.stat(ctx, key)
		if errno != 0 {
			return nil, errno
		}
		if e.info.Metadata == nil {
			info, err := f.client.HeadObject(ctx, key)
			if err != nil {
				return nil, f.errno("HeadObject", key, err)
			}
			f.meta.put(key, statEntry{info: info})
			return info.Metadata, 0
		}
		return e.info.Metadata, 0
	case *dirNode:
		if n.IsRoot() {
			return nil, 0
		}
		dk, errno := n.key()
		if errno != 0 {
			return nil, errno
		}
		e, errno := f.stat(ctx, strings.TrimSuffix(dk, "/"))
		if errno != 0 {
			return nil, errno
		}
		return e.info.Metadata, 0
	}
	return nil, syscall.ENOTSUP
}

// The read-only attributes that show a file's checksums (Options.Checksums), from its object's tags.
var checksumAttrs = map[string]func(upload.Checksums) string{
	"user.sha256": func(c upload.Checksums) string { return c.SHA256 },
	"user.md5":    func(c upload.Checksums) string { return c.MD5 },
	"user.crc32":  func(c upload.Checksums) string { return c.CRC32 },
}

// checksums returns the checksums stored with n's object: from the stat cache for a version this mount
// committed, otherwise one GetObjectTagging; false for a directory, a file being written, or an object stored
// without them.
func (f *fsys) checksums(ctx context.Context, n fs.InodeEmbedder) (upload.Checksums, bool, syscall.Errno) {
	fn, ok := n.(*fileNode)
	if !ok || fn.activeWriter() != nil {
		return upload.Checksums{}, false, 0
	}
	key, errno := fn.key()
	if errno != 0 {
		return upload.Checksums{}, false, errno
	}
	if e, errno := f.stat(ctx, key); errno == 0 {
		if c, have, known := f.meta.getSums(key, e.info.ETag); known {
			return c, have, 0 // a version this mount committed
		}
	}
	tags, err := s3client.GetTags(ctx, f.client, key)
	if err != nil {
		if s3client.KindOf(err) == s3client.ErrOther {
			return upload.Checksums{}, false, 0 // a store without tagging: none
		}
		return upload.Checksums{}, false, f.errno("GetObjectTagging", key, err)
	}
	c, ok := upload.ChecksumsFromTags(tags)
	return c, ok, 0
}

// getxattr is Getxattr for a file or directory.
func (f *fsys) getxattr(ctx context.Context, n fs.InodeEmbedder, attr string, dest []byte) (uint32, syscall.Errno) {
	if !strings.HasPrefix(attr, xattrPrefix) {
		return 0, syscall.ENODATA
	}
	var v []byte
	var ok bool
	if sum, isSum := checksumAttrs[attr]; isSum {
		c, have, errno := f.checksums(ctx, n)
		if errno != 0 {
			return 0, errno
		}
		v, ok = []byte(sum(c)), have && sum(c) != ""
	} else {
		meta, errno := f.headers(ctx, n)
		if errno != 0 {
			return 0, errno
		}
		v, ok = decodeXattrs(meta[metaXattr])[attr]
	}
	switch {
	case !ok:
		return 0, syscall.ENODATA
	case len(dest) < len(v):
		return uint32(len(v)), syscall.ERANGE
	}
	return uint32(copy(dest, v)), 0
}

// listxattr is Listxattr for a file or directory: the names, each followed by a NUL.
func (f *fsys) listxattr(ctx context.Context, n fs.InodeEmbedder, dest []byte) (uint32, syscall.Errno) {
	meta, errno := f.headers(ctx, n)
	if errno != 0 {
		return 0, errno
	}
	attrs := decodeXattrs(meta[metaXattr])
	names := make([]string, 0, len(attrs)+len(checksumAttrs))
	for k := range attrs {
		names = append(names, k)
	}
	if c, have, errno := f.checksums(ctx, n); errno != 0 {
		return 0, errno
	} else if have {
		for k, sum := range checksumAttrs {
			if sum(c) != "" {
				names = append(names, k)
			}
		}
	}
	sort.Strings(names)
	var list []byte
	for _, k := range names {
		list = append(append(list, k...), 0)
	}
	if len(dest) < len(list) {
		return uint32(len(list)), syscall.ERANGE
	}
	return uint32(copy(dest, list)), 0
}

// changeXattr sets (value non-nil) or removes attr on a file or directory, honouring XATTR_CREATE and
// XATTR_REPLACE. ENOTSUP outside user.* and on the root; ENOSPC, logged, when the object's metadata would
// exceed S3's 2 KiB.
func (f *fsys) changeXattr(ctx context.Context, n fs.InodeEmbedder, attr string, value []byte, flags uint32) syscall.Errno {
	if f.opts.ReadOnly {
		return syscall.EROFS
	}
	if !strings.HasPrefix(attr, xattrPrefix) || len(attr) == len(xattrPrefix) {
		return syscall.ENOTSUP
	}
	if _, isSum := checksumAttrs[attr]; isSum {
		return syscall.EPERM // computed by the mount, not set
	}
	if d, ok := n.(*dirNode); ok && d.IsRoot() {
		return syscall.ENOTSUP // the root has no marker to carry them
	}
	meta, errno := f.headers(ctx, n)
	if errno != 0 {
		return errno
	}
	attrs := decodeXattrs(meta[metaXattr])
	_, exists := attrs[attr]
	switch {
	case value != nil && flags&xattrCreate != 0 && exists:
		return syscall.EEXIST
	case (value == nil || flags&xattrReplace != 0) && !exists:
		return syscall.ENODATA
	}
	if value == nil {
		delete(attrs, attr)
	} else {
		attrs[attr] = value
	}
	change := map[string]string{metaXattr: encodeXattrs(attrs), metaCtime: formatMtime(time.Now())}
	if size := metadataSize(mergeHeaders(meta, change)); size > maxUserMetadata {
		return f.refuse("setxattr", attr, syscall.ENOSPC,
			"S3 keeps at most 2 KiB of user metadata per object (the attributes would take "+strconv.Itoa(size)+" bytes)")
	}
	switch n := n.(type) {
	case *fileNode:
		key, errno := n.key()
		if errno != 0 {
			return errno
		}
		if of := f.openFileOf(n); of == nil || !of.setAttrs(change) {
			if errno := f.setObjectAttrs(ctx, key, change); errno != 0 {
				return errno
			}
			if of != nil {
				of.objectChanged()
			}
		}
	case *dirNode:
		dk, errno := n.key()
		if errno != 0 {
			return errno
		}
		return f.setDirAttrs(ctx, strings.TrimSuffix(dk, "/"), change)
	}
	return 0
}

// Getxattr reads a user.* extended attribute of the file.
func (n *fileNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	return n.f.getxattr(ctx, n, attr, dest)
}

// Listxattr lists the file's user.* extended attributes.
func (n *fileNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	return n.f.listxattr(ctx, n, dest)
}

// Setxattr sets a user.* extended attribute of the file.
func (n *fileNode) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	if data == nil {
		data = []byte{}
	}
	return n.f.changeXattr(ctx, n, attr, data, flags)
}

// Removexattr removes a user.* extended attribute of the file.
func (n *fileNode) Removexattr(ctx context.Context, attr string) syscall.Errno {
	return n.f.changeXattr(ctx, n, attr, nil, 0)
}

// Getxattr reads a user.* extended attribute of the directory.
func (d *dirNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	return d.f.getxattr(ctx, d, attr, dest)
}

// Listxattr lists the directory's user.* extended attributes.
func (d *dirNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	return d.f.listxattr(ctx, d, dest)
}

// Setxattr sets a user.* extended attribute of the directory.
func (d *dirNode) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	if data == nil {
		data = []byte{}
	}
	return d.f.changeXattr(ctx, d, attr, data, flags)
}

// Removexattr removes a user.* extended attribute of the directory.
func (d *dirNode) Removexattr(ctx context.Context, attr string) syscall.Errno {
	return d.f.changeXattr(ctx, d, attr, nil, 0)
}
