package upload

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/s3ftp/s3ftp/internal/safego"
	"github.com/s3ftp/s3ftp/s3client"
	"github.com/s3ftp/s3ftp/s3client/s3fake"
)

// panicOn makes the fake's first call of op panic, as a bug in the client would.
func panicOn(f *s3fake.Fake, op string) {
	f.SetFault(func(o, key string, call int) error {
		if o == op && call == 1 {
			panic("injected panic in " + op)
		}
		return nil
	})
}

// A panic in any S3 call a writer makes from its own goroutines (a part upload, a part copy, the completion)
// fails the writer as an S3 failure does: Close returns a *safego.PanicError, the multipart upload, if one was
// created, is aborted, no new object version appears, every budget byte comes back, the panic is logged once
// with its stack and counted once; then a second writer on the same budget stores its object.
func TestPanicInWriterGoroutineFailsTheWriter(t *testing.T) {
	cases := []struct {
		op     string
		size   int   // bytes written
		keep   int64 // > 0: NewFromExisting over an object of keep bytes, kept whole
		aborts int   // AbortMultipartUpload calls expected
	}{
		{op: "UploadPart", size: 12 * mib, aborts: 1},
		{op: "CompleteMultipartUpload", size: 12 * mib, aborts: 1},
		{op: "PutObject", size: mib, aborts: 0},
		{op: "UploadPartCopy", size: mib, keep: 6 * mib, aborts: 1},
		// The short prefix is fetched by Close's completion when nothing was written.
		{op: "GetObject", size: 0, keep: mib, aborts: 0},
	}
	for _, tc := range cases {
		t.Run(tc.op, func(t *testing.T) {
			f := s3fake.New()
			var old []byte
			var src s3client.ObjectInfo
			if tc.keep > 0 {
				old = testData(40, int(tc.keep))
				f.Put("k", old)
				src, _ = f.Info("k")
			}
			panicOn(f, tc.op)
			budget := NewBudget(20 * mib)
			cfg, logs := testConfig(t, budget, 2)
			panics := &safego.Panics{}
			cfg.Panics = panics
			var w *Writer
			if tc.keep > 0 {
				w = NewFromExisting(f, "k", src, tc.keep, s3client.PutOptions{}, cfg)
			} else {
				w = New(f, "k", s3client.PutOptions{}, cfg)
			}
			data := testData(41, tc.size)
			var werr error
			for off := 0; off < len(data) && werr == nil; off += mib {
				_, werr = w.WriteAt(context.Background(), data[off:off+mib], tc.keep+int64(off))
			}
			_, err := w.Close(context.Background())
			var pe *safego.PanicError
			if !errors.As(err, &pe) || !strings.Contains(err.Error(), "injected panic in "+tc.op) {
				t.Fatalf("Close = %v (%T), want the *safego.PanicError of %s", err, err, tc.op)
			}
			if werr != nil && !errors.As(werr, &pe) {
				t.Errorf("WriteAt failed with %v, want the panic", werr)
			}
			settle(t, w)
			if n := f.Calls("AbortMultipartUpload"); n != tc.aborts {
				t.Errorf("AbortMultipartUpload calls = %d, want %d", n, tc.aborts)
			}
			if u := f.Uploads(); len(u) != 0 {
				t.Errorf("uploads left behind: %v", u)
			}
			if got, ok := f.Object("k"); tc.keep == 0 && ok {
				t.Errorf("object k exists (%d bytes) after a failed upload", len(got))
			} else if tc.keep > 0 && !bytes.Equal(got, old) {
				t.Errorf("object k changed (%d bytes) after a failed upload", len(got))
			}
			if n := budget.InUse(); n != 0 {
				t.Errorf("budget InUse = %d after the failed Close, want 0", n)
			}
			if n := panics.Count(); n != 1 {
				t.Errorf("panics counted = %d, want 1", n)
			}
			if pl := logs.Matching("stack="); len(pl) != 1 || !strings.Contains(pl[0], "level=ERROR") ||
				!strings.Contains(pl[0], "injected panic in "+tc.op) {
				t.Errorf("want one ERROR line with the panic and its stack, got %q", pl)
			}
			failed := 0
			for _, l := range logs.Lines() {
				if strings.Contains(l, "upload failed") && strings.Contains(l, "key=k") {
					failed++
				}
			}
			if failed != 1 {
				t.Errorf("%d \"upload failed\" lines naming the key, want 1: %q", failed, logs.Lines())
			}

			f.SetFault(nil)
			w2 := New(f, "k2", s3client.PutOptions{}, cfg)
			data2 := testData(42, 12*mib)
			writeAll(t, w2, data2, mib)
			info, err := w2.Close(context.Background())
			if err != nil {
				t.Fatalf("second upload on the same budget: %v", err)
			}
			checkStored(t, f, "k2", data2, info)
			if n := budget.InUse(); n != 0 {
				t.Errorf("budget InUse = %d after the second upload, want 0", n)
			}
		})
	}
}

// A panic in a background abort is logged and counted; the abort counts as given up and the process goes on.
func TestPanicInAbortIsRecovered(t *testing.T) {
	f := s3fake.New()
	panicOn(f, "AbortMultipartUpload")
	aborts := &Aborts{Bound: time.Hour, MinDelay: time.Millisecond}
	cfg, logs := testConfig(t, NewBudget(20*mib), 1)
	cfg.Aborts = aborts
	panics := &safego.Panics{}
	cfg.Panics = panics
	f.FailNext("UploadPart", 1, s3client.ErrUnavailable)
	w := New(f, "k", s3client.PutOptions{}, cfg)
	data := testData(43, 11*mib)
	var werr error
	for off := 0; off < len(data) && werr == nil; off += mib {
		_, werr = w.WriteAt(context.Background(), data[off:min(off+mib, len(data))], int64(off))
	}
	if _, err := w.Close(context.Background()); !errors.Is(err, s3client.ErrUnavailable) {
		t.Fatalf("Close = %v, want the part's ErrUnavailable", err)
	}
	if err := aborts.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	if aborts.Pending() != 0 || aborts.Failed() != 1 {
		t.Errorf("Pending %d, Failed %d after a panicking abort, want 0, 1", aborts.Pending(), aborts.Failed())
	}
	if n := panics.Count(); n != 1 {
		t.Errorf("panics counted = %d, want 1", n)
	}
	pl := logs.Matching("stack=")
	if len(pl) != 1 || !strings.Contains(pl[0], "aborting multipart upload") || !strings.Contains(pl[0], "of k") {
		t.Errorf("want one panic line naming the abort and the key, got %q", pl)
	}
	// The upload stays (the abort never ran); a later abort removes it.
	f.SetFault(nil)
	if u := f.Uploads(); len(u) != 1 {
		t.Fatalf("uploads = %v, want the one whose abort panicked", u)
	}
}
