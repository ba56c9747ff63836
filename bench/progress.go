package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// progress prints one status line while the run goes on: rewritten in place on a terminal, one line per step
// otherwise (CI logs).
type progress struct {
	w     io.Writer
	tty   bool
	start time.Time

	mu    sync.Mutex // guards the fields below
	total int
	done  int
	width int
}

// newProgress writes to f, in place when f is a terminal.
func newProgress(f *os.File) *progress {
	st, err := f.Stat()
	tty := err == nil && st.Mode()&os.ModeCharDevice != 0
	return &progress{w: f, tty: tty, start: time.Now()}
}

// setTotal sets the number of steps the run will announce.
func (p *progress) setTotal(n int) {
	p.mu.Lock()
	p.total = n
	p.mu.Unlock()
}

// step announces the next step; rep 0 means a step outside the repetitions.
func (p *progress) step(tool, what string, rep int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done++
	line := fmt.Sprintf("[%d/%d %s] %s: %s", p.done, p.total, time.Since(p.start).Round(time.Second), tool, what)
	if rep > 0 {
		line += fmt.Sprintf(" (repetition %d)", rep)
	}
	p.print(line)
}

// skip counts steps that will not run.
func (p *progress) skip(n int) {
	p.mu.Lock()
	p.done += n
	p.mu.Unlock()
}

// print shows line; the caller holds p.mu.
func (p *progress) print(line string) {
	if !p.tty {
		fmt.Fprintln(p.w, line)
		return
	}
	pad := max(0, p.width-len(line))
	fmt.Fprintf(p.w, "\r%s%*s", line, pad, "")
	p.width = len(line)
}

// finish clears the in-place line.
func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.width > 0 {
		fmt.Fprintf(p.w, "\r%*s\r", p.width, "")
	}
	fmt.Fprintf(p.w, "bench finished in %s\n", time.Since(p.start).Round(time.Second))
}
