package s3mount

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/s3ftp/s3ftp/cache"
	"github.com/s3ftp/s3ftp/internal/logbuf"
	"github.com/s3ftp/s3ftp/internal/safego"
	"github.com/s3ftp/s3ftp/s3client"
	"github.com/s3ftp/s3ftp/s3client/s3fake"
)

// newTestFsys returns mount state over a fake without a kernel mount, for handle tests.
func newTestFsys(t *testing.T) (*fsys, *s3fake.Fake, *logbuf.Buffer) {
	t.Helper()
	fake := s3fake.New()
	opts := DefaultOptions()
	opts.PartSize = s3client.MinPartSize
	opts.MemoryBudget = 4 * s3client.MinPartSize
	opts.UploadConcurrency = 2
	if err := opts.Validate(); err != nil {
		t.Fatal(err)
	}
	log, logs := logbuf.New(nil)
	panics := &safego.Panics{}
	c, err := cache.New(cache.Config{MaxBytes: 8 << 20, Log: log, Panics: panics})
	if err != nil {
		t.Fatal(err)
	}
	return newFsys(fake, opts, log, c, panics), fake, logs
}

func newArmedHandle(t *testing.T, f *fsys, key string) *writeHandle {
	t.Helper()
	n := &fileNode{f: f}
	h := f.newWriteHandle(n, key, key, true)
	if errno := n.claimWriter(h); errno != 0 {
		t.Fatal(errno)
	}
	return h
}

func writeN(t *testing.T, h *writeHandle, total int) {
	t.Helper()
	chunk := make([]byte, 1<<20)
	for off := 0; off < total; off += len(chunk) {
		if _, errno := h.Write(context.Background(), chunk, int64(off)); errno != 0 {
			t.Fatalf("write at %d: %v", off, errno)
		}
	}
}

// waitAborts waits for the multipart aborts the upload package runs in the background (upload.Aborts).
func waitAborts(t *testing.T, f *fsys) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := f.aborts.Wait(ctx); err != nil {
		t.Fatalf("background aborts still running after a minute: %v", err)
	}
}

// Release without a Flush (the kernel lost the close, or the process died) aborts the upload: no object, no
// multipart upload left, one log line.
func TestReleaseWithoutFlushAborts(t *testing.T) {
	f, fake, logs := newTestFsys(t)
	h := newArmedHandle(t, f, "k")
	writeN(t, h, 12<<20)
	if len(fake.Uploads()) != 1 {
		t.Fatalf("uploads before release = %v, want one multipart upload in progress", fake.Uploads())
	}
	h.Release(context.Background())
	waitAborts(t, f)
	if ups := fake.Uploads(); len(ups) != 0 {
		t.Errorf("uploads after release = %v", ups)
	}
	if _, ok := fake.Object("k"); ok {
		t.Errorf("object stored without a flush")
	}
	if n := strings.Count(logs.String(), "upload aborted"); n != 1 {
		t.Errorf("%d abort log lines, want 1: %s", n, logs)
	}
	if h.node.activeWriter() != nil || len(f.uploads) != 0 {
		t.Errorf("handle still registered as writer or upload")
	}
}

// Unmount aborts the uploads still open, each with a log line.
func TestAbortUploadsOnUnmount(t *testing.T) {
	f, fake, logs := newTestFsys(t)
	a, b := newArmedHandle(t, f, "a"), newArmedHandle(t, f, "b")
	writeN(t, a, 6<<20)
	writeN(t, b, 1<<20)
	f.abortUploads("unmounted")
	waitAborts(t, f)
	if ups := fake.Uploads(); len(ups) != 0 {
		t.Errorf("uploads after abort = %v", ups)
	}
	if keys := fake.Keys(); len(keys) != 0 {
		t.Errorf("objects after abort = %v", keys)
	}
	if n := strings.Count(logs.String(), "reason=unmounted"); n != 2 {
		t.Errorf("%d log lines for aborted uploads, want 2: %s", n, logs)
	}
	if errno := a.Flush(context.Background()); errno != syscall.EIO {
		t.Errorf("flush after the abort = %v, want EIO", errno)
	}
}

// The first Flush after writes completes the upload; further Flushes (dup'd descriptors) repeat its result and
// store nothing again; a write after it fails.
func TestFlushTwice(t *testing.T) {
	f, fake, _ := newTestFsys(t)
	h := newArmedHandle(t, f, "k")
	if _, errno := h.Write(context.Background(), []byte("data"), 0); errno != 0 {
		t.Fatal(errno)
	}
	if errno := h.Flush(context.Background()); errno != 0 {
		t.Fatalf("first flush: %v", errno)
	}
	puts := fake.Calls("PutObject")
	if errno := h.Flush(context.Background()); errno != 0 {
		t.Fatalf("second flush: %v", errno)
	}
	if fake.Calls("PutObject") != puts {
		t.Errorf("second flush stored the object again")
	}
	if got, _ := fake.Object("k"); string(got) != "data" {
		t.Errorf("object = %q", got)
	}
	if _, errno := h.Write(context.Background(), []byte("more"), 4); errno != syscall.EIO {
		t.Errorf("write after completion = %v, want EIO", errno)
	}
	if e, hit, _ := f.meta.get("k"); !hit || e.info.Size != 4 {
		t.Errorf("stat cache after flush = %+v, %v; want the stored size", e, hit)
	}
}

func TestFlushFailureIsSticky(t *testing.T) {
	f, fake, logs := newTestFsys(t)
	h := newArmedHandle(t, f, "k")
	fake.FailNext("UploadPart", 1, s3client.ErrUnavailable)
	chunk := make([]byte, 1<<20)
	var werr syscall.Errno
	for off := 0; off < 20<<20 && werr == 0; off += len(chunk) {
		_, werr = h.Write(context.Background(), chunk, int64(off))
	}
	if werr != syscall.EIO {
		t.Errorf("write after the failed part = %v, want EIO", werr)
	}
	for i := 0; i < 2; i++ {
		if errno := h.Flush(context.Background()); errno != syscall.EIO {
			t.Errorf("flush %d = %v, want EIO", i+1, errno)
		}
	}
	h.Release(context.Background())
	waitAborts(t, f) // the failed upload's abort runs in the background
	if ups, keys := fake.Uploads(), fake.Keys(); len(ups) != 0 || len(keys) != 0 {
		t.Errorf("left behind: uploads %v, objects %v", ups, keys)
	}
	if strings.Contains(logs.String(), "released without flush") {
		t.Errorf("release after a reported failure logged a second abort: %s", logs)
	}
}

// The multipart server-side copy used above 5 GiB, exercised with 5 MiB parts: the copy is byte-identical,
// keeps content type and metadata, and a failing part leaves no upload behind.
func TestCopyMultipart(t *testing.T) {
	f, fake, _ := newTestFsys(t)
	data := make([]byte, 12<<20+5)
	for i := range data {
		data[i] = byte(i * 13)
	}
	fake.PutWith("src", data, s3client.PutOptions{ContentType: "text/plain", Metadata: map[string]string{"mode": "33188"}})
	src, _ := fake.Info("src")
	if err := f.copyMultipart(context.Background(), src, "dst", 5<<20); err != nil {
		t.Fatal(err)
	}
	got, _ := fake.Object("dst")
	info, _ := fake.Info("dst")
	if string(got) != string(data) || info.ContentType != "text/plain" || info.Metadata["mode"] != "33188" {
		t.Errorf("copy: equal=%v, %+v", string(got) == string(data), info)
	}
	if n := fake.Calls("UploadPartCopy"); n != 3 {
		t.Errorf("UploadPartCopy calls = %d, want 3", n)
	}
	fake.FailNext("UploadPartCopy", 1, s3client.ErrUnavailable)
	if err := f.copyMultipart(context.Background(), src, "dst2", 5<<20); err == nil {
		t.Fatal("copy with a failing part succeeded")
	}
	if _, ok := fake.Object("dst2"); ok || len(fake.Uploads()) != 0 {
		t.Errorf("failed copy left %s", fake)
	}
}
