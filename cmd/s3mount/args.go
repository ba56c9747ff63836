package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/s3ftp/s3ftp/internal/flagenv"
	"github.com/s3ftp/s3ftp/s3client"
	"github.com/s3ftp/s3ftp/s3mount"
)

// config is everything the command line (with the configuration file and environment layered under it)
// decides. Mount behaviour lives in s3mount.Options and S3 access in s3client.Config; the remaining fields only
// concern this process (logging, daemon mode).
type config struct {
	Source     string // BUCKET[:PREFIX] as given
	Mountpoint string // absolute path
	Opts       s3mount.Options
	S3         s3client.Config

	Foreground bool
	LogFormat  string // "text" or "json"
	LogLevel   slog.Level
	LogFile    string
	// MetricsAddr is the HTTP address serving /metrics and /healthz; empty: none.
	MetricsAddr string
	// AbortUploadsOlderThan, when positive, makes the start abort the unfinished multipart uploads under the
	// prefix initiated more than this long ago (leftovers of a killed daemon); 0: none are touched.
	AbortUploadsOlderThan time.Duration
	// AutoUnmount starts the unmount watcher (unmountwatcher.go) once mounted, so the mount leaves the mount
	// table when the daemon dies in any way; on by default.
	AutoUnmount bool
	// StateDir holds the journal of this mount's unfinished multipart uploads (package s3mount/journal).
	StateDir string

	// Ignored lists the -o options accepted for fstab compatibility without effect, for a debug log line.
	Ignored []string
	// Layered lists the settings taken from S3MOUNT_* variables or the S3MOUNT_CONFIG file and not overridden
	// on the command line, for the start-up log.
	Layered []flagenv.Entry
	// given holds the names of the options set on the command line.
	given map[string]bool
}

// envPrefix names the environment variables (S3MOUNT_MEMORY_BUDGET) and the file variable (S3MOUNT_CONFIG)
// that layer settings under the command line; see internal/flagenv and scripts/s3mount.conf.example.
const envPrefix = "S3MOUNT"

// errHelp is returned by parseArgs for -h/--help: the usage goes to stdout and the command exits 0.
var errHelp = errors.New("help requested")

// option is one setting, reachable as --name[=VALUE] and as -o name[=VALUE]. -o also accepts the FUSE spelling
// with underscores (allow_other, dir_mode).
type option struct {
	name    string
	boolean bool   // takes no value on the command line ("--ro"); "--ro=false" and "-o ro=false" still work
	arg     string // value placeholder in the usage text
	usage   string
	set     func(c *config, v string) error
}

// setSize, setDur, setMode and setBool adapt the unit parsers to option setters. An empty size is 0, so
// "cache-dir-size =" in a configuration file reads as unset; Validate rejects it where 0 is not allowed.
func setSize(dst func(*config) *int64) func(*config, string) error {
	return func(c *config, v string) error {
		if v == "" {
			*dst(c) = 0
			return nil
		}
		n, err := parseSize(v)
		*dst(c) = n
		return err
	}
}

func setDur(dst func(*config) *int64) func(*config, string) error {
	return func(c *config, v string) error {
		d, err := parseDuration(v)
		*dst(c) = int64(d)
		return err
	}
}

func setMode(dst func(*config) *os.FileMode) func(*config, string) error {
	return func(c *config, v string) error {
		m, err := parseMode(v)
		*dst(c) = m
		return err
	}
}

func setBool(dst func(*config) *bool) func(*config, string) error {
	return func(c *config, v string) error {
		b, err := parseBool(v)
		*dst(c) = b
		return err
	}
}

func setString(dst func(*config) *string) func(*config, string) error {
	return func(c *config, v string) error {
		*dst(c) = v
		return nil
	}
}

// options is the table behind both the long flags and -o. Its order is the order of the usage text.
var options = []option{
	{name: "endpoint", arg: "URL", usage: "S3 endpoint, e.g. http://127.0.0.1:9000 (default: AWS); non-AWS endpoints get path-style requests",
		set: func(c *config, v string) error {
			u, err := url.Parse(v)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return fmt.Errorf("endpoint %q: want an http:// or https:// URL", v)
			}
			c.S3.Endpoint = v
			return nil
		}},
	{name: "path-style", boolean: true, usage: "path-style requests (bucket in the path) also for AWS endpoints",
		set: setBool(func(c *config) *bool { return &c.S3.PathStyle })},
	{name: "region", arg: "REGION", usage: "S3 region (default: from AWS_REGION or the profile, else us-east-1)",
		set: setString(func(c *config) *string { return &c.S3.Region })},
	{name: "profile", arg: "NAME", usage: "shared config/credentials profile",
		set: setString(func(c *config) *string { return &c.S3.Profile })},
	{name: "memory-budget", arg: "SIZE", usage: "bytes held by upload part buffers of all files together",
		set: setSize(func(c *config) *int64 { return &c.Opts.MemoryBudget })},
	{name: "part-size", arg: "SIZE", usage: "first multipart part size (5MiB to 5GiB)",
		set: setSize(func(c *config) *int64 { return &c.Opts.PartSize })},
	{name: "upload-concurrency", arg: "N", usage: "parts one file uploads at the same time",
		set: func(c *config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("upload-concurrency %q: want a whole number", v)
			}
			c.Opts.UploadConcurrency = n
			return nil
		}},
	{name: "cache-size", arg: "SIZE", usage: "memory of the read block cache, prefetch included",
		set: setSize(func(c *config) *int64 { return &c.Opts.CacheSize })},
	{name: "cache-dir", arg: "DIR", usage: "directory of an optional disk tier of the read cache",
		set: setString(func(c *config) *string { return &c.Opts.CacheDir })},
	{name: "cache-dir-size", arg: "SIZE", usage: "bytes the disk tier may use",
		set: setSize(func(c *config) *int64 { return &c.Opts.CacheDirSize })},
	{name: "max-readahead", arg: "SIZE", usage: "largest prefetch window of one sequential reader",
		set: setSize(func(c *config) *int64 { return &c.Opts.MaxReadahead })},
	{name: "max-write", arg: "SIZE", usage: "largest FUSE read/write request, 128KiB to 1MiB; each request in flight holds one such buffer outside the budgets",
		set: func(c *config, v string) error {
			n, err := parseSize(v)
			if err != nil {
				return err
			}
			if n > int64(s3mount.DefaultMaxWrite) {
				return fmt.Errorf("%s: at most 1MiB", v)
			}
			c.Opts.MaxWrite = int(n)
			return nil
		}},
	{name: "stat-ttl", arg: "DURATION", usage: "how long metadata is trusted before S3 is asked again",
		set: setDur(func(c *config) *int64 { return (*int64)(&c.Opts.StatTTL) })},
	{name: "negative-ttl", arg: "DURATION", usage: "how long a lookup that found nothing is remembered",
		set: setDur(func(c *config) *int64 { return (*int64)(&c.Opts.NegativeTTL) })},
	{name: "uid", arg: "UID", usage: "owner of files without x-amz-meta-uid (number or name)",
		set: func(c *config, v string) error {
			n, err := parseID(v, false)
			c.Opts.UID = n
			return err
		}},
	{name: "gid", arg: "GID", usage: "group of files without x-amz-meta-gid (number or name)",
		set: func(c *config, v string) error {
			n, err := parseID(v, true)
			c.Opts.GID = n
			return err
		}},
	{name: "umask", arg: "MODE", usage: "permission bits cleared from the default modes (octal)",
		set: setMode(func(c *config) *os.FileMode { return &c.Opts.Umask })},
	{name: "dir-mode", arg: "MODE", usage: "permission bits of directories (octal)",
		set: setMode(func(c *config) *os.FileMode { return &c.Opts.DirMode })},
	{name: "file-mode", arg: "MODE", usage: "permission bits of files without x-amz-meta-mode (octal)",
		set: setMode(func(c *config) *os.FileMode { return &c.Opts.FileMode })},
	{name: "allow-other", boolean: true, usage: "let other users access the mount, as their modes allow (on by default; =false turns it off; non-root needs user_allow_other in /etc/fuse.conf)",
		set: setBool(func(c *config) *bool { return &c.Opts.AllowOther })},
	{name: "checksums", boolean: true, usage: "compute SHA-256, MD5 and CRC32 of every upload, stored as object tags and shown as user.sha256/user.md5/user.crc32 (with --xattr); costs CPU (SHA-256 about 1.3 GB/s per core)",
		set: setBool(func(c *config) *bool { return &c.Opts.Checksums })},
	{name: "checksum-md5", boolean: true, usage: "add MD5 to the checksums (for FTP XMD5); about twice SHA-256's CPU",
		set: setBool(func(c *config) *bool { return &c.Opts.ChecksumMD5 })},
	{name: "xattr", boolean: true, usage: "serve user.* extended attributes, stored as s3fs does (x-amz-meta-xattr); costs one more FUSE request per write",
		set: setBool(func(c *config) *bool { return &c.Opts.Xattr })},
	{name: "use-xattr", boolean: true, usage: "s3fs's name for --xattr",
		set: setBool(func(c *config) *bool { return &c.Opts.Xattr })},
	{name: "default-permissions", boolean: true, usage: "the kernel checks every access against the modes and owners files show (on by default; =false lets every user that reaches the mount do anything)",
		set: setBool(func(c *config) *bool { return &c.Opts.DefaultPermissions })},
	{name: "ro", boolean: true, usage: "mount read-only",
		set: setBool(func(c *config) *bool { return &c.Opts.ReadOnly })},
	{name: "rw", boolean: true, usage: "mount read-write (the default; undoes an earlier ro)",
		set: func(c *config, v string) error {
			b, err := parseBool(v)
			c.Opts.ReadOnly = !b
			return err
		}},
	{name: "sse", arg: "ALG", usage: "server-side encryption of new objects: AES256 or aws:kms",
		set: func(c *config, v string) error {
			if v != "" && v != "AES256" && v != "aws:kms" {
				return fmt.Errorf("sse %q: want AES256 or aws:kms", v)
			}
			c.S3.SSE = v
			return nil
		}},
	{name: "sse-kms-key-id", arg: "KEY", usage: "KMS key of new objects (implies --sse aws:kms)",
		set: setString(func(c *config) *string { return &c.S3.SSEKMSKeyID })},
	{name: "storage-class", arg: "CLASS", usage: "storage class of new objects, e.g. STANDARD_IA",
		set: setString(func(c *config) *string { return &c.S3.StorageClass })},
	{name: "acl", arg: "ACL", usage: "canned ACL of new objects, e.g. bucket-owner-full-control",
		set: setString(func(c *config) *string { return &c.S3.ACL })},
	{name: "s3-idle-timeout", arg: "DURATION", usage: "an S3 connection that receives or sends nothing for DURATION fails the attempt, so a silent network ends reads and writes with EIO (0: 30s)",
		set: setDur(func(c *config) *int64 { return (*int64)(&c.S3.IdleTimeout) })},
	{name: "s3-timeout", arg: "DURATION", usage: "wait for a response's headers once a request was sent before failing the attempt (0: 30s)",
		set: setDur(func(c *config) *int64 { return (*int64)(&c.S3.ResponseHeaderTimeout) })},
	{name: "s3-max-attempts", arg: "N", usage: "attempts per S3 request, the first included, before the error reaches the file operation",
		set: func(c *config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return fmt.Errorf("s3-max-attempts %q: want a whole number of at least 1", v)
			}
			c.S3.MaxAttempts = n
			return nil
		}},
	{name: "log-format", arg: "FORMAT", usage: "text or json",
		set: func(c *config, v string) error {
			if v != "text" && v != "json" {
				return fmt.Errorf("log-format %q: want text or json", v)
			}
			c.LogFormat = v
			return nil
		}},
	{name: "log-level", arg: "LEVEL", usage: "debug, info, warn or error",
		set: func(c *config, v string) error {
			if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
				return fmt.Errorf("log-level %q: want debug, info, warn or error", v)
			}
			return nil
		}},
	{name: "log-file", arg: "FILE", usage: "append logs to FILE (default: stderr in the foreground, syslog as a daemon)",
		set: setString(func(c *config) *string { return &c.LogFile })},
	{name: "metrics-addr", arg: "ADDR", usage: "HTTP address serving Prometheus /metrics and /healthz, e.g. 127.0.0.1:9101 (off when empty)",
		set: func(c *config, v string) error {
			if v != "" {
				if _, _, err := net.SplitHostPort(v); err != nil {
					return fmt.Errorf("metrics-addr %q: want HOST:PORT", v)
				}
			}
			c.MetricsAddr = v
			return nil
		}},
	{name: "abort-uploads-older-than", arg: "DURATION", usage: "at start, abort unfinished multipart uploads under the prefix older than DURATION (left by a killed daemon; 0: off)",
		set: setDur(func(c *config) *int64 { return (*int64)(&c.AbortUploadsOlderThan) })},
	{name: "auto-unmount", boolean: true, usage: "unmount when the daemon dies, even by SIGKILL (default on; --auto-unmount=false or -o noauto_unmount: off)",
		set: setBool(func(c *config) *bool { return &c.AutoUnmount })},
	{name: "noauto-unmount", boolean: true, usage: "same as --auto-unmount=false",
		set: func(c *config, v string) error {
			b, err := parseBool(v)
			c.AutoUnmount = !b
			return err
		}},
	{name: "state-dir", arg: "DIR", usage: "directory of the journal of unfinished uploads, aborted at the next start (default /var/lib/s3mount as root, else $XDG_STATE_HOME/s3mount)",
		set: setString(func(c *config) *string { return &c.StateDir })},
	{name: "debug", boolean: true, usage: "log every FUSE request (implies --log-level debug)",
		set: func(c *config, v string) error {
			b, err := parseBool(v)
			c.Opts.Debug = b
			if b {
				c.LogLevel = slog.LevelDebug
			}
			return err
		}},
	{name: "foreground", boolean: true, usage: "stay attached (-f); unmount on SIGINT or SIGTERM",
		set: setBool(func(c *config) *bool { return &c.Foreground })},
}

// ignoredMountOptions are accepted in -o for fstab and mount(8) compatibility and have no effect: they concern
// mount(8) itself or are the kernel's defaults for a FUSE mount.
var ignoredMountOptions = []string{
	"_netdev", "auto", "noauto", "nofail", "user", "users", "nouser", "owner", "defaults",
	"dev", "nodev", "suid", "nosuid", "exec", "noexec", "async", "sync",
	"atime", "noatime", "relatime", "norelatime", "strictatime", "nodiratime", "diratime", "lazytime",
}

// ignoredMountOptionKeys are key=value options ignored likewise (fsname and subtype are set by mount.fuse3).
var ignoredMountOptionKeys = []string{"fsname", "subtype", "comment"}

// lookupOption returns the option with the long name, or nil.
func lookupOption(name string) *option {
	for i := range options {
		if options[i].name == name {
			return &options[i]
		}
	}
	return nil
}

// applyMountOptions applies a comma-separated -o list such as "allow_other,uid=1000,ro". Unknown options are an
// error naming them.
func applyMountOptions(c *config, list string) error {
	for item := range strings.SplitSeq(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		key, val, hasVal := strings.Cut(item, "=")
		if (!hasVal && slices.Contains(ignoredMountOptions, key)) || slices.Contains(ignoredMountOptionKeys, key) ||
			strings.HasPrefix(key, "x-") {
			c.Ignored = append(c.Ignored, item)
			continue
		}
		o := lookupOption(strings.ReplaceAll(key, "_", "-"))
		if o == nil {
			return fmt.Errorf("unknown mount option %q", key)
		}
		if !o.boolean && !hasVal {
			return fmt.Errorf("mount option %q needs a value (%s=%s)", key, key, o.arg)
		}
		if err := o.set(c, val); err != nil {
			return fmt.Errorf("-o %s: %w", key, err)
		}
		c.given[o.name] = true
	}
	return nil
}

// applyLayers applies the settings of the configuration file and the environment (internal/flagenv); the
// command line is applied afterwards and overrides them.
func applyLayers(c *config) error {
	names := make([]string, len(options))
	for i, o := range options {
		names[i] = o.name
	}
	eff, err := flagenv.ApplyTarget(flagenv.Target{
		Names:  names,
		IsBool: func(name string) bool { return lookupOption(name).boolean },
		Set:    func(name, value string) error { return lookupOption(name).set(c, value) },
	}, envPrefix, "")
	if err != nil {
		return err
	}
	c.Layered = eff.Entries
	return nil
}

// newConfig returns the configuration before any argument is applied.
func newConfig() *config {
	return &config{Opts: s3mount.DefaultOptions(), S3: s3client.DefaultConfig(""), LogFormat: "text",
		LogLevel: slog.LevelInfo, AutoUnmount: true, given: map[string]bool{}}
}

// parseArgs parses the command line (without the program name). Flags and the two operands may come in any
// order, so both "s3mount -f BUCKET DIR" and the helper's "s3mount BUCKET DIR -o opts" work; "--" ends the flags.
// Settings first come from the defaults, then the S3MOUNT_CONFIG file, then S3MOUNT_<NAME> variables, then the
// command line, each overriding the one before. The result is validated: any error is a usage error.
func parseArgs(args []string) (*config, error) {
	c := newConfig()
	if err := applyLayers(c); err != nil {
		return nil, err
	}
	var operands []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			operands = append(operands, args[i+1:]...)
			i = len(args)
		case a == "-h" || a == "--help":
			return nil, errHelp
		case a == "-f":
			c.Foreground = true
			c.given["foreground"] = true
		case a == "-d":
			if err := lookupOption("debug").set(c, ""); err != nil {
				return nil, err
			}
			c.given["debug"] = true
		case a == "-o":
			if i+1 >= len(args) {
				return nil, errors.New("-o needs a list of options")
			}
			i++
			if err := applyMountOptions(c, args[i]); err != nil {
				return nil, err
			}
		case strings.HasPrefix(a, "-o") && !strings.HasPrefix(a, "--"):
			if err := applyMountOptions(c, a[2:]); err != nil {
				return nil, err
			}
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a[2:], "=")
			o := lookupOption(name)
			if o == nil {
				return nil, fmt.Errorf("unknown flag --%s", name)
			}
			if !o.boolean && !hasVal {
				if i+1 >= len(args) {
					return nil, fmt.Errorf("flag --%s needs a value (%s)", name, o.arg)
				}
				i++
				val = args[i]
			}
			if err := o.set(c, val); err != nil {
				return nil, fmt.Errorf("--%s: %w", name, err)
			}
			c.given[o.name] = true
		case strings.HasPrefix(a, "-") && a != "-":
			return nil, fmt.Errorf("unknown flag %s (long flags take two dashes)", a)
		default:
			operands = append(operands, a)
		}
	}
	c.Layered = slices.DeleteFunc(c.Layered, func(e flagenv.Entry) bool { return c.given[e.Name] })
	if len(operands) != 2 {
		return nil, fmt.Errorf("want BUCKET[:PREFIX] MOUNTPOINT, got %d operand(s)", len(operands))
	}
	if err := c.finish(operands[0], operands[1]); err != nil {
		return nil, err
	}
	return c, nil
}

// finish applies the operands and the settings derived from several flags, then validates the options.
func (c *config) finish(source, mountpoint string) error {
	c.Source = source
	bucket, prefix, err := parseSource(source)
	if err != nil {
		return err
	}
	c.S3.Bucket, c.Opts.Prefix = bucket, prefix
	if c.Mountpoint, err = absPath(mountpoint); err != nil {
		return err
	}
	if c.StateDir == "" {
		if c.StateDir, err = defaultStateDir(os.Geteuid()); err != nil {
			return err
		}
	}
	// The daemon changes to "/" after parsing: every path must be absolute by then.
	for _, p := range []*string{&c.Opts.CacheDir, &c.LogFile, &c.StateDir} {
		if *p != "" {
			if *p, err = filepath.Abs(*p); err != nil {
				return err
			}
		}
	}

	if c.S3.SSEKMSKeyID != "" && c.S3.SSE == "" {
		c.S3.SSE = "aws:kms"
	}
	if c.S3.SSEKMSKeyID != "" && c.S3.SSE != "aws:kms" {
		return fmt.Errorf("sse-kms-key-id needs --sse aws:kms, not %q", c.S3.SSE)
	}
	return c.Opts.Validate()
}

// defaultStateDir is where the upload journal of a process running as euid lives without --state-dir:
// /var/lib/s3mount for root, otherwise $XDG_STATE_HOME/s3mount, or ~/.local/state/s3mount when that variable
// is unset.
func defaultStateDir(euid int) (string, error) {
	if euid == 0 {
		return "/var/lib/s3mount", nil
	}
	if d := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "s3mount"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no state directory for the upload journal (no home directory: %v): set --state-dir", err)
	}
	return filepath.Join(home, ".local", "state", "s3mount"), nil
}

// parseSource splits "BUCKET[:PREFIX]" (also "s3://BUCKET/PREFIX") into a bucket and a key prefix.
func parseSource(s string) (bucket, prefix string, err error) {
	if rest, ok := strings.CutPrefix(s, "s3://"); ok {
		bucket, prefix, _ = strings.Cut(rest, "/")
	} else {
		bucket, prefix, _ = strings.Cut(s, ":")
	}
	if bucket == "" || strings.ContainsAny(bucket, "/ ") {
		return "", "", fmt.Errorf("source %q: want BUCKET[:PREFIX]", s)
	}
	return bucket, prefix, nil
}

// usage writes the command's help text.
func usage() string {
	var b strings.Builder
	b.WriteString(`Usage: s3mount [flags] BUCKET[:PREFIX] MOUNTPOINT

Mounts an S3 bucket (or the keys under PREFIX) with FUSE. Without -f the command returns once the mount is
ready and keeps serving it in the background; "fusermount3 -u MOUNTPOINT" ends it.

Every flag --name VALUE can also be given as -o name=VALUE (fstab style, underscores allowed: -o allow_other),
as an environment variable S3MOUNT_NAME=VALUE (S3MOUNT_MEMORY_BUDGET=512MiB), or as "name = value" in the file
named by S3MOUNT_CONFIG. The command line wins over the environment, which wins over the file.
Sizes take K, M, G, T or KiB, MiB, GiB, TiB suffixes (binary); KB, MB, GB, TB are decimal.

Flags:
  -f, --foreground         stay attached; unmount on SIGINT or SIGTERM
  -d                       same as --debug
  -o OPT[,OPT=VALUE...]    mount options; _netdev, auto, noauto, nofail, user, users, defaults, (no)dev,
                           (no)suid, (no)exec, *atime and x-* are accepted and ignored
`)
	for _, o := range options {
		if o.name == "foreground" {
			continue
		}
		left := "--" + o.name
		if !o.boolean {
			left += " " + o.arg
		}
		fmt.Fprintf(&b, "  %-23s  %s\n", left, o.usage)
	}
	b.WriteString(`
Exit codes: 0 ready/unmounted cleanly, 1 internal error, 2 usage, 3 mount point or FUSE, 4 S3 (bucket,
credentials, endpoint), 5 the background process failed to start or died before the mount was ready.
`)
	return b.String()
}
