package main

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"
	"github.com/s3ftp/s3ftp/ftpfront"
	"github.com/s3ftp/s3ftp/internal/logbuf"
	"github.com/s3ftp/s3ftp/internal/testcert"
)

// daemon is the ftpfront binary running in a subprocess for one test.
type daemon struct {
	t      *testing.T
	cmd    *exec.Cmd
	logs   *logbuf.Buffer
	exited chan error
	addrs  map[string]string // "explicit", "implicit", "sftp" from the ready file
}

// startDaemon runs the binary with args plus --ready-file and waits until it is listening. The test's cleanup
// kills it if it still runs.
func startDaemon(t *testing.T, args ...string) *daemon {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready")
	d := &daemon{t: t, logs: &logbuf.Buffer{}, exited: make(chan error, 1)}
	d.cmd = exec.Command(binary, append(args, "--ready-file", ready)...)
	d.cmd.Stderr = d.logs
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.exited <- d.cmd.Wait() }()
	t.Cleanup(func() {
		d.cmd.Process.Kill()
		<-d.exited
	})
	d.addrs = waitReady(t, ready, d.exited, d.logs)
	return d
}

// hup sends SIGHUP and waits for the reload's "reload done" line (the n-th one since start), failing the test
// if the process exits instead. It returns that line.
func (d *daemon) hup(n int) string {
	d.t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		d.t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-d.exited:
			d.exited <- err
			d.t.Fatalf("ftpfront exited after SIGHUP: %v\n%s", err, d.logs.String())
		default:
		}
		if done := d.logs.Matching("reload done"); len(done) >= n {
			return done[n-1]
		}
		time.Sleep(20 * time.Millisecond)
	}
	d.t.Fatalf("no reload %d within 30s of SIGHUP:\n%s", n, d.logs.String())
	return ""
}

// stop sends SIGTERM and expects exit status 0.
func (d *daemon) stop() {
	d.t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.exited:
		d.exited <- err
		if err != nil {
			d.t.Fatalf("exit after SIGTERM: %v\n%s", err, d.logs.String())
		}
	case <-time.After(30 * time.Second):
		d.t.Fatal("no exit 30s after SIGTERM")
	}
}

// hashes returns a password hash for each of the names, the password being name + "-pw".
func hashes(t *testing.T, names ...string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, n := range names {
		h, err := ftpfront.HashPassword(n + "-pw")
		if err != nil {
			t.Fatal(err)
		}
		m[n] = h
	}
	return m
}

// writeUsers writes a users file with the named accounts from h, each with home "/".
func writeUsers(t *testing.T, path string, h map[string]string, names ...string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("users:\n")
	for _, name := range names {
		b.WriteString("  - name: " + name + "\n    password: '" + h[name] + "'\n    home: /\n")
	}
	replaceFile(t, path, b.String())
}

// replaceFile writes data to path through a rename, as editors and configuration tools do.
func replaceFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path+".tmp", []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

// login opens an explicit-FTPS session; serial, when not nil, receives the serial number of the certificate
// the control connection's handshake presented.
func login(addr, name, password string, serial *string) (*ftp.ServerConn, error) {
	cfg := &tls.Config{InsecureSkipVerify: true}
	if serial != nil {
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if *serial == "" && len(cs.PeerCertificates) > 0 {
				*serial = cs.PeerCertificates[0].SerialNumber.String()
			}
			return nil
		}
	}
	c, err := ftp.Dial(addr, ftp.DialWithExplicitTLS(cfg), ftp.DialWithTimeout(10*time.Second))
	if err != nil {
		return nil, err
	}
	if err := c.Login(name, password); err != nil {
		c.Quit()
		return nil, err
	}
	return c, nil
}

// replyCode returns the FTP reply code carried by err, or 0.
func replyCode(err error) int {
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code
	}
	return 0
}

// SIGHUP re-reads the users file in the running binary: the process survives it, an added user logs in, a removed
// user is refused and its open session is answered 421 at its next command while another user's session goes
// on, and a broken users file keeps the accounts loaded before, with one ERROR line naming the file and the
// cause.
func TestBinarySIGHUPReloadsUsers(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users.yaml")
	h := hashes(t, "dave", "erin", "frank")
	writeUsers(t, users, h, "dave", "erin")
	d := startDaemon(t, "--root", dir, "--users", users, "--listen", "127.0.0.1:0", "--tls-self-signed",
		"--passive-ports", "0", "--fail-delay", "10ms", "--refuse-users", "none")
	addr := d.addrs["explicit"]

	dave, err := login(addr, "dave", "dave-pw", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dave.Quit()
	erin, err := login(addr, "erin", "erin-pw", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer erin.Quit()
	if _, err := login(addr, "frank", "frank-pw", nil); replyCode(err) != 530 {
		t.Fatalf("frank before he is added: %v, want 530", err)
	}

	writeUsers(t, users, h, "erin", "frank")
	if line := d.hup(1); !strings.Contains(line, "users=reloaded") {
		t.Fatalf("reload: %s", line)
	}
	frank, err := login(addr, "frank", "frank-pw", nil)
	if err != nil {
		t.Fatalf("added user after SIGHUP: %v", err)
	}
	frank.Quit()
	if _, err := login(addr, "dave", "dave-pw", nil); replyCode(err) != 530 {
		t.Fatalf("removed user's new login: %v, want 530", err)
	}
	if _, err := dave.CurrentDir(); replyCode(err) != 421 {
		t.Fatalf("removed user's open session, next command: %v, want 421", err)
	}
	if _, err := erin.CurrentDir(); err != nil {
		t.Fatalf("the session of a user still in the file: %v", err)
	}

	replaceFile(t, users, "users:\n  - name: erin\n    password: [unterminated\n")
	if line := d.hup(2); !strings.Contains(line, "users=kept") {
		t.Fatalf("reload of a broken file: %s", line)
	}
	kept := d.logs.Matching("keeping the previous users")
	if len(kept) != 1 || !strings.Contains(kept[0], "level=ERROR") || !strings.Contains(kept[0], users) ||
		!strings.Contains(kept[0], "yaml") {
		t.Fatalf("want one ERROR line naming %s and the YAML error, got %q", users, kept)
	}
	frank, err = login(addr, "frank", "frank-pw", nil)
	if err != nil {
		t.Fatalf("login after a broken users file, previous accounts kept: %v", err)
	}
	frank.Quit()
	if _, err := erin.CurrentDir(); err != nil {
		t.Fatalf("erin's session after a broken users file: %v", err)
	}
	erin.Quit()
	d.stop()
}

// leafSerial opens a new TLS connection to the implicit-FTPS address and returns the serial number of the
// certificate it is served.
func leafSerial(t *testing.T, addr string) string {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// SIGHUP re-reads --tls-cert and --tls-key: new connections (implicit and explicit FTPS) get the new
// certificate, a session opened before the reload keeps transferring, and a broken certificate file keeps the
// certificate served before, with one ERROR line naming the file.
func TestBinarySIGHUPReloadsCertificate(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	certDir := filepath.Join(dir, "tls")
	if err := os.Mkdir(certDir, 0o700); err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := testcert.Write(t, certDir, 1001, time.Now().Add(24*time.Hour))
	users := filepath.Join(dir, "users.yaml")
	writeUsers(t, users, hashes(t, "dave"), "dave")
	d := startDaemon(t, "--root", root, "--users", users, "--listen", "127.0.0.1:0", "--implicit-listen", "127.0.0.1:0",
		"--tls-cert", certFile, "--tls-key", keyFile, "--passive-ports", "0", "--fail-delay", "10ms")
	if got := leafSerial(t, d.addrs["implicit"]); got != "1001" {
		t.Fatalf("serial %s at start, want 1001", got)
	}
	var oldSerial string
	old, err := login(d.addrs["explicit"], "dave", "dave-pw", &oldSerial)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Quit()
	if oldSerial != "1001" {
		t.Fatalf("old session's serial %s, want 1001", oldSerial)
	}

	testcert.Write(t, certDir, 1002, time.Now().Add(24*time.Hour))
	if line := d.hup(1); !strings.Contains(line, "certificate=reloaded") {
		t.Fatalf("reload: %s", line)
	}
	if got := leafSerial(t, d.addrs["implicit"]); got != "1002" {
		t.Fatalf("implicit FTPS after SIGHUP: serial %s, want 1002", got)
	}
	var newSerial string
	fresh, err := login(d.addrs["explicit"], "dave", "dave-pw", &newSerial)
	if err != nil {
		t.Fatal(err)
	}
	fresh.Quit()
	if newSerial != "1002" {
		t.Fatalf("explicit FTPS after SIGHUP: serial %s, want 1002", newSerial)
	}
	data := bytes.Repeat([]byte("renewed "), 1<<15)
	if err := old.Stor("after-reload.bin", bytes.NewReader(data)); err != nil {
		t.Fatalf("upload in the session opened before the reload: %v\n%s", err, d.logs.String())
	}
	r, err := old.Retr("after-reload.bin")
	if err != nil {
		t.Fatalf("download in the session opened before the reload: %v", err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("download differs (%d of %d bytes): %v", len(got), len(data), err)
	}

	replaceFile(t, certFile, "-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n")
	if line := d.hup(2); !strings.Contains(line, "certificate=kept") {
		t.Fatalf("reload of a broken certificate: %s", line)
	}
	kept := d.logs.Matching("keeping the previous TLS certificate")
	if len(kept) != 1 || !strings.Contains(kept[0], "level=ERROR") || !strings.Contains(kept[0], certFile) {
		t.Fatalf("want one ERROR line naming %s, got %q", certFile, kept)
	}
	if got := leafSerial(t, d.addrs["implicit"]); got != "1002" {
		t.Fatalf("after a broken certificate: serial %s, want the previous 1002", got)
	}
	if _, err := old.CurrentDir(); err != nil {
		t.Fatalf("old session after a broken certificate: %v", err)
	}
	d.stop()
}

// gatedReader yields first, reports it on halfway, waits for release, then yields rest.
type gatedReader struct {
	first, rest []byte
	halfway     chan<- struct{}
	release     <-chan struct{}
	waited      bool
}

func (g *gatedReader) Read(p []byte) (int, error) {
	if len(g.first) > 0 {
		n := copy(p, g.first)
		g.first = g.first[n:]
		return n, nil
	}
	if !g.waited {
		g.waited = true
		g.halfway <- struct{}{}
		<-g.release
	}
	if len(g.rest) == 0 {
		return 0, io.EOF
	}
	n := copy(p, g.rest)
	g.rest = g.rest[n:]
	return n, nil
}

// A reload (users file with one more account, a renewed certificate) while 8 uploads are half sent: every upload
// completes with 226 and its file is byte-identical to what was sent.
func TestBinarySIGHUPDuringParallelUploads(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	certDir := filepath.Join(dir, "tls")
	for _, d := range []string{root, certDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	certFile, keyFile := testcert.Write(t, certDir, 1, time.Now().Add(24*time.Hour))
	users := filepath.Join(dir, "users.yaml")
	h := hashes(t, "dave", "erin")
	writeUsers(t, users, h, "dave")
	d := startDaemon(t, "--root", root, "--users", users, "--listen", "127.0.0.1:0", "--tls-cert", certFile,
		"--tls-key", keyFile, "--passive-ports", "0", "--fail-delay", "10ms")

	const uploads = 8
	halfway := make(chan struct{}, uploads)
	release := make(chan struct{})
	errs := make(chan error, uploads)
	want := make([][]byte, uploads)
	for i := range uploads {
		want[i] = bytes.Repeat([]byte{byte('a' + i)}, 1<<20+i*4099)
		c, err := login(d.addrs["explicit"], "dave", "dave-pw", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Quit()
		half := len(want[i]) / 2
		go func() {
			errs <- c.Stor("up"+string(rune('0'+i))+".bin", &gatedReader{first: want[i][:half], rest: want[i][half:],
				halfway: halfway, release: release})
		}()
	}
	for range uploads {
		select {
		case <-halfway:
		case err := <-errs:
			t.Fatalf("an upload ended before the reload: %v", err)
		case <-time.After(30 * time.Second):
			t.Fatal("uploads did not get halfway")
		}
	}
	writeUsers(t, users, h, "dave", "erin")
	testcert.Write(t, certDir, 2, time.Now().Add(24*time.Hour))
	if line := d.hup(1); !strings.Contains(line, "users=reloaded") || !strings.Contains(line, "certificate=reloaded") {
		t.Fatalf("reload: %s", line)
	}
	close(release)
	for range uploads {
		if err := <-errs; err != nil {
			t.Errorf("upload across the reload: %v", err)
		}
	}
	for i := range uploads {
		got, err := os.ReadFile(filepath.Join(root, "up"+string(rune('0'+i))+".bin"))
		if err != nil || !bytes.Equal(got, want[i]) {
			t.Errorf("upload %d: %d bytes on disk, want %d identical: %v", i, len(got), len(want[i]), err)
		}
	}
	erin, err := login(d.addrs["explicit"], "erin", "erin-pw", nil)
	if err != nil {
		t.Fatalf("user added by the reload: %v", err)
	}
	erin.Quit()
	d.stop()
}
