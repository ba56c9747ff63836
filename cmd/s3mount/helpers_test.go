package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/s3ftp/s3ftp/internal/miniotest"
	"github.com/s3ftp/s3ftp/internal/mountinfo"
)

// daemonMount is an s3mount started in daemon mode by a test; it is unmounted in t.Cleanup.
type daemonMount struct {
	dir     string // mount point
	logFile string
	pid     int // the background process
}

// runS3mount runs the binary against srv with the given arguments (the test adds --endpoint) and returns its
// exit code, stdout and stderr. extraEnv overrides srv's environment (later entries win).
func runS3mount(t *testing.T, srv *miniotest.Server, extraEnv []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, append([]string{"--endpoint", srv.Endpoint}, args...)...)
	cmd.Env = append(append(os.Environ(), srv.Env()...), extraEnv...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), out.String(), errb.String()
		}
		t.Fatalf("running %s: %v", binary, err)
	}
	return 0, out.String(), errb.String()
}

// mountDaemon mounts bucket in daemon mode and registers the unmount. The command must exit 0 once ready.
func mountDaemon(t *testing.T, srv *miniotest.Server, bucket string, args ...string) *daemonMount {
	t.Helper()
	d := &daemonMount{dir: filepath.Join(t.TempDir(), "mnt"), logFile: filepath.Join(t.TempDir(), "s3mount.log")}
	if err := os.Mkdir(d.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	args = append(append([]string{"--log-file", d.logFile}, args...), bucket, d.dir)
	code, stdout, stderr := runS3mount(t, srv, nil, args...)
	if code != 0 {
		t.Fatalf("s3mount %q exited %d\nstdout: %s\nstderr: %s\nlog:\n%s", args, code, stdout, stderr, readFile(d.logFile))
	}
	// Registered before any check below so a half-started mount is still removed.
	t.Cleanup(func() { d.unmount(t) })
	if !isMounted(t, d.dir) {
		t.Fatalf("s3mount exited 0 but %s is not mounted; log:\n%s", d.dir, readFile(d.logFile))
	}
	d.pid = daemonPID(t, d.logFile)
	return d
}

var readyPID = regexp.MustCompile(`msg=ready .*pid=(\d+)`)

// daemonPID reads the background process's PID from its "ready" log line.
func daemonPID(t *testing.T, logFile string) int {
	t.Helper()
	m := readyPID.FindStringSubmatch(readFile(logFile))
	if m == nil {
		t.Fatalf("no ready line with a pid in the log:\n%s", readFile(logFile))
	}
	pid, _ := strconv.Atoi(m[1])
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !bytes.HasPrefix(cmdline, []byte(binary)) {
		t.Fatalf("pid %d from the log is not the s3mount daemon (cmdline %q, %v)", pid, cmdline, err)
	}
	return pid
}

// unmount unmounts with fusermount3 -u (retrying while the kernel still releases files, then lazily) and waits
// for the daemon to exit; a daemon that outlives its mount is killed and fails the test.
func (d *daemonMount) unmount(t *testing.T) {
	if isMounted(t, d.dir) {
		var out []byte
		var err error
		for range 20 {
			if out, err = exec.Command("fusermount3", "-u", d.dir).CombinedOutput(); err == nil {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		if err != nil {
			t.Errorf("fusermount3 -u %s: %v: %s; unmounting lazily", d.dir, err, out)
			if err := mountinfo.LazyUnmount(d.dir); err != nil {
				t.Log(err)
			}
		}
	}
	if d.pid != 0 && !waitExit(d.pid, time.Minute) {
		t.Errorf("s3mount daemon %d still runs a minute after the unmount; killing it; log:\n%s", d.pid, readFile(d.logFile))
		syscall.Kill(d.pid, syscall.SIGKILL)
	}
	if t.Failed() {
		t.Logf("s3mount log %s:\n%s", d.logFile, readFile(d.logFile))
	}
}

// isMounted reports whether dir is a mount point in this process's mount table.
func isMounted(t *testing.T, dir string) bool {
	t.Helper()
	ok, err := mountinfo.IsMounted(dir)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// alive reports whether pid runs (a zombie waiting for its new parent to reap it counts as exited).
func alive(pid int) bool {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// Field 3, after the parenthesised command name, is the state.
	i := bytes.LastIndexByte(st, ')')
	return i < 0 || i+2 >= len(st) || st[i+2] != 'Z'
}

// waitExit polls until pid has exited or timeout passed; it reports whether the process is gone.
func waitExit(pid int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for alive(pid) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// procField returns the number after "name:" in /proc/PID/<file> (status values in kB, io values in bytes).
func procField(t *testing.T, pid int, file, name string) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/%s", pid, file))
	if err != nil {
		t.Fatalf("reading /proc/%d/%s: %v", pid, file, err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), name+":"); ok {
			fields := strings.Fields(v)
			n, err := strconv.ParseInt(fields[0], 10, 64)
			if err != nil {
				t.Fatalf("/proc/%d/%s %s: %q", pid, file, name, v)
			}
			return n
		}
	}
	t.Fatalf("/proc/%d/%s has no %s", pid, file, name)
	return 0
}

// prng is the test data: a deterministic stream of n bytes for seed, regenerated for checking instead of being
// stored on local disk.
func prng(seed uint64, n int64) io.Reader {
	var key [32]byte
	for i := range 8 {
		key[i] = byte(seed >> (8 * i))
	}
	return io.LimitReader(rand.NewChaCha8(key), n)
}

// sessionID is field 6 of /proc/PID/stat.
func sessionID(t *testing.T, pid int) int {
	t.Helper()
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(st[bytes.LastIndexByte(st, ')')+1:]))
	sid, _ := strconv.Atoi(fields[3]) // state, ppid, pgrp, session
	return sid
}

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	return string(b)
}
