package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
