package ftpfront

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/s3ftp/s3ftp/internal/logbuf"
	"github.com/spf13/afero"
)

// panicAuth panics on the login of user "boom", like a broken authentication backend, and delegates the rest.
type panicAuth struct{ *testAuth }

func (a panicAuth) Login(ctx context.Context, ip netip.Addr, name, password string) (*User, error) {
	if name == "boom" {
		panic("injected panic in Login")
	}
	return a.testAuth.Login(ctx, ip, name, password)
}

// A panic before login ends that session with 421 (no retrying a panicking login path on one connection);
// the server keeps serving and counts the panic.
func TestPanicBeforeLoginClosesSession(t *testing.T) {
	ts := startServer(t, memFs(afero.NewMemMapFs()), func(_ *Options, d *Deps) {
		d.Auth = panicAuth{d.Auth.(*testAuth)}
	})
	c := dialRaw(t, ts.addr)
	c.must(234, "AUTH TLS")
	c.conn = tlsClientConn(c.conn)
	c.r.Reset(c.conn)
	c.must(331, "USER boom")
	c.must(421, "PASS x")
	if n, err := c.conn.Read(make([]byte, 1)); err == nil {
		t.Fatalf("session still open after a panicking login (read %d bytes)", n)
	}
	c2 := dialRaw(t, ts.addr)
	c2.secure("alice", "secret")
	c2.must(257, "PWD")
	if n := ts.srv.Panics(); n != 1 {
		t.Errorf("Panics() = %d, want 1", n)
	}
}

// panicReadFs opens files whose Read panics, like a backend that breaks in the middle of a download.
type panicReadFs struct{ afero.Fs }

func (p panicReadFs) Open(name string) (afero.File, error) {
	f, err := p.Fs.Open(name)
	if err != nil {
		return nil, err
	}
	return panicReadFile{f}, nil
}

type panicReadFile struct{ afero.File }

func (panicReadFile) Read([]byte) (int, error) { panic("injected panic in Read") }

// A panic inside a transfer goroutine answers 451 for that transfer; the session and the server go on.
func TestPanicInTransferAnswers451(t *testing.T) {
	mem := afero.NewMemMapFs()
	writeFile(t, mem, "/f.bin", bytes.Repeat([]byte("x"), 1000))
	ts := startServer(t, memFs(panicReadFs{mem}), nil)
	c := dialRaw(t, ts.addr)
	c.secure("alice", "secret")
	d := dialData(t, c.epsv(), "")
	c.must(150, "RETR f.bin")
	if err := d.Handshake(); err != nil {
		t.Fatalf("data TLS handshake: %v", err)
	}
	c.expect(451)
	io.Copy(io.Discard, d)
	c.must(257, "PWD")
	if n := ts.srv.Panics(); n != 1 {
		t.Errorf("Panics() = %d, want 1", n)
	}
}

// panicAdmit panics on its first Admit, like a broken connection limiter.
type panicAdmit struct{ calls atomic.Int64 }

func (a *panicAdmit) Admit(netip.Addr) (func(), error) {
	if a.calls.Add(1) == 1 {
		panic("injected panic in Admit")
	}
	return func() {}, nil
}

// A panic while setting up a connection (outside any session) closes that connection; the accept loop goes
// on, the next client is served, and the panic is counted.
func TestPanicInConnectionSetupKeepsAccepting(t *testing.T) {
	admit := &panicAdmit{}
	ts := startServer(t, memFs(afero.NewMemMapFs()), func(_ *Options, d *Deps) { d.Admit = admit })
	c, err := net.DialTimeout("tcp", ts.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	if n, err := c.Read(make([]byte, 64)); err == nil || os.IsTimeout(err) {
		t.Fatalf("connection whose set-up panicked: read %d bytes, %v; want it closed", n, err)
	}
	c2 := dialRaw(t, ts.addr)
	c2.secure("alice", "secret")
	c2.must(257, "PWD")
	if n := ts.srv.Panics(); n != 1 {
		t.Errorf("Panics() = %d, want 1", n)
	}
}

// panicWriteFs opens files for writing whose Write panics, and counts their Close calls.
type panicWriteFs struct {
	afero.Fs
	closes *atomic.Int64
}

func (p panicWriteFs) OpenFile(name string, flag int, perm os.FileMode) (afero.File, error) {
	f, err := p.Fs.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return panicWriteFile{File: f, closes: p.closes}, nil
}

type panicWriteFile struct {
	afero.File
	closes *atomic.Int64
}

func (panicWriteFile) Write([]byte) (int, error) { panic("injected panic in Write") }

func (f panicWriteFile) Close() error {
	f.closes.Add(1)
	return f.File.Close()
}

// A panic inside an upload answers 451 as a failed write does: the file is closed, a plain STOR's partial file
// is removed, the data connection is closed, and the session goes on.
func TestPanicInUploadAnswers451AndRemovesPartialFile(t *testing.T) {
	mem := afero.NewMemMapFs()
	closes := &atomic.Int64{}
	ts := startServer(t, memFs(panicWriteFs{Fs: mem, closes: closes}), nil)
	c := dialRaw(t, ts.addr)
	c.secure("alice", "secret")
	d := dialData(t, c.epsv(), "")
	c.must(150, "STOR up.bin")
	d.Write(bytes.Repeat([]byte("y"), 1000))
	c.expect(451)
	if _, err := io.Copy(io.Discard, d); err != nil {
		t.Logf("data connection after the panic: %v", err)
	}
	if n := closes.Load(); n != 1 {
		t.Errorf("file closed %d times, want 1", n)
	}
	if _, err := mem.Stat("/up.bin"); !os.IsNotExist(err) {
		t.Errorf("partial file after a panicking STOR: %v, want it removed", err)
	}
	c.must(257, "PWD")
	if n := ts.srv.Panics(); n != 1 {
		t.Errorf("Panics() = %d, want 1", n)
	}
}

// A health probe that panics is a failed check (503, the panic logged); the next request runs a new probe.
func TestHealthProbePanicIs503(t *testing.T) {
	var calls atomic.Int64
	h := newHealthHandler(t.TempDir(), HealthOptions{Timeout: time.Minute, Interval: time.Nanosecond}, func(string) error {
		if calls.Add(1) == 1 {
			panic("injected panic in the probe")
		}
		return nil
	})
	h.log = testLogger(t)
	if code, body := getHealth(t, h, http.MethodGet); code != http.StatusServiceUnavailable || !strings.Contains(body, "panic") {
		t.Fatalf("check with a panicking probe = %d %q, want 503 naming the panic", code, body)
	}
	if code, body := getHealth(t, h, http.MethodGet); code != http.StatusOK {
		t.Fatalf("next check = %d %q, want 200", code, body)
	}
}

// panicWriter panics on its first Write and keeps the rest.
type panicWriter struct {
	calls atomic.Int64
	buf   logbuf.Buffer
}

func (w *panicWriter) Write(p []byte) (int, error) {
	if w.calls.Add(1) == 1 {
		panic("injected panic in the audit writer")
	}
	return w.buf.Write(p)
}

// An audit writer that panics loses that batch as a failed write does (Close reports it); later events are
// written, and the process goes on.
func TestAuditWriterPanicIsAFailedWrite(t *testing.T) {
	w := &panicWriter{}
	l := newAuditLog(w, testLogger(t), auditFullWait)
	l.Record(Event{Event: "first"})
	for w.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	l.Record(Event{Event: "second"})
	err := l.Close()
	if err == nil || !strings.Contains(err.Error(), "panic") {
		t.Errorf("Close = %v, want the panic as the last write error", err)
	}
	if out := w.buf.String(); strings.Contains(out, `"first"`) || !strings.Contains(out, `"second"`) {
		t.Errorf("audit output %q: want the second event only", out)
	}
}
