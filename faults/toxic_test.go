package faults

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/s3ftp/s3ftp/internal/miniotest"
)

// smallLimits are the daemon settings of the fault tests: small parts and budget, so that a write of a few
// tens of MiB has parts uploaded, in flight and buffered when the fault hits.
var smallLimits = []string{"--memory-budget", "16MiB", "--part-size", "5MiB", "--cache-size", "16MiB",
	"--max-readahead", "8MiB"}

// fault is one way of making S3 unreachable for the daemon, and of making it reachable again.
type fault struct {
	name   string
	inject func(t *testing.T)
	clear  func(t *testing.T)
}

// TestFaultDuringUpload injects each fault (connection reset, S3 silent then closing, MinIO stopped and
// restarted; under S3FTP_SOAK=1 also S3 silent forever) while a large file is written through the mount, and while a file
// written before is read and the directory is listed. It asserts the outcome the mount promises for an
// outage longer than the SDK's bounded retries:
//
//   - the writer gets an error from write or close (EIO), never a silent success;
//   - the read during the fault returns either the exact bytes or an error, the listing either the file
//     written before or an error;
//   - once the fault is removed: the failed object does not exist, every object that exists has the SHA-256
//     of its complete content, no multipart upload is left, and a new write and its read-back are identical.
func TestFaultDuringUpload(t *testing.T) {
	kinds := []string{"reset_peer", "timeout", "minio_restart"}
	if soak() {
		// Silence without a close: only a server-side or TCP keep-alive timeout ends the requests (about 2 min
		// with MinIO); too slow for make test.
		kinds = append(kinds, "blackhole")
	}
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			srv := miniotest.Start(t)
			px := startProxy(t, srv)
			var f fault
			switch kind {
			case "reset_peer":
				// Every connection, new or open, is reset (RST) when the daemon sends data.
				f = fault{name: kind,
					inject: func(t *testing.T) {
						px.add(t, `{"name":"fault","type":"reset_peer","stream":"upstream","attributes":{"timeout":0}}`)
					},
					clear: func(t *testing.T) { px.remove(t, "fault") }}
			case "timeout":
				// S3 stops answering: data are dropped and each connection is closed after 2 s of silence.
				f = fault{name: kind,
					inject: func(t *testing.T) {
						px.add(t, `{"name":"fault","type":"timeout","stream":"upstream","attributes":{"timeout":2000}}`)
					},
					clear: func(t *testing.T) { px.remove(t, "fault") }}
			case "blackhole":
				f = fault{name: kind,
					inject: func(t *testing.T) {
						px.add(t, `{"name":"fault","type":"timeout","stream":"upstream","attributes":{"timeout":0}}`)
					},
					clear: func(t *testing.T) { px.remove(t, "fault") }}
			case "minio_restart":
				f = fault{name: kind,
					inject: func(t *testing.T) {
						if err := srv.Stop(); err != nil {
							t.Fatalf("stop minio: %v", err)
						}
					},
					clear: func(t *testing.T) {
						if err := srv.Restart(); err != nil {
							t.Fatalf("restart minio: %v", err)
						}
					}}
			}
			faultDuringUpload(t, srv, px, f)
		})
	}
}

func faultDuringUpload(t *testing.T, srv *miniotest.Server, px *proxy, f fault) {
	bucket := srv.NewBucket(t)
	client := srv.Client(t, bucket)
	m := startMount(t, srv, px.endpoint, bucket, smallLimits...)
	want := expected{}
	var lost, leaks int64
	transfers := 0
	defer func() { summary(t, transfers, lost, leaks) }()

	// A file written before the fault, read and listed while the fault is active.
	const beforeSize = 12 << 20
	before := filepath.Join(m.dir, "before.bin")
	transfers++
	if r := writeFile(before, 1, beforeSize, nil); r.failed() {
		t.Fatalf("write before the fault: write %v, close %v", r.writeErr, r.closeErr)
	}
	want["before.bin"] = sum(1, beforeSize)
	// Opened before the fault: the handle is bound to the object's ETag, so the read during the fault reaches
	// GetObject instead of failing at open.
	beforeFile, err := os.Open(before)
	if err != nil {
		t.Fatalf("open before the fault: %v", err)
	}
	defer beforeFile.Close()

	size := pick[int64](64<<20, 200<<20)
	const faultAt = 16 << 20
	var (
		injected bool
		during   sync.WaitGroup
		readErr  error
		listErr  error
		listed   []string
	)
	transfers++
	r := writeFile(filepath.Join(m.dir, "big.bin"), 2, size, func(written int64) {
		if written != faultAt {
			return
		}
		f.inject(t)
		injected = true
		during.Add(1)
		go func() {
			defer during.Done()
			transfers++
			readErr = sameContent(beforeFile, 1, beforeSize)
			entries, err := os.ReadDir(m.dir)
			listErr = err
			for _, e := range entries {
				listed = append(listed, e.Name())
			}
		}()
	})
	during.Wait()
	t.Logf("%s: wrote %d MiB of %d; write error %v; close error %v", f.name, r.written>>20, size>>20, r.writeErr, r.closeErr)
	if !injected {
		t.Fatalf("the write ended after %d bytes, before the fault at %d: %v %v", r.written, faultAt, r.writeErr, r.closeErr)
	}
	if !r.failed() {
		t.Errorf("writing %d MiB while S3 was unreachable (%s) reported no error from write or close", size>>20, f.name)
	}
	// A read during the fault is either exact or an error; sameAs reports a content mismatch distinctly.
	if readErr != nil {
		t.Logf("read during the fault: %v", readErr)
		if isMismatch(readErr) {
			t.Errorf("read during the fault returned wrong data: %v", readErr)
			lost += beforeSize
		}
	}
	if listErr == nil && !slices.Contains(listed, "before.bin") {
		t.Errorf("listing during the fault succeeded without before.bin: %v", listed)
	} else if listErr != nil {
		t.Logf("listing during the fault: %v", listErr)
	}

	f.clear(t)

	ups := waitNoUploads(t, client, time.Minute)
	for _, line := range strings.Split(readFile(m.logFile), "\n") {
		if strings.Contains(line, "abort") {
			t.Logf("daemon: %s", line)
		}
	}
	if len(ups) != 0 {
		t.Errorf("multipart uploads left a minute after the failure was reported and S3 came back: %+v", ups)
		leaks += int64(len(ups))
	}
	transfers++
	checkMountWorks(t, m, "after.bin", 3)
	want["after.bin"] = sum(3, 6<<20)
	transfers++
	if err := sameAs(before, 1, beforeSize); err != nil {
		t.Errorf("file written before the fault, read after it: %v", err)
		lost += beforeSize
	}
	lost += checkObjects(t, client, want)
}

// isMismatch reports whether err is sameAs's complaint about content or length rather than an I/O error.
func isMismatch(err error) bool {
	s := err.Error()
	return strings.Contains(s, "SHA-256 differs") || strings.Contains(s, " bytes, want ")
}

// TestSlowNetworkTransfersIntact: with latency and a bandwidth limit between the daemon and S3, a write and
// its read-back through the mount still complete byte-identical, and the object in S3 has the written SHA-256.
func TestSlowNetworkTransfersIntact(t *testing.T) {
	srv := miniotest.Shared(t)
	px := startProxy(t, srv)
	bucket := srv.NewBucket(t)
	client := srv.Client(t, bucket)
	// Latency on both directions, jittered; 8 MiB/s each way.
	px.add(t, `{"name":"lat_up","type":"latency","stream":"upstream","attributes":{"latency":20,"jitter":10}}`)
	px.add(t, `{"name":"lat_down","type":"latency","stream":"downstream","attributes":{"latency":20,"jitter":10}}`)
	px.add(t, `{"name":"bw_up","type":"bandwidth","stream":"upstream","attributes":{"rate":8192}}`)
	px.add(t, `{"name":"bw_down","type":"bandwidth","stream":"downstream","attributes":{"rate":8192}}`)
	// Slicer splits the stream into small, delayed TCP writes, as a congested path would.
	px.add(t, `{"name":"slicer","type":"slicer","stream":"downstream","attributes":{"average_size":1024,"size_variation":512,"delay":10}}`)
	m := startMount(t, srv, px.endpoint, bucket, smallLimits...)
	var lost int64
	size := pick[int64](16<<20, 160<<20)
	defer func() { summary(t, 1, lost, 0) }()

	path := filepath.Join(m.dir, "slow.bin")
	if r := writeFile(path, 7, size, nil); r.failed() {
		t.Fatalf("write over a slow network: write %v, close %v", r.writeErr, r.closeErr)
	}
	if err := sameAs(path, 7, size); err != nil {
		t.Errorf("read back over a slow network: %v", err)
		lost += size
	}
	lost += checkObjects(t, client, expected{"slow.bin": sum(7, size)})
}
