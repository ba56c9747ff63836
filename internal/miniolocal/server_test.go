package miniolocal

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestFindBinaryHonoursOverride(t *testing.T) {
	t.Setenv("S3FTP_MINIO", filepath.Join(t.TempDir(), "nope"))
	if _, err := FindBinary(); err == nil || !strings.Contains(err.Error(), "S3FTP_MINIO") {
		t.Fatalf("FindBinary with a bad override: %v", err)
	}
	exe := filepath.Join(t.TempDir(), "minio")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("S3FTP_MINIO", exe)
	if got, err := FindBinary(); err != nil || got != exe {
		t.Fatalf("FindBinary = %q, %v", got, err)
	}
}

func TestLaunchRefusesNonLoopback(t *testing.T) {
	_, err := Launch(context.Background(), Options{Binary: "/bin/true", DataDir: t.TempDir(), Addr: "0.0.0.0:9000"})
	if err == nil || !strings.Contains(err.Error(), "not loopback") {
		t.Fatalf("Launch on 0.0.0.0: %v", err)
	}
	if _, err := Launch(context.Background(), Options{Binary: "/bin/true"}); err == nil {
		t.Fatal("Launch without a data dir succeeded")
	}
}

func TestLaunchReportsEarlyExit(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "minio")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho broken server >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := Launch(context.Background(), Options{Binary: bin, DataDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "exited") || !strings.Contains(err.Error(), "broken server") {
		t.Fatalf("Launch of a failing binary: %v", err)
	}
}

// TestLaunchStopRestart runs the real minio: it must be found (make test builds it).
func TestLaunchStopRestart(t *testing.T) {
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "AWS_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	bin, err := FindBinary()
	if err != nil {
		t.Fatalf("minio not found; `make test` builds it (scripts/setup-test-deps.sh): %v", err)
	}
	ctx := context.Background()
	s, err := Launch(ctx, Options{Binary: bin, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if !strings.HasPrefix(s.Endpoint, "http://127.0.0.1:") {
		t.Fatalf("endpoint %s", s.Endpoint)
	}
	env := s.Env()
	slices.Sort(env)
	if strings.Join(env, " ") != "AWS_ACCESS_KEY_ID="+s.AccessKey+" AWS_REGION=us-east-1 AWS_SECRET_ACCESS_KEY="+s.SecretKey {
		t.Fatalf("env %q", env)
	}
	if err := s.CreateBucket(ctx, "bucket-one"); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil || s.Running() {
		t.Fatalf("stop: %v running=%v", err, s.Running())
	}
	if resp, err := http.Get(s.Endpoint + "/minio/health/live"); err == nil {
		resp.Body.Close()
		t.Fatal("server still answers after Stop")
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	c, err := s.Client(ctx, "bucket-one")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.HeadBucket(ctx); err != nil {
		t.Fatalf("bucket lost across restart: %v", err)
	}
}
