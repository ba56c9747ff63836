package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// healthTimeout bounds how long /healthz waits for the stat of the mount's root.
const healthTimeout = 5 * time.Second

// Mount states as /healthz reports them.
const (
	stateStarting int32 = iota // checking S3 and mounting: 503
	stateServing               // mounted: 200 while a stat of the root answers in time
	stateStopping              // a signal asked for the unmount (the mount may be detached): 503
)

// mountHealth answers /healthz for a mount: 200 "ok" while a stat of the mount's root returns without error
// within the timeout, 503 with the reason otherwise (not mounted yet, stopping, stat failed, stat hung).
//
// A stat that hangs (a stuck FUSE server) cannot be cancelled; at most one runs at a time, and requests that
// arrive while it runs wait for that same stat (up to their own timeout) instead of piling up goroutines
// blocked in the kernel. The kernel may answer the stat from its attribute cache (for the mount's stat TTL),
// so a stuck daemon shows as unhealthy at most one TTL after it stopped answering.
type mountHealth struct {
	dir     string
	timeout time.Duration
	stat    func(string) error // os.Stat in production; a test injects failures and hangs
	log     *slog.Logger
	state   atomic.Int32

	mu      sync.Mutex
	pending *probe // the stat running now, nil when none; guarded by mu
}

// probe is one stat of the root; err is valid once done is closed.
type probe struct {
	done chan struct{}
	err  error
}

func newMountHealth(dir string, log *slog.Logger) *mountHealth {
	return &mountHealth{dir: dir, timeout: healthTimeout, log: log,
		stat: func(p string) error { _, err := os.Stat(p); return err }}
}

// setState records the mount's life-cycle state (stateStarting, stateServing, stateStopping).
// A nil h (no --metrics-addr) ignores it.
func (h *mountHealth) setState(s int32) {
	if h != nil {
		h.state.Store(s)
	}
}

// check stats the root, joining a stat already running, and returns nil when it succeeded within the timeout.
func (h *mountHealth) check(ctx context.Context) error {
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
			p.err = h.stat(h.dir)
			h.mu.Lock()
			h.pending = nil
			h.mu.Unlock()
			close(p.done)
		}()
	}
	h.mu.Unlock()
	t := time.NewTimer(h.timeout)
	defer t.Stop()
	select {
	case <-p.done:
		if p.err != nil {
			return fmt.Errorf("stat of the mount root failed: %w", p.err)
		}
		return nil
	case <-t.C:
		return fmt.Errorf("stat of the mount root did not answer within %v", h.timeout)
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
	if err := h.check(r.Context()); err != nil {
		if h.state.Load() == stateServing && r.Context().Err() == nil {
			h.log.Warn("health check failed", "mountpoint", h.dir, "err", err)
		}
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, "ok")
}
