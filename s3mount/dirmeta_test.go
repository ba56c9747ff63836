package s3mount_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/s3ftp/s3ftp/s3mount/mounttest"
)

// Directory metadata in s3fs's format: mkdir stores the mode, owner and mtime on the marker "dir/", chmod,
// chown and utimens change them there, and a new mount shows them.
func TestFakeDirectoryMetadata(t *testing.T) {
	env, fake := mountFake(t, nil)
	d := filepath.Join(env.Dir, "d")
	if err := os.Mkdir(d, 0o750); err != nil {
		t.Fatal(err)
	}
	info, ok := fake.Info("d/")
	if !ok || info.Metadata["mode"] != "16872" || info.Metadata["uid"] != "0" || info.Metadata["gid"] != "0" ||
		info.Metadata["mtime"] == "" || info.ContentType != "application/x-directory" {
		t.Errorf("marker after mkdir -m 750: %v %+v; want mode 16872 (040750), uid and gid 0, an mtime", ok, info)
	}
	when := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	if err := os.Chtimes(d, when, when); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(d, 1234, 5678); err != nil {
		t.Fatal(err)
	}
	// An implicit directory (objects below, no marker) gets a marker at its first change.
	fake.Put("imp/x", []byte("x"))
	if err := os.Chmod(filepath.Join(env.Dir, "imp"), 0o711); err != nil {
		t.Fatal(err)
	}
	if info, ok := fake.Info("imp/"); !ok || info.Metadata["mode"] != "16841" {
		t.Errorf("marker of the implicit directory after chmod 711: %v %v; want mode 16841 (040711)", ok, info.Metadata)
	}

	again := mounttest.MountClient(t, fake, mounttest.Options())
	for _, c := range []struct {
		name       string
		mode       uint32
		uid, gid   uint32
		mtime      int64
		checkMtime bool
	}{
		{"d", syscall.S_IFDIR | 0o700, 1234, 5678, when.Unix(), true},
		{"imp", syscall.S_IFDIR | 0o711, 0, 0, 0, false},
	} {
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(again.Dir, c.name), &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode != c.mode || st.Uid != c.uid || st.Gid != c.gid || (c.checkMtime && st.Mtim.Sec != c.mtime) {
			t.Errorf("%s on a new mount: mode %o uid %d gid %d mtime %d; want %o %d %d %d",
				c.name, st.Mode, st.Uid, st.Gid, st.Mtim.Sec, c.mode, c.uid, c.gid, c.mtime)
		}
	}
	if got, _ := fake.Object("imp/x"); string(got) != "x" {
		t.Errorf("imp/x = %q after the directory's chmod", got)
	}
}

// rsync -a of a tree onto the mount, run a second time, has nothing to do: file and directory times, modes
// and sizes all match.
func TestFakeRsyncTwiceChangesNothing(t *testing.T) {
	if _, err := exec.LookPath("rsync"); err != nil {
		t.Fatalf("rsync is not installed (scripts/setup-test-deps.sh installs it): %v", err)
	}
	env, _ := mountFake(t, nil)
	src := t.TempDir()
	old := time.Date(2010, 5, 6, 7, 8, 9, 0, time.UTC)
	for _, p := range []string{"a/b", "a/c", "e"} {
		if err := os.MkdirAll(filepath.Join(src, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for i, p := range []string{"top.txt", "a/one.txt", "a/b/two.csv", "a/c/three.bin"} {
		if err := os.WriteFile(filepath.Join(src, p), []byte(strings.Repeat("x", 100*(i+1))), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"top.txt", "a/one.txt", "a/b/two.csv", "a/c/three.bin", "a/b", "a/c", "a", "e"} {
		if err := os.Chtimes(filepath.Join(src, p), old, old); err != nil {
			t.Fatal(err)
		}
	}
	dst := filepath.Join(env.Dir, "copy")
	rsync := func() string {
		t.Helper()
		out, err := exec.Command("rsync", "-a", "--itemize-changes", src+"/", dst+"/").CombinedOutput()
		if err != nil {
			t.Fatalf("rsync: %v\n%s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if first := rsync(); !strings.Contains(first, "a/b/two.csv") {
		t.Fatalf("first rsync copied nothing? %q", first)
	}
	if second := rsync(); second != "" {
		t.Errorf("second rsync -a changed:\n%s\nwant nothing", second)
	}
}

// Access and change times: utimens keeps the access time (x-amz-meta-atime); chmod, chown and utimens move
// the change time (x-amz-meta-ctime); a new mount shows both; a new version starts with all three equal.
func TestFakeAccessAndChangeTimes(t *testing.T) {
	env, fake := mountFake(t, nil)
	fn := filepath.Join(env.Dir, "f")
	if err := os.WriteFile(fn, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	atime := time.Date(2005, 1, 1, 0, 0, 0, 0, time.UTC)
	mtime := time.Date(2003, 1, 1, 0, 0, 0, 0, time.UTC)
	before := time.Now().Add(-time.Second)
	if err := os.Chtimes(fn, atime, mtime); err != nil {
		t.Fatal(err)
	}
	check := func(dir, when string) syscall.Stat_t {
		t.Helper()
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(dir, "f"), &st); err != nil {
			t.Fatal(err)
		}
		if st.Atim.Sec != atime.Unix() || st.Mtim.Sec != mtime.Unix() || st.Ctim.Sec < before.Unix() {
			t.Errorf("%s: atime %d mtime %d ctime %d; want %d, %d and a ctime of now", when, st.Atim.Sec,
				st.Mtim.Sec, st.Ctim.Sec, atime.Unix(), mtime.Unix())
		}
		return st
	}
	check(env.Dir, "after utimens")
	if info, _ := fake.Info("f"); info.Metadata["atime"] != "1104537600" || info.Metadata["ctime"] == "" {
		t.Errorf("headers after utimens = %v, want atime 1104537600 and a ctime", info.Metadata)
	}
	again := mounttest.MountClient(t, fake, mounttest.Options())
	check(again.Dir, "on a new mount")

	if err := os.WriteFile(fn, []byte("new version"), 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // the other mount's stat cache and kernel attributes (1 s) expire
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(again.Dir, "f"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Atim != st.Mtim || st.Ctim != st.Mtim || st.Mtim.Sec < before.Unix() {
		t.Errorf("a new version: atime %v mtime %v ctime %v, want all equal and recent", st.Atim, st.Mtim, st.Ctim)
	}
}
