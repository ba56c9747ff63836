package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/s3ftp/s3ftp/internal/safego"
	"github.com/s3ftp/s3ftp/s3client"
)

// resumeBackoff is the wait before each successive resume of one block without progress; its length bounds
// those resumes. Bytes arriving start the sequence again.
var resumeBackoff = []time.Duration{100 * time.Millisecond, 400 * time.Millisecond, 1600 * time.Millisecond}

// resumable reports whether a GET that failed with err may be resumed by a new GET for the bytes not received:
// the connection failed (kind s3client.ErrUnavailable, which includes a reset, a body cut short and an idle
// timeout, or a body that ended early), not the request (the object is gone or was replaced), the context or
// the code (a panic).
func resumable(err error) bool {
	var pe *safego.PanicError
	if err == nil || isCanceled(err) || errors.As(err, &pe) {
		return false
	}
	var se *s3client.Error
	if errors.As(err, &se) {
		return errors.Is(se, s3client.ErrUnavailable)
	}
	return errors.Is(err, io.ErrUnexpectedEOF)
}

// getFill fills the created block b from S3. *body, when not nil, is an open GET positioned at the block's
// first byte (the stream's); otherwise getFill opens one with If-Match r.obj.ETag, for the rest of the object
// when openEnded, else for the block only. A body that fails with a resumable error is closed, and after
// resumeBackoff a new GET with the same If-Match asks for the bytes from the first one not received, so the
// block keeps what it holds and its bytes stay exact; a changed object fails that GET with kind
// s3client.ErrPrecondition. After len(resumeBackoff) resumes in a row without a byte received, when a GET
// fails to open (the client has retried it already: on a silent network each try costs a full retry chain),
// or on any other error, getFill returns the error and the caller fails the block. ctx ends the GETs and the
// backoff waits.
//
// On return *body is the body positioned after the block (openEnded only; it may be nil) or nil; the caller
// closes it.
func (r *Reader) getFill(ctx context.Context, b *block, body *io.ReadCloser, openEnded bool) error {
	start := b.k.idx * r.c.bs
	n := 0        // bytes of the block held
	attempts := 0 // resumes since the last byte arrived; only the first GET is made with 0
	for {
		var err error
		if *body == nil {
			err = r.openGet(ctx, body, start+int64(n), int64(len(b.buf)-n), openEnded)
			if err != nil {
				// The client has retried this GET already, with its whole chain of attempts: S3 is not
				// answering (or refuses), and another resume would only wait through that chain again.
				return err
			}
		}
		if err == nil {
			var m int
			m, err = r.c.fill(b, *body, n)
			if err == nil {
				if !openEnded {
					closeBody(body)
				}
				return nil
			}
			closeBody(body)
			if m > n {
				n, attempts = m, 0
			}
		}
		if !resumable(err) || ctx.Err() != nil {
			return err
		}
		if attempts == len(resumeBackoff) {
			return fmt.Errorf("cache: block %v: gave up after %d resumes without progress: %w", b.k, attempts, err)
		}
		attempts++
		r.c.log.Warn("cache: GET failed mid-block, resuming", slog.String("key", r.obj.Key),
			slog.Int64("block", b.k.idx), slog.Int64("offset", start+int64(n)), slog.Int("attempt", attempts),
			slog.Any("err", err))
		r.c.mu.Lock()
		r.c.stats.Resumes++
		r.c.mu.Unlock()
		t := time.NewTimer(resumeBackoff[attempts-1])
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("cache: block %v: waiting to resume the GET: %w", b.k, ctx.Err())
		}
	}
}

// openGet opens a GET of r's object version from off, for length bytes or, when openEnded, to the end, and
// checks that it serves that version. On success *body is the open body.
func (r *Reader) openGet(ctx context.Context, body *io.ReadCloser, off, length int64, openEnded bool) error {
	if openEnded {
		length = -1
	}
	rc, info, err := r.g.GetObject(ctx, r.obj.Key, off, length, r.obj.ETag)
	if err != nil {
		return err
	}
	if err := r.checkInfo(info); err != nil {
		rc.Close()
		return err
	}
	*body = rc
	return nil
}

// closeBody closes *body, if open, and sets it to nil first, so that a panic during Close cannot close it twice.
func closeBody(body *io.ReadCloser) {
	if rc := *body; rc != nil {
		*body = nil
		rc.Close()
	}
}
