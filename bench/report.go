package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
)

// workload describes one row kind of the report.
type workload struct {
	Name string
	Unit string // "MiB/s", "files/s" or "entries/s": always higher is better
	// Raw names the raw-sdk workloads whose best median is this workload's ceiling.
	Raw []string
	// WriteLike workloads are measured at close(); tools whose close returns before the upload are not peers there.
	WriteLike bool
	What      string
}

// workloads lists the rows in report order.
var workloads = []workload{
	{Name: "seq-write", Unit: "MiB/s", Raw: []string{"seq-write"}, WriteLike: true,
		What: "one file written sequentially, timed from open to close() returning"},
	{Name: "seq-write-durable", Unit: "MiB/s", Raw: []string{"seq-write"},
		What: "the same write timed until HEAD shows the complete object in S3"},
	{Name: "cold-read", Unit: "MiB/s", Raw: []string{"cold-read", "ranged-read"},
		What: "sequential read in a fresh mount after drop_caches"},
	{Name: "ranged-read", Unit: "MiB/s", Raw: []string{"cold-read", "ranged-read"},
		What: "raw SDK only: parallel ranged GETs of the same object"},
	{Name: "warm-read", Unit: "MiB/s", Raw: []string{"cold-read", "ranged-read"},
		What: "the same read again in the same mount (page cache and tool cache allowed)"},
	{Name: "par-write", Unit: "MiB/s", Raw: []string{"par-write"}, WriteLike: true,
		What: "parallel writers, aggregate bytes over the time until the last close() returns"},
	{Name: "par-write-durable", Unit: "MiB/s", Raw: []string{"par-write"},
		What: "the same parallel writes timed until every object is complete in S3 (ListObjectsV2)"},
	{Name: "create-small", Unit: "files/s", Raw: []string{"create-small"}, WriteLike: true,
		What: "small files created one after another (create, write, close)"},
	{Name: "create-small-durable", Unit: "files/s", Raw: []string{"create-small"},
		What: "the same creates timed until every object is in S3 (ListObjectsV2)"},
	{Name: "ls-l-cold", Unit: "entries/s", Raw: []string{"ls-l-cold"},
		What: "ls -l of the small files' directory in a fresh mount (raw: ListObjectsV2)"},
}

// workloadByName finds a workload of the report by its name.
func workloadByName(name string) (workload, bool) {
	for _, w := range workloads {
		if w.Name == name {
			return w, true
		}
	}
	return workload{}, false
}

// toolLabels are caveats printed next to a tool's name wherever it appears.
var toolLabels = map[string]string{
	toolRcloneWrites: "close returns before upload",
	toolFTPS:         "curl through ftpfront over s3mount",
	toolSFTP:         "OpenSSH sftp through ftpfront's SFTP over s3mount",
	toolSSHDS3mount:  "OpenSSH sftp through sshd (internal-sftp, chroot) over s3mount",
	toolSSHDS3fs:     "OpenSSH sftp through sshd (internal-sftp, chroot) over s3fs",
}

// row is one (tool, workload) line of the report. It is written to JSON by MarshalJSON.
type row struct {
	Tool     string
	Label    string
	Workload string
	Unit     string
	Values   []float64
	Errors   []string
	summary
	RatioRaw  float64
	RatioPeer float64
	Peer      string
	// PeakRSS is the daemon's VmHWM over the sessions that ran this workload (-1: no daemon or unknown).
	PeakRSS int64
	// ScratchPeak is the peak bytes used on the tool's own scratch file system (TMPDIR and cache dir).
	ScratchPeak int64
	// ScratchAfter is what remained there when the workload's session ended.
	ScratchAfter int64
	// HostDiskPeak is the peak growth of the file system holding /tmp during the sessions (other processes on the
	// machine add to it).
	HostDiskPeak int64
	// HostDiskAfter is that file system's growth from the start to the end of the sessions (largest session).
	HostDiskAfter int64
	Notes         []string
}

// MarshalJSON writes NaN figures as null, which encoding/json refuses to encode.
func (r row) MarshalJSON() ([]byte, error) {
	m := map[string]any{}
	m["tool"], m["workload"], m["unit"] = r.Tool, r.Workload, r.Unit
	if r.Label != "" {
		m["label"] = r.Label
	}
	m["values"] = r.Values
	if len(r.Errors) > 0 {
		m["errors"] = r.Errors
	}
	for k, v := range map[string]float64{"median": r.Median, "min": r.Min, "max": r.Max, "spread_pct": r.SpreadPct,
		"ratio_raw": r.RatioRaw, "ratio_peer": r.RatioPeer} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			m[k] = nil
		} else {
			m[k] = v
		}
	}
	m["n"] = r.N
	if r.Peer != "" {
		m["peer"] = r.Peer
	}
	m["peak_rss_bytes"], m["scratch_peak_bytes"] = r.PeakRSS, r.ScratchPeak
	m["scratch_after_bytes"], m["host_disk_peak_bytes"] = r.ScratchAfter, r.HostDiskPeak
	m["host_disk_after_bytes"] = r.HostDiskAfter
	if len(r.Notes) > 0 {
		m["notes"] = r.Notes
	}
	return json.Marshal(m)
}

// computeRatios fills each row's summary, its ratio to the raw ceiling and to the best peer. Peers are the other
// mount tools; for write-like workloads a tool whose close returns before the upload is no peer, and the FTPS path
// is compared with the mounts, never with s3mount beneath it. The SSH tools (sftp through ftpfront or sshd) are
// peers of each other only.
func computeRatios(rows []*row) {
	median := map[[2]string]float64{}
	for _, r := range rows {
		r.summary = summarize(r.Values)
		median[[2]string{r.Tool, r.Workload}] = r.Median
	}
	for _, r := range rows {
		r.RatioRaw, r.RatioPeer, r.Peer = math.NaN(), math.NaN(), ""
		w, ok := workloadByName(r.Workload)
		if !ok {
			continue
		}
		if r.Tool != toolRaw {
			best := math.NaN()
			for _, rw := range w.Raw {
				if v, ok := median[[2]string{toolRaw, rw}]; ok && !math.IsNaN(v) && (math.IsNaN(best) || v > best) {
					best = v
				}
			}
			r.RatioRaw = ratio(r.Median, best)
		}
		if r.Tool == toolRaw || math.IsNaN(r.Median) {
			continue
		}
		best, bestTool := math.NaN(), ""
		peers := []string{toolS3mount, toolS3fs, toolRcloneOff, toolRcloneWrites}
		if isSSHTool(r.Tool) {
			peers = []string{toolSFTP, toolSSHDS3mount, toolSSHDS3fs}
		}
		for _, p := range peers {
			if p == r.Tool || (r.Tool == toolFTPS && p == toolS3mount) || (w.WriteLike && p == toolRcloneWrites) {
				continue
			}
			if v, ok := median[[2]string{p, r.Workload}]; ok && !math.IsNaN(v) && (math.IsNaN(best) || v > best) {
				best, bestTool = v, p
			}
		}
		if bestTool != "" {
			r.RatioPeer, r.Peer = ratio(r.Median, best), bestTool
		}
	}
}

// fmtFloat prints v with prec decimals, "-" when it is unknown.
func fmtFloat(v float64, prec int) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', prec, 64)
}

// fmtRate prints a rate with three significant digits or so.
func fmtRate(v float64) string {
	switch {
	case math.IsNaN(v):
		return "-"
	case v >= 100:
		return fmtFloat(v, 0)
	case v >= 10:
		return fmtFloat(v, 1)
	}
	return fmtFloat(v, 2)
}

// status prints what went wrong in a row: every distinct error, with how many repetitions it failed.
func (r *row) status() string {
	if len(r.Errors) == 0 {
		return strings.Join(r.Notes, "; ")
	}
	count := map[string]int{}
	var order []string
	for _, e := range r.Errors {
		if count[e] == 0 {
			order = append(order, e)
		}
		count[e]++
	}
	var parts []string
	for _, e := range order {
		parts = append(parts, fmt.Sprintf("FAILED %d/%d: %s", count[e], len(r.Errors)+len(r.Values), e))
	}
	return strings.Join(append(parts, r.Notes...), "; ")
}

// formatTable renders the rows as an aligned text table.
func formatTable(rows []*row) string {
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TOOL\tWORKLOAD\tMEDIAN\tUNIT\tMIN–MAX\tSPREAD\t×RAW\t×BEST PEER\tPEAK RSS\tSCRATCH PEAK\tHOST /tmp Δ\tSTATUS")
	prevTool := ""
	for _, r := range rows {
		tool := r.Tool
		if r.Tool == prevTool {
			tool = ""
		} else if prevTool != "" {
			fmt.Fprintln(tw, "\t\t\t\t\t\t\t\t\t\t\t")
		}
		prevTool = r.Tool
		peer := fmtFloat(r.RatioPeer, 2)
		if r.Peer != "" {
			peer += " (" + r.Peer + ")"
		}
		minmax := "-"
		if r.N > 0 {
			minmax = fmtRate(r.Min) + "–" + fmtRate(r.Max)
		}
		spread := "-"
		if r.N > 0 {
			spread = fmtFloat(r.SpreadPct, 0) + "%"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", tool, r.Workload, fmtRate(r.Median), r.Unit,
			minmax, spread, fmtFloat(r.RatioRaw, 2), peer, humanBytes(r.PeakRSS), humanBytes(r.ScratchPeak),
			humanBytes(r.HostDiskPeak), r.status())
	}
	tw.Flush()
	var legend []string
	for _, t := range allTools {
		if l, ok := toolLabels[t]; ok && hasTool(rows, t) {
			legend = append(legend, t+": "+l)
		}
	}
	if len(legend) > 0 {
		b.WriteString("\n" + strings.Join(legend, "\n") + "\n")
	}
	return b.String()
}

// hasTool reports whether some row belongs to tool.
func hasTool(rows []*row, tool string) bool {
	for _, r := range rows {
		if r.Tool == tool {
			return true
		}
	}
	return false
}

// writeCSV writes one line per row; values and errors are joined with ";".
func writeCSV(path string, rows []*row) error {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write([]string{"tool", "label", "workload", "unit", "median", "min", "max", "spread_pct", "n", "ratio_raw",
		"ratio_peer", "peer", "peak_rss_bytes", "scratch_peak_bytes", "scratch_after_bytes", "host_disk_peak_bytes",
		"host_disk_after_bytes", "values", "errors", "notes"})
	for _, r := range rows {
		var vals []string
		for _, v := range r.Values {
			vals = append(vals, strconv.FormatFloat(v, 'f', 3, 64))
		}
		w.Write([]string{r.Tool, toolLabels[r.Tool], r.Workload, r.Unit, fmtFloat(r.Median, 3), fmtFloat(r.Min, 3),
			fmtFloat(r.Max, 3), fmtFloat(r.SpreadPct, 1), strconv.Itoa(r.N), fmtFloat(r.RatioRaw, 3),
			fmtFloat(r.RatioPeer, 3), r.Peer, strconv.FormatInt(r.PeakRSS, 10), strconv.FormatInt(r.ScratchPeak, 10),
			strconv.FormatInt(r.ScratchAfter, 10), strconv.FormatInt(r.HostDiskPeak, 10),
			strconv.FormatInt(r.HostDiskAfter, 10), strings.Join(vals, ";"),
			strings.Join(r.Errors, ";"), strings.Join(r.Notes, ";")})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// report is the JSON document: the machine, the options and the rows.
type report struct {
	Date    string            `json:"date"`
	Machine map[string]string `json:"machine"`
	Options map[string]any    `json:"options"`
	Rows    []*row            `json:"rows"`
}

// writeJSON writes the report, indented, to path.
func writeJSON(path string, rep report) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// chartData renders the medians of one unit as a gnuplot data block: one line per workload, one column per tool.
// It returns "" when no row has that unit.
func chartData(rows []*row, unit string, tools []string) string {
	var b strings.Builder
	b.WriteString("workload")
	for _, t := range tools {
		title := t
		if l, ok := toolLabels[t]; ok && t == toolRcloneWrites {
			title += " (" + l + ")"
		}
		b.WriteString(" \"" + title + "\"")
	}
	b.WriteString("\n")
	any := false
	for _, w := range workloads {
		if w.Unit != unit && !(unit == "ops/s" && w.Unit != "MiB/s") {
			continue
		}
		line := []string{w.Name}
		found := false
		for _, t := range tools {
			v := math.NaN()
			for _, r := range rows {
				if r.Tool == t && r.Workload == w.Name {
					v = r.Median
				}
			}
			found = found || !math.IsNaN(v)
			if math.IsNaN(v) {
				line = append(line, "NaN")
			} else {
				line = append(line, strconv.FormatFloat(v, 'f', 3, 64))
			}
		}
		if found {
			any = true
			b.WriteString(strings.Join(line, " ") + "\n")
		}
	}
	if !any {
		return ""
	}
	return b.String()
}

// writeChart draws throughput.png with gnuplot: MiB/s workloads on the left, operations per second on the right.
func writeChart(dir string, rows []*row, tools []string) error {
	gp, err := exec.LookPath("gnuplot")
	if err != nil {
		return fmt.Errorf("gnuplot not installed (scripts/bench.sh installs it): %w", err)
	}
	mib, ops := chartData(rows, "MiB/s", tools), chartData(rows, "ops/s", tools)
	if err := os.WriteFile(filepath.Join(dir, "throughput-mibs.dat"), []byte(mib), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "throughput-ops.dat"), []byte(ops), 0o644); err != nil {
		return err
	}
	n := len(tools) + 1
	script := fmt.Sprintf(`set terminal pngcairo size 1600,700 noenhanced font ",10"
set output "throughput.png"
set datafile missing "NaN"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set key top right
set grid ytics
set xtics rotate by -25
set multiplot layout 1,2 title "s3ftp bench: median of repetitions (higher is better)"
set title "throughput"
set ylabel "MiB/s"
plot for [i=2:%[1]d] "throughput-mibs.dat" using i:xtic(1) title columnheader(i)
set title "metadata operations (log scale)"
set ylabel "operations/s"
set logscale y
plot for [i=2:%[1]d] "throughput-ops.dat" using i:xtic(1) title columnheader(i)
unset multiplot
`, n)
	if err := os.WriteFile(filepath.Join(dir, "throughput.gp"), []byte(script), 0o644); err != nil {
		return err
	}
	cmd := exec.Command(gp, "throughput.gp")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("gnuplot: %w: %s", err, bytes.TrimSpace(out))
	}
	return nil
}
