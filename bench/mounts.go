package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/s3ftp/s3ftp/internal/mountinfo"
)

// mountTool knows how to run one FUSE daemon over a bucket in the foreground.
type mountTool struct {
	name string
	// command returns the daemon's argv and extra environment for a mount of bucket at mp, with cacheDir as an
	// empty directory on the tool's scratch file system.
	command func(e *benchEnv, bucket, mp, cacheDir string) (argv []string, env []string)
	// cold says what "cold" means for this tool, for the README and the JSON.
	cold string
	// chroot puts the mount point under benchEnv.chrootBase, whose path sshd accepts as a ChrootDirectory.
	chroot bool
}

// mountTools builds the daemon definitions. s3fs and rclone get no cache beyond what each mode needs; their
// cache and temporary directories are on the scratch file system so the disk figures see them.
func mountTools() map[string]mountTool {
	return map[string]mountTool{
		toolS3mount: {
			name: toolS3mount,
			command: func(e *benchEnv, bucket, mp, cacheDir string) ([]string, []string) {
				return []string{e.s3mountBin, "-f", "--endpoint", e.endpoint, "--region", "us-east-1",
					"--memory-budget", strconv.FormatInt(e.opts.MemoryBudget, 10),
					"--cache-size", strconv.FormatInt(e.opts.CacheSize, 10), bucket, mp}, nil
			},
			cold: "fresh s3mount process (its read cache lives in memory only) after sync and drop_caches",
		},
		toolS3fs: {
			name: toolS3fs,
			command: func(e *benchEnv, bucket, mp, cacheDir string) ([]string, []string) {
				return []string{"s3fs", bucket, mp, "-f", "-o", "url=" + e.endpoint + ",use_path_request_style," +
					"passwd_file=" + e.s3fsPasswd + ",endpoint=us-east-1,tmpdir=" + cacheDir}, nil
			},
			cold: "fresh s3fs process without use_cache (no disk cache) after sync and drop_caches",
		},
		toolRcloneOff: {
			name:    toolRcloneOff,
			command: rcloneCommand("off"),
			cold:    "fresh rclone process with --vfs-cache-mode off after sync and drop_caches",
		},
		toolRcloneWrites: {
			name:    toolRcloneWrites,
			command: rcloneCommand("writes"),
			cold:    "fresh rclone process with an empty --cache-dir after sync and drop_caches",
		},
	}
}

// rcloneCommand is the rclone mount command line for one --vfs-cache-mode; the remote lives in the environment
// only, so no rclone.conf is read or written.
func rcloneCommand(mode string) func(e *benchEnv, bucket, mp, cacheDir string) ([]string, []string) {
	return func(e *benchEnv, bucket, mp, cacheDir string) ([]string, []string) {
		return []string{"rclone", "mount", "minio:" + bucket, mp, "--vfs-cache-mode", mode, "--cache-dir", cacheDir,
				"--config", "/dev/null", "--log-level", "NOTICE"},
			[]string{"RCLONE_CONFIG_MINIO_TYPE=s3", "RCLONE_CONFIG_MINIO_PROVIDER=Minio",
				"RCLONE_CONFIG_MINIO_ENDPOINT=" + e.endpoint, "RCLONE_CONFIG_MINIO_REGION=us-east-1",
				"RCLONE_CONFIG_MINIO_ACCESS_KEY_ID=" + e.accessKey,
				"RCLONE_CONFIG_MINIO_SECRET_ACCESS_KEY=" + e.secretKey}
	}
}

// session is one running daemon serving one mount point.
type session struct {
	tool    string
	mp      string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{} // closed when the daemon process has been waited for
	waitErr error         // valid after exited is closed

	stopOnce sync.Once
}

// mountRegistry tracks live sessions so that a failure or a signal unmounts them all.
type mountRegistry struct {
	mu       sync.Mutex // guards live
	live     map[*session]bool
	aborting bool
}

// newMountRegistry returns an empty registry.
func newMountRegistry() *mountRegistry { return &mountRegistry{live: map[*session]bool{}} }

// add registers a session before its daemon starts; it fails once the run is being aborted.
func (r *mountRegistry) add(s *session) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.aborting {
		return errors.New("the run is being stopped")
	}
	r.live[s] = true
	return nil
}

// remove forgets a session whose daemon has exited.
func (r *mountRegistry) remove(s *session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.live, s)
}

// abortAll lazily unmounts every live mount and kills its daemon, so I/O blocked in it returns, and refuses new
// mounts.
func (r *mountRegistry) abortAll() {
	r.mu.Lock()
	r.aborting = true
	var all []*session
	for s := range r.live {
		all = append(all, s)
	}
	r.mu.Unlock()
	for _, s := range all {
		s.kill()
	}
}

// startSession runs the tool's daemon on a fresh mount point and waits until the kernel lists the mount.
func (e *benchEnv) startSession(ctx context.Context, t mountTool, bucket, cacheDir string) (*session, error) {
	parent := e.work
	if t.chroot {
		parent = e.chrootBase
	}
	mp, err := os.MkdirTemp(parent, "mnt-"+t.name+"-")
	if err != nil {
		return nil, err
	}
	argv, extraEnv := t.command(e, bucket, mp, cacheDir)
	e.sessionSeq++
	s := &session{tool: t.name, mp: mp, logPath: filepath.Join(e.logDir, fmt.Sprintf("%03d-%s.log", e.sessionSeq, t.name)),
		exited: make(chan struct{})}
	logf, err := os.Create(s.logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "# %s\n", strings.Join(argv, " "))
	s.cmd = exec.Command(argv[0], argv[1:]...)
	s.cmd.Env = append(e.childEnv(cacheDir), extraEnv...)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := e.mounts.add(s); err != nil {
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		e.mounts.remove(s)
		return nil, fmt.Errorf("%s: start: %w", t.name, err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.exited)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if mounted(mp) {
			return s, nil
		}
		select {
		case <-s.exited:
			e.mounts.remove(s)
			return nil, fmt.Errorf("%s exited before mounting (%v): %s", t.name, s.waitErr, tailFile(s.logPath))
		case <-ctx.Done():
			e.stopSession(s)
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			e.stopSession(s)
			return nil, fmt.Errorf("%s did not mount within 60s: %s", t.name, tailFile(s.logPath))
		}
	}
}

// peakRSS is the daemon's VmHWM, -1 when it cannot be read (the process already exited).
func (s *session) peakRSS() int64 {
	v, err := vmHWM(s.cmd.Process.Pid)
	if err != nil {
		slog.Warn("daemon peak RSS unreadable", "tool", s.tool, "err", err)
		return -1
	}
	return v
}

// stopSession unmounts cleanly and waits for the daemon to exit; if either takes too long it unmounts lazily
// and kills the daemon. It returns an error when the clean path failed, so a daemon that crashed or refused to
// unmount is visible in the report.
func (e *benchEnv) stopSession(s *session) error {
	defer e.mounts.remove(s)
	var errs []error
	if mounted(s.mp) {
		if out, err := exec.Command("fusermount3", "-u", s.mp).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("fusermount3 -u: %v: %s", err, bytes.TrimSpace(out)))
		}
	}
	select {
	case <-s.exited:
		if s.waitErr != nil {
			errs = append(errs, fmt.Errorf("%s exited with %v: %s", s.tool, s.waitErr, tailFile(s.logPath)))
		}
	case <-time.After(60 * time.Second):
		errs = append(errs, fmt.Errorf("%s did not exit within 60s of the unmount", s.tool))
		s.kill()
	}
	if len(errs) > 0 {
		s.kill()
	}
	os.Remove(s.mp)
	return errors.Join(errs...)
}

// kill lazily unmounts the mount point and kills the daemon's process group; it waits for the daemon to exit.
func (s *session) kill() {
	s.stopOnce.Do(func() {
		mountinfo.LazyUnmount(s.mp)
		if s.cmd.Process != nil {
			syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		}
	})
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		slog.Error("daemon did not exit after SIGKILL", "tool", s.tool, "pid", s.cmd.Process.Pid)
	}
}

// mounted reports whether dir is a mount point now (an unreadable table counts as not mounted).
func mounted(dir string) bool {
	ok, err := mountinfo.IsMounted(dir)
	return ok && err == nil
}

// tailFile returns the last lines of a log file, for error messages.
func tailFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return fmt.Sprintf("log %s: %s", path, strings.Join(lines, " | "))
}
