// Package logbuf is a log destination that tests read back: a Buffer collects what a slog handler (or a
// subprocess's stderr) writes, and the test asserts on its text or its lines.
//
// A Buffer is safe for concurrent use: any number of goroutines may Write while others call String, Lines or
// Matching. Every Write is appended whole, so a line written by one Write call is never interleaved with another
// writer's bytes. A reader sees a snapshot: the bytes of the Writes that returned before it took the lock.
// The zero Buffer is empty and ready for use; a Buffer must not be copied after first use.
package logbuf

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
)

// Buffer collects written bytes under a mutex. Its methods may be called from any number of goroutines.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer // guarded by mu
}

// New returns a logger that writes through a slog text handler with opts (nil: level Info and up) into a new
// Buffer, and that Buffer.
func New(opts *slog.HandlerOptions) (*slog.Logger, *Buffer) {
	b := &Buffer{}
	return slog.New(slog.NewTextHandler(b, opts)), b
}

// Write appends p whole. It never fails.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Lines returns the non-empty lines written so far, in order, without their newlines; nil when there are none.
func (b *Buffer) Lines() []string {
	var out []string
	for _, line := range strings.Split(b.String(), "\n") {
		if line != "" {
			out = append(out, line)
		}
	}
	return out
}

// Matching returns the non-empty lines written so far that contain substr, in order; nil when there are none.
func (b *Buffer) Matching(substr string) []string {
	var out []string
	for _, line := range b.Lines() {
		if strings.Contains(line, substr) {
			out = append(out, line)
		}
	}
	return out
}
