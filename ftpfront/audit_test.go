package ftpfront

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/s3ftp/s3ftp/internal/logbuf"
)

// lines splits the audit output into lines, failing on a missing final newline.
func lines(t *testing.T, out string) []string {
	t.Helper()
	if out == "" {
		return nil
	}
	if !strings.HasSuffix(out, "\n") {
		t.Fatalf("audit output does not end with a newline: %q", out)
	}
	return strings.Split(strings.TrimSuffix(out, "\n"), "\n")
}

func TestAuditJSONLineShape(t *testing.T) {
	var buf bytes.Buffer
	l := NewAuditLog(&buf)
	at := time.Date(2026, 11, 23, 17, 0, 0, 123000000, time.FixedZone("CET", 3600))
	l.Record(Event{Time: at, Session: "s1", Event: "upload", User: "alice", IP: "192.0.2.1", Path: "/in/a<b>.csv",
		Bytes: 1234, Duration: 1500 * time.Millisecond, Result: "ok"})
	l.Record(Event{Time: at, Session: "s1", Event: "rename", User: "alice", IP: "192.0.2.1",
		Path: "/evil\n{\"event\":\"forged\"}", To: "/b", Result: "550 no"})
	l.Record(Event{Session: "s2", Event: "connect", IP: "2001:db8::1", Result: "ok"})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	got := lines(t, buf.String())
	if len(got) != 3 {
		t.Fatalf("got %d lines, want 3 (a newline in a path must not split a line):\n%s", len(got), buf.String())
	}
	want0 := `{"time":"2026-11-23T16:00:00.123Z","session":"s1","event":"upload","user":"alice","ip":"192.0.2.1",` +
		`"path":"/in/a<b>.csv","bytes":1234,"duration_ns":1500000000,"result":"ok"}`
	if got[0] != want0 {
		t.Fatalf("line 1:\n got %s\nwant %s", got[0], want0)
	}
	var ev map[string]any
	if err := json.Unmarshal([]byte(got[1]), &ev); err != nil {
		t.Fatal(err)
	}
	if ev["path"] != "/evil\n{\"event\":\"forged\"}" || ev["to"] != "/b" || ev["event"] != "rename" {
		t.Fatalf("line 2 = %s", got[1])
	}
	ev = nil
	if err := json.Unmarshal([]byte(got[2]), &ev); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"user", "path", "to", "bytes", "duration_ns"} {
		if _, ok := ev[k]; ok {
			t.Errorf("empty field %q not omitted: %s", k, got[2])
		}
	}
	ts, err := time.Parse(time.RFC3339Nano, ev["time"].(string))
	if err != nil || ts.IsZero() || ts.Location() != time.UTC {
		t.Fatalf("zero time not filled with the current UTC time: %v (%v)", ev["time"], err)
	}
}

func TestAuditConcurrentRecordsKeepWholeLines(t *testing.T) {
	var buf bytes.Buffer
	l := NewAuditLog(&buf)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 400 {
				l.Record(Event{Session: fmt.Sprintf("g%d", g), Event: "download", IP: "192.0.2.1",
					Path: fmt.Sprintf("/f%d", i), Bytes: int64(i), Result: "ok"})
			}
		})
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	perSession := map[string]int{}
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("broken line %q: %v", sc.Text(), err)
		}
		if want := fmt.Sprintf("/f%d", perSession[e.Session]); e.Path != want {
			t.Fatalf("session %s: got %s, want %s (order per recording goroutine must be kept)", e.Session, e.Path, want)
		}
		perSession[e.Session]++
	}
	for g := range 8 {
		if n := perSession[fmt.Sprintf("g%d", g)]; n != 400 {
			t.Errorf("session g%d: %d lines, want 400", g, n)
		}
	}
	if l.Dropped() != 0 {
		t.Fatalf("Dropped = %d with a fast writer", l.Dropped())
	}
}

// blockingWriter blocks every Write until release is closed, then keeps what is written.
type blockingWriter struct {
	release chan struct{}
	entered chan struct{} // closed at the first Write
	once    sync.Once
	buf     logbuf.Buffer
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.entered) })
	<-w.release
	return w.buf.Write(p)
}

func TestAuditStuckWriterDropsInsteadOfBlocking(t *testing.T) {
	w := &blockingWriter{release: make(chan struct{}), entered: make(chan struct{})}
	log, logBuf := logbuf.New(nil)
	l := newAuditLog(w, log, time.Millisecond)
	l.Record(Event{Event: "connect", Result: "ok"})
	<-w.entered // the writer goroutine now holds one batch and is stuck
	const extra = 50
	total := 1 + auditQueueLen + extra
	for range auditQueueLen + extra {
		l.Record(Event{Event: "connect", Result: "ok"})
	}
	if d := l.Dropped(); d != extra {
		t.Fatalf("Dropped = %d, want %d (queue of %d full behind a stuck writer)", d, extra, auditQueueLen)
	}
	close(w.release)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(lines(t, w.buf.String())); uint64(n)+l.Dropped() != uint64(total) {
		t.Fatalf("%d lines + %d dropped != %d recorded", n, l.Dropped(), total)
	}
	if !strings.Contains(logBuf.String(), "events dropped") {
		t.Fatalf("drops not reported in the process log:\n%s", logBuf.String())
	}
}

// failingWriter fails every Write.
type failingWriter struct{ calls int }

func (w *failingWriter) Write(p []byte) (int, error) {
	w.calls++
	return 0, errors.New("disk full")
}

func TestAuditWriteErrorReported(t *testing.T) {
	w := &failingWriter{}
	log, logBuf := logbuf.New(nil)
	l := newAuditLog(w, log, auditFullWait)
	l.Record(Event{Event: "connect", Result: "ok"})
	err := l.Close()
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Close = %v, want the write error", err)
	}
	if w.calls == 0 || !strings.Contains(logBuf.String(), "disk full") {
		t.Fatalf("write error not logged (calls %d):\n%s", w.calls, logBuf.String())
	}
}

func TestAuditRecordAfterClose(t *testing.T) {
	var buf bytes.Buffer
	l := NewAuditLog(&buf)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l.Record(Event{Event: "connect", Result: "ok"}) // must not panic
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if buf.Len() != 0 || l.Dropped() != 1 {
		t.Fatalf("after Close: %d bytes written, %d dropped; want 0, 1", buf.Len(), l.Dropped())
	}
}

func TestAuditUnencodableTimeSkipped(t *testing.T) {
	var buf bytes.Buffer
	log, logBuf := logbuf.New(nil)
	l := newAuditLog(&buf, log, auditFullWait)
	l.Record(Event{Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), Event: "connect", Result: "ok"})
	l.Record(Event{Event: "disconnect", Result: "ok"})
	l.Close()
	got := lines(t, buf.String())
	if len(got) != 1 || !strings.Contains(got[0], `"disconnect"`) {
		t.Fatalf("want only the encodable event, got %q", got)
	}
	if !strings.Contains(logBuf.String(), "not encodable") {
		t.Fatalf("encoding failure not logged:\n%s", logBuf.String())
	}
}
