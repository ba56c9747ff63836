package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/s3ftp/s3ftp/internal/metrics"
	"github.com/s3ftp/s3ftp/internal/miniotest"
	"github.com/s3ftp/s3ftp/s3client"
)

// scrape GETs http://addr/metrics and returns its samples keyed by `name{labels}` as written.
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scraping %s: %v", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("/metrics on %s: %d\n%s", addr, resp.StatusCode, body)
	}
	samples, err := metrics.ParseText(resp.Body)
	if err != nil {
		t.Fatalf("/metrics on %s: %v", addr, err)
	}
	return samples
}

// jsonLog parses a --log-format json log: every line must be a JSON object with time, level and msg. It returns
// the records.
func jsonLog(t *testing.T, path string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	sc := bufio.NewScanner(strings.NewReader(readFile(path)))
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("--log-format json wrote a line that is not JSON: %q: %v", sc.Text(), err)
		}
		for _, k := range []string{"time", "level", "msg"} {
			if _, ok := rec[k]; !ok {
				t.Fatalf("JSON log line without %q: %s", k, sc.Text())
			}
		}
		recs = append(recs, rec)
	}
	return recs
}

// logField returns field key of the first record with message msg.
func logField(t *testing.T, recs []map[string]any, msg, key string) any {
	t.Helper()
	for _, r := range recs {
		if r["msg"] == msg {
			if v, ok := r[key]; ok {
				return v
			}
		}
	}
	t.Fatalf("no %q log record with %q in %v", msg, key, recs)
	return nil
}

// TestMetricsAndHealth: a daemon with --metrics-addr and --log-format json logs only JSON lines, answers
// /healthz with 200 while mounted, and after a multipart write and a read through the mount /metrics shows the
// bytes up and down and the S3 requests by operation and status.
func TestMetricsAndHealth(t *testing.T) {
	const (
		written = 11 << 20 // three parts of 5 MiB, 5 MiB and 1 MiB
		remote  = 3<<20 + 17
	)
	srv := miniotest.Shared(t)
	bucket := srv.NewBucket(t)
	client := srv.Client(t, bucket)
	remoteData, _ := io.ReadAll(prng(7, remote))
	if _, err := client.PutObject(context.Background(), "remote.bin", remoteData, s3client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	d := &daemonMount{dir: filepath.Join(t.TempDir(), "mnt"), logFile: filepath.Join(t.TempDir(), "s3mount.log")}
	if err := os.Mkdir(d.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runS3mount(t, srv, nil, "--log-file", d.logFile, "--log-format", "json",
		"--metrics-addr", "127.0.0.1:0", "--part-size", "5MiB", "--memory-budget", "32MiB", bucket, d.dir)
	if code != 0 {
		t.Fatalf("s3mount exited %d\nstdout: %s\nstderr: %s\nlog:\n%s", code, stdout, stderr, readFile(d.logFile))
	}
	t.Cleanup(func() { d.unmount(t) })
	recs := jsonLog(t, d.logFile)
	d.pid = int(logField(t, recs, "ready", "pid").(float64))
	addr := logField(t, recs, "metrics listening", "addr").(string)

	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "ok\n" {
		t.Errorf("/healthz while mounted: %d %q", resp.StatusCode, body)
	}

	f, err := os.Create(filepath.Join(d.dir, "up.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, prng(8, written)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close after writing through the mount: %v", err)
	}
	got, err := os.ReadFile(filepath.Join(d.dir, "remote.bin"))
	if err != nil || !bytes.Equal(got, remoteData) {
		t.Fatalf("reading remote.bin through the mount: %d bytes, %v", len(got), err)
	}

	s := scrape(t, addr)
	atLeast := map[string]float64{
		"s3mount_bytes_uploaded_total":                                         written,
		"s3mount_bytes_downloaded_total":                                       remote,
		`s3mount_s3_requests_total{op="HeadBucket",status="200"}`:              1,
		`s3mount_s3_requests_total{op="CreateMultipartUpload",status="200"}`:   1,
		`s3mount_s3_requests_total{op="UploadPart",status="200"}`:              3,
		`s3mount_s3_requests_total{op="CompleteMultipartUpload",status="200"}`: 1,
		"go_goroutines": 1,
	}
	for k, min := range atLeast {
		if v, ok := s[k]; !ok || v < min {
			t.Errorf("%s = %v (present %v), want at least %v", k, v, ok, min)
		}
	}
	// A read from offset 0 to the end may be a plain 200 or a 206 range reply.
	if n := s[`s3mount_s3_requests_total{op="GetObject",status="200"}`] + s[`s3mount_s3_requests_total{op="GetObject",status="206"}`]; n < 1 {
		t.Errorf("no successful GetObject counted after reading remote.bin")
	}
	if v := s["s3mount_write_budget_bytes_max"]; v != 32<<20 {
		t.Errorf("s3mount_write_budget_bytes_max = %v, want the 32 MiB budget", v)
	}
	if v := s["s3mount_cache_misses_total"]; v < 1 {
		t.Errorf("s3mount_cache_misses_total = %v after reading an uncached object, want at least 1", v)
	}
	if v := s["s3mount_parts_in_flight"]; v != 0 {
		t.Errorf("s3mount_parts_in_flight = %v after the close completed the upload, want 0", v)
	}
	if t.Failed() {
		var names []string
		for k, v := range s {
			names = append(names, k+" "+strconv.FormatFloat(v, 'f', -1, 64))
		}
		t.Logf("scrape:\n%s", strings.Join(names, "\n"))
	}
	jsonLog(t, d.logFile) // still only JSON after the traffic
}

// A malformed --metrics-addr is a usage error; one that cannot be bound stops the start with exit 2, a line
// naming the address, and nothing mounted.
func TestMetricsAddrErrors(t *testing.T) {
	if _, err := parseArgs([]string{"--metrics-addr", "9101", "b", "/m"}); err == nil || !strings.Contains(err.Error(), "metrics-addr") {
		t.Errorf("--metrics-addr 9101: %v, want an error naming the flag", err)
	}
	c, err := parseArgs([]string{"-o", "metrics_addr=127.0.0.1:9101", "b", "/m"})
	if err != nil || c.MetricsAddr != "127.0.0.1:9101" {
		t.Errorf("-o metrics_addr: %+v, %v", c, err)
	}

	srv := miniotest.Shared(t)
	bucket := srv.NewBucket(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	mnt := t.TempDir()
	code, _, stderr := runS3mount(t, srv, nil, "--log-file", filepath.Join(t.TempDir(), "log"),
		"--metrics-addr", taken.Addr().String(), bucket, mnt)
	if code != ExitUsage || !strings.Contains(stderr, taken.Addr().String()) || strings.Count(stderr, "\n") != 1 {
		t.Errorf("taken metrics address: exit %d, stderr %q; want %d and one line naming it", code, stderr, ExitUsage)
	}
	if isMounted(t, mnt) {
		exec.Command("fusermount3", "-u", mnt).Run()
		t.Error("mounted although the metrics address could not be bound")
	}
}
