package upload

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/s3ftp/s3ftp/internal/safego"
	"github.com/s3ftp/s3ftp/s3client"
)

// Defaults of Aborts' zero fields.
const (
	// DefaultAbortBound is how long an abort is retried in total before the upload is left to a lifecycle rule
	// (or to s3mount --abort-uploads-older-than at the next start).
	DefaultAbortBound = 5 * time.Minute
	// DefaultAbortMinDelay is the first wait between two attempts; it doubles up to DefaultAbortMaxDelay.
	DefaultAbortMinDelay = time.Second
	// DefaultAbortMaxDelay caps the wait between two attempts.
	DefaultAbortMaxDelay = 15 * time.Second
)

// Aborts runs the AbortMultipartUpload calls of failed or aborted writers in the background and lets an
// unmount wait for them. A failure usually comes from an S3 outage, and an abort tried once inside that outage
// fails too and leaves the upload (and the storage of its parts) behind. So each abort is retried with
// exponential backoff (MinDelay doubling up to MaxDelay) until S3 accepts it or says the upload no longer
// exists, for at most Bound in total. A writer hands its abort over and returns its own error at once.
//
// Each abort logs one line when it is first retried (not when the first attempt succeeds) and one when it
// ends after retries or gives up. Set the fields before the first use; the zero value uses the defaults. One
// Aborts is shared by the writers of a mount; a writer without one gets a private Aborts.
type Aborts struct {
	Bound    time.Duration // total time an abort is retried (<= 0: DefaultAbortBound)
	MinDelay time.Duration // first wait between attempts (<= 0: DefaultAbortMinDelay)
	MaxDelay time.Duration // largest wait between attempts (<= 0: DefaultAbortMaxDelay)
	// AttemptTimeout bounds one AbortMultipartUpload call, capped by what is left of Bound. <= 0: only Bound
	// does. The client's own limits end an attempt: s3client bounds every request by its attempts, response
	// header and idle timeouts and backoff (about 95 s with its defaults). A shorter AttemptTimeout would
	// cancel each call in the middle of the client's retries during an outage, so that no call ever ended
	// with S3's answer.
	AttemptTimeout time.Duration

	wg sync.WaitGroup

	mu      sync.Mutex // guards the fields below
	pending int
	failed  int // aborts given up since creation
}

// aborter is what an abort needs of the client.
type aborter interface {
	AbortMultipartUpload(ctx context.Context, key, uploadID string) error
}

// Pending returns the number of aborts still running.
func (a *Aborts) Pending() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.pending
}

// Failed returns the number of aborts given up after Bound since the Aborts was created.
func (a *Aborts) Failed() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.failed
}

// Wait blocks until no abort is running or ctx ends, in which case it returns ctx's error. Aborts still
// running keep running.
func (a *Aborts) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		a.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// start aborts upload id of key in a new goroutine. A panic there is logged and counted on panics; the abort
// is then given up (counted in Failed), as one that ran out of time.
func (a *Aborts) start(c aborter, key, id string, log *slog.Logger, panics *safego.Panics) {
	a.mu.Lock()
	a.pending++
	a.mu.Unlock()
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		ok := false
		// Call's only error is a panic, which it logged and counted; ok stays false.
		_ = panics.Call(log, "upload: aborting multipart upload "+id+" of "+key, func() error {
			ok = a.run(c, key, id, log)
			return nil
		})
		a.mu.Lock()
		a.pending--
		if !ok {
			a.failed++
		}
		a.mu.Unlock()
	}()
}

// run retries the abort until it succeeds, the upload is gone, or the bound passed; it reports whether the
// upload is known to be gone.
func (a *Aborts) run(c aborter, key, id string, log *slog.Logger) bool {
	bound := orDefault(a.Bound, DefaultAbortBound)
	delay := orDefault(a.MinDelay, DefaultAbortMinDelay)
	maxDelay := max(orDefault(a.MaxDelay, DefaultAbortMaxDelay), delay)
	begin := time.Now()
	deadline := begin.Add(bound)
	for attempt := 1; ; attempt++ {
		perTry := max(time.Until(deadline), time.Millisecond)
		if a.AttemptTimeout > 0 {
			perTry = min(perTry, a.AttemptTimeout)
		}
		ctx, cancel := context.WithTimeout(context.Background(), perTry)
		err := c.AbortMultipartUpload(ctx, key, id)
		cancel()
		gone := err == nil || s3client.UploadGone(err)
		if gone {
			if attempt > 1 {
				log.Info("upload: multipart upload aborted after retries", "key", key, "upload_id", id,
					"attempts", attempt, "after", time.Since(begin).Round(time.Millisecond))
			}
			return true
		}
		if attempt == 1 {
			log.Warn("upload: aborting the multipart upload failed; retrying in the background", "key", key,
				"upload_id", id, "bound", bound, "err", err)
		}
		if time.Now().Add(delay).After(deadline) {
			log.Error("upload: giving up aborting the multipart upload; it stays until a lifecycle rule or "+
				"s3mount --abort-uploads-older-than removes it", "key", key, "upload_id", id,
				"attempts", attempt, "after", time.Since(begin).Round(time.Millisecond), "err", err)
			return false
		}
		time.Sleep(delay)
		delay = min(2*delay, maxDelay)
	}
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
