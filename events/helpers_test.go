package events

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/s3ftp/s3ftp/ftpfront"
)

// fakeSink counts attempts, fails the first failFirst of them (or all with failAll), and keeps the bodies it
// accepted.
type fakeSink struct {
	mu        sync.Mutex
	failFirst int
	failAll   bool
	attempts  int
	accepted  [][]byte
	got       chan []byte
}

func newFakeSink(failFirst int) *fakeSink {
	return &fakeSink{failFirst: failFirst, got: make(chan []byte, 100)}
}

func (f *fakeSink) Deliver(_ context.Context, body []byte, _ *Record) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attempts++
	if f.failAll || f.attempts <= f.failFirst {
		return errors.New("fake refusal")
	}
	b := append([]byte(nil), body...)
	f.accepted = append(f.accepted, b)
	f.got <- b
	return nil
}

func (f *fakeSink) counts() (attempts, accepted int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.attempts, len(f.accepted)
}

// logBuffer is a slog handler target safe for concurrent writes.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func testOptions(t *testing.T, dir string, logs *logBuffer, sinks ...SinkConfig) Options {
	var w interface{ Write([]byte) (int, error) } = testLogWriter{t}
	if logs != nil {
		w = logs
	}
	return Options{
		Dir: dir, Sinks: sinks, MaxAttempts: 5, Backoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(w, nil)),
	}
}

type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func mustOpen(t *testing.T, o Options) *Events {
	t.Helper()
	ev, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ev.Close() })
	return ev
}

func upload(user, p string, size int64) ftpfront.Event {
	return ftpfront.Event{Time: time.Now(), Session: "s1", Protocol: "ftps", Event: "upload", User: user, IP: "192.0.2.7",
		Path: p, Bytes: size, Duration: 1500 * time.Millisecond, Result: "ok"}
}

// journalLines returns the lines of the journal in dir.
func journalLines(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, journalName))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.TrimSuffix(string(b), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// receive waits for one body from c.
func receive(t *testing.T, c <-chan []byte) []byte {
	t.Helper()
	select {
	case b := <-c:
		return b
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery within 10s")
		return nil
	}
}

// eventually polls cond for up to 10s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("not within 10s: %s", what)
}
