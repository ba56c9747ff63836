package faults

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/s3ftp/s3ftp/internal/miniotest"
	"github.com/s3ftp/s3ftp/s3client"
)

// TestReadResumesCutGET reads a file through the mount while every S3 connection is closed after a few MiB of
// response (toxiproxy limit_data): each GetObject body of the read cache breaks mid-stream, on a new connection
// or a reused one. The cache resumes each cut body from the first byte not received, so the read returns the
// object's exact bytes with no error, and the daemon logs one WARN line per resume. Once the fault is removed,
// the mount keeps working.
func TestReadResumesCutGET(t *testing.T) {
	srv := miniotest.Start(t)
	px := startProxy(t, srv)
	bucket := srv.NewBucket(t)
	client := srv.Client(t, bucket)
	size := pick[int64](32<<20, 256<<20)
	const seed = 41
	data, err := io.ReadAll(prng(seed, size))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.PutObject(context.Background(), "cut.bin", data, s3client.PutOptions{}); err != nil {
		t.Fatalf("put: %v", err)
	}
	data = nil
	m := startMount(t, srv, px.endpoint, bucket, smallLimits...)
	resumes := 0
	defer func() { summary(t, 1, 0, 0, fmt.Sprintf("resumes=%d", resumes)) }()

	// Each connection carries at most limit bytes downstream, headers included, then is closed.
	const limit = 3<<20 + 12345
	px.add(t, fmt.Sprintf(`{"name":"cut","type":"limit_data","stream":"downstream","attributes":{"bytes":%d}}`, limit))
	err = sameAs(filepath.Join(m.dir, "cut.bin"), seed, size)
	px.remove(t, "cut")
	if err != nil {
		t.Fatalf("read with every connection cut after %d bytes: %v", limit, err)
	}
	log := readFile(m.logFile)
	resumes = strings.Count(log, "GET failed mid-block, resuming")
	// Every connection breaks after limit bytes, so reading size bytes takes at least size/limit GETs; some of
	// them are new streams (the kernel's readahead moving on), the others resumes.
	if resumes == 0 {
		t.Errorf("no resume logged for %d bytes cut every %d", size, limit)
	}
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "level=ERROR") && strings.Contains(line, "cache:") {
			t.Errorf("a cache failure was logged: %s", line)
		}
	}
	t.Logf("read %d bytes through connections cut every %d bytes: %d resumes", size, limit, resumes)
	checkMountWorks(t, m, "after.bin", seed+1)
}
