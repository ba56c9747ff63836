package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/s3ftp/s3ftp/internal/miniotest"
)

// fstabHelper is where mount(8) looks for the helper of file systems of type fuse.s3mount.
const fstabHelper = "/sbin/mount.fuse.s3mount"

// installHelper makes fstabHelper run scripts/mount.s3mount: it installs a symlink when nothing is there
// (removed in t.Cleanup) and accepts an installed helper only when it is this script. It fails, never skips,
// when that is impossible.
func installHelper(t *testing.T) {
	t.Helper()
	script, err := filepath.Abs(helperScript)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(script)
	if err != nil {
		t.Fatalf("the mount helper %s: %v", script, err)
	}
	if have, err := os.ReadFile(fstabHelper); err == nil {
		if !bytes.Equal(have, want) {
			t.Fatalf("%s is installed but differs from %s; reinstall it (make install) or remove it to run this test",
				fstabHelper, helperScript)
		}
		return
	} else if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("%s: %v", fstabHelper, err)
	}
	if err := os.Symlink(script, fstabHelper); err != nil {
		t.Fatalf("installing the mount helper as %s (the test needs root): %v", fstabHelper, err)
	}
	t.Cleanup(func() {
		if err := os.Remove(fstabHelper); err != nil {
			t.Errorf("removing the helper symlink %s: %v", fstabHelper, err)
		}
	})
}

// TestFstabMount: with the helper installed as /sbin/mount.fuse.s3mount, the freshly built s3mount named by
// S3MOUNT and the credentials in the helper's env file, "mount -a -T FSTAB" mounts an fstab line of type fuse.s3mount with a key prefix and
// fstab-only options, files written to the mount land under the prefix, and umount ends the daemon.
func TestFstabMount(t *testing.T) {
	for _, tool := range []string{"mount", "umount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s (util-linux) is needed for the fstab test: %v", tool, err)
		}
	}
	srv := miniotest.Shared(t)
	bucket := srv.NewBucket(t)
	installHelper(t)

	dir := t.TempDir()
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(dir, "s3mount.log")
	// fstab cannot carry credentials: they come from the helper's env file, which must not be writable by others.
	envFile := filepath.Join(dir, "env")
	if err := os.WriteFile(envFile, []byte(strings.Join(srv.Env(), "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fstab := filepath.Join(dir, "fstab")
	line := fmt.Sprintf("%s:/uploads %s fuse.s3mount _netdev,allow_other,region=us-east-1,endpoint=%s,log_file=%s 0 0\n",
		bucket, mnt, srv.Endpoint, logFile)
	if err := os.WriteFile(fstab, []byte("# test fstab\n"+line), 0o644); err != nil {
		t.Fatal(err)
	}

	mount := exec.Command("mount", "-a", "-T", fstab)
	// mount(8) runs helpers without PATH (the helper then finds s3mount in the shell's default path,
	// /usr/local/bin or /usr/bin) but keeps the rest of the environment, so S3MOUNT names the binary under test.
	// The environment holds no AWS credentials (miniotest.Hermetic): only the env file provides them.
	mount.Env = append(os.Environ(), "S3MOUNT="+binary, "S3MOUNT_ENV_FILE="+envFile)
	out, err := mount.CombinedOutput()
	d := &daemonMount{dir: mnt, logFile: logFile}
	t.Cleanup(func() { d.unmount(t) })
	if err != nil {
		t.Fatalf("mount -a -T %s: %v: %s\nfstab: %slog:\n%s", fstab, err, out, line, readFile(logFile))
	}
	if !isMounted(t, mnt) {
		t.Fatalf("mount -a exited 0 but %s is not mounted: %s\nlog:\n%s", mnt, out, readFile(logFile))
	}
	d.pid = daemonPID(t, logFile)

	if err := os.WriteFile(filepath.Join(mnt, "hello.txt"), []byte("from fstab\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	client := srv.Client(t, bucket)
	info, err := client.HeadObject(context.Background(), "uploads/hello.txt")
	if err != nil || info.Size != int64(len("from fstab\n")) {
		t.Errorf("object uploads/hello.txt after writing through the fstab mount: %+v, %v", info, err)
	}
	if _, err := client.HeadObject(context.Background(), "hello.txt"); err == nil {
		t.Error("hello.txt stored outside the uploads/ prefix")
	}

	if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
		t.Fatalf("umount %s: %v: %s", mnt, err, out)
	}
	if isMounted(t, mnt) {
		t.Fatalf("%s still mounted after umount", mnt)
	}
	if !waitExit(d.pid, 60e9) {
		t.Errorf("s3mount daemon %d still runs a minute after umount", d.pid)
	}
}
