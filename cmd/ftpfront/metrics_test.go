package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"
	"github.com/s3ftp/s3ftp/ftpfront"
	"github.com/s3ftp/s3ftp/internal/logbuf"
	"github.com/s3ftp/s3ftp/internal/metrics"
)

// scrape GETs http://addr/metrics and returns its samples keyed by `name{labels}` as written.
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scraping %s: %v", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("/metrics on %s: %d %q\n%s", addr, resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	samples, err := metrics.ParseText(resp.Body)
	if err != nil {
		t.Fatalf("/metrics on %s: %v", addr, err)
	}
	return samples
}

// jsonLogAddr returns the "addr" of the first JSON log line with message msg; every line read must be JSON.
func jsonLogAddr(t *testing.T, logs *logbuf.Buffer, msg string) string {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("--log-format json wrote a line that is not JSON: %q: %v", sc.Text(), err)
		}
		for _, k := range []string{"time", "level", "msg"} {
			if _, ok := rec[k]; !ok {
				t.Fatalf("JSON log line without %q: %s", k, sc.Text())
			}
		}
		if rec["msg"] == msg {
			if a, ok := rec["addr"].(string); ok {
				return a
			}
		}
	}
	t.Fatalf("no JSON log line %q with an addr:\n%s", msg, logs.String())
	return ""
}

// TestMetricsAfterFTPSTraffic: with --metrics-addr, --health-addr and --log-format json, a real FTPS client's
// failed login, login, upload and download show in the counters on both listeners, the session gauge follows
// the control connection, and every log line is JSON.
func TestMetricsAfterFTPSTraffic(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	if err := os.MkdirAll(filepath.Join(root, "erin"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "passwd")
	cmd.Stdin = strings.NewReader("metrics-pw\n")
	hash, err := cmd.Output()
	if err != nil {
		t.Fatalf("passwd: %v", err)
	}
	users := filepath.Join(dir, "users.yaml")
	yaml := "users:\n  - name: erin\n    password: '" + strings.TrimSpace(string(hash)) + "'\n    home: erin\n"
	if err := os.WriteFile(users, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	ready := filepath.Join(dir, "ready")
	srv := exec.Command(binary, "--root", root, "--users", users, "--listen", "127.0.0.1:0", "--tls-self-signed",
		"--passive-ports", "0", "--ready-file", ready, "--metrics-addr", "127.0.0.1:0", "--health-addr", "127.0.0.1:0",
		"--log-format", "json", "--fail-delay", "10ms")
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
	metricsAddr := jsonLogAddr(t, &logs, "metrics listening")
	healthAddr := jsonLogAddr(t, &logs, "health check listening")

	before := scrape(t, metricsAddr)
	for _, name := range []string{"ftpfront_sessions_active", "ftpfront_bans_total", "go_goroutines"} {
		if _, ok := before[name]; !ok {
			t.Errorf("%s missing from the first scrape: %v", name, before)
		}
	}
	if before["ftpfront_sessions_active"] != 0 {
		t.Errorf("sessions before any client: %v", before["ftpfront_sessions_active"])
	}

	dial := func() *ftp.ServerConn {
		c, err := ftp.Dial(addrs["explicit"], ftp.DialWithExplicitTLS(&tls.Config{InsecureSkipVerify: true}),
			ftp.DialWithTimeout(10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	bad := dial()
	if err := bad.Login("erin", "wrong"); err == nil {
		t.Fatal("login with a wrong password succeeded")
	}
	bad.Quit()

	c := dial()
	if err := c.Login("erin", "metrics-pw"); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("metrics!"), 40000) // 320000 bytes
	if err := c.Stor("m.bin", bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	r, err := c.Retr("m.bin")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("download differs: %v", err)
	}
	if during := scrape(t, metricsAddr)["ftpfront_sessions_active"]; during != 1 {
		t.Errorf("ftpfront_sessions_active = %v with one logged-in client, want 1", during)
	}
	c.Quit()

	// The server ends a session after answering QUIT; wait for the gauge to reach 0 before the final scrape.
	deadline := time.Now().Add(30 * time.Second)
	for scrape(t, metricsAddr)["ftpfront_sessions_active"] != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("ftpfront_sessions_active still not 0 30s after QUIT")
		}
		time.Sleep(20 * time.Millisecond)
	}
	n := float64(len(data))
	want := map[string]float64{
		`ftpfront_logins_total{result="ok"}`:                   1,
		`ftpfront_logins_total{result="failed"}`:               1,
		`ftpfront_transfers_total{dir="upload",result="ok"}`:   1,
		`ftpfront_transfers_total{dir="download",result="ok"}`: 1,
		`ftpfront_transfer_bytes_total{dir="upload"}`:          n,
		`ftpfront_transfer_bytes_total{dir="download"}`:        n,
		`ftpfront_sessions_active`:                             0,
		`ftpfront_bans_total`:                                  0,
	}
	for name, s := range map[string]map[string]float64{"--metrics-addr": scrape(t, metricsAddr), "--health-addr": scrape(t, healthAddr)} {
		for k, v := range want {
			if got, ok := s[k]; !ok || got != v {
				t.Errorf("%s: %s = %v (present %v), want %v", name, k, got, ok, v)
			}
		}
	}
	if resp, err := http.Get("http://" + metricsAddr + "/healthz"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("/healthz on the metrics-only listener: %v %v, want 404", resp, err)
	} else {
		resp.Body.Close()
	}
	jsonLogAddr(t, &logs, "metrics listening") // every line logged so far is JSON
}

// A metrics address that cannot be bound stops the start with the listen exit code and a line naming it.
func TestMetricsAddrTaken(t *testing.T) {
	dir := t.TempDir()
	hash, err := ftpfront.HashPassword("pw")
	if err != nil {
		t.Fatal(err)
	}
	users := filepath.Join(dir, "users.yaml")
	if err := os.WriteFile(users, []byte("users:\n  - name: u\n    password: '"+hash+"'\n    home: .\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	var stderr bytes.Buffer
	code := run([]string{"--root", dir, "--users", users, "--listen", "127.0.0.1:0", "--tls-self-signed",
		"--passive-ports", "0", "--metrics-addr", taken.Addr().String()}, os.Stdin, io.Discard, &stderr)
	if code != exitListen || !strings.Contains(stderr.String(), "cannot listen for metrics") {
		t.Fatalf("exit %d, stderr %s; want %d and the cause", code, stderr.String(), exitListen)
	}
}
