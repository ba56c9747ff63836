package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// Exit codes of the bench command.
const (
	exitOK      = 0
	exitFailed  = 1 // the run could not start, or it was interrupted
	exitUsage   = 2
	exitResults = 3 // the results could not be written
)

// main runs the bench and exits with its status.
func main() {
	os.Exit(run(os.Args[1:]))
}

// run is the whole command: set-up, workloads, report. It returns the exit status.
func run(args []string) int {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))
	o, err := parseOptions(args)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return exitUsage
	}
	if os.Geteuid() != 0 {
		slog.Error("bench must run as root: it drops the page cache and mounts tmpfs scratch file systems")
		return exitFailed
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	started := time.Now().UTC()
	e, err := setupEnv(ctx, o)
	if err != nil {
		slog.Error("set-up failed", "err", err)
		return exitFailed
	}
	defer e.close()
	// A signal unmounts everything at once, so file I/O blocked in a mount returns and the run can end.
	go func() {
		<-ctx.Done()
		e.mounts.abortAll()
	}()

	prog := newProgress(os.Stderr)
	rn := newRunner(e, prog)
	rn.run(ctx)
	prog.finish()
	if ctx.Err() != nil {
		slog.Error("interrupted: results are incomplete and not written")
		return exitFailed
	}

	rows := rn.sortedRows()
	computeRatios(rows)
	fmt.Printf("s3ftp bench %s on %s; %s\n\n", started.Format("2006-01-02 15:04 UTC"), machineLine(),
		optionsLine(o))
	fmt.Printf("link: %s\n\n", o.Link)
	fmt.Print(formatTable(rows))

	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		slog.Error("creating the output directory failed", "dir", o.Out, "err", err)
		return exitResults
	}
	rep := report{Date: started.Format(time.RFC3339), Machine: machineInfo(), Options: optionsMap(o), Rows: rows}
	code := exitOK
	for _, w := range []struct {
		name string
		fn   func() error
	}{
		{"results.csv", func() error { return writeCSV(filepath.Join(o.Out, "results.csv"), rows) }},
		{"results.json", func() error { return writeJSON(filepath.Join(o.Out, "results.json"), rep) }},
		{"throughput.png", func() error {
			if !o.Chart {
				return nil
			}
			return writeChart(o.Out, rows, o.Tools)
		}},
		{"table.txt", func() error {
			return os.WriteFile(filepath.Join(o.Out, "table.txt"), []byte("link: "+o.Link.String()+"\n\n"+formatTable(rows)), 0o644)
		}},
	} {
		if err := w.fn(); err != nil {
			slog.Error("writing a result file failed", "file", w.name, "err", err)
			code = exitResults
		}
	}
	files := []string{filepath.Join(o.Out, "results.csv"), filepath.Join(o.Out, "results.json")}
	if o.Chart {
		files = append(files, filepath.Join(o.Out, "throughput.png"))
	}
	fmt.Printf("\nresults: %s\n", strings.Join(files, ", "))
	return code
}

// machineInfo describes the machine and the tools' versions for the JSON and the README.
func machineInfo() map[string]string {
	m := map[string]string{"cpus": fmt.Sprint(runtime.NumCPU()), "go": runtime.Version(), "os": runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m["cpu"] = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if l, _, ok := strings.Cut(string(b), "\n"); ok {
			m["memory"] = strings.Join(strings.Fields(strings.TrimPrefix(l, "MemTotal:")), " ")
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m["kernel"] = strings.TrimSpace(string(b))
	}
	for name, argv := range map[string][]string{"s3fs": {"s3fs", "--version"}, "rclone": {"rclone", "version"},
		"curl": {"curl", "--version"}} {
		if out, err := exec.Command(argv[0], argv[1:]...).Output(); err == nil {
			m[name], _, _ = strings.Cut(strings.TrimSpace(string(out)), "\n")
		}
	}
	return m
}

// machineLine summarises the machine in one line for the table heading.
func machineLine() string {
	m := machineInfo()
	return fmt.Sprintf("%s CPUs (%s), %s RAM, Linux %s", m["cpus"], m["cpu"], m["memory"], m["kernel"])
}

// optionsLine summarises the sizes of the run in one line for the table heading.
func optionsLine(o options) string {
	return fmt.Sprintf("size %s, %d repetitions, %d writers × %s, %d files × %s, s3mount budget %s cache %s",
		formatSize(o.Size), o.Reps, o.ParWriters, formatSize(o.ParSize), o.Files, formatSize(o.FileSize),
		formatSize(o.MemoryBudget), formatSize(o.CacheSize))
}

// optionsMap is the options as written to results.json.
func optionsMap(o options) map[string]any {
	return map[string]any{"quick": o.Quick, "size_bytes": o.Size, "reps": o.Reps, "tools": o.Tools,
		"par_writers": o.ParWriters, "par_size_bytes": o.ParSize, "files": o.Files, "file_size_bytes": o.FileSize,
		"part_size_bytes": o.PartSize, "concurrency": o.Concurrency, "memory_budget_bytes": o.MemoryBudget,
		"cache_size_bytes": o.CacheSize, "timeout": o.Timeout.String(), "link": o.Link.String(),
		"link_rate_bytes_per_s": o.Link.Rate, "link_latency_ms": o.Link.Latency.Milliseconds()}
}
