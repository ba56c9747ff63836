package faults

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
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
	"github.com/s3ftp/s3ftp/internal/miniotest"
	"github.com/s3ftp/s3ftp/internal/mountinfo"
)

// ftpServer is an ftpfront process started by a test; it is stopped in t.Cleanup.
type ftpServer struct {
	addr, health string // explicit FTPS and /healthz addresses
	user, pass   string
	audit        string // audit log file
	log          string // the process's log file
	cmd          *exec.Cmd
}

// startFTPFront builds ftpfront from ../cmd/ftpfront and serves root with one user whose home is root.
func startFTPFront(t *testing.T, root string, args ...string) *ftpServer {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "ftpfront")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/ftpfront").CombinedOutput(); err != nil {
		t.Fatalf("go build ../cmd/ftpfront: %v\n%s", err, out)
	}
	s := &ftpServer{user: "guard", pass: "guard-pw-1", audit: filepath.Join(dir, "audit.log"), log: filepath.Join(dir, "ftpfront.log")}
	hash, err := ftpfront.HashPassword(s.pass)
	if err != nil {
		t.Fatal(err)
	}
	users := filepath.Join(dir, "users.yaml")
	if err := os.WriteFile(users, fmt.Appendf(nil, "users:\n  - name: %s\n    password: '%s'\n    home: /\n", s.user, hash), 0o600); err != nil {
		t.Fatal(err)
	}
	ready := filepath.Join(dir, "ready")
	all := append([]string{"--root", root, "--users", users, "--listen", "127.0.0.1:0", "--tls-self-signed",
		"--passive-ports", "0", "--ready-file", ready, "--health-addr", "127.0.0.1:0", "--audit-log", s.audit,
		"--fail-delay", "0s"}, args...)
	s.cmd = exec.Command(bin, all...)
	logPath := s.log
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stderr = logFile
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- s.cmd.Wait(); logFile.Close() }()
	t.Cleanup(func() {
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			t.Errorf("ftpfront still runs 30 s after SIGTERM; killing it")
			s.cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("ftpfront log:\n%s", readFile(logPath))
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-exited:
			t.Fatalf("ftpfront exited before it was ready: %v\n%s", err, readFile(logPath))
		default:
		}
		b, err := os.ReadFile(ready)
		if err == nil && len(b) > 0 {
			s.addr = strings.TrimPrefix(strings.TrimSpace(string(b)), "explicit=")
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ftpfront not ready after 30 s:\n%s", readFile(logPath))
		}
		time.Sleep(20 * time.Millisecond)
	}
	sc := bufio.NewScanner(strings.NewReader(readFile(logPath)))
	for sc.Scan() {
		if l := sc.Text(); strings.Contains(l, "health check listening") {
			if i := strings.Index(l, "addr="); i >= 0 {
				s.health = strings.Fields(l[i+5:])[0]
			}
		}
	}
	if s.health == "" {
		t.Fatalf("no health check address logged:\n%s", readFile(logPath))
	}
	return s
}

// login opens an explicit-FTPS session.
func (s *ftpServer) login(t *testing.T) *ftp.ServerConn {
	t.Helper()
	c, err := ftp.Dial(s.addr, ftp.DialWithExplicitTLS(&tls.Config{InsecureSkipVerify: true}), ftp.DialWithTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(s.user, s.pass); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Quit() })
	return c
}

// healthz returns /healthz's status code.
func (s *ftpServer) healthz(t *testing.T) int {
	t.Helper()
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Get("http://" + s.health + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// replyCode returns the FTP reply code of err, 0 when err carries none.
func replyCode(err error) int {
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code
	}
	return 0
}

// TestFTPRefusesWhileMountDown runs ftpfront over a real s3mount over MinIO and kills s3mount with SIGKILL. It
// asserts that:
//
//   - while the mount is up, an FTPS upload is answered 226 and becomes an object;
//   - right after the kill (dead mount or already removed by the unmount watcher) and after the watcher removed
//     the mount, STOR, APPE and MKD from a session opened before the crash and an upload by curl from a new
//     session are refused with 451, LIST gets 451, /healthz answers 503, the audit log records the refused
//     uploads, and nothing appears in the local directory under the mount point;
//   - after a new s3mount mounts the same directory, the session opened before the crash uploads again (226),
//     /healthz answers 200, and the bucket holds exactly the two uploads answered 226, byte-identical.
func TestFTPRefusesWhileMountDown(t *testing.T) {
	srv := miniotest.Shared(t)
	bucket := srv.NewBucket(t)
	client := srv.Client(t, bucket)
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Fatalf("curl is needed (the test set-up installs it): %v", err)
	}
	args := append([]string{"--state-dir", t.TempDir()}, smallLimits...)
	m := startMount(t, srv, srv.Endpoint, bucket, args...)
	fs := startFTPFront(t, m.dir)
	var lost, leaks int64
	refused := 0
	var checkCost time.Duration // the guard's check (two stats) on the live mount, per call
	defer func() {
		summary(t, 2+refused, lost, leaks, fmt.Sprintf("refused_451=%d", refused),
			fmt.Sprintf("guard_check_ns=%d", checkCost.Nanoseconds()))
	}()

	// What the guard costs each file operation on a live s3mount.
	g, err := ftpfront.NewMountGuard(m.dir, ftpfront.RequireMountTrue, nil)
	if err != nil {
		t.Fatal(err)
	}
	const checks = 2000
	began := time.Now()
	for range checks {
		if err := g.Check(); err != nil {
			t.Fatalf("guard check on the live mount: %v", err)
		}
	}
	checkCost = time.Since(began) / checks
	t.Logf("mount guard check on the live s3mount: %v per check (%d checks)", checkCost, checks)

	payload := func(seed uint64) []byte {
		b, _ := io.ReadAll(prng(seed, 300<<10))
		return b
	}
	c := fs.login(t)
	if err := c.Stor("before.bin", bytes.NewReader(payload(21))); err != nil {
		t.Fatalf("upload while mounted: %v", err)
	}
	if code := fs.healthz(t); code != http.StatusOK {
		t.Fatalf("/healthz while mounted: %d", code)
	}

	// The refusals a client sees: the same in both phases of the outage.
	refusedAll := func(phase string) {
		t.Helper()
		for name, op := range map[string]func() error{
			"STOR": func() error { return c.Stor("during.bin", bytes.NewReader(payload(22))) },
			"APPE": func() error { return c.Append("before.bin", bytes.NewReader(payload(23))) },
			"MKD":  func() error { return c.MakeDir("during-dir") },
			"LIST": func() error { _, err := c.List("/"); return err },
		} {
			if err := op(); replyCode(err) != 451 {
				t.Errorf("%s %s: %v, want 451", phase, name, err)
			} else {
				refused++
			}
		}
	}

	syscall.Kill(m.pid, syscall.SIGKILL)
	killed := time.Now()
	if !waitExit(m.pid, 30*time.Second) {
		t.Fatalf("s3mount %d survived SIGKILL", m.pid)
	}
	m.pid = 0
	refusedAll("right after the kill:")

	took, ok := waitUnmounted(m.dir, killed, autoUnmountBound)
	if !ok {
		leaks++
		t.Errorf("%s is still mounted %v after SIGKILL; unmounting it lazily", m.dir, took)
		if err := mountinfo.LazyUnmount(m.dir); err != nil {
			t.Fatal(err)
		}
	}
	refusedAll("after the watcher's unmount:")
	src := filepath.Join(t.TempDir(), "curl.bin")
	if err := os.WriteFile(src, payload(24), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, curl, "-sS", "--ssl-reqd", "-k", "-T", src,
		fmt.Sprintf("ftp://%s:%s@%s/curl.bin", fs.user, fs.pass, fs.addr)).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 25 || !strings.Contains(string(out), "451") {
		t.Errorf("curl upload while the mount is down: %v, %s; want exit 25 (upload failed) with 451", err, out)
	} else {
		refused++
		t.Logf("curl while the mount is down: %s", strings.TrimSpace(string(out)))
	}
	if code := fs.healthz(t); code != http.StatusServiceUnavailable {
		t.Errorf("/healthz with the mount down: %d, want 503", code)
	}
	ents, err := os.ReadDir(m.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		leaks++
		t.Errorf("%s appeared in the local directory under the mount point", e.Name())
	}
	audit := readFile(fs.audit)
	for _, p := range []string{"/during.bin", "/curl.bin"} {
		if !strings.Contains(audit, `"path":"`+p+`"`) || !strings.Contains(audit, "storage unavailable") {
			t.Errorf("the audit log has no refused upload of %s:\n%s", p, audit)
		}
	}
	if log := readFile(fs.log); strings.Count(log, "served root is not mounted") != 1 {
		t.Errorf("want one warning naming the unmount in ftpfront's log:\n%s", log)
	}

	startMountAt(t, srv, srv.Endpoint, bucket, m.dir, args...)
	if err := c.Stor("after.bin", bytes.NewReader(payload(25))); err != nil {
		t.Fatalf("upload after s3mount mounted again (session opened before the crash): %v", err)
	}
	if code := fs.healthz(t); code != http.StatusOK {
		t.Errorf("/healthz after s3mount mounted again: %d, want 200", code)
	}
	// Besides the two uploads answered 226, the bucket holds the marker of the health probe's reserved directory
	// (created by the first /healthz probe) and no probe file.
	lost += checkObjects(t, client, expected{"before.bin": sha256.Sum256(payload(21)), "after.bin": sha256.Sum256(payload(25)),
		ftpfront.HealthDir + "/": sha256.Sum256(nil)})
	t.Logf("refused with 451 while the mount was down: %d commands and uploads; mount removed %v after SIGKILL",
		refused, took.Round(time.Millisecond))
}
