package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// options are the run's parameters; flags map onto them one to one.
type options struct {
	Quick      bool
	Size       int64 // bytes of the sequential file
	Reps       int
	Out        string
	Tools      []string
	ParWriters int
	ParSize    int64 // bytes written by each parallel writer
	Files      int   // small files created, and entries listed by ls -l
	FileSize   int64
	// PartSize and Concurrency shape the raw SDK's multipart uploads and ranged GETs.
	PartSize    int64
	Concurrency int
	// MemoryBudget and CacheSize are passed to s3mount.
	MemoryBudget int64
	CacheSize    int64
	// Timeout bounds one repetition of one workload.
	Timeout time.Duration
	// MinioBin, S3mountBin and FtpfrontBin override where binaries come from ("" = find or build).
	MinioBin, S3mountBin, FtpfrontBin string
	Keep                              bool // keep the work directory (logs) after the run
	Chart                             bool // draw throughput.png with gnuplot
	// Link, when on, puts an emulated network link between every tool and MinIO (--link).
	Link link
}

// allTools lists every tool in the order of the report.
var allTools = []string{toolRaw, toolS3mount, toolFTPS, toolS3fs, toolRcloneOff, toolRcloneWrites, toolSFTP,
	toolSSHDS3mount, toolSSHDS3fs}

const (
	toolRaw          = "raw-sdk"
	toolS3mount      = "s3mount"
	toolFTPS         = "s3mount+ftps"
	toolS3fs         = "s3fs"
	toolRcloneOff    = "rclone-off"
	toolRcloneWrites = "rclone-writes"
	toolSFTP         = "s3mount+sftp"
	toolSSHDS3mount  = "sshd+s3mount"
	toolSSHDS3fs     = "sshd+s3fs"
)

// parseOptions maps the command line onto options, applying --quick's defaults to the flags not given.
func parseOptions(args []string) (options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var o options
	var size, parSize, fileSize, partSize, budget, cacheSize, tools, linkS string
	fs.BoolVar(&o.Quick, "quick", false, "a 128MiB sequential file and 2 repetitions unless given (under 10 minutes on 2 cores)")
	fs.StringVar(&size, "size", "512MiB", "size of the sequential file (plain number = MiB; K/M/G and KiB/MiB/GiB suffixes)")
	fs.IntVar(&o.Reps, "reps", 3, "repetitions of each workload")
	fs.StringVar(&o.Out, "out", filepath.Join(os.TempDir(), "s3ftp-bench-results"),
		"directory for results.csv, results.json, throughput.png and table.txt")
	fs.StringVar(&tools, "tools", strings.Join(allTools, ","), "comma-separated tools to run: "+strings.Join(allTools, ","))
	fs.IntVar(&o.ParWriters, "par-writers", 15, "number of parallel writers")
	fs.StringVar(&parSize, "par-size", "50MiB", "bytes written by each parallel writer")
	fs.IntVar(&o.Files, "files", 500, "number of small files created and listed")
	fs.StringVar(&fileSize, "file-size", "4KiB", "size of each small file")
	fs.StringVar(&partSize, "part-size", "8MiB", "raw SDK part and range size")
	fs.IntVar(&o.Concurrency, "concurrency", 8, "raw SDK parts or ranges in flight")
	fs.StringVar(&budget, "memory-budget", "256MiB", "s3mount --memory-budget")
	fs.StringVar(&cacheSize, "cache-size", "256MiB", "s3mount --cache-size")
	fs.DurationVar(&o.Timeout, "timeout", 5*time.Minute, "time limit of one mount session (or of one repetition of all raw SDK workloads)")
	fs.StringVar(&o.MinioBin, "minio", "", "minio binary (default: miniolocal.FindBinary)")
	fs.StringVar(&o.S3mountBin, "s3mount", "", "s3mount binary (default: go build ./cmd/s3mount)")
	fs.StringVar(&o.FtpfrontBin, "ftpfront", "", "ftpfront binary (default: go build ./cmd/ftpfront)")
	fs.BoolVar(&o.Keep, "keep", false, "keep the work directory with the daemons' logs")
	fs.BoolVar(&o.Chart, "chart", true, "draw throughput.png with gnuplot (--chart=false where gnuplot is missing)")
	fs.StringVar(&linkS, "link", "", "emulate a network link RATE[,LATENCY] (e.g. 100MiB/s,2ms) between every tool and MinIO "+
		"with an in-process toxiproxy: RATE per connection each way, LATENCY added each way")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.Quick {
		if !set["size"] {
			size = "128MiB"
		}
		if !set["reps"] {
			o.Reps = 2
		}
	}
	var err error
	for _, p := range []struct {
		name string
		s    string
		dst  *int64
	}{
		{"size", size, &o.Size}, {"par-size", parSize, &o.ParSize}, {"file-size", fileSize, &o.FileSize},
		{"part-size", partSize, &o.PartSize}, {"memory-budget", budget, &o.MemoryBudget},
		{"cache-size", cacheSize, &o.CacheSize},
	} {
		if *p.dst, err = parseSize(p.s); err != nil {
			return o, fmt.Errorf("--%s: %w", p.name, err)
		}
		if *p.dst <= 0 {
			return o, fmt.Errorf("--%s: must be positive", p.name)
		}
	}
	if o.Reps < 1 || o.ParWriters < 1 || o.Files < 1 || o.Concurrency < 1 {
		return o, errors.New("--reps, --par-writers, --files and --concurrency must be at least 1")
	}
	if o.PartSize < 5<<20 {
		return o, errors.New("--part-size: S3 parts are at least 5 MiB")
	}
	if o.Link, err = parseLink(linkS); err != nil {
		return o, fmt.Errorf("--link: %w", err)
	}
	o.Tools, err = parseTools(tools)
	return o, err
}

// parseTools validates a comma-separated tool list and returns it in report order.
func parseTools(s string) ([]string, error) {
	want := map[string]bool{}
	for _, t := range strings.Split(s, ",") {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		known := false
		for _, a := range allTools {
			known = known || a == t
		}
		if !known {
			return nil, fmt.Errorf("--tools: unknown tool %q (known: %s)", t, strings.Join(allTools, ","))
		}
		want[t] = true
	}
	var out []string
	for _, a := range allTools {
		if want[a] {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("--tools: no tool selected")
	}
	return out, nil
}

// parseSize reads a byte count. A plain number is MiB; the suffixes K, M, G, T, with or without "B" or "iB", are
// powers of 1024 (so "64M", "64MB" and "64MiB" are the same); "B" alone means bytes.
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, errors.New("empty size")
	}
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	if num == "" {
		return 0, fmt.Errorf("size %q: no number", s)
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", s, err)
	}
	var mult float64
	switch unit {
	case "":
		mult = 1 << 20
	case "b":
		mult = 1
	case "k", "kb", "kib":
		mult = 1 << 10
	case "m", "mb", "mib":
		mult = 1 << 20
	case "g", "gb", "gib":
		mult = 1 << 30
	case "t", "tb", "tib":
		mult = 1 << 40
	default:
		return 0, fmt.Errorf("size %q: unknown unit %q", s, unit)
	}
	b := v * mult
	if b >= 1<<62 {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	if b != float64(int64(b)) {
		return 0, fmt.Errorf("size %q: not a whole number of bytes", s)
	}
	return int64(b), nil
}

// formatSize prints bytes with a binary unit, as parseSize reads them back.
func formatSize(b int64) string {
	switch {
	case b >= 1<<30 && b%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", b>>30)
	case b >= 1<<20 && b%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", b>>20)
	case b >= 1<<10 && b%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", b>>10)
	}
	return fmt.Sprintf("%dB", b)
}

// humanBytes prints an approximate byte count for the table ("-" for unknown).
func humanBytes(b int64) string {
	switch {
	case b < 0:
		return "-"
	case b >= 1<<30:
		return fmt.Sprintf("%.1fGiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1fMiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.0fKiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%dB", b)
}
