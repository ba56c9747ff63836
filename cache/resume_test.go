package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/s3ftp/s3ftp/internal/logbuf"
	"github.com/s3ftp/s3ftp/internal/safego"
	"github.com/s3ftp/s3ftp/s3client"
	"github.com/s3ftp/s3ftp/s3client/s3fake"
)

// fastResume shortens the resume backoff for one test, keeping its length (the bound).
func fastResume(t *testing.T) {
	t.Helper()
	old := resumeBackoff
	resumeBackoff = []time.Duration{time.Millisecond, 2 * time.Millisecond, 4 * time.Millisecond}
	t.Cleanup(func() { resumeBackoff = old })
}

// getCall is one GetObject request.
type getCall struct {
	off, length int64
	ifMatch     string
}

// getLog is a Getter that records every GetObject request.
type getLog struct {
	g     Getter
	mu    sync.Mutex
	calls []getCall
}

func (l *getLog) GetObject(ctx context.Context, key string, off, length int64, ifMatch string) (io.ReadCloser, s3client.ObjectInfo, error) {
	l.mu.Lock()
	l.calls = append(l.calls, getCall{off, length, ifMatch})
	l.mu.Unlock()
	return l.g.GetObject(ctx, key, off, length, ifMatch)
}

func (l *getLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var s []string
	for _, c := range l.calls {
		s = append(s, fmt.Sprintf("%d+%d", c.off, c.length))
	}
	return strings.Join(s, " ")
}

// resumeEnv is one object in a fake, a cache logging into a buffer, and a Reader over a recording Getter.
type resumeEnv struct {
	f    *s3fake.Fake
	data []byte
	info s3client.ObjectInfo
	c    *Cache
	log  *logbuf.Buffer
	gets *getLog
	r    *Reader
}

func newResumeEnv(t *testing.T, bs int64, size int) *resumeEnv {
	t.Helper()
	log, logs := logbuf.New(&slog.HandlerOptions{Level: slog.LevelWarn})
	e := &resumeEnv{f: s3fake.New(), log: logs}
	e.data, e.info = putObject(t, e.f, "obj", size, 31)
	e.c = newCache(t, Config{MaxBytes: 2 << 20, BlockSize: bs, Log: log})
	e.gets = &getLog{g: e.f}
	e.r = newReader(t, e.c, e.gets, e.info, ReaderConfig{})
	return e
}

// closeIdle closes the Reader and checks the cache's accounting.
func (e *resumeEnv) closeIdle(t *testing.T) {
	t.Helper()
	e.r.Close()
	checkIdle(t, e.c)
}

// A GET body cut mid-block with a retryable error is resumed by one GET for the rest, from the first byte not
// received and with the same If-Match: the read returns the object's exact bytes, and the resume is logged
// once and counted. Both the sequential stream (open-ended GETs) and a random read's ranged GET resume.
func TestResumeCutGET(t *testing.T) {
	const bs = 64 << 10
	for _, tc := range []struct {
		name  string
		cause error
	}{{"unexpected-EOF", nil}, {"wraps-io.EOF", io.EOF}, {"reset", syscallReset()}} {
		cause := tc.cause
		t.Run("stream/"+tc.name, func(t *testing.T) {
			e := newResumeEnv(t, bs, 8*bs)
			const cut = 2*bs + bs/3
			e.f.FailNextBody(1, cut, cause)
			if got := readSeq(t, e.r, 16<<10); !bytes.Equal(got, e.data) {
				t.Fatal("sequential read after a cut GET returned wrong bytes")
			}
			e.closeIdle(t)
			if got, want := e.gets.String(), fmt.Sprintf("0+-1 %d+-1", cut); got != want {
				t.Errorf("GETs %s, want %s", got, want)
			}
			for _, c := range e.gets.calls {
				if c.ifMatch != e.info.ETag {
					t.Errorf("GET at %d with If-Match %q, want %q", c.off, c.ifMatch, e.info.ETag)
				}
			}
			if n := e.f.Calls("GetObject"); n != 2 {
				t.Errorf("%d GetObject calls, want 2", n)
			}
			lines := e.log.Matching("resuming")
			if len(lines) != 1 || !strings.Contains(lines[0], "level=WARN") ||
				!strings.Contains(lines[0], fmt.Sprintf("offset=%d", cut)) || !strings.Contains(lines[0], "block=2") ||
				!strings.Contains(lines[0], "attempt=1") || !strings.Contains(lines[0], "service unavailable") {
				t.Errorf("resume log lines: %q", lines)
			}
			if s := e.c.Stats(); s.Resumes != 1 {
				t.Errorf("Stats.Resumes = %d, want 1", s.Resumes)
			}
		})
	}
	t.Run("ranged", func(t *testing.T) {
		e := newResumeEnv(t, bs, 8*bs)
		const cut = 1000
		// Block 5, far from the start: a ranged GET of that block alone.
		e.f.FailNextBody(1, cut, nil)
		p := make([]byte, bs)
		if n, err := e.r.ReadAt(context.Background(), p, 5*bs); err != nil || n != bs || !bytes.Equal(p, e.data[5*bs:6*bs]) {
			t.Fatalf("ReadAt after a cut ranged GET: %d, %v (bytes right: %v)", n, err, bytes.Equal(p, e.data[5*bs:6*bs]))
		}
		e.closeIdle(t)
		if got, want := e.gets.String(), fmt.Sprintf("%d+%d %d+%d", 5*bs, bs, 5*bs+cut, bs-cut); got != want {
			t.Errorf("GETs %s, want %s", got, want)
		}
		if lines := e.log.Matching("resuming"); len(lines) != 1 {
			t.Errorf("resume log lines: %q", lines)
		}
	})
}

func syscallReset() error {
	return &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", errReset)}
}

// errReset stands for ECONNRESET without depending on its platform value.
var errReset = errors.New("connection reset by peer")

// Resumes are bounded per block only while no byte arrives: a body that keeps failing after some progress is
// resumed as often as it takes, while len(resumeBackoff) resumes in a row that deliver nothing fail the block
// with the GET's error, and the next read fetches it afresh.
func TestResumeBound(t *testing.T) {
	const bs = 64 << 10
	t.Run("progress resets the count", func(t *testing.T) {
		fastResume(t)
		e := newResumeEnv(t, bs, 3*bs)
		// Every body of the first 2*len(resumeBackoff)+1 fails after 4000 bytes: more resumes than the bound, each
		// with progress.
		faults := 2*len(resumeBackoff) + 1
		e.f.FailNextBody(faults, 4000, nil)
		if got := readSeq(t, e.r, 16<<10); !bytes.Equal(got, e.data) {
			t.Fatal("wrong bytes")
		}
		e.closeIdle(t)
		if s := e.c.Stats(); s.Resumes != int64(faults) {
			t.Errorf("Stats.Resumes = %d, want %d", s.Resumes, faults)
		}
	})
	for _, path := range []string{"stream", "ranged"} {
		t.Run("no progress/"+path, func(t *testing.T) {
			fastResume(t)
			e := newResumeEnv(t, bs, 8*bs)
			off := int64(0)
			if path == "ranged" {
				off = 5 * bs
			}
			e.f.FailNextBody(1, bs/2, nil)
			e.f.FailNextBody(len(resumeBackoff), 0, nil)
			p := make([]byte, bs)
			n, err := e.r.ReadAt(context.Background(), p, off)
			if !errors.Is(err, s3client.ErrUnavailable) || !bytes.Equal(p[:n], e.data[off:off+int64(n)]) {
				t.Fatalf("ReadAt = %d, %v; want ErrUnavailable and exact bytes before it", n, err)
			}
			if got := e.f.Calls("GetObject"); got != 1+len(resumeBackoff) {
				t.Errorf("%d GetObject calls, want %d", got, 1+len(resumeBackoff))
			}
			if lines := e.log.Matching("resuming"); len(lines) != len(resumeBackoff) {
				t.Errorf("%d resume log lines, want %d: %q", len(lines), len(resumeBackoff), lines)
			}
			// The failed block is gone: reading again fetches it and returns the exact bytes.
			if n, err := e.r.ReadAt(context.Background(), p, off); err != nil || !bytes.Equal(p[:n], e.data[off:off+bs]) {
				t.Fatalf("second ReadAt = %d, %v", n, err)
			}
			e.closeIdle(t) // the stream's goroutine has logged its failure once Close returns
			if !strings.Contains(e.log.String(), "gave up after 3 resumes") {
				t.Errorf("no error line for the failed block:\n%s", e.log.String())
			}
		})
	}
}

// A resume whose GET fails to open ends the fill at once: the client has already retried that GET with its
// whole chain of attempts (on a silent network, minutes), so a second resume would only wait through it again.
func TestResumeStopsWhenTheGETFails(t *testing.T) {
	const bs = 64 << 10
	fastResume(t)
	e := newResumeEnv(t, bs, 8*bs)
	e.f.FailNextBody(1, bs/2, nil)
	var gets atomic.Int32
	e.f.SetFault(func(op, _ string, _ int) error {
		if op == "GetObject" && gets.Add(1) > 1 {
			return s3client.ErrUnavailable
		}
		return nil
	})
	p := make([]byte, bs)
	n, err := e.r.ReadAt(context.Background(), p, 0)
	if !errors.Is(err, s3client.ErrUnavailable) || !bytes.Equal(p[:n], e.data[:n]) {
		t.Fatalf("ReadAt = %d, %v; want ErrUnavailable and exact bytes before it", n, err)
	}
	if got := gets.Load(); got != 2 {
		t.Errorf("%d GETs, want 2: the first and one resume", got)
	}
	if lines := e.log.Matching("resuming"); len(lines) != 1 {
		t.Errorf("%d resume log lines, want 1: %q", len(lines), lines)
	}
	e.f.SetFault(nil)
	e.closeIdle(t)
}

// A GET that fails with an error that a new GET would not cure is not resumed: the block fails at once with
// that error and nothing is logged as a resume. That covers a body error of another kind than ErrUnavailable,
// and a panic while reading a body (which TestPanicInFillFailsBlockAndCacheRecovers covers in full).
func TestResumeNotForOtherErrors(t *testing.T) {
	const bs = 64 << 10
	for _, kind := range []error{s3client.ErrOther, s3client.ErrAccessDenied} {
		t.Run(fmt.Sprint(kind), func(t *testing.T) {
			e := newResumeEnv(t, bs, 8*bs)
			e.f.FailNextBody(1, bs/2, kind)
			p := make([]byte, bs)
			if _, err := e.r.ReadAt(context.Background(), p, 0); !errors.Is(err, kind) {
				t.Fatalf("ReadAt: %v; want %v", err, kind)
			}
			if n := e.f.Calls("GetObject"); n != 1 {
				t.Errorf("%d GetObject calls, want 1", n)
			}
			if lines := e.log.Matching("resuming"); len(lines) != 0 || e.c.Stats().Resumes != 0 {
				t.Errorf("resumed after %v: %q", kind, lines)
			}
			e.closeIdle(t)
		})
	}
}

// An object replaced between the cut and the resume fails the resumed GET's If-Match: the read gets
// ErrPrecondition, and no byte of the new version is ever returned or cached under the old ETag.
func TestResumeObjectChanged(t *testing.T) {
	const bs = 64 << 10
	for _, path := range []string{"stream", "ranged"} {
		t.Run(path, func(t *testing.T) {
			fastResume(t)
			e := newResumeEnv(t, bs, 8*bs)
			off := int64(0)
			if path == "ranged" {
				off = 5 * bs
			}
			newData := randBytes(99, len(e.data))
			e.f.FailNextBody(1, bs/2, nil)
			e.f.SetFault(func(op, key string, call int) error {
				if op == "GetObject" && call == 2 {
					e.f.Put("obj", newData)
				}
				return nil
			})
			p := make([]byte, 2*bs)
			n, err := e.r.ReadAt(context.Background(), p, off)
			if !errors.Is(err, s3client.ErrPrecondition) {
				t.Fatalf("ReadAt = %d, %v; want ErrPrecondition", n, err)
			}
			if n != 0 {
				t.Errorf("ReadAt returned %d bytes of a block whose object changed", n)
			}
			if got := e.gets.String(); got != fmt.Sprintf("%d+%d %d+%d", off, lengthOf(path, bs), off+bs/2, lengthOf(path, bs/2)) {
				t.Errorf("GETs %s", got)
			}
			e.closeIdle(t)
			// Nothing of block off/bs is cached under the old ETag.
			e.c.mu.Lock()
			_, cached := e.c.blocks[blockKey{"obj", e.info.ETag, off / bs}]
			e.c.mu.Unlock()
			if cached {
				t.Error("the block cut mid-way stayed cached")
			}
		})
	}
}

// lengthOf is the length a GET of the stream (open-ended) or of a ranged fetch of n bytes asks for.
func lengthOf(path string, n int64) int64 {
	if path == "stream" {
		return -1
	}
	return n
}

// The backoff before a resume ends with the Reader: a read canceled while its block waits to be resumed
// returns at once with its context's error, Close returns without waiting for the backoff, no resumed GET is
// issued, and the cache's accounting balances.
func TestResumeBackoffEndsWithClose(t *testing.T) {
	const bs = 64 << 10
	for _, path := range []string{"stream", "ranged"} {
		t.Run(path, func(t *testing.T) {
			old := resumeBackoff
			resumeBackoff = []time.Duration{time.Hour}
			t.Cleanup(func() { resumeBackoff = old })
			e := newResumeEnv(t, bs, 8*bs)
			off := int64(0)
			if path == "ranged" {
				off = 5 * bs
			}
			e.f.FailNextBody(1, bs/2, nil)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				_, err := e.r.ReadAt(ctx, make([]byte, bs), off)
				done <- err
			}()
			waitUntil(t, func() bool { return e.c.Stats().Resumes == 1 })
			cancel()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("canceled ReadAt: %v", err)
				}
			case <-time.After(time.Minute): // a bound only so that a hang fails
				t.Fatal("ReadAt did not return after its context was canceled")
			}
			closed := make(chan struct{})
			go func() { e.r.Close(); close(closed) }()
			select {
			case <-closed:
			case <-time.After(time.Minute):
				t.Fatal("Close waited for the resume backoff")
			}
			checkIdle(t, e.c)
			if n := e.f.Calls("GetObject"); n != 1 {
				t.Errorf("%d GetObject calls, want 1: no resume after Close", n)
			}
			if strings.Contains(e.log.String(), "level=ERROR") {
				t.Errorf("a Close during the backoff was logged as a failure:\n%s", e.log.String())
			}
		})
	}
}

// waitUntil polls cond until it holds; the bound only makes a hang fail.
func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(time.Millisecond)
	}
}

// resumable accepts exactly the failures of the connection.
func TestResumable(t *testing.T) {
	unavailable := func(cause error) error {
		return &s3client.Error{Op: "GetObject", Key: "k", Kind: s3client.ErrUnavailable, Err: cause}
	}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{unavailable(io.ErrUnexpectedEOF), true},
		{unavailable(io.EOF), true},
		{fmt.Errorf("cache: block: after 5 of 10 bytes: %w", unavailable(syscallReset())), true},
		// The idle timeout on S3 connections: a deadline error, classified ErrUnavailable, not a cancellation.
		{unavailable(&net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}), true},
		{&s3client.Error{Kind: s3client.ErrUnavailable, Status: 503, Code: "SlowDown"}, true},
		{fmt.Errorf("cache: block: after 5 of 10 bytes: %w", io.ErrUnexpectedEOF), true},
		{&s3client.Error{Kind: s3client.ErrPrecondition, Status: 412}, false},
		{&s3client.Error{Kind: s3client.ErrNotFound, Status: 404}, false},
		{&s3client.Error{Kind: s3client.ErrAccessDenied, Status: 403}, false},
		{&s3client.Error{Kind: s3client.ErrOther, Err: io.ErrUnexpectedEOF}, false},
		{&s3client.Error{Kind: s3client.ErrCanceled, Err: context.Canceled}, false},
		{unavailable(context.Canceled), false},
		{context.DeadlineExceeded, false},
		{&safego.PanicError{Value: "boom"}, false},
		{errors.New("other"), false},
		{nil, false},
	} {
		if got := resumable(tc.err); got != tc.want {
			t.Errorf("resumable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
