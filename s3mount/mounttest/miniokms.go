package mounttest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/s3ftp/s3ftp/internal/miniolocal"
	"github.com/s3ftp/s3ftp/internal/miniotest"
	"github.com/s3ftp/s3ftp/s3client"
)

// MinioKMS is a dedicated MinIO server with a static KMS key, so that it honours server-side encryption with
// S3-managed keys (SSE "AES256"), which the shared test server (without a KMS) refuses. It holds one bucket.
type MinioKMS struct {
	// Endpoint is the API base URL; AccessKey and SecretKey the root credentials; Bucket an existing bucket.
	Endpoint, AccessKey, SecretKey, Bucket string
}

// StartMinioKMS starts the server on a free loopback port with its data in a temporary directory and stops it
// when the test ends. A missing minio binary fails the test.
func StartMinioKMS(t testing.TB) *MinioKMS {
	t.Helper()
	miniotest.Hermetic()
	bin, err := miniolocal.FindBinary()
	if err != nil {
		t.Fatalf("mounttest: minio not found; `make test` builds it (scripts/setup-test-deps.sh): %v", err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	m := &MinioKMS{
		Endpoint:  fmt.Sprintf("http://127.0.0.1:%d", freePort(t)),
		AccessKey: "s3ftp-kms-test",
		SecretKey: "s3ftp-kms-test-secret",
		Bucket:    "kms-test",
	}
	var out strings.Builder
	cmd := exec.Command(bin, "server", filepath.Join(t.TempDir(), "data"),
		"--address", strings.TrimPrefix(m.Endpoint, "http://"),
		"--console-address", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--quiet")
	cmd.Env = []string{
		"HOME=" + t.TempDir(),
		"MINIO_ROOT_USER=" + m.AccessKey,
		"MINIO_ROOT_PASSWORD=" + m.SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_CI_CD=1",
		"MINIO_KMS_SECRET_KEY=s3ftp-test-key:" + base64.StdEncoding.EncodeToString(key),
	}
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("mounttest: starting minio: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("mounttest: minio with a KMS key exited at start-up: %s", out.String())
		default:
		}
		resp, err := http.Get(m.Endpoint + "/minio/health/live")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("mounttest: minio with a KMS key not live after 60s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	c := m.Client(t, s3client.Config{})
	if err := c.CreateBucket(context.Background()); err != nil {
		t.Fatalf("mounttest: create bucket on the KMS minio: %v", err)
	}
	return m
}

// Client returns an adapter for the server's bucket; the upload settings of extra (SSE, SSEKMSKeyID,
// StorageClass, ACL) are applied to it.
func (m *MinioKMS) Client(t testing.TB, extra s3client.Config) *s3client.SDK {
	t.Helper()
	cfg := s3client.DefaultConfig(m.Bucket)
	cfg.Endpoint = m.Endpoint
	cfg.Region = miniolocal.Region
	cfg.AccessKey, cfg.SecretKey = m.AccessKey, m.SecretKey
	cfg.SSE, cfg.SSEKMSKeyID, cfg.StorageClass, cfg.ACL = extra.SSE, extra.SSEKMSKeyID, extra.StorageClass, extra.ACL
	c, err := s3client.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("mounttest: s3 client for the KMS minio: %v", err)
	}
	return c
}
