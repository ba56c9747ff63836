package sftpfront

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/s3ftp/s3ftp/internal/miniotest"
	"github.com/s3ftp/s3ftp/s3mount/mounttest"
)

func TestMain(m *testing.M) { miniotest.Main(m) }

// Over a real s3mount mount on MinIO, OpenSSH's sftp uploads a 12 MiB file (pipelined writes, multipart upload
// with 5 MiB parts) that lands in S3 byte-identical, downloads it back, keeps the mtime of `put -p` on the mount
// and in the object's x-amz-meta-mtime, resumes an upload with reput (the object's bytes kept, the rest
// appended), and renames and removes objects.
func TestOpenSSHOverS3Mount(t *testing.T) {
	env := mounttest.Mount(t, mounttest.Options())
	s := newTestServer(t, withRoot(env.Dir))
	ctx := context.Background()

	data := randomBytes(t, 12<<20+777)
	s.local("big.bin", data)
	p := s.local("old.txt", []byte("kept mtime\n"))
	mtime := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	s.mustSFTP(alice, "put big.bin\nget big.bin back.bin\nput -p old.txt\nmkdir d\nrename old.txt d/old.txt\n")

	info, err := env.Client.HeadObject(ctx, "alice/big.bin")
	if err != nil || info.Size != int64(len(data)) {
		t.Fatalf("object alice/big.bin: size %d, err %v; want %d", info.Size, err, len(data))
	}
	body, _, err := env.Client.GetObject(ctx, "alice/big.bin", 0, -1, "")
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	got.ReadFrom(body)
	body.Close()
	if !bytes.Equal(got.Bytes(), data) {
		t.Fatal("object in S3 differs from the uploaded file")
	}
	if back, err := os.ReadFile(filepath.Join(s.work, "back.bin")); err != nil || !bytes.Equal(back, data) {
		t.Fatalf("downloaded file differs (err %v)", err)
	}

	fi, err := os.Stat(s.home(alice, "d/old.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if !fi.ModTime().Equal(mtime) {
		t.Errorf("mtime on the mount = %v, want %v", fi.ModTime().UTC(), mtime)
	}
	info, err = env.Client.HeadObject(ctx, "alice/d/old.txt")
	if err != nil {
		t.Fatalf("renamed object: %v", err)
	}
	if m := info.Metadata["mtime"]; !strings.HasPrefix(m, "981173106") {
		t.Errorf("x-amz-meta-mtime = %q, want 981173106 (%v)", m, mtime)
	}
	if _, err := env.Client.HeadObject(ctx, "alice/old.txt"); err == nil {
		t.Error("alice/old.txt still in S3 after the rename")
	}

	// reput: the first 6 MiB are in S3 already (written through the mount); the rest is appended.
	if err := os.WriteFile(s.home(alice, "re.bin"), data[:6<<20], 0o644); err != nil {
		t.Fatal(err)
	}
	s.local("re.bin", data)
	s.mustSFTP(alice, "reput re.bin\n")
	body, _, err = env.Client.GetObject(ctx, "alice/re.bin", 0, -1, "")
	if err != nil {
		t.Fatal(err)
	}
	got.Reset()
	got.ReadFrom(body)
	body.Close()
	if !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("after reput the object has %d bytes, want %d identical", got.Len(), len(data))
	}

	s.mustSFTP(alice, "rm big.bin\nrm re.bin\nrm d/old.txt\nrmdir d\n")
	for _, key := range []string{"alice/big.bin", "alice/d/old.txt"} {
		if _, err := env.Client.HeadObject(ctx, key); err == nil {
			t.Errorf("%s still in S3 after rm", key)
		}
	}
}

// Over the mount, an upload failed by a write outside the reorder window leaves no object in S3 and no file on
// the mount, and the close reports the failure.
func TestFailedUploadOverS3MountLeavesNoObject(t *testing.T) {
	env := mounttest.Mount(t, mounttest.Options())
	s := newTestServer(t, withRoot(env.Dir), withWindow(1<<20))
	_, c := s.dial(alice)
	f, err := c.Create("half.bin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(randomBytes(t, 6<<20)); err != nil { // more than a part: the upload has begun
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("far"), 10<<20); err == nil {
		t.Fatal("write beyond the window accepted")
	}
	if err := f.Close(); err == nil {
		t.Fatal("close of the failed upload returned OK")
	}
	if _, err := os.Stat(s.home(alice, "half.bin")); !os.IsNotExist(err) {
		t.Errorf("half.bin on the mount: %v", err)
	}
	if _, err := env.Client.HeadObject(context.Background(), "alice/half.bin"); err == nil {
		t.Error("alice/half.bin is in S3")
	}
}

// Over the mount, pkg/sftp's client setting the mtime (SETSTAT) and mode (FSETSTAT) before its writes, as
// WinSCP does, gets a file with that mtime after the close, on the mount and in the object's x-amz-meta-mtime.
func TestSetstatBeforeTheWritesOverS3Mount(t *testing.T) {
	env := mounttest.Mount(t, mounttest.Options())
	s := newTestServer(t, withRoot(env.Dir))
	checkSetstatBeforeWrites(t, s)
	info, err := env.Client.HeadObject(context.Background(), "alice/winscp.bin")
	if err != nil {
		t.Fatal(err)
	}
	if m := info.Metadata["mtime"]; !strings.HasPrefix(m, "981173106") {
		t.Errorf("x-amz-meta-mtime = %q, want 981173106", m)
	}
}

// Over the mount, scp -O uploads a 7 MiB file with -p (multipart, the mtime in x-amz-meta-mtime), a tree with
// -r -p, and downloads both back identical; plain scp (SFTP mode) overwrites the file in place and copies the
// tree back with -r -p.
func TestSCPOverS3Mount(t *testing.T) {
	env := mounttest.Mount(t, mounttest.Options())
	s := newTestServer(t, withRoot(env.Dir))
	ctx := context.Background()
	mtime := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	data := randomBytes(t, 7<<20+3)
	p := s.local("big.bin", data)
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	files := writeTree(t, filepath.Join(s.work, "tree"))
	s.mustSCP(alice, "-O", "-p", "big.bin", "R:")
	s.mustSCP(alice, "-O", "-r", "-p", "tree", "R:")

	body, _, err := env.Client.GetObject(ctx, "alice/big.bin", 0, -1, "")
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	got.ReadFrom(body)
	body.Close()
	if !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("object alice/big.bin: %d bytes, want %d identical", got.Len(), len(data))
	}
	info, err := env.Client.HeadObject(ctx, "alice/big.bin")
	if err != nil {
		t.Fatal(err)
	}
	if m := info.Metadata["mtime"]; !strings.HasPrefix(m, "981173106") {
		t.Errorf("x-amz-meta-mtime = %q, want 981173106", m)
	}
	checkTree(t, s.home(alice, "tree"), files)

	s.mustSCP(alice, "-O", "-p", "R:big.bin", "back.bin")
	if fi, err := os.Stat(filepath.Join(s.work, "back.bin")); err != nil || !fi.ModTime().Equal(mtime) {
		t.Errorf("scp -O -p download: %v, %v; want mtime %v", fi, err, mtime)
	}
	if !bytes.Equal(mustRead(t, filepath.Join(s.work, "back.bin")), data) {
		t.Fatal("scp -O download differs")
	}
	s.mustSCP(alice, "-O", "-r", "R:tree", "back-legacy")
	checkTree(t, filepath.Join(s.work, "back-legacy"), files)

	data2 := randomBytes(t, 6<<20+1)
	data2[0] ^= 0xff
	s.local("big.bin", data2)
	s.mustSCP(alice, "-p", "big.bin", "R:")
	if !bytes.Equal(mustRead(t, s.home(alice, "big.bin")), data2) {
		t.Fatal("plain scp over an existing object: the mount has other bytes")
	}
	s.mustSCP(alice, "-r", "-p", "R:tree", "back-sftp")
	checkTree(t, filepath.Join(s.work, "back-sftp"), files)
}

// With s3mount --checksums --xattr, an SFTP upload's audit event (and so its upload event) carries the SHA-256
// the mount stored.
func TestSFTPUploadEventCarriesTheStoredSHA256(t *testing.T) {
	o := mounttest.Options()
	o.Checksums, o.Xattr = true, true
	env := mounttest.Mount(t, o)
	s := newTestServer(t, withRoot(env.Dir))
	data := randomBytes(t, 6<<20+5)
	s.local("sum.bin", data)
	s.mustSFTP(alice, "put sum.bin\n")
	want := fmt.Sprintf("%x", sha256.Sum256(data))
	s.audit.mu.Lock()
	defer s.audit.mu.Unlock()
	found := false
	for _, e := range s.audit.events {
		if e.Event == "upload" && e.Path == "/sum.bin" {
			found = true
			if e.SHA256 != want {
				t.Errorf("upload event sha256 = %q, want %s", e.SHA256, want)
			}
		}
	}
	if !found {
		t.Errorf("no upload event for /sum.bin: %+v", s.audit.events)
	}
}
