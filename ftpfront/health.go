package ftpfront

// Health check.
//
// HealthHandler answers from the result of the last probe. A probe checks that the served root can be listed and
// that a probe file can be created, written, closed, read back and deleted under the reserved directory HealthDir
// at the root. On s3mount that is a LIST, a PUT (the upload completes at close, where s3mount reports upload
// errors), a GET and a DELETE per probe.
//
// Probe rate: a result younger than the interval (HealthOptions.Interval, ftpfront --health-interval, default
// DefaultHealthInterval) is answered as it is, without touching the root, however many requests arrive: a
// load balancer checking every target from three zones every 5 s still costs one probe per interval. The first
// request that finds the result older than the interval starts a probe and, with every request arriving while it
// runs, waits for it; so a root that starts failing answers 503 at most one interval (plus the probe's own time)
// after the last good probe. Every answer tells how old its result is: an "Age" header in whole seconds and a
// second body line ("probed 1.234s ago").
//
// Timeout: the probe runs in its own goroutine; a request waits at most until that probe has run for the timeout
// and then answers 503, so a hung mount makes the check fail instead of hang. At most one probe runs at a time,
// so a mount that hangs forever costs one stuck goroutine, not one per request; once the probe has run past the
// timeout, requests answer 503 at once until it returns.
//
// The reserved directory: probe files live in HealthDir (".s3ftp-health") at the served root, created on the
// first probe. JailFs hides that name at the top of every home: FTP users never see it in a listing and every
// command on a path inside it fails as if it did not exist; LoadUsers refuses homes inside it. So a probe never
// shows up in a user's listing, audit record or upload event (probes do not go through an FTP session at all).
// A probe file may be left there when the process dies mid-probe.
//
// With a MountGuard (see fs_guard.go; HealthHandler builds one when root is a mount point at the time the handler
// is built, the s3mount in production), every request checks the guard first (two stat calls, no S3 request) and
// fails at once while root is not a mount point: the file system was unmounted (s3mount removes its mount when
// its daemon dies) and root is now the local directory beneath it, where uploads would land on local disk. A
// failed guard check also drops the last probe result, so once something is mounted there again (a restarted
// s3mount) the next request probes afresh. The FTP sessions refuse file operations by the same check.

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/s3ftp/s3ftp/internal/safego"
	"github.com/spf13/afero"
)

// HealthDir is the reserved directory at the served root that holds the health probe's files. JailFs hides this
// name at the top of every home (see JailFs), and LoadUsers refuses homes inside it.
const HealthDir = ".s3ftp-health"

// uncounted recovers the panics of goroutines that belong to no Server (the health probe, the audit log
// writer): they are logged with their stack, not counted in Server.Panics.
var uncounted *safego.Panics

// defaultHealthTimeout is used when the timeout is not positive.
const defaultHealthTimeout = 5 * time.Second

// DefaultHealthInterval is the probe interval used when HealthOptions.Interval is not positive.
const DefaultHealthInterval = 10 * time.Second

// errProbeTimeout is the reason given when the probe did not finish within the timeout.
var errProbeTimeout = errors.New("probe timed out (mount hung?)")

// HealthOptions configure NewHealthHandler.
type HealthOptions struct {
	// Timeout bounds how long a request waits for a probe; a probe running longer answers 503. Not positive:
	// 5 s.
	Timeout time.Duration
	// Interval is how long a probe result is answered without probing again. Not positive: DefaultHealthInterval.
	Interval time.Duration
	// Guard, when not nil, is checked on every request before the result is looked at (see the section comment).
	Guard *MountGuard
	// Log receives a warning for each unhealthy answer; nil means slog.Default().
	Log *slog.Logger
}

// HealthHandler returns an http.Handler (meant for /healthz) that answers GET and HEAD with 200 "ok" when root is
// readable and writable, and 503 with a short reason otherwise (see the section comment above for the probe and
// its rate). Other methods get 405. A non-positive timeout means 5 s; the interval is DefaultHealthInterval. It
// guards root as RequireMountAuto does: when root is a mount point now, the check fails while it is not;
// NewHealthHandler takes a guard and an interval instead.
func HealthHandler(root string, timeout time.Duration) http.Handler {
	g, err := NewMountGuard(root, RequireMountAuto, nil)
	if err != nil {
		g = nil // root cannot be examined now; the probe reports why
	}
	return NewHealthHandler(root, HealthOptions{Timeout: timeout, Guard: g})
}

// NewHealthHandler is HealthHandler with explicit options, normally the mount guard of the FTP sessions: the check
// fails, before looking at any probe result, whenever o.Guard refuses file operations. A nil guard probes root as
// it is.
func NewHealthHandler(root string, o HealthOptions) http.Handler {
	return newHealthHandler(root, o, osProbe)
}

// osProbe probes root on the local file system.
func osProbe(root string) error { return probeRoot(afero.NewOsFs(), root) }

// healthHandler is HealthHandler's implementation; probe is injectable for tests.
type healthHandler struct {
	root     string
	timeout  time.Duration
	interval time.Duration
	guard    *MountGuard
	probe    func(root string) error
	log      *slog.Logger
	now      func() time.Time

	mu      sync.Mutex
	running *healthProbe // guarded by mu; the probe in flight, nil when none
	last    *healthProbe // guarded by mu; the last finished probe, nil when none or dropped
}

// healthProbe is one probe run; err and ended are valid once done is closed.
type healthProbe struct {
	started time.Time
	done    chan struct{}
	err     error
	ended   time.Time
}

// newHealthHandler builds a health handler with the given probe. The guard, when set, is also checked inside the
// probe, right before it writes, so a probe never writes into the directory under an unmounted root.
func newHealthHandler(root string, o HealthOptions, probe func(string) error) *healthHandler {
	if o.Timeout <= 0 {
		o.Timeout = defaultHealthTimeout
	}
	if o.Interval <= 0 {
		o.Interval = DefaultHealthInterval
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	h := &healthHandler{root: root, timeout: o.Timeout, interval: o.Interval, guard: o.Guard, probe: probe, log: o.Log, now: time.Now}
	if g := o.Guard; g != nil {
		h.probe = func(root string) error {
			if err := g.Check(); err != nil {
				return err
			}
			return probe(root)
		}
	}
	return h
}

// ServeHTTP implements http.Handler.
func (h *healthHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	age, err := h.check(r)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Age", strconv.FormatInt(int64(age/time.Second), 10))
	when := "probed " + age.Round(time.Millisecond).String() + " ago"
	if errors.Is(err, errProbeTimeout) {
		when = "probe running for " + age.Round(time.Millisecond).String()
	}
	if err == nil {
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "ok\n"+when+"\n")
		return
	}
	h.log.Warn("health: unhealthy", "root", h.root, "err", err, "age", age)
	w.WriteHeader(http.StatusServiceUnavailable)
	io.WriteString(w, "unhealthy: "+shortReason(err)+"\n"+when+"\n")
}

// check returns the age of the result to answer and the result. A failing guard is answered at once (age 0) and drops the last
// result. A result younger than the interval is answered as it is. Otherwise the request joins the running probe
// or starts one, and waits for it until the probe has run for the timeout (errProbeTimeout, with the time it has
// run as the age) or the request ends.
func (h *healthHandler) check(r *http.Request) (time.Duration, error) {
	if err := h.guard.Check(); err != nil {
		h.mu.Lock()
		h.last = nil
		h.mu.Unlock()
		return 0, err
	}
	now := h.now()
	h.mu.Lock()
	if l := h.last; l != nil && now.Sub(l.ended) < h.interval {
		h.mu.Unlock()
		return now.Sub(l.ended), l.err
	}
	p := h.running
	if p == nil {
		p = &healthProbe{started: now, done: make(chan struct{})}
		h.running = p
		go h.run(p)
	}
	h.mu.Unlock()
	t := time.NewTimer(p.started.Add(h.timeout).Sub(now))
	defer t.Stop()
	select {
	case <-p.done:
		return max(h.now().Sub(p.ended), 0), p.err
	case <-t.C:
		return h.now().Sub(p.started), errProbeTimeout
	case <-r.Context().Done():
		return 0, r.Context().Err()
	}
}

// run executes one probe, records it as the last result and clears it from running. A panicking probe is logged
// with its stack and is a failed result (503).
func (h *healthHandler) run(p *healthProbe) {
	p.err = uncounted.Call(h.log, "ftpfront: health probe", func() error { return h.probe(h.root) })
	p.ended = h.now()
	h.mu.Lock()
	h.running = nil
	h.last = p
	h.mu.Unlock()
	close(p.done)
}

// probeRoot checks, on fsys, that root is a directory that can be listed, and that a file can be created,
// written, closed, read back and deleted in root's HealthDir (created when missing).
func probeRoot(fsys afero.Fs, root string) error {
	fi, err := fsys.Stat(root)
	if err != nil {
		return fmt.Errorf("root: %w", err)
	}
	if !fi.IsDir() {
		return errors.New("root is not a directory")
	}
	d, err := fsys.Open(root)
	if err != nil {
		return fmt.Errorf("not readable: %w", err)
	}
	_, err = d.Readdirnames(1)
	d.Close()
	if err != nil && err != io.EOF {
		return fmt.Errorf("not readable: %w", err)
	}

	dir := filepath.Join(root, HealthDir)
	if err := fsys.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("not writable: %w", err)
	}
	f, err := afero.TempFile(fsys, dir, "probe-*")
	if err != nil {
		return fmt.Errorf("not writable: %w", err)
	}
	name := f.Name()
	payload := []byte(rand.Text() + "\n")
	_, werr := f.Write(payload)
	cerr := f.Close()
	var rerr error
	if werr == nil && cerr == nil {
		var got []byte
		got, rerr = afero.ReadFile(fsys, name)
		if rerr == nil && !bytes.Equal(got, payload) {
			rerr = errors.New("probe file read back different content")
		}
	}
	derr := fsys.Remove(name)
	switch {
	case werr != nil:
		return fmt.Errorf("not writable: %w", werr)
	case cerr != nil:
		return fmt.Errorf("not writable: close: %w", cerr)
	case rerr != nil:
		return fmt.Errorf("read back: %w", rerr)
	case derr != nil:
		return fmt.Errorf("cannot delete: %w", derr)
	}
	return nil
}

// shortReason renders err for the HTTP body without file names: "not writable: open: read-only file system".
func shortReason(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		s := err.Error()
		// Replace the PathError's "op path: err" with "op: err", keeping any prefix the probe added.
		full := pe.Error()
		if i := len(s) - len(full); i >= 0 && s[i:] == full {
			return s[:i] + pe.Op + ": " + pe.Err.Error()
		}
	}
	return err.Error()
}
