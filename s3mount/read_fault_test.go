package s3mount_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/s3ftp/s3ftp/s3client"
	"github.com/s3ftp/s3ftp/s3mount"
)

// A GET that fails mid-stream gives the reader EIO, never a short or wrong read — also when the transport's
// error wraps io.EOF (a dropped connection), which must not be mistaken for the end of the object.
// (SEMANTICS.md, Tenets 2 and 3)
func TestFakeDroppedGETIsEIO(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cause error
	}{
		{"wraps-io.EOF", io.EOF},
		{"unexpected-EOF", io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, fake := mountFake(t, nil)
			data := pattern(6<<20, 9)
			fake.Put("obj", data)
			// The first GET body breaks after 512 bytes and every later one at once: the cache resumes a cut
			// body only while bytes arrive. The kernel retries a failed readahead with a plain read, so the
			// faults must outlast its retries for the error to reach the reader.
			fake.FailNextBody(1, 512, tc.cause)
			fake.FailNextBody(10000, 0, tc.cause)
			f, err := os.Open(filepath.Join(env.Dir, "obj"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			got, err := io.ReadAll(f)
			if !errors.Is(err, syscall.EIO) {
				t.Fatalf("ReadAll after a dropped GET: %d bytes, err %v; want EIO", len(got), err)
			}
			if len(got) >= len(data) {
				t.Fatalf("read %d bytes of %d despite the failure", len(got), len(data))
			}
			for i := range got {
				if got[i] != data[i] {
					t.Fatalf("byte %d differs from the object's", i)
				}
			}
		})
	}
}

// A GET cut mid-stream by a transient fault is resumed from the first byte not received: the reader gets the
// object's exact bytes and no error. (SEMANTICS.md, Tenet 3)
func TestFakeCutGETIsResumed(t *testing.T) {
	env, fake := mountFake(t, nil)
	data := pattern(6<<20, 10)
	fake.Put("obj", data)
	fake.FailNextBody(1, 512<<10+12345, nil) // inside the first readahead window (1 MiB), so the first stream always gets there
	got, err := os.ReadFile(filepath.Join(env.Dir, "obj"))
	if err != nil {
		t.Fatalf("read after a cut GET: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes after a cut GET, not the object's %d", len(got), len(data))
	}
	if n := env.Mounted.CacheStats().Resumes; n != 1 {
		t.Errorf("CacheStats().Resumes = %d, want 1", n)
	}
}

// A read(2) while S3 is unreachable costs one failed GET, not two: the kernel re-asks for the page whose
// readahead failed with a plain read at once, and that read gets EIO at once from the failure just seen on
// the handle, instead of waiting for another full retry chain of the client. Once the failure is older than
// the retry window, a read asks S3 again and gets the exact bytes. (SEMANTICS.md, Errors)
func TestFakeUnavailableReadFailsOnce(t *testing.T) {
	env, fake := mountFake(t, nil)
	data := pattern(6<<20, 5)
	fake.Put("obj", data)
	f, err := os.Open(filepath.Join(env.Dir, "obj"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var down atomic.Bool
	down.Store(true)
	fake.SetFault(func(op, _ string, _ int) error {
		if op == "GetObject" && down.Load() {
			return s3client.ErrUnavailable
		}
		return nil
	})
	fake.ResetCounters()
	p := make([]byte, 64<<10)
	if _, err := f.ReadAt(p, 0); !errors.Is(err, syscall.EIO) {
		t.Fatalf("read while S3 is unreachable: %v, want EIO", err)
	}
	if n := fake.Calls("GetObject"); n != 1 {
		t.Errorf("GETs for one read(2) while S3 is unreachable = %d, want 1", n)
	}

	down.Store(false)
	time.Sleep(s3mount.UnavailableRetryWindow + 100*time.Millisecond) // only so the window has passed
	if _, err := f.ReadAt(p, 0); err != nil {
		t.Fatalf("read once S3 answers again: %v", err)
	}
	if !bytes.Equal(p, data[:len(p)]) {
		t.Error("read once S3 answers again: bytes differ from the object's")
	}
}
