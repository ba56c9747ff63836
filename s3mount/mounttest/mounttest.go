// Package mounttest mounts s3mount in-process for tests: on a temporary directory, over a given client (an
// s3fake.Fake for unit tests) or over a fresh bucket of the shared MinIO (integration tests), unmounted in
// t.Cleanup. A test that cannot mount (no /dev/fuse, no fusermount3, no MinIO) fails with a message saying
// what is missing; it is never skipped.
package mounttest

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/s3ftp/s3ftp/internal/logbuf"
	"github.com/s3ftp/s3ftp/internal/miniotest"
	"github.com/s3ftp/s3ftp/internal/mountinfo"
	"github.com/s3ftp/s3ftp/s3client"
	"github.com/s3ftp/s3ftp/s3mount"
)

// Env is one mounted bucket.
type Env struct {
	// Dir is the mount point.
	Dir string
	// Client reaches the same bucket as the mount: "another S3 client" for the tests.
	Client s3client.Client
	// Bucket is the bucket's name ("" over a fake).
	Bucket string
	// Mounted is the mount itself.
	Mounted *s3mount.Mounted

	logs *logbuf.Buffer
}

// Logs returns the mount's log lines so far (text format, one per line).
func (e *Env) Logs() []string { return e.logs.Lines() }

// Options returns s3mount.DefaultOptions with the smallest valid sizes, so that tests exercise multipart uploads
// and cache eviction with little data.
func Options() s3mount.Options {
	o := s3mount.DefaultOptions()
	o.PartSize = s3client.MinPartSize
	o.MemoryBudget = 4 * s3client.MinPartSize
	o.UploadConcurrency = 2
	o.CacheSize = 16 << 20
	o.MaxReadahead = 8 << 20
	return o
}

// MountClient mounts client with opts on a new temporary directory and unmounts it when the test ends.
func MountClient(t testing.TB, client s3client.Client, opts s3mount.Options) *Env {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Fatalf("mounttest: FUSE is not available (%v): load the fuse module and install fuse3", err)
	}
	dir := t.TempDir()
	log, logs := logbuf.New(&slog.HandlerOptions{Level: slog.LevelDebug})
	m, err := s3mount.Mount(context.Background(), dir, client, opts, log)
	if err != nil {
		t.Fatalf("mounttest: mount on %s failed (needs /dev/fuse and fusermount3, or root): %v", dir, err)
	}
	t.Cleanup(func() {
		if err := m.Unmount(); err != nil {
			// A test that failed with a file still open leaves the mount busy: detach it anyway, so that no
			// mount outlives the test binary, and fail the test.
			t.Errorf("mounttest: unmount %s: %v (detaching it lazily)", dir, err)
			if derr := detach(dir); derr != nil {
				t.Errorf("mounttest: lazy unmount %s: %v", dir, derr)
			}
		}
		if t.Failed() {
			t.Logf("mount log:\n%s", strings.Join(logs.Lines(), "\n"))
		}
	})
	return &Env{Dir: dir, Client: client, Mounted: m, logs: logs}
}

// Mount mounts a new bucket of the test binary's shared MinIO (see miniotest.Shared) with opts. Env.Client is a
// separate client of the same bucket. A package using it calls miniotest.Main from TestMain.
func Mount(t testing.TB, opts s3mount.Options) *Env {
	t.Helper()
	srv := miniotest.Shared(t)
	bucket := srv.NewBucket(t)
	env := MountClient(t, srv.Client(t, bucket), opts)
	env.Client = srv.Client(t, bucket)
	env.Bucket = bucket
	return env
}

// detach unmounts dir lazily: umount2(MNT_DETACH) as root, fusermount3 -u -z otherwise.
func detach(dir string) error {
	if os.Geteuid() == 0 {
		return syscall.Unmount(dir, syscall.MNT_DETACH)
	}
	return mountinfo.LazyUnmount(dir)
}
