package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/s3ftp/s3ftp/internal/miniolocal"
)

// TestRunRawAndS3mount runs the whole program with tiny sizes against a real MinIO and a real s3mount mount, and
// checks that every row of both tools has a figure and no error, and that the result files are written (the
// gnuplot chart aside: gnuplot is a bench dependency, not a test one). It needs root (drop_caches, tmpfs), FUSE
// and a minio binary, and fails when one is missing. It runs once over loopback and once through --link, whose
// heading table.txt must state.
func TestRunRawAndS3mount(t *testing.T) {
	for name, extra := range map[string][]string{"loopback": nil, "link": {"--link", "256MiB/s,1ms"}} {
		t.Run(name, func(t *testing.T) { runRawAndS3mount(t, extra) })
	}
}

func runRawAndS3mount(t *testing.T, extra []string) {
	out := runBench(t, append([]string{"--tools", "raw-sdk,s3mount", "--size", "8MiB", "--reps", "1",
		"--par-writers", "2", "--par-size", "6MiB", "--files", "10"}, extra...))
	checkRows(t, out, toolRaw, toolS3mount)
	tbl, _ := os.ReadFile(filepath.Join(out, "table.txt"))
	if wantLink := len(extra) > 0; strings.Contains(string(tbl), "link: 256MiB/s per connection") != wantLink {
		t.Errorf("table.txt heading does not state the link (--link given: %v):\n%s", wantLink, tbl)
	}
	for _, f := range []string{"results.csv", "table.txt"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s not written: %v", f, err)
		}
	}
}

// TestRunSFTP runs the program with a tiny file for s3mount+sftp (OpenSSH sftp through ftpfront's SFTP over a real
// s3mount mount) and checks that its upload and its verified download have figures and no error. Besides what
// TestRunRawAndS3mount needs, it needs OpenSSH's sftp and ssh-keygen.
func TestRunSFTP(t *testing.T) {
	out := runBench(t, []string{"--tools", toolSFTP, "--size", "8MiB", "--reps", "1"})
	checkRows(t, out, toolSFTP)
}

// runBench checks what the whole-program tests need, runs the bench with args (no chart, results into a temporary
// directory that it returns) and requires exit status 0 and no mount left behind.
func runBench(t *testing.T, args []string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root: the bench drops the page cache and mounts tmpfs and FUSE file systems")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Fatalf("FUSE is not available: %v", err)
	}
	if _, err := miniolocal.FindBinary(); err != nil {
		t.Fatalf("no minio binary (scripts/setup-test-deps.sh builds it): %v", err)
	}
	out := t.TempDir()
	if code := run(append(args, "--chart=false", "--out", out)); code != exitOK {
		t.Fatalf("bench exited %d", code)
	}
	b, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(b), "s3ftp-bench-") {
		t.Errorf("the run left a mount behind:\n%s", b)
	}
	return out
}

// checkRows requires results.json in out to hold exactly the rows of tools, each with one positive figure and no
// error (and a daemon peak RSS for the mount tools), and results.csv to be written.
func checkRows(t *testing.T, out string, tools ...string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Rows []struct {
			Tool, Workload string
			N              int      `json:"n"`
			Median         *float64 `json:"median"`
			Errors         []string `json:"errors"`
			PeakRSS        int64    `json:"peak_rss_bytes"`
		} `json:"rows"`
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, tool := range tools {
		for _, w := range toolWorkloads(tool) {
			want[tool+" "+w] = true
		}
	}
	for _, r := range rep.Rows {
		k := r.Tool + " " + r.Workload
		if !want[k] {
			t.Errorf("unexpected row %s", k)
		}
		delete(want, k)
		if r.N != 1 || r.Median == nil || *r.Median <= 0 || len(r.Errors) > 0 {
			t.Errorf("row %s: n=%d median=%v errors=%q", k, r.N, r.Median, r.Errors)
		}
		if r.Tool != toolRaw && r.PeakRSS <= 0 {
			t.Errorf("row %s: no daemon peak RSS", k)
		}
	}
	for k := range want {
		t.Errorf("missing row %s", k)
	}
	if st, err := os.Stat(filepath.Join(out, "results.csv")); err != nil || st.Size() == 0 {
		t.Errorf("results.csv not written: %v", err)
	}
}
