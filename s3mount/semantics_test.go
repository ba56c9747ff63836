package s3mount_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/s3ftp/s3ftp/s3client"
	"github.com/s3ftp/s3ftp/s3client/s3fake"
	"github.com/s3ftp/s3ftp/s3mount/mounttest"
)

// Appending 1 MiB to a 64 MiB object (O_APPEND, as FTP's APPE does) stores the concatenation without
// downloading the object: its bytes become the first part through UploadPartCopy, and only the appended
// mebibyte travels.
func TestFakeAppendCopiesServerSide(t *testing.T) {
	env, fake := mountFake(t, nil)
	old := pattern(64<<20, 11)
	fake.Put("big.log", old)
	fake.ResetCounters()
	more := pattern(1<<20, 12)
	f, err := os.OpenFile(filepath.Join(env.Dir, "big.log"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatalf("open O_APPEND: %v", err)
	}
	if _, err := f.Write(more); err != nil {
		t.Fatalf("append: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	down, up := fake.BytesDownloaded(), fake.BytesUploaded()
	got, _ := fake.Object("big.log")
	if !bytes.Equal(got, append(old, more...)) {
		t.Fatalf("object after append: %d bytes, want %d (old + appended)", len(got), len(old)+len(more))
	}
	if down >= 2<<20 {
		t.Errorf("appending downloaded %d bytes from S3, want < 2 MiB", down)
	}
	if up >= 2<<20 {
		t.Errorf("appending uploaded %d bytes, want < 2 MiB", up)
	}
	if n := fake.Calls("UploadPartCopy"); n != 1 {
		t.Errorf("UploadPartCopy calls = %d, want 1 (the 64 MiB kept prefix)", n)
	}
}

// Appending to an object smaller than a part (the shell's >>) fetches the small prefix into the first part.
func TestFakeAppendSmallObject(t *testing.T) {
	env, fake := mountFake(t, nil)
	fake.Put("s.txt", []byte("one\n"))
	f, err := os.OpenFile(filepath.Join(env.Dir, "s.txt"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("two\n"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got, _ := fake.Object("s.txt"); string(got) != "one\ntwo\n" {
		t.Errorf("object = %q, want %q", got, "one\ntwo\n")
	}
	// Opening for append and closing without writing changes nothing.
	fake.ResetCounters()
	f, err = os.OpenFile(filepath.Join(env.Dir, "s.txt"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got, _ := fake.Object("s.txt"); string(got) != "one\ntwo\n" {
		t.Errorf("object after an open without writes = %q", got)
	}
	if n := fake.Calls("PutObject") + fake.Calls("CompleteMultipartUpload"); n != 0 {
		t.Errorf("an open without writes stored the object %d times", n)
	}
}

// A write at offset n of an existing object without truncation (FTP's REST n + STOR, dd conv=notrunc) keeps
// the bytes before n and after the written range, as on a local disk; both ends are conditional on the
// object's ETag.
func TestFakeWriteAtOffsetKeepsTheRest(t *testing.T) {
	env, fake := mountFake(t, nil)
	fn := filepath.Join(env.Dir, "t")
	for _, c := range []struct {
		off  int64
		data string
		want string
	}{
		{3, "ab", "012ab56789"},
		{0, "XY", "XY2ab56789"},
		{8, "!!!!", "XY2ab567!!!!"},
		{12, "+", "XY2ab567!!!!+"},
	} {
		if c.off == 3 {
			fake.Put("t", []byte("0123456789"))
		}
		f, err := os.OpenFile(fn, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte(c.data), c.off); err != nil {
			t.Fatalf("write at %d: %v", c.off, err)
		}
		if err := f.Close(); err != nil {
			t.Fatalf("close after a write at %d: %v", c.off, err)
		}
		if got, _ := fake.Object("t"); string(got) != c.want {
			t.Errorf("after writing %q at %d: object %q, want %q", c.data, c.off, got, c.want)
		}
		if b, err := os.ReadFile(fn); err != nil || string(b) != c.want {
			t.Errorf("after writing %q at %d: read back %q, %v", c.data, c.off, b, err)
		}
	}
	if len(fake.Uploads()) != 0 {
		t.Errorf("unfinished uploads left: %v", fake.Uploads())
	}
}

// truncate shortens an object server-side and grows it with zeros; a handle truncated to n writes after the
// kept n bytes.
func TestFakeTruncateShortens(t *testing.T) {
	env, fake := mountFake(t, nil)
	fake.Put("t", []byte("0123456789"))
	fn := filepath.Join(env.Dir, "t")
	if err := os.Truncate(fn, 4); err != nil {
		t.Fatalf("truncate to 4: %v", err)
	}
	if got, _ := fake.Object("t"); string(got) != "0123" {
		t.Errorf("object after truncate(4) = %q", got)
	}
	if err := os.Truncate(fn, 10); err != nil {
		t.Errorf("truncate to 10 (growing) = %v", err)
	}
	if got, _ := fake.Object("t"); string(got) != "0123\x00\x00\x00\x00\x00\x00" {
		t.Errorf("object after truncate(10) = %q, want 0123 and 6 zeros", got)
	}
	f, err := os.OpenFile(fn, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(2); err != nil {
		t.Fatalf("ftruncate(2): %v", err)
	}
	if _, err := f.WriteAt([]byte("xyz"), 2); err != nil {
		t.Fatalf("write after ftruncate(2): %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got, _ := fake.Object("t"); string(got) != "01xyz" {
		t.Errorf("object = %q, want 01xyz", got)
	}
}

// Truly random writes into an existing object fail with EINVAL and change nothing: no object with a hole or a
// mix is stored, and no multipart upload is left behind.
func TestFakeRandomWritesRefused(t *testing.T) {
	env, fake := mountFake(t, nil)
	old := pattern(12<<20, 5)
	fake.Put("r", old)
	f, err := os.OpenFile(filepath.Join(env.Dir, "r"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(pattern(6<<20, 6), 6<<20); err != nil {
		t.Fatalf("first write at 6 MiB: %v", err)
	}
	if _, err := f.WriteAt([]byte("back"), 1<<20); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("write back at 1 MiB = %v, want EINVAL", err)
	}
	if err := f.Close(); !errors.Is(err, syscall.EIO) {
		t.Errorf("close after a refused write = %v, want EIO", err)
	}
	if got, _ := fake.Object("r"); !bytes.Equal(got, old) {
		t.Errorf("object changed by a refused random write")
	}
	if ups := uploadsAfterAborts(fake); len(ups) != 0 {
		t.Errorf("unfinished uploads left: %v", ups)
	}
}

func statT(t *testing.T, fn string) syscall.Stat_t {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(fn, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// chmod, chown and utimens on a closed file store s3fs's headers by copying the object onto itself (content
// and Content-Type unchanged); setting what is already stored costs no copy; a new mount over the same bucket
// shows them.
func TestFakeAttributesPersist(t *testing.T) {
	env, fake := mountFake(t, nil)
	fake.PutWith("a.csv", []byte("x,y\n"), s3client.PutOptions{ContentType: "text/csv"})
	fn := filepath.Join(env.Dir, "a.csv")
	mtime := time.Unix(1600000000, 250000000)
	fake.ResetCounters()
	if err := os.Chmod(fn, 0o640); err != nil {
		t.Fatalf("chmod: %v", err)
	}
	if err := os.Chown(fn, 1001, 1002); err != nil {
		t.Fatalf("chown: %v", err)
	}
	if err := os.Chtimes(fn, mtime, mtime); err != nil {
		t.Fatalf("utimens: %v", err)
	}
	if n := fake.Calls("CopyObject"); n != 3 {
		t.Errorf("CopyObject calls = %d, want one per change (3)", n)
	}
	info, _ := fake.Info("a.csv")
	want := map[string]string{"mode": "33184", "uid": "1001", "gid": "1002", "mtime": "1600000000.250000000"}
	for k, v := range want {
		if info.Metadata[k] != v {
			t.Errorf("x-amz-meta-%s = %q, want %q (all: %v)", k, info.Metadata[k], v, info.Metadata)
		}
	}
	if got, _ := fake.Object("a.csv"); string(got) != "x,y\n" || info.ContentType != "text/csv" {
		t.Errorf("content %q, type %q; want them unchanged", got, info.ContentType)
	}
	fake.ResetCounters()
	if err := os.Chmod(fn, 0o640); err != nil {
		t.Fatal(err)
	}
	if n := fake.Calls("CopyObject"); n != 0 {
		t.Errorf("chmod to the stored mode copied the object %d times", n)
	}

	again := mounttest.MountClient(t, fake, mounttest.Options())
	st := statT(t, filepath.Join(again.Dir, "a.csv"))
	if st.Mode != syscall.S_IFREG|0o640 || st.Uid != 1001 || st.Gid != 1002 || st.Mtim.Sec != mtime.Unix() ||
		st.Mtim.Nsec != int64(mtime.Nanosecond()) {
		t.Errorf("after remount: mode %o uid %d gid %d mtime %d.%09d; want 100640 1001 1002 %d.%09d",
			st.Mode, st.Uid, st.Gid, st.Mtim.Sec, st.Mtim.Nsec, mtime.Unix(), mtime.Nanosecond())
	}
}

// Objects without s3fs headers show their LastModified and the mount's owner and mode.
func TestFakeAttributesDefaults(t *testing.T) {
	lm := time.Date(2020, 5, 6, 7, 8, 9, 0, time.UTC)
	fake := s3fake.New()
	fake.SetClock(func() time.Time { return lm })
	fake.Put("plain", []byte("p"))
	o := mounttest.Options()
	o.UID, o.GID, o.FileMode, o.Umask = 4321, 8765, 0o666, 0o027
	env := mounttest.MountClient(t, fake, o)
	st := statT(t, filepath.Join(env.Dir, "plain"))
	if st.Mode != syscall.S_IFREG|0o640 || st.Uid != 4321 || st.Gid != 8765 || st.Mtim.Sec != lm.Unix() {
		t.Errorf("stat = mode %o uid %d gid %d mtime %d; want 100640 4321 8765 %d",
			st.Mode, st.Uid, st.Gid, st.Mtim.Sec, lm.Unix())
	}
}

// Attributes set while a file is written (cp -p, touch of a new file) go with the upload: no copy of their
// own when the upload has not sent a part yet; after a part was sent the completed object is copied onto
// itself once. stat shows them while writing.
func TestFakeAttributesWhileWriting(t *testing.T) {
	env, fake := mountFake(t, nil)
	mtime := time.Unix(1500000000, 0)
	fn := filepath.Join(env.Dir, "small")
	f, err := os.Create(fn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("hello"); err != nil {
		t.Fatal(err)
	}
	if err := f.Chmod(0o600); err != nil {
		t.Fatalf("fchmod while writing: %v", err)
	}
	if err := os.Chtimes(fn, mtime, mtime); err != nil {
		t.Fatalf("utimens while writing: %v", err)
	}
	if st := statT(t, fn); st.Mtim.Sec != mtime.Unix() || st.Mode != syscall.S_IFREG|0o600 {
		t.Errorf("stat while writing: mtime %d mode %o; want %d 100600", st.Mtim.Sec, st.Mode, mtime.Unix())
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	info, _ := fake.Info("small")
	if info.Metadata["mtime"] != "1500000000" || info.Metadata["mode"] != "33152" {
		t.Errorf("metadata = %v, want mtime 1500000000 and mode 33152", info.Metadata)
	}
	if n := fake.Calls("CopyObject"); n != 0 {
		t.Errorf("CopyObject calls = %d, want 0 (folded into the PutObject)", n)
	}

	big := filepath.Join(env.Dir, "big")
	f, err = os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(pattern(11<<20, 3)); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(big, mtime, mtime); err != nil {
		t.Fatalf("utimens after parts were sent: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if info, _ := fake.Info("big"); info.Metadata["mtime"] != "1500000000" {
		t.Errorf("metadata of the multipart object = %v, want mtime 1500000000", info.Metadata)
	}
	if got, _ := fake.Object("big"); !bytes.Equal(got, pattern(11<<20, 3)) {
		t.Errorf("multipart object content changed by the metadata copy")
	}
	if n := fake.Calls("CopyObject"); n != 1 {
		t.Errorf("CopyObject calls = %d, want 1 (the late metadata of a multipart object)", n)
	}
}

// touch on an existing file opens it without truncation and sets its times: the object is copied onto itself
// with the new mtime, its content unchanged.
func TestFakeTouchExisting(t *testing.T) {
	env, fake := mountFake(t, nil)
	fake.Put("old", []byte("keep me"))
	fn := filepath.Join(env.Dir, "old")
	f, err := os.OpenFile(fn, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	ts := []unix.Timespec{unix.NsecToTimespec(1400000000e9), unix.NsecToTimespec(1400000000e9)}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, fn, ts, 0); err != nil {
		t.Fatalf("utimensat: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got, _ := fake.Object("old"); string(got) != "keep me" {
		t.Errorf("content = %q, want it unchanged", got)
	}
	if info, _ := fake.Info("old"); info.Metadata["mtime"] != "1400000000" {
		t.Errorf("metadata = %v, want mtime 1400000000", info.Metadata)
	}
}

// Hard links, FIFOs and device nodes cannot be created (a clear error, nothing stored). Symbolic links are
// objects in s3fs's format: the body is the target, x-amz-meta-mode has S_IFLNK; s3fs's own links read back,
// on this mount and on a new one.
func TestFakeLinksAndSpecialFiles(t *testing.T) {
	env, fake := mountFake(t, nil)
	fake.Put("f", []byte("x"))
	errs := map[string]error{
		"link":  os.Link(filepath.Join(env.Dir, "f"), filepath.Join(env.Dir, "h")),
		"mknod": syscall.Mknod(filepath.Join(env.Dir, "n"), syscall.S_IFIFO|0o644, 0),
	}
	for op, err := range errs {
		if !errors.Is(err, syscall.EPERM) && !errors.Is(err, syscall.ENOTSUP) && !errors.Is(err, syscall.ENOSYS) {
			t.Errorf("%s = %v, want EPERM, ENOTSUP or ENOSYS", op, err)
		}
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(env.Dir, "l")); err != nil {
		t.Fatalf("symlink: %v", err)
	}
	if got, err := os.Readlink(filepath.Join(env.Dir, "l")); err != nil || got != "/etc/passwd" {
		t.Errorf("readlink l = %q, %v", got, err)
	}
	if body, _ := fake.Object("l"); string(body) != "/etc/passwd" {
		t.Errorf("the link's object holds %q, want its target", body)
	}
	if info, _ := fake.Info("l"); info.Metadata["mode"] != "41471" {
		t.Errorf("the link's mode header = %q, want 41471 (0120777)", info.Metadata["mode"])
	}
	if err := os.Symlink("elsewhere", filepath.Join(env.Dir, "l")); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("symlink over an existing name = %v, want EEXIST", err)
	}
	fake.PutWith("s3fs-link", []byte("dir/target.txt"), s3client.PutOptions{Metadata: map[string]string{"mode": "41471"}})
	fake.Put("small.txt", []byte("not a link"))
	again := mounttest.MountClient(t, fake, mounttest.Options())
	if _, err := os.ReadDir(again.Dir); err != nil { // seen first in a listing, without headers
		t.Fatal(err)
	}
	for name, want := range map[string]string{"l": "/etc/passwd", "s3fs-link": "dir/target.txt"} {
		st, err := os.Lstat(filepath.Join(again.Dir, name))
		if err != nil || st.Mode()&os.ModeSymlink == 0 {
			t.Errorf("lstat %s on a new mount = %v, %v; want a symlink", name, st, err)
			continue
		}
		if got, err := os.Readlink(filepath.Join(again.Dir, name)); err != nil || got != want {
			t.Errorf("readlink %s = %q, %v; want %q", name, got, err, want)
		}
	}
	if st, err := os.Lstat(filepath.Join(again.Dir, "small.txt")); err != nil || !st.Mode().IsRegular() {
		t.Errorf("lstat small.txt = %v, %v; want a regular file", st, err)
	}
	if err := os.Remove(filepath.Join(env.Dir, "l")); err != nil {
		t.Errorf("unlink of a link: %v", err)
	}
	if _, ok := fake.Object("l"); ok {
		t.Errorf("the link's object is still there after unlink")
	}
}

// rename(2) with RENAME_NOREPLACE fails with EEXIST when the target exists, for files and directories, and
// changes nothing; without the flag a file replaces the target.
func TestFakeRenameNoreplace(t *testing.T) {
	env, fake := mountFake(t, nil)
	fake.Put("a", []byte("A"))
	fake.Put("b", []byte("B"))
	fake.Put("d1/x", []byte("X"))
	fake.Put("d2/y", []byte("Y"))
	p := func(n string) string { return filepath.Join(env.Dir, n) }
	if err := unix.Renameat2(unix.AT_FDCWD, p("a"), unix.AT_FDCWD, p("b"), unix.RENAME_NOREPLACE); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("renameat2(a, b, NOREPLACE) = %v, want EEXIST", err)
	}
	if err := unix.Renameat2(unix.AT_FDCWD, p("d1"), unix.AT_FDCWD, p("d2"), unix.RENAME_NOREPLACE); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("renameat2(d1, d2, NOREPLACE) = %v, want EEXIST", err)
	}
	if got := strings.Join(fake.Keys(), " "); got != "a b d1/x d2/y" {
		t.Errorf("objects after refused renames = %q", got)
	}
	if err := unix.Renameat2(unix.AT_FDCWD, p("a"), unix.AT_FDCWD, p("c"), unix.RENAME_NOREPLACE); err != nil {
		t.Errorf("renameat2(a, c, NOREPLACE) = %v", err)
	}
	if err := os.Rename(p("c"), p("b")); err != nil {
		t.Errorf("rename(c, b) = %v", err)
	}
	if got, _ := fake.Object("b"); string(got) != "A" || strings.Join(fake.Keys(), " ") != "b d1/x d2/y" {
		t.Errorf("after rename over b: b = %q, objects %q", got, fake.Keys())
	}
}

// Content-Type comes from the system's MIME table (/etc/mime.types) as well as Go's built-in one.
func TestFakeContentTypeFromSystemTable(t *testing.T) {
	b, err := os.ReadFile("/etc/mime.types")
	if err != nil || !strings.Contains(string(b), "application/x-tar") {
		t.Fatalf("/etc/mime.types with application/x-tar is needed (apt-get install media-types): %v", err)
	}
	env, fake := mountFake(t, nil)
	if err := os.WriteFile(filepath.Join(env.Dir, "backup.tar"), []byte("t"), 0o644); err != nil {
		t.Fatal(err)
	}
	if info, _ := fake.Info("backup.tar"); info.ContentType != "application/x-tar" {
		t.Errorf("content type of backup.tar = %q, want application/x-tar", info.ContentType)
	}
}

// A directory rename copies the objects below it in parallel (bounded) and then deletes the sources. The rule
// on failure: a failed copy deletes the copies made and leaves the source as it was (EIO); a failed delete
// after a complete copy leaves the target complete and the undeleted sources in place (EIO).
func TestFakeRenameDirectoryFailures(t *testing.T) {
	env, fake := mountFake(t, nil)
	var want []string
	for i := 0; i < 40; i++ {
		k := filepath.Join("src", string(rune('a'+i%26)), strings.Repeat("f", i%3+1)+string(rune('0'+i%10))+
			strings.Repeat("x", i/10))
		fake.Put(k, []byte(k))
		want = append(want, k)
	}
	before := strings.Join(fake.Keys(), " ")
	p := func(s string) string { return filepath.Join(env.Dir, s) }

	fake.FailNext("CopyObject", 1, s3client.ErrUnavailable)
	if err := os.Rename(p("src"), p("dst")); !errors.Is(err, syscall.EIO) {
		t.Errorf("rename with a failing copy = %v, want EIO", err)
	}
	if got := strings.Join(fake.Keys(), " "); got != before {
		t.Errorf("after a failed copy: objects %q, want the source unchanged and no copies", got)
	}

	fake.ResetCounters()
	fake.FailNext("DeleteObject", 1, s3client.ErrUnavailable)
	if err := os.Rename(p("src"), p("dst")); !errors.Is(err, syscall.EIO) {
		t.Errorf("rename with a failing delete = %v, want EIO", err)
	}
	if n := fake.Calls("CopyObject"); n != len(want) {
		t.Errorf("CopyObject calls = %d, want %d", n, len(want))
	}
	for _, k := range want {
		dk := "dst" + strings.TrimPrefix(k, "src")
		if got, ok := fake.Object(dk); !ok || string(got) != k {
			t.Errorf("target %s after a failed delete: %q, %v; want the complete copy", dk, got, ok)
		}
	}
	left := 0
	for _, k := range fake.Keys() {
		if strings.HasPrefix(k, "src/") {
			left++
		}
	}
	if left != 1 {
		t.Errorf("%d sources left after one failed delete, want 1", left)
	}
}

// Bytes kept from the old version are read conditional on its ETag: when another client replaced the object
// between the first write and the close, the close fails with EIO and the other client's object stays.
func TestFakeKeptBytesChangedMeanwhile(t *testing.T) {
	env, fake := mountFake(t, nil)
	fake.Put("t", []byte("0123456789"))
	f, err := os.OpenFile(filepath.Join(env.Dir, "t"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("ab"), 3); err != nil {
		t.Fatal(err)
	}
	fake.Put("t", []byte("other client"))
	if err := f.Close(); !errors.Is(err, syscall.EIO) {
		t.Errorf("close after the object changed = %v, want EIO", err)
	}
	if got, _ := fake.Object("t"); string(got) != "other client" {
		t.Errorf("object = %q, want the other client's", got)
	}
	if ups := uploadsAfterAborts(fake); len(ups) != 0 {
		t.Errorf("unfinished uploads left: %v", ups)
	}
}

// Slightly out-of-order writes (as kernel writeback or a threaded copier may issue them) are put in order:
// a write up to 1 MiB ahead of a gap waits for the gap to be filled.
func TestFakeSlightlyOutOfOrderWrites(t *testing.T) {
	env, fake := mountFake(t, nil)
	data := pattern(7<<20, 9)
	f, err := os.Create(filepath.Join(env.Dir, "ooo"))
	if err != nil {
		t.Fatal(err)
	}
	const blk = 128 << 10
	for off := 0; off < len(data); off += 2 * blk {
		// Each pair of blocks arrives second block first.
		if _, err := f.WriteAt(data[off+blk:off+2*blk], int64(off+blk)); err != nil {
			t.Fatalf("write ahead at %d: %v", off+blk, err)
		}
		if _, err := f.WriteAt(data[off:off+blk], int64(off)); err != nil {
			t.Fatalf("write filling the gap at %d: %v", off, err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got, _ := fake.Object("ooo"); !bytes.Equal(got, data) {
		t.Errorf("object after out-of-order writes: %d bytes, equal=false", len(got))
	}
}
