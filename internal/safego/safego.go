package safego

import (
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync/atomic"
)

// Panics counts the panics recovered in the goroutines of one component (a mount, an FTP server) and recovers
// them. The zero value is ready to use; a nil *Panics recovers and logs but counts nothing. It is safe for
// concurrent use.
type Panics struct {
	n atomic.Int64
}

// Count returns how many panics were recovered so far (0 for nil).
func (p *Panics) Count() int64 {
	if p == nil {
		return 0
	}
	return p.n.Load()
}

// PanicError is a recovered panic, returned by Call as the error of the work that panicked.
type PanicError struct {
	What  string // what panicked, as given to Call ("upload part", "cache: prefetch stream", ...)
	Value any    // the value passed to panic
	Stack []byte // the panicking goroutine's stack at the panic
}

// Error returns "<what>: panic: <value>". The stack is left out: it was logged once when the panic was
// recovered.
func (e *PanicError) Error() string { return fmt.Sprintf("%s: panic: %v", e.What, e.Value) }

// Call runs fn and returns its error. If fn panics, Call recovers, logs one ERROR line on log (nil:
// slog.Default()) naming what, with the panic value and the stack, counts the panic, and returns a
// *PanicError instead. fn's deferred calls have run by then.
func (p *Panics) Call(log *slog.Logger, what string, fn func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = p.Recovered(log, what, v)
		}
	}()
	return fn()
}

// Go runs fn in a new goroutine under Call's recovery: a panic is logged and counted, and the goroutine ends.
// Use it for goroutines whose failure has no owner to report to; otherwise run the work through Call in the
// goroutine and hand the error to its owner.
func (p *Panics) Go(log *slog.Logger, what string, fn func()) {
	go func() {
		// The only error is a panic, logged and counted by Call.
		_ = p.Call(log, what, func() error { fn(); return nil })
	}()
}

// Recovered logs and counts a panic that a recover elsewhere caught (go-fuse's PanicHandler, a session's
// deferred recover) and returns it as a *PanicError. Call it from the deferred function that recovered, so
// that the logged stack is the panicking goroutine's.
func (p *Panics) Recovered(log *slog.Logger, what string, v any) *PanicError {
	if log == nil {
		log = slog.Default()
	}
	e := &PanicError{What: what, Value: v, Stack: debug.Stack()}
	log.Error("panic recovered: "+what+" fails, the process keeps serving",
		"panic", fmt.Sprint(v), "stack", string(e.Stack))
	// Counted once logged, so that a count seen implies its log line was written.
	if p != nil {
		p.n.Add(1)
	}
	return e
}
