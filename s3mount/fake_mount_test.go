package s3mount_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/s3ftp/s3ftp/s3client"
	"github.com/s3ftp/s3ftp/s3client/s3fake"
	"github.com/s3ftp/s3ftp/s3mount"
	"github.com/s3ftp/s3ftp/s3mount/mounttest"
)

func mountFake(t *testing.T, mod func(o *s3mount.Options)) (*mounttest.Env, *s3fake.Fake) {
	t.Helper()
	fake := s3fake.New()
	o := mounttest.Options()
	if mod != nil {
		mod(&o)
	}
	return mounttest.MountClient(t, fake, o), fake
}

// uploadsAfterAborts returns the multipart uploads left once the ones being aborted in the background
// (upload.Aborts, after a failure) are gone, waiting up to a minute for that.
func uploadsAfterAborts(fake *s3fake.Fake) []s3client.Upload {
	deadline := time.Now().Add(time.Minute)
	for {
		ups := fake.Uploads()
		if len(ups) == 0 || time.Now().After(deadline) {
			return ups
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7/3) + seed
	}
	return b
}

func TestFakeWriteReadBack(t *testing.T) {
	env, fake := mountFake(t, nil)
	data := pattern(12<<20+123, 1) // three parts of 5 MiB at most
	fn := filepath.Join(env.Dir, "dir", "f.bin")
	if err := os.Mkdir(filepath.Dir(fn), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fn, data, 0o644); err != nil {
		t.Fatalf("WriteFile: %v", err)
	}
	got, ok := fake.Object("dir/f.bin")
	if !ok || !bytes.Equal(got, data) {
		t.Fatalf("object after close: present=%v, %d bytes, equal=%v", ok, len(got), bytes.Equal(got, data))
	}
	if n := fake.Calls("CompleteMultipartUpload"); n != 1 {
		t.Errorf("CompleteMultipartUpload calls = %d, want 1", n)
	}
	back, err := os.ReadFile(fn)
	if err != nil || !bytes.Equal(back, data) {
		t.Fatalf("ReadFile: %v, equal=%v", err, bytes.Equal(back, data))
	}
	if info, ok := fake.Info("dir/f.bin"); !ok || info.ContentType != "application/octet-stream" {
		t.Errorf("content type = %q, want application/octet-stream", info.ContentType)
	}
}

func TestFakeContentTypeFromExtension(t *testing.T) {
	env, fake := mountFake(t, nil)
	if err := os.WriteFile(filepath.Join(env.Dir, "page.html"), []byte("<p>"), 0o644); err != nil {
		t.Fatal(err)
	}
	info, _ := fake.Info("page.html")
	if !strings.HasPrefix(info.ContentType, "text/html") {
		t.Errorf("content type = %q, want text/html", info.ContentType)
	}
}

// A part that fails surfaces from write(2) or close(2) as EIO; no object and no multipart upload remain.
func TestFakePartFailureSurfaces(t *testing.T) {
	env, fake := mountFake(t, nil)
	fake.FailNext("UploadPart", 1, s3client.ErrUnavailable)
	f, err := os.Create(filepath.Join(env.Dir, "broken"))
	if err != nil {
		t.Fatal(err)
	}
	chunk := pattern(1<<20, 3)
	var writeErr error
	for i := 0; i < 30 && writeErr == nil; i++ {
		_, writeErr = f.Write(chunk)
	}
	closeErr := f.Close()
	if writeErr == nil {
		t.Errorf("30 MiB of writes after a failed part all succeeded")
	}
	if !errors.Is(writeErr, syscall.EIO) {
		t.Errorf("write error = %v, want EIO", writeErr)
	}
	if !errors.Is(closeErr, syscall.EIO) {
		t.Errorf("close error = %v, want EIO", closeErr)
	}
	if _, ok := fake.Object("broken"); ok {
		t.Errorf("an object was stored despite the failed part")
	}
	if ups := uploadsAfterAborts(fake); len(ups) != 0 {
		t.Errorf("unfinished uploads left: %v", ups)
	}
}

// A failure completing the upload is reported by close(2).
func TestFakeCompleteFailureFromClose(t *testing.T) {
	env, fake := mountFake(t, nil)
	fake.FailNext("PutObject", 1, s3client.ErrAccessDenied)
	err := os.WriteFile(filepath.Join(env.Dir, "small"), []byte("hello"), 0o644)
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("WriteFile = %v, want EIO from close", err)
	}
	if _, ok := fake.Object("small"); ok {
		t.Errorf("object stored despite the failure")
	}
	if !slices.ContainsFunc(env.Logs(), func(l string) bool {
		return strings.Contains(l, "upload failed") && strings.Contains(l, "key=small")
	}) {
		t.Errorf("no log line names the failed upload: %q", env.Logs())
	}
}

func TestFakeSequentialReadFewGETs(t *testing.T) {
	env, fake := mountFake(t, nil)
	data := pattern(8<<20, 5)
	fake.Put("big", data)
	fake.ResetCounters()
	f, err := os.Open(filepath.Join(env.Dir, "big"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := io.ReadAll(f)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("ReadAll: %v, equal=%v", err, bytes.Equal(got, data))
	}
	// One GET per 1 MiB block is the most a non-prefetching cache needs; a prefetching one needs fewer.
	if n := fake.Calls("GetObject"); n < 1 || n > 8 {
		t.Errorf("sequential read of 8 MiB issued %d GETs, want 1..8", n)
	}
	if n := fake.Calls("HeadObject"); n > 1 {
		t.Errorf("%d HEADs for one open, want at most 1", n)
	}
}

// A reader is bound to the ETag seen at open: a change underneath gives old bytes or ESTALE, never the new
// version's bytes; after the
// stat TTL, a new open sees the new object and its size.
func TestFakeChangedETag(t *testing.T) {
	env, fake := mountFake(t, func(o *s3mount.Options) { o.StatTTL = 200 * time.Millisecond; o.NegativeTTL = 0 })
	fn := filepath.Join(env.Dir, "obj")
	fake.Put("obj", pattern(4<<20, 1))
	f, err := os.Open(fn)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	if _, err := f.ReadAt(buf, 0); err != nil {
		t.Fatal(err)
	}
	fake.Put("obj", pattern(5<<20, 2))
	// The reader may still serve the old version from a stream or blocks it already has; what it must never
	// return is bytes of the new version.
	old := pattern(4<<20, 1)
	for off := int64(4096); off < 4<<20; off += int64(len(buf)) {
		n, err := f.ReadAt(buf, off)
		if errors.Is(err, syscall.ESTALE) {
			break
		}
		if err != nil && err != io.EOF {
			t.Fatalf("read at %d after the object changed = %v, want old bytes or ESTALE", off, err)
		}
		if !bytes.Equal(buf[:n], old[off:off+int64(n)]) {
			t.Fatalf("read at %d after the object changed returned bytes of another version", off)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := os.Stat(fn)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() == 5<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("size after the TTL = %d, want %d", st.Size(), 5<<20)
		}
		time.Sleep(50 * time.Millisecond)
	}
	got, err := os.ReadFile(fn)
	if err != nil || !bytes.Equal(got, pattern(5<<20, 2)) {
		t.Fatalf("ReadFile of the new version: %v, equal=%v", err, bytes.Equal(got, pattern(5<<20, 2)))
	}
}

func TestFakeListingFromOtherClient(t *testing.T) {
	env, fake := mountFake(t, nil)
	fake.Put("a.txt", []byte("aaa"))
	fake.Put("sub/b.txt", []byte("bb"))
	fake.Put("marker/", nil)
	fake.Put("bad//x", []byte("x"))
	fake.Put("dot/./y", []byte("y"))
	fake.Put("long/"+strings.Repeat("n", 256), []byte("z"))
	fake.ResetCounters()
	ents, err := os.ReadDir(env.Dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		kind := "f"
		if e.IsDir() {
			kind = "d"
		}
		names = append(names, e.Name()+":"+kind)
	}
	want := "a.txt:f bad:d dot:d long:d marker:d sub:d"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("root listing = %q, want %q", got, want)
	}
	// ls -l: a directory costs one HEAD, of its marker "dir/" (its headers); a listed file one when it is small
	// enough to be a symlink, none otherwise (TestFakeLargeListedFilesCostNoHead).
	for _, e := range ents {
		if _, err := e.Info(); err != nil {
			t.Errorf("stat %s: %v", e.Name(), err)
		}
	}
	if st, err := os.Stat(filepath.Join(env.Dir, "a.txt")); err != nil || st.Size() != 3 {
		t.Errorf("stat a.txt = %v, %v", st, err)
	}
	if n := fake.Calls("HeadObject"); n != 6 {
		t.Errorf("ls -l issued %d HEADs, want 6: one per directory for its marker's headers, one for the "+
			"3-byte file (small enough to be a symlink)", n)
	}
	for _, d := range []string{"bad", "dot", "long"} {
		ents, err := os.ReadDir(filepath.Join(env.Dir, d))
		if err != nil || len(ents) != 0 {
			t.Errorf("ReadDir %s = %v, %v; want no entries (the keys cannot be names)", d, ents, err)
		}
	}
	skipped := 0
	for _, l := range env.Logs() {
		if strings.Contains(l, "key skipped") {
			skipped++
		}
	}
	if skipped != 3 {
		t.Errorf("%d log lines for skipped keys, want 3: %q", skipped, env.Logs())
	}
}

func TestFakeMkdirRmdir(t *testing.T) {
	env, fake := mountFake(t, nil)
	d := filepath.Join(env.Dir, "d")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, ok := fake.Object("d/"); !ok {
		t.Fatalf("mkdir stored no marker: %s", fake)
	}
	if err := os.WriteFile(filepath.Join(d, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Rmdir(d); err != syscall.ENOTEMPTY {
		t.Fatalf("rmdir of a non-empty directory = %v, want ENOTEMPTY", err)
	}
	if err := os.Remove(filepath.Join(d, "f")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Rmdir(d); err != nil {
		t.Fatalf("rmdir: %v", err)
	}
	if keys := fake.Keys(); len(keys) != 0 {
		t.Errorf("keys left: %v", keys)
	}
	if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stat after rmdir = %v, want ENOENT", err)
	}
}

func TestFakeRenameAndUnlink(t *testing.T) {
	env, fake := mountFake(t, nil)
	fake.PutWith("src.txt", []byte("payload"), s3client.PutOptions{ContentType: "text/plain",
		Metadata: map[string]string{"k": "v"}})
	if err := os.Mkdir(filepath.Join(env.Dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(env.Dir, "src.txt"), filepath.Join(env.Dir, "d", "dst.txt")); err != nil {
		t.Fatalf("rename: %v", err)
	}
	if _, ok := fake.Object("src.txt"); ok {
		t.Errorf("source still exists")
	}
	info, ok := fake.Info("d/dst.txt")
	if !ok || info.Size != 7 || info.Metadata["k"] != "v" {
		t.Errorf("destination = %+v, %v; want 7 bytes with metadata k=v", info, ok)
	}
	if _, err := os.Stat(filepath.Join(env.Dir, "src.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stat of the old name = %v, want ENOENT", err)
	}
	if got, err := os.ReadFile(filepath.Join(env.Dir, "d", "dst.txt")); err != nil || string(got) != "payload" {
		t.Errorf("read renamed = %q, %v", got, err)
	}
	if err := os.Remove(filepath.Join(env.Dir, "d", "dst.txt")); err != nil {
		t.Fatal(err)
	}
	if _, ok := fake.Object("d/dst.txt"); ok {
		t.Errorf("unlink left the object")
	}
}

func TestFakeNamesThatCannotBeKeys(t *testing.T) {
	env, _ := mountFake(t, nil)
	long := filepath.Join(env.Dir, strings.Repeat("n", 256))
	if err := os.WriteFile(long, nil, 0o644); !errors.Is(err, syscall.ENAMETOOLONG) {
		t.Errorf("256-byte name = %v, want ENAMETOOLONG", err)
	}
	// 5 levels of 250-byte directories make a key above 1024 bytes.
	p := env.Dir
	var err error
	for i := 0; i < 5 && err == nil; i++ {
		p = filepath.Join(p, strings.Repeat(string(rune('a'+i)), 250))
		err = os.Mkdir(p, 0o755)
	}
	if !errors.Is(err, syscall.ENAMETOOLONG) {
		t.Errorf("mkdir with a key above 1024 bytes = %v, want ENAMETOOLONG", err)
	}
}

// vsftpd's STOR over an existing file: open(O_WRONLY|O_CREAT) without O_TRUNC, then ftruncate(0), then
// sequential writes: a new object from scratch, streamed.
func TestFakeOverwriteAfterFtruncate(t *testing.T) {
	env, fake := mountFake(t, nil)
	fake.Put("f", []byte("old content"))
	fn := filepath.Join(env.Dir, "f")
	f, err := os.OpenFile(fn, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(0); err != nil {
		t.Fatalf("ftruncate(0): %v", err)
	}
	if _, err := f.Write([]byte("new")); err != nil {
		t.Fatalf("write after ftruncate: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if got, _ := fake.Object("f"); string(got) != "new" {
		t.Errorf("object = %q, want %q", got, "new")
	}
	if n := fake.Calls("GetObject") + fake.Calls("UploadPartCopy"); n != 0 {
		t.Errorf("%d requests read or copied the old object, want none", n)
	}
}

// While a file is written: stat shows the bytes written so far, a second writer and readers get EBUSY.
// (A rename commits it: TestFakeRenameWhileWriting.)
func TestFakeWhileWriting(t *testing.T) {
	env, fake := mountFake(t, nil)
	fn := filepath.Join(env.Dir, "w")
	f, err := os.Create(fn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(make([]byte, 3000)); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil || st.Size != 3000 {
		t.Errorf("fstat while writing = %d, %v; want 3000", st.Size, err)
	}
	if _, err := os.OpenFile(fn, os.O_WRONLY|os.O_TRUNC, 0); !errors.Is(err, syscall.EBUSY) {
		t.Errorf("second writer = %v, want EBUSY", err)
	}
	if _, err := os.Open(fn); !errors.Is(err, syscall.EBUSY) {
		t.Errorf("reader while writing = %v, want EBUSY", err)
	}
	ents, _ := os.ReadDir(env.Dir)
	if len(ents) != 1 || ents[0].Name() != "w" {
		t.Errorf("listing while writing = %v, want [w]", ents)
	}
	if keys := fake.Keys(); len(keys) != 0 {
		t.Errorf("objects while the file is written = %v, want none (nothing is stored before the commit)", keys)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got, ok := fake.Object("w"); !ok || len(got) != 3000 || fake.Created("w") != 1 {
		t.Errorf("object after close: %v, %d bytes, %d creations", ok, len(got), fake.Created("w"))
	}
}

// Unlink of a file being written removes the name at once; the handle keeps taking writes, and nothing is
// ever stored: no object, no upload left.
func TestFakeUnlinkWhileWriting(t *testing.T) {
	env, fake := mountFake(t, nil)
	fn := filepath.Join(env.Dir, "w")
	f, err := os.Create(fn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(make([]byte, 7<<20)); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(fn); err != nil {
		t.Fatalf("unlink while writing: %v", err)
	}
	if _, err := os.Stat(fn); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stat after unlink = %v, want ENOENT", err)
	}
	if _, err := f.Write(make([]byte, 1<<20)); err != nil {
		t.Errorf("write after unlink: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("close after unlink: %v", err)
	}
	if keys, ups := fake.Keys(), uploadsAfterAborts(fake); len(keys) != 0 || len(ups) != 0 {
		t.Errorf("after the close: objects %v, uploads %v; want none", keys, ups)
	}
}

// A write past the end of the file (lseek beyond it, then write) grows the file: the gap reads as zeros, which
// are uploaded (S3 has no holes).
func TestFakeWritePastEndZeroFills(t *testing.T) {
	env, fake := mountFake(t, nil)
	f, err := os.Create(filepath.Join(env.Dir, "r"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(pattern(100, 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("x"), 50<<20); err != nil {
		t.Errorf("write 50 MiB past the end = %v", err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("close = %v", err)
	}
	want := make([]byte, 50<<20+1)
	copy(want, pattern(100, 1))
	want[50<<20] = 'x'
	if got, _ := fake.Object("r"); !bytes.Equal(got, want) {
		t.Errorf("object of %d bytes, want %d: the written bytes, zeros, x", len(got), len(want))
	}
}

// The shell's "cmd > file": open, dup2 onto stdout, close the original (a Flush with nothing written), then
// write through the duplicate and close it.
func TestFakeDupRedirect(t *testing.T) {
	env, fake := mountFake(t, nil)
	f, err := os.Create(filepath.Join(env.Dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	fd2, err := syscall.Dup(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close of the first descriptor: %v", err)
	}
	if keys := fake.Keys(); len(keys) != 0 {
		t.Errorf("objects after the first close = %v, want none: the process still holds the file", keys)
	}
	if _, err := syscall.Write(fd2, []byte("hello\n")); err != nil {
		t.Fatalf("write through the duplicate: %v", err)
	}
	if err := syscall.Close(fd2); err != nil {
		t.Fatalf("close of the duplicate: %v", err)
	}
	if got, _ := fake.Object("out"); string(got) != "hello\n" || fake.Created("out") != 1 {
		t.Errorf("object = %q (%d creations), want %q once", got, fake.Created("out"), "hello\n")
	}
}

func TestFakeTruncateWithoutHandle(t *testing.T) {
	env, fake := mountFake(t, nil)
	fake.Put("t", []byte("0123456789"))
	fn := filepath.Join(env.Dir, "t")
	if err := os.Truncate(fn, 20); err != nil {
		t.Errorf("truncate to 20 (growing) = %v", err)
	}
	if got, _ := fake.Object("t"); string(got) != "0123456789"+string(make([]byte, 10)) {
		t.Errorf("object after truncate(20) = %q, want the bytes and 10 zeros", got)
	}
	if err := os.Truncate(fn, 10); err != nil {
		t.Errorf("truncate back to 10 = %v", err)
	}
	if err := os.Truncate(fn, 10); err != nil {
		t.Errorf("truncate to the current size = %v", err)
	}
	if err := os.Truncate(fn, 0); err != nil {
		t.Fatalf("truncate to 0 = %v", err)
	}
	if got, ok := fake.Object("t"); !ok || len(got) != 0 {
		t.Errorf("object after truncate(0) = %q, %v", got, ok)
	}
}

func TestFakeReadOnly(t *testing.T) {
	env, fake := mountFake(t, func(o *s3mount.Options) { o.ReadOnly = true })
	fake.Put("x", []byte("x"))
	if err := os.WriteFile(filepath.Join(env.Dir, "y"), nil, 0o644); !errors.Is(err, syscall.EROFS) {
		t.Errorf("create = %v, want EROFS", err)
	}
	if err := os.Remove(filepath.Join(env.Dir, "x")); !errors.Is(err, syscall.EROFS) {
		t.Errorf("unlink = %v, want EROFS", err)
	}
	if err := os.Mkdir(filepath.Join(env.Dir, "d"), 0o755); !errors.Is(err, syscall.EROFS) {
		t.Errorf("mkdir = %v, want EROFS", err)
	}
	if got, err := os.ReadFile(filepath.Join(env.Dir, "x")); err != nil || string(got) != "x" {
		t.Errorf("read = %q, %v", got, err)
	}
}

func TestFakeErrnoForS3Errors(t *testing.T) {
	env, fake := mountFake(t, nil)
	fake.FailNext("HeadObject", 1, s3client.ErrAccessDenied)
	if _, err := os.Stat(filepath.Join(env.Dir, "secret")); !errors.Is(err, syscall.EACCES) {
		t.Errorf("stat with access denied = %v, want EACCES", err)
	}
	fake.FailNext("HeadObject", 1, s3client.ErrUnavailable)
	if _, err := os.Stat(filepath.Join(env.Dir, "flaky")); !errors.Is(err, syscall.EIO) {
		t.Errorf("stat with S3 unavailable = %v, want EIO", err)
	}
}

func s3PutOpts() s3client.PutOptions { return s3client.PutOptions{ContentType: "text/csv"} }

func TestFakePrefix(t *testing.T) {
	env, fake := mountFake(t, func(o *s3mount.Options) { o.Prefix = "tenant/a" })
	fake.Put("tenant/a/in.txt", []byte("in"))
	fake.Put("tenant/ab/other.txt", []byte("no"))
	fake.Put("outside.txt", []byte("no"))
	ents, err := os.ReadDir(env.Dir)
	if err != nil || len(ents) != 1 || ents[0].Name() != "in.txt" {
		t.Fatalf("listing under the prefix = %v, %v; want [in.txt]", ents, err)
	}
	if err := os.WriteFile(filepath.Join(env.Dir, "new.txt"), []byte("n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok := fake.Object("tenant/a/new.txt"); !ok {
		t.Errorf("new file not stored under the prefix: %s", fake)
	}
}

// Listings page through ListObjectsV2 1000 keys at a time.
func TestFakeReaddirPages(t *testing.T) {
	env, fake := mountFake(t, nil)
	const n = 2500
	for i := 0; i < n; i++ {
		fake.Put(fmt.Sprintf("many/f%05d", i), nil)
	}
	fake.ResetCounters()
	ents, err := os.ReadDir(filepath.Join(env.Dir, "many"))
	if err != nil || len(ents) != n {
		t.Fatalf("ReadDir = %d entries, %v; want %d", len(ents), err, n)
	}
	for i, e := range ents {
		if want := fmt.Sprintf("f%05d", i); e.Name() != want {
			t.Fatalf("entry %d = %q, want %q", i, e.Name(), want)
		}
	}
	if lists := fake.Calls("List"); lists < 3 || lists > 4 {
		t.Errorf("%d List calls for %d keys, want 3 pages (plus the lookup of many/)", lists, n)
	}
}

// Parallel writers and readers of different files share the memory budget and the cache without interfering.
func TestFakeParallelFiles(t *testing.T) {
	env, fake := mountFake(t, nil)
	const n = 6
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			data := pattern(6<<20+i, byte(i))
			fn := filepath.Join(env.Dir, fmt.Sprintf("p%d", i))
			if err := os.WriteFile(fn, data, 0o644); err != nil {
				errs <- err
				return
			}
			got, err := os.ReadFile(fn)
			if err == nil && !bytes.Equal(got, data) {
				err = fmt.Errorf("%s: read back differs", fn)
			}
			errs <- err
		}()
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if keys := fake.Keys(); len(keys) != n {
		t.Errorf("objects = %v, want %d", keys, n)
	}
}

func TestFakeStatfs(t *testing.T) {
	env, _ := mountFake(t, nil)
	var st syscall.Statfs_t
	if err := syscall.Statfs(env.Dir, &st); err != nil {
		t.Fatal(err)
	}
	if free := st.Bavail * uint64(st.Bsize); free < 1<<50 {
		t.Errorf("free space = %d bytes, want a large number (at least 1 PiB)", free)
	}
	if st.Namelen != 255 {
		t.Errorf("name length = %d, want 255", st.Namelen)
	}
}

func TestCheckErrors(t *testing.T) {
	fake := s3fake.New()
	if err := s3mount.Check(t.Context(), fake, mounttest.Options()); err != nil {
		t.Fatalf("Check = %v", err)
	}
	fake.FailNext("HeadBucket", 1, s3client.ErrAccessDenied)
	if err := s3mount.Check(t.Context(), fake, mounttest.Options()); err == nil || !strings.Contains(err.Error(), "access denied") {
		t.Errorf("Check with bad credentials = %v, want an 'access denied' error", err)
	}
	fake.FailNext("HeadBucket", 1, s3client.ErrNotFound)
	if err := s3mount.Check(t.Context(), fake, mounttest.Options()); err == nil || !strings.Contains(err.Error(), "bucket not found") {
		t.Errorf("Check of a missing bucket = %v, want a 'bucket not found' error", err)
	}
	fake.FailNext("List", 1, s3client.ErrUnavailable)
	if err := s3mount.Check(t.Context(), fake, mounttest.Options()); err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("Check with S3 unavailable = %v, want an 'unreachable' error", err)
	}
	bad := mounttest.Options()
	bad.PartSize = 1
	if err := s3mount.Check(t.Context(), fake, bad); err == nil || !strings.Contains(err.Error(), "part-size") {
		t.Errorf("Check with invalid options = %v, want the option named", err)
	}
}

// Objects carrying s3fs's headers show their mode, owner and mtime; chmod stores the new mode in the same
// header and keeps the others.
func TestFakeS3fsMetadataAndSetattr(t *testing.T) {
	env, fake := mountFake(t, nil)
	fake.PutWith("m", []byte("x"), s3client.PutOptions{Metadata: map[string]string{
		"mode": "33261", "uid": "1234", "gid": "5678", "mtime": "1700000000.5"}}) // 0100755
	fn := filepath.Join(env.Dir, "m")
	var st syscall.Stat_t
	if err := syscall.Stat(fn, &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode != syscall.S_IFREG|0o755 || st.Uid != 1234 || st.Gid != 5678 || st.Mtim.Sec != 1700000000 ||
		st.Mtim.Nsec != 500000000 {
		t.Errorf("stat = mode %o uid %d gid %d mtime %d.%09d; want 100755 1234 5678 1700000000.5",
			st.Mode, st.Uid, st.Gid, st.Mtim.Sec, st.Mtim.Nsec)
	}
	if err := os.Chmod(fn, 0o600); err != nil {
		t.Errorf("chmod = %v", err)
	}
	info, _ := fake.Info("m")
	if info.Metadata["mode"] != "33152" || info.Metadata["uid"] != "1234" || info.Metadata["gid"] != "5678" ||
		info.Metadata["mtime"] != "1700000000.5" {
		t.Errorf("metadata after chmod 0600 = %v, want mode 33152 and the other headers kept", info.Metadata)
	}
}

func TestFakeWriteHandleCannotRead(t *testing.T) {
	env, _ := mountFake(t, nil)
	f, err := os.OpenFile(filepath.Join(env.Dir, "rw"), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write([]byte("abc")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ReadAt(make([]byte, 3), 0); !errors.Is(err, syscall.EBADF) {
		t.Errorf("read on a write handle = %v, want EBADF", err)
	}
}

// open(O_TRUNC) of an existing file reaches the mount as OPEN without O_TRUNC followed by SETATTR(size 0)
// without a handle: the file is replaced, as os.WriteFile and shell redirections expect.
func TestFakeReplaceExistingWithOTrunc(t *testing.T) {
	env, fake := mountFake(t, nil)
	fn := filepath.Join(env.Dir, "again")
	for i := 0; i < 3; i++ {
		data := pattern(6<<20+i, byte(i))
		if err := os.WriteFile(fn, data, 0o644); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		if got, _ := fake.Object("again"); !bytes.Equal(got, data) {
			t.Fatalf("object after write %d: %d bytes, want %d", i, len(got), len(data))
		}
	}
	if ups := fake.Uploads(); len(ups) != 0 {
		t.Errorf("uploads left: %v", ups)
	}
}

// An object "a" and objects below "a/" both exist: the file is shown, in listings and lookups alike.
func TestFakeFileShadowsDirectory(t *testing.T) {
	env, fake := mountFake(t, nil)
	fake.Put("a", []byte("file"))
	fake.Put("a/b", []byte("below"))
	ents, err := os.ReadDir(env.Dir)
	if err != nil || len(ents) != 1 || ents[0].Name() != "a" || ents[0].IsDir() {
		t.Fatalf("listing = %v, %v; want the file a only", ents, err)
	}
	if st, err := os.Stat(filepath.Join(env.Dir, "a")); err != nil || !st.Mode().IsRegular() {
		t.Fatalf("stat a = %v, %v; want a regular file", st, err)
	}
	if got, err := os.ReadFile(filepath.Join(env.Dir, "a")); err != nil || string(got) != "file" {
		t.Errorf("read a = %q, %v", got, err)
	}
}

// A directory is renamed by copying every object below it and deleting the sources; an empty target directory
// is replaced, a non-empty one or a file is refused, and a directory with a file being written is busy.
func TestFakeRenameDirectory(t *testing.T) {
	env, fake := mountFake(t, nil)
	fake.Put("src/", nil)
	fake.Put("src/a", []byte("a"))
	fake.Put("src/sub/b", []byte("b"))
	fake.Put("empty/", nil)
	fake.Put("full/x", []byte("x"))
	fake.Put("file", []byte("f"))
	p := func(s string) string { return filepath.Join(env.Dir, s) }
	// os.Rename refuses an existing directory as the target before asking the kernel: use rename(2).
	if err := syscall.Rename(p("src"), p("full")); !errors.Is(err, syscall.ENOTEMPTY) {
		t.Errorf("rename onto a non-empty directory = %v, want ENOTEMPTY", err)
	}
	if err := syscall.Rename(p("src"), p("file")); !errors.Is(err, syscall.ENOTDIR) {
		t.Errorf("rename onto a file = %v, want ENOTDIR", err)
	}
	if err := syscall.Rename(p("src"), p("empty")); err != nil {
		t.Fatalf("rename onto an empty directory: %v", err)
	}
	if got, want := strings.Join(fake.Keys(), " "), "empty/ empty/a empty/sub/b file full/x"; got != want {
		t.Errorf("keys after rename = %q, want %q", got, want)
	}
	if got, err := os.ReadFile(p("empty/sub/b")); err != nil || string(got) != "b" {
		t.Errorf("read moved file = %q, %v", got, err)
	}
	if _, err := os.Stat(p("src")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stat of the old name = %v, want ENOENT", err)
	}
	if err := os.Rename(p("empty"), p("moved")); err != nil {
		t.Fatalf("rename to a new name: %v", err)
	}
	if got, want := strings.Join(fake.Keys(), " "), "file full/x moved/ moved/a moved/sub/b"; got != want {
		t.Errorf("keys after the second rename = %q, want %q", got, want)
	}
	f, err := os.Create(p("moved/sub/new"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := os.Rename(p("moved"), p("again")); !errors.Is(err, syscall.EBUSY) {
		t.Errorf("rename of a directory with a file being written = %v, want EBUSY", err)
	}
}

// Files seen in a listing that are too large to be symlinks cost no HEAD at lookup or stat.
func TestFakeLargeListedFilesCostNoHead(t *testing.T) {
	env, fake := mountFake(t, nil)
	for i := range 10 {
		fake.Put(fmt.Sprintf("d/f%d", i), make([]byte, 4096))
	}
	ents, err := os.ReadDir(filepath.Join(env.Dir, "d"))
	if err != nil || len(ents) != 10 {
		t.Fatalf("listing = %d entries, %v", len(ents), err)
	}
	fake.ResetCounters()
	for _, e := range ents {
		if info, err := e.Info(); err != nil || info.Size() != 4096 {
			t.Errorf("stat %s = %v, %v", e.Name(), info, err)
		}
	}
	if n := fake.Calls("HeadObject"); n != 0 {
		t.Errorf("stat of 10 listed 4 KiB files issued %d HEADs, want 0", n)
	}
}
