package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
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
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ftpfront-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "ftpfront")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		os.Stderr.Write(out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"--root", "/tmp"},
		{"--root", "/tmp", "--users", "u.yaml", "--passive-ports", "9-1"},
		{"--root", "/tmp", "--users", "u.yaml", "--passive-host-map", "nonsense"},
		{"--root", "/tmp", "--users", "u.yaml", "--log-level", "loud"},
		{"--root", "/tmp", "--users", "u.yaml", "--require-mount", "sometimes"},
		{"--root", "/tmp", "--users", "u.yaml", "--health-interval", "0s"},
		{"--root", "/tmp", "--users", "u.yaml", "--max-passive-per-ip", "-1"},
		{"--root", "/tmp", "--users", "u.yaml", "--proxy-protocol-from", "10.0.0.0/33"},
		{"--root", "/tmp", "--users", "u.yaml", "--proxy-protocol-data"},
		{"--nope"},
	} {
		var stderr bytes.Buffer
		if code := run(args, os.Stdin, io.Discard, &stderr); code != exitUsage {
			t.Errorf("run(%q) = %d, want %d (%s)", args, code, exitUsage, stderr.String())
		}
	}
}

func TestMissingUsersFileIsConfigError(t *testing.T) {
	var stderr bytes.Buffer
	code := run([]string{"--root", t.TempDir(), "--users", "/nonexistent/users.yaml", "--tls-self-signed", "--listen", "127.0.0.1:0"},
		os.Stdin, io.Discard, &stderr)
	if code != exitConfig || !strings.Contains(stderr.String(), "users") {
		t.Fatalf("code %d, stderr %s", code, stderr.String())
	}
}

// The binary end to end: passwd hashes a password from stdin, the server starts with a self-signed certificate
// and reports its address in the ready file, a TLS client logs in and transfers, the audit log and /healthz
// work, and SIGTERM shuts down with exit 0.
func TestBinaryEndToEnd(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	if err := os.MkdirAll(filepath.Join(root, "dave"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "passwd")
	cmd.Stdin = strings.NewReader("s3cret-pw\n")
	hash, err := cmd.Output()
	if err != nil || !strings.HasPrefix(string(hash), "$argon2id$") {
		t.Fatalf("passwd: %q, %v", hash, err)
	}
	users := filepath.Join(dir, "users.yaml")
	yaml := "users:\n  - name: dave\n    password: '" + strings.TrimSpace(string(hash)) + "'\n    home: dave\n"
	if err := os.WriteFile(users, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	ready := filepath.Join(dir, "ready")
	audit := filepath.Join(dir, "audit.log")
	srv := exec.Command(binary, "--root", root, "--users", users, "--listen", "127.0.0.1:0",
		"--implicit-listen", "127.0.0.1:0", "--tls-self-signed", "--passive-ports", "0", "--ready-file", ready,
		"--audit-log", audit, "--health-addr", "127.0.0.1:0", "--fail-delay", "10ms")
	var logs logbuf.Buffer
	srv.Stderr = &logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	t.Cleanup(func() {
		srv.Process.Kill()
		<-exited
	})
	addrs := waitReady(t, ready, exited, &logs)

	c, err := ftp.Dial(addrs["explicit"], ftp.DialWithExplicitTLS(&tls.Config{InsecureSkipVerify: true}), ftp.DialWithTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login("dave", "s3cret-pw"); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	if err := c.Stor("up.bin", bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(root, "dave", "up.bin")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("uploaded file differs: %v", err)
	}
	c.Quit()

	ic, err := ftp.Dial(addrs["implicit"], ftp.DialWithTLS(&tls.Config{InsecureSkipVerify: true}), ftp.DialWithTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := ic.Login("dave", "s3cret-pw"); err != nil {
		t.Fatal(err)
	}
	r, err := ic.Retr("up.bin")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("implicit FTPS download differs: %v", err)
	}
	ic.Quit()

	health := healthAddr(t, &logs)
	resp, err := http.Get("http://" + health + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/healthz = %d", resp.StatusCode)
	}

	srv.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, logs.String())
		}
		exited <- nil
	case <-time.After(30 * time.Second):
		t.Fatal("no exit 30s after SIGTERM")
	}
	log, _ := os.ReadFile(audit)
	for _, want := range []string{`"event":"login_ok"`, `"event":"upload"`, `"event":"download"`, `"path":"/up.bin"`} {
		if !strings.Contains(string(log), want) {
			t.Errorf("audit log lacks %s:\n%s", want, log)
		}
	}
	if !strings.Contains(logs.String(), "sha256=") {
		t.Errorf("self-signed certificate fingerprint not logged:\n%s", logs.String())
	}
}

func waitReady(t *testing.T, ready string, exited chan error, logs *logbuf.Buffer) map[string]string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			t.Fatalf("server exited before ready: %v\n%s", err, logs.String())
		default:
		}
		if b, err := os.ReadFile(ready); err == nil {
			m := map[string]string{}
			for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				k, v, _ := strings.Cut(l, "=")
				m[k] = v
			}
			return m
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no ready file after 30s:\n%s", logs.String())
	return nil
}

func healthAddr(t *testing.T, logs *logbuf.Buffer) string {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	for sc.Scan() {
		l := sc.Text()
		if strings.Contains(l, "health check listening") {
			if i := strings.Index(l, "addr="); i >= 0 {
				return strings.Fields(l[i+5:])[0]
			}
		}
	}
	t.Fatalf("no health check address logged:\n%s", logs.String())
	return ""
}

// Settings come from the configuration file (FTPFRONT_CONFIG or --config) and FTPFRONT_* variables, under the
// command line.
func TestConfigFileAndEnvironment(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "ftpfront.conf")
	os.WriteFile(conf, []byte("users = /etc/u.yaml   # comment\nlisten = 127.0.0.1:0\ntls-self-signed\npassive-ports = 0\nidle-timeout = 7m\n"), 0o644)
	t.Setenv("FTPFRONT_CONFIG", conf)
	t.Setenv("FTPFRONT_IDLE_TIMEOUT", "9m")
	c, code := parseFlags([]string{"--root", dir, "--listen", "127.0.0.1:2999"}, io.Discard)
	if code >= 0 {
		t.Fatalf("parseFlags exit %d", code)
	}
	if c.users != "/etc/u.yaml" || !c.opts.TLSSelfSigned || c.opts.PassivePortMin != 0 {
		t.Fatalf("file settings not applied: %+v", c)
	}
	if c.opts.IdleTimeout != 9*time.Minute {
		t.Fatalf("environment did not override the file: idle timeout %v", c.opts.IdleTimeout)
	}
	if c.opts.Listen != "127.0.0.1:2999" {
		t.Fatalf("command line did not override the file: listen %q", c.opts.Listen)
	}

	os.WriteFile(conf, []byte("no-such-flag = 1\n"), 0o644)
	var stderr bytes.Buffer
	if _, code := parseFlags([]string{"--root", dir}, &stderr); code != exitConfig || !strings.Contains(stderr.String(), "no-such-flag") {
		t.Fatalf("unknown key: exit %d, %s", code, stderr.String())
	}
}

// The shipped example configuration parses (with the root the systemd unit passes).
func TestExampleConfigParses(t *testing.T) {
	t.Setenv("FTPFRONT_CONFIG", "")
	c, code := parseFlags([]string{"--config", "../../scripts/ftpfront.conf.example", "--root", t.TempDir()}, io.Discard)
	if code >= 0 {
		t.Fatalf("example configuration: exit %d", code)
	}
	if c.opts.Listen != "0.0.0.0:21" || c.opts.PassivePortMin != 40000 || c.auditLog != "/var/log/ftpfront/audit.log" {
		t.Fatalf("example configuration read as %+v", c.opts)
	}
}

// --require-mount=true on a directory that is not a mount point stops the binary at start with exit 3 and a
// message naming the cause, before it listens.
func TestRequireMountTrueOnPlainDirectory(t *testing.T) {
	dir := t.TempDir()
	ready := filepath.Join(dir, "ready")
	cmd := exec.Command(binary, "--root", dir, "--users", filepath.Join(dir, "users.yaml"), "--require-mount=true",
		"--tls-self-signed", "--listen", "127.0.0.1:0", "--ready-file", ready)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitConfig {
		t.Fatalf("exit %v, want code %d:\n%s", err, exitConfig, stderr.String())
	}
	if !strings.Contains(stderr.String(), "is not a mount point") {
		t.Fatalf("the message does not name the cause:\n%s", stderr.String())
	}
	if _, err := os.Stat(ready); err == nil {
		t.Fatal("the server got ready")
	}
}

// --require-mount comes from the configuration file and the environment like every flag; the default is auto.
// --health-interval defaults to ftpfront.DefaultHealthInterval and is taken from the command line.
func TestHealthIntervalFlag(t *testing.T) {
	t.Setenv("FTPFRONT_CONFIG", "")
	base := []string{"--root", t.TempDir(), "--users", "u.yaml", "--tls-self-signed"}
	for _, tc := range []struct {
		args []string
		want time.Duration
	}{{nil, ftpfront.DefaultHealthInterval}, {[]string{"--health-interval", "90s"}, 90 * time.Second}} {
		c, code := parseFlags(append(base, tc.args...), io.Discard)
		if code >= 0 {
			t.Fatalf("%q: exit %d", tc.args, code)
		}
		if c.healthInterval != tc.want {
			t.Errorf("%q: health interval %v, want %v", tc.args, c.healthInterval, tc.want)
		}
	}
}

// --max-passive-per-ip defaults to 8 and maps onto Options.MaxPassivePerIP.
func TestMaxPassivePerIPFlag(t *testing.T) {
	t.Setenv("FTPFRONT_CONFIG", "")
	base := []string{"--root", t.TempDir(), "--users", "u.yaml", "--tls-self-signed"}
	for _, tc := range []struct {
		args []string
		want int
	}{{nil, 8}, {[]string{"--max-passive-per-ip", "3"}, 3}, {[]string{"--max-passive-per-ip", "0"}, 0}} {
		c, code := parseFlags(append(base, tc.args...), io.Discard)
		if code >= 0 {
			t.Fatalf("%q: exit %d", tc.args, code)
		}
		if c.opts.MaxPassivePerIP != tc.want {
			t.Errorf("%q: MaxPassivePerIP %d, want %d", tc.args, c.opts.MaxPassivePerIP, tc.want)
		}
	}
}

// --proxy-protocol-from is off by default and maps onto the FTPS and the SFTP options alike.
func TestProxyProtocolFlags(t *testing.T) {
	t.Setenv("FTPFRONT_CONFIG", "")
	base := []string{"--root", t.TempDir(), "--users", "u.yaml", "--tls-self-signed"}
	c, code := parseFlags(base, io.Discard)
	if code >= 0 || len(c.opts.ProxyProtocolFrom) != 0 || c.opts.ProxyProtocolData || len(c.sftp.ProxyProtocolFrom) != 0 {
		t.Fatalf("default: exit %d, %+v", code, c)
	}
	c, code = parseFlags(append(base, "--proxy-protocol-from", "10.0.9.0/24, 2001:db8::7", "--proxy-protocol-data", "--proxy-header-timeout", "2s"), io.Discard)
	if code >= 0 {
		t.Fatalf("exit %d", code)
	}
	want := "[10.0.9.0/24 2001:db8::7/128]"
	if got := fmt.Sprint(c.opts.ProxyProtocolFrom); got != want || fmt.Sprint(c.sftp.ProxyProtocolFrom) != want {
		t.Fatalf("ProxyProtocolFrom %s, sftp %v", got, c.sftp.ProxyProtocolFrom)
	}
	if !c.opts.ProxyProtocolData || c.opts.ProxyHeaderTimeout != 2*time.Second || c.sftp.ProxyHeaderTimeout != 2*time.Second {
		t.Fatalf("data %v, timeout %v/%v", c.opts.ProxyProtocolData, c.opts.ProxyHeaderTimeout, c.sftp.ProxyHeaderTimeout)
	}
}

func TestRequireMountLayering(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "ftpfront.conf")
	os.WriteFile(conf, []byte("users = /etc/u.yaml\ntls-self-signed\nrequire-mount = true\n"), 0o644)
	t.Setenv("FTPFRONT_REQUIRE_MOUNT", "")
	os.Unsetenv("FTPFRONT_REQUIRE_MOUNT")
	t.Setenv("FTPFRONT_CONFIG", "")
	check := func(args []string, want ftpfront.RequireMount) {
		t.Helper()
		c, code := parseFlags(append([]string{"--root", dir, "--users", "u.yaml", "--tls-self-signed"}, args...), io.Discard)
		if code >= 0 {
			t.Fatalf("%q: exit %d", args, code)
		}
		if c.requireMount != want {
			t.Errorf("%q: require-mount %q, want %q", args, c.requireMount, want)
		}
	}
	check(nil, ftpfront.RequireMountAuto)
	check([]string{"--config", conf}, ftpfront.RequireMountTrue)
	t.Setenv("FTPFRONT_REQUIRE_MOUNT", "false")
	check([]string{"--config", conf}, ftpfront.RequireMountFalse)
	check([]string{"--config", conf, "--require-mount", "auto"}, ftpfront.RequireMountAuto)
}

// TestSystemdUnit: scripts/systemd/ftpfront.service requires the mount unit and starts after it without BindsTo=
// (which would stop ftpfront when s3mount@ fails and leave it stopped after s3mount@'s automatic restart), and its
// ExecStart, with the example configuration the unit's FTPFRONT_CONFIG names, is a valid command line that
// requires --root to be a mount point; ExecReload sends SIGHUP to the main process (TestBinarySIGHUPReloadsUsers
// shows what the binary does with it).
func TestSystemdUnit(t *testing.T) {
	b, err := os.ReadFile("../../scripts/systemd/ftpfront.service")
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string][]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			keys[k] = append(keys[k], v)
		}
	}
	const mountUnit = "s3mount@srv-ftp.service"
	if got := keys["Requires"]; len(got) != 1 || got[0] != mountUnit {
		t.Errorf("Requires=%q, want %s", got, mountUnit)
	}
	if got := strings.Join(keys["After"], " "); !strings.Contains(got, mountUnit) {
		t.Errorf("After=%q lacks %s", got, mountUnit)
	}
	for _, k := range []string{"BindsTo", "PartOf"} {
		if v, ok := keys[k]; ok {
			t.Errorf("%s=%q: the unit would stop with a failed mount and not come back with its restart", k, v)
		}
	}
	if got := keys["Restart"]; len(got) != 1 || got[0] != "on-failure" {
		t.Errorf("Restart=%q, want on-failure (a start refused while the mount is down is retried)", got)
	}
	if got := keys["ExecReload"]; len(got) != 1 || strings.Join(strings.Fields(got[0]), " ") != "/bin/kill -HUP $MAINPID" {
		t.Errorf("ExecReload=%q, want /bin/kill -HUP $MAINPID (systemctl reload re-reads users and certificate)", got)
	}
	fields := strings.Fields(strings.Join(keys["ExecStart"], ""))
	if len(fields) < 2 || filepath.Base(fields[0]) != "ftpfront" {
		t.Fatalf("ExecStart=%q does not run ftpfront", keys["ExecStart"])
	}
	t.Setenv("FTPFRONT_CONFIG", "../../scripts/ftpfront.conf.example")
	c, code := parseFlags(fields[1:], io.Discard)
	if code >= 0 {
		t.Fatalf("ExecStart %q with the example configuration: exit %d", fields, code)
	}
	if c.root != "/srv/ftp" || c.requireMount != ftpfront.RequireMountTrue {
		t.Errorf("ExecStart %q: root %q, require-mount %q; want /srv/ftp and true", fields, c.root, c.requireMount)
	}
}
