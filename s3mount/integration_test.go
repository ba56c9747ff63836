package s3mount_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/hanwen/go-fuse/v2/posixtest"

	"github.com/s3ftp/s3ftp/internal/miniotest"
	"github.com/s3ftp/s3ftp/s3mount"
	"github.com/s3ftp/s3ftp/s3mount/mounttest"
)

func TestMain(m *testing.M) { miniotest.Main(m) }

func readObject(t *testing.T, env *mounttest.Env, key string) []byte {
	t.Helper()
	body, _, err := env.Client.GetObject(context.Background(), key, 0, -1, "")
	if err != nil {
		t.Fatalf("GetObject %s: %v", key, err)
	}
	defer body.Close()
	b, err := io.ReadAll(body)
	if err != nil {
		t.Fatalf("reading %s: %v", key, err)
	}
	return b
}

func TestMinioWriteVisibleToOtherClient(t *testing.T) {
	env := mounttest.Mount(t, mounttest.Options())
	data := pattern(11<<20+7, 9)
	fn := filepath.Join(env.Dir, "up.bin")
	if err := os.WriteFile(fn, data, 0o644); err != nil {
		t.Fatalf("WriteFile: %v", err)
	}
	if got := readObject(t, env, "up.bin"); !bytes.Equal(got, data) {
		t.Fatalf("object differs: %d bytes, want %d", len(got), len(data))
	}
	if back, err := os.ReadFile(fn); err != nil || !bytes.Equal(back, data) {
		t.Fatalf("read back through the mount: %v, equal=%v", err, bytes.Equal(back, data))
	}
	ups, err := env.Client.ListMultipartUploads(context.Background(), "")
	if err != nil || len(ups) != 0 {
		t.Errorf("unfinished uploads: %v, %v", ups, err)
	}
}

func TestMinioObjectFromOtherClientAppears(t *testing.T) {
	env := mounttest.Mount(t, mounttest.Options())
	ctx := context.Background()
	if _, err := env.Client.PutObject(ctx, "in/dir/report.csv", []byte("a,b\n1,2\n"), s3PutOpts()); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(env.Dir)
	if err != nil || len(ents) != 1 || ents[0].Name() != "in" || !ents[0].IsDir() {
		t.Fatalf("root listing = %v, %v; want the implicit directory in/", ents, err)
	}
	st, err := os.Stat(filepath.Join(env.Dir, "in", "dir", "report.csv"))
	if err != nil || st.Size() != 8 || !st.Mode().IsRegular() {
		t.Fatalf("stat = %v, %v", st, err)
	}
	got, err := os.ReadFile(filepath.Join(env.Dir, "in", "dir", "report.csv"))
	if err != nil || string(got) != "a,b\n1,2\n" {
		t.Fatalf("read = %q, %v", got, err)
	}
}

func TestMinioDirectories(t *testing.T) {
	env := mounttest.Mount(t, mounttest.Options())
	d := filepath.Join(env.Dir, "d")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if info, err := env.Client.HeadObject(context.Background(), "d/"); err != nil || info.Size != 0 {
		t.Fatalf("marker d/: %+v, %v", info, err)
	}
	if err := os.WriteFile(filepath.Join(d, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Rmdir(d); err != syscall.ENOTEMPTY {
		t.Fatalf("rmdir non-empty = %v, want ENOTEMPTY", err)
	}
	if err := os.Remove(filepath.Join(d, "f")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Rmdir(d); err != nil {
		t.Fatalf("rmdir: %v", err)
	}
	page, err := env.Client.List(context.Background(), "", "", "", 10)
	if err != nil || len(page.Objects) != 0 {
		t.Errorf("objects left: %+v, %v", page.Objects, err)
	}
}

func TestMinioRenameUnlink(t *testing.T) {
	env := mounttest.Mount(t, mounttest.Options())
	src, dst := filepath.Join(env.Dir, "a.txt"), filepath.Join(env.Dir, "b.txt")
	if err := os.WriteFile(src, []byte("moved"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(src, dst); err != nil {
		t.Fatalf("rename: %v", err)
	}
	if _, err := env.Client.HeadObject(context.Background(), "a.txt"); err == nil {
		t.Errorf("source object still exists")
	}
	if got := readObject(t, env, "b.txt"); string(got) != "moved" {
		t.Errorf("destination = %q", got)
	}
	if err := os.Remove(dst); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.HeadObject(context.Background(), "b.txt"); err == nil {
		t.Errorf("unlinked object still exists")
	}
}

// A 100 MiB file copied in with io.Copy and out again is byte-identical, in S3 and through the mount.
func TestMinio100MiBCopy(t *testing.T) {
	env := mounttest.Mount(t, mounttest.Options())
	const size = 100 << 20
	src := io.LimitReader(&patternReader{}, size)
	want := sha256.New()
	f, err := os.Create(filepath.Join(env.Dir, "big"))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := io.CopyBuffer(f, io.TeeReader(src, want), make([]byte, 1<<20)); err != nil || n != size {
		t.Fatalf("copy in: %d, %v", n, err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	wantSum := want.Sum(nil)
	got := sha256.New()
	r, err := os.Open(filepath.Join(env.Dir, "big"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if n, err := io.CopyBuffer(got, r, make([]byte, 1<<20)); err != nil || n != size {
		t.Fatalf("copy out: %d, %v", n, err)
	}
	if !bytes.Equal(got.Sum(nil), wantSum) {
		t.Fatalf("read back through the mount differs")
	}
	body, info, err := env.Client.GetObject(context.Background(), "big", 0, -1, "")
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	s3sum := sha256.New()
	if _, err := io.Copy(s3sum, body); err != nil || info.Size != size || !bytes.Equal(s3sum.Sum(nil), wantSum) {
		t.Fatalf("object in S3 differs: size %d, err %v", info.Size, err)
	}
}

type patternReader struct{ off int64 }

func (p *patternReader) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = byte((p.off + int64(i)) * 31 / 7)
	}
	p.off += int64(len(b))
	return len(b), nil
}

func TestMinioNamesThatCannotBeKeys(t *testing.T) {
	env := mounttest.Mount(t, mounttest.Options())
	if err := os.WriteFile(filepath.Join(env.Dir, strings.Repeat("n", 256)), nil, 0o644); !errors.Is(err, syscall.ENAMETOOLONG) {
		t.Errorf("256-byte name = %v, want ENAMETOOLONG", err)
	}
	// Nine levels of 120-byte directories make a key above 1024 bytes.
	p := env.Dir
	var err error
	for i := 0; i < 9 && err == nil; i++ {
		p = filepath.Join(p, strings.Repeat(string(rune('a'+i)), 120))
		err = os.Mkdir(p, 0o755)
	}
	if !errors.Is(err, syscall.ENAMETOOLONG) {
		t.Errorf("key above 1024 bytes = %v, want ENAMETOOLONG", err)
	}
}

func TestMinioCheck(t *testing.T) {
	srv := miniotest.Shared(t)
	bucket := srv.NewBucket(t)
	if err := s3mount.Check(context.Background(), srv.Client(t, bucket), mounttest.Options()); err != nil {
		t.Fatalf("Check of an existing bucket: %v", err)
	}
	err := s3mount.Check(context.Background(), srv.Client(t, bucket+"-missing"), mounttest.Options())
	if err == nil || !strings.Contains(err.Error(), "bucket not found") {
		t.Fatalf("Check of a missing bucket = %v, want a 'bucket not found' error", err)
	}
}

// The subset of go-fuse's posixtest suite that an S3 mount can pass, with --xattr on. Left out:
//   - Link, LinkUnlinkRename: hard links (S3 has none; refused with ENOTSUP).
//   - FcntlFlockLocksFile, FcntlFlockSetLk: locks stay local to the kernel (EnableLocks off; S3 has none).
//   - Fallocate: no preallocation (S3 objects are written whole).
//   - ParallelFileOpen: several processes writing one file at once (EBUSY: one upload per file).
//   - DirectIO: O_DIRECT (the mount has no page cache of its own to bypass).
//   - XAttrLarge: values beyond S3's 2 KiB of user metadata (ENOSPC; the test skips itself on it).
//   - OpenSymlinkRace: passes (run by hand: 49 s), left out for its run time.
//   - FstatDeleted: fails on the mtime of a file just written: a stat within StatTTL of the write shows the
//     attributes the kernel cached at create, an fstat after the unlink the committed object's (a few
//     milliseconds later).
//
// AppendWrite, TruncateFile and TruncateNoFile pass: appends and truncation keep the existing bytes by
// server-side copy. NlinkZero passes: a file replaced while open keeps its attributes, with no link.
func TestMinioPosixSubset(t *testing.T) {
	for _, name := range []string{
		"FileBasic", "FileLarge", "FdLeak", "MkdirRmdir", "ReadDirBasic", "ReadDirConsistency",
		"RenameOverwriteDestNoExist", "RenameOverwriteDestExist", "DirSeek", "RenameOpenDir", "OpenAt",
		"AppendWrite", "TruncateFile", "TruncateNoFile", "SymlinkReadlink", "SetattrSymlink", "NlinkZero",
		"XAttr", "LseekHoleSeeksToEOF", "LseekEnxioCheck",
	} {
		t.Run(name, func(t *testing.T) {
			o := mounttest.Options()
			o.FileMode, o.Umask = 0o755, 0 // FileBasic expects the mode it created the file with
			o.Xattr = true
			env := mounttest.Mount(t, o)
			posixtest.All[name](t, env.Dir)
		})
	}
}
