package events

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/s3ftp/s3ftp/ftpfront"
)

// blockSink never answers until its context ends.
type blockSink struct{}

func (blockSink) Deliver(ctx context.Context, _ []byte, _ *Record) error {
	<-ctx.Done()
	return ctx.Err()
}

// "Record appends the record to the journal and fsyncs it before it returns": with a sink that never answers,
// the journal holds the record as soon as Record returns, with every field of the audit event mapped; events
// that are not finished operations are not journaled.
func TestRecordJournalsBeforeReturning(t *testing.T) {
	dir := t.TempDir()
	ev := mustOpen(t, testOptions(t, dir, nil, SinkConfig{Name: "hook", Sink: blockSink{}}))
	ev.Record(ftpfront.Event{Event: "login_ok", User: "acme"})
	ev.Record(upload("acme", "/in/a.csv", 1234))
	lines := journalLines(t, dir)
	if len(lines) != 1 {
		t.Fatalf("journal has %d lines, want 1: %q", len(lines), lines)
	}
	var r Record
	if err := json.Unmarshal([]byte(lines[0]), &r); err != nil {
		t.Fatal(err)
	}
	if len(r.ID) != 32 || r.Kind != KindUploadCompleted || r.Protocol != "ftps" || r.User != "acme" ||
		r.ClientAddr != "192.0.2.7" || r.Path != "/in/a.csv" || r.Size != 1234 || r.DurationMS != 1500 ||
		r.Result != "ok" || r.Reason != "" || r.Version != 1 || r.Time.IsZero() {
		t.Fatalf("journaled record %+v", r)
	}
	if strings.Contains(lines[0], "sha256") {
		t.Fatalf("sha256 present before checksums exist: %s", lines[0])
	}
	if ev.Pending("hook") != 1 {
		t.Fatalf("pending %d, want 1", ev.Pending("hook"))
	}
}

// FromAudit: a failed upload is upload_failed with its reason; rename keeps its target; rmdir, connect and
// logins are no events.
func TestFromAuditKinds(t *testing.T) {
	for _, tc := range []struct {
		in         ftpfront.Event
		kind       string
		ok         bool
		res, cause string
	}{
		{ftpfront.Event{Event: "upload", Result: "ok"}, KindUploadCompleted, true, "ok", ""},
		{ftpfront.Event{Event: "upload", Result: "aborted"}, KindUploadFailed, true, "failed", "aborted"},
		{ftpfront.Event{Event: "download", Result: "ok"}, KindDownload, true, "ok", ""},
		{ftpfront.Event{Event: "delete", Result: "file does not exist"}, KindDelete, true, "failed", "file does not exist"},
		{ftpfront.Event{Event: "rename", To: "/b", Result: "ok"}, KindRename, true, "ok", ""},
		{ftpfront.Event{Event: "mkdir", Result: "ok"}, KindMkdir, true, "ok", ""},
		{ftpfront.Event{Event: "rmdir", Result: "ok"}, "", false, "", ""},
		{ftpfront.Event{Event: "login_ok", Result: "ok"}, "", false, "", ""},
		{ftpfront.Event{Event: "connect", Result: "ok"}, "", false, "", ""},
	} {
		r, ok := FromAudit(tc.in)
		if ok != tc.ok || r.Kind != tc.kind || (ok && (r.Result != tc.res || r.Reason != tc.cause)) {
			t.Errorf("FromAudit(%+v) = %+v, %v; want kind %q result %q reason %q", tc.in, r, ok, tc.kind, tc.res, tc.cause)
		}
	}
	if r, _ := FromAudit(ftpfront.Event{Event: "rename", Path: "/a", To: "/b"}); r.To != "/b" {
		t.Errorf("rename target lost: %+v", r)
	}
}

// "After N failed attempts the record goes to dead-letter.jsonl ... with one ERROR log line": a sink that always
// fails is tried MaxAttempts times, then the dead-letter file holds one line with the sink, the attempt count,
// the last error and the event exactly as journaled, the log has exactly one dead-letter line, and the record is
// no longer pending (nor redelivered after a restart).
func TestDeadLetterAfterMaxAttempts(t *testing.T) {
	dir := t.TempDir()
	var logs logBuffer
	sink := &fakeSink{failAll: true, got: make(chan []byte, 1)}
	o := testOptions(t, dir, &logs, SinkConfig{Name: "importer", Sink: sink})
	o.MaxAttempts = 3
	ev := mustOpen(t, o)
	ev.Record(upload("acme", "/in/x.csv", 5))
	line := journalLines(t, dir)[0]
	eventually(t, "record dead-lettered", func() bool { return ev.Pending("importer") == 0 })
	time.Sleep(100 * time.Millisecond) // a fourth attempt would come within the backoff
	if a, _ := sink.counts(); a != 3 {
		t.Fatalf("%d attempts, want 3", a)
	}
	b, err := os.ReadFile(filepath.Join(dir, deadLetterName))
	if err != nil {
		t.Fatal(err)
	}
	dl := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(dl) != 1 {
		t.Fatalf("dead-letter file has %d lines: %q", len(dl), b)
	}
	var d deadLetter
	if err := json.Unmarshal([]byte(dl[0]), &d); err != nil {
		t.Fatal(err)
	}
	if d.Sink != "importer" || d.Attempts != 3 || d.Error != "fake refusal" || string(d.Event) != line || d.Time.IsZero() {
		t.Fatalf("dead letter %s; journal line %s", dl[0], line)
	}
	if n := strings.Count(logs.String(), "record dead-lettered"); n != 1 {
		t.Fatalf("%d dead-letter log lines, want 1:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "level=ERROR msg=\"events: record dead-lettered\" sink=importer") {
		t.Fatalf("dead-letter log line lacks level or sink:\n%s", logs.String())
	}
	ev.Close()
	// Acknowledged by dead-lettering: a restart with a sink that works delivers nothing.
	good := newFakeSink(0)
	ev2 := mustOpen(t, testOptions(t, dir, nil, SinkConfig{Name: "importer", Sink: good}))
	time.Sleep(100 * time.Millisecond)
	if a, _ := good.counts(); a != 0 || ev2.Pending("importer") != 0 {
		t.Fatalf("dead-lettered record delivered again after restart: %d attempts", a)
	}
}

// Retries back off exponentially up to the cap: attempts n and n+1 are at least Backoff*2^(n-1) apart.
func TestBackoffDoublesUpToMax(t *testing.T) {
	ev := &Events{opts: Options{Backoff: 100 * time.Millisecond, MaxBackoff: time.Second}}
	for _, tc := range []struct {
		attempts int
		min      time.Duration
	}{{1, 100 * time.Millisecond}, {2, 200 * time.Millisecond}, {3, 400 * time.Millisecond}, {4, 800 * time.Millisecond}, {5, time.Second}, {40, time.Second}} {
		d := ev.backoff(tc.attempts)
		if d < tc.min || d > tc.min+tc.min/10 {
			t.Errorf("backoff(%d) = %v, want %v plus at most 10%%", tc.attempts, d, tc.min)
		}
	}
}

// "Open queues again every journaled record a sink has not acknowledged": records journaled while the sink was
// down are delivered after a restart, byte for byte as journaled, and a record acknowledged before the restart
// is not sent again. Once all are delivered the journal is compacted to nothing.
func TestRestartDeliversUndelivered(t *testing.T) {
	dir := t.TempDir()
	first := newFakeSink(0)
	ev := mustOpen(t, testOptions(t, dir, nil, SinkConfig{Name: "hook", Sink: first}))
	ev.Record(upload("acme", "/in/delivered.csv", 1))
	delivered := receive(t, first.got)
	// The sink has the record; its acknowledgement (and the compaction) follows the delivery's return.
	eventually(t, "first record acknowledged", func() bool {
		b, err := os.ReadFile(filepath.Join(dir, journalName))
		return err == nil && len(b) == 0
	})
	ev.Close()

	down := &fakeSink{failAll: true}
	o := testOptions(t, dir, nil, SinkConfig{Name: "hook", Sink: down})
	o.Backoff, o.MaxBackoff = time.Hour, time.Hour // one failed attempt each, then none before Close
	ev = mustOpen(t, o)
	for _, p := range []string{"/in/1.csv", "/in/2.csv", "/in/3.csv"} {
		ev.Record(upload("acme", p, 10))
	}
	journaled := journalLines(t, dir)
	ev.Close()
	if len(journaled) != 3 {
		t.Fatalf("journal after the first delivery and three records: %q", journaled)
	}

	up := newFakeSink(0)
	ev = mustOpen(t, testOptions(t, dir, nil, SinkConfig{Name: "hook", Sink: up}))
	var got []string
	for range 3 {
		got = append(got, string(receive(t, up.got)))
	}
	for i := range journaled {
		if got[i] != journaled[i] {
			t.Fatalf("delivery %d after restart:\n got %s\nwant %s", i, got[i], journaled[i])
		}
		if got[i] == string(delivered) {
			t.Fatal("the record acknowledged before the restart came again")
		}
	}
	eventually(t, "journal compacted", func() bool {
		b, err := os.ReadFile(filepath.Join(dir, journalName))
		return err == nil && len(b) == 0
	})
	time.Sleep(50 * time.Millisecond)
	if a, n := up.counts(); a != 3 || n != 3 {
		t.Fatalf("after restart: %d attempts, %d accepted; want 3, 3", a, n)
	}
}

// A torn last line (a crash inside Record's append) is cut off at Open; the complete records before it are
// delivered and new records append after them on a line of their own.
func TestTornJournalLineCut(t *testing.T) {
	dir := t.TempDir()
	r, _ := FromAudit(upload("acme", "/in/whole.csv", 3))
	r.ID = newID(time.Now())
	whole, _ := json.Marshal(r)
	os.WriteFile(filepath.Join(dir, journalName), append(append(whole, '\n'), []byte(`{"version":1,"id":"ab`)...), 0o600)
	sink := newFakeSink(0)
	ev := mustOpen(t, testOptions(t, dir, nil, SinkConfig{Name: "hook", Sink: sink, Filter: Filter{Paths: []string{"/in/*"}}}))
	if got := receive(t, sink.got); string(got) != string(whole) {
		t.Fatalf("delivered %s, want %s", got, whole)
	}
	ev.Record(upload("acme", "/in/new.csv", 1))
	if got := receive(t, sink.got); !strings.Contains(string(got), `"path":"/in/new.csv"`) {
		t.Fatalf("second delivery %s", got)
	}
	ev.Record(upload("acme", "/other/x.csv", 1)) // matches no filter
	if got := journalLines(t, dir); strings.Contains(strings.Join(got, "\n"), "/other/") {
		t.Fatalf("journal %q: a record no sink wants was journaled", got)
	}
	for _, l := range journalLines(t, dir) {
		var r Record
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("journal line %q after a torn line: %v", l, err)
		}
	}
}

// A sink's queue is bounded: beyond MaxQueue waiting records, the oldest waiting one is dead-lettered ("queue
// full") rather than held.
func TestQueueBoundDeadLetters(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(t, dir, nil, SinkConfig{Name: "hook", Sink: blockSink{}})
	o.MaxQueue = 2
	ev := mustOpen(t, o)
	for _, p := range []string{"/1", "/2", "/3", "/4"} {
		ev.Record(upload("acme", p, 1))
	}
	if n := ev.Pending("hook"); n != 2 {
		t.Fatalf("pending %d, want 2", n)
	}
	b, _ := os.ReadFile(filepath.Join(dir, deadLetterName))
	if n := strings.Count(string(b), `"error":"queue full"`); n != 2 {
		t.Fatalf("%d queue-full dead letters, want 2:\n%s", n, b)
	}
}

// concSink tracks how many deliveries run at once.
type concSink struct {
	mu       sync.Mutex
	now, max int
	done     int
}

func (c *concSink) Deliver(context.Context, []byte, *Record) error {
	c.mu.Lock()
	c.now++
	c.max = max(c.max, c.now)
	c.mu.Unlock()
	time.Sleep(30 * time.Millisecond)
	c.mu.Lock()
	c.now--
	c.done++
	c.mu.Unlock()
	return nil
}

// SinkConfig.Concurrency is a limit that is reached: ten slow deliveries to a sink of concurrency 3 run three
// at a time, never more.
func TestSinkConcurrencyLimit(t *testing.T) {
	cs := &concSink{}
	ev := mustOpen(t, testOptions(t, t.TempDir(), nil, SinkConfig{Name: "cmd", Sink: cs, Concurrency: 3}))
	for i := range 10 {
		ev.Record(upload("acme", fmt.Sprintf("/in/%d.csv", i), 1))
	}
	eventually(t, "all delivered", func() bool { cs.mu.Lock(); defer cs.mu.Unlock(); return cs.done == 10 })
	if cs.max != 3 {
		t.Fatalf("at most %d deliveries at once, want 3", cs.max)
	}
}

// "A crash at any point of [compaction] loses no pending record": after a crash between the journal's rewrite
// and the ack file's, the ack file names records no longer in the journal and misses nothing it acknowledged;
// Open ignores the stale IDs, does not resend what was acknowledged, and delivers the rest.
func TestOpenAfterCrashDuringCompaction(t *testing.T) {
	dir := t.TempDir()
	var lines []string
	var ids []string
	for _, p := range []string{"/in/acked.csv", "/in/pending.csv"} {
		r, _ := FromAudit(upload("acme", p, 1))
		r.ID = newID(time.Now())
		b, _ := json.Marshal(r)
		lines = append(lines, string(b))
		ids = append(ids, r.ID)
	}
	os.WriteFile(filepath.Join(dir, journalName), []byte(strings.Join(lines, "\n")+"\n"), 0o600)
	os.WriteFile(filepath.Join(dir, ackName("hook")), []byte("00000000000000000000000000000000\n"+ids[0]+"\n"), 0o600)
	sink := newFakeSink(0)
	ev := mustOpen(t, testOptions(t, dir, nil, SinkConfig{Name: "hook", Sink: sink}))
	if got := receive(t, sink.got); string(got) != lines[1] {
		t.Fatalf("delivered %s, want only %s", got, lines[1])
	}
	eventually(t, "compacted", func() bool { return ev.Pending("hook") == 0 && len(journalLines(t, dir)) == 0 })
	if a, _ := sink.counts(); a != 1 {
		t.Fatalf("%d attempts, want 1", a)
	}
}
