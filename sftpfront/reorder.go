package sftpfront

// Restoring the order of pipelined writes.
//
// An SFTP client keeps many WRITE requests in flight (OpenSSH: up to 64 of 32 KiB) and pkg/sftp hands them to
// WriteAt from several goroutines, so they arrive in any order. The mount takes a sequential stream. A
// reorderWriter sits between them: each WriteAt has one of three outcomes.
//
//	sequential  off == next: written at once, then every held chunk that now follows is written too
//	held        next < off, off+len <= next+window, no overlap with a held chunk: copied and kept until the gap fills
//	refused     off < next (already written: a rewrite or a duplicate), beyond the window, overlapping a held
//	            chunk, or over maxHeldChunks: the request fails with a *WriteOrderError and the writer is failed
//	rewound     off < next before any byte was written, on a writer that continues an existing file (start > 0)
//	            and may rewind: the client rewrites the file in place (OpenSSH's scp in SFTP mode opens without
//	            truncation and writes from 0), so the file is truncated, the stream restarts at 0 and the write
//	            is taken as above
//
// States (one per writer, guarded by mu):
//
//	open ──refused write / file write error──▶ failed ──Finish──▶ finished
//	open ──Finish──▶ finished (failed first when chunks are still held: a gap never filled)
//
// A failed writer refuses every later write with the first error, so an upload with a hole can never be
// reported complete. The window bounds both how far ahead of the written position a write may reach and the
// bytes held: at most window bytes per open file.

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
)

// DefaultReorderWindow is the reorder window per open file: 4 MiB, twice what OpenSSH keeps in flight
// (64 × 32 KiB), so a default client never reaches it.
const DefaultReorderWindow = 4 << 20

// maxHeldChunks bounds the held chunks of one writer, so that a client sending tiny writes cannot make the
// bookkeeping cost grow with the window (1,024 chunks of 4 KiB fill the default window).
const maxHeldChunks = 1024

// WriteOrderError is the error of a write the reorder window refused. Its text is sent to the client.
type WriteOrderError struct {
	Off, Len int64 // the refused write
	Next     int64 // the first byte not yet written to the file
	Window   int64
	Reason   string
}

// Error describes the refused write and why.
func (e *WriteOrderError) Error() string {
	return fmt.Sprintf("write of %d bytes at offset %d refused: %s (written up to %d, reorder window %d bytes)",
		e.Len, e.Off, e.Reason, e.Next, e.Window)
}

// errIncomplete is the cause when a writer finishes with chunks held after a gap.
var errIncomplete = errors.New("upload incomplete")

// chunk is one held write.
type chunk struct {
	off  int64
	data []byte
}

// reorderWriter restores the order of concurrent WriteAt calls onto w (see the section comment). Safe for
// concurrent use.
type reorderWriter struct {
	w      io.WriterAt
	window int64
	rewind func() error // truncates the file to 0 for a rewrite in place; nil when not allowed or done

	mu sync.Mutex
	// Guarded by mu.
	next     int64   // offset of the first byte not yet written to w
	held     []chunk // sorted by off, non-overlapping, all beyond next
	heldSize int64
	written  int64 // bytes written to w
	err      error // sticky: set when the writer failed
	finished bool
}

// newReorderWriter returns a writer onto w whose stream starts at offset start (0, or the file's size for an
// append or resume).
func newReorderWriter(w io.WriterAt, start, window int64) *reorderWriter {
	return &reorderWriter{w: w, next: start, window: window}
}

// allowRewind lets a writer that continues an existing file restart at 0 (see "rewound" above); rewind
// truncates the file. Called before the first write.
func (r *reorderWriter) allowRewind(rewind func() error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rewind = rewind
}

// end returns the offset after the last byte written.
func (r *reorderWriter) end() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.next
}

// WriteAt writes p at off, at once or once the bytes before it have arrived.
func (r *reorderWriter) WriteAt(p []byte, off int64) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return 0, r.err
	}
	if r.finished {
		return 0, errors.New("write after close")
	}
	if len(p) == 0 {
		return 0, nil
	}
	n := int64(len(p))
	refuse := func(reason string) (int, error) {
		r.err = &WriteOrderError{Off: off, Len: n, Next: r.next, Window: r.window, Reason: reason}
		r.dropHeldLocked()
		return 0, r.err
	}
	if off < r.next && r.rewind != nil && r.written == 0 {
		rewind := r.rewind
		r.rewind = nil
		if err := rewind(); err != nil {
			r.err = err
			r.dropHeldLocked()
			return 0, err
		}
		r.next = 0
		if len(r.held) > 0 {
			if last := r.held[len(r.held)-1]; last.off+int64(len(last.data)) > r.window {
				return refuse("beyond the reorder window of a rewrite from offset 0")
			}
		}
	}
	switch {
	case off < r.next:
		return refuse("bytes before the written position cannot be rewritten")
	case off+n > r.next+r.window:
		return refuse("beyond the reorder window")
	case off == r.next:
		if err := r.writeLocked(p); err != nil {
			return 0, err
		}
		for len(r.held) > 0 && r.held[0].off == r.next {
			c := r.held[0]
			r.held = r.held[1:]
			r.heldSize -= int64(len(c.data))
			if err := r.writeLocked(c.data); err != nil {
				return 0, err
			}
		}
		return len(p), nil
	}
	i := sort.Search(len(r.held), func(i int) bool { return r.held[i].off >= off })
	if i < len(r.held) && r.held[i].off < off+n {
		return refuse("overlaps a write already received")
	}
	if i > 0 && r.held[i-1].off+int64(len(r.held[i-1].data)) > off {
		return refuse("overlaps a write already received")
	}
	if len(r.held) >= maxHeldChunks {
		return refuse(fmt.Sprintf("more than %d writes waiting for a gap", maxHeldChunks))
	}
	r.held = append(r.held, chunk{})
	copy(r.held[i+1:], r.held[i:])
	r.held[i] = chunk{off: off, data: append([]byte(nil), p...)} // the caller may reuse p
	r.heldSize += n
	return len(p), nil
}

// writeLocked writes p at next on w; a short or failed write fails the writer.
func (r *reorderWriter) writeLocked(p []byte) error {
	n, err := r.w.WriteAt(p, r.next)
	r.next += int64(n)
	r.written += int64(n)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	if err != nil {
		r.err = err
		r.dropHeldLocked()
	}
	return err
}

// dropHeldLocked releases the held chunks of a failed writer.
func (r *reorderWriter) dropHeldLocked() {
	r.held, r.heldSize = nil, 0
}

// fail fails the writer with err unless it has failed already (a dropped connection, pkg/sftp's TransferError).
func (r *reorderWriter) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err == nil {
		r.err = err
		r.dropHeldLocked()
	}
}

// finish ends the stream: it returns the writer's failure, or an error wrapping errIncomplete when chunks are
// still held after a gap, and the bytes written to w. Later writes fail.
func (r *reorderWriter) finish() (written int64, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.finished = true
	if r.err == nil && len(r.held) > 0 {
		r.err = fmt.Errorf("%w: %d bytes received after a gap at offset %d that never filled",
			errIncomplete, r.heldSize, r.next)
		r.dropHeldLocked()
	}
	return r.written, r.err
}

// heldBytes returns the bytes held waiting for a gap.
func (r *reorderWriter) heldBytes() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.heldSize
}
