package main

import (
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		in                   []float64
		median, min, max, sp float64
	}{
		{[]float64{5}, 5, 5, 5, 0},
		{[]float64{3, 1, 2}, 2, 1, 3, 100},
		{[]float64{4, 1, 3, 2}, 2.5, 1, 4, 120},
		{[]float64{10, 10, 10, 10, 20}, 10, 10, 20, 100},
	} {
		in := append([]float64(nil), tc.in...)
		s := summarize(tc.in)
		if s.N != len(tc.in) || s.Median != tc.median || s.Min != tc.min || s.Max != tc.max || s.SpreadPct != tc.sp {
			t.Errorf("summarize(%v) = %+v, want median %v min %v max %v spread %v%%", tc.in, s, tc.median, tc.min,
				tc.max, tc.sp)
		}
		for i := range in {
			if in[i] != tc.in[i] {
				t.Fatalf("summarize reordered its input: %v", tc.in)
			}
		}
	}
	if s := summarize(nil); s.N != 0 || !math.IsNaN(s.Median) {
		t.Errorf("summarize(nil) = %+v, want N 0 and NaN median", s)
	}
}

func TestParseSize(t *testing.T) {
	good := map[string]int64{"64": 64 << 20, "64M": 64 << 20, "64MiB": 64 << 20, "64mb": 64 << 20, "4KiB": 4096,
		"4k": 4096, "1G": 1 << 30, "1.5GiB": 3 << 29, "512B": 512, " 2 MiB ": 2 << 20, "1T": 1 << 40}
	for in, want := range good {
		got, err := parseSize(in)
		if err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "12Q", "1.5B", "-3", "1e3", "99999999999T"} {
		if got, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", in, got)
		}
	}
	for _, b := range []int64{1, 4096, 3 << 20, 2 << 30, 1<<20 + 1} {
		if got, err := parseSize(formatSize(b)); err != nil || got != b {
			t.Errorf("parseSize(formatSize(%d)=%q) = %d, %v", b, formatSize(b), got, err)
		}
	}
}

func TestParseOptions(t *testing.T) {
	o, err := parseOptions([]string{"--quick"})
	if err != nil {
		t.Fatal(err)
	}
	if o.Size != 128<<20 || o.Reps != 2 || o.ParSize != 50<<20 || o.ParWriters != 15 || o.Files != 500 {
		t.Errorf("--quick: got size %d reps %d par %d×%d files %d", o.Size, o.Reps, o.ParWriters, o.ParSize, o.Files)
	}
	o, err = parseOptions([]string{"--quick", "--size", "1G", "--reps", "4", "--tools", "s3fs,raw-sdk"})
	if err != nil {
		t.Fatal(err)
	}
	if o.Size != 1<<30 || o.Reps != 4 || strings.Join(o.Tools, ",") != "raw-sdk,s3fs" {
		t.Errorf("explicit flags must win over --quick and tools come in report order: %+v", o)
	}
	for _, bad := range [][]string{{"--tools", "nfs"}, {"--reps", "0"}, {"--size", "x"}, {"--part-size", "1MiB"},
		{"extra"}, {"--tools", ","}} {
		if _, err := parseOptions(bad); err == nil {
			t.Errorf("parseOptions(%q) accepted", bad)
		}
	}
}

func rowsFor(vals map[[2]string][]float64) []*row {
	var rows []*row
	for _, tl := range allTools {
		for _, w := range workloads {
			if v, ok := vals[[2]string{tl, w.Name}]; ok {
				rows = append(rows, &row{Tool: tl, Workload: w.Name, Unit: w.Unit, Values: v, PeakRSS: -1})
			}
		}
	}
	return rows
}

func find(rows []*row, tool, wl string) *row {
	for _, r := range rows {
		if r.Tool == tool && r.Workload == wl {
			return r
		}
	}
	return nil
}

func TestComputeRatios(t *testing.T) {
	rows := rowsFor(map[[2]string][]float64{
		{toolRaw, "seq-write"}: {200}, {toolRaw, "cold-read"}: {400}, {toolRaw, "ranged-read"}: {800},
		{toolS3mount, "seq-write"}: {100}, {toolS3fs, "seq-write"}: {50}, {toolRcloneWrites, "seq-write"}: {1000},
		{toolRcloneOff, "seq-write"}: {80}, {toolFTPS, "seq-write"}: {40},
		{toolS3mount, "cold-read"}: {200}, {toolRcloneWrites, "cold-read"}: {400}, {toolS3fs, "cold-read"}: nil,
		{toolSFTP, "seq-write"}: {60}, {toolSSHDS3mount, "seq-write"}: {30}, {toolSSHDS3fs, "seq-write"}: {20},
	})
	computeRatios(rows)
	check := func(tool, wl string, raw, peer float64, peerTool string) {
		t.Helper()
		r := find(rows, tool, wl)
		if math.Abs(r.RatioRaw-raw) > 1e-9 && !(math.IsNaN(raw) && math.IsNaN(r.RatioRaw)) {
			t.Errorf("%s %s: ratio to raw %v, want %v", tool, wl, r.RatioRaw, raw)
		}
		if (math.Abs(r.RatioPeer-peer) > 1e-9 && !(math.IsNaN(peer) && math.IsNaN(r.RatioPeer))) || r.Peer != peerTool {
			t.Errorf("%s %s: ratio to peer %v (%s), want %v (%s)", tool, wl, r.RatioPeer, r.Peer, peer, peerTool)
		}
	}
	// rclone-writes' close returns before the upload, so it is no peer for writes.
	check(toolS3mount, "seq-write", 0.5, 1.25, toolRcloneOff)
	// The FTPS path is compared with the other mounts, not with s3mount beneath it.
	check(toolFTPS, "seq-write", 0.2, 0.5, toolRcloneOff)
	check(toolRcloneWrites, "seq-write", 5, 10, toolS3mount)
	// Reads: the ceiling is the better of one stream and ranged GETs; a row without figures is no peer.
	check(toolS3mount, "cold-read", 0.25, 0.5, toolRcloneWrites)
	check(toolS3fs, "cold-read", math.NaN(), math.NaN(), "")
	check(toolRaw, "seq-write", math.NaN(), math.NaN(), "")
	// The SSH tools are compared with each other only, never with the mounts they serve.
	check(toolSFTP, "seq-write", 0.3, 2, toolSSHDS3mount)
	check(toolSSHDS3fs, "seq-write", 0.1, 1.0/3, toolSFTP)
	check(toolS3mount, "seq-write", 0.5, 1.25, toolRcloneOff)
}

func TestFormatTableShowsErrorsAndLabels(t *testing.T) {
	rows := rowsFor(map[[2]string][]float64{
		{toolRaw, "seq-write"}: {100, 120, 110}, {toolS3fs, "seq-write"}: {55}, {toolRcloneWrites, "seq-write"}: {300},
	})
	s3fs := find(rows, toolS3fs, "seq-write")
	s3fs.Errors = []string{"close: no space left on device", "close: no space left on device"}
	s3fs.PeakRSS = 3 << 20
	computeRatios(rows)
	out := formatTable(rows)
	for _, want := range []string{"FAILED 2/3: close: no space left on device", "110", "100–120", "18%", "0.50",
		"3.0MiB", "rclone-writes: close returns before upload", "×RAW"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	// An all-failed row shows no figure rather than zero.
	failed := &row{Tool: toolS3mount, Workload: "cold-read", Unit: "MiB/s", Errors: []string{"mount: boom"}, PeakRSS: -1}
	computeRatios([]*row{failed})
	line := ""
	for _, l := range strings.Split(formatTable([]*row{failed}), "\n") {
		if strings.Contains(l, "cold-read") {
			line = l
		}
	}
	if !strings.Contains(line, "FAILED 1/1: mount: boom") || strings.Contains(line, " 0 ") {
		t.Errorf("failed row printed as %q", line)
	}
}

func TestResultFiles(t *testing.T) {
	rows := rowsFor(map[[2]string][]float64{{toolRaw, "seq-write"}: {100}, {toolS3fs, "cold-read"}: nil})
	find(rows, toolS3fs, "cold-read").Errors = []string{`a "quoted", error`}
	computeRatios(rows)
	dir := t.TempDir()
	if err := writeJSON(filepath.Join(dir, "r.json"), report{Date: "d", Rows: rows}); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Rows []map[string]any `json:"rows"`
	}
	b, _ := os.ReadFile(filepath.Join(dir, "r.json"))
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("results.json does not parse: %v\n%s", err, b)
	}
	if len(back.Rows) != 2 || back.Rows[0]["median"] != 100.0 || back.Rows[1]["median"] != nil {
		t.Errorf("JSON rows: %v", back.Rows)
	}
	if err := writeCSV(filepath.Join(dir, "r.csv"), rows); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(filepath.Join(dir, "r.csv"))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 3 || !strings.Contains(lines[2], `"a ""quoted"", error"`) || !strings.Contains(lines[1], "100.000") {
		t.Errorf("CSV:\n%s", b)
	}
}

func TestChartData(t *testing.T) {
	rows := rowsFor(map[[2]string][]float64{{toolRaw, "seq-write"}: {100}, {toolS3fs, "seq-write"}: {50},
		{toolS3fs, "ls-l-cold"}: {900}})
	computeRatios(rows)
	got := chartData(rows, "MiB/s", []string{toolRaw, toolS3fs})
	want := "workload \"raw-sdk\" \"s3fs\"\nseq-write 100.000 50.000\n"
	if got != want {
		t.Errorf("MiB/s data:\n%q\nwant\n%q", got, want)
	}
	if got := chartData(rows, "ops/s", []string{toolRaw, toolS3fs}); !strings.Contains(got, "ls-l-cold NaN 900.000") {
		t.Errorf("ops/s data: %q", got)
	}
}

func TestPatternRoundTrip(t *testing.T) {
	size := int64(patternLen + 3<<20 + 17) // crosses the period
	v := &verifier{}
	n, err := io.CopyBuffer(v, newContent(size), make([]byte, 1<<20+7))
	if err != nil || n != size || v.off != size {
		t.Fatalf("copy: n=%d off=%d err=%v", n, v.off, err)
	}
	off := int64(patternLen - 5)
	if err := checkAt(patternSlice(off, 4096), off); err != nil {
		t.Errorf("wrapped slice: %v", err)
	}
	bad := append([]byte(nil), patternSlice(0, 4096)...)
	bad[4000] ^= 1
	if err := checkAt(bad, 0); err == nil || !strings.Contains(err.Error(), "offset 4000") {
		t.Errorf("corruption not caught at its offset: %v", err)
	}
	if err := checkAt(patternSlice(0, 100), 1); err == nil {
		t.Error("shifted content not caught")
	}
}

func TestFirstError(t *testing.T) {
	e1 := errors.New("e1")
	if err := firstError([]error{nil, e1, errors.New("e2")}); !errors.Is(err, e1) || !strings.Contains(err.Error(), "2 of 3") {
		t.Errorf("firstError = %v", err)
	}
	if err := firstError([]error{nil, nil}); err != nil {
		t.Errorf("firstError of no error = %v", err)
	}
}

// BenchmarkVerify measures the bench's own cost of checking every byte read, which every read figure includes;
// it must stay far above the rates measured (GiB/s against hundreds of MiB/s).
func BenchmarkVerify(b *testing.B) {
	// A copy: comparing the pattern with itself would short-cut on equal pointers.
	buf := append([]byte(nil), patternSlice(0, 1<<20)...)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if err := checkAt(buf, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkContent measures the cost of generating the written content, which every write figure includes.
func BenchmarkContent(b *testing.B) {
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(buf)))
	c := newContent(1 << 62)
	for b.Loop() {
		io.ReadFull(c, buf)
	}
}
