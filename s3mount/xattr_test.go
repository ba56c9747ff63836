package s3mount_test

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/s3ftp/s3ftp/s3client"
	"github.com/s3ftp/s3ftp/s3mount"
	"github.com/s3ftp/s3ftp/s3mount/mounttest"
)

func getx(t *testing.T, path, name string) (string, error) {
	t.Helper()
	buf := make([]byte, 4096)
	n, err := unix.Getxattr(path, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// user.* extended attributes (--xattr): stored in s3fs's x-amz-meta-xattr header on files and directory
// markers, read back by a new mount, bounded by S3's 2 KiB of metadata; other namespaces are not stored.
func TestFakeXattrs(t *testing.T) {
	xattrOn := func(o *s3mount.Options) { o.Xattr = true }
	env, fake := mountFake(t, xattrOn)
	fn := filepath.Join(env.Dir, "f")
	if err := os.WriteFile(fn, []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(fn, "user.k", []byte("v1"), 0); err != nil {
		t.Fatalf("setxattr user.k: %v", err)
	}
	if err := unix.Setxattr(fn, "user.other", []byte("two words"), 0); err != nil {
		t.Fatal(err)
	}
	if v, err := getx(t, fn, "user.k"); err != nil || v != "v1" {
		t.Errorf("getxattr user.k = %q, %v", v, err)
	}
	list := make([]byte, 256)
	n, err := unix.Listxattr(fn, list)
	if err != nil || string(list[:n]) != "user.k\x00user.other\x00" {
		t.Errorf("listxattr = %q, %v", list[:n], err)
	}
	info, _ := fake.Info("f")
	raw, err := url.PathUnescape(info.Metadata["xattr"])
	if err != nil || raw != `{"user.k":"djE=","user.other":"dHdvIHdvcmRz"}` {
		t.Errorf("x-amz-meta-xattr = %q (decoded %q, %v), want s3fs's percent-encoded JSON of base64 values",
			info.Metadata["xattr"], raw, err)
	}
	if got, _ := fake.Object("f"); string(got) != "data" {
		t.Errorf("content changed by setxattr: %q", got)
	}

	if err := unix.Setxattr(fn, "user.k", []byte("x"), unix.XATTR_CREATE); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("XATTR_CREATE of an existing attribute = %v, want EEXIST", err)
	}
	if err := unix.Setxattr(fn, "user.none", []byte("x"), unix.XATTR_REPLACE); !errors.Is(err, syscall.ENODATA) {
		t.Errorf("XATTR_REPLACE of a missing attribute = %v, want ENODATA", err)
	}
	if err := unix.Removexattr(fn, "user.other"); err != nil {
		t.Errorf("removexattr: %v", err)
	}
	if _, err := getx(t, fn, "user.other"); !errors.Is(err, syscall.ENODATA) {
		t.Errorf("getxattr of a removed attribute = %v, want ENODATA", err)
	}
	if err := unix.Setxattr(fn, "trusted.k", []byte("x"), 0); !errors.Is(err, syscall.ENOTSUP) {
		t.Errorf("setxattr trusted.k = %v, want ENOTSUP", err)
	}
	before := fake.TotalCalls()
	if _, err := getx(t, fn, "security.capability"); !errors.Is(err, syscall.ENODATA) {
		t.Errorf("getxattr security.capability = %v, want ENODATA", err)
	}
	if n := fake.TotalCalls() - before; n != 0 {
		t.Errorf("getxattr security.capability cost %d S3 requests, want 0", n)
	}
	if err := unix.Setxattr(fn, "user.big", bytes.Repeat([]byte("b"), 2000), 0); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("setxattr beyond 2 KiB of metadata = %v, want ENOSPC", err)
	}

	// Directories keep theirs on the marker; a file being written stores them with its upload.
	d := filepath.Join(env.Dir, "d")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(d, "user.dir", []byte("yes"), 0); err != nil {
		t.Fatalf("setxattr on a directory: %v", err)
	}
	w, err := os.Create(filepath.Join(env.Dir, "w"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("written")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fsetxattr(int(w.Fd()), "user.w", []byte("while"), 0); err != nil {
		t.Fatalf("fsetxattr while writing: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	// An object written by s3fs with an attribute; then everything seen from a new mount.
	fake.PutWith("s3fs.txt", []byte("s"), s3client.PutOptions{Metadata: map[string]string{
		"xattr": url.PathEscape(`{"user.from":"aGk="}`)}})
	again := mounttest.MountClient(t, fake, mounttest.Options()) // without --xattr
	fresh := mounttest.MountClient(t, fake, func() s3mount.Options { o := mounttest.Options(); xattrOn(&o); return o }())
	for path, want := range map[string]string{"f\x00user.k": "v1", "d\x00user.dir": "yes", "w\x00user.w": "while", "s3fs.txt\x00user.from": "hi"} {
		name, attr, _ := strings.Cut(path, "\x00")
		if v, err := getx(t, filepath.Join(fresh.Dir, name), attr); err != nil || v != want {
			t.Errorf("%s %s on a new mount = %q, %v; want %q", name, attr, v, err, want)
		}
	}
	// Without --xattr the kernel is told there are none.
	if err := unix.Setxattr(filepath.Join(again.Dir, "f"), "user.k", []byte("x"), 0); !errors.Is(err, syscall.ENOTSUP) {
		t.Errorf("setxattr without --xattr = %v, want ENOTSUP", err)
	}
}

// The checksums of every upload (Options.Checksums) are stored as the object's tags while the
// bytes stream through and read back as user.sha256, user.md5 and user.crc32 without reading the object, on
// this mount and on a new one; they cannot be set.
func TestFakeChecksumAttributes(t *testing.T) {
	env, fake := mountFake(t, func(o *s3mount.Options) { o.Xattr, o.Checksums, o.ChecksumMD5 = true, true, true })
	data := pattern(12<<20+7, 3)
	fn := filepath.Join(env.Dir, "big.csv")
	if err := os.WriteFile(fn, data, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	fake.ResetCounters()
	if v, err := getx(t, fn, "user.sha256"); err != nil || v != hex.EncodeToString(sum[:]) {
		t.Errorf("user.sha256 = %q, %v; want %x", v, err, sum)
	}
	md := md5.Sum(data)
	if v, err := getx(t, fn, "user.md5"); err != nil || v != hex.EncodeToString(md[:]) {
		t.Errorf("user.md5 = %q, %v; want %x", v, err, md)
	}
	if n := fake.Calls("GetObject"); n != 0 {
		t.Errorf("reading the checksums cost %d GETs of the object, want 0", n)
	}
	if n := fake.Calls("GetObjectTagging"); n != 0 {
		t.Errorf("reading the checksums of a file this mount just wrote cost %d GetObjectTagging, want 0", n)
	}
	if err := unix.Setxattr(fn, "user.sha256", []byte("forged"), 0); !errors.Is(err, syscall.EPERM) {
		t.Errorf("setxattr user.sha256 = %v, want EPERM", err)
	}
	o := mounttest.Options()
	o.Xattr = true
	again := mounttest.MountClient(t, fake, o)
	if v, err := getx(t, filepath.Join(again.Dir, "big.csv"), "user.sha256"); err != nil || v != hex.EncodeToString(sum[:]) {
		t.Errorf("user.sha256 on a new mount = %q, %v", v, err)
	}
	// An object written by another tool has none: the attribute is absent, never computed by reading it.
	fake.Put("other.csv", data)
	fake.ResetCounters()
	if _, err := getx(t, filepath.Join(again.Dir, "other.csv"), "user.sha256"); !errors.Is(err, syscall.ENODATA) {
		t.Errorf("user.sha256 of an object stored without checksums = %v, want ENODATA", err)
	}
	if n := fake.Calls("GetObject"); n != 0 {
		t.Errorf("%d GETs for an unknown checksum, want 0", n)
	}
}
