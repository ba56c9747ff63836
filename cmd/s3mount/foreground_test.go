package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/s3ftp/s3ftp/internal/miniotest"
	"github.com/s3ftp/s3ftp/internal/mountinfo"
)

// foregroundMount is "s3mount -f" running as a child of the test.
type foregroundMount struct {
	cmd     *exec.Cmd
	dir     string
	logFile string
	exited  chan struct{}
	waitErr error
}

// mountForeground starts s3mount -f and waits for its ready log line. The cleanup unmounts and kills what is
// left.
func mountForeground(t *testing.T, srv *miniotest.Server, bucket string, args ...string) *foregroundMount {
	t.Helper()
	m := &foregroundMount{dir: filepath.Join(t.TempDir(), "mnt"), logFile: filepath.Join(t.TempDir(), "s3mount.log"),
		exited: make(chan struct{})}
	if err := os.Mkdir(m.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	args = append(append([]string{"-f", "--endpoint", srv.Endpoint, "--log-file", m.logFile}, args...), bucket, m.dir)
	m.cmd = exec.Command(binary, args...)
	m.cmd.Env = append(os.Environ(), srv.Env()...)
	var stderr bytes.Buffer
	m.cmd.Stderr = &stderr
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		m.waitErr = m.cmd.Wait()
		close(m.exited)
	}()
	t.Cleanup(func() {
		if isMounted(t, m.dir) {
			if err := mountinfo.LazyUnmount(m.dir); err != nil {
				t.Log(err)
			}
		}
		select {
		case <-m.exited:
		case <-time.After(time.Minute):
			t.Errorf("s3mount -f still runs at the end of the test; killing it")
			m.cmd.Process.Kill()
			<-m.exited
		}
		if t.Failed() {
			t.Logf("stderr: %s\nlog:\n%s", stderr.String(), readFile(m.logFile))
		}
	})
	for deadline := time.Now().Add(time.Minute); !strings.Contains(readFile(m.logFile), "msg=ready"); {
		select {
		case <-m.exited:
			t.Fatalf("s3mount -f exited before it was ready: %v\nstderr: %s\nlog:\n%s", m.waitErr, stderr.String(), readFile(m.logFile))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("s3mount -f not ready after a minute; log:\n%s", readFile(m.logFile))
		}
	}
	return m
}

// wait waits for the process to exit and returns its exit code.
func (m *foregroundMount) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-m.exited:
	case <-time.After(2 * time.Minute):
		t.Fatalf("s3mount -f did not exit")
	}
	return m.cmd.ProcessState.ExitCode()
}

// TestForegroundUnmountsOnSignal: SIGTERM unmounts an idle foreground mount and the command exits 0.
func TestForegroundUnmountsOnSignal(t *testing.T) {
	srv := miniotest.Shared(t)
	bucket := srv.NewBucket(t)
	m := mountForeground(t, srv, bucket)
	if err := os.WriteFile(filepath.Join(m.dir, "a.txt"), []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := m.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := m.wait(t); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0", code)
	}
	if isMounted(t, m.dir) {
		t.Errorf("%s still mounted after SIGTERM", m.dir)
	}
	log := readFile(m.logFile)
	for _, want := range []string{"msg=unmounting signal=terminated", "msg=unmounted"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if _, err := srv.Client(t, bucket).HeadObject(context.Background(), "a.txt"); err != nil {
		t.Errorf("object written before the signal: %v", err)
	}
}

// TestForegroundSignalWhileWriting: SIGINT while a file is open for writing detaches the mount at once; the
// open file keeps working, its upload completes on close, and then the command exits 0.
func TestForegroundSignalWhileWriting(t *testing.T) {
	srv := miniotest.Shared(t)
	bucket := srv.NewBucket(t)
	m := mountForeground(t, srv, bucket, "--memory-budget", "32MiB", "--part-size", "8MiB", "--cache-size", "32MiB",
		"--max-readahead", "16MiB")
	const half = 12 << 20
	src := prng(7, 2*half)
	f, err := os.Create(filepath.Join(m.dir, "open.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(f, src, half); err != nil {
		t.Fatal(err)
	}
	if err := m.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); isMounted(t, m.dir); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s still in the mount table a minute after SIGINT with a file open", m.dir)
		}
	}
	select {
	case <-m.exited:
		t.Fatalf("s3mount exited while a file was still open for writing: %v", m.waitErr)
	default:
	}
	if _, err := io.CopyN(f, src, half); err != nil {
		t.Fatalf("write to the open file after the detach: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close after the detach: %v", err)
	}
	if code := m.wait(t); code != 0 {
		t.Errorf("exit code = %d, want 0", code)
	}
	info, err := srv.Client(t, bucket).HeadObject(context.Background(), "open.bin")
	if err != nil || info.Size != 2*half {
		t.Errorf("object of the file closed after the detach: size %d, %v; want %d", info.Size, err, 2*half)
	}
	if log := readFile(m.logFile); !strings.Contains(log, "mount busy; detached it") {
		t.Errorf("no line about the lazy detach in the log:\n%s", log)
	}
}

// TestForegroundSecondSignalAborts: a second SIGTERM while a detached mount still has a file open for writing
// aborts the FUSE connection: the writer gets an error, the unfinished upload is aborted with a log line, no
// object and no multipart upload remain, and the command exits 0.
func TestForegroundSecondSignalAborts(t *testing.T) {
	srv := miniotest.Shared(t)
	bucket := srv.NewBucket(t)
	m := mountForeground(t, srv, bucket, "--memory-budget", "32MiB", "--part-size", "8MiB", "--cache-size", "32MiB",
		"--max-readahead", "16MiB")
	src := prng(8, 64<<20)
	f, err := os.Create(filepath.Join(m.dir, "cut.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.CopyN(f, src, 20<<20); err != nil {
		t.Fatal(err)
	}
	if err := m.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); isMounted(t, m.dir); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s still in the mount table a minute after SIGTERM with a file open", m.dir)
		}
	}
	if err := m.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := m.wait(t); code != 0 {
		t.Errorf("exit code after the second SIGTERM = %d, want 0", code)
	}
	_, werr := io.CopyN(f, src, 1<<20)
	cerr := f.Close()
	if werr == nil && cerr == nil {
		t.Errorf("write and close after the abort succeeded; want an error")
	}
	log := readFile(m.logFile)
	for _, want := range []string{"aborting the FUSE connection", "upload aborted", "cut.bin"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	client := srv.Client(t, bucket)
	if info, err := client.HeadObject(context.Background(), "cut.bin"); err == nil {
		t.Errorf("an aborted upload left an object: %+v", info)
	}
	if ups, err := client.ListMultipartUploads(context.Background(), ""); err != nil || len(ups) != 0 {
		t.Errorf("multipart uploads after the abort: %+v, %v; want none", ups, err)
	}
}

// processState is field 3 of /proc/PID/stat: R, S, D, T (stopped), Z, ...
func processState(t *testing.T, pid int) byte {
	t.Helper()
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	return st[bytes.LastIndexByte(st, ')')+2]
}

// minioPID finds the MinIO process serving srv's data directory.
func minioPID(t *testing.T, srv *miniotest.Server) int {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if strings.Contains(filepath.Base(args[0]), "minio") && slices.Contains(args, srv.DataDir) {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			return pid
		}
	}
	t.Fatalf("no minio process with data directory %s", srv.DataDir)
	return 0
}

// TestForegroundWatchdog: under a service manager that asks for a watchdog (NOTIFY_SOCKET and
// WATCHDOG_USEC=2000000, no WATCHDOG_PID), s3mount -f sends READY=1 and then WATCHDOG=1 repeatedly. A silent S3
// (MinIO stopped with SIGSTOP) with a lookup hanging on it does not stop the pings. While the daemon is stopped
// no ping arrives; a stat of the root is still answered by the kernel from its attribute cache, a statfs is not
// (the reason the probe is a statfs); pings resume after SIGCONT. SIGTERM sends STOPPING=1 and no ping after it.
func TestForegroundWatchdog(t *testing.T) {
	srv := miniotest.Start(t)
	bucket := srv.NewBucket(t)
	l := notifyListener(t)
	// A ping every second, each after a statfs that answered within 500 ms: slack enough for a loaded CI machine
	// under -race, so that the test's "no ping skipped" holds for a mount that answers.
	t.Setenv("WATCHDOG_USEC", "2000000")
	m := mountForeground(t, srv, bucket, "--stat-ttl", "1h")
	if got := receive(t, l, time.Minute); got != "READY=1" {
		t.Fatalf("first notification %q, want READY=1", got)
	}
	pings := func(what string, n int) {
		t.Helper()
		for i := range n {
			if got := receive(t, l, time.Minute); got != "WATCHDOG=1" {
				t.Fatalf("%s: notification %d is %q, want WATCHDOG=1\nlog:\n%s", what, i, got, readFile(m.logFile))
			}
		}
	}
	pings("mounted", 2)

	// S3 goes silent: a lookup of a name the daemon has not seen waits for S3; the root's statfs does not.
	mpid := minioPID(t, srv)
	if err := syscall.Kill(-mpid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumeMinio := sync.OnceFunc(func() { syscall.Kill(-mpid, syscall.SIGCONT) })
	t.Cleanup(resumeMinio)
	lookupDone := make(chan error, 1)
	go func() {
		_, err := os.Stat(filepath.Join(m.dir, "unseen.txt"))
		lookupDone <- err
	}()
	drain(t, l)
	pings("S3 silent", 3)
	select {
	case err := <-lookupDone:
		t.Fatalf("the lookup returned (%v) while MinIO was stopped: the test proved nothing", err)
	default:
	}
	resumeMinio()
	if err := <-lookupDone; !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("lookup after MinIO resumed: %v, want ENOENT", err)
	}

	// The daemon stops: no ping; stat of the root still answers (attribute cache), statfs waits for the daemon.
	if _, err := os.Stat(m.dir); err != nil { // refresh the root's attributes
		t.Fatal(err)
	}
	pid := m.cmd.Process.Pid
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumeDaemon := sync.OnceFunc(func() { syscall.Kill(pid, syscall.SIGCONT) })
	t.Cleanup(resumeDaemon)
	waitFor(t, "the daemon to stop", func() bool { return processState(t, pid) == 'T' })
	drain(t, l)
	statfsDone := make(chan error, 1)
	go func() {
		var st syscall.Statfs_t
		statfsDone <- syscall.Statfs(m.dir, &st)
	}()
	if _, err := os.Stat(m.dir); err != nil {
		t.Errorf("stat of the root while the daemon is stopped: %v", err)
	}
	if got := receive(t, l, 2*time.Second); got != "" { // two ping intervals
		t.Errorf("a stopped daemon sent %q", got)
	}
	select {
	case err := <-statfsDone:
		t.Errorf("statfs of the root returned (%v) while the daemon was stopped", err)
	default:
	}
	resumeDaemon()
	if err := <-statfsDone; err != nil {
		t.Errorf("statfs after SIGCONT: %v", err)
	}
	pings("after SIGCONT", 2)

	if err := m.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := m.wait(t); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0", code)
	}
	var after []string
	for got := receive(t, l, 100*time.Millisecond); got != ""; got = receive(t, l, 100*time.Millisecond) {
		after = append(after, got)
	}
	if i := slices.Index(after, "STOPPING=1"); i < 0 || slices.Contains(after[i+1:], "WATCHDOG=1") {
		t.Errorf("notifications around the stop: %q; want STOPPING=1 and no ping after it", after)
	}
	log := readFile(m.logFile)
	if !strings.Contains(log, "systemd watchdog on") {
		t.Errorf("no line announcing the watchdog:\n%s", log)
	}
	if strings.Contains(log, "watchdog ping skipped") {
		t.Errorf("a ping was skipped although the mount answered throughout:\n%s", log)
	}
}
