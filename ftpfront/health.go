package ftpfront

// Health check.
//
// HealthHandler answers 200 only when the served root can be listed and a probe file can be created, written,
// closed, read back and deleted under it. On s3mount that is a LIST, a PUT (the upload completes at close, where
// s3mount reports upload errors), a GET and a DELETE per check: poll at an interval that fits the S3 bill. The
// probe runs in its own goroutine; a request waits at most the timeout and then answers 503, so a hung mount makes
// the check fail instead of hang. At most one probe runs at a time: requests arriving while one is running wait
// for that probe instead of starting another, so a mount that hangs forever costs one stuck goroutine, not one
// per request. Probe files are named ".s3ftp-healthz-*"; one may be left behind if the process dies mid-probe.
//
// With a MountGuard (see fs_guard.go; HealthHandler builds one when root is a mount point at the time the handler
// is built, the s3mount in production), the check fails before probing while root is not a mount point: the file
// system was unmounted (s3mount removes its mount when its daemon dies) and root is now the local directory
// beneath it, where uploads would land on local disk. It passes again once something is mounted there again (a
// restarted s3mount). The FTP sessions refuse file operations by the same check.

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/s3ftp/s3ftp/internal/safego"
)

// uncounted recovers the panics of goroutines that belong to no Server (the health probe, the audit log
// writer): they are logged with their stack, not counted in Server.Panics.
var uncounted *safego.Panics

// defaultHealthTimeout is used when HealthHandler gets a non-positive timeout.
const defaultHealthTimeout = 5 * time.Second

// errProbeTimeout is the reason given when the probe did not finish within the timeout.
var errProbeTimeout = errors.New("probe timed out (mount hung?)")

// HealthHandler returns an http.Handler (meant for /healthz) that answers GET and HEAD with 200 "ok" when root is
// readable and writable, and 503 with a short reason otherwise (see the section comment above for the probe).
// Other methods get 405. A non-positive timeout means defaultHealthTimeout. It guards root as RequireMountAuto
// does: when root is a mount point now, the check fails while it is not; NewHealthHandler takes a guard instead.
func HealthHandler(root string, timeout time.Duration) http.Handler {
	g, err := NewMountGuard(root, RequireMountAuto, nil)
	if err != nil {
		g = nil // root cannot be examined now; the probe reports why
	}
	return NewHealthHandler(root, timeout, g)
}

// NewHealthHandler is HealthHandler with the mount guard of the FTP sessions: the check fails, before probing,
// whenever g refuses file operations. A nil g probes root as it is.
func NewHealthHandler(root string, timeout time.Duration, g *MountGuard) http.Handler {
	if g == nil {
		return newHealthHandler(root, timeout, probeRoot)
	}
	return newHealthHandler(root, timeout, func(root string) error {
		if err := g.Check(); err != nil {
			return err
		}
		return probeRoot(root)
	})
}

// healthHandler is HealthHandler's implementation; probe is injectable for tests.
type healthHandler struct {
	root    string
	timeout time.Duration
	probe   func(root string) error
	log     *slog.Logger

	mu      sync.Mutex
	running *healthProbe // guarded by mu; the probe in flight, nil when none
}

// healthProbe is one probe run; err is valid once done is closed.
type healthProbe struct {
	done chan struct{}
	err  error
}

// newHealthHandler builds a health handler with the given probe.
func newHealthHandler(root string, timeout time.Duration, probe func(string) error) *healthHandler {
	if timeout <= 0 {
		timeout = defaultHealthTimeout
	}
	return &healthHandler{root: root, timeout: timeout, probe: probe, log: slog.Default()}
}

// ServeHTTP implements http.Handler.
func (h *healthHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	err := h.check(r)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err == nil {
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "ok\n")
		return
	}
	h.log.Warn("health: unhealthy", "root", h.root, "err", err)
	w.WriteHeader(http.StatusServiceUnavailable)
	io.WriteString(w, "unhealthy: "+shortReason(err)+"\n")
}

// check joins the running probe or starts one, and waits for it at most the timeout (or until the request ends).
func (h *healthHandler) check(r *http.Request) error {
	h.mu.Lock()
	p := h.running
	if p == nil {
		p = &healthProbe{done: make(chan struct{})}
		h.running = p
		go h.run(p)
	}
	h.mu.Unlock()
	t := time.NewTimer(h.timeout)
	defer t.Stop()
	select {
	case <-p.done:
		return p.err
	case <-t.C:
		return errProbeTimeout
	case <-r.Context().Done():
		return r.Context().Err()
	}
}

// run executes one probe and clears it from running. A panicking probe is logged with its stack and is a failed
// check (503); the next request runs a new probe.
func (h *healthHandler) run(p *healthProbe) {
	p.err = uncounted.Call(h.log, "ftpfront: health probe", func() error { return h.probe(h.root) })
	h.mu.Lock()
	h.running = nil
	h.mu.Unlock()
	close(p.done)
}

// probeRoot checks that root is a directory that can be listed, and that a file can be created, written, closed,
// read back and deleted in it.
func probeRoot(root string) error {
	fi, err := os.Stat(root)
	if err != nil {
		return fmt.Errorf("root: %w", err)
	}
	if !fi.IsDir() {
		return errors.New("root is not a directory")
	}
	d, err := os.Open(root)
	if err != nil {
		return fmt.Errorf("not readable: %w", err)
	}
	_, err = d.ReadDir(1)
	d.Close()
	if err != nil && err != io.EOF {
		return fmt.Errorf("not readable: %w", err)
	}

	f, err := os.CreateTemp(root, ".s3ftp-healthz-*")
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
		got, rerr = os.ReadFile(name)
		if rerr == nil && !bytes.Equal(got, payload) {
			rerr = errors.New("probe file read back different content")
		}
	}
	derr := os.Remove(name)
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
