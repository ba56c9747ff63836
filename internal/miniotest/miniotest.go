// Package miniotest gives tests a real MinIO server (internal/miniolocal) with testing.TB ergonomics.
//
// Shared returns one server per test binary, started on first use; a package using it should call Main from
// TestMain so the server stops when the tests end (it dies with the test binary in any case, see
// miniolocal). Start returns a dedicated server, stopped in t.Cleanup, for tests that stop, kill or restart
// it. Each test takes its own bucket with NewBucket, so tests sharing a server do not see each other's
// objects.
//
// A missing minio binary fails the test with instructions; it never skips. Shared and Start call Hermetic,
// which removes the ambient AWS_* environment from the test process so that only what a test sets applies.
package miniotest

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/s3ftp/s3ftp/internal/miniolocal"
	"github.com/s3ftp/s3ftp/s3client"
)

// Server is a MinIO server for tests. The embedded miniolocal.Server gives Endpoint, AccessKey, SecretKey,
// Stop, Kill, Restart, Env and Config.
type Server struct {
	*miniolocal.Server
}

var (
	sharedMu  sync.Mutex
	shared    *Server
	sharedDir string
	bucketSeq atomic.Int64
)

// Hermetic removes every AWS_* variable from the process environment and points the shared config and
// credentials files at /dev/null, so that no ambient profile, CA bundle or credential leaks into a test.
// IMDS is disabled so a test without credentials fails fast instead of probing the network.
func Hermetic() {
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "AWS_") {
			os.Unsetenv(k)
		}
	}
	os.Setenv("AWS_CONFIG_FILE", os.DevNull)
	os.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

func launch(tb testing.TB, dataDir string) *Server {
	tb.Helper()
	Hermetic()
	bin, err := miniolocal.FindBinary()
	if err != nil {
		tb.Fatalf("minio not found; `make test` builds it (scripts/setup-test-deps.sh), or set $S3FTP_MINIO: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	s, err := miniolocal.Launch(ctx, miniolocal.Options{Binary: bin, DataDir: dataDir})
	if err != nil {
		tb.Fatalf("start minio: %v", err)
	}
	return &Server{Server: s}
}

// Shared returns the test binary's shared server, starting it on first use.
func Shared(tb testing.TB) *Server {
	tb.Helper()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared != nil {
		if !shared.Running() {
			tb.Fatalf("the shared minio at %s is not running (a test stopped it; use Start for that); output:\n%s",
				shared.Endpoint, shared.Output())
		}
		return shared
	}
	dir, err := os.MkdirTemp("", "miniotest-shared-")
	if err != nil {
		tb.Fatalf("minio data dir: %v", err)
	}
	sharedDir = dir
	shared = launch(tb, dir)
	return shared
}

// Main runs the tests and then stops the shared server. Call it from TestMain: func TestMain(m *testing.M)
// { miniotest.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	sharedMu.Lock()
	if shared != nil {
		_ = shared.Stop()
		shared = nil
	}
	if sharedDir != "" {
		os.RemoveAll(sharedDir)
	}
	sharedMu.Unlock()
	os.Exit(code)
}

// Start returns a dedicated server with its own data directory, stopped when the test ends. Its output is
// logged if the test failed.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s := launch(tb, tb.TempDir())
	tb.Cleanup(func() {
		_ = s.Stop()
		if tb.Failed() {
			tb.Logf("minio output (tail):\n%s", s.Output())
		}
	})
	return s
}

var nonBucketChars = regexp.MustCompile(`[^a-z0-9-]+`)

// NewBucket creates a bucket with a name unique in this test binary, derived from the test's name.
func (s *Server) NewBucket(tb testing.TB) string {
	tb.Helper()
	name := strings.Trim(nonBucketChars.ReplaceAllString(strings.ToLower(tb.Name()), "-"), "-")
	suffix := fmt.Sprintf("-%d-%d", os.Getpid()%100000, bucketSeq.Add(1))
	if max := 63 - len(suffix) - 2; len(name) > max {
		name = strings.TrimRight(name[:max], "-")
	}
	bucket := "t-" + name + suffix
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := s.CreateBucket(ctx, bucket); err != nil {
		tb.Fatalf("create bucket %s on %s: %v", bucket, s.Endpoint, err)
	}
	return bucket
}

// Client returns an adapter bound to bucket, with static credentials for this server.
func (s *Server) Client(tb testing.TB, bucket string) *s3client.SDK {
	tb.Helper()
	c, err := s.Server.Client(context.Background(), bucket)
	if err != nil {
		tb.Fatalf("s3 client for %s: %v", bucket, err)
	}
	return c
}
