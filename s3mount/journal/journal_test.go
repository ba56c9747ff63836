package journal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/s3ftp/s3ftp/s3client"
	"github.com/s3ftp/s3ftp/s3client/s3fake"
)

// records prints a list of records as sorted-by-age "id=key" strings for comparisons.
func records(recs []Record) string {
	var parts []string
	for _, r := range recs {
		parts = append(parts, fmt.Sprintf("%s=%q", r.UploadID, r.Key))
	}
	return strings.Join(parts, " ")
}

func open(t *testing.T, path string) *Journal {
	t.Helper()
	j, err := Open(path, "test mount")
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	return j
}

func lines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// testLog collects log output so a test can show it and look for lines.
func testLog() (*slog.Logger, *bytes.Buffer) {
	var b bytes.Buffer
	return slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelDebug})), &b
}

// TestFileName: one journal per (endpoint, bucket, prefix, mount point); any field changes the name.
func TestFileName(t *testing.T) {
	base := FileName("http://127.0.0.1:9000", "b", "p/", "/srv/ftp")
	if !strings.HasPrefix(base, "uploads-") || !strings.HasSuffix(base, ".journal") || len(base) != len("uploads-")+16+len(".journal") {
		t.Fatalf("FileName = %q; want uploads-<16 hex>.journal", base)
	}
	for _, other := range []string{
		FileName("", "b", "p/", "/srv/ftp"),
		FileName("http://127.0.0.1:9000", "c", "p/", "/srv/ftp"),
		FileName("http://127.0.0.1:9000", "b", "", "/srv/ftp"),
		FileName("http://127.0.0.1:9000", "b", "p/", "/srv/ftp2"),
		FileName("http://127.0.0.1:9000", "bp/", "", "/srv/ftp"), // fields are separated, not concatenated
	} {
		if other == base {
			t.Errorf("two different mounts share the journal %s", base)
		}
	}
	if again := FileName("http://127.0.0.1:9000", "b", "p/", "/srv/ftp"); again != base {
		t.Errorf("FileName is not stable: %s then %s", base, again)
	}
}

// TestJournalRoundTrip: records survive a close and reopen, oldest first, and the file holds only live records
// after Close; keys with newlines, quotes, spaces and invalid UTF-8 come back byte for byte.
func TestJournalRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	j := open(t, path)
	odd := "dir with space/\"quoted\"\nnew line\xff.bin"
	for _, r := range []Record{{UploadID: "u1", Key: "a.bin"}, {UploadID: "u2", Key: odd}, {UploadID: "u3", Key: "c.bin"}} {
		if err := j.Add(r.Key, r.UploadID); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Remove("u1"); err != nil {
		t.Fatal(err)
	}
	if err := j.Remove("not-listed"); err != nil {
		t.Fatalf("Remove of an unknown upload: %v", err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	got := lines(t, path)
	if len(got) != 3 || got[0] != "# test mount" {
		t.Fatalf("journal after Close:\n%s\nwant the header and two records", strings.Join(got, "\n"))
	}
	j = open(t, path)
	defer j.Close()
	if got, want := records(j.Pending()), records([]Record{{UploadID: "u2", Key: odd}, {UploadID: "u3", Key: "c.bin"}}); got != want {
		t.Fatalf("Pending after reopen = %s, want %s", got, want)
	}
	if n := j.Skipped(); n != 0 {
		t.Errorf("Skipped = %d, want 0", n)
	}
}

// TestJournalRemovedWhenEmpty: a cleanly stopped mount with no upload left leaves no file.
func TestJournalRemovedWhenEmpty(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	j := open(t, path)
	j.Add("k", "u")
	j.Remove("u")
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stat of the empty journal after Close: %v; want it removed", err)
	}
	if err := j.Add("k", "v"); err == nil {
		t.Error("Add after Close succeeded")
	}
}

// TestJournalTornLastLine: a last line cut short (and a damaged line) is skipped and counted; the records
// before it count; Open rewrites the file so the next append starts on a line of its own.
func TestJournalTornLastLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	content := "# old header\n" +
		`+ "u1" "a"` + "\n" +
		`garbage line` + "\n" +
		`+ "u2" "b"` + "\n" +
		`- "u1"` + "\n" +
		`+ "u3" "c` // torn: no closing quote, no newline
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	j := open(t, path)
	if got, want := records(j.Pending()), `u2="b"`; got != want {
		t.Fatalf("Pending = %s, want %s", got, want)
	}
	if n := j.Skipped(); n != 2 {
		t.Errorf("Skipped = %d, want 2 (the garbage line and the torn one)", n)
	}
	if err := j.Add("d", "u4"); err != nil {
		t.Fatal(err)
	}
	// Simulate a crash: no Close. The lock goes with the descriptor.
	j.f.Close()
	j2 := open(t, path)
	defer j2.Close()
	if got, want := records(j2.Pending()), `u2="b" u4="d"`; got != want {
		t.Fatalf("Pending after a crash = %s, want %s", got, want)
	}
	if n := j2.Skipped(); n != 0 {
		t.Errorf("Skipped after the rewrite = %d, want 0", n)
	}
}

// TestJournalLocked: a second Open of the same journal fails with ErrLocked while the first holds it, also
// after the first compacted (renamed) the file; after Close it succeeds.
func TestJournalLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	j := open(t, path)
	if _, err := Open(path, ""); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	for i := range 2*compactSlack + 10 { // enough removals to compact at least once
		id := fmt.Sprint("u", i)
		j.Add("k", id)
		j.Remove(id)
	}
	j.Add("kept", "live")
	if _, err := Open(path, ""); !errors.Is(err, ErrLocked) {
		t.Fatalf("Open after a compaction by the holder = %v, want ErrLocked", err)
	}
	if n := len(lines(t, path)); n > compactSlack+2 {
		t.Errorf("journal holds %d lines after %d uploads came and went; want it compacted", n, 2*compactSlack+10)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j2 := open(t, path)
	defer j2.Close()
	if got := records(j2.Pending()); got != `live="kept"` {
		t.Fatalf("Pending = %s, want live=\"kept\"", got)
	}
}

// TestClientRecords: the wrapper lists an upload from CreateMultipartUpload until it completes, is aborted, or
// S3 says it is gone; a failed abort or complete keeps it listed; a failed create lists nothing.
func TestClientRecords(t *testing.T) {
	ctx := context.Background()
	fake := s3fake.New()
	j := open(t, filepath.Join(t.TempDir(), "j"))
	defer j.Close()
	log, logs := testLog()
	c := Wrap(fake, j, log)

	completed, _ := c.CreateMultipartUpload(ctx, "completed", s3client.PutOptions{})
	aborted, _ := c.CreateMultipartUpload(ctx, "aborted", s3client.PutOptions{})
	failing, _ := c.CreateMultipartUpload(ctx, "abort-fails", s3client.PutOptions{})
	vanished, _ := c.CreateMultipartUpload(ctx, "vanished", s3client.PutOptions{})
	incomplete, _ := c.CreateMultipartUpload(ctx, "complete-fails", s3client.PutOptions{})
	fake.FailNext("CreateMultipartUpload", 1, s3client.ErrUnavailable)
	if _, err := c.CreateMultipartUpload(ctx, "create-fails", s3client.PutOptions{}); err == nil {
		t.Fatal("injected CreateMultipartUpload failure did not fail")
	}
	if got := len(j.Pending()); got != 5 {
		t.Fatalf("%d uploads listed after 5 creates and a failed one: %s", got, records(j.Pending()))
	}

	etag, err := c.UploadPart(ctx, "completed", completed, 1, []byte("data"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CompleteMultipartUpload(ctx, "completed", completed, []s3client.Part{{Number: 1, ETag: etag}}, false); err != nil {
		t.Fatal(err)
	}
	if err := c.AbortMultipartUpload(ctx, "aborted", aborted); err != nil {
		t.Fatal(err)
	}
	fake.FailNext("AbortMultipartUpload", 1, s3client.ErrUnavailable)
	if err := c.AbortMultipartUpload(ctx, "abort-fails", failing); err == nil {
		t.Fatal("injected AbortMultipartUpload failure did not fail")
	}
	if err := fake.AbortMultipartUpload(ctx, "vanished", vanished); err != nil { // behind the wrapper's back
		t.Fatal(err)
	}
	if err := c.AbortMultipartUpload(ctx, "vanished", vanished); !errors.Is(err, s3client.ErrNoSuchUpload) {
		t.Fatalf("abort of an upload already aborted = %v, want ErrNoSuchUpload", err)
	}
	fake.FailNext("CompleteMultipartUpload", 1, s3client.ErrUnavailable)
	if _, err := c.CompleteMultipartUpload(ctx, "complete-fails", incomplete, nil, false); err == nil {
		t.Fatal("injected CompleteMultipartUpload failure did not fail")
	}

	want := records([]Record{{UploadID: failing, Key: "abort-fails"}, {UploadID: incomplete, Key: "complete-fails"}})
	if got := records(j.Pending()); got != want {
		t.Fatalf("listed = %s, want %s\nlog:\n%s", got, want, logs)
	}
}

// TestClientLogsJournalFailure: when the journal cannot record, the upload still starts and one error line
// names it.
func TestClientLogsJournalFailure(t *testing.T) {
	fake := s3fake.New()
	j := open(t, filepath.Join(t.TempDir(), "j"))
	j.Close() // every Add now fails
	log, logs := testLog()
	id, err := Wrap(fake, j, log).CreateMultipartUpload(context.Background(), "k", s3client.PutOptions{})
	if err != nil || id == "" {
		t.Fatalf("CreateMultipartUpload with a broken journal = %q, %v; want the upload", id, err)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), id) {
		t.Fatalf("no error line naming upload %s:\n%s", id, logs)
	}
}

// TestRecover: at start every listed upload is aborted, one S3 call each; one already gone is dropped; one whose
// abort fails stays listed for the next start; an upload the journal does not list (another writer's) is never
// touched.
func TestRecover(t *testing.T) {
	ctx := context.Background()
	fake := s3fake.New()
	path := filepath.Join(t.TempDir(), "j")
	j := open(t, path)
	log, logs := testLog()
	c := Wrap(fake, j, log)
	left1, _ := c.CreateMultipartUpload(ctx, "left-1", s3client.PutOptions{})
	left2, _ := c.CreateMultipartUpload(ctx, "left-2", s3client.PutOptions{})
	failing, _ := c.CreateMultipartUpload(ctx, "abort-fails", s3client.PutOptions{})
	goneID, _ := c.CreateMultipartUpload(ctx, "gone", s3client.PutOptions{})
	foreign, _ := fake.CreateMultipartUpload(ctx, "other-writer", s3client.PutOptions{})
	fake.AbortMultipartUpload(ctx, "gone", goneID) // e.g. its own abort reached S3 just before the crash
	j.f.Close()                                    // the daemon dies: no Close

	j = open(t, path)
	fake.ResetCounters()
	fake.SetFault(func(op, key string, call int) error {
		if op == "AbortMultipartUpload" && key == "abort-fails" {
			return s3client.ErrUnavailable
		}
		return nil
	})
	aborted, already, kept := Recover(ctx, j, fake, log)
	if aborted != 2 || already != 1 || kept != 1 {
		t.Errorf("Recover = %d aborted, %d gone, %d kept; want 2, 1, 1\nlog:\n%s", aborted, already, kept, logs)
	}
	if n := fake.Calls("AbortMultipartUpload"); n != 4 {
		t.Errorf("%d AbortMultipartUpload calls, want 4 (one per listed upload)", n)
	}
	var left []string
	for _, u := range fake.Uploads() {
		left = append(left, u.Key+"="+u.UploadID)
	}
	slices.Sort(left)
	if want := []string{"abort-fails=" + failing, "other-writer=" + foreign}; !slices.Equal(left, want) {
		t.Errorf("uploads in the bucket after Recover: %v; want %v", left, want)
	}
	for _, id := range []string{left1, left2} {
		if !strings.Contains(logs.String(), "aborted a multipart upload left by a previous daemon") || !strings.Contains(logs.String(), id) {
			t.Errorf("no log line for the aborted upload %s:\n%s", id, logs)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j = open(t, path)
	defer j.Close()
	if got, want := records(j.Pending()), records([]Record{{UploadID: failing, Key: "abort-fails"}}); got != want {
		t.Fatalf("listed for the next start = %s, want %s", got, want)
	}
}

// syncCounter counts the journal's disk flushes and fails them on demand.
type syncCounter struct {
	data, dir int
	fail      error // returned by every flush while set
}

func (c *syncCounter) install(j *Journal) {
	j.syncData = func(f *os.File) error { c.data++; return c.fail }
	j.syncDir = func(string) error { c.dir++; return c.fail }
}

// TestJournalSyncs: an addition is flushed before Add returns, a removal is not, a compaction flushes the new file
// before its rename and the directory after it; a failed flush is an error and loses no record.
func TestJournalSyncs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	j := open(t, path)
	var c syncCounter
	c.install(j)

	if err := j.Add("a", "id-a"); err != nil {
		t.Fatal(err)
	}
	if err := j.Add("b", "id-b"); err != nil {
		t.Fatal(err)
	}
	if c.data != 2 || c.dir != 0 {
		t.Fatalf("after 2 Adds: %d data and %d directory flushes, want 2 and 0", c.data, c.dir)
	}
	if err := j.Remove("id-a"); err != nil {
		t.Fatal(err)
	}
	if c.data != 2 {
		t.Fatalf("a Remove flushed (%d data flushes, want 2)", c.data)
	}

	c.fail = errors.New("injected EIO")
	if err := j.Add("c", "id-c"); err == nil || !strings.Contains(err.Error(), "injected EIO") {
		t.Fatalf("Add with a failing flush = %v, want the flush's error", err)
	}
	if got, want := records(j.Pending()), records([]Record{{UploadID: "id-b", Key: "b"}, {UploadID: "id-c", Key: "c"}}); got != want {
		t.Fatalf("after a failed flush listed %s, want %s", got, want)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err == nil {
		t.Fatal("Close compacted with a failing flush and reported no error")
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Fatalf("a failed compaction changed the journal:\nbefore %q\nafter  %q", before, after)
	}
	if _, err := os.Stat(path + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a failed compaction left its temporary file: %v", err)
	}

	j = open(t, path)
	c = syncCounter{}
	c.install(j)
	if got, want := records(j.Pending()), records([]Record{{UploadID: "id-b", Key: "b"}, {UploadID: "id-c", Key: "c"}}); got != want {
		t.Fatalf("reopened journal lists %s, want %s", got, want)
	}
	if err := j.Remove("id-b"); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if c.data != 1 || c.dir != 1 {
		t.Fatalf("a compaction made %d data and %d directory flushes, want 1 and 1", c.data, c.dir)
	}
	if got := lines(t, path); len(got) != 2 || !strings.HasPrefix(got[1], `+ "id-c"`) {
		t.Fatalf("compacted journal = %q, want the header and id-c", got)
	}
}

// BenchmarkAdd measures one recorded upload (append and flush) in the test's temporary directory, the cost the
// journal adds to every multipart upload.
func BenchmarkAdd(b *testing.B) {
	j, err := Open(filepath.Join(b.TempDir(), "j"), "bench")
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	for i := 0; b.Loop(); i++ {
		id := strconv.Itoa(i)
		if err := j.Add("key/"+id, id); err != nil {
			b.Fatal(err)
		}
		if err := j.Remove(id); err != nil {
			b.Fatal(err)
		}
	}
}
