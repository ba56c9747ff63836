package events

import (
	"crypto/hmac"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/s3ftp/s3ftp/ftpfront"
)

// receiver is a webhook endpoint that refuses the first refuse requests with 503 and records every request.
type receiver struct {
	mu       sync.Mutex
	refuse   int
	requests int
	bodies   [][]byte
	sigs     []string
	ids      []string
	accepted chan []byte
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.requests++
	n := rc.requests
	rc.bodies = append(rc.bodies, body)
	rc.sigs = append(rc.sigs, r.Header.Get(SignatureHeader))
	rc.ids = append(rc.ids, r.Header.Get("X-S3ftp-Event-Id"))
	rc.mu.Unlock()
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		http.Error(w, "want a JSON POST", http.StatusBadRequest)
		return
	}
	if n <= rc.refuse {
		http.Error(w, "not yet", http.StatusServiceUnavailable)
		return
	}
	rc.accepted <- body
	w.WriteHeader(http.StatusNoContent)
}

// caFile writes the test server's certificate as a PEM CA file.
func caFile(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ca.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// A webhook over TLS (verified against the CA file) that answers 503 three times and then 204: the record is
// sent four times, each time the same body (the journal line) with the same event id and a signature that
// verifies with the secret; it is accepted once and then acknowledged (the journal is compacted to nothing and
// no fifth request comes).
func TestWebhookRetriesUntilAcceptedWithValidHMAC(t *testing.T) {
	rc := &receiver{refuse: 3, accepted: make(chan []byte, 10)}
	srv := httptest.NewTLSServer(rc)
	defer srv.Close()
	secret := []byte("import-job-secret")
	hook, err := NewWebhook(WebhookConfig{URL: srv.URL + "/hook", Secret: secret, CAFile: caFile(t, srv)})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ev := mustOpen(t, testOptions(t, dir, nil, SinkConfig{Name: "import", Sink: hook}))
	ev.Record(upload("acme", "/in/orders.csv", 42))
	line := journalLines(t, dir)[0]
	got := receive(t, rc.accepted)
	if string(got) != line {
		t.Fatalf("accepted body %s, journal %s", got, line)
	}
	eventually(t, "acknowledged and compacted", func() bool {
		b, err := os.ReadFile(filepath.Join(dir, journalName))
		return err == nil && len(b) == 0 && ev.Pending("import") == 0
	})
	time.Sleep(100 * time.Millisecond)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.requests != 4 {
		t.Fatalf("%d requests, want 4 (3 refused, 1 accepted)", rc.requests)
	}
	var r Record
	json.Unmarshal(got, &r)
	for i := range rc.bodies {
		if string(rc.bodies[i]) != line || rc.ids[i] != r.ID {
			t.Fatalf("attempt %d sent %s (id %s), want the journal line (id %s)", i+1, rc.bodies[i], rc.ids[i], r.ID)
		}
		if !hmac.Equal([]byte(rc.sigs[i]), []byte(Sign(secret, rc.bodies[i]))) || !strings.HasPrefix(rc.sigs[i], "sha256=") || len(rc.sigs[i]) != 7+64 {
			t.Fatalf("attempt %d signature %q does not verify", i+1, rc.sigs[i])
		}
	}
	if Sign([]byte("other secret"), got) == rc.sigs[3] {
		t.Fatal("the signature does not depend on the secret")
	}
}

// TLS verification is on: a server whose certificate does not chain to the configured roots is a failed attempt,
// never a delivery.
func TestWebhookVerifiesTLS(t *testing.T) {
	rc := &receiver{accepted: make(chan []byte, 1)}
	srv := httptest.NewTLSServer(rc)
	defer srv.Close()
	hook, err := NewWebhook(WebhookConfig{URL: srv.URL}) // system roots: the test certificate is unknown
	if err != nil {
		t.Fatal(err)
	}
	r, _ := FromAudit(upload("acme", "/a", 1))
	err = hook.Deliver(t.Context(), []byte(`{}`), &r)
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("delivery to an unverified server: %v", err)
	}
	if rc.requests != 0 {
		t.Fatal("the request reached the unverified server")
	}
}

// A command sink gets the record's JSON on stdin and S3FTP_EVENT, S3FTP_USER, S3FTP_PATH in its environment,
// nothing else of the daemon's environment, and no descriptor beyond 0, 1 and 2 (a file the daemon holds open
// is not among them).
func TestCommandSinkReceivesJSON(t *testing.T) {
	out := t.TempDir()
	t.Setenv("S3FTP_TEST_SECRET", "must-not-leak")
	held, err := os.Create(filepath.Join(t.TempDir(), "held-open.bin")) // an open upload, as far as the child knows
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	script := `cat > "$1/stdin.json"; env > "$1/env"; exec ls -l /proc/self/fd > "$1/fds"`
	cmd, err := NewCommand(CommandConfig{Argv: []string{"/bin/sh", "-c", script, "sh", out}, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ev := mustOpen(t, testOptions(t, dir, nil, SinkConfig{Name: "cmd", Sink: cmd}))
	ev.Record(upload("acme", "/in/orders.csv", 42))
	line := journalLines(t, dir)[0]
	eventually(t, "command acknowledged", func() bool { return ev.Pending("cmd") == 0 })
	stdin, _ := os.ReadFile(filepath.Join(out, "stdin.json"))
	if string(stdin) != line {
		t.Fatalf("stdin %q, want the journal line %q", stdin, line)
	}
	env, _ := os.ReadFile(filepath.Join(out, "env"))
	for _, want := range []string{"S3FTP_EVENT=upload_completed", "S3FTP_USER=acme", "S3FTP_PATH=/in/orders.csv", "S3FTP_SIZE=42"} {
		if !strings.Contains(string(env), want+"\n") {
			t.Errorf("environment lacks %s:\n%s", want, env)
		}
	}
	if strings.Contains(string(env), "must-not-leak") {
		t.Errorf("the daemon's environment leaked into the command:\n%s", env)
	}
	fds, _ := os.ReadFile(filepath.Join(out, "fds"))
	if strings.Contains(string(fds), "held-open.bin") {
		t.Errorf("the command inherited a file the daemon holds open:\n%s", fds)
	}
	for _, l := range strings.Split(string(fds), "\n") {
		f := strings.Fields(l)
		if len(f) < 9 {
			continue
		}
		// ls holds one descriptor of its own: the directory it lists.
		if n := f[8]; n != "0" && n != "1" && n != "2" && !strings.HasSuffix(l, "/fd") {
			t.Errorf("the command has descriptor %s: %s", n, l)
		}
	}
}

// A command that exits non-zero or outlives its timeout is a failed attempt, with its output in the error.
func TestCommandFailureAndTimeout(t *testing.T) {
	r, _ := FromAudit(upload("acme", "/a", 1))
	fail, _ := NewCommand(CommandConfig{Argv: []string{"/bin/sh", "-c", "echo refused >&2; exit 3"}})
	if err := fail.Deliver(t.Context(), []byte("{}"), &r); err == nil || !strings.Contains(err.Error(), "refused") || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("failing command: %v", err)
	}
	slow, _ := NewCommand(CommandConfig{Argv: []string{"/bin/sh", "-c", "sleep 30"}, Timeout: 200 * time.Millisecond})
	start := time.Now()
	if err := slow.Deliver(t.Context(), []byte("{}"), &r); err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("slow command: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("timeout took %v", d)
	}
}

// Filter.Match: kinds, users and path globs must all match; a rename matches on either path; "*" does not cross
// "/".
func TestFilterMatch(t *testing.T) {
	rec := func(kind, user, p, to string) *Record { return &Record{Kind: kind, User: user, Path: p, To: to} }
	f := Filter{Kinds: []string{KindUploadCompleted, KindRename}, Users: []string{"acme", "globex"}, Paths: []string{"/in/*.csv"}}
	for _, tc := range []struct {
		r    *Record
		want bool
	}{
		{rec(KindUploadCompleted, "acme", "/in/a.csv", ""), true},
		{rec(KindUploadCompleted, "globex", "/in/b.csv", ""), true},
		{rec(KindUploadFailed, "acme", "/in/a.csv", ""), false},
		{rec(KindUploadCompleted, "initech", "/in/a.csv", ""), false},
		{rec(KindUploadCompleted, "acme", "/in/a.txt", ""), false},
		{rec(KindUploadCompleted, "acme", "/in/sub/a.csv", ""), false},
		{rec(KindRename, "acme", "/in/a.tmp", "/in/a.csv"), true},
	} {
		if got := f.Match(tc.r); got != tc.want {
			t.Errorf("Match(%+v) = %v, want %v", *tc.r, got, tc.want)
		}
	}
	if !(Filter{}).Match(rec(KindMkdir, "x", "/y", "")) {
		t.Error("an empty filter must match everything")
	}
	if err := (Filter{Kinds: []string{"uploaded"}}).Validate(); err == nil {
		t.Error("unknown kind accepted")
	}
	if err := (Filter{Paths: []string{"/in/[a"}}).Validate(); err == nil {
		t.Error("malformed glob accepted")
	}
}

// Each sink gets only the records its filter matches, and sinks do not wait for each other: a sink that fails
// does not hold back the other.
func TestSinksFilterIndependently(t *testing.T) {
	dir := t.TempDir()
	csv, all, broken := newFakeSink(0), newFakeSink(0), &fakeSink{failAll: true}
	o := testOptions(t, dir, nil,
		SinkConfig{Name: "acme-csv", Sink: csv, Filter: Filter{Kinds: []string{KindUploadCompleted}, Users: []string{"acme"}, Paths: []string{"/in/*.csv"}}},
		SinkConfig{Name: "all", Sink: all},
		SinkConfig{Name: "broken", Sink: broken, Filter: Filter{Kinds: []string{KindDelete}}})
	o.MaxAttempts = 1000
	ev := mustOpen(t, o)
	inputs := []ftpfront.Event{
		upload("acme", "/in/a.csv", 1),
		upload("acme", "/in/a.txt", 1),
		upload("globex", "/in/g.csv", 1),
		{Event: "upload", User: "acme", Path: "/in/b.csv", Result: "aborted"},
		{Event: "delete", User: "acme", Path: "/in/a.csv", Result: "ok"},
		{Event: "login_ok", User: "acme", Result: "ok"},
	}
	for _, e := range inputs {
		ev.Record(e)
	}
	eventually(t, "all delivered", func() bool { _, n := all.counts(); return n == 5 })
	eventually(t, "csv delivered", func() bool { _, n := csv.counts(); return n == 1 })
	time.Sleep(50 * time.Millisecond)
	csv.mu.Lock()
	var r Record
	json.Unmarshal(csv.accepted[0], &r)
	n := len(csv.accepted)
	csv.mu.Unlock()
	if n != 1 || r.Path != "/in/a.csv" || r.User != "acme" || r.Kind != KindUploadCompleted {
		t.Fatalf("acme-csv got %d records, first %+v", n, r)
	}
	var kinds []string
	all.mu.Lock()
	for _, b := range all.accepted {
		var r Record
		json.Unmarshal(b, &r)
		kinds = append(kinds, r.Kind)
	}
	all.mu.Unlock()
	slices.Sort(kinds)
	if want := []string{"delete", "upload_completed", "upload_completed", "upload_completed", "upload_failed"}; !slices.Equal(kinds, want) {
		t.Fatalf("all got kinds %v, want %v", kinds, want)
	}
	if ev.Pending("broken") != 1 {
		t.Fatalf("broken sink pending %d, want its one delete", ev.Pending("broken"))
	}
}
