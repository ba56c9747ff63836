package upload

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/s3ftp/s3ftp/internal/logbuf"
	"github.com/s3ftp/s3ftp/s3client"
	"github.com/s3ftp/s3ftp/s3client/s3fake"
)

// failedMultipart writes two parts to f through a writer whose second UploadPart fails and returns the writer
// after its Close returned the failure.
func failedMultipart(t *testing.T, f *s3fake.Fake, aborts *Aborts) (*Writer, *logbuf.Buffer) {
	t.Helper()
	cfg, logs := testConfig(t, NewBudget(20*mib), 1)
	cfg.Aborts = aborts
	f.FailNext("UploadPart", 1, s3client.ErrUnavailable)
	w := New(f, "k", s3client.PutOptions{}, cfg)
	data := testData(7, 11*mib)
	var werr error
	for off := 0; off < len(data) && werr == nil; off += mib {
		_, werr = w.WriteAt(context.Background(), data[off:off+mib], int64(off))
	}
	if _, err := w.Close(context.Background()); !errors.Is(err, s3client.ErrUnavailable) {
		t.Fatalf("Close = %v, want the part's ErrUnavailable", err)
	}
	return w, logs
}

// TestAbortRetriedUntilAccepted: an abort that fails in an outage is retried in the background until S3
// accepts it; Close does not wait for it, Wait does, and no upload is left.
func TestAbortRetriedUntilAccepted(t *testing.T) {
	f := s3fake.New()
	f.FailNext("AbortMultipartUpload", 3, s3client.ErrUnavailable)
	aborts := &Aborts{Bound: time.Hour, MinDelay: time.Millisecond, MaxDelay: 4 * time.Millisecond}
	_, logs := failedMultipart(t, f, aborts)
	if err := aborts.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := f.Calls("AbortMultipartUpload"); n != 4 {
		t.Errorf("AbortMultipartUpload calls = %d, want 4 (3 failures, then success)", n)
	}
	if u := f.Uploads(); len(u) != 0 {
		t.Errorf("uploads left: %v", u)
	}
	if aborts.Pending() != 0 || aborts.Failed() != 0 {
		t.Errorf("Pending %d, Failed %d, want 0, 0", aborts.Pending(), aborts.Failed())
	}
	l := logs.Lines()
	if len(l) != 3 || !strings.Contains(l[0], "upload failed") || !strings.Contains(l[1], "retrying") ||
		!strings.Contains(l[2], "aborted after retries") || !strings.Contains(l[2], "attempts=4") {
		t.Errorf("want the failure, one line at the first retry and one at the end, got %q", l)
	}
}

// TestAbortGivesUpAfterBound: an abort that keeps failing is given up once the bound passed, with one line at
// the start and one at the end; the upload stays.
func TestAbortGivesUpAfterBound(t *testing.T) {
	f := s3fake.New()
	f.SetFault(func(op, _ string, _ int) error {
		if op == "AbortMultipartUpload" {
			return s3client.ErrUnavailable
		}
		return nil
	})
	aborts := &Aborts{Bound: 50 * time.Millisecond, MinDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond}
	failedMultipart(t, f, aborts)
	_, logs := failedMultipart(t, f, aborts) // a second writer on the same Aborts
	if err := aborts.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := f.Calls("AbortMultipartUpload"); n < 4 {
		t.Errorf("AbortMultipartUpload calls = %d, want retries for both writers", n)
	}
	if u := f.Uploads(); len(u) != 2 {
		t.Errorf("uploads left = %v, want the two whose abort failed", u)
	}
	if aborts.Pending() != 0 || aborts.Failed() != 2 {
		t.Errorf("Pending %d, Failed %d, want 0, 2", aborts.Pending(), aborts.Failed())
	}
	l := logs.Lines()
	if len(l) != 3 || !strings.Contains(l[1], "retrying") || !strings.Contains(l[2], "giving up") {
		t.Errorf("want the failure, one line at the first retry and one when giving up, got %q", l)
	}
}

// TestAbortStopsWhenUploadGone: NoSuchUpload ends the retries at once, as the upload is gone.
func TestAbortStopsWhenUploadGone(t *testing.T) {
	f := s3fake.New()
	f.FailNext("AbortMultipartUpload", 1, s3client.ErrUnavailable)
	f.FailNext("AbortMultipartUpload", 1, s3client.ErrNoSuchUpload)
	aborts := &Aborts{Bound: time.Hour, MinDelay: time.Millisecond}
	failedMultipart(t, f, aborts)
	if err := aborts.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := f.Calls("AbortMultipartUpload"); n != 2 {
		t.Errorf("AbortMultipartUpload calls = %d, want 2", n)
	}
	if aborts.Failed() != 0 {
		t.Errorf("Failed = %d, want 0", aborts.Failed())
	}
}

// TestAbortsWaitStopsWithContext: Wait returns the context's error while an abort is still retried.
func TestAbortsWaitStopsWithContext(t *testing.T) {
	f := s3fake.New()
	release := make(chan struct{})
	f.SetFault(func(op, _ string, _ int) error {
		if op == "AbortMultipartUpload" {
			<-release
		}
		return nil
	})
	aborts := &Aborts{}
	failedMultipart(t, f, aborts)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := aborts.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait = %v, want context.Canceled", err)
	}
	if aborts.Pending() != 1 {
		t.Errorf("Pending = %d, want 1", aborts.Pending())
	}
	close(release)
	if err := aborts.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	if u := f.Uploads(); len(u) != 0 {
		t.Errorf("uploads left: %v", u)
	}
}

// deadlineClient is a Client that records the deadline of each AbortMultipartUpload call's context.
type deadlineClient struct {
	*s3fake.Fake
	mu        sync.Mutex
	deadlines []time.Time // zero: no deadline
}

func (c *deadlineClient) AbortMultipartUpload(ctx context.Context, key, uploadID string) error {
	d, _ := ctx.Deadline()
	c.mu.Lock()
	c.deadlines = append(c.deadlines, d)
	c.mu.Unlock()
	return c.Fake.AbortMultipartUpload(ctx, key, uploadID)
}

// TestAbortAttemptNotCutShort: without AttemptTimeout, an abort call may last until the bound, so the
// client's own retries and timeouts end it (s3client: about 95 s with its defaults) and an outage reports
// S3's error rather than a cancellation at every attempt; with AttemptTimeout, that caps each call.
func TestAbortAttemptNotCutShort(t *testing.T) {
	for _, tc := range []struct {
		name    string
		attempt time.Duration
		want    time.Duration // the deadline of each call, from its start, give or take a second
	}{
		{"bound only", 0, time.Hour},
		{"attempt timeout", 10 * time.Second, 10 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := s3fake.New()
			c := &deadlineClient{Fake: f}
			id, err := f.CreateMultipartUpload(t.Context(), "k", s3client.PutOptions{})
			if err != nil {
				t.Fatal(err)
			}
			f.FailNext("AbortMultipartUpload", 1, s3client.ErrUnavailable)
			aborts := &Aborts{Bound: time.Hour, MinDelay: time.Millisecond, AttemptTimeout: tc.attempt}
			start := time.Now()
			if !aborts.run(c, "k", id, slog.New(slog.DiscardHandler)) {
				t.Fatal("the abort did not succeed at the second attempt")
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			if len(c.deadlines) != 2 {
				t.Fatalf("abort calls = %d, want 2", len(c.deadlines))
			}
			for i, d := range c.deadlines {
				if got := d.Sub(start); got < tc.want-time.Second || got > tc.want+time.Second {
					t.Errorf("call %d: deadline %v after the start, want %v", i+1, got.Round(time.Millisecond), tc.want)
				}
			}
		})
	}
}
