package s3client_test

import (
	"bufio"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/s3ftp/s3ftp/s3client"
)

// hangBound bounds every wait of these tests only so that a hang fails; outcomes are asserted, not durations.
const hangBound = 30 * time.Second

// idleClient is an adapter for endpoint with the given idle timeout and attempts, a header timeout far above
// idle (so that only the idle timeout can end a silent attempt) and no backoff to speak of.
func idleClient(t *testing.T, endpoint string, idle time.Duration, attempts int) *s3client.SDK {
	t.Helper()
	cfg := s3client.DefaultConfig("idle")
	cfg.Endpoint = endpoint
	cfg.Region = "us-east-1"
	cfg.AccessKey, cfg.SecretKey = "key", "secretsecret"
	cfg.MaxAttempts = attempts
	cfg.MaxBackoff = time.Millisecond
	cfg.ResponseHeaderTimeout = hangBound
	cfg.IdleTimeout = idle
	c, err := s3client.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// within runs f and fails the test if it has not returned after hangBound.
func within(t *testing.T, what string, f func()) time.Duration {
	t.Helper()
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
		return time.Since(start)
	case <-time.After(hangBound):
		t.Fatalf("%s still waits after %v", what, hangBound)
		return 0
	}
}

// assertIdle fails unless err is an ErrUnavailable whose cause is the idle timeout and whose message says so.
func assertIdle(t *testing.T, err error, op string) {
	t.Helper()
	assertKind(t, err, s3client.ErrUnavailable)
	var it *s3client.IdleTimeoutError
	if !errors.As(err, &it) || it.Op != op {
		t.Fatalf("got %v, want an IdleTimeoutError of a %s", err, op)
	}
	if !strings.Contains(err.Error(), "idle timeout") {
		t.Errorf("message %q does not name the idle timeout", err)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("%v: not a net.Error timeout wrapping os.ErrDeadlineExceeded", err)
	}
}

// stallingServer answers every request with headers announcing size bytes, sends the first part of them, and
// then sends nothing more, keeping the connection open until the client closes it or the test ends.
func stallingServer(t *testing.T, size, part int, tlsServer bool) *httptest.Server {
	t.Helper()
	done := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(size))
		w.Header().Set("ETag", `"e"`)
		w.WriteHeader(http.StatusOK)
		w.Write(make([]byte, part))
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-done:
		}
	}))
	if tlsServer {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(func() {
		close(done)
		srv.Close()
	})
	return srv
}

// TestIdleTimeoutBodyStall: a GET whose body stops arriving mid-stream (the server sends headers and part
// of the body, then nothing, without closing) fails the body's Read with ErrUnavailable naming the idle
// timeout once the connection was silent for IdleTimeout, after delivering exactly the bytes that arrived.
func TestIdleTimeoutBodyStall(t *testing.T) {
	const size, part = 1 << 20, 1000
	srv := stallingServer(t, size, part, false)
	c := idleClient(t, srv.URL, 200*time.Millisecond, 1)
	testBodyStall(t, c, size, part)
}

// TestIdleTimeoutOverTLS: the idle timeout wraps the TCP connection below TLS, so an https endpoint works
// (the client trusts the test server through AWS_CA_BUNDLE, which the SDK applies to the same transport) and
// a stalled body over TLS fails like one over plain HTTP.
func TestIdleTimeoutOverTLS(t *testing.T) {
	const size, part = 1 << 20, 1000
	srv := stallingServer(t, size, part, true)
	bundle := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_CA_BUNDLE", bundle)
	c := idleClient(t, srv.URL, 200*time.Millisecond, 1)
	if !strings.HasPrefix(srv.URL, "https://") {
		t.Fatalf("test server %s is not TLS", srv.URL)
	}
	testBodyStall(t, c, size, part)
}

func testBodyStall(t *testing.T, c *s3client.SDK, size, part int) {
	t.Helper()
	var (
		n   int64
		err error
	)
	d := within(t, "reading a stalled GetObject body", func() {
		var body io.ReadCloser
		var info s3client.ObjectInfo
		body, info, err = c.GetObject(context.Background(), "k", 0, -1, "")
		if err != nil {
			return
		}
		defer body.Close()
		if info.Size != int64(size) {
			err = fmt.Errorf("size %d, want %d", info.Size, size)
			return
		}
		n, err = io.Copy(io.Discard, body)
	})
	t.Logf("body read ended after %v with %d bytes: %v", d, n, err)
	if n != int64(part) {
		t.Errorf("read %d bytes before the error, want the %d the server sent", n, part)
	}
	assertIdle(t, err, "read")
}

// TestIdleTimeoutUploadStall: a server that reads a PUT's headers and then stops reading (its receive window
// fills, the client's write blocks) fails the request with ErrUnavailable once no byte could be written for
// IdleTimeout; each attempt uses a new connection.
func TestIdleTimeoutUploadStall(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns atomic.Int32
	done := make(chan struct{})
	t.Cleanup(func() {
		close(done)
		ln.Close()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer c.Close()
				// Read the request head, answer "100 Continue" if asked, then read nothing more.
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					if strings.HasPrefix(strings.ToLower(line), "expect: 100-continue") {
						_, _ = c.Write([]byte("HTTP/1.1 100 Continue\r\n\r\n"))
					}
					if line == "\r\n" {
						break
					}
				}
				<-done
			}()
		}
	}()

	c := idleClient(t, "http://"+ln.Addr().String(), 200*time.Millisecond, 2)
	// Far more than the socket buffers of both ends take, so the write must block.
	body := make([]byte, 64<<20)
	d := within(t, "a PutObject to a server that stopped reading", func() {
		_, err = c.PutObject(context.Background(), "k", body, s3client.PutOptions{})
	})
	t.Logf("PutObject failed after %v: %v", d, err)
	assertKind(t, err, s3client.ErrUnavailable)
	var it *s3client.IdleTimeoutError
	if !errors.As(err, &it) {
		t.Errorf("%v: the cause is not the idle timeout", err)
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("connections = %d, want one per attempt (2)", n)
	}
}

// TestIdleTimeoutNoSpuriousFailures: with IdleTimeout 200 ms and a single attempt (so that any spurious
// timeout is an error), requests on pooled keep-alive connections succeed whatever the gap since the
// connection's previous request: gaps around the pool's idle limit (2/3 of IdleTimeout), just under
// IdleTimeout and above it, answers that start after 0.8 × IdleTimeout, and a body that arrives in pieces
// 0.5 × IdleTimeout apart for several times IdleTimeout in all. Server-side connection counts show reuse
// below the pool's limit and a new connection after a gap above IdleTimeout.
func TestIdleTimeoutNoSpuriousFailures(t *testing.T) {
	const idle = 200 * time.Millisecond
	var (
		dials      atomic.Int32
		delayHead  atomic.Int64 // nanoseconds before the answer's headers
		slowChunks atomic.Int32 // body pieces of a GET, each 0.5 × idle after the previous one
	)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(time.Duration(delayHead.Load()))
		w.Header().Set("ETag", `"e"`)
		if r.Method != http.MethodGet {
			w.Header().Set("Content-Length", "0")
			return
		}
		n := int(slowChunks.Load())
		w.Header().Set("Content-Length", fmt.Sprint(n*10))
		for i := range n {
			if i > 0 {
				time.Sleep(idle / 2)
			}
			w.Write([]byte("0123456789"))
			w.(http.Flusher).Flush()
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			dials.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	c := idleClient(t, srv.URL, idle, 1)
	ctx := context.Background()

	// PutObject: net/http does not replay a request with a body on a new connection by itself, so a
	// spurious timeout of a pooled connection surfaces as an error instead of a silent second dial.
	put := func(what string) {
		t.Helper()
		within(t, what, func() {
			if _, err := c.PutObject(ctx, "k", []byte("data"), s3client.PutOptions{}); err != nil {
				t.Errorf("%s: %v", what, err)
			}
		})
	}
	phase := func(name string, gaps []time.Duration) int32 {
		t.Helper()
		put(name + ": first request")
		before := dials.Load()
		for i, g := range gaps {
			time.Sleep(g)
			put(fmt.Sprintf("%s: request %d after %v", name, i+1, g))
		}
		got := dials.Load() - before
		t.Logf("%s: %d requests after gaps %v: %d new connections", name, len(gaps), gaps, got)
		return got
	}

	if n := phase("short gaps", []time.Duration{20 * time.Millisecond, 40 * time.Millisecond, 60 * time.Millisecond, 80 * time.Millisecond}); n >= 4 {
		t.Errorf("short gaps: %d new connections for 4 requests: pooled connections are not reused", n)
	}
	// Around the pool's limit of 133 ms: the connection is reused or closed by the pool; the race between
	// the pool's timer and the request taking the connection must not fail the request.
	var around []time.Duration
	for g := 110 * time.Millisecond; g <= 160*time.Millisecond; g += 5 * time.Millisecond {
		around = append(around, g)
	}
	phase("gaps around the pool limit", around)
	phase("gaps just under the idle timeout", []time.Duration{180 * time.Millisecond, 190 * time.Millisecond, 195 * time.Millisecond})
	if n := phase("gaps above the idle timeout", []time.Duration{3 * idle, 3 * idle, 3 * idle}); n != 3 {
		t.Errorf("gaps of 3 × idle: %d new connections for 3 requests, want 3 (the pool closes idle connections)", n)
	}

	// An answer that starts 0.8 × idle after the request, on a connection that had sat in the pool for
	// 0.6 × idle: the request's write moved the pending read's deadline, so 1.4 × idle after the connection
	// went idle the answer is still awaited.
	delayHead.Store(int64(idle * 8 / 10))
	phase("slow answers after a pooled gap", []time.Duration{idle * 6 / 10, idle * 6 / 10, idle * 6 / 10})
	delayHead.Store(0)

	// A body arriving slowly but steadily is not cut, though it takes several idle timeouts in all.
	slowChunks.Store(8)
	within(t, "a slow GET", func() {
		body, _, err := c.GetObject(ctx, "k", 0, -1, "")
		if err != nil {
			t.Errorf("slow GET: %v", err)
			return
		}
		defer body.Close()
		b, err := io.ReadAll(body)
		if err != nil || len(b) != 80 {
			t.Errorf("slow GET body: %d bytes, %v; want 80 bytes", len(b), err)
		}
	})
}

// TestConfigIdleTimeout: DefaultConfig sets DefaultIdleTimeout, and a negative value is invalid.
func TestConfigIdleTimeout(t *testing.T) {
	if got := s3client.DefaultConfig("b").IdleTimeout; got != s3client.DefaultIdleTimeout {
		t.Errorf("DefaultConfig IdleTimeout = %v, want %v", got, s3client.DefaultIdleTimeout)
	}
	cfg := s3client.Config{Bucket: "b", IdleTimeout: -time.Second}
	if err := cfg.Validate(); err == nil {
		t.Error("a negative IdleTimeout is valid")
	}
}
