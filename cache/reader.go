package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"

	"github.com/s3ftp/s3ftp/internal/safego"
	"github.com/s3ftp/s3ftp/s3client"
)

// Reader window defaults, used when a ReaderConfig field is zero.
const (
	DefaultInitialWindow = 256 << 10
	DefaultMaxWindow     = 8 << 20
)

// ReaderConfig configures the prefetching of one Reader.
type ReaderConfig struct {
	// InitialWindow is how far past the last read the stream prefetches at first (default
	// DefaultInitialWindow). Whole blocks are fetched, so the first window is at least the rest of a block.
	InitialWindow int64
	// MaxWindow is the largest prefetch window (default DefaultMaxWindow); it is capped at a quarter of the
	// cache's MaxBytes so that a stream cannot evict the blocks it prefetched before they are read, and while
	// several Readers are open at an equal share of half of MaxBytes, so that they cannot evict each other's.
	MaxWindow int64
}

// Reader reads one object version for one open file handle. It is safe for concurrent use: the kernel issues
// parallel reads on one handle.
//
// Sequential reads (each starting within the tolerance of where the previous one ended, or the first one at
// offset 0) are served by one stream: a goroutine owning a single open-ended GET that fills blocks up to the
// prefetch window past the last read. The window doubles on each read that reaches a new block, up to
// MaxWindow. Reads slightly behind or ahead of the stream do not restart it; a read far away fetches just its
// blocks with ranged GETs, and a sequential run there restarts the stream. The stream opens its GET lazily at
// the first block not cached and closes it on reaching a cached block, so re-reading a cached object makes no
// request; a cached block the stream passes becomes the most recently used, since its reader needs it soon.
// Readers of one object side by side share the blocks whichever stream fetched them; when one overtakes
// another, the overtaken stream closes its GET and opens a new one at the next block nobody fetched.
type Reader struct {
	c       *Cache
	g       Getter
	obj     s3client.ObjectInfo
	nblocks int64
	initWin int64
	maxWin  int64
	ctx     context.Context // lives with the Reader: every GET and fill uses it
	cancel  context.CancelFunc
	wg      sync.WaitGroup // streams and fetches

	mu sync.Mutex
	// guarded by mu:
	closed   bool
	lastEnd  int64 // end of the previous read; -1 before the first
	maxBlock int64 // highest block any read reached; -1 before the first
	window   int64
	st       *stream // current stream, nil before the first sequential read
}

// stream is one sequential prefetch run of a Reader.
type stream struct {
	cancel context.CancelFunc
	start  int64 // first block
	// guarded by Reader.mu:
	next     int64         // blocks below next were claimed by the stream (filled, found cached, or failed)
	limit    int64         // the stream claims block i only while i*BlockSize < limit
	done     bool          // the goroutine has ended
	err      error         // why it ended early
	failedAt int64         // the block it failed on
	reported bool          // a read has returned err
	wake     chan struct{} // cap 1: limit was raised
	progress chan struct{} // closed and replaced when next advances or the stream ends
	// owned by the stream goroutine, for the cleanup after a panic (runStream):
	at          int64  // the block it works on
	held        *block // the block it holds a pin on, nil when none
	heldCreated bool   // it created held, so it owns held's fill
}

// NewReader returns a Reader of the object version obj (obj.Key, obj.ETag, obj.Size). Every GET carries
// If-Match obj.ETag, and cached blocks are keyed by it, so a Reader never mixes versions: once the object
// changes, reading a block that is not cached fails with kind s3client.ErrPrecondition.
func (c *Cache) NewReader(g Getter, obj s3client.ObjectInfo, rc ReaderConfig) *Reader {
	if rc.InitialWindow <= 0 {
		rc.InitialWindow = DefaultInitialWindow
	}
	if rc.MaxWindow <= 0 {
		rc.MaxWindow = DefaultMaxWindow
	}
	maxWin := min(rc.MaxWindow, c.max/4)
	c.readers.Add(1)
	ctx, cancel := context.WithCancel(context.Background())
	return &Reader{
		c:        c,
		g:        g,
		obj:      obj,
		nblocks:  (obj.Size + c.bs - 1) / c.bs,
		initWin:  min(rc.InitialWindow, maxWin),
		maxWin:   maxWin,
		ctx:      ctx,
		cancel:   cancel,
		lastEnd:  -1,
		maxBlock: -1,
		window:   min(rc.InitialWindow, maxWin),
	}
}

// ReadAt reads len(p) bytes at off into p. It returns fewer bytes only at the end of the object, with io.EOF.
// A failed or truncated GET gives an error, never short or wrong data. ctx only stops the waiting (a canceled
// read returns ctx's error); the GETs live with the Reader until Close.
func (r *Reader) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("cache: read %q at negative offset %d", r.obj.Key, off)
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return 0, errClosed
	}
	if len(p) == 0 { // as os.File.ReadAt: an empty read succeeds anywhere
		r.mu.Unlock()
		return 0, nil
	}
	if off >= r.obj.Size {
		r.mu.Unlock()
		return 0, io.EOF
	}
	end := min(off+int64(len(p)), r.obj.Size)
	r.noteReadLocked(off, end)
	r.mu.Unlock()

	bs := r.c.bs
	n := 0
	for pos := off; pos < end; {
		i := pos / bs
		a := pos - i*bs
		e := min(end-i*bs, r.c.blockLen(r.obj.Size, i))
		if err := r.copyBlock(ctx, i, p[n:], a, e); err != nil {
			return n, err
		}
		n += int(e - a)
		pos += e - a
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// View is bytes of one cached block, lent without a copy: the block stays pinned (neither evicted nor its
// buffer reused) until Release. Release must be called exactly once; a View is not for concurrent use.
type View struct {
	c    *Cache
	b    *block
	data []byte
}

// Bytes returns the viewed bytes. They are valid until Release and must not be modified.
func (v *View) Bytes() []byte { return v.data }

// Release unpins the block. Calls after the first do nothing.
func (v *View) Release() {
	if v.b == nil {
		return
	}
	v.c.unpin(v.b)
	v.b, v.data = nil, nil
}

// ReadView is ReadAt without the copy, for a read that lies within one block (the kernel's block-aligned
// readahead requests do): it returns a View of the bytes [off, off+n), shorter only at the end of the object
// (err io.EOF, as ReadAt). When the range spans two blocks it returns ok false and does nothing: use ReadAt.
// A View pins one block only, and only once that block holds the range, so lending views never waits for
// memory that other views hold.
func (r *Reader) ReadView(ctx context.Context, off int64, n int) (v *View, ok bool, err error) {
	bs := r.c.bs
	if off < 0 || n <= 0 || off/bs != (off+int64(n)-1)/bs {
		return nil, false, nil
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, true, errClosed
	}
	if off >= r.obj.Size {
		r.mu.Unlock()
		return &View{}, true, io.EOF
	}
	end := min(off+int64(n), r.obj.Size)
	r.noteReadLocked(off, end)
	r.mu.Unlock()

	i := off / bs
	b, err := r.pinBlock(ctx, i, end-i*bs)
	if err != nil {
		return nil, true, err
	}
	v = &View{c: r.c, b: b, data: b.buf[off-i*bs : end-i*bs]}
	if end-off < int64(n) {
		return v, true, io.EOF
	}
	return v, true, nil
}

// tolerance is how far a read may start from the previous read's end and still count as sequential: the
// kernel's parallel readahead requests arrive slightly out of order.
func (r *Reader) toleranceLocked() int64 {
	return max(4*r.c.bs, r.window)
}

// noteReadLocked updates the sequential detection for a read of [off, end) and starts, restarts or extends
// the stream.
func (r *Reader) noteReadLocked(off, end int64) {
	bs := r.c.bs
	tol := r.toleranceLocked()
	// The first read counts as sequential when it is near the start: the kernel's first readahead requests
	// for a file may arrive in any order.
	seq := (r.lastEnd < 0 && off <= tol) || (r.lastEnd >= 0 && off >= r.lastEnd-tol && off <= r.lastEnd+tol)
	r.lastEnd = end
	if !seq {
		return
	}
	wcap := r.windowCapLocked()
	last := (end - 1) / bs
	if last > r.maxBlock {
		if r.maxBlock >= 0 {
			r.window = 2 * r.window
		}
		r.maxBlock = last
	}
	r.window = min(r.window, wcap)
	first := off / bs
	st := r.st
	failed := st != nil && st.done && st.err != nil
	if failed && !isCanceled(st.err) && !st.reported {
		// The blocks before the failure are cached; the failure is reported to the first read that needs a
		// block at or after it (copyBlock). Only then may a new stream retry.
		return
	}
	if st == nil || failed ||
		first*bs > st.limit+tol || // far ahead of the stream
		(first+1)*bs+tol < st.start*bs { // far behind it
		if st != nil { // a new run starts small again
			r.window = min(r.initWin, wcap)
			r.maxBlock = last
		}
		r.startStreamLocked(first, end+r.window)
		return
	}
	if lim := end + r.window; lim > st.limit {
		st.limit = lim
		select {
		case st.wake <- struct{}{}:
		default:
		}
	}
}

// windowCapLocked is the largest window the Reader may use now: MaxWindow, and at most an equal share of half
// the cache among the open Readers, but at least one block. Without the share, concurrent streams would
// prefetch more than the cache holds and evict each other's blocks before they are read, fetching them twice.
func (r *Reader) windowCapLocked() int64 {
	n := max(r.c.readers.Load(), 1)
	return max(min(r.maxWin, r.c.max/(2*n)), r.c.bs)
}

func (r *Reader) startStreamLocked(first, limit int64) {
	if old := r.st; old != nil {
		old.cancel()
	}
	ctx, cancel := context.WithCancel(r.ctx)
	st := &stream{
		cancel:   cancel,
		start:    first,
		next:     first,
		limit:    limit,
		wake:     make(chan struct{}, 1),
		progress: make(chan struct{}),
	}
	r.st = st
	r.wg.Add(1)
	go r.runStream(ctx, st)
}

// copyBlock copies bytes [a, e) of block i into dst, from the cache, the stream, or a fetch of its own.
func (r *Reader) copyBlock(ctx context.Context, i int64, dst []byte, a, e int64) error {
	b, err := r.pinBlock(ctx, i, e)
	if err != nil {
		return err
	}
	copy(dst, b.buf[a:e])
	r.c.unpin(b)
	return nil
}

// pinBlock returns block i pinned once and holding at least its first e bytes, from the cache, the stream, or
// a fetch of its own. The caller must unpin it.
func (r *Reader) pinBlock(ctx context.Context, i int64, e int64) (*block, error) {
	k := blockKey{r.obj.Key, r.obj.ETag, i}
	for attempt := 0; ; attempt++ {
		b := r.c.lookup(k)
		if b == nil {
			wait, err := r.streamStatus(i)
			if err != nil {
				return nil, err
			}
			if wait != nil {
				select {
				case <-wait:
					continue
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}
			if b, err = r.fetch(ctx, k); err != nil {
				return nil, err
			}
		}
		err := r.c.waitFor(ctx, b, int(e))
		if err == nil {
			return b, nil
		}
		r.c.unpin(b)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		r.noteFailure(i)
		// A fill canceled by another reader's Close or by a stream restart is not an S3 failure: fetch again.
		if !isCanceled(err) || attempt >= maxCanceledRetries {
			return nil, err
		}
		r.mu.Lock()
		closed := r.closed
		r.mu.Unlock()
		if closed {
			return nil, errClosed
		}
	}
}

// noteFailure records that a read of block i got an error: when the current stream failed at or before i, its
// failure has now been reported.
func (r *Reader) noteFailure(i int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if st := r.st; st != nil && st.done && st.err != nil && i >= st.failedAt {
		st.reported = true
	}
}

// maxCanceledRetries bounds the refetches of one block whose fills were canceled by others.
const maxCanceledRetries = 8

// streamStatus tells copyBlock, for a block not in the cache, whether to wait for the stream (a channel that
// closes when it advances), to fail with the stream's error, or (both nil) to fetch the block itself.
func (r *Reader) streamStatus(i int64) (<-chan struct{}, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, errClosed
	}
	st := r.st
	if st == nil || i < st.start {
		return nil, nil
	}
	if st.done && st.err != nil && !isCanceled(st.err) && !st.reported && i >= st.failedAt {
		// Reported once; the next sequential read starts a new stream.
		st.reported = true
		return nil, st.err
	}
	if !st.done && i >= st.next && i*r.c.bs < st.limit {
		return st.progress, nil
	}
	return nil, nil
}

// fetch returns block k pinned, starting a fill with a ranged GET (or from disk) when it is not cached.
func (r *Reader) fetch(ctx context.Context, k blockKey) (*block, error) {
	n := r.c.blockLen(r.obj.Size, k.idx)
	b, created, err := r.c.acquire(ctx, k, n)
	if err != nil {
		return nil, err
	}
	if !created { // another reader created it since our lookup: served from memory all the same
		r.c.mu.Lock()
		r.c.stats.Hits++
		r.c.mu.Unlock()
		return b, nil
	}
	r.c.mu.Lock()
	r.c.pinLocked(b) // the caller's pin; acquire's belongs to the fill
	r.c.stats.Misses++
	r.c.mu.Unlock()
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		r.c.fail(b, errClosed)
		return b, nil
	}
	r.wg.Add(1)
	r.mu.Unlock()
	go r.fillOne(b)
	return b, nil
}

// fillOne fills the created block b from disk or with one ranged GET. A failure or a panic fails b.
func (r *Reader) fillOne(b *block) {
	defer r.wg.Done()
	fromDisk := false
	err := r.c.panics.Call(r.c.log, "cache: block fetch", func() error {
		if r.c.diskRead(b) {
			fromDisk = true
			return nil
		}
		var body io.ReadCloser
		defer closeBody(&body)
		return r.getFill(r.ctx, b, &body, false)
	})
	if err != nil {
		r.c.logFailure("cache: block fetch failed", slog.String("block", b.k.String()), err)
		r.c.fail(b, err)
		return
	}
	r.c.complete(b, fromDisk)
}

// checkInfo verifies that a GET returned the version this Reader reads.
func (r *Reader) checkInfo(info s3client.ObjectInfo) error {
	want := strings.Trim(r.obj.ETag, `"`)
	if (want != "" && info.ETag != "" && strings.Trim(info.ETag, `"`) != want) || (info.Size != 0 && info.Size != r.obj.Size) {
		return &s3client.Error{Op: "GetObject", Key: r.obj.Key, Kind: s3client.ErrPrecondition,
			Err: fmt.Errorf("got ETag %s size %d, want ETag %s size %d", info.ETag, info.Size, r.obj.ETag, r.obj.Size)}
	}
	return nil
}

// runStream is the stream goroutine. A panic ends the stream as a failed GET does: the block being filled fails,
// a pin on a cached block is dropped, and the first read of a block from there on gets the panic's error.
func (r *Reader) runStream(ctx context.Context, st *stream) {
	defer r.wg.Done()
	var at int64
	err := r.c.panics.Call(r.c.log, "cache: prefetch stream", func() error {
		var err error
		at, err = r.streamLoop(ctx, st)
		return err
	})
	if pe := (*safego.PanicError)(nil); errors.As(err, &pe) {
		at = st.at
		if b := st.held; b != nil {
			st.held = nil
			if st.heldCreated {
				r.failStream(st, b, at, err)
			} else {
				r.c.unpin(b)
			}
		}
	}
	r.c.logFailure("cache: sequential read failed", slog.String("block", blockKey{r.obj.Key, r.obj.ETag, at}.String()), err)
	r.mu.Lock()
	if !st.done { // else failStream recorded the failure already
		st.done = true
		st.err = err
		st.failedAt = at
	}
	close(st.progress)
	r.mu.Unlock()
}

// streamLoop claims blocks from st.start on while they are inside the window, filling the missing ones from
// one open GET. It returns the block it stopped at and why.
func (r *Reader) streamLoop(ctx context.Context, st *stream) (int64, error) {
	var body io.ReadCloser // the open GET, positioned at block i's first byte; see getFill
	defer closeBody(&body)
	bs := r.c.bs
	for i := st.start; i < r.nblocks; i++ {
		st.at = i
		r.mu.Lock()
		for i*bs >= st.limit {
			r.mu.Unlock()
			select {
			case <-st.wake:
			case <-ctx.Done():
				return i, ctx.Err()
			}
			r.mu.Lock()
		}
		r.mu.Unlock()

		k := blockKey{r.obj.Key, r.obj.ETag, i}
		// acquire pins a cached block and the unpin makes it the most recently used: the reader needs it soon.
		b, created, err := r.c.acquire(ctx, k, r.c.blockLen(r.obj.Size, i))
		if err != nil {
			return i, err
		}
		st.held, st.heldCreated = b, created
		r.advance(st, i+1)
		if !created {
			// Cached already: skip it without downloading it again.
			st.held = nil
			r.c.unpin(b)
			closeBody(&body)
			continue
		}
		r.c.mu.Lock()
		r.c.stats.Prefetched++
		r.c.mu.Unlock()
		if r.c.diskRead(b) {
			st.held = nil
			r.c.complete(b, true)
			closeBody(&body)
			continue
		}
		if err := r.getFill(ctx, b, &body, true); err != nil {
			st.held = nil
			r.failStream(st, b, i, err)
			return i, err
		}
		st.held = nil
		r.c.complete(b, false)
	}
	return r.nblocks, nil
}

// failStream records the stream's failure before failing its block, so that a reader that finds the block gone
// also finds the error (see streamStatus).
func (r *Reader) failStream(st *stream, b *block, i int64, err error) {
	r.mu.Lock()
	st.err = err
	st.failedAt = i
	st.done = true
	r.mu.Unlock()
	r.c.fail(b, err)
}

// advance records that the stream claimed every block below next and wakes readers waiting for it.
func (r *Reader) advance(st *stream, next int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st.next = next
	close(st.progress)
	st.progress = make(chan struct{})
}

// Close stops the Reader's stream and fetches and waits for them to end. Blocks already cached stay cached.
// Reads after Close fail.
func (r *Reader) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.c.readers.Add(-1)
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
	return nil
}
