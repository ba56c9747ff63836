package safego

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/s3ftp/s3ftp/internal/logbuf"
)

func panicsHere() { panic("boom in panicsHere") }

// Call returns fn's own error untouched and neither logs nor counts it.
func TestCallPassesErrorsThrough(t *testing.T) {
	log, buf := logbuf.New(nil)
	var p Panics
	want := errors.New("plain failure")
	if err := p.Call(log, "work", func() error { return want }); err != want {
		t.Fatalf("Call = %v, want fn's error", err)
	}
	if err := p.Call(log, "work", func() error { return nil }); err != nil {
		t.Fatalf("Call = %v, want nil", err)
	}
	if p.Count() != 0 || strings.TrimSpace(buf.String()) != "" {
		t.Fatalf("count %d, log %q after calls that did not panic", p.Count(), buf.String())
	}
}

// A panic in Call becomes a *PanicError naming what panicked, is counted once and logged as one ERROR line
// with the value and the panicking function's stack; fn's defers have run.
func TestCallRecoversPanic(t *testing.T) {
	log, buf := logbuf.New(nil)
	var p Panics
	deferred := false
	err := p.Call(log, "upload part", func() error {
		defer func() { deferred = true }()
		panicsHere()
		return nil
	})
	var pe *PanicError
	if !errors.As(err, &pe) {
		t.Fatalf("Call = %v (%T), want a *PanicError", err, err)
	}
	if pe.What != "upload part" || pe.Value != "boom in panicsHere" || !strings.Contains(string(pe.Stack), "panicsHere") {
		t.Errorf("PanicError = %q %v, stack has panicsHere: %v", pe.What, pe.Value, strings.Contains(string(pe.Stack), "panicsHere"))
	}
	if got := err.Error(); got != "upload part: panic: boom in panicsHere" {
		t.Errorf("Error() = %q", got)
	}
	if !deferred {
		t.Error("fn's deferred call did not run")
	}
	if p.Count() != 1 {
		t.Errorf("Count = %d, want 1", p.Count())
	}
	lines := buf.Lines()
	if len(lines) != 1 {
		t.Fatalf("%d log lines, want 1: %q", len(lines), lines)
	}
	for _, want := range []string{"level=ERROR", "upload part", "panic=\"boom in panicsHere\"", "stack=", "safego.panicsHere"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("log line lacks %q: %s", want, lines[0])
		}
	}
}

// A PanicError does not unwrap to the panic value: a panic carrying context.Canceled must not pass for a
// cancellation.
func TestPanicErrorDoesNotUnwrap(t *testing.T) {
	var p Panics
	err := p.Call(slog.New(slog.DiscardHandler), "work", func() error { panic(context.Canceled) })
	if errors.Is(err, context.Canceled) {
		t.Fatalf("errors.Is(%v, context.Canceled) = true, want false", err)
	}
}

// Go recovers a panic of its goroutine (the test binary would die otherwise), logs and counts it.
func TestGoRecoversPanic(t *testing.T) {
	log, buf := logbuf.New(nil)
	var p Panics
	done := make(chan struct{})
	p.Go(log, "abort retries", func() {
		defer close(done)
		panic("boom in a goroutine")
	})
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("goroutine did not run")
	}
	// The deferred close runs before Call's recovery: wait for the count, which follows the log line.
	for deadline := time.Now().Add(time.Minute); p.Count() == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if p.Count() != 1 {
		t.Fatalf("Count = %d, want 1", p.Count())
	}
	if l := buf.Lines(); len(l) != 1 || !strings.Contains(l[0], "abort retries") || !strings.Contains(l[0], "boom in a goroutine") {
		t.Fatalf("log = %q, want one line naming the goroutine and the panic", l)
	}
}

// A nil *Panics recovers and logs but counts nothing; a nil logger means slog.Default().
func TestNilPanicsAndLogger(t *testing.T) {
	var p *Panics
	err := p.Call(slog.New(slog.DiscardHandler), "work", func() error { panic("x") })
	if _, ok := err.(*PanicError); !ok || p.Count() != 0 {
		t.Fatalf("nil Panics: Call = %v, Count = %d", err, p.Count())
	}
	prev := slog.Default()
	log, buf := logbuf.New(nil)
	slog.SetDefault(log)
	defer slog.SetDefault(prev)
	var q Panics
	_ = q.Call(nil, "default logger", func() error { panic("y") })
	if l := buf.Lines(); len(l) != 1 || !strings.Contains(l[0], "default logger") {
		t.Fatalf("nil logger: default log = %q", l)
	}
}

// BenchmarkCall measures what Call adds to a call that does not panic (a defer and a closure): the cost paid
// once per part upload, block fetch or stream.
func BenchmarkCall(b *testing.B) {
	var p Panics
	log := slog.New(slog.DiscardHandler)
	n := 0
	for b.Loop() {
		_ = p.Call(log, "bench", func() error { n++; return nil })
	}
}
