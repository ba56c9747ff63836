package s3mount_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/s3ftp/s3ftp/internal/logbuf"
	"github.com/s3ftp/s3ftp/s3client"
	"github.com/s3ftp/s3ftp/s3client/s3fake"
	"github.com/s3ftp/s3ftp/s3mount"
	"github.com/s3ftp/s3ftp/s3mount/mounttest"
)

// Tests of the commit model (openfile.go): when a write session is committed, what S3 holds in between, and
// what a commit costs.

// open(O_CREAT) stores nothing: no placeholder, no PUT. The empty file of `touch` is stored at its close, with
// one request.
func TestFakeCreateStoresNothingUntilClose(t *testing.T) {
	env, fake := mountFake(t, nil)
	fn := filepath.Join(env.Dir, "new")
	f, err := os.Create(fn)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(fn); err != nil || st.Size() != 0 {
		t.Errorf("stat of the created file = %v, %v; want size 0 from the mount's own state", st, err)
	}
	if n := fake.TotalCalls() - fake.Calls("HeadObject") - fake.Calls("List"); n != 0 {
		t.Errorf("%d S3 calls beyond lookups after open(O_CREAT), want 0 (%v)", n, fake)
	}
	if keys := fake.Keys(); len(keys) != 0 {
		t.Errorf("objects after open(O_CREAT) = %v, want none", keys)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got, ok := fake.Object("new"); !ok || len(got) != 0 {
		t.Errorf("object after close = %q, %v; want an empty object", got, ok)
	}
	if p, c := fake.Calls("PutObject"), fake.Created("new"); p != 1 || c != 1 {
		t.Errorf("PutObject calls = %d, creations = %d; want 1 and 1", p, c)
	}
}

// A child started while the file is written (fork+exec closes the inherited descriptor: a FLUSH from the
// child) ends nothing: the writes after it succeed and the object is created once, with every byte.
func TestFakeChildExecBetweenWrites(t *testing.T) {
	env, fake := mountFake(t, nil)
	fn := filepath.Join(env.Dir, "spawn")
	f, err := os.Create(fn)
	if err != nil {
		t.Fatal(err)
	}
	first, second := pattern(6<<20, 3), pattern(3<<20, 9)
	if _, err := f.Write(first); err != nil {
		t.Fatal(err)
	}
	// The child inherits the descriptor as fd 3 and closes it by exiting; Go's own descriptors are closed
	// at its exec.
	cmd := exec.Command("sh", "-c", "exec 3>&-")
	cmd.ExtraFiles = []*os.File{f}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v: %s", err, out)
	}
	if keys := fake.Keys(); len(keys) != 0 {
		t.Errorf("objects after the child's close = %v, want none: the writer still holds the file", keys)
	}
	if _, err := f.Write(second); err != nil {
		t.Fatalf("write after the child exited: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	got, _ := fake.Object("spawn")
	if !bytes.Equal(got, append(first, second...)) {
		t.Errorf("object holds %d bytes, want the %d written in order", len(got), len(first)+len(second))
	}
	if c := fake.Created("spawn"); c != 1 {
		t.Errorf("creations = %d, want 1", c)
	}
}

// fsync commits; writing on starts a new version that keeps the committed bytes by a server-side copy of
// them once: a second commit costs the first one's size in copies, not more.
func TestFakeFsyncThenContinue(t *testing.T) {
	env, fake := mountFake(t, nil)
	fn := filepath.Join(env.Dir, "log")
	f, err := os.Create(fn)
	if err != nil {
		t.Fatal(err)
	}
	first, second := pattern(6<<20, 1), pattern(1<<20, 2)
	if _, err := f.Write(first); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("fsync: %v", err)
	}
	if got, _ := fake.Object("log"); !bytes.Equal(got, first) {
		t.Fatalf("object after fsync holds %d bytes, want %d", len(got), len(first))
	}
	if _, err := f.Write(second); err != nil {
		t.Fatalf("write after fsync: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got, _ := fake.Object("log"); !bytes.Equal(got, append(first, second...)) {
		t.Errorf("object after close holds %d bytes, want %d", len(got), len(first)+len(second))
	}
	if c := fake.Created("log"); c != 2 {
		t.Errorf("creations = %d, want 2 (fsync, close)", c)
	}
	if n := fake.BytesCopied(); n != int64(len(first)) {
		t.Errorf("bytes copied server-side = %d, want %d (the first commit, once)", n, len(first))
	}
	if up := fake.BytesUploaded(); up != int64(len(first)+len(second)) {
		t.Errorf("bytes uploaded = %d, want %d: each byte sent once", up, len(first)+len(second))
	}
}

// A file created with O_EXCL does not overwrite an object another host stored under its name meanwhile:
// the commit fails with EEXIST and the other object stays.
func TestFakeExclusiveCreateLosesToOtherHost(t *testing.T) {
	env, fake := mountFake(t, nil)
	fn := filepath.Join(env.Dir, "lock")
	f, err := os.OpenFile(fn, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("mine")); err != nil {
		t.Fatal(err)
	}
	fake.Put("lock", []byte("theirs"))
	if err := f.Close(); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("close = %v, want EEXIST", err)
	}
	if got, _ := fake.Object("lock"); string(got) != "theirs" {
		t.Errorf("object = %q, want the other host's %q", got, "theirs")
	}
}

// An overwrite that fails leaves the previous version untouched and no upload behind.
func TestFakeFailedOverwriteKeepsOldVersion(t *testing.T) {
	env, fake := mountFake(t, nil)
	old := pattern(1000, 5)
	fake.Put("data", old)
	f, err := os.OpenFile(filepath.Join(env.Dir, "data"), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	fake.FailNext("UploadPart", 10, s3client.ErrUnavailable)
	_, werr := f.Write(pattern(12<<20, 6))
	cerr := f.Close()
	if werr == nil && cerr == nil {
		t.Fatal("write and close both succeeded although every part failed")
	}
	if cerr != nil && !errors.Is(cerr, syscall.EIO) {
		t.Errorf("close = %v, want EIO", cerr)
	}
	if got, _ := fake.Object("data"); !bytes.Equal(got, old) {
		t.Errorf("object after the failed overwrite holds %d bytes, want the old %d", len(got), len(old))
	}
	if ups := uploadsAfterAborts(fake); len(ups) != 0 {
		t.Errorf("uploads left = %v, want none", ups)
	}
}

// A failed upload stays failed: every later write, fsync and close of the file reports it, and a new
// open for writing starts over.
func TestFakeFailureIsSticky(t *testing.T) {
	env, fake := mountFake(t, nil)
	fn := filepath.Join(env.Dir, "f")
	f, err := os.Create(fn)
	if err != nil {
		t.Fatal(err)
	}
	fake.FailNext("UploadPart", 10, s3client.ErrUnavailable)
	f.Write(pattern(12<<20, 1)) // fails once a part failed; which write sees it depends on timing
	if err := f.Sync(); !errors.Is(err, syscall.EIO) {
		t.Errorf("first fsync after the failed part = %v, want EIO", err)
	}
	if err := f.Sync(); !errors.Is(err, syscall.EIO) {
		t.Errorf("second fsync = %v, want EIO again", err)
	}
	if _, err := f.Write([]byte("more")); !errors.Is(err, syscall.EIO) {
		t.Errorf("write after the failure = %v, want EIO", err)
	}
	if err := f.Close(); !errors.Is(err, syscall.EIO) {
		t.Errorf("close = %v, want EIO", err)
	}
	if keys, ups := fake.Keys(), uploadsAfterAborts(fake); len(keys) != 0 || len(ups) != 0 {
		t.Errorf("after the failure: objects %v, uploads %v; want none", keys, ups)
	}
	if err := os.WriteFile(fn, []byte("again"), 0o644); err != nil {
		t.Errorf("a new write of the file after the failure: %v", err)
	}
	if got, _ := fake.Object("f"); string(got) != "again" {
		t.Errorf("object = %q, want %q", got, "again")
	}
}

// When the mount ends under a file being written (umount -f aborts the FUSE connection), its multipart upload
// is aborted with a log line naming the key: no object, no upload left.
func TestFakeForcedUnmountAbortsUploads(t *testing.T) {
	fake := s3fake.New()
	dir := t.TempDir()
	log, logs := logbuf.New(nil)
	m, err := s3mount.Mount(context.Background(), dir, fake, mounttest.Options(), log)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, "big"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(pattern(7<<20, 1)); err != nil { // one part sent: a multipart upload exists
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); len(fake.Uploads()) == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no multipart upload was started")
		}
	}
	syscall.Unmount(dir, syscall.MNT_FORCE) // aborts the connection; EBUSY while f is open is expected
	done := make(chan struct{})
	go func() { m.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the mount did not end after umount -f")
	}
	f.Close() // ENOTCONN: the connection is gone
	if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
		t.Errorf("lazy unmount: %v", err)
	}
	if keys, ups := fake.Keys(), uploadsAfterAborts(fake); len(keys) != 0 || len(ups) != 0 {
		t.Errorf("after the unmount: objects %v, uploads %v; want none", keys, ups)
	}
	if !slices.ContainsFunc(logs.Lines(), func(l string) bool {
		return strings.Contains(l, "unmounted") && strings.Contains(l, "big")
	}) {
		t.Errorf("no log line names the aborted upload of big:\n%s", strings.Join(logs.Lines(), "\n"))
	}
}

// Small files created one after another in a directory made (or just listed) through the mount cost one
// PutObject each: the directory's listing answers the lookups of the new names, nothing is stored at create.
func TestFakeCreateSmallFilesOnePutEach(t *testing.T) {
	env, fake := mountFake(t, func(o *s3mount.Options) { o.StatTTL, o.NegativeTTL = time.Minute, time.Minute })
	for _, dir := range []string{"made", "listed"} {
		d := filepath.Join(env.Dir, dir)
		if dir == "listed" {
			fake.Put("listed/old", []byte("x"))
			if ents, err := os.ReadDir(d); err != nil || len(ents) != 1 {
				t.Fatalf("listing %s = %v, %v", d, ents, err)
			}
		} else if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		fake.ResetCounters()
		const n = 20
		for i := range n {
			if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("f%02d", i)), []byte("small"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if p, total := fake.Calls("PutObject"), fake.TotalCalls(); p != n || total != n {
			t.Errorf("%s: %d files cost %d PutObject and %d requests in all, want %d and %d (%v)", dir, n, p, total, n, n, fake)
		}
		if got, _ := fake.Object(dir + "/f07"); string(got) != "small" {
			t.Errorf("%s/f07 = %q", dir, got)
		}
	}
}

// Past the stat TTL, a lookup of a new name in a small directory lists the directory again (one request)
// instead of a HEAD and a listing of the name: creating files at a steady pace costs one PutObject each plus
// one listing per TTL.
func TestFakeCreateSmallFilesRelistsAfterTTL(t *testing.T) {
	env, fake := mountFake(t, func(o *s3mount.Options) { o.StatTTL, o.NegativeTTL = 50*time.Millisecond, 50*time.Millisecond })
	d := filepath.Join(env.Dir, "in")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	var heads, keyLists, dirLists atomic.Int32 // requests about the new names, listings of in/
	fake.SetFault(func(op, key string, call int) error {
		switch {
		case op == "HeadObject" && strings.HasPrefix(key, "in/") && key != "in/": // not the marker
			heads.Add(1)
		case op == "List" && strings.HasPrefix(key, "in/f"):
			keyLists.Add(1)
		case op == "List" && key == "in/":
			dirLists.Add(1)
		}
		return nil
	})
	fake.ResetCounters()
	const n = 10
	for i := range n {
		time.Sleep(60 * time.Millisecond) // every lookup comes after the TTL
		if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("f%02d", i)), []byte("small"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The kernel also looks "in" itself up again after the TTL (a HEAD of "in", a listing of "in/" and a HEAD
	// of its marker "in/"); those are the directory's, not the new names'.
	if h, l := heads.Load(), keyLists.Load(); h != 0 || l != 0 {
		t.Errorf("%d HEADs and %d listings of the %d new names, want none", h, l, n)
	}
	if p, l := fake.Calls("PutObject"), dirLists.Load(); p != n || l > 2*n {
		t.Errorf("%d PutObject and %d listings of in/, want %d and at most %d", p, l, n, 2*n)
	}
	if ents, err := os.ReadDir(d); err != nil || len(ents) != n {
		t.Errorf("listing = %d entries, %v; want %d", len(ents), err, n)
	}
}

// A file renamed while it is written (logrotate's move of a log its writer keeps appending to): the bytes so
// far are committed and moved, the handle keeps writing, and its close stores every byte, in order, under the
// new name; the old name is gone.
func TestFakeRenameWhileWriting(t *testing.T) {
	env, fake := mountFake(t, nil)
	fn := filepath.Join(env.Dir, "app.log")
	f, err := os.OpenFile(fn, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	first, second := pattern(7<<20, 1), pattern(2<<20, 2) // the first part is already uploaded at the rename
	if _, err := f.Write(first); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(fn, fn+".1"); err != nil {
		t.Fatalf("rename while writing: %v", err)
	}
	if _, err := os.Stat(fn); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stat of the old name = %v, want ENOENT", err)
	}
	if _, err := f.Write(second); err != nil {
		t.Fatalf("write after the rename: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close after the rename: %v", err)
	}
	if got, _ := fake.Object("app.log.1"); !bytes.Equal(got, append(first, second...)) {
		t.Errorf("app.log.1 holds %d bytes, want the %d written, in order", len(got), len(first)+len(second))
	}
	if _, ok := fake.Object("app.log"); ok {
		t.Errorf("the old name still has an object")
	}
	if ups := uploadsAfterAborts(fake); len(ups) != 0 {
		t.Errorf("uploads left: %v", ups)
	}
}

// Extending a file (truncate -s to a larger size, or ftruncate on an open handle) keeps its bytes by a
// server-side copy and uploads only the zeros after them.
func TestFakeExtendKeepsBytesServerSide(t *testing.T) {
	env, fake := mountFake(t, nil)
	old := pattern(6<<20, 3)
	fake.Put("big", old)
	fn := filepath.Join(env.Dir, "big")
	fake.ResetCounters()
	if err := os.Truncate(fn, 8<<20); err != nil {
		t.Fatalf("truncate -s 8MiB: %v", err)
	}
	want := append(bytes.Clone(old), make([]byte, 2<<20)...)
	if got, _ := fake.Object("big"); !bytes.Equal(got, want) {
		t.Errorf("object after the extension: %d bytes, want the old 6 MiB and 2 MiB of zeros", len(got))
	}
	if c, u := fake.BytesCopied(), fake.BytesUploaded(); c != int64(len(old)) || u != 2<<20 {
		t.Errorf("copied %d and uploaded %d bytes, want %d and %d", c, u, len(old), 2<<20)
	}

	f, err := os.OpenFile(fn, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(9 << 20); err != nil {
		t.Fatalf("ftruncate to 9 MiB: %v", err)
	}
	if st, err := f.Stat(); err != nil || st.Size() != 9<<20 {
		t.Errorf("fstat after ftruncate = %v, %v; want 9 MiB", st, err)
	}
	if _, err := f.WriteAt([]byte("end"), 9<<20); err != nil {
		t.Fatalf("write at the new end: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	want = append(append(want, make([]byte, 1<<20)...), "end"...)
	if got, _ := fake.Object("big"); !bytes.Equal(got, want) {
		t.Errorf("object after ftruncate and a write: %d bytes, want %d", len(got), len(want))
	}
}

// The temporary-file idiom: open a file for reading, unlink it, keep reading. The name is gone at once
// (stat, listing, a new file may take it), the handle reads the bytes it opened, and the object is deleted
// at its close; a new file that took the name meanwhile is left alone.
func TestFakeUnlinkWhileReading(t *testing.T) {
	env, fake := mountFake(t, nil)
	data := pattern(3<<20, 7)
	fake.Put("tmp", data)
	fake.Put("tmp2", data)
	fn := filepath.Join(env.Dir, "tmp")
	r, err := os.Open(fn)
	if err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 100)
	if _, err := io.ReadFull(r, head); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(fn); err != nil {
		t.Fatalf("unlink while open for reading: %v", err)
	}
	if _, err := os.Stat(fn); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stat after unlink = %v, want ENOENT", err)
	}
	ents, _ := os.ReadDir(env.Dir)
	if len(ents) != 1 || ents[0].Name() != "tmp2" {
		t.Errorf("listing after unlink = %v, want only tmp2", ents)
	}
	rest, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(append(head, rest...), data) {
		t.Errorf("read after unlink: %d bytes, %v; want the %d bytes opened", len(head)+len(rest), err, len(data))
	}
	if _, ok := fake.Object("tmp"); !ok {
		t.Errorf("the object went before the last close")
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	// The kernel sends the release after close(2) returned.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, ok := fake.Object("tmp"); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the object is still there 10 s after the last close")
		}
	}

	// A new file takes the name while the unlinked one is still open: the close leaves the new one.
	r2, err := os.Open(filepath.Join(env.Dir, "tmp2"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(env.Dir, "tmp2")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(env.Dir, "tmp2"), []byte("new"), 0o644); err != nil {
		t.Fatalf("a new file under the unlinked name: %v", err)
	}
	if got, err := os.ReadFile(filepath.Join(env.Dir, "tmp2")); err != nil || string(got) != "new" {
		t.Errorf("the new tmp2 reads %q, %v", got, err)
	}
	heads := fake.Calls("HeadObject")
	r2.Close()
	// The release checks the object's version (a HEAD) before it would delete it.
	for deadline := time.Now().Add(10 * time.Second); fake.Calls("HeadObject") == heads; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no release 10 s after the close")
		}
	}
	if got, _ := fake.Object("tmp2"); string(got) != "new" {
		t.Errorf("tmp2 after the unlinked handle's close = %q, want the new file", got)
	}
}
