package s3mount_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/s3ftp/s3ftp/internal/miniotest"
	"github.com/s3ftp/s3ftp/s3mount/mounttest"
)

// mountS3fs mounts bucket with Debian's s3fs (use_xattr, stat cache of one second) and unmounts it when the
// test ends.
func mountS3fs(t *testing.T, srv *miniotest.Server, bucket string) string {
	t.Helper()
	if _, err := exec.LookPath("s3fs"); err != nil {
		t.Fatalf("s3fs is not installed (scripts/setup-test-deps.sh installs it): %v", err)
	}
	dir := t.TempDir()
	mnt := filepath.Join(dir, "mnt")
	passwd := filepath.Join(dir, "passwd")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(passwd, []byte(srv.AccessKey+":"+srv.SecretKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("s3fs", bucket, mnt, "-f", "-o", "url="+srv.Endpoint+",use_path_request_style,passwd_file="+
		passwd+",endpoint=us-east-1,use_xattr,stat_cache_expire=1,tmpdir="+dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start s3fs: %v", err)
	}
	t.Cleanup(func() {
		exec.Command("fusermount3", "-u", mnt).Run()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			exec.Command("fusermount3", "-uz", mnt).Run()
			<-done
		}
		if t.Failed() {
			t.Logf("s3fs output:\n%s", out.String())
		}
	})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var st, parent syscall.Stat_t
		if syscall.Stat(mnt, &st) == nil && syscall.Stat(dir, &parent) == nil && st.Dev != parent.Dev {
			return mnt
		}
		if time.Now().After(deadline) {
			t.Fatalf("s3fs did not mount %s within 30 s:\n%s", mnt, out.String())
		}
	}
}

// s3fs and s3mount over one bucket read what the other wrote: directory modes and times, file modes and
// owners, symlinks, user.* extended attributes.
func TestMinioS3fsCompat(t *testing.T) {
	srv := miniotest.Shared(t)
	bucket := srv.NewBucket(t)
	o := mounttest.Options()
	o.Xattr = true
	env := mounttest.MountClient(t, srv.Client(t, bucket), o)
	s3fs := mountS3fs(t, srv, bucket)
	when := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)

	write := func(root, prefix string) {
		t.Helper()
		d := filepath.Join(root, prefix+"dir")
		if err := os.Mkdir(d, 0o750); err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(d, "file.txt")
		if err := os.WriteFile(f, []byte(prefix+" content"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(f, 1234, 5678); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("file.txt", filepath.Join(d, "link")); err != nil {
			t.Fatal(err)
		}
		if err := unix.Setxattr(f, "user.origin", []byte(prefix), 0); err != nil {
			t.Fatalf("%s: setxattr: %v", prefix, err)
		}
		if err := os.Chtimes(f, when, when); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(d, when, when); err != nil {
			t.Fatal(err)
		}
	}
	check := func(root, prefix, by string) {
		t.Helper()
		d := filepath.Join(root, prefix+"dir")
		var st syscall.Stat_t
		if err := syscall.Stat(d, &st); err != nil {
			t.Errorf("%s reading %s's directory: %v", by, prefix, err)
			return
		}
		if st.Mode != syscall.S_IFDIR|0o750 || st.Mtim.Sec != when.Unix() {
			t.Errorf("%s reading %s's directory: mode %o mtime %d, want 40750 %d", by, prefix, st.Mode, st.Mtim.Sec, when.Unix())
		}
		f := filepath.Join(d, "file.txt")
		if err := syscall.Stat(f, &st); err != nil {
			t.Errorf("%s reading %s's file: %v", by, prefix, err)
			return
		}
		if st.Mode != syscall.S_IFREG|0o600 || st.Uid != 1234 || st.Gid != 5678 || st.Mtim.Sec != when.Unix() {
			t.Errorf("%s reading %s's file: mode %o uid %d gid %d mtime %d, want 100600 1234 5678 %d",
				by, prefix, st.Mode, st.Uid, st.Gid, st.Mtim.Sec, when.Unix())
		}
		if got, err := os.ReadFile(f); err != nil || string(got) != prefix+" content" {
			t.Errorf("%s reading %s's file: %q, %v", by, prefix, got, err)
		}
		if target, err := os.Readlink(filepath.Join(d, "link")); err != nil || target != "file.txt" {
			t.Errorf("%s reading %s's symlink: %q, %v", by, prefix, target, err)
		}
		buf := make([]byte, 64)
		if n, err := unix.Getxattr(f, "user.origin", buf); err != nil || string(buf[:n]) != prefix {
			t.Errorf("%s reading %s's user.origin: %q, %v", by, prefix, buf[:max(n, 0)], err)
		}
	}

	write(env.Dir, "s3mount")
	write(s3fs, "s3fs")
	time.Sleep(1100 * time.Millisecond) // both stat caches (1 s) forget what they saw before the other wrote
	check(s3fs, "s3mount", "s3fs")
	check(env.Dir, "s3fs", "s3mount")
}
