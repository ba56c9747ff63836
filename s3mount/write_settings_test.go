package s3mount_test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3ftp/s3ftp/internal/miniotest"
	"github.com/s3ftp/s3ftp/s3client"
	"github.com/s3ftp/s3ftp/s3mount/mounttest"
)

// The client's upload settings reach every object the mount writes or copies: a small file (PutObject), a
// multipart file, an append (multipart upload with a server-side copied part), a renamed file (CopyObject)
// and a file whose mode was changed (CopyObject onto itself) all carry the server-side encryption (SSE-S3,
// on a MinIO with a KMS key) and the storage class; the canned ACL "private" is accepted on every request.
func TestMinioWriteSettingsOnEveryObject(t *testing.T) {
	srv := mounttest.StartMinioKMS(t)
	ctx := context.Background()
	client := srv.Client(t, s3client.Config{SSE: "AES256", StorageClass: "REDUCED_REDUNDANCY", ACL: "private"})
	env := mounttest.MountClient(t, client, mounttest.Options())
	env.Client = srv.Client(t, s3client.Config{})
	bucket := srv.Bucket
	p := func(n string) string { return filepath.Join(env.Dir, n) }
	if err := os.WriteFile(p("small"), []byte("s"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p("multi"), pattern(11<<20, 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p("appended"), pattern(6<<20, 2), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p("appended"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("more")); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p("before"), []byte("r"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p("before"), p("renamed")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p("chmodded"), []byte("c"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p("chmodded"), 0o600); err != nil {
		t.Fatal(err)
	}
	raw := s3.New(s3.Options{
		BaseEndpoint: aws.String(srv.Endpoint), Region: "us-east-1", UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, ""),
	})
	for _, key := range []string{"small", "multi", "appended", "renamed", "chmodded"} {
		out, err := raw.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String(key)})
		if err != nil {
			t.Fatalf("HEAD %s: %v", key, err)
		}
		if out.StorageClass != types.StorageClassReducedRedundancy {
			t.Errorf("%s: storage class %q, want REDUCED_REDUNDANCY", key, out.StorageClass)
		}
		if out.ServerSideEncryption != types.ServerSideEncryptionAes256 {
			t.Errorf("%s: server-side encryption %q, want AES256", key, out.ServerSideEncryption)
		}
	}
	if info, err := env.Client.HeadObject(ctx, "chmodded"); err != nil || info.Metadata["mode"] != "33152" {
		t.Errorf("chmodded: %v, %v; want x-amz-meta-mode 33152", info.Metadata, err)
	}
}

// chmod, chown and utimens through a mount over MinIO land in the object's s3fs headers and show on a second
// mount of the same bucket.
func TestMinioAttributesSurviveRemount(t *testing.T) {
	env := mounttest.Mount(t, mounttest.Options())
	fn := filepath.Join(env.Dir, "keep.txt")
	if err := os.WriteFile(fn, []byte("k"), 0o644); err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(1999, 12, 31, 23, 59, 58, 0, time.UTC)
	if err := os.Chmod(fn, 0o751); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(fn, 2001, 2002); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(fn, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	again := mounttest.MountClient(t, miniotest.Shared(t).Client(t, env.Bucket), mounttest.Options())
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(again.Dir, "keep.txt"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode != syscall.S_IFREG|0o751 || st.Uid != 2001 || st.Gid != 2002 || st.Mtim.Sec != mtime.Unix() {
		t.Errorf("second mount: mode %o uid %d gid %d mtime %d; want 100751 2001 2002 %d",
			st.Mode, st.Uid, st.Gid, st.Mtim.Sec, mtime.Unix())
	}
	if b, err := os.ReadFile(filepath.Join(again.Dir, "keep.txt")); err != nil || string(b) != "k" {
		t.Errorf("content on the second mount = %q, %v", b, err)
	}
}
