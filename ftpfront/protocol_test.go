package ftpfront

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"
	"github.com/spf13/afero"
)

// Plaintext bytes sent behind AUTH TLS (before the handshake) end the session instead of being executed.
func TestAuthTLSInjectionRefused(t *testing.T) {
	ts := startServer(t, memFs(afero.NewMemMapFs()), nil)
	c := dialRaw(t, ts.addr)
	c.send("AUTH TLS\r\nUSER alice")
	c.expect(234)
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := c.r.Read(make([]byte, 16)); err == nil {
		t.Fatalf("session still open after injected plaintext (read %d bytes)", n)
	}
}

// panicFs panics in Stat, like a broken backend.
type panicFs struct{ afero.Fs }

func (panicFs) Stat(string) (os.FileInfo, error) { panic("backend exploded") }

// A panic while handling a command of a logged-in session is recovered and fails that command only: the
// client gets 451, the same session answers its next command, other sessions work, and the panic is counted.
func TestSessionPanicRecovered(t *testing.T) {
	mem := afero.NewMemMapFs()
	ts := startServer(t, memFs(panicFs{mem}), nil)
	c := dialRaw(t, ts.addr)
	c.secure("alice", "secret")
	c.must(451, "SIZE x")
	c.must(257, "PWD")
	c2 := dialRaw(t, ts.addr)
	c2.secure("alice", "secret")
	c2.must(257, "PWD")
	if n := ts.srv.Panics(); n != 1 {
		t.Errorf("Panics() = %d, want 1", n)
	}
}

// STOR over an existing file truncates it; TYPE A converts line ends both ways.
func TestStorTruncatesAndTypeA(t *testing.T) {
	mem := afero.NewMemMapFs()
	writeFile(t, mem, "/f.txt", []byte("a much longer original content\n"))
	ts := startServer(t, memFs(mem), nil)
	c := dialRaw(t, ts.addr)
	c.secure("alice", "secret")

	d := dialData(t, c.epsv(), "")
	c.must(150, "STOR f.txt")
	d.Write([]byte("short\r\n"))
	d.Close()
	c.expect(226)
	if got, _ := afero.ReadFile(mem, "/f.txt"); string(got) != "short\r\n" {
		t.Fatalf("binary STOR over existing file = %q", got)
	}

	c.must(200, "TYPE A")
	c.must(550, "SIZE f.txt")
	d = dialData(t, c.epsv(), "")
	c.must(150, "STOR a.txt")
	d.Write([]byte("one\r\ntwo\r"))
	d.Write([]byte("\nthree\r\n"))
	d.Close()
	c.expect(226)
	if got, _ := afero.ReadFile(mem, "/a.txt"); string(got) != "one\ntwo\nthree\n" {
		t.Fatalf("ASCII STOR stored %q", got)
	}
	d = dialData(t, c.epsv(), "")
	c.must(150, "RETR a.txt")
	got, err := io.ReadAll(d)
	if err != nil || string(got) != "one\r\ntwo\r\nthree\r\n" {
		t.Fatalf("ASCII RETR sent %q, %v", got, err)
	}
	c.expect(226)
	c.must(200, "TYPE I")
	c.must(213, "SIZE a.txt")
}

// PORT is refused unless AllowActive; with it, only the client's own address and ports >= 1024 are accepted.
func TestActiveMode(t *testing.T) {
	mem := afero.NewMemMapFs()
	writeFile(t, mem, "/f", []byte("active data"))
	off := startServer(t, memFs(mem), nil)
	c := dialRaw(t, off.addr)
	c.secure("alice", "secret")
	c.must(502, "PORT 127,0,0,1,200,10")

	ts := startServer(t, memFs(mem), func(o *Options, _ *Deps) { o.AllowActive = true })
	c = dialRaw(t, ts.addr)
	c.secure("alice", "secret")
	c.must(500, "PORT 10,1,2,3,200,10")
	c.must(500, "PORT 127,0,0,1,0,21")
	c.must(501, "PORT 1,2,3")
	c.must(500, "EPRT |1|127.0.0.2|5000|")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	c.must(200, "EPRT |1|127.0.0.1|%d|", port)
	c.send("RETR f")
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c.expect(150)
	tc := activeDataClient(conn)
	got, err := io.ReadAll(tc)
	if err != nil || string(got) != "active data" {
		t.Fatalf("active RETR got %q, %v", got, err)
	}
	c.expect(226)
}

// activeDataClient wraps a data connection the server dialed: under PROT P the server is still the TLS server.
func activeDataClient(c net.Conn) io.Reader {
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return tlsClientConn(c)
}

// The idle timeout closes a silent control connection with 421.
func TestIdleTimeout(t *testing.T) {
	ts := startServer(t, memFs(afero.NewMemMapFs()), func(o *Options, _ *Deps) { o.IdleTimeout = 200 * time.Millisecond })
	c := dialRaw(t, ts.addr)
	c.expect(421)
}

// Multi-line replies follow RFC 959: "211-" first, indented middle lines, "211 " last.
func TestFeatMultiline(t *testing.T) {
	ts := startServer(t, memFs(afero.NewMemMapFs()), nil)
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	r.ReadString('\n')
	fmt.Fprintf(c, "FEAT\r\n")
	var lines []string
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, l)
		if strings.HasPrefix(l, "211 ") {
			break
		}
	}
	if !strings.HasPrefix(lines[0], "211-") || len(lines) < 5 {
		t.Fatalf("FEAT reply %q", lines)
	}
	for _, l := range lines[1 : len(lines)-1] {
		if !strings.HasPrefix(l, " ") || !strings.HasSuffix(l, "\r\n") {
			t.Fatalf("middle line %q", l)
		}
	}
	if !strings.Contains(strings.Join(lines, ""), " AUTH TLS\r\n") || !strings.Contains(strings.Join(lines, ""), " MFMT\r\n") {
		t.Fatalf("FEAT lacks AUTH TLS or MFMT: %q", lines)
	}
}

// With AllowPlain a client without TLS can log in and transfer (jlaffaye/ftp in plain mode, EPSV).
func TestAllowPlain(t *testing.T) {
	mem := afero.NewMemMapFs()
	ts := startServer(t, memFs(mem), func(o *Options, d *Deps) { o.AllowPlain = true })
	c, err := ftp.Dial(ts.addr, ftp.DialWithTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Quit()
	if err := c.Login("alice", "secret"); err != nil {
		t.Fatal(err)
	}
	if err := c.Stor("p.txt", strings.NewReader("plain")); err != nil {
		t.Fatal(err)
	}
	r, err := c.Retr("p.txt")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	r.Close()
	if string(got) != "plain" {
		t.Fatalf("got %q", got)
	}
}

// Parameter and alias commands, MLST, STAT with a path, MDTM as a setter, and sequence errors.
func TestMiscCommands(t *testing.T) {
	mem := afero.NewMemMapFs()
	writeFile(t, mem, "/d/f.txt", []byte("12345"))
	ts := startServer(t, memFs(mem), nil)
	c := dialRaw(t, ts.addr)
	c.must(215, "SYST")
	c.must(200, "OPTS UTF8 ON")
	c.secure("alice", "secret")
	c.must(200, "TYPE L 8")
	c.must(504, "TYPE E")
	c.must(501, "TYPE Q")
	c.must(200, "MODE S")
	c.must(504, "MODE B")
	c.must(200, "STRU F")
	c.must(504, "STRU R")
	c.must(202, "ALLO 100")
	c.must(214, "HELP")
	c.must(501, "REST -5")
	c.must(501, "REST abc")
	c.must(503, "RNTO x")
	c.must(501, "CWD")
	c.must(250, "XCWD d")
	if text := c.must(257, "XPWD"); !strings.HasPrefix(text, `"/d"`) {
		t.Fatalf("XPWD = %q", text)
	}
	c.must(257, "XMKD e")
	c.must(250, "XRMD e")
	c.must(550, "RMD /")
	c.must(550, "CWD f.txt")
	if text := c.must(250, "MLST f.txt"); !strings.Contains(text, "type=file;size=5;") || !strings.Contains(text, " /d/f.txt") {
		t.Fatalf("MLST = %q", text)
	}
	if text := c.must(213, "STAT -l /d"); !strings.Contains(text, " f.txt") {
		t.Fatalf("STAT /d = %q", text)
	}
	c.must(213, "MDTM 20200102030405 f.txt")
	if text := c.must(213, "MDTM f.txt"); text != "20200102030405" {
		t.Fatalf("MDTM after set = %q", text)
	}
	c.must(501, "MFMT 2020 f.txt")
	c.must(550, "MFMT 20200102030405 nothere")
	c.epsv()
	c.must(501, "MLSD f.txt")
	c.must(200, "EPSV ALL")
	c.must(503, "PASV")
	c.must(221, "QUIT")
}

// PASV and EPSV use the configured port range; a new PASV releases the previous port first.
func TestPassivePortRange(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	ts := startServer(t, memFs(afero.NewMemMapFs()), func(o *Options, _ *Deps) {
		o.PassivePortMin, o.PassivePortMax = port, port
		o.PublicHost = "192.0.2.7"
	})
	c := dialRaw(t, ts.addr)
	c.secure("alice", "secret")
	want := fmt.Sprintf("(192,0,2,7,%d,%d)", port>>8, port&0xff)
	for i := 0; i < 2; i++ {
		if text := c.must(227, "PASV"); !strings.Contains(text, want) {
			t.Fatalf("PASV = %q, want %s", text, want)
		}
	}
	if text := c.must(229, "EPSV"); !strings.Contains(text, fmt.Sprintf("(|||%d|)", port)) {
		t.Fatalf("EPSV = %q", text)
	}
}

// Shutting the server down ends live sessions, including one in the middle of an upload, and Serve returns.
func TestShutdownWithLiveTransfer(t *testing.T) {
	mem := afero.NewMemMapFs()
	opts := DefaultOptions()
	opts.Listen = "127.0.0.1:0"
	srv, err := NewServer(opts, Deps{Auth: &testAuth{users: map[string]string{"alice": "secret"}}, Fs: memFs(mem), Log: testLogger(t), TLS: serverTLS(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	c := dialRaw(t, srv.Addr().String())
	c.secure("alice", "secret")
	d := dialData(t, c.epsv(), "")
	c.must(150, "STOR live.bin")
	if _, err := d.Write(make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, err := c.r.ReadString('\n'); err != nil {
			break // the control connection was closed
		}
	}
	if _, err := mem.Stat("/live.bin"); !os.IsNotExist(err) {
		t.Fatalf("interrupted upload left behind: %v", err)
	}
}

// noChtimesFs accepts Chtimes and changes nothing, like the S3 mount.
type noChtimesFs struct{ afero.Fs }

func (noChtimesFs) Chtimes(string, time.Time, time.Time) error { return nil }

// MFMT answers with the time the file system kept, not the one asked for.
func TestMFMTReportsKeptTime(t *testing.T) {
	mem := afero.NewMemMapFs()
	writeFile(t, mem, "/f", []byte("x"))
	kept := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	mem.Chtimes("/f", kept, kept)
	ts := startServer(t, memFs(noChtimesFs{mem}), nil)
	c := dialRaw(t, ts.addr)
	c.secure("alice", "secret")
	if text := c.must(213, "MFMT 20210304050607 f"); text != "Modify=20240102030405; /f" {
		t.Fatalf("MFMT reply %q", text)
	}
}

// A client that never opens the data connection gets 425 after the accept timeout, and the session goes on.
func TestDataAcceptTimeout(t *testing.T) {
	mem := afero.NewMemMapFs()
	writeFile(t, mem, "/f", []byte("x"))
	ts := startServer(t, memFs(mem), func(o *Options, _ *Deps) { o.DataAcceptTimeout = 100 * time.Millisecond })
	c := dialRaw(t, ts.addr)
	c.secure("alice", "secret")
	c.epsv()
	c.must(150, "RETR f")
	c.expect(425)
	c.must(200, "NOOP")
	if ev := ts.audit.find("download", "/f"); len(ev) != 1 || ev[0].Result != "no data connection" {
		t.Fatalf("audit = %+v", ev)
	}
}
