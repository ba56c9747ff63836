package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// runner runs every selected tool's workloads and collects the rows.
type runner struct {
	e    *benchEnv
	o    options
	prog *progress

	mu   sync.Mutex // guards rows and frontRSS
	rows map[[2]string]*row
	// frontRSS is, per tool served through a front server (ftpfront, sshd), that server's largest VmHWM over the
	// tool's sessions.
	frontRSS map[string]int64
}

// newRunner prepares a runner over the environment; its progress goes to prog.
func newRunner(e *benchEnv, prog *progress) *runner {
	return &runner{e: e, o: e.opts, prog: prog, rows: map[[2]string]*row{}, frontRSS: map[string]int64{}}
}

// row returns the (tool, workload) row, creating it on first use.
func (r *runner) row(tool, wl string) *row {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := [2]string{tool, wl}
	if x, ok := r.rows[k]; ok {
		return x
	}
	w, _ := workloadByName(wl)
	x := &row{Tool: tool, Label: toolLabels[tool], Workload: wl, Unit: w.Unit, PeakRSS: -1}
	r.rows[k] = x
	return x
}

// record adds one repetition's figure, or its error, to a row.
func (r *runner) record(tool, wl string, v float64, err error) {
	x := r.row(tool, wl)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		msg := strings.ReplaceAll(err.Error(), "\n", " ")
		slog.Debug("repetition failed", "tool", tool, "workload", wl, "err", msg)
		x.Errors = append(x.Errors, msg)
		return
	}
	x.Values = append(x.Values, v)
}

// note adds a remark to a row once.
func (r *runner) note(tool, wl, msg string) {
	x := r.row(tool, wl)
	r.mu.Lock()
	defer r.mu.Unlock()
	if !slices.Contains(x.Notes, msg) {
		x.Notes = append(x.Notes, msg)
	}
}

// resources merges a session's peak RSS and disk usage into the rows it served.
func (r *runner) resources(tool string, wls []string, rss, scratchPeak, scratchAfter, hostPeak, hostAfter int64) {
	for _, wl := range wls {
		x := r.row(tool, wl)
		r.mu.Lock()
		x.PeakRSS = max(x.PeakRSS, rss)
		x.ScratchPeak = max(x.ScratchPeak, scratchPeak)
		x.ScratchAfter = max(x.ScratchAfter, scratchAfter)
		x.HostDiskPeak = max(x.HostDiskPeak, hostPeak)
		x.HostDiskAfter = max(x.HostDiskAfter, hostAfter)
		r.mu.Unlock()
	}
}

// sortedRows returns the rows in report order: tools as in allTools, workloads as in workloads.
func (r *runner) sortedRows() []*row {
	var out []*row
	for _, t := range allTools {
		for _, w := range workloads {
			if x, ok := r.rows[[2]string{t, w.Name}]; ok {
				out = append(out, x)
			}
		}
	}
	return out
}

// bucketFor names the bucket a tool works in; each tool has its own so listings never see another's files.
func bucketFor(tool string) string {
	return "bench-" + strings.ReplaceAll(tool, "+", "-")
}

// stepsPerRep counts the progress steps of one repetition of a tool, to size the progress line.
func stepsPerRep(tool string) int {
	if tool == toolFTPS || isSSHTool(tool) {
		return 2
	}
	return 5
}

// run prepares every selected tool's bucket, then runs the repetitions round-robin over the tools (repetition 1
// of every tool, then repetition 2, ...), so that a burst of load from elsewhere on the machine spreads over all
// tools instead of penalising one. A tool that cannot run records why in each of its rows.
func (r *runner) run(ctx context.Context) {
	total := 0
	for _, t := range r.o.Tools {
		total += 1 + r.o.Reps*stepsPerRep(t)
	}
	r.prog.setTotal(total)
	var ready []string
	for _, t := range r.o.Tools {
		if ctx.Err() != nil {
			return
		}
		r.prog.step(t, "prepare bucket "+bucketFor(t), 0)
		if err := r.available(t); err != nil {
			r.failTool(t, err)
			r.prog.skip(r.o.Reps * stepsPerRep(t))
			continue
		}
		if err := r.prepare(ctx, bucketFor(t), t); err != nil {
			r.failTool(t, fmt.Errorf("preparing bucket %s: %w", bucketFor(t), err))
			r.prog.skip(r.o.Reps * stepsPerRep(t))
			continue
		}
		ready = append(ready, t)
	}
	tools := mountTools()
	for rep := 1; rep <= r.o.Reps; rep++ {
		for _, t := range ready {
			if ctx.Err() != nil {
				return
			}
			switch t {
			case toolRaw:
				r.rawRep(ctx, bucketFor(t), rep)
			case toolFTPS:
				r.ftpsRep(ctx, tools[toolS3mount], bucketFor(t), rep)
			case toolSFTP, toolSSHDS3mount, toolSSHDS3fs:
				r.sshRep(ctx, t, bucketFor(t), rep)
			default:
				r.mountRep(ctx, tools[t], bucketFor(t), rep)
			}
		}
	}
	for _, t := range ready {
		r.addNotes(t)
		if err := r.e.raw.deletePrefix(context.WithoutCancel(ctx), bucketFor(t), ""); err != nil {
			slog.Warn("emptying a bucket after the run failed", "bucket", bucketFor(t), "err", err)
		}
	}
}

// addNotes attaches to a tool's rows what the figures mean for that tool.
func (r *runner) addNotes(tool string) {
	o := r.o
	switch tool {
	case toolRaw:
		r.note(toolRaw, "seq-write", fmt.Sprintf("multipart, %s parts, %d in flight", formatSize(o.PartSize), o.Concurrency))
		r.note(toolRaw, "par-write", fmt.Sprintf("%d uploads at once, each multipart with one part in flight", o.ParWriters))
		r.note(toolRaw, "cold-read", "one GET stream")
		r.note(toolRaw, "ranged-read", fmt.Sprintf("%s ranges, %d in flight", formatSize(o.PartSize), o.Concurrency))
		r.note(toolRaw, "ls-l-cold", "ListObjectsV2 pages only")
	case toolFTPS:
		r.note(toolFTPS, "cold-read", "cold = "+mountTools()[toolS3mount].cold+", ftpfront started on the fresh mount")
		for _, w := range toolWorkloads(toolFTPS) {
			r.note(toolFTPS, w, "PEAK RSS is s3mount's; ftpfront's peak RSS was "+r.frontPeak(toolFTPS))
		}
	case toolSFTP, toolSSHDS3mount, toolSSHDS3fs:
		st := sshTools[tool]
		server := "ftpfront"
		if st.sshd {
			server = "sshd"
		}
		r.note(tool, "cold-read", "cold = "+mountTools()[st.mount].cold+", "+server+" started on the fresh mount")
		for _, w := range toolWorkloads(tool) {
			r.note(tool, w, fmt.Sprintf("PEAK RSS is %s's; %s's main process peak RSS was %s", st.mount, server,
				r.frontPeak(tool)))
		}
	default:
		for _, w := range toolWorkloads(tool) {
			if strings.Contains(w, "cold") {
				r.note(tool, w, "cold = "+mountTools()[tool].cold)
			}
		}
	}
}

// frontPeak prints the largest VmHWM of a tool's front server ("-" when unknown).
func (r *runner) frontPeak(tool string) string {
	if v, ok := r.frontRSS[tool]; ok {
		return humanBytes(v)
	}
	return humanBytes(-1)
}

// available says why a mount tool cannot run, or nil.
func (r *runner) available(tool string) error {
	switch tool {
	case toolSFTP, toolSSHDS3mount, toolSSHDS3fs:
		return r.sshAvailable(tool)
	case toolS3mount:
		return r.e.binErr[toolS3mount]
	case toolFTPS:
		if err := errors.Join(r.e.binErr[toolS3mount], r.e.binErr[toolFTPS]); err != nil {
			return err
		}
		return lookTool("curl")
	case toolS3fs:
		return lookTool("s3fs")
	case toolRcloneOff, toolRcloneWrites:
		return lookTool("rclone")
	}
	return nil
}

// lookTool says how to get a missing peer tool, or returns nil when it is installed.
func lookTool(name string) error {
	if _, err := exec.LookPath(name); err != nil {
		return fmt.Errorf("%s is not installed (scripts/bench.sh installs it with apt-get)", name)
	}
	return nil
}

// failTool records err in every row the tool would have produced.
func (r *runner) failTool(tool string, err error) {
	slog.Error("tool cannot run; its rows record the error", "tool", tool, "err", err)
	for _, w := range toolWorkloads(tool) {
		r.record(tool, w, 0, err)
	}
}

// toolWorkloads lists the rows a tool produces.
func toolWorkloads(tool string) []string {
	switch tool {
	case toolRaw:
		return []string{"seq-write", "cold-read", "ranged-read", "par-write", "create-small", "ls-l-cold"}
	case toolFTPS:
		return []string{"seq-write", "seq-write-durable", "cold-read", "warm-read"}
	case toolSFTP, toolSSHDS3mount, toolSSHDS3fs:
		return []string{"seq-write", "seq-write-durable", "cold-read"}
	}
	return []string{"seq-write", "seq-write-durable", "cold-read", "warm-read", "par-write", "par-write-durable",
		"create-small", "create-small-durable", "ls-l-cold"}
}

// prepare creates the tool's bucket with the objects the read and list workloads use: read.bin (--size bytes)
// and lsdir/ with --files objects of --file-size, written by the raw client so every tool reads the same data.
func (r *runner) prepare(ctx context.Context, bucket, tool string) error {
	if err := r.e.minio.createBucket(ctx, bucket); err != nil {
		return err
	}
	if err := r.e.raw.put(ctx, bucket, "read.bin", r.o.Size, r.o.PartSize, r.o.Concurrency); err != nil {
		return err
	}
	if tool == toolFTPS || isSSHTool(tool) {
		return nil
	}
	if err := r.e.raw.put(ctx, bucket, "lsdir/", 0, r.o.PartSize, 1); err != nil {
		return err
	}
	errs := make([]error, r.o.Files)
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i := range r.o.Files {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = r.e.raw.put(ctx, bucket, "lsdir/"+smallName(i), r.o.FileSize, r.o.PartSize, 1)
		})
	}
	wg.Wait()
	return firstError(errs)
}

// rawRep measures one repetition of the SDK's ceiling for each workload.
func (r *runner) rawRep(ctx context.Context, bucket string, rep int) {
	o, raw := r.o, r.e.raw
	wctx, cancel := context.WithTimeout(ctx, o.Timeout)
	key := fmt.Sprintf("seq-%d.bin", rep)
	r.prog.step(toolRaw, "seq-write", rep)
	d, err := timeIt(func() error { return raw.put(wctx, bucket, key, o.Size, o.PartSize, o.Concurrency) })
	r.record(toolRaw, "seq-write", mibps(o.Size, d), err)

	r.prog.step(toolRaw, "cold-read", rep)
	d, err = timeIt(func() error { return raw.get(wctx, bucket, "read.bin", o.Size) })
	r.record(toolRaw, "cold-read", mibps(o.Size, d), err)
	d, err = timeIt(func() error {
		return raw.getRanged(wctx, bucket, "read.bin", o.Size, o.PartSize, o.Concurrency)
	})
	r.record(toolRaw, "ranged-read", mibps(o.Size, d), err)

	r.prog.step(toolRaw, "par-write", rep)
	prefix := fmt.Sprintf("par-%d/", rep)
	d, err = timeIt(func() error {
		errs := make([]error, o.ParWriters)
		var wg sync.WaitGroup
		for i := range o.ParWriters {
			wg.Go(func() {
				errs[i] = raw.put(wctx, bucket, fmt.Sprintf("%sw%02d.bin", prefix, i), o.ParSize, o.PartSize, 1)
			})
		}
		wg.Wait()
		return firstError(errs)
	})
	r.record(toolRaw, "par-write", mibps(o.ParSize*int64(o.ParWriters), d), err)

	r.prog.step(toolRaw, "create-small", rep)
	small := fmt.Sprintf("small-%d/", rep)
	d, err = timeIt(func() error {
		for i := range o.Files {
			if err := raw.put(wctx, bucket, small+smallName(i), o.FileSize, o.PartSize, 1); err != nil {
				return fmt.Errorf("file %d of %d: %w", i+1, o.Files, err)
			}
		}
		return nil
	})
	r.record(toolRaw, "create-small", perSecond(o.Files, d), err)

	r.prog.step(toolRaw, "ls-l-cold", rep)
	d, err = timeIt(func() error {
		n, err := raw.list(wctx, bucket, "lsdir/")
		if err == nil && n != o.Files {
			err = fmt.Errorf("listed %d objects, want %d", n, o.Files)
		}
		return err
	})
	r.record(toolRaw, "ls-l-cold", perSecond(o.Files, d), err)
	cancel()
	r.cleanup(ctx, bucket, key, prefix, small)
}

// cleanup deletes what a repetition wrote, outside any timing.
func (r *runner) cleanup(ctx context.Context, bucket string, prefixes ...string) {
	for _, p := range prefixes {
		if err := r.e.raw.deletePrefix(context.WithoutCancel(ctx), bucket, p); err != nil {
			slog.Warn("deleting a repetition's objects failed", "bucket", bucket, "prefix", p, "err", err)
		}
	}
}

// inSession mounts the tool with an empty scratch file system, runs body on the mount point under the
// per-repetition time limit, and records the daemon's peak RSS and disk use against wls. A mount failure is
// recorded as the error of every workload in wls; body records its own figures.
func (r *runner) inSession(ctx context.Context, t mountTool, bucket string, wls []string, fresh bool,
	body func(mp string, s *session) error) {
	if ctx.Err() != nil {
		return
	}
	fail := func(err error) {
		for _, w := range wls {
			r.record(t.name, w, 0, err)
		}
	}
	scratch, err := r.e.scratch(t.name)
	if err != nil {
		fail(err)
		return
	}
	cacheDir := filepath.Join(scratch, "cache")
	if err := os.Mkdir(cacheDir, 0o755); err != nil {
		fail(err)
		return
	}
	if fresh {
		if err := dropCaches(); err != nil {
			fail(err)
			return
		}
	}
	sampler := startDiskSampler(100*time.Millisecond, scratch, os.TempDir())
	s, err := r.e.startSession(ctx, t, bucket, cacheDir)
	if err != nil {
		sampler.stop()
		fail(fmt.Errorf("mount: %w", err))
		return
	}
	var timedOut atomic.Bool
	watchdog := time.AfterFunc(r.o.Timeout, func() {
		timedOut.Store(true)
		slog.Error("repetition exceeded the time limit; killing the daemon", "tool", t.name, "limit", r.o.Timeout)
		s.kill()
	})
	bodyErr := body(s.mp, s)
	watchdog.Stop()
	rss := s.peakRSS()
	stopErr := r.e.stopSession(s)
	peak, after, serr := sampler.stop()
	if serr != nil {
		slog.Warn("disk usage sampling failed", "tool", t.name, "err", serr)
	}
	r.resources(t.name, wls, rss, peak[0], after[0], peak[1], after[1])
	if timedOut.Load() {
		for _, w := range wls {
			r.note(t.name, w, fmt.Sprintf("a repetition exceeded --timeout %s and was killed", r.o.Timeout))
		}
	}
	if stopErr != nil {
		// The body's own error says what the workload saw; this says what happened to the daemon (a crash, a
		// refused unmount), which is often the cause.
		slog.Warn("session did not end cleanly", "tool", t.name, "err", stopErr, "workload_err", bodyErr)
		for _, w := range wls {
			r.note(t.name, w, "session end: "+firstLine(stopErr.Error()))
		}
	}
}

// durable records, as workload wl, the rate up to the moment n objects of size bytes are complete under prefix
// in S3, counted from start. writeErr is the error of the writes themselves; it fails the row without waiting.
func (r *runner) durable(ctx context.Context, tool, wl, bucket, prefix string, n int, size int64, start time.Time,
	writeErr error, rate func(time.Duration) float64) error {
	if writeErr != nil {
		r.record(tool, wl, 0, fmt.Errorf("writes failed: %w", writeErr))
		return writeErr
	}
	wctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
	defer cancel()
	at, err := r.e.raw.waitPrefix(wctx, bucket, prefix, n, size)
	r.record(tool, wl, rate(at.Sub(start)), err)
	return err
}

// firstLine cuts s at its first newline.
func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// mountRep runs one repetition of the file workloads through one mount tool, each in its own session.
func (r *runner) mountRep(ctx context.Context, t mountTool, bucket string, rep int) {
	o := r.o
	key := fmt.Sprintf("seq-%d.bin", rep)
	r.prog.step(t.name, "seq-write", rep)
	r.inSession(ctx, t, bucket, []string{"seq-write", "seq-write-durable"}, false, func(mp string, s *session) error {
		start := time.Now()
		err := writeFile(filepath.Join(mp, key), o.Size)
		closed := time.Now()
		r.record(t.name, "seq-write", mibps(o.Size, closed.Sub(start)), err)
		if err != nil {
			r.record(t.name, "seq-write-durable", 0, fmt.Errorf("write failed: %w", err))
			return err
		}
		wctx, cancel := context.WithTimeout(ctx, o.Timeout)
		defer cancel()
		done, err := r.e.raw.waitComplete(wctx, bucket, key, o.Size)
		r.record(t.name, "seq-write-durable", mibps(o.Size, done.Sub(start)), err)
		return err
	})
	r.cleanup(ctx, bucket, key)

	r.prog.step(t.name, "cold-read", rep)
	r.inSession(ctx, t, bucket, []string{"cold-read", "warm-read"}, true, func(mp string, s *session) error {
		path := filepath.Join(mp, "read.bin")
		d, err := timeIt(func() error { return readFile(path, o.Size) })
		r.record(t.name, "cold-read", mibps(o.Size, d), err)
		d, err2 := timeIt(func() error { return readFile(path, o.Size) })
		r.record(t.name, "warm-read", mibps(o.Size, d), err2)
		return errors.Join(err, err2)
	})

	r.prog.step(t.name, "par-write", rep)
	par := fmt.Sprintf("par-%d", rep)
	parBytes := o.ParSize * int64(o.ParWriters)
	r.inSession(ctx, t, bucket, []string{"par-write", "par-write-durable"}, false, func(mp string, s *session) error {
		dir := filepath.Join(mp, par)
		if err := os.Mkdir(dir, 0o755); err != nil {
			r.record(t.name, "par-write", 0, err)
			r.record(t.name, "par-write-durable", 0, err)
			return err
		}
		start := time.Now()
		err := parallelWrite(dir, o.ParWriters, o.ParSize)
		r.record(t.name, "par-write", mibps(parBytes, time.Since(start)), err)
		return r.durable(ctx, t.name, "par-write-durable", bucket, par+"/", o.ParWriters, o.ParSize, start, err,
			func(d time.Duration) float64 { return mibps(parBytes, d) })
	})
	r.cleanup(ctx, bucket, par+"/", par)

	r.prog.step(t.name, "create-small", rep)
	small := fmt.Sprintf("small-%d", rep)
	r.inSession(ctx, t, bucket, []string{"create-small", "create-small-durable"}, false, func(mp string, s *session) error {
		dir := filepath.Join(mp, small)
		if err := os.Mkdir(dir, 0o755); err != nil {
			r.record(t.name, "create-small", 0, err)
			r.record(t.name, "create-small-durable", 0, err)
			return err
		}
		start := time.Now()
		err := createSmall(dir, o.Files, o.FileSize)
		r.record(t.name, "create-small", perSecond(o.Files, time.Since(start)), err)
		return r.durable(ctx, t.name, "create-small-durable", bucket, small+"/", o.Files, o.FileSize, start, err,
			func(d time.Duration) float64 { return perSecond(o.Files, d) })
	})
	r.cleanup(ctx, bucket, small+"/", small)

	r.prog.step(t.name, "ls-l-cold", rep)
	r.inSession(ctx, t, bucket, []string{"ls-l-cold"}, true, func(mp string, s *session) error {
		d, err := timeIt(func() error { return lsLong(filepath.Join(mp, "lsdir"), o.Files) })
		r.record(t.name, "ls-l-cold", perSecond(o.Files, d), err)
		return err
	})
}
