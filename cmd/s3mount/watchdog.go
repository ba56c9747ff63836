package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"
)

// watchdogFromEnv reports the ping interval the service manager asks of this process, as
// sd_watchdog_enabled(3) reads it: WATCHDOG_USEC set to a positive number of microseconds, and WATCHDOG_PID
// unset or equal to pid. The interval is half of WATCHDOG_USEC, as sd_watchdog_enabled(3) recommends. 0 means no
// watchdog; an error names a malformed variable (the watchdog is then off too).
func watchdogFromEnv(getenv func(string) string, pid int) (time.Duration, error) {
	usec := getenv("WATCHDOG_USEC")
	if usec == "" {
		return 0, nil
	}
	if p := getenv("WATCHDOG_PID"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("WATCHDOG_PID=%q is not a process ID", p)
		}
		if n != pid {
			return 0, nil // meant for another process (the one that started this one)
		}
	}
	n, err := strconv.ParseUint(usec, 10, 63)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("WATCHDOG_USEC=%q is not a positive number of microseconds", usec)
	}
	return time.Duration(n) * time.Microsecond / 2, nil
}

// watchdog sends "WATCHDOG=1" to the service manager every interval while a liveness probe of the daemon's
// own mount answers within half the interval, so systemd (WatchdogSec= in s3mount@.service) kills and restarts a
// daemon that is alive but no longer serves its mount.
//
// # The probe
//
// The probe is mountHealth.check: a statfs(2) of the mount root, at most one in flight (a hung one cannot be
// cancelled; later probes wait for it instead of piling up threads blocked in the kernel). statfs and not stat:
// the kernel answers stat(2) of the root from its attribute cache for --stat-ttl without asking the daemon,
// while every statfs(2) of a FUSE mount becomes a FUSE_STATFS request (the kernel caches no statfs result), so
// a ping proves that the kernel reached the daemon, that the daemon read the request from /dev/fuse, that
// go-fuse's node table answered and that the reply came back, all within half the interval. With the interval
// half of WatchdogSec=, two pings are then never more than 3/4 of WatchdogSec= apart while the mount answers.
// The root's Statfs (dirNode.Statfs) answers with constants and never calls S3, so an S3 outage cannot stop
// the pings: S3 failures are bounded by the client's timeouts and surface as EIO to the operation that needed
// S3; restarting the daemon would not bring S3 back and would cut every transfer in progress.
//
// What the probe does not see: a single file or directory whose requests are stuck (for example an inode lock
// held by a request that never returns) while the rest of the mount serves; that operation waits, and the
// watchdog keeps pinging.
//
// Pings start after READY=1 (systemd arms the watchdog at start-up completion; the S3 checks and the journal
// recovery before it are bounded by startupTimeout instead) and stop before STOPPING=1 (systemd stops the
// watchdog once the unit deactivates; TimeoutStopSec= bounds the stop).
type watchdog struct {
	interval time.Duration
	timeout  time.Duration                                          // of one probe; half the interval in production
	probe    func(ctx context.Context, timeout time.Duration) error // mountHealth.check in production
	notify   func(state string) error                               // sdNotify in production
	log      *slog.Logger
	dir      string // the mount point, for log lines

	cancel context.CancelFunc
	done   chan struct{}
}

// startWatchdog starts probing with timeout and pinging every interval in a goroutine, and logs that it did;
// stop ends it. A zero interval starts nothing and returns a watchdog whose stop does nothing.
func startWatchdog(interval, timeout time.Duration, probe func(context.Context, time.Duration) error,
	notify func(string) error, log *slog.Logger, dir string) *watchdog {
	w := &watchdog{interval: interval, timeout: timeout, probe: probe, notify: notify, log: log, dir: dir}
	if interval <= 0 {
		return w
	}
	log.Info("systemd watchdog on", "ping_interval", interval, "probe", "statfs of the mount root",
		"probe_timeout", timeout)
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel, w.done = cancel, make(chan struct{})
	go func() {
		defer close(w.done)
		w.run(ctx)
	}()
	return w
}

// stop ends the pings and returns once no further ping can be sent. It may be called more than once.
func (w *watchdog) stop() {
	if w == nil || w.cancel == nil {
		return
	}
	w.cancel()
	<-w.done
}

// run probes and pings every interval until ctx ends. It logs once (WARN) when a ping is skipped, naming the
// probe's error, and once (INFO) when pings resume; a failed send is logged once until a send succeeds again.
func (w *watchdog) run(ctx context.Context) {
	t := time.NewTicker(w.interval)
	defer t.Stop()
	healthy, sendOK := true, true
	for {
		err := w.probe(ctx, w.timeout)
		if ctx.Err() != nil {
			return
		}
		switch {
		case err != nil:
			if healthy {
				w.log.Warn("watchdog ping skipped: the mount did not answer its probe; systemd restarts the "+
					"daemon if this lasts WatchdogSec", "mountpoint", w.dir, "err", err)
				healthy = false
			}
		default:
			if !healthy {
				w.log.Info("watchdog pings resumed: the mount answers its probe again", "mountpoint", w.dir)
				healthy = true
			}
			if err := w.notify("WATCHDOG=1"); err != nil {
				if sendOK {
					w.log.Error("sending the watchdog ping to the service manager failed", "err", err)
				}
				sendOK = false
			} else {
				sendOK = true
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// watchdogInterval reads and then clears WATCHDOG_USEC and WATCHDOG_PID (as sd_watchdog_enabled(3) with
// unset_environment does, so the unmount watcher and any other child never take the request as theirs). A
// malformed value is logged and turns the watchdog off.
func watchdogInterval(log *slog.Logger) time.Duration {
	d, err := watchdogFromEnv(os.Getenv, os.Getpid())
	os.Unsetenv("WATCHDOG_USEC")
	os.Unsetenv("WATCHDOG_PID")
	if err != nil {
		log.Error("systemd watchdog off: malformed environment", "err", err)
		return 0
	}
	return d
}
