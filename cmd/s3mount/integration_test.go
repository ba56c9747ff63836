package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/s3ftp/s3ftp/internal/miniotest"
	"github.com/s3ftp/s3ftp/s3client"
)

// TestLargeWriteStreamsWithinMemoryBudget writes 1 GiB with dd through the mount and reads it back with cmp.
// The data come from a seeded PRNG on both sides, so no copy exists on local disk. It proves the start-up
// limits hold: the daemon's peak RSS stays within memory budget + cache size + a fixed overhead, and the daemon
// itself writes (almost) nothing to local disk.
func TestLargeWriteStreamsWithinMemoryBudget(t *testing.T) {
	const (
		size     = 1 << 30
		budget   = 64 << 20
		cache    = 64 << 20
		overhead = 100 << 20 // Go runtime, FUSE request buffers, HTTP connections, the binary's text
		seed     = 1
	)
	srv := miniotest.Shared(t)
	bucket := srv.NewBucket(t)
	d := mountDaemon(t, srv, bucket, "--memory-budget", "64MiB", "--part-size", "8MiB", "--cache-size", "64MiB",
		"--max-readahead", "32MiB")
	writtenBefore := procField(t, d.pid, "io", "write_bytes")
	path := filepath.Join(d.dir, "big.bin")

	dd := exec.Command("dd", "of="+path, "bs=1M", "iflag=fullblock", "status=none")
	dd.Stdin = prng(seed, size)
	if out, err := dd.CombinedOutput(); err != nil {
		t.Fatalf("dd of=%s: %v: %s", path, err, out)
	}
	info, err := srv.Client(t, bucket).HeadObject(context.Background(), "big.bin")
	if err != nil || info.Size != size {
		t.Fatalf("object after dd: size %d, %v; want %d", info.Size, err, size)
	}

	cmp := exec.Command("cmp", "-", path)
	cmp.Stdin = prng(seed, size)
	if out, err := cmp.CombinedOutput(); err != nil {
		t.Fatalf("cmp of the PRNG stream against %s: %v: %s", path, err, out)
	}

	hwm := procField(t, d.pid, "status", "VmHWM") << 10
	t.Logf("daemon peak RSS %d MiB (limit %d MiB)", hwm>>20, (budget+cache+overhead)>>20)
	if hwm > budget+cache+overhead {
		t.Errorf("daemon peak RSS %d MiB exceeds memory budget %d MiB + cache %d MiB + %d MiB overhead",
			hwm>>20, budget>>20, cache>>20, overhead>>20)
	}
	// The log file is the only thing the daemon writes locally.
	if w := procField(t, d.pid, "io", "write_bytes") - writtenBefore; w > 4<<20 {
		t.Errorf("daemon wrote %d bytes to local disk while streaming %d bytes: written data must not be staged on disk", w, size)
	}
}

// TestDaemonModeReturnsWhenReady: "s3mount BUCKET DIR" exits 0 once the mount serves requests, the daemon runs
// detached in its own session, files round-trip between the mount and S3, and fusermount3 -u ends the daemon.
func TestDaemonModeReturnsWhenReady(t *testing.T) {
	srv := miniotest.Shared(t)
	bucket := srv.NewBucket(t)
	client := srv.Client(t, bucket)
	ctx := context.Background()
	d := mountDaemon(t, srv, bucket)

	if sid := sessionID(t, d.pid); sid != d.pid {
		t.Errorf("daemon %d is in session %d, want its own session", d.pid, sid)
	}
	if err := os.WriteFile(filepath.Join(d.dir, "hello.txt"), []byte("hello\n"), 0o644); err != nil {
		t.Fatalf("write through the mount: %v", err)
	}
	body, _, err := client.GetObject(ctx, "hello.txt", 0, -1, "")
	if err != nil {
		t.Fatalf("object written through the mount: %v", err)
	}
	got, _ := io.ReadAll(body)
	body.Close()
	if string(got) != "hello\n" {
		t.Errorf("object = %q, want %q", got, "hello\n")
	}
	if _, err := client.PutObject(ctx, "remote.txt", []byte("from s3"), s3client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(d.dir, "remote.txt")); err != nil || string(b) != "from s3" {
		t.Errorf("object put in S3 read through the mount: %q, %v", b, err)
	}

	if out, err := exec.Command("fusermount3", "-u", d.dir).CombinedOutput(); err != nil {
		t.Fatalf("fusermount3 -u: %v: %s", err, out)
	}
	if !waitExit(d.pid, time.Minute) {
		t.Fatalf("daemon %d still runs after fusermount3 -u", d.pid)
	}
	if log := readFile(d.logFile); !strings.Contains(log, "msg=unmounted") {
		t.Errorf("no unmounted line in the log:\n%s", log)
	}
}

// TestStartupErrors: a mount that cannot start exits non-zero with one line on stderr naming the cause, and
// leaves neither a mount nor a process behind.
func TestStartupErrors(t *testing.T) {
	srv := miniotest.Shared(t)
	bucket := srv.NewBucket(t)
	busy := mountDaemon(t, srv, bucket)

	tests := []struct {
		name     string
		env      []string
		args     []string // before the operands
		bucket   string
		mnt      string // "" means a fresh empty directory
		wantCode int
		want     []string // substrings of the line
	}{
		{name: "missing bucket", bucket: "no-such-bucket-s3mount", wantCode: ExitS3,
			want: []string{`"no-such-bucket-s3mount"`, "does not exist"}},
		{name: "missing bucket in the foreground", args: []string{"-f"}, bucket: "no-such-bucket-s3mount",
			wantCode: ExitS3, want: []string{`"no-such-bucket-s3mount"`, "does not exist"}},
		{name: "bad credentials", env: []string{"AWS_SECRET_ACCESS_KEY=wrong-secret"}, bucket: bucket,
			wantCode: ExitS3, want: []string{bucket, "denied", "credentials"}},
		{name: "mount point missing", bucket: bucket, mnt: "/nonexistent/s3mount-test", wantCode: ExitMount,
			want: []string{"/nonexistent/s3mount-test", "does not exist"}},
		{name: "mount point busy", bucket: bucket, mnt: busy.dir, wantCode: ExitMount,
			want: []string{busy.dir, "busy"}},
		{name: "unknown option", args: []string{"-o", "frobnicate"}, bucket: bucket, wantCode: ExitUsage,
			want: []string{`"frobnicate"`}},
		{name: "invalid limits", args: []string{"--memory-budget", "1M"}, bucket: bucket, wantCode: ExitUsage,
			want: []string{"memory-budget"}},
		{name: "endpoint unreachable", args: []string{"--endpoint", "http://127.0.0.1:1"}, bucket: bucket,
			wantCode: ExitS3, want: []string{"unreachable", "127.0.0.1:1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mnt := tt.mnt
			if mnt == "" {
				mnt = t.TempDir()
			}
			logFile := filepath.Join(t.TempDir(), "log")
			args := append(append([]string{"--log-file", logFile}, tt.args...), tt.bucket, mnt)
			code, stdout, stderr := runS3mount(t, srv, tt.env, args...)
			if code != tt.wantCode {
				t.Errorf("exit code %d, want %d; stderr: %s", code, tt.wantCode, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
			lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "s3mount: ") {
				t.Errorf("stderr is %d lines, want one \"s3mount: ...\" line:\n%s", len(lines), stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q does not name %q", stderr, w)
				}
			}
			if mnt != busy.dir && isMounted(t, mnt) {
				exec.Command("fusermount3", "-u", mnt).Run()
				t.Errorf("a failed start left %s mounted", mnt)
			}
			if pids := processesWithArg(t, logFile); len(pids) > 0 {
				t.Errorf("a failed start left s3mount processes %v running", pids)
			}
		})
	}
	// The busy mount still works after the refused second mount.
	if _, err := os.ReadDir(busy.dir); err != nil {
		t.Errorf("first mount after a refused second mount: %v", err)
	}
}

// TestMinIOStopsDuringLargeWrite: when S3 goes away during a large write, the writer gets an error from write
// or close, no object appears, no multipart upload is left once S3 is back, and a new write then succeeds.
func TestMinIOStopsDuringLargeWrite(t *testing.T) {
	srv := miniotest.Start(t)
	bucket := srv.NewBucket(t)
	d := mountDaemon(t, srv, bucket, "--memory-budget", "32MiB", "--part-size", "8MiB", "--cache-size", "32MiB",
		"--max-readahead", "16MiB")
	const limit = 1 << 30 // far above the budget: the writer must fail well before writing it all
	path := filepath.Join(d.dir, "big.bin")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	src := prng(4, limit)
	buf := make([]byte, 1<<20)
	var written int64
	var werr error
	for written < limit {
		if _, err := io.ReadFull(src, buf); err != nil {
			t.Fatal(err)
		}
		n, err := f.Write(buf)
		written += int64(n)
		if err != nil {
			werr = err
			break
		}
		if written == 48<<20 {
			// Parts are in flight or uploaded, the upload is not complete.
			if err := srv.Stop(); err != nil {
				t.Fatalf("stop minio: %v", err)
			}
		}
	}
	cerr := f.Close()
	t.Logf("after %d MiB: write error %v, close error %v", written>>20, werr, cerr)
	if werr == nil && cerr == nil {
		t.Fatalf("writing %d MiB while MinIO was stopped reported no error from write or close", written>>20)
	}

	if err := srv.Restart(); err != nil {
		t.Fatalf("restart minio: %v", err)
	}
	client := srv.Client(t, bucket)
	ctx := context.Background()
	if info, err := client.HeadObject(ctx, "big.bin"); !errors.Is(err, s3client.ErrNotFound) {
		t.Errorf("failed upload left an object: %+v, %v", info, err)
	}
	// The daemon aborts the upload; while S3 was down the abort may have to wait for it to come back.
	var uploads []s3client.Upload
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		uploads, err = client.ListMultipartUploads(ctx, "")
		if err != nil {
			t.Fatalf("list multipart uploads: %v", err)
		}
		if len(uploads) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(uploads) != 0 {
		t.Errorf("multipart uploads left after the failed write: %+v", uploads)
	}

	after := filepath.Join(d.dir, "after.bin")
	const afterSize = 24 << 20
	f, err = os.Create(after)
	if err != nil {
		t.Fatalf("create after restart: %v", err)
	}
	if _, err := io.Copy(f, prng(5, afterSize)); err != nil {
		t.Fatalf("write after restart: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close after restart: %v", err)
	}
	got, err := os.ReadFile(after)
	if err != nil {
		t.Fatalf("read back after restart: %v", err)
	}
	want, _ := io.ReadAll(prng(5, afterSize))
	if !bytes.Equal(got, want) {
		t.Errorf("file written after the restart reads back different (%d bytes, want %d)", len(got), len(want))
	}
}

// processesWithArg lists the PIDs of s3mount processes whose command line contains arg.
func processesWithArg(t *testing.T, arg string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !bytes.HasPrefix(cmdline, []byte(binary)) || !bytes.Contains(cmdline, []byte(arg)) {
			continue
		}
		if alive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestDaemonDropsInheritedFiles: a descriptor the caller leaked into s3mount (no close-on-exec, as mount(8) or a
// shell may) does not live on in the daemon, where it would keep the caller's pipe open forever.
func TestDaemonDropsInheritedFiles(t *testing.T) {
	srv := miniotest.Shared(t)
	bucket := srv.NewBucket(t)
	var p [2]int
	if err := syscall.Pipe(p[:]); err != nil { // without O_CLOEXEC: inherited by exec
		t.Fatal(err)
	}
	defer syscall.Close(p[0])
	defer syscall.Close(p[1])
	leaked, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", p[1]))
	if err != nil {
		t.Fatal(err)
	}
	d := mountDaemon(t, srv, bucket)
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", d.pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		if target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", d.pid, fd.Name())); target == leaked {
			t.Errorf("daemon holds the caller's %s as fd %s", leaked, fd.Name())
		}
	}
}

// TestOptionsReachTheMount: -o ro, uid, gid, file_mode, dir_mode and umask given on the command line are what
// the mounted file system shows.
func TestOptionsReachTheMount(t *testing.T) {
	srv := miniotest.Shared(t)
	bucket := srv.NewBucket(t)
	client := srv.Client(t, bucket)
	if _, err := client.PutObject(context.Background(), "dir/file.txt", []byte("content"), s3client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	d := mountDaemon(t, srv, bucket, "-o", "ro,uid=1234,gid=5678,file_mode=0666,dir_mode=0777,umask=0027")

	if b, err := os.ReadFile(filepath.Join(d.dir, "dir", "file.txt")); err != nil || string(b) != "content" {
		t.Errorf("read on a read-only mount: %q, %v", b, err)
	}
	err := os.WriteFile(filepath.Join(d.dir, "new.txt"), []byte("x"), 0o644)
	if !errors.Is(err, syscall.EROFS) {
		t.Errorf("create on a read-only mount: %v, want EROFS", err)
	}
	for path, want := range map[string]os.FileMode{"dir/file.txt": 0o640, "dir": os.ModeDir | 0o750} {
		fi, err := os.Stat(filepath.Join(d.dir, path))
		if err != nil {
			t.Errorf("stat %s: %v", path, err)
			continue
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode() != want || st.Uid != 1234 || st.Gid != 5678 {
			t.Errorf("%s: mode %v uid %d gid %d; want %v 1234 5678", path, fi.Mode(), st.Uid, st.Gid, want)
		}
	}
}
