package ftpfront

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/afero"
)

// testAuth accepts name/password pairs from a map and counts calls.
type testAuth struct {
	mu       sync.Mutex
	users    map[string]string // name -> password
	homes    map[string]string // name -> home (optional)
	calls    int
	failures int
}

func (a *testAuth) Login(_ context.Context, _ netip.Addr, name, password string) (*User, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls++
	if pw, ok := a.users[name]; ok && pw == password {
		return &User{Name: name, Home: a.homes[name]}, nil
	}
	a.failures++
	return nil, errors.New("login incorrect")
}

// recAuditor keeps every event.
type recAuditor struct {
	mu     sync.Mutex
	events []Event
}

func (r *recAuditor) Record(e Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recAuditor) find(kind, path string) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Event
	for _, e := range r.events {
		if e.Event == kind && (path == "" || e.Path == path) {
			out = append(out, e)
		}
	}
	return out
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

var (
	testTLSOnce sync.Once
	testTLSConf *tls.Config
)

func serverTLS(t *testing.T) *tls.Config {
	testTLSOnce.Do(func() {
		c, err := SelfSignedCertificate()
		if err != nil {
			t.Fatal(err)
		}
		testTLSConf = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{c}}
	})
	return testTLSConf
}

func clientTLS() *tls.Config {
	return &tls.Config{InsecureSkipVerify: true, ClientSessionCache: tls.NewLRUClientSessionCache(8)}
}

type testServer struct {
	srv   *Server
	addr  string
	audit *recAuditor
	auth  *testAuth
}

// startServer runs a Server on 127.0.0.1:0 until the test ends. edit may change options and deps.
func startServer(t *testing.T, fsys FsFactory, edit func(*Options, *Deps)) *testServer {
	t.Helper()
	opts := DefaultOptions()
	opts.Listen = "127.0.0.1:0"
	opts.DataAcceptTimeout = 10 * time.Second
	ts := &testServer{audit: &recAuditor{}, auth: &testAuth{users: map[string]string{"alice": "secret"}, homes: map[string]string{}}}
	deps := Deps{Auth: ts.auth, Audit: ts.audit, Fs: fsys, Log: testLogger(t), TLS: serverTLS(t)}
	if edit != nil {
		edit(&opts, &deps)
	}
	srv, err := NewServer(opts, deps)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	ts.srv = srv
	if a := srv.Addr(); a != nil {
		ts.addr = a.String()
	}
	return ts
}

// memFs returns a factory handing every user the same in-memory file system.
func memFs(m afero.Fs) FsFactory {
	return func(*User) (afero.Fs, error) { return m, nil }
}

// rawClient is a minimal hand-driven FTP client for protocol-level tests.
type rawClient struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawClient {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(60 * time.Second))
	rc := &rawClient{t: t, conn: c, r: bufio.NewReader(c)}
	rc.expect(220)
	return rc
}

// readReply reads one (possibly multi-line) reply.
func (c *rawClient) readReply() (int, string) {
	c.t.Helper()
	line, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read reply: %v", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if len(line) < 4 {
		c.t.Fatalf("short reply %q", line)
	}
	code, err := strconv.Atoi(line[:3])
	if err != nil {
		c.t.Fatalf("bad reply %q", line)
	}
	text := line[4:]
	if line[3] == '-' {
		var b strings.Builder
		b.WriteString(text)
		for {
			l, err := c.r.ReadString('\n')
			if err != nil {
				c.t.Fatalf("read multi-line reply: %v", err)
			}
			l = strings.TrimRight(l, "\r\n")
			b.WriteString("\n" + l)
			if strings.HasPrefix(l, line[:3]+" ") {
				break
			}
		}
		text = b.String()
	}
	return code, text
}

func (c *rawClient) send(format string, args ...any) {
	c.t.Helper()
	if _, err := fmt.Fprintf(c.conn, format+"\r\n", args...); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

func (c *rawClient) cmd(format string, args ...any) (int, string) {
	c.t.Helper()
	c.send(format, args...)
	return c.readReply()
}

func (c *rawClient) expect(want int) string {
	c.t.Helper()
	code, text := c.readReply()
	if code != want {
		c.t.Fatalf("got %d %q, want %d", code, text, want)
	}
	return text
}

func (c *rawClient) must(want int, format string, args ...any) string {
	c.t.Helper()
	c.send(format, args...)
	return c.expect(want)
}

// secure runs AUTH TLS, logs in and sets PROT P.
func (c *rawClient) secure(user, pass string) {
	c.t.Helper()
	c.must(234, "AUTH TLS")
	tc := tls.Client(c.conn, clientTLS())
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("TLS handshake: %v", err)
	}
	c.conn = tc
	c.r = bufio.NewReader(tc)
	c.must(331, "USER %s", user)
	c.must(230, "PASS %s", pass)
	c.must(200, "PBSZ 0")
	c.must(200, "PROT P")
}

// epsv arms a passive data connection and returns its address.
func (c *rawClient) epsv() string {
	c.t.Helper()
	text := c.must(229, "EPSV")
	i := strings.Index(text, "(|||")
	j := strings.LastIndex(text, "|)")
	if i < 0 || j < i {
		c.t.Fatalf("bad EPSV reply %q", text)
	}
	return net.JoinHostPort("127.0.0.1", text[i+4:j])
}

// dialData connects to a data address from local address from (empty: any) and starts TLS as a client.
func dialData(t *testing.T, addr, from string) *tls.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial data %s from %q: %v", addr, from, err)
	}
	c.SetDeadline(time.Now().Add(60 * time.Second))
	t.Cleanup(func() { c.Close() })
	return tls.Client(c, clientTLS())
}

func writeFile(t *testing.T, fsys afero.Fs, name string, data []byte) {
	t.Helper()
	if err := afero.WriteFile(fsys, name, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustMkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

func tlsClientConn(c net.Conn) *tls.Conn { return tls.Client(c, clientTLS()) }
