package main

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// fakeStat stands in for the statfs probe: it counts calls and returns err; while block is set a call waits
// until release is closed.
type fakeStat struct {
	calls   atomic.Int32
	release chan struct{}

	mu    sync.Mutex
	err   error // guarded by mu
	block bool  // guarded by mu
}

func (f *fakeStat) set(err error, block bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err, f.block = err, block
}

func (f *fakeStat) stat(string) error {
	f.calls.Add(1)
	f.mu.Lock()
	err, block := f.err, f.block
	f.mu.Unlock()
	if block {
		<-f.release
	}
	return err
}

func healthGet(h http.Handler, method string) (int, string) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, "/healthz", nil))
	return rec.Code, rec.Body.String()
}

// TestMountHealth: /healthz is 503 before the mount and once stopping, 200 while the root's statfs answers, 503
// naming the cause when the statfs fails or hangs, and a hung statfs is not repeated by later requests.
func TestMountHealth(t *testing.T) {
	f := &fakeStat{release: make(chan struct{})}
	h := newMountHealth("/mnt", slog.New(slog.DiscardHandler))
	h.statfs, h.timeout = f.stat, 20*time.Millisecond

	if code, body := healthGet(h, http.MethodGet); code != 503 || !strings.Contains(body, "not mounted") {
		t.Errorf("before the mount: %d %q", code, body)
	}
	if f.calls.Load() != 0 {
		t.Errorf("stat called %d times before the mount", f.calls.Load())
	}
	h.setState(stateServing)
	if code, body := healthGet(h, http.MethodGet); code != 200 || body != "ok\n" {
		t.Errorf("mounted, stat ok: %d %q", code, body)
	}
	if code, _ := healthGet(h, http.MethodPost); code != 405 {
		t.Errorf("POST: %d, want 405", code)
	}

	f.set(syscall.ENOTCONN, false)
	if code, body := healthGet(h, http.MethodGet); code != 503 || !strings.Contains(body, "not connected") {
		t.Errorf("stat fails: %d %q", code, body)
	}

	f.set(nil, true)
	before := f.calls.Load()
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if code, body := healthGet(h, http.MethodGet); code != 503 || !strings.Contains(body, "did not answer") {
				t.Errorf("stat hangs: %d %q", code, body)
			}
		})
	}
	wg.Wait()
	if n := f.calls.Load() - before; n != 1 {
		t.Errorf("%d stats started while one hung, want 1", n)
	}
	// Once the hung stat returns, the next request starts a new one and succeeds.
	f.set(nil, false)
	close(f.release)
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _ := healthGet(h, http.MethodGet)
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz still %d after the stat returned", code)
		}
		time.Sleep(5 * time.Millisecond)
	}

	h.setState(stateStopping)
	if code, body := healthGet(h, http.MethodGet); code != 503 || !strings.Contains(body, "unmounting") {
		t.Errorf("stopping: %d %q", code, body)
	}
}
