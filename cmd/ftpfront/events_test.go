package main

import (
	"bytes"
	"crypto/hmac"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"github.com/s3ftp/s3ftp/events"
	"github.com/s3ftp/s3ftp/internal/logbuf"
	"golang.org/x/crypto/ssh"
)

// front is one run of the binary.
type front struct {
	cmd    *exec.Cmd
	logs   *logbuf.Buffer
	exited chan error
	addrs  map[string]string
}

// eventsFixture is a root with user "dave" (password "event-pw") and a users file.
type eventsFixture struct {
	dir, root, users string
}

func newEventsFixture(t *testing.T) *eventsFixture {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	if err := os.MkdirAll(filepath.Join(root, "dave", "in"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "passwd")
	cmd.Stdin = strings.NewReader("event-pw\n")
	hash, err := cmd.Output()
	if err != nil {
		t.Fatalf("passwd: %v", err)
	}
	users := filepath.Join(dir, "users.yaml")
	yaml := "users:\n  - name: dave\n    password: '" + strings.TrimSpace(string(hash)) + "'\n    home: dave\n"
	if err := os.WriteFile(users, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return &eventsFixture{dir: dir, root: root, users: users}
}

// start runs the binary with the fixture's root and users plus args, and waits for its ready file.
func (fx *eventsFixture) start(t *testing.T, args ...string) *front {
	t.Helper()
	ready := filepath.Join(fx.dir, "ready")
	os.Remove(ready)
	all := append([]string{"--root", fx.root, "--users", fx.users, "--listen", "127.0.0.1:0", "--tls-self-signed",
		"--passive-ports", "0", "--ready-file", ready, "--fail-delay", "10ms"}, args...)
	f := &front{cmd: exec.Command(binary, all...), logs: &logbuf.Buffer{}, exited: make(chan error, 1)}
	f.cmd.Stderr = f.logs
	if err := f.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { f.exited <- f.cmd.Wait() }()
	t.Cleanup(f.kill)
	f.addrs = waitReady(t, ready, f.exited, f.logs)
	return f
}

// kill sends SIGKILL and waits for the exit; it may be called more than once.
func (f *front) kill() {
	f.cmd.Process.Kill()
	if err, ok := <-f.exited; ok {
		_ = err
		close(f.exited)
	}
}

// curlUpload uploads data to path over explicit FTPS with curl.
func curlUpload(f *front, path string, data []byte) error {
	cmd := exec.Command("curl", "--silent", "--show-error", "--ssl-reqd", "--insecure", "--max-time", "60",
		"--user", "dave:event-pw", "-T", "-", "ftp://"+f.addrs["explicit"]+path)
	cmd.Stdin = bytes.NewReader(data)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("curl upload %s: %v: %s", path, err, out)
	}
	return nil
}

// switchableHook is a webhook receiver that answers 503 while down and 200 once up.
type switchableHook struct {
	up       atomic.Bool
	refused  atomic.Int64
	mu       sync.Mutex
	accepted [][]byte
	sigs     []string
	got      chan struct{}
}

func (h *switchableHook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if !h.up.Load() {
		h.refused.Add(1)
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	h.mu.Lock()
	h.accepted = append(h.accepted, body)
	h.sigs = append(h.sigs, r.Header.Get(events.SignatureHeader))
	h.mu.Unlock()
	select {
	case h.got <- struct{}{}:
	default:
	}
}

func readJournal(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "journal.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// With the webhook down, an upload over FTPS (curl) is journaled by the time curl has its 226; the daemon is
// killed with SIGKILL before any delivery succeeds; after a restart, with the webhook up, the event arrives once,
// byte for byte as journaled, with a signature that verifies, and the journal is then compacted to nothing.
func TestBinaryEventDeliveredAfterSIGKILL(t *testing.T) {
	fx := newEventsFixture(t)
	hook := &switchableHook{got: make(chan struct{}, 1)}
	srv := httptest.NewTLSServer(hook)
	defer srv.Close()
	ca := filepath.Join(fx.dir, "hook-ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600)
	secretFile := filepath.Join(fx.dir, "hook.secret")
	os.WriteFile(secretFile, []byte("s3ftp-hook-secret\n"), 0o600)
	evDir := filepath.Join(fx.dir, "events")
	args := []string{"--events-dir", evDir, "--event-webhook", srv.URL + "/imports", "--event-webhook-secret-file", secretFile,
		"--event-webhook-ca-file", ca, "--event-backoff", "50ms", "--event-max-backoff", "200ms", "--event-max-attempts", "1000",
		"--event-filter", "kinds=upload_completed;paths=/in/*.csv"}

	f := fx.start(t, args...)
	data := []byte("id,qty\n1,5\n")
	if err := curlUpload(f, "/in/orders.csv", data); err != nil {
		t.Fatal(err)
	}
	journaled := readJournal(t, evDir)
	if len(journaled) != 1 {
		t.Fatalf("journal after the upload: %q", journaled)
	}
	var rec events.Record
	if err := json.Unmarshal([]byte(journaled[0]), &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Kind != "upload_completed" || rec.Protocol != "ftps" || rec.User != "dave" || rec.Path != "/in/orders.csv" ||
		rec.Size != int64(len(data)) || rec.ClientAddr != "127.0.0.1" || rec.Result != "ok" || rec.ID == "" {
		t.Fatalf("journaled %s", journaled[0])
	}
	deadline := time.Now().Add(10 * time.Second)
	for hook.refused.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if hook.refused.Load() == 0 {
		t.Fatalf("no delivery attempt reached the webhook:\n%s", f.logs.String())
	}
	f.kill()
	if len(hook.accepted) != 0 {
		t.Fatal("delivered before the restart")
	}

	hook.up.Store(true)
	f = fx.start(t, args...)
	select {
	case <-hook.got:
	case <-time.After(20 * time.Second):
		t.Fatalf("no delivery 20s after the restart:\n%s", f.logs.String())
	}
	deadline = time.Now().Add(10 * time.Second)
	for len(readJournal(t, evDir)) != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if j := readJournal(t, evDir); len(j) != 0 {
		t.Fatalf("journal not compacted after the delivery: %q", j)
	}
	time.Sleep(200 * time.Millisecond)
	hook.mu.Lock()
	defer hook.mu.Unlock()
	if len(hook.accepted) != 1 || string(hook.accepted[0]) != journaled[0] {
		t.Fatalf("accepted %q, want exactly the journaled line %s", hook.accepted, journaled[0])
	}
	if want := events.Sign([]byte("s3ftp-hook-secret"), hook.accepted[0]); !hmac.Equal([]byte(hook.sigs[0]), []byte(want)) {
		t.Fatalf("signature %q, want %q", hook.sigs[0], want)
	}
	if !strings.Contains(f.logs.String(), "undelivered records queued again") {
		t.Errorf("the restart did not log the records it queued again:\n%s", f.logs.String())
	}
}

// A command sink (each run sleeps 200ms, two at a time) running while 8 curl uploads go in parallel breaks none
// of them: every upload succeeds with its content intact, and the command received one upload_completed
// record per file, on stdin, with S3FTP_PATH matching the record.
func TestBinaryCommandSinkDuringParallelUploads(t *testing.T) {
	fx := newEventsFixture(t)
	out := filepath.Join(fx.dir, "received")
	os.MkdirAll(out, 0o755)
	script := filepath.Join(fx.dir, "on-event.sh")
	os.WriteFile(script, []byte("#!/bin/sh\nsleep 0.2\ncat > \""+out+"/$S3FTP_EVENT_ID.json\"\n"+
		"printf '%s' \"$S3FTP_PATH\" > \""+out+"/$S3FTP_EVENT_ID.path\"\n"), 0o755)
	evDir := filepath.Join(fx.dir, "events")
	f := fx.start(t, "--events-dir", evDir, "--event-command", script, "--event-concurrency", "2",
		"--event-filter", "kinds=upload_completed", "--metrics-addr", "127.0.0.1:0")

	const n = 8
	payload := func(i int) []byte { return bytes.Repeat([]byte{byte('a' + i)}, 1<<20+i) }
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = curlUpload(f, fmt.Sprintf("/in/part-%d.bin", i), payload(i))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("upload %d: %v", i, err)
			continue
		}
		got, err := os.ReadFile(filepath.Join(fx.root, "dave", "in", fmt.Sprintf("part-%d.bin", i)))
		if err != nil || !bytes.Equal(got, payload(i)) {
			t.Errorf("upload %d stored differently: %v", i, err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	var jsons []string
	for time.Now().Before(deadline) {
		jsons, _ = filepath.Glob(filepath.Join(out, "*.json"))
		if len(jsons) >= n {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(jsons) != n {
		t.Fatalf("the command received %d records, want %d:\n%s", len(jsons), n, f.logs.String())
	}
	paths := map[string]bool{}
	for _, j := range jsons {
		b, _ := os.ReadFile(j)
		var r events.Record
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("%s: %v: %q", j, err, b)
		}
		envPath, _ := os.ReadFile(strings.TrimSuffix(j, ".json") + ".path")
		if r.Kind != "upload_completed" || r.User != "dave" || string(envPath) != r.Path || filepath.Base(j) != r.ID+".json" {
			t.Fatalf("record %s (S3FTP_PATH %q)", b, envPath)
		}
		paths[r.Path] = true
	}
	if len(paths) != n {
		t.Fatalf("records name %d distinct paths, want %d: %v", len(paths), n, paths)
	}
	addr := jsonOrTextAddr(t, f.logs, "metrics listening")
	deadline = time.Now().Add(10 * time.Second)
	for {
		m := scrape(t, addr)
		if m[`ftpfront_events_delivered_total{sink="command"}`] == n {
			if q := m[`ftpfront_events_queued_total{sink="command"}`]; q != n {
				t.Fatalf("queued %v, want %d", q, n)
			}
			if inf := m[`ftpfront_event_delivery_latency_seconds_bucket{sink="command",le="+Inf"}`]; inf != n {
				t.Fatalf("latency +Inf bucket %v, want %d", inf, n)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics: %v", m)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// jsonOrTextAddr returns the addr= of the first text log line containing msg.
func jsonOrTextAddr(t *testing.T, logs *logbuf.Buffer, msg string) string {
	t.Helper()
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, msg) {
			if i := strings.Index(l, "addr="); i >= 0 {
				return strings.Fields(l[i+5:])[0]
			}
		}
	}
	t.Fatalf("no %q line with addr=:\n%s", msg, logs.String())
	return ""
}

// The event flags: sinks need --events-dir, a bad filter is a usage error, and the sinks file is read.
func TestEventFlags(t *testing.T) {
	base := []string{"--root", "/tmp", "--users", "u.yaml", "--tls-self-signed"}
	for _, args := range [][]string{
		{"--event-webhook", "https://x.example/h"},
		{"--events-dir", "/tmp/e", "--event-filter", "kinds=uploaded"},
		{"--events-dir", "/tmp/e", "--event-filter", "colour=blue"},
		{"--events-dir", "/tmp/e", "--event-webhook-secret-file", "/s"},
		{"--events-dir", "/tmp/e", "--event-max-attempts", "0"},
	} {
		if _, code := parseFlags(append(base, args...), io.Discard); code != exitUsage {
			t.Errorf("%q: exit %d, want %d", args, code, exitUsage)
		}
	}
	c, code := parseFlags(append(base, "--events-dir", "/tmp/e", "--event-filter", "kinds=upload_completed;users=acme,globex;paths=/in/*.csv"), io.Discard)
	if code >= 0 {
		t.Fatalf("exit %d", code)
	}
	if f := c.events.filter; len(f.Kinds) != 1 || len(f.Users) != 2 || f.Paths[0] != "/in/*.csv" {
		t.Fatalf("filter %+v", f)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "s"), []byte("k\n"), 0o600)
	sinks := filepath.Join(dir, "sinks.yaml")
	os.WriteFile(sinks, []byte("sinks:\n  - name: a\n    webhook: {url: 'https://x.example/h', secret_file: '"+filepath.Join(dir, "s")+"'}\n"+
		"    filter: {kinds: [upload_completed], paths: ['/in/*.csv']}\n  - name: b\n    command: {argv: [/bin/true], timeout: 5s}\n    concurrency: 3\n"), 0o600)
	got, err := events.LoadSinksFile(sinks)
	if err != nil || len(got) != 2 || got[0].Name != "a" || got[1].Concurrency != 3 || got[0].Filter.Paths[0] != "/in/*.csv" {
		t.Fatalf("sinks file: %+v, %v", got, err)
	}
	os.WriteFile(sinks, []byte("sinks:\n  - name: a\n    webhok: {url: 'https://x'}\n"), 0o600)
	if _, err := events.LoadSinksFile(sinks); err == nil {
		t.Fatal("unknown key accepted")
	}
}

// Over SFTP, each operation's record is in the journal by the time the client has its status reply (SSH_FX_OK
// for the upload's close, the rename, the mkdir, the remove), with protocol "sftp"; once the webhook comes up
// they are all delivered.
func TestBinarySFTPEventsJournaledBeforeReply(t *testing.T) {
	fx := newEventsFixture(t)
	hook := &switchableHook{got: make(chan struct{}, 16)}
	srv := httptest.NewServer(hook)
	defer srv.Close()
	evDir := filepath.Join(fx.dir, "events")
	f := fx.start(t, "--events-dir", evDir, "--event-webhook", srv.URL, "--event-backoff", "300ms",
		"--event-max-backoff", "300ms", "--event-max-attempts", "1000",
		"--sftp-listen", "127.0.0.1:0", "--sftp-host-key-dir", filepath.Join(fx.dir, "hostkey"))
	sc, err := ssh.Dial("tcp", f.addrs["sftp"], &ssh.ClientConfig{User: "dave", Auth: []ssh.AuthMethod{ssh.Password("event-pw")},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	c, err := sftp.NewClient(sc)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	journaledKinds := func() []string {
		var kinds []string
		for _, l := range readJournal(t, evDir) {
			var r events.Record
			if err := json.Unmarshal([]byte(l), &r); err != nil {
				t.Fatalf("journal line %q: %v", l, err)
			}
			if r.Protocol != "sftp" || r.User != "dave" {
				t.Fatalf("journaled %s", l)
			}
			kinds = append(kinds, r.Kind+" "+r.Path)
		}
		return kinds
	}
	w, err := c.Create("/in/a.csv")
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("1,2\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := journaledKinds(); len(got) != 1 || got[0] != "upload_completed /in/a.csv" {
		t.Fatalf("journal after the upload's close: %q", got)
	}
	if err := c.Rename("/in/a.csv", "/in/b.csv"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mkdir("/in/sub"); err != nil {
		t.Fatal(err)
	}
	if err := c.Remove("/in/b.csv"); err != nil {
		t.Fatal(err)
	}
	want := []string{"upload_completed /in/a.csv", "rename /in/a.csv", "mkdir /in/sub", "delete /in/b.csv"}
	if got := journaledKinds(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("journal %q, want %q", got, want)
	}
	hook.up.Store(true)
	deadline := time.Now().Add(20 * time.Second)
	for {
		hook.mu.Lock()
		n := len(hook.accepted)
		hook.mu.Unlock()
		if n == len(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d delivered:\n%s", n, len(want), f.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
