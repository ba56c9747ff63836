package logbuf

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Concurrent writers through one logger lose no record and interleave none, while a reader takes snapshots
// (run with -race: the reader and the writers share the Buffer).
func TestConcurrentWritersAndReader(t *testing.T) {
	const writers, each = 8, 200
	log, buf := New(nil)
	done := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			select {
			case <-done:
				return
			default:
				for _, l := range buf.Lines() {
					if !strings.HasPrefix(l, "time=") {
						t.Errorf("torn line seen while writing: %q", l)
						return
					}
				}
			}
		}
	}()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				log.Info("record", "writer", w, "i", i)
			}
		})
	}
	wg.Wait()
	close(done)
	<-readerDone

	lines := buf.Lines()
	if len(lines) != writers*each {
		t.Fatalf("%d lines, want %d", len(lines), writers*each)
	}
	seen := make(map[string]bool)
	for _, l := range lines {
		if !strings.HasPrefix(l, "time=") || !strings.Contains(l, "level=INFO msg=record writer=") {
			t.Fatalf("malformed line %q", l)
		}
		seen[l[strings.Index(l, "writer="):]] = true
	}
	for w := range writers {
		for i := range each {
			if k := fmt.Sprintf("writer=%d i=%d", w, i); !seen[k] {
				t.Fatalf("record %q missing", k)
			}
		}
	}
}

// New honours the handler options: nil logs Info and up, a level option lowers or raises it.
func TestNewLevels(t *testing.T) {
	log, buf := New(nil)
	log.Debug("hidden")
	log.Info("shown")
	if got := buf.Lines(); len(got) != 1 || !strings.Contains(got[0], "msg=shown") {
		t.Errorf("nil options: lines %q, want the Info line only", got)
	}
	log, buf = New(&slog.HandlerOptions{Level: slog.LevelDebug})
	log.Debug("debug")
	if got := buf.Matching("level=DEBUG"); len(got) != 1 {
		t.Errorf("Debug level: %q, want one DEBUG line", got)
	}
}

// Lines drops empty lines and the final newline; Matching keeps only the lines with the substring; both are
// nil over an empty Buffer.
func TestLinesAndMatching(t *testing.T) {
	var b Buffer
	if b.Lines() != nil || b.Matching("x") != nil || b.String() != "" {
		t.Fatalf("empty Buffer: Lines %q, Matching %q, String %q", b.Lines(), b.Matching("x"), b.String())
	}
	fmt.Fprint(&b, "alpha one\n\nbeta\n")
	fmt.Fprint(&b, "alpha two") // no newline yet
	if got, want := b.Lines(), []string{"alpha one", "beta", "alpha two"}; !slices.Equal(got, want) {
		t.Errorf("Lines = %q, want %q", got, want)
	}
	if got, want := b.Matching("alpha"), []string{"alpha one", "alpha two"}; !slices.Equal(got, want) {
		t.Errorf("Matching(alpha) = %q, want %q", got, want)
	}
	if got := b.Matching("gamma"); got != nil {
		t.Errorf("Matching(gamma) = %q, want nil", got)
	}
	if got, want := b.String(), "alpha one\n\nbeta\nalpha two"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
}
