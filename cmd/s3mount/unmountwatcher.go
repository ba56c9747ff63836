package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/s3ftp/s3ftp/internal/mountinfo"
)

// The unmount watcher: the equivalent of fusermount3's auto_unmount, which go-fuse cannot use (it closes
// fusermount3's socket right after the mount, and mounts without fusermount3 as root).
//
// Once the mount is up, serve starts "s3mount --unmount-watcher ..." (this executable again, through
// /proc/self/exe) in its own session. The watcher holds the read end of a pipe whose write end only the daemon
// holds (close-on-exec, so no other child inherits it), ignores SIGINT, SIGTERM and SIGHUP (a service manager
// stopping the daemon's control group must not stop the watcher before it has done its job), says "ready" on
// its stdout (the daemon waits for that before it reports the mount ready) and blocks reading the pipe. The read ends when the daemon exits in any way, SIGKILL included. The watcher then looks for the
// daemon's mount, by the mount ID, device number and path recorded when it was made:
//
//   - not in the mount table: the daemon unmounted cleanly; the watcher exits without a word;
//   - another file system is mounted over it: unmounting the path would remove that one; left alone, logged;
//   - the file system on the path still answers (statfs succeeds): a new daemon's mount that got the same ID
//     and device number (the kernel reuses both) after someone else removed the dead one; left alone, logged;
//   - it answers ENOTCONN (or ECONNABORTED), as a FUSE mount does once its server is gone: the watcher unmounts
//     it lazily (umount2 MNT_DETACH as root, "fusermount3 -u -z" otherwise), logs one line, and exits.
//
// A new daemon's mount on the same directory is thus never touched. On a clean stop the daemon closes the pipe
// after the unmount and waits for the watcher to exit, so no watcher outlives a cleanly stopped daemon.

// watcherArg is the first argument of the watcher mode; it also marks the process (pgrep -f unmount-watcher).
const watcherArg = "--unmount-watcher"

// watcherStopWait bounds the daemon's wait for its watcher to exit after a clean unmount.
const watcherStopWait = 10 * time.Second

// probeTimeout bounds the watcher's statfs of the mount point: a mount that does not answer within it is not
// known to be dead and is left alone.
const probeTimeout = 10 * time.Second

// mountIdentity names one mount: its mount ID and device number in the mount table, and its mount point as the
// table spells it. The kernel may give both numbers to a later mount once this one is gone.
type mountIdentity struct {
	ID   int
	Dev  uint64
	Path string
}

// identifyMount finds the mount made on dir: the mount table's entry on dir (or, when dir goes through a
// symbolic link, on the path the kernel records) whose device is the one stat(dir) reports now.
func identifyMount(dir string) (mountIdentity, error) {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return mountIdentity{}, fmt.Errorf("stat %s: %w", dir, err)
	}
	entries, err := mountinfo.Read()
	if err != nil {
		return mountIdentity{}, err
	}
	if e, ok := mountinfo.Top(entries, filepath.Clean(dir)); ok && e.Dev == st.Dev {
		return mountIdentity{ID: e.ID, Dev: e.Dev, Path: e.MountPoint}, nil
	}
	for _, e := range slices.Backward(entries) {
		if e.Dev == st.Dev && strings.HasPrefix(e.FSType, "fuse") {
			return mountIdentity{ID: e.ID, Dev: e.Dev, Path: e.MountPoint}, nil
		}
	}
	return mountIdentity{}, fmt.Errorf("no entry for %s (device %d:%d) in the mount table", dir, unix.Major(st.Dev), unix.Minor(st.Dev))
}

// mountState is what the watcher finds of the daemon's mount in the mount table.
type mountState int

const (
	mountGone    mountState = iota // not in the table: unmounted
	mountCovered                   // in the table, but another file system is mounted over it
	mountOnTop                     // in the table and the one a lookup of its path reaches
)

// locateMount finds id in the mount table entries (pure, for tests).
func locateMount(entries []mountinfo.Entry, id mountIdentity) mountState {
	found := slices.ContainsFunc(entries, func(e mountinfo.Entry) bool {
		return e.ID == id.ID && e.Dev == id.Dev && e.MountPoint == id.Path
	})
	if !found {
		return mountGone
	}
	if top, _ := mountinfo.Top(entries, id.Path); top.ID != id.ID {
		return mountCovered
	}
	return mountOnTop
}

// unmountWatcher is the daemon's handle on its watcher process.
type unmountWatcher struct {
	pid      int
	w        *os.File      // the pipe's write end; closing it tells the watcher the daemon is done
	stopping atomic.Bool   // set by stop: the watcher's exit is expected
	done     chan struct{} // closed once the watcher exited
}

// startUnmountWatcher starts the watcher of the mount id. It logs where the daemon logs: --log-file, syslog
// for a daemon without one, stderr in the foreground.
func startUnmountWatcher(c *config, id mountIdentity, log *slog.Logger) (*unmountWatcher, error) {
	r, w, err := os.Pipe() // both ends close-on-exec: only ExtraFiles passes r on
	if err != nil {
		return nil, fmt.Errorf("unmount watcher pipe: %w", err)
	}
	args := []string{watcherArg,
		"--mount-id", strconv.Itoa(id.ID), "--dev", strconv.FormatUint(id.Dev, 10),
		"--daemon-pid", strconv.Itoa(os.Getpid()),
		"--log-format", c.LogFormat, "--log-level", c.LogLevel.String()}
	switch {
	case c.LogFile != "":
		args = append(args, "--log-file", c.LogFile)
	case !c.Foreground:
		args = append(args, "--syslog")
	}
	args = append(args, "--", id.Path)
	cmd := exec.Command("/proc/self/exe", args...)
	cmd.Args[0] = os.Args[0]
	cmd.Stderr = os.Stderr // stdin: /dev/null
	out, err := cmd.StdoutPipe()
	if err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("unmount watcher pipe: %w", err)
	}
	cmd.ExtraFiles = []*os.File{r}
	cmd.Dir = "/"
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "NOTIFY_SOCKET=") })
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	// The /dev/fuse descriptor (opened without close-on-exec when mounting directly) must not reach the
	// watcher: while any process holds it the kernel keeps the connection open, and the dead mount would hang
	// instead of answering ENOTCONN.
	if err := closeInheritedOnExec(); err != nil {
		r.Close()
		w.Close()
		return nil, err
	}
	err = cmd.Start()
	r.Close()
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("starting the unmount watcher: %w", err)
	}
	// The watcher says "ready" once it ignores the stop signals; until then a SIGTERM to the unit would end it.
	line := make(chan string, 1)
	go func() {
		l, _ := readStatusLine(out)
		line <- l
	}()
	select {
	case l := <-line:
		if l != "ready" {
			w.Close()
			werr := cmd.Wait()
			return nil, fmt.Errorf("the unmount watcher did not start (%v); see the log", werr)
		}
	case <-time.After(watcherStopWait):
		cmd.Process.Kill()
		w.Close()
		cmd.Wait()
		return nil, fmt.Errorf("the unmount watcher did not report ready within %v; killed it", watcherStopWait)
	}
	u := &unmountWatcher{pid: cmd.Process.Pid, w: w, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		if !u.stopping.Load() {
			log.Error("the unmount watcher ended while the mount is up: if this daemon dies, the mount stays "+
				"until fusermount3 -u", "watcher_pid", u.pid, "err", err)
		}
		close(u.done)
	}()
	return u, nil
}

// stop tells the watcher that the daemon is done (after the unmount) and waits for it to exit, so no watcher
// outlives a cleanly stopped daemon. It is called once.
func (u *unmountWatcher) stop(log *slog.Logger) {
	if u == nil {
		return
	}
	u.stopping.Store(true)
	u.w.Close()
	select {
	case <-u.done:
	case <-time.After(watcherStopWait):
		log.Warn("the unmount watcher has not exited; leaving it", "watcher_pid", u.pid, "waited", watcherStopWait)
	}
}

// runUnmountWatcher is the watcher process (args after watcherArg); it returns the exit code.
func runUnmountWatcher(args []string) int {
	fs := flag.NewFlagSet("s3mount "+watcherArg, flag.ContinueOnError)
	var id mountIdentity
	var dev uint64
	var daemonPID int
	var logFormat, logLevel, logFile string
	var useSyslog bool
	fs.IntVar(&id.ID, "mount-id", 0, "mount ID of the daemon's mount")
	fs.Uint64Var(&dev, "dev", 0, "device number of the daemon's mount")
	fs.IntVar(&daemonPID, "daemon-pid", 0, "the daemon's PID, for the log")
	fs.StringVar(&logFormat, "log-format", "text", "text or json")
	fs.StringVar(&logLevel, "log-level", "INFO", "log level")
	fs.StringVar(&logFile, "log-file", "", "append logs to this file")
	fs.BoolVar(&useSyslog, "syslog", false, "log to syslog")
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 || id.ID == 0 || dev == 0 {
		fmt.Fprintln(os.Stderr, "s3mount: "+watcherArg+" is started by the s3mount daemon itself")
		return ExitUsage
	}
	id.Dev, id.Path = dev, fs.Arg(0)
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	// Tell the daemon the signals are ignored (it waits for this before it reports the mount ready).
	fmt.Fprintln(os.Stdout, "ready")
	os.Stdout.Close()

	c := &config{LogFormat: logFormat}
	if err := c.LogLevel.UnmarshalText([]byte(logLevel)); err != nil {
		c.LogLevel = slog.LevelInfo
	}
	var w io.Writer = os.Stderr
	switch {
	case logFile != "":
		f, err := openLogFile(logFile)
		if err == nil {
			defer f.Close()
			w = f
		}
	case useSyslog:
		w = daemonLogWriter()
	}
	log := newLogger(c, w).With("component", "unmount-watcher", "daemon_pid", daemonPID, "mountpoint", id.Path)

	pipe := os.NewFile(3, "s3mount-daemon")
	if pipe == nil {
		log.Error("unmount watcher started without the daemon's pipe")
		return ExitUsage
	}
	// Returns when the daemon has exited (EOF) or closed the pipe after its unmount.
	_, err := io.Copy(io.Discard, pipe)
	pipe.Close()
	if err != nil {
		log.Error("reading the daemon's pipe failed; not unmounting", "err", err)
		return ExitInternal
	}
	return unmountIfDead(id, log)
}

// unmountIfDead unmounts the daemon's mount when it is still there and its server is gone (see the top of this
// file); it returns the exit code.
func unmountIfDead(id mountIdentity, log *slog.Logger) int {
	entries, err := mountinfo.Read()
	if err != nil {
		log.Error("the daemon ended; reading the mount table failed, not unmounting", "err", err)
		return ExitInternal
	}
	switch locateMount(entries, id) {
	case mountGone:
		return ExitOK
	case mountCovered:
		log.Warn("the daemon ended without unmounting, but another file system is mounted over its mount; "+
			"left alone (unmount both with fusermount3 -u -z)", "mount_id", id.ID)
		return ExitOK
	}
	dead, err := connectionGone(id.Path, probeTimeout)
	if !dead {
		log.Info("the daemon ended; the file system on its mount point is not a dead FUSE connection (a new "+
			"mount?), left alone", "mount_id", id.ID, "statfs", errString(err))
		return ExitOK
	}
	if err := detach(id.Path); err != nil {
		log.Error("the daemon ended without unmounting; unmounting its dead mount failed", "mount_id", id.ID, "err", err)
		return ExitMount
	}
	log.Warn("the daemon ended without unmounting; unmounted its dead mount", "mount_id", id.ID)
	return ExitOK
}

// connectionGone reports whether the file system at path answers statfs with ENOTCONN or ECONNABORTED, as a
// FUSE mount whose server has gone does (statfs always reaches the server; the kernel caches no answer). A
// statfs that succeeds, fails otherwise, or does not return within timeout (its error says so) is not that.
func connectionGone(path string, timeout time.Duration) (bool, error) {
	res := make(chan error, 1)
	go func() {
		var st unix.Statfs_t
		res <- unix.Statfs(path, &st)
	}()
	select {
	case err := <-res:
		return errors.Is(err, unix.ENOTCONN) || errors.Is(err, unix.ECONNABORTED), err
	case <-time.After(timeout):
		return false, fmt.Errorf("statfs %s did not answer within %v", path, timeout)
	}
}

func errString(err error) string {
	if err == nil {
		return "answered"
	}
	return err.Error()
}
