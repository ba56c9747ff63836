package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/s3ftp/s3ftp/cache"
	"github.com/s3ftp/s3ftp/internal/flagenv"
	"github.com/s3ftp/s3ftp/internal/metrics"
	"github.com/s3ftp/s3ftp/internal/metrics/s3metrics"
	"github.com/s3ftp/s3ftp/internal/mountinfo"
	"github.com/s3ftp/s3ftp/s3client"
	"github.com/s3ftp/s3ftp/s3mount"
	"github.com/s3ftp/s3ftp/s3mount/journal"
	"github.com/s3ftp/s3ftp/s3mount/upload"
)

// startupTimeout bounds the S3 checks made before the mount is declared ready, so a boot-time mount of an
// unreachable endpoint fails instead of hanging mount(8).
const startupTimeout = 60 * time.Second

// serve mounts the bucket, reports readiness through ready, and serves until the file system is unmounted
// (fusermount3 -u, umount) or SIGINT/SIGTERM asks for an unmount. A busy mount is then detached lazily and
// served until its last open file is closed; a second signal aborts the FUSE connection instead of waiting.
// Errors carry their exit code.
func serve(ctx context.Context, c *config, log *slog.Logger, ready func()) error {
	if err := checkMountpoint(c.Mountpoint); err != nil {
		return withCode(ExitMount, err)
	}
	s3cfg := c.S3
	s3cfg.Logger = log.With("component", "s3")
	reg := metrics.NewRegistry()
	metrics.RegisterRuntime(reg)
	sm := s3metrics.Wire(reg, &s3cfg)
	// The probe of the mount answers /healthz and gates the systemd watchdog's pings.
	health := newMountHealth(c.Mountpoint, log)
	wdInterval := watchdogInterval(log)
	// The metrics listener is bound before the S3 checks, so a taken address fails the start before anything is
	// mounted, and /metrics already counts the start-up requests.
	if c.MetricsAddr != "" {
		ms, err := metrics.Serve(c.MetricsAddr, reg.Handler(metrics.WithHealth(health)), log)
		if err != nil {
			return withCode(ExitUsage, fmt.Errorf("metrics address %s: %w", c.MetricsAddr, err))
		}
		defer ms.Close()
	}
	// The journal is locked before any S3 request, so a second daemon of the same mount fails here.
	j, err := openJournal(c)
	if err != nil {
		return err
	}
	defer func() {
		if err := j.Close(); err != nil {
			log.Error("closing the upload journal failed", "journal", j.Path(), "err", err)
		}
	}()
	sdk, err := s3client.New(ctx, s3cfg)
	if err != nil {
		return withCode(ExitS3, fmt.Errorf("S3 client for bucket %q: %w", c.S3.Bucket, err))
	}
	client := s3metrics.Client(sdk, sm)
	if err := checkBucket(ctx, c, client); err != nil {
		return err
	}

	logLayered(log, c)
	logLimits(log, c)
	setMemoryLimit(log, c.Opts.MemoryBudget, c.Opts.CacheSize)
	rctx, cancel := context.WithTimeout(ctx, startupTimeout)
	journal.Recover(rctx, j, client, log.With("component", "journal"))
	cancel()
	if c.AbortUploadsOlderThan > 0 {
		actx, cancel := context.WithTimeout(ctx, startupTimeout)
		abortStaleUploads(actx, log, client, c.Opts.Prefix, c.AbortUploadsOlderThan)
		cancel()
	}
	// From the mount on, a signal must unmount instead of killing the process and leaving a dead mount; one
	// that arrives during the mount is handled as soon as it is up.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	m, err := s3mount.Mount(ctx, c.Mountpoint, journal.Wrap(client, j, log.With("component", "journal")), c.Opts, log)
	if err != nil {
		var s3err *s3client.Error
		if errors.As(err, &s3err) {
			return withCode(ExitS3, fmt.Errorf("mounting bucket %q on %s: %w", c.S3.Bucket, c.Mountpoint, err))
		}
		return withCode(ExitMount, fmt.Errorf("mounting %s: %w", c.Mountpoint, err))
	}
	watchMount(sm, m)
	if c.AutoUnmount {
		w, err := startWatcherFor(c, log)
		if err != nil {
			log.Error("auto-unmount unavailable: if this daemon dies, the mount stays until fusermount3 -u",
				"mountpoint", c.Mountpoint, "err", err)
		}
		defer w.stop(log) // after the unmount: serve returns once the mount is gone
	}
	health.setState(stateServing)
	log.Info("ready", "bucket", c.S3.Bucket, "mountpoint", c.Mountpoint, "pid", os.Getpid(),
		"daemon", !c.Foreground)
	ready()
	if err := sdNotify("READY=1"); err != nil {
		log.Error("telling the service manager the mount is ready failed", "err", err)
	}
	wd := startWatchdog(wdInterval, wdInterval/2, health.check, sdNotify, log.With("component", "watchdog"),
		c.Mountpoint)
	defer wd.stop()

	// The connection's name must be taken now: after a lazy unmount the path no longer leads to the mount.
	connID, err := fuseConnID(c.Mountpoint)
	if err != nil {
		log.Warn("FUSE connection unknown: a second signal cannot abort a busy mount", "err", err)
	}

	done := make(chan struct{})
	go func() {
		m.Wait()
		close(done)
	}()
	detached, aborted := false, false
	for {
		select {
		case <-done:
			log.Info("unmounted", "mountpoint", c.Mountpoint)
			return nil
		case sig := <-sigs:
			switch {
			case aborted:
				log.Info("already aborting; waiting for the server to stop", "signal", sig.String())
			case detached:
				// A second signal: stop waiting for the open files. Their writes and closes fail and their
				// unfinished uploads are aborted (logged by package s3mount); no partial object is stored.
				log.Warn("aborting the FUSE connection: open files fail, unfinished uploads are aborted",
					"signal", sig.String(), "mountpoint", c.Mountpoint)
				if connID == "" {
					log.Error("cannot abort: FUSE connection unknown; still waiting for the last open file")
					continue
				}
				if err := abortFUSEConnection(connID); err != nil {
					log.Error("abort failed; still waiting for the last open file", "err", err)
					continue
				}
				aborted = true
			default:
				log.Info("unmounting", "signal", sig.String(), "mountpoint", c.Mountpoint)
				health.setState(stateStopping)
				wd.stop() // no ping after STOPPING=1
				if err := sdNotify("STOPPING=1"); err != nil {
					log.Error("telling the service manager the mount stops failed", "err", err)
				}
				err := m.Unmount()
				if err == nil {
					continue // done is closed
				}
				// Busy: a process still has a file or directory open. Detach the mount from the namespace
				// so nothing new can open it; open files keep working, writes in progress complete on close,
				// and the daemon ends with the last one, or at the next signal.
				log.Warn("mount busy; detached it: the daemon exits when the last open file is closed, "+
					"or aborts them at the next signal", "mountpoint", c.Mountpoint, "err", err)
				if derr := detach(c.Mountpoint); derr != nil {
					log.Error("lazy unmount failed; still serving", "mountpoint", c.Mountpoint, "err", derr)
					continue
				}
				detached = true
			}
		}
	}
}

// openJournal opens and locks the journal of this mount's multipart uploads in --state-dir.
func openJournal(c *config) (*journal.Journal, error) {
	path, err := journal.PathIn(c.StateDir, c.S3.Endpoint, c.S3.Bucket, c.Opts.Prefix, c.Mountpoint)
	if err != nil {
		return nil, withCode(ExitUsage, fmt.Errorf("%w (set --state-dir)", err))
	}
	header := fmt.Sprintf("s3mount upload journal: endpoint=%q bucket=%q prefix=%q mountpoint=%q",
		c.S3.Endpoint, c.S3.Bucket, c.Opts.Prefix, c.Mountpoint)
	j, err := journal.Open(path, header)
	switch {
	case errors.Is(err, journal.ErrLocked):
		return nil, withCode(ExitMount, fmt.Errorf("another s3mount of bucket %q on %s still runs (it holds %s)",
			c.S3.Bucket, c.Mountpoint, path))
	case err != nil:
		return nil, withCode(ExitUsage, fmt.Errorf("upload journal: %w (set --state-dir)", err))
	}
	return j, nil
}

// startWatcherFor starts the unmount watcher of the mount just made on c.Mountpoint.
func startWatcherFor(c *config, log *slog.Logger) (*unmountWatcher, error) {
	id, err := identifyMount(c.Mountpoint)
	if err != nil {
		return nil, err
	}
	w, err := startUnmountWatcher(c, id, log)
	if err != nil {
		return nil, err
	}
	log.Debug("unmount watcher started", "watcher_pid", w.pid, "mount_id", id.ID)
	return w, nil
}

// detach unmounts dir lazily (MNT_DETACH): as root with umount2, otherwise through fusermount3 -u -z.
func detach(dir string) error {
	if os.Geteuid() == 0 {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			return fmt.Errorf("umount2 %s MNT_DETACH: %w", dir, err)
		}
		return nil
	}
	return mountinfo.LazyUnmount(dir)
}

// checkBucket asks S3 for the bucket and a listing under the prefix (s3mount.Check), translating failures into
// one line that names the bucket and the cause.
func checkBucket(ctx context.Context, c *config, client s3client.Client) error {
	ctx, cancel := context.WithTimeout(ctx, startupTimeout)
	defer cancel()
	where := "AWS S3"
	if c.S3.Endpoint != "" {
		where = c.S3.Endpoint
	}
	err := s3mount.Check(ctx, client, c.Opts) // HEAD the bucket, then list under the prefix
	switch kind := s3client.KindOf(err); {
	case err == nil:
		return nil
	case kind == s3client.ErrNotFound:
		return withCode(ExitS3, fmt.Errorf("bucket %q does not exist at %s", c.S3.Bucket, where))
	case kind == s3client.ErrAccessDenied:
		return withCode(ExitS3, fmt.Errorf("access to bucket %q at %s denied%s: check the credentials",
			c.S3.Bucket, where, statusOf(err)))
	case kind == s3client.ErrUnavailable || kind == s3client.ErrCanceled:
		return withCode(ExitS3, fmt.Errorf("S3 endpoint %s unreachable for bucket %q: %s", where, c.S3.Bucket,
			networkCause(err)))
	default:
		return withCode(ExitS3, fmt.Errorf("checking bucket %q at %s: %v", c.S3.Bucket, where, err))
	}
}

// statusOf renders the HTTP status and S3 error code of a client error as " (403 AccessDenied)", or "".
func statusOf(err error) string {
	var e *s3client.Error
	if !errors.As(err, &e) || e.Status == 0 {
		return ""
	}
	if e.Code != "" {
		return fmt.Sprintf(" (%d %s)", e.Status, e.Code)
	}
	return fmt.Sprintf(" (%d)", e.Status)
}

// networkCause returns the network error inside err ("dial tcp 127.0.0.1:9000: connect: connection refused")
// rather than the SDK's retry narrative, or err itself when there is none.
func networkCause(err error) string {
	var op *net.OpError
	if errors.As(err, &op) {
		return op.Error()
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return dns.Error()
	}
	return err.Error()
}

// logLayered logs, in one line, the settings taken from the S3MOUNT_CONFIG file or S3MOUNT_* variables and
// where each came from, so a value nobody typed on the command line can be traced.
func logLayered(log *slog.Logger, c *config) {
	if len(c.Layered) == 0 {
		return
	}
	attrs := make([]any, 0, len(c.Layered))
	for _, e := range c.Layered {
		attrs = append(attrs, slog.String(e.Name, flagenv.Redact(e.Name, e.Value)+" ("+e.Source.String()+")"))
	}
	log.Info("settings from the environment or the configuration file", attrs...)
}

// logLimits logs the effective resource limits: what the daemon may hold in memory and the largest file it
// can write.
func logLimits(log *slog.Logger, c *config) {
	o := c.Opts
	maxObj := upload.MaxObjectSize(o.PartSize, o.MemoryBudget/2)
	log.Info("limits",
		"memory_budget", formatSize(o.MemoryBudget),
		"part_size", formatSize(o.PartSize),
		"upload_concurrency", o.UploadConcurrency,
		"max_object_size", approxSize(maxObj),
		"cache_size", formatSize(o.CacheSize),
		"max_readahead", formatSize(o.MaxReadahead),
		"cache_dir", o.CacheDir,
		"cache_dir_size", formatSize(o.CacheDirSize),
		"max_write", formatSize(int64(o.MaxWrite)),
		"peak_memory", "memory-budget + cache-size + runtime overhead + max-write per FUSE request in flight",
		"stat_ttl", o.StatTTL, "negative_ttl", o.NegativeTTL)
}

// mountStats is what the write budget, read cache and panic metrics read from a mount (*s3mount.Mounted).
type mountStats interface {
	Budget() *upload.Budget
	CacheStats() cache.Stats
	Panics() int64
}

// watchMount makes the write budget, read cache and panic metrics read the mount.
func watchMount(sm *metrics.S3Mount, m mountStats) {
	sm.WatchBudget(m.Budget())
	sm.WatchPanics(m.Panics)
	sm.WatchCache(func() metrics.CacheStats {
		st := m.CacheStats()
		// Every block fetched from S3 is a miss, whether a read or the prefetch stream asked for it.
		return metrics.CacheStats{Hits: st.Hits, Misses: st.Misses + st.Prefetched, Bytes: st.MemBytes,
			GetResumes: st.Resumes}
	})
}
