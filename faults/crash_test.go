package faults

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/s3ftp/s3ftp/internal/miniotest"
	"github.com/s3ftp/s3ftp/internal/mountinfo"
	"github.com/s3ftp/s3ftp/s3mount/s3client"
)

// TestKill9MidUpload kills the daemon with SIGKILL while a large file is written through the mount. It
// asserts that:
//
//   - the writer is not left hanging: its write or close returns an error;
//   - a stat of the mount point answers (run with a timeout) and the mount point is freed, by the kernel or
//     by fusermount3 -u (lazily if busy), so the directory can be mounted again;
//   - no object, partial or otherwise, exists under the name being written;
//   - a new daemon on the same mount point works (write and read-back identical).
//
// Multipart uploads the killed daemon started cannot be aborted by it; the test reports how many are left
// after the new daemon has started (RELIABILITY.md: the bucket's lifecycle rule removes them).
func TestKill9MidUpload(t *testing.T) {
	srv := miniotest.Shared(t)
	bucket := srv.NewBucket(t)
	client := srv.Client(t, bucket)
	m := startMount(t, srv, srv.Endpoint, bucket, smallLimits...)
	var lost, leaks int64
	orphans := -1 // multipart uploads left after a new daemon started; -1 until counted
	defer func() { summary(t, 2, lost, leaks, fmt.Sprintf("orphan_uploads=%d", orphans)) }()

	size := pick[int64](64<<20, 512<<20)
	const killAt = 16 << 20
	done := make(chan writeResult, 1)
	killed := make(chan struct{})
	go func() {
		done <- writeFile(filepath.Join(m.dir, "crash.bin"), 11, size, func(written int64) {
			if written == killAt {
				syscall.Kill(m.pid, syscall.SIGKILL)
				close(killed)
			}
		})
	}()
	var r writeResult
	select {
	case r = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("the writer still hangs two minutes after the daemon was killed")
	}
	select {
	case <-killed:
	default:
		t.Fatalf("the write ended at %d bytes before the kill at %d: %v %v", r.written, killAt, r.writeErr, r.closeErr)
	}
	t.Logf("after SIGKILL at %d MiB: write error %v, close error %v", killAt>>20, r.writeErr, r.closeErr)
	if !r.failed() {
		t.Errorf("writing through a killed daemon reported no error from write or close")
	}
	if !waitExit(m.pid, 30*time.Second) {
		t.Fatalf("daemon %d survived SIGKILL", m.pid)
	}

	// The mount point answers: ENOTCONN from the dead connection, or the bare directory.
	if out, err := exec.Command("timeout", "10", "stat", m.dir).CombinedOutput(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 124 {
			t.Fatalf("stat %s hung after the daemon was killed", m.dir)
		}
		t.Logf("stat of the dead mount: %v: %s", err, out)
	}
	stillMounted := mounted(m.dir)
	t.Logf("mount point still in the mount table after SIGKILL: %v", stillMounted)
	if stillMounted {
		if out, err := exec.Command("fusermount3", "-u", m.dir).CombinedOutput(); err != nil {
			t.Logf("fusermount3 -u: %v: %s; unmounting lazily", err, out)
			if err := mountinfo.LazyUnmount(m.dir); err != nil {
				t.Fatal(err)
			}
		}
	}
	if mounted(m.dir) {
		t.Errorf("%s is still mounted after fusermount3 -u", m.dir)
		leaks++
	}
	if out, err := exec.Command("timeout", "10", "stat", m.dir).CombinedOutput(); err != nil {
		t.Errorf("stat %s after the unmount: %v: %s", m.dir, err, out)
	}

	if info, err := client.HeadObject(context.Background(), "crash.bin"); !errors.Is(err, s3client.ErrNotFound) {
		t.Errorf("the killed upload left an object: %+v, %v", info, err)
		lost += info.Size
	}
	lost += checkObjects(t, client, expected{})
	left, err := client.ListMultipartUploads(context.Background(), "")
	if err != nil {
		t.Fatalf("list multipart uploads: %v", err)
	}

	// A new daemon on the same directory.
	m.pid = 0 // already dead; the cleanup must not wait for it
	m2 := startMountAt(t, srv, srv.Endpoint, bucket, m.dir, smallLimits...)
	checkMountWorks(t, m2, "after-crash.bin", 12)
	after, err := client.ListMultipartUploads(context.Background(), "")
	if err != nil {
		t.Fatalf("list multipart uploads: %v", err)
	}
	t.Logf("multipart uploads left by the killed daemon: %d; after a new daemon started: %d", len(left), len(after))
	orphans = len(after)
	lost += checkObjects(t, client, expected{"after-crash.bin": sum(12, 6<<20)})
}
