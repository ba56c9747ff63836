package ftpmetrics

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"
	"github.com/s3ftp/s3ftp/ftpfront"
	"github.com/s3ftp/s3ftp/internal/metrics"
)

// recorder is a downstream Auditor that keeps the event names it got.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) Record(e ftpfront.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e.Event)
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

// TestWireWithRealServer drives a real ftpfront server with a real FTPS client and checks the scrape.
func TestWireWithRealServer(t *testing.T) {
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "alice"), 0o755); err != nil {
		t.Fatal(err)
	}
	hash, err := ftpfront.HashPassword("right")
	if err != nil {
		t.Fatal(err)
	}
	db, err := ftpfront.NewUserDB(root, []ftpfront.UserConfig{{Name: "alice", Password: hash, Home: "alice"}})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	access := ftpfront.NewAccess(db, ftpfront.AccessConfig{BanAfter: 1, FailDelay: time.Millisecond}, log)
	reg := metrics.NewRegistry()
	down := &recorder{}
	audit, fm := Wire(reg, access, down)
	opts := ftpfront.DefaultOptions()
	opts.Listen = "127.0.0.1:0"
	opts.TLSSelfSigned = true
	opts.PassivePortMin, opts.PassivePortMax = 0, 0
	srv, err := ftpfront.NewServer(opts, ftpfront.Deps{Auth: access, Admit: access, Log: log,
		Audit: audit})
	if err != nil {
		t.Fatal(err)
	}
	fm.WatchPanics(srv.Panics)
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	addr := srv.Addr().String()
	dial := func() *ftp.ServerConn {
		c, err := ftp.Dial(addr, ftp.DialWithExplicitTLS(&tls.Config{InsecureSkipVerify: true}),
			ftp.DialWithTimeout(30*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	c := dial()
	if err := c.Login("alice", "right"); err != nil {
		t.Fatal(err)
	}
	if err := c.Stor("f.txt", strings.NewReader("hello, metrics")); err != nil {
		t.Fatal(err)
	}
	r, err := c.Retr("f.txt")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	r.Close()
	if string(got) != "hello, metrics" {
		t.Fatalf("downloaded %q", got)
	}
	c.Quit()

	c = dial()
	if err := c.Login("alice", "wrong"); err == nil {
		t.Fatal("wrong password accepted")
	}
	c.Quit()

	// Both sessions must have ended (disconnect events are recorded after the client has gone).
	deadline := time.Now().Add(20 * time.Second)
	var text string
	for {
		var b bytes.Buffer
		reg.WriteTo(&b)
		text = b.String()
		if strings.Contains(text, "\nftpfront_sessions_active 0\n") && down.count() >= 8 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sessions did not end; scrape:\n%s", text)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, want := range []string{
		`ftpfront_logins_total{result="ok"} 1`,
		`ftpfront_logins_total{result="failed"} 1`,
		`ftpfront_transfers_total{dir="upload",result="ok"} 1`,
		`ftpfront_transfers_total{dir="download",result="ok"} 1`,
		`ftpfront_transfer_bytes_total{dir="upload"} 14`,
		`ftpfront_transfer_bytes_total{dir="download"} 14`,
		"ftpfront_bans_total 1",
		"ftpfront_panics_total 0",
	} {
		if !strings.Contains(text, "\n"+want+"\n") {
			t.Errorf("scrape lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("scrape:\n%s", text)
	}
	// Every event also reached the downstream auditor.
	down.mu.Lock()
	evs := strings.Join(down.events, " ")
	down.mu.Unlock()
	for _, e := range []string{"connect", "login_ok", "upload", "download", "login_failed", "disconnect"} {
		if !strings.Contains(evs, e) {
			t.Errorf("downstream auditor missed %s: %s", e, evs)
		}
	}
}

func TestNilNextAndAccess(t *testing.T) {
	reg := metrics.NewRegistry()
	a, _ := Wire(reg, nil, nil)
	a.Record(ftpfront.Event{Event: "connect", Result: "ok"})
	var b bytes.Buffer
	reg.WriteTo(&b)
	if !strings.Contains(b.String(), "\nftpfront_sessions_active 1\n") || !strings.Contains(b.String(), "\nftpfront_bans_total 0\n") {
		t.Fatalf("scrape:\n%s", b.String())
	}
}
