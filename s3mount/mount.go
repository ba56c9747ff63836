package s3mount

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/s3ftp/s3ftp/cache"
	"github.com/s3ftp/s3ftp/internal/mountinfo"
	"github.com/s3ftp/s3ftp/internal/safego"
	"github.com/s3ftp/s3ftp/s3client"
	"github.com/s3ftp/s3ftp/s3mount/upload"
)

// fuseMaxReadAhead is the readahead the mount asks the kernel for at INIT (see kernelReadahead for what is
// used). Request sizes are Options.MaxWrite: the kernel's default (128 KiB) means eight round trips through the
// FUSE queue per megabyte; the default 1 MiB requests cut the per-request overhead on streaming reads and
// writes, which are dominated by S3 parts of several MiB anyway.
const fuseMaxReadAhead = 1 << 20

// kernelReadahead is how far ahead of a sequential reader the kernel asks for data. The kernel caps a FUSE
// mount's readahead at 128 KiB whatever MaxReadAhead says, so Mount raises the read_ahead_kb of the mount's
// backing device itself: with 128 KiB only one small READ is in flight at a time and the stream stalls between
// requests; with several MiB, several 1 MiB READs are in flight (up to MaxBackground) and each maps to one cache
// block. It never exceeds Options.MaxReadahead.
const kernelReadahead = 8 << 20

// unmountAbortWait bounds how long the end of a mount waits for the background aborts of failed uploads (see
// upload.Aborts), so that an unmount right after an S3 outage still removes their multipart uploads without
// hanging on an S3 that stays away.
const unmountAbortWait = 30 * time.Second

// Mounted is a mounted bucket. Its methods are safe for concurrent use.
type Mounted struct {
	fsys       *fsys
	server     *fuse.Server
	panics     *safego.Panics // panics recovered in requests (panicHandler) and in the mount's goroutines
	mountpoint string
	done       chan struct{}

	unmountMu sync.Mutex // serialises Unmount calls
}

// Budget returns the upload memory budget shared by the mount's write handles (for metrics).
func (m *Mounted) Budget() *upload.Budget { return m.fsys.budget }

// CacheStats returns a snapshot of the read cache's counters (for metrics).
func (m *Mounted) CacheStats() cache.Stats { return m.fsys.cache.Stats() }

// Panics returns how many panics were recovered, for metrics: in file system requests (each failed with EIO)
// and in the mount's background goroutines (part uploads, completions, aborts, prefetch streams, block fetches,
// disk-tier writes, directory rename copies; each failed its upload, block or rename). Each was logged once with
// its stack.
func (m *Mounted) Panics() int64 { return m.panics.Count() }

// Mount mounts the bucket (through client) at mountpoint and returns once the kernel serves it. opts is
// validated first; log receives one line per error (nil discards them). ctx bounds the start-up only.
func Mount(ctx context.Context, mountpoint string, client s3client.Client, opts Options, log *slog.Logger) (*Mounted, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("s3mount: invalid options: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	panics := &safego.Panics{}
	c, err := cache.New(cache.Config{MaxBytes: opts.CacheSize, DiskDir: opts.CacheDir, DiskMaxBytes: opts.CacheDirSize,
		Log: log, Panics: panics})
	if err != nil {
		return nil, fmt.Errorf("s3mount: read cache: %w", err)
	}
	f := newFsys(client, opts, log, c, panics)

	statTTL, negTTL := opts.StatTTL, opts.NegativeTTL
	allowOther := opts.AllowOther
	if allowOther && os.Geteuid() != 0 && !userAllowOther() {
		log.Warn("mounting without allow_other: only root may set it unless /etc/fuse.conf has user_allow_other; "+
			"other users cannot reach the mount", "mountpoint", mountpoint)
		allowOther = false
	}
	var mountOpts []string
	if opts.DefaultPermissions {
		mountOpts = append(mountOpts, "default_permissions")
	}
	fopts := &fs.Options{
		MountOptions: fuse.MountOptions{
			AllowOther:   allowOther,
			Options:      mountOpts,
			FsName:       "s3ftp",
			Name:         "s3mount",
			MaxWrite:     opts.MaxWrite,
			MaxReadAhead: fuseMaxReadAhead,
			// Without Xattr, answering ENOSYS once stops the kernel from asking for security.capability
			// before every write.
			DisableXAttrs: !opts.Xattr,
			// Replies never come from a file descriptor, so splicing cannot apply; left on, go-fuse would try
			// it for every READ reply (pipe set-up and an extra write) and log a failure for each 1 MiB one.
			DisableSplice: true,
			// mount(2) directly when we may: no fusermount helper process is needed.
			DirectMount: os.Geteuid() == 0,
			Debug:       opts.Debug,
			// go-fuse recovers a panic of any request (the request fails, the mount keeps serving); the
			// handler puts it in our log with its stack and counts it.
			PanicHandler: panicHandler(log, panics),
		},
		EntryTimeout:    &statTTL,
		AttrTimeout:     &statTTL,
		NegativeTimeout: &negTTL,
		UID:             opts.UID,
		GID:             opts.GID,
	}
	if opts.ReadOnly {
		fopts.MountOptions.Options = append(fopts.MountOptions.Options, "ro")
	}
	server, err := fs.Mount(mountpoint, f.root, fopts)
	if err != nil {
		return nil, fmt.Errorf("s3mount: mount %s: %w", mountpoint, err)
	}
	if ra := min(opts.MaxReadahead, kernelReadahead); ra > 0 {
		setKernelReadahead(mountpoint, ra, log)
	}
	if e, ok, err := mountinfo.Lookup(mountpoint); err == nil && ok {
		f.mounted.Store(&mountIdentity{mountpoint: e.MountPoint, id: e.ID})
	} else {
		log.Warn("the mount is not in /proc/self/mountinfo: every flush of a written file commits it",
			"mountpoint", mountpoint, "err", err)
	}
	m := &Mounted{fsys: f, server: server, panics: panics, mountpoint: mountpoint, done: make(chan struct{})}
	panics.Go(log, "s3mount: ending the mount", func() {
		defer close(m.done) // Wait and Unmount return even if aborting the uploads panicked
		server.Wait()
		f.abortWrites("unmounted")
		f.waitAborts(unmountAbortWait)
	})
	log.Info("mounted", "mountpoint", mountpoint, "prefix", opts.Prefix, "read_only", opts.ReadOnly,
		"stat_ttl", opts.StatTTL, "memory_budget", opts.MemoryBudget, "cache_size", opts.CacheSize)
	return m, nil
}

// userAllowOther reports whether /etc/fuse.conf lets users other than root mount with allow_other.
func userAllowOther() bool {
	b, err := os.ReadFile("/etc/fuse.conf")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(line) == "user_allow_other" {
			return true
		}
	}
	return false
}

// Wait blocks until the file system is unmounted, by Unmount or from outside (fusermount -u, umount), and the
// aborts of failed uploads ended (at most 30 s more).
func (m *Mounted) Wait() { <-m.done }

// Unmount unmounts the file system and waits until its server stopped. It fails (and changes nothing) while
// the mount is busy; it may be called again. Uploads still open after the unmount are aborted, each with a log
// line: nothing is flushed silently. It waits at most 30 s for the background aborts of failed uploads.
func (m *Mounted) Unmount() error {
	m.unmountMu.Lock()
	defer m.unmountMu.Unlock()
	select {
	case <-m.done:
		return nil
	default:
	}
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if err = m.server.Unmount(); err == nil {
			<-m.done
			return nil
		}
		// The kernel may still be finishing RELEASE requests of files just closed.
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("s3mount: unmount %s: %w", m.mountpoint, err)
}

// waitAborts waits up to d for the background aborts of failed uploads and logs what it left running.
func (f *fsys) waitAborts(d time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := f.aborts.Wait(ctx); err != nil {
		f.log.Warn("unmounted with multipart upload aborts still being retried; they end with the process",
			"pending", f.aborts.Pending(), "waited", d)
	}
}

// Check verifies, before the mount is started or daemonized, that the bucket exists and that the credentials
// may list it (under opts.Prefix). Its error says which of the two failed.
func Check(ctx context.Context, client s3client.Client, opts Options) error {
	if err := opts.Validate(); err != nil {
		return fmt.Errorf("invalid options: %w", err)
	}
	if err := client.HeadBucket(ctx); err != nil {
		return checkError("bucket check (HeadBucket)", err)
	}
	if _, err := client.List(ctx, opts.Prefix, "/", "", 1); err != nil {
		return checkError(fmt.Sprintf("listing prefix %q", opts.Prefix), err)
	}
	return nil
}

func checkError(what string, err error) error {
	switch {
	case errors.Is(err, s3client.ErrNotFound):
		return fmt.Errorf("%s: bucket not found: %w", what, err)
	case errors.Is(err, s3client.ErrAccessDenied):
		return fmt.Errorf("%s: access denied (check the credentials and the bucket policy): %w", what, err)
	case errors.Is(err, s3client.ErrUnavailable):
		return fmt.Errorf("%s: S3 endpoint unreachable or failing: %w", what, err)
	default:
		return fmt.Errorf("%s: %w", what, err)
	}
}

// setKernelReadahead sets the read_ahead_kb of the backing device of the FUSE mount at mountpoint to bytes.
// Only root may; otherwise the kernel's 128 KiB stays, which costs speed, not correctness, so a failure is
// logged and ignored.
func setKernelReadahead(mountpoint string, bytes int64, log *slog.Logger) {
	var st syscall.Stat_t
	if err := syscall.Stat(mountpoint, &st); err != nil {
		log.Info("kernel readahead unchanged: cannot stat the mount point", "mountpoint", mountpoint, "err", err)
		return
	}
	dev := uint64(st.Dev)
	major := (dev>>8)&0xfff | (dev>>32)&^0xfff
	minor := dev&0xff | (dev>>12)&^0xff
	path := fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", major, minor)
	if err := os.WriteFile(path, []byte(strconv.FormatInt(bytes>>10, 10)), 0); err != nil {
		log.Info("kernel readahead unchanged (needs root): sequential reads through the mount are slower",
			"path", path, "err", err)
	}
}

// panicHandler returns go-fuse's MountOptions.PanicHandler: it runs in the deferred recover of the request that
// panicked, so the stack it logs still shows the operation and the code that panicked. The request fails with
// EIO. Goroutines outside a request run under the same counter through safego (see the package doc).
func panicHandler(log *slog.Logger, panics *safego.Panics) func(any) fuse.Status {
	return func(v any) fuse.Status {
		panics.Recovered(log, "file system request (EIO)", v)
		return fuse.EIO
	}
}
