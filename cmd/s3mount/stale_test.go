package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/s3ftp/s3ftp/internal/miniotest"
	"github.com/s3ftp/s3ftp/s3client"
	"github.com/s3ftp/s3ftp/s3client/s3fake"
)

// uploadKeys returns the sorted keys of the unfinished uploads in the bucket.
func uploadKeys(t *testing.T, c interface {
	ListMultipartUploads(context.Context, string) ([]s3client.Upload, error)
}) []string {
	t.Helper()
	ups, err := c.ListMultipartUploads(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(ups))
	for _, u := range ups {
		keys = append(keys, u.Key)
	}
	slices.Sort(keys)
	return keys
}

// TestAbortStaleUploads: only uploads under the prefix and older than the bound are aborted, one log line
// each; a failed abort is logged and the others go on.
func TestAbortStaleUploads(t *testing.T) {
	f := s3fake.New()
	ctx := context.Background()
	now := time.Now()
	f.SetClock(func() time.Time { return now.Add(-2 * time.Hour) })
	for _, k := range []string{"p/old1", "p/sub/old2", "p/fails", "q/old-outside"} {
		if _, err := f.CreateMultipartUpload(ctx, k, s3client.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	f.SetClock(func() time.Time { return now })
	if _, err := f.CreateMultipartUpload(ctx, "p/young", s3client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	f.SetFault(func(op, key string, _ int) error {
		if op == "AbortMultipartUpload" && key == "p/fails" {
			return s3client.ErrAccessDenied
		}
		return nil
	})
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))

	if n := abortStaleUploads(ctx, log, f, "p/", time.Hour); n != 2 {
		t.Errorf("aborted %d uploads, want 2", n)
	}
	if got, want := uploadKeys(t, f), []string{"p/fails", "p/young", "q/old-outside"}; !slices.Equal(got, want) {
		t.Errorf("uploads left %q, want %q", got, want)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	var aborted, failed int
	for _, l := range lines {
		switch {
		case strings.Contains(l, "aborted a stale multipart upload"):
			aborted++
		case strings.Contains(l, "aborting a stale multipart upload failed") && strings.Contains(l, "key=p/fails"):
			failed++
		}
	}
	if aborted != 2 || failed != 1 || len(lines) != 3 {
		t.Errorf("want one line per aborted upload and one for the failure, got:\n%s", logs.String())
	}

	// A failed listing aborts nothing and says so.
	logs.Reset()
	f.FailNext("ListMultipartUploads", 1, s3client.ErrUnavailable)
	if n := abortStaleUploads(ctx, log, f, "p/", time.Nanosecond); n != 0 {
		t.Errorf("aborted %d uploads after a failed listing", n)
	}
	if !strings.Contains(logs.String(), "listing unfinished multipart uploads failed") {
		t.Errorf("no log line for the failed listing:\n%s", logs.String())
	}
}

// TestDaemonAbortsStaleUploads runs the binary: --abort-uploads-older-than 1ns removes the unfinished upload
// under the mount's prefix before the mount is ready and keeps the one outside it; without the flag (0) the
// upload stays.
func TestDaemonAbortsStaleUploads(t *testing.T) {
	srv := miniotest.Shared(t)
	bucket := srv.NewBucket(t)
	c := srv.Client(t, bucket)
	ctx := context.Background()
	create := func(key string) {
		t.Helper()
		if _, err := c.CreateMultipartUpload(ctx, key, s3client.PutOptions{}); err != nil {
			t.Fatalf("CreateMultipartUpload %s: %v", key, err)
		}
	}
	create("data/killed.bin")
	create("other/keep.bin")

	d := mountDaemon(t, srv, bucket+":data", "--abort-uploads-older-than", "0")
	if got, want := uploadKeys(t, c), []string{"data/killed.bin", "other/keep.bin"}; !slices.Equal(got, want) {
		t.Errorf("with 0: uploads %q, want %q (nothing aborted)", got, want)
	}
	if strings.Contains(readFile(d.logFile), "stale multipart upload") {
		t.Errorf("with 0 the daemon touched uploads; log:\n%s", readFile(d.logFile))
	}
	d.unmount(t)

	d = mountDaemon(t, srv, bucket+":data", "--abort-uploads-older-than", "1ns")
	if got, want := uploadKeys(t, c), []string{"other/keep.bin"}; !slices.Equal(got, want) {
		t.Errorf("with 1ns: uploads %q, want %q", got, want)
	}
	log := readFile(d.logFile)
	if !strings.Contains(log, "aborted a stale multipart upload") || !strings.Contains(log, "key=data/killed.bin") {
		t.Errorf("no log line for the aborted upload; log:\n%s", log)
	}
}

// TestDaemonSetsMemoryLimit: the daemon sets the Go runtime's soft memory limit to memory-budget + cache-size
// + 64 MiB and logs it (unless GOMEMLIMIT in the environment already set one, which it logs instead).
func TestDaemonSetsMemoryLimit(t *testing.T) {
	srv := miniotest.Shared(t)
	d := mountDaemon(t, srv, srv.NewBucket(t), "--memory-budget", "64MiB", "--cache-size", "128MiB")
	log := readFile(d.logFile)
	want := "limit=256MiB"
	if env := os.Getenv("GOMEMLIMIT"); env != "" && env != "off" {
		want = "Go memory limit taken from GOMEMLIMIT"
	}
	if !strings.Contains(log, "Go memory limit") || !strings.Contains(log, want) {
		t.Errorf("want a memory limit line with %q; log:\n%s", want, log)
	}
}
