package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// healthTimeout bounds how long /healthz waits for the statfs of the mount's root.
const healthTimeout = 5 * time.Second

// Mount states as /healthz reports them.
const (
	stateStarting int32 = iota // checking S3 and mounting: 503
	stateServing               // mounted: 200 while a stat of the root answers in time
	stateStopping              // a signal asked for the unmount (the mount may be detached): 503
)

// mountHealth probes the daemon's own mount: a statfs(2) of the mount's root that must return without error
// within a timeout. It answers /healthz (200 "ok", or 503 with the reason: not mounted yet, stopping, statfs
// failed, statfs hung) and gates the systemd watchdog's pings (watchdog.go, which explains the choice of statfs:
// it always reaches the daemon, unlike a stat the kernel may answer from its attribute cache, and the root's
// Statfs never calls S3).
//
// A statfs that hangs (a stuck FUSE server) cannot be cancelled; at most one runs at a time, and probes that
// arrive while it runs wait for that same call (up to their own timeout) instead of piling up threads blocked
// in the kernel.
type mountHealth struct {
	dir     string
	timeout time.Duration      // of a /healthz request
	statfs  func(string) error // syscall.Statfs in production; a test injects failures and hangs
	log     *slog.Logger
	state   atomic.Int32

	mu      sync.Mutex
	pending *probe // the statfs running now, nil when none; guarded by mu
}

// probe is one statfs of the root; err is valid once done is closed.
type probe struct {
	done chan struct{}
	err  error
}

func newMountHealth(dir string, log *slog.Logger) *mountHealth {
	return &mountHealth{dir: dir, timeout: healthTimeout, log: log,
		statfs: func(p string) error { var st syscall.Statfs_t; return syscall.Statfs(p, &st) }}
}

// setState records the mount's life-cycle state (stateStarting, stateServing, stateStopping).
func (h *mountHealth) setState(s int32) { h.state.Store(s) }

// check runs a statfs of the root, joining one already running, and returns nil when it succeeded within
// timeout; otherwise an error naming the cause. It never calls statfs before the mount is up or once it stops.
func (h *mountHealth) check(ctx context.Context, timeout time.Duration) error {
	switch h.state.Load() {
	case stateStarting:
		return errors.New("not mounted yet")
	case stateStopping:
		return errors.New("unmounting")
	}
	h.mu.Lock()
	p := h.pending
	if p == nil {
		p = &probe{done: make(chan struct{})}
		h.pending = p
		go func() {
			p.err = h.statfs(h.dir)
			h.mu.Lock()
			h.pending = nil
			h.mu.Unlock()
			close(p.done)
		}()
	}
	h.mu.Unlock()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		if p.err != nil {
			return fmt.Errorf("statfs of the mount root failed: %w", p.err)
		}
		return nil
	case <-t.C:
		return fmt.Errorf("statfs of the mount root did not answer within %v", timeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ServeHTTP implements http.Handler for GET and HEAD.
func (h *mountHealth) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	if err := h.check(r.Context(), h.timeout); err != nil {
		if h.state.Load() == stateServing && r.Context().Err() == nil {
			h.log.Warn("health check failed", "mountpoint", h.dir, "err", err)
		}
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, "ok")
}
