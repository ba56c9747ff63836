package s3mount

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/s3ftp/s3ftp/s3client"
)

// Options configure a mount. The zero value is not valid: start from DefaultOptions and call Validate.
// The command line (cmd/s3mount) only maps flags and "-o" options onto these fields.
type Options struct {
	// Prefix is the key prefix the mount's root maps to: "" for the whole bucket, otherwise it ends in "/".
	Prefix string

	// ReadOnly refuses every change with EROFS.
	ReadOnly bool
	// AllowOther lets users other than the mounting one access the mount (FUSE allow_other). A daemon that is
	// not root needs user_allow_other in /etc/fuse.conf; without it the mount is made without allow_other and a
	// warning says so.
	AllowOther bool
	// Checksums computes SHA-256, MD5 and CRC32 of every object written while its bytes stream through, stored
	// as its tags (upload.TagSHA256...) and served read-only as the extended attributes user.sha256, user.md5
	// and user.crc32 (with Xattr). Objects that keep 5 MiB or more of an earlier version get none. Off by
	// default: on a machine where the daemon's CPU is the limit, SHA-256 and CRC32 cost about a fifth of the
	// sequential write rate (bench/README.md).
	Checksums bool
	// ChecksumMD5 adds MD5 to Checksums (for FTP clients that ask for XMD5); it costs about twice SHA-256's CPU.
	ChecksumMD5 bool
	// Xattr serves user.* extended attributes, stored as s3fs does (x-amz-meta-xattr; s3fs's use_xattr). Off,
	// the kernel is told once that there are none; on, it asks the mount before every write whether the file
	// has security.capability (answered without S3, but one more FUSE request per write).
	Xattr bool
	// DefaultPermissions makes the kernel check every access against the mode and owner a file or directory
	// shows (FUSE default_permissions), as on a local file system: with AllowOther, other users get what the
	// modes give them, not everything.
	DefaultPermissions bool
	// UID and GID own files and directories whose objects carry no x-amz-meta-uid/gid.
	UID, GID uint32
	// FileMode and DirMode are the permission bits of files and directories whose objects carry no
	// x-amz-meta-mode, before Umask is applied.
	FileMode, DirMode os.FileMode
	// Umask clears permission bits of the default modes.
	Umask os.FileMode

	// MemoryBudget caps the bytes held by part buffers of all uploads in flight together. Writes block while it is
	// full; they never fail for lack of memory.
	MemoryBudget int64
	// PartSize is the size of the first parts of a multipart upload; later parts grow so one object can reach
	// S3's 5 TiB limit within 10,000 parts (bounded by MemoryBudget).
	PartSize int64
	// UploadConcurrency is the number of parts one file uploads at the same time.
	UploadConcurrency int

	// CacheSize is the memory budget of the read block cache, prefetched blocks included.
	CacheSize int64
	// CacheDir, when set, adds a disk tier of at most CacheDirSize bytes to the read cache.
	CacheDir     string
	CacheDirSize int64
	// MaxReadahead is the largest prefetch window of one sequential reader.
	MaxReadahead int64
	// MaxWrite is the largest FUSE READ or WRITE request (FUSE's max_write and max_read), 128 KiB to 1 MiB in
	// steps of 4 KiB. Each request in flight holds a buffer of this size outside MemoryBudget and CacheSize: a
	// WRITE waiting for the budget keeps its data, a READ its reply. So the daemon's memory grows by MaxWrite
	// per thread blocked in write(2) on the mount and per READ in flight; smaller requests bound that with many
	// concurrent writers, larger ones cost fewer round trips per megabyte.
	MaxWrite int

	// StatTTL is how long metadata (attributes, directory entries, negative lookups) is trusted before S3 is asked
	// again; the kernel's attribute and entry timeouts follow it.
	StatTTL time.Duration
	// NegativeTTL is how long a lookup that found nothing is remembered.
	NegativeTTL time.Duration

	// Upload settings applied to every object written.
	ContentTypeFromExt bool // Content-Type from the file name's extension (otherwise application/octet-stream)

	// Debug logs every FUSE request.
	Debug bool
}

// Bounds of Options.MaxWrite: the kernel's own default request size, and the largest request go-fuse and the
// kernel negotiate (256 pages).
const (
	MinMaxWrite     = 128 << 10
	DefaultMaxWrite = 1 << 20
)

// DefaultOptions returns the defaults documented in the README.
func DefaultOptions() Options {
	return Options{
		AllowOther:         true,
		DefaultPermissions: true,
		UID:                uint32(os.Getuid()),
		GID:                uint32(os.Getgid()),
		FileMode:           0o644,
		DirMode:            0o755,
		Umask:              0o022,
		MemoryBudget:       256 << 20,
		PartSize:           8 << 20,
		UploadConcurrency:  8,
		CacheSize:          256 << 20,
		MaxReadahead:       64 << 20,
		MaxWrite:           DefaultMaxWrite,
		StatTTL:            time.Second,
		NegativeTTL:        time.Second,
		ContentTypeFromExt: true,
	}
}

// Validate checks the options and normalises Prefix. Its errors name the option at fault.
func (o *Options) Validate() error {
	var errs []error
	if o.Prefix != "" {
		o.Prefix = strings.TrimLeft(o.Prefix, "/")
		if o.Prefix != "" && !strings.HasSuffix(o.Prefix, "/") {
			o.Prefix += "/"
		}
		if strings.Contains(o.Prefix, "//") {
			errs = append(errs, fmt.Errorf("prefix %q: empty path segment", o.Prefix))
		}
	}
	if o.PartSize < s3client.MinPartSize || o.PartSize > s3client.MaxPartSize {
		errs = append(errs, fmt.Errorf("part-size %d: must be between 5 MiB and 5 GiB", o.PartSize))
	}
	if o.MemoryBudget < 2*o.PartSize {
		errs = append(errs, fmt.Errorf("memory-budget %d: must hold at least two parts (2 × part-size = %d)",
			o.MemoryBudget, 2*o.PartSize))
	}
	if o.UploadConcurrency < 1 {
		errs = append(errs, fmt.Errorf("upload-concurrency %d: must be at least 1", o.UploadConcurrency))
	}
	if o.CacheSize < 0 || o.CacheDirSize < 0 || o.MaxReadahead < 0 {
		errs = append(errs, errors.New("cache-size, cache-dir-size and max-readahead must not be negative"))
	}
	if o.CacheDir != "" && o.CacheDirSize <= 0 {
		errs = append(errs, errors.New("cache-dir needs cache-dir-size > 0"))
	}
	if o.MaxReadahead > o.CacheSize {
		errs = append(errs, fmt.Errorf("max-readahead %d: must not exceed cache-size %d (prefetched blocks live in the cache)",
			o.MaxReadahead, o.CacheSize))
	}
	if o.MaxWrite < MinMaxWrite || o.MaxWrite > DefaultMaxWrite || o.MaxWrite%4096 != 0 {
		errs = append(errs, fmt.Errorf("max-write %d: must be a multiple of 4 KiB from 128 KiB to 1 MiB", o.MaxWrite))
	}
	if o.StatTTL < 0 || o.NegativeTTL < 0 {
		errs = append(errs, errors.New("stat-ttl and negative-ttl must not be negative"))
	}
	if o.FileMode&^os.ModePerm != 0 || o.DirMode&^os.ModePerm != 0 || o.Umask&^os.ModePerm != 0 {
		errs = append(errs, errors.New("file-mode, dir-mode and umask take permission bits only (e.g. 0644)"))
	}
	return errors.Join(errs...)
}
