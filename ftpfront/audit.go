package ftpfront

// Audit log.
//
// AuditLog writes one JSON object per line per Event, in the order Record was called. Record never waits on the
// writer's I/O: events go through a queue of auditQueueLen entries drained by one goroutine that batches them into
// whole-line writes. When the queue is full (the writer is stuck, e.g. a full disk or a blocked pipe), Record waits
// at most auditFullWait and then drops the event; drops are counted (Dropped) and reported in the process log. JSON
// encoding escapes control characters, so a client-chosen path containing a newline cannot forge a line.

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// auditQueueLen is how many events may wait for the writer.
	auditQueueLen = 4096
	// auditFullWait is the longest Record blocks when the queue is full.
	auditFullWait = 50 * time.Millisecond
	// auditBatchBytes bounds one write of batched lines.
	auditBatchBytes = 64 << 10
)

// AuditLog is an Auditor writing JSON lines to an io.Writer. It is safe for concurrent use. Close it to flush.
type AuditLog struct {
	w        io.Writer
	log      *slog.Logger
	fullWait time.Duration // longest Record blocks on a full queue
	done     chan struct{} // closed when the writer goroutine has written everything and exited

	// mu guards closing q against concurrent sends: Record holds it shared, Close exclusively.
	mu     sync.RWMutex
	closed bool
	q      chan Event

	dropped atomic.Uint64
	failed  atomic.Uint64 // events lost to write errors
	lastErr atomic.Pointer[error]
}

// NewAuditLog starts an audit log writing to w. The caller keeps ownership of w (Close does not close it). Write
// errors and drops are logged through slog.Default().
func NewAuditLog(w io.Writer) *AuditLog {
	return newAuditLog(w, slog.Default(), auditFullWait)
}

// newAuditLog is NewAuditLog with the process logger and the full-queue wait chosen by the caller.
func newAuditLog(w io.Writer, log *slog.Logger, fullWait time.Duration) *AuditLog {
	l := &AuditLog{
		w:        w,
		log:      log,
		fullWait: fullWait,
		done:     make(chan struct{}),
		q:        make(chan Event, auditQueueLen),
	}
	go l.run()
	return l
}

// Record queues e for writing. A zero e.Time is set to the current time; times are written in UTC. Events recorded
// after Close are dropped.
func (l *AuditLog) Record(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.Time = e.Time.UTC()
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		l.dropped.Add(1)
		return
	}
	select {
	case l.q <- e:
		return
	default:
	}
	t := time.NewTimer(l.fullWait)
	defer t.Stop()
	select {
	case l.q <- e:
	case <-t.C:
		l.dropped.Add(1)
	}
}

// Dropped returns how many events were dropped because the queue stayed full or the log was closed.
func (l *AuditLog) Dropped() uint64 { return l.dropped.Load() }

// Close writes the queued events and stops the writer goroutine. It returns the last write error, if any write
// failed since the log was created. Close is idempotent.
func (l *AuditLog) Close() error {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		close(l.q)
	}
	l.mu.Unlock()
	<-l.done
	if p := l.lastErr.Load(); p != nil {
		return *p
	}
	return nil
}

// run drains the queue, writing batches of whole lines, until the queue is closed and empty.
func (l *AuditLog) run() {
	defer close(l.done)
	var (
		buf         bytes.Buffer
		reported    uint64 // drops already reported
		writeFailed bool   // the previous write failed; log again only after a success
	)
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	encode := func(e Event) {
		n := buf.Len()
		if err := enc.Encode(e); err != nil {
			// Only a time outside years 0..9999 can fail to encode.
			buf.Truncate(n)
			l.failed.Add(1)
			l.log.Error("audit: event not encodable, dropped", "event", e.Event, "session", e.Session, "err", err)
		}
	}
	for e := range l.q {
		buf.Reset()
		encode(e)
		batched := 1
		for buf.Len() < auditBatchBytes && len(l.q) > 0 {
			// Only this goroutine receives, so a non-empty queue does not block.
			encode(<-l.q)
			batched++
		}
		if buf.Len() > 0 {
			// A writer that panics fails this batch like a write error; the goroutine goes on.
			if err := uncounted.Call(l.log, "ftpfront: audit log write", func() error {
				_, err := l.w.Write(buf.Bytes())
				return err
			}); err != nil {
				l.failed.Add(uint64(batched))
				l.lastErr.Store(&err)
				if !writeFailed {
					l.log.Error("audit: write failed, events lost", "events", batched, "err", err)
				}
				writeFailed = true
			} else {
				if writeFailed {
					l.log.Info("audit: writes succeed again", "lost_total", l.failed.Load())
				}
				writeFailed = false
			}
		}
		if d := l.dropped.Load(); d != reported {
			l.log.Warn("audit: events dropped: queue full", "dropped_total", d)
			reported = d
		}
	}
}
