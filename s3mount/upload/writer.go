package upload

// Lock order: Writer.writeMu, then Writer.mu, then Budget.mu. Part upload goroutines take only Writer.mu and
// Budget.mu, never writeMu, so a writer blocked under writeMu (on the budget or an upload slot) cannot block
// the uploads it waits for.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/s3ftp/s3ftp/internal/safego"
	"github.com/s3ftp/s3ftp/s3client"
)

// Client is the subset of s3client.Client the writer uses; s3client.Client satisfies it. GetObject and
// UploadPartCopy serve NewFromExisting only.
type Client interface {
	GetObject(ctx context.Context, key string, off, length int64, ifMatch string) (io.ReadCloser, s3client.ObjectInfo, error)
	UploadPartCopy(ctx context.Context, key, uploadID string, number int32, src, srcETag string, off, length int64) (string, error)
	PutObject(ctx context.Context, key string, body []byte, opts s3client.PutOptions) (string, error)
	CopyObject(ctx context.Context, src, dst string, opts s3client.PutOptions) (string, error)
	CreateMultipartUpload(ctx context.Context, key string, opts s3client.PutOptions) (string, error)
	UploadPart(ctx context.Context, key, uploadID string, number int32, body []byte) (string, error)
	CompleteMultipartUpload(ctx context.Context, key, uploadID string, parts []s3client.Part, ifNoneMatch bool) (string, error)
	AbortMultipartUpload(ctx context.Context, key, uploadID string) error
}

// Errors returned by a Writer besides the Client's own.
var (
	// ErrNotSequential: a write too far before or after the end of the data written so far. Only bytes of the
	// part still being filled can be rewritten, and only MaxReorder bytes may arrive ahead of a gap.
	ErrNotSequential = errors.New("upload: write is not sequential")
	// ErrClosed: WriteAt after Close or Abort started.
	ErrClosed = errors.New("upload: writer is closed")
	// ErrAborted is the result of Close after Abort.
	ErrAborted = errors.New("upload: aborted")
	// ErrObjectTooLarge: the object outgrew 10,000 parts of the part size schedule (see MaxObjectSize).
	ErrObjectTooLarge = errors.New("upload: object exceeds the largest size the part schedule allows")

	errStopped = errors.New("upload: writer stopped")
)

// MaxReorder is how many bytes a writer accepts ahead of a gap (writes beyond the end of the contiguous data,
// which kernel writeback may issue out of order). They are held in a per-writer side buffer outside the Budget
// until the gap is filled; Close fills a remaining gap with zeros, as a write past the end of a file does.
const MaxReorder = 1 << 20

// Config configures a Writer.
type Config struct {
	PartSize    int64 // size of the first parts (>= 5 MiB); see PartSize for the schedule
	Concurrency int   // parts of one writer in flight at once (< 1 means 1)
	// Budget is shared by all writers of a mount. nil gives the writer a private budget of
	// (Concurrency+1) × PartSize (at least 10 MiB).
	Budget *Budget
	Log    *slog.Logger // nil means slog.Default()
	// Aborts runs the writer's AbortMultipartUpload in the background, retried (see Aborts); a mount passes
	// its own, so that its unmount waits for its aborts only. nil gives the writer a private one.
	Aborts *Aborts
	// Panics counts the panics recovered in the writer's goroutines and in its aborts (s3mount passes the
	// mount's counter); nil counts them nowhere. They are logged and fail the writer either way.
	Panics *safego.Panics
	// Checksums computes SHA-256, MD5 and CRC32 of the object while its bytes stream through and stores them as
	// its tags (TagSHA256...; see Checksums). An object whose kept prefix is copied server-side (5 MiB and more
	// of an existing object) passes only partly through the writer: it gets none. The parts are hashed on a
	// goroutine of their own while the next ones fill.
	Checksums bool
	// MD5 adds MD5 to the checksums.
	MD5 bool
}

// Writer streams one object to S3 while it is being written: parts upload concurrently as they fill, under the
// shared memory Budget. See the package documentation for the guarantees.
type Writer struct {
	c      Client
	key    string
	base   int64 // first part size
	limit  int64 // largest part size
	budget *Budget
	aborts *Aborts
	log    *slog.Logger
	panics *safego.Panics

	// ctx carries every S3 request of the writer. It belongs to the writer, not to any caller, and is cancelled
	// by Abort or by a failed part so that the other parts stop.
	ctx    context.Context
	cancel context.CancelFunc
	slots  chan struct{}  // one token per part upload in flight
	wg     sync.WaitGroup // part uploads in flight
	end    atomic.Int64   // largest offset+length accepted, for Size

	writeMu  sync.Mutex // serialises WriteAt and finishing; guards the fields below
	contig   int64      // bytes written without a gap from offset 0
	buf      []byte     // the part being filled (from budget), nil when none
	fill     int        // bytes of buf in use
	start    int64      // object offset of buf[0]
	next     int32      // number of the part in buf, or of the next one to fill
	stash    []pendingWrite
	stashLen int64
	closing  bool
	// The kept prefix of an existing object (NewFromExisting): src, the ranges copied server-side as parts
	// 1..len(copies), how many of them were started, and whether a prefix shorter than a part was fetched.
	src        s3client.ObjectInfo
	keep       int64
	copies     []ByteRange
	copied     int
	prefixDone bool
	// sums hashes the bytes in object order as parts are handed off; nil without Config.Checksums, or when
	// bytes bypass the writer (a prefix copied server-side).
	sums    *hashes
	hasher  *hasher   // started with the first part handed off
	summed  Checksums // the result, once complete stored the object
	hasSums bool

	mu          sync.Mutex // guards the fields below
	err         error      // sticky: the first failure
	uploadID    string
	parts       []s3client.Part
	opts        s3client.PutOptions
	optsChanged bool // SetOptions after CreateMultipartUpload: Close re-copies the object with opts

	finishOnce sync.Once
	done       chan struct{} // closed when finish has its result
	info       s3client.ObjectInfo
	result     error
	abortOnce  sync.Once
}

type pendingWrite struct {
	off  int64
	data []byte
}

// New returns a writer of a new version of key (created from scratch: an empty object when nothing is
// written). Nothing is sent to S3 until the first part fills or Close is called.
func New(c Client, key string, opts s3client.PutOptions, cfg Config) *Writer {
	base := clamp(cfg.PartSize, s3client.MinPartSize, s3client.MaxPartSize)
	conc := max(cfg.Concurrency, 1)
	b := cfg.Budget
	if b == nil {
		b = NewBudget(max(int64(conc+1)*base, 2*s3client.MinPartSize))
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	aborts := cfg.Aborts
	if aborts == nil {
		aborts = &Aborts{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Writer{
		aborts: aborts,
		c:      c,
		key:    key,
		base:   base,
		limit:  max(b.Max()/2, s3client.MinPartSize),
		budget: b,
		log:    log,
		panics: cfg.Panics,
		ctx:    ctx,
		cancel: cancel,
		slots:  make(chan struct{}, conc),
		next:   1,
		opts:   cloneOptions(opts),
		done:   make(chan struct{}),
		sums:   newHashesIf(cfg.Checksums, cfg.MD5),
	}
}

func newHashesIf(on, withMD5 bool) *hashes {
	if !on {
		return nil
	}
	return newHashes(withMD5)
}

// NewFromExisting returns a writer of a new version of key whose first keep bytes are those of the existing
// object src (usually key itself): appending is keep = src.Size, FTP's REST n + STOR is keep = n. keep is
// clamped to [0, src.Size]. WriteAt continues at off == keep.
//
// The kept bytes are not downloaded when keep is at least 5 MiB: they become the first parts of the multipart
// upload through UploadPartCopy (ranges of at most 5 GiB), conditional on src.ETag. A shorter prefix is fetched
// with one ranged GET, also conditional on src.ETag, into the first part buffer. If src changed in the
// meantime the writer fails with an error of kind s3client.ErrPrecondition and nothing is stored. Nothing is
// requested before the first WriteAt or Close.
func NewFromExisting(c Client, key string, src s3client.ObjectInfo, keep int64, opts s3client.PutOptions, cfg Config) *Writer {
	w := New(c, key, opts, cfg)
	if src.Key == "" {
		src.Key = key
	}
	w.src = src
	w.keep = clamp(keep, 0, src.Size)
	w.contig = w.keep
	w.end.Store(w.keep)
	if w.keep >= s3client.MinPartSize {
		w.copies = CopyPlan(w.keep)
		w.next = int32(len(w.copies)) + 1
		w.sums = nil // the kept bytes never pass through the writer
	}
	return w
}

// prepareLocked sets up the kept prefix of NewFromExisting: it starts the UploadPartCopy parts, or fetches a
// short prefix into the first part buffer. It resumes where a cancelled call stopped.
func (w *Writer) prepareLocked(ctx context.Context) error {
	for w.copied < len(w.copies) {
		id, err := w.ensureUploadLocked()
		if err != nil {
			return err
		}
		if err := w.startPartLocked(ctx); err != nil {
			return err
		}
		r := w.copies[w.copied]
		w.copied++
		go w.copyPart(id, int32(w.copied), r)
	}
	if w.prefixDone || w.copies != nil || w.keep == 0 {
		return nil
	}
	if w.buf == nil {
		buf, err := w.budget.acquire(ctx, w.ctx.Done(), PartSize(1, w.base, w.limit))
		if err != nil {
			if errors.Is(err, errStopped) {
				return w.stickyErr()
			}
			return err
		}
		// Held by w.buf (empty) while the prefix is fetched, so that whoever ends the writer releases it even
		// if the fetch panics.
		w.buf, w.fill, w.start = buf, 0, 0
	}
	body, _, err := w.c.GetObject(w.ctx, w.src.Key, 0, w.keep, w.src.ETag)
	if err == nil {
		_, err = io.ReadFull(body, w.buf[:w.keep])
		body.Close()
	}
	if err != nil {
		w.budget.release(w.buf)
		w.buf = nil
		w.fail(err, "GetObject", 0)
		return w.stickyErr()
	}
	w.fill = int(w.keep)
	w.prefixDone = true
	return nil
}

// copyPart runs one UploadPartCopy of the kept prefix. A failure or a panic fails the writer.
func (w *Writer) copyPart(id string, number int32, r ByteRange) {
	defer w.wg.Done()
	defer func() { <-w.slots }()
	err := w.panics.Call(w.log, "upload: UploadPartCopy", func() error {
		etag, err := w.c.UploadPartCopy(w.ctx, w.key, id, number, w.src.Key, w.src.ETag, r.Off, r.Len)
		if err == nil {
			w.addPart(number, etag)
		}
		return err
	})
	if err != nil {
		w.fail(err, "UploadPartCopy", number)
	}
}

// addPart records a part S3 stored.
func (w *Writer) addPart(number int32, etag string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.parts = append(w.parts, s3client.Part{Number: number, ETag: etag})
}

// Size returns the size the object has so far: the largest offset+length of any accepted write.
func (w *Writer) Size() int64 { return w.end.Load() }

// SetOptions replaces the options the object is stored with (e.g. the mtime metadata set by utimens while
// writing). They apply at Close; if the multipart upload was already created with different options, Close
// copies the completed object onto itself with the new ones (objects up to 5 GiB; larger ones keep the options
// they were created with, and a line is logged).
func (w *Writer) SetOptions(opts s3client.PutOptions) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.uploadID != "" && !sameOptions(w.opts, opts) {
		w.optsChanged = true
	}
	w.opts = cloneOptions(opts)
}

// WriteAt writes p at off. Sequential writes (off == Size()) are the normal case. Also accepted: rewrites of
// bytes still in the part being filled, writes up to MaxReorder bytes ahead of a gap (kernel writeback may
// reorder), and writes past the end of everything written, whose gap becomes zeros (Extend); any other offset
// returns ErrNotSequential. WriteAt blocks while the budget is full (backpressure,
// never ENOSPC) or all upload slots are busy; cancelling ctx stops the wait and returns ctx's error with
// nothing lost (the bytes counted in n were accepted). After a part failed every WriteAt returns that error.
func (w *Writer) WriteAt(ctx context.Context, p []byte, off int64) (int, error) {
	w.writeMu.Lock()
	defer w.writeMu.Unlock()
	if err := w.stickyErr(); err != nil {
		return 0, err
	}
	if w.closing {
		return 0, ErrClosed
	}
	if off < 0 {
		return 0, fmt.Errorf("%w: negative offset %d", ErrNotSequential, off)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if err := w.prepareLocked(ctx); err != nil {
		return 0, err
	}
	if off > w.contig {
		if off+int64(len(p))-w.contig > MaxReorder || w.stashLen+int64(len(p)) > MaxReorder {
			if off < w.Size() {
				return 0, fmt.Errorf("%w: offset %d, %d bytes written so far", ErrNotSequential, off, w.contig)
			}
			// A write past the end of everything written: the file grows, the gap reads as zeros.
			if err := w.extendLocked(ctx, off); err != nil {
				return 0, err
			}
			return w.writeLocked(ctx, p, off)
		}
		w.stash = append(w.stash, pendingWrite{off: off, data: slices.Clone(p)})
		w.stashLen += int64(len(p))
		w.noteEnd(off + int64(len(p)))
		return len(p), nil
	}
	n, err := w.writeLocked(ctx, p, off)
	if err != nil {
		return n, err
	}
	// p is accepted. Stashed writes that cannot be applied now wait for the next WriteAt or Close, unless
	// they can never be applied (they fell behind the part being filled): that loses data and fails the writer.
	if err := w.drainStashLocked(ctx); err != nil && errors.Is(err, ErrNotSequential) {
		w.fail(err, "WriteAt", 0)
		return n, err
	}
	return n, nil
}

// writeLocked writes p at off <= contig: the bytes before contig overwrite the current part buffer, the rest
// append, submitting full parts.
func (w *Writer) writeLocked(ctx context.Context, p []byte, off int64) (int, error) {
	written := 0
	if off < w.contig {
		if w.buf == nil || off < w.start {
			return 0, fmt.Errorf("%w: offset %d was already uploaded (%d bytes written)", ErrNotSequential, off, w.contig)
		}
		n := copy(w.buf[off-w.start:w.fill], p)
		p = p[n:]
		written += n
	}
	for len(p) > 0 {
		if w.buf != nil && w.fill == len(w.buf) {
			if err := w.submitLocked(ctx); err != nil {
				return written, err
			}
		}
		if w.buf == nil {
			if err := w.acquireLocked(ctx); err != nil {
				return written, err
			}
		}
		n := copy(w.buf[w.fill:], p)
		w.fill += n
		w.contig += int64(n)
		p = p[n:]
		written += n
	}
	w.noteEnd(w.contig)
	return written, nil
}

// acquireLocked gets the buffer of part w.next from the budget.
func (w *Writer) acquireLocked(ctx context.Context) error {
	if w.next > s3client.MaxParts {
		err := fmt.Errorf("%w (%d bytes with parts from %d to %d bytes)", ErrObjectTooLarge,
			MaxObjectSize(w.base, w.limit), w.base, w.limit)
		w.fail(err, "write", 0)
		return err
	}
	buf, err := w.budget.acquire(ctx, w.ctx.Done(), PartSize(int(w.next), w.base, w.limit))
	if err != nil {
		if errors.Is(err, errStopped) {
			return w.stickyErr()
		}
		return err
	}
	w.buf, w.fill, w.start = buf, 0, w.contig
	return nil
}

// submitLocked starts the upload of the part in w.buf (full, or the last one), creating the multipart upload
// first if needed. It waits for a free upload slot; on ctx's cancellation the part stays in w.buf.
func (w *Writer) submitLocked(ctx context.Context) error {
	id, err := w.ensureUploadLocked()
	if err != nil {
		return err
	}
	if err := w.startPartLocked(ctx); err != nil {
		return err
	}
	number, buf, body := w.next, w.buf, w.buf[:w.fill]
	var hashed chan struct{}
	if w.sums != nil {
		// Final bytes: parts leave in object order, and a part's bytes cannot change once handed off.
		if w.hasher == nil {
			w.hasher = startHasher(w.sums, cap(w.slots)+1)
		}
		hashed = make(chan struct{})
		w.hasher.jobs <- hashJob{body: body, done: hashed}
	}
	w.next++
	w.buf, w.fill = nil, 0
	go w.uploadPart(id, number, buf, body, hashed)
	return nil
}

// stopHasherLocked ends the hasher once it hashed every part handed off; called by finish.
func (w *Writer) stopHasherLocked() {
	if w.hasher != nil {
		close(w.hasher.jobs)
		<-w.hasher.finished
		w.hasher = nil
	}
}

// ensureUploadLocked creates the multipart upload unless it exists and returns its ID.
func (w *Writer) ensureUploadLocked() (string, error) {
	w.mu.Lock()
	id, opts := w.uploadID, w.opts
	w.mu.Unlock()
	if id != "" {
		return id, nil
	}
	id, err := w.c.CreateMultipartUpload(w.ctx, w.key, opts)
	if err != nil {
		w.fail(err, "CreateMultipartUpload", 0)
		return "", w.stickyErr()
	}
	w.mu.Lock()
	w.uploadID = id
	w.mu.Unlock()
	return id, nil
}

// startPartLocked waits for an upload slot and registers a part goroutine with wg; the caller starts it.
func (w *Writer) startPartLocked(ctx context.Context) error {
	select {
	case w.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-w.ctx.Done():
		return w.stickyErr()
	}
	w.mu.Lock()
	if w.err != nil {
		// No wg.Add after a failure: the abort goroutine may be waiting on wg already.
		err := w.err
		w.mu.Unlock()
		<-w.slots
		return err
	}
	w.wg.Add(1)
	w.mu.Unlock()
	return nil
}

// uploadPart runs one part upload; it owns buf until it returns it to the budget, which it does whether the
// upload succeeds, fails or panics. A failure or a panic fails the writer.
func (w *Writer) uploadPart(id string, number int32, buf, body []byte, hashed <-chan struct{}) {
	defer w.wg.Done()
	// The failure is recorded before the slot is given back, so a writer waiting for that slot sees it.
	defer func() { <-w.slots }()
	defer w.budget.release(buf)
	if hashed != nil {
		defer func() { <-hashed }() // the hasher reads buf until then
	}
	err := w.panics.Call(w.log, "upload: UploadPart", func() error {
		etag, err := w.c.UploadPart(w.ctx, w.key, id, number, body)
		if err == nil {
			w.addPart(number, etag)
		}
		return err
	})
	if err != nil {
		w.fail(err, "UploadPart", number)
	}
}

// drainStashLocked applies the stashed writes that the contiguous data has reached, oldest first.
func (w *Writer) drainStashLocked(ctx context.Context) error {
	for {
		i := slices.IndexFunc(w.stash, func(pw pendingWrite) bool { return pw.off <= w.contig })
		if i < 0 {
			return nil
		}
		pw := w.stash[i]
		w.stash = slices.Delete(w.stash, i, i+1)
		w.stashLen -= int64(len(pw.data))
		n, err := w.writeLocked(ctx, pw.data, pw.off)
		if err != nil {
			if rest := pw.data[n:]; len(rest) > 0 && !errors.Is(err, ErrNotSequential) {
				w.stash = slices.Insert(w.stash, 0, pendingWrite{off: pw.off + int64(n), data: rest})
				w.stashLen += int64(len(rest))
			}
			return err
		}
	}
}

var zeros [64 << 10]byte

// flushStashLocked applies all stashed writes, filling gaps before them with zeros.
func (w *Writer) flushStashLocked(ctx context.Context) error {
	for len(w.stash) > 0 {
		if err := w.drainStashLocked(ctx); err != nil {
			return err
		}
		if len(w.stash) == 0 {
			return nil
		}
		lowest := slices.MinFunc(w.stash, func(a, b pendingWrite) int { return cmpInt64(a.off, b.off) }).off
		for w.contig < lowest {
			n := min(int64(len(zeros)), lowest-w.contig)
			if _, err := w.writeLocked(ctx, zeros[:n], w.contig); err != nil {
				return err
			}
		}
	}
	return nil
}

// Extend grows the object to size bytes: the bytes between the data written so far and size are zeros, sent
// like any others (S3 has no holes), under the same budget and backpressure as WriteAt. A size at or below
// Size() changes nothing. Its errors are WriteAt's.
func (w *Writer) Extend(ctx context.Context, size int64) error {
	w.writeMu.Lock()
	defer w.writeMu.Unlock()
	if err := w.stickyErr(); err != nil {
		return err
	}
	if w.closing {
		return ErrClosed
	}
	if size <= w.Size() {
		return nil
	}
	if err := w.prepareLocked(ctx); err != nil {
		return err
	}
	return w.extendLocked(ctx, size)
}

// extendLocked applies the stashed writes (filling the gaps before them with zeros), then writes zeros up to
// size.
func (w *Writer) extendLocked(ctx context.Context, size int64) error {
	if err := w.flushStashLocked(ctx); err != nil {
		return err
	}
	for w.contig < size {
		n := min(int64(len(zeros)), size-w.contig)
		if _, err := w.writeLocked(ctx, zeros[:n], w.contig); err != nil {
			return err
		}
	}
	return nil
}

// Close completes the object and returns its info (key, size, ETag, options). An object smaller than the first
// part is stored with one PutObject; otherwise the last part is uploaded and CompleteMultipartUpload assembles
// the parts. Any failure aborts the multipart upload, so neither a partial object nor an unfinished upload is
// left behind, and is returned. Close is idempotent: every call returns the result of the one completion.
// Cancelling ctx only stops the wait (returning ctx's error); the completion goes on and a later Close returns
// its result. Close waits for a WriteAt in progress on the same writer.
func (w *Writer) Close(ctx context.Context) (s3client.ObjectInfo, error) {
	w.finishOnce.Do(func() { go w.finish() })
	select {
	case <-w.done:
		return w.info, w.result
	case <-ctx.Done():
		return s3client.ObjectInfo{}, ctx.Err()
	}
}

// Abort discards the upload: parts in flight are cancelled, the multipart upload is aborted, nothing is stored
// and Close returns ErrAborted. Abort returns once the parts in flight ended; AbortMultipartUpload then runs in
// the background, retried by Config.Aborts, so an S3 outage does not block the caller (wait with Aborts.Wait).
// After a Close that succeeded Abort does nothing: the object stays. Cancelling ctx only stops the wait.
func (w *Writer) Abort(ctx context.Context) error {
	select {
	case <-w.done:
		if w.result == nil {
			return nil
		}
	default:
	}
	w.mu.Lock()
	if w.err == nil {
		w.err = ErrAborted
	}
	w.mu.Unlock()
	w.cancel()
	w.finishOnce.Do(func() { go w.finish() })
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// finish runs once, in its own goroutine: it completes or discards the upload, then publishes the result and
// closes done. A panic while completing fails the writer like any other failure of the completion.
func (w *Writer) finish() {
	w.writeMu.Lock()
	defer w.writeMu.Unlock()
	defer close(w.done)
	w.closing = true

	var info s3client.ObjectInfo
	err := w.panics.Call(w.log, "upload: completing the object", func() error {
		var err error
		info, err = w.complete()
		return err
	})
	w.stopHasherLocked()
	if err != nil {
		info = s3client.ObjectInfo{}
		w.fail(err, "Close", 0) // no-op (and no second log line) when the failure is already recorded
		err = w.stickyErr()
		w.wg.Wait()
		w.abortUpload()
	}
	if w.buf != nil {
		w.budget.release(w.buf)
		w.buf, w.fill = nil, 0
	}
	w.cancel()
	w.info, w.result = info, err
}

// complete stores the object; called by finish with writeMu held.
func (w *Writer) complete() (s3client.ObjectInfo, error) {
	if err := w.stickyErr(); err != nil {
		return s3client.ObjectInfo{}, err
	}
	if err := w.prepareLocked(w.ctx); err != nil {
		return s3client.ObjectInfo{}, w.orSticky(err)
	}
	if err := w.flushStashLocked(w.ctx); err != nil {
		return s3client.ObjectInfo{}, w.orSticky(err)
	}
	w.mu.Lock()
	id := w.uploadID
	w.mu.Unlock()
	var etag string
	if id == "" {
		var body []byte
		if w.buf != nil {
			body = w.buf[:w.fill]
		}
		opts := w.options()
		if w.sums != nil {
			w.sums.write(body)
			w.summed, w.hasSums = w.sums.sums(), true
			opts = withTags(opts, w.summed)
		}
		var err error
		etag, err = w.c.PutObject(w.ctx, w.key, body, opts)
		if err != nil {
			w.fail(err, "PutObject", 0)
			return s3client.ObjectInfo{}, w.orSticky(err)
		}
	} else {
		if w.fill > 0 {
			if err := w.submitLocked(w.ctx); err != nil {
				return s3client.ObjectInfo{}, w.orSticky(err)
			}
		}
		w.wg.Wait()
		if err := w.stickyErr(); err != nil {
			return s3client.ObjectInfo{}, err
		}
		w.mu.Lock()
		parts := slices.Clone(w.parts)
		w.mu.Unlock()
		slices.SortFunc(parts, func(a, b s3client.Part) int { return int(a.Number - b.Number) })
		var err error
		etag, err = w.c.CompleteMultipartUpload(w.ctx, w.key, id, parts, w.options().IfNoneMatch)
		if err != nil {
			w.fail(err, "CompleteMultipartUpload", 0)
			return s3client.ObjectInfo{}, w.orSticky(err)
		}
		if etag, err = w.applyLateOptions(etag); err != nil {
			return s3client.ObjectInfo{}, err
		}
		w.tagLocked()
	}
	opts := w.options()
	return s3client.ObjectInfo{
		Key:          w.key,
		Size:         w.contig,
		ETag:         etag,
		LastModified: time.Now(),
		ContentType:  opts.ContentType,
		Metadata:     opts.Metadata,
	}, nil
}

// tagLocked stores the checksums of a completed multipart object as its tags. The object is complete: a
// failure is logged and the object kept, without checksums.
func (w *Writer) tagLocked() {
	if w.sums == nil {
		return
	}
	t, ok := w.c.(tagger)
	if !ok {
		w.log.Warn("upload: the S3 client cannot tag objects; checksums not stored", "key", w.key)
		return
	}
	w.stopHasherLocked()
	sums := w.sums.sums()
	if err := t.PutObjectTagging(w.ctx, w.key, withTags(w.options(), sums).Tags); err != nil {
		w.log.Warn("upload: object stored, but storing its checksums (tags) failed", "key", w.key, "err", err)
		return
	}
	w.summed, w.hasSums = sums, true
}

// Checksums returns the checksums of the object Close stored, and false when it computed none (Config
// without Checksums, a prefix copied server-side, tags that could not be stored, or a failed upload).
func (w *Writer) Checksums() (Checksums, bool) {
	select {
	case <-w.done:
	default:
		return Checksums{}, false
	}
	if w.result != nil {
		return Checksums{}, false
	}
	return w.summed, w.hasSums
}

// applyLateOptions re-copies a completed multipart object onto itself when SetOptions changed its options after
// CreateMultipartUpload. The object is complete at this point, so a failure is logged and the object kept.
func (w *Writer) applyLateOptions(etag string) (string, error) {
	w.mu.Lock()
	changed, opts := w.optsChanged, cloneOptions(w.opts)
	w.mu.Unlock()
	if !changed {
		return etag, nil
	}
	opts.ReplaceMetadata = true
	opts.IfNoneMatch = false
	cp := &Copier{C: w.c, Aborts: w.aborts, Log: w.log, Panics: w.panics}
	src := s3client.ObjectInfo{Key: w.key, Size: w.contig, ETag: etag}
	newETag, err := cp.Copy(w.ctx, src, w.key, opts)
	if err != nil {
		w.log.Error("upload: object stored, but updating its metadata failed", "key", w.key, "err", err)
		return etag, nil
	}
	return newETag, nil
}

// fail records the first failure (sticky), logs it, cancels the parts in flight and, once they ended, aborts the
// multipart upload.
func (w *Writer) fail(err error, op string, part int32) {
	w.mu.Lock()
	first := w.err == nil
	if first {
		w.err = err
	}
	w.mu.Unlock()
	if !first {
		return
	}
	w.log.Error("upload failed", "key", w.key, "op", op, "part", part, "err", err)
	w.cancel()
	w.panics.Go(w.log, "upload: handing the abort over", func() {
		w.wg.Wait()
		w.abortUpload()
	})
}

// abortUpload hands the abort of the multipart upload, if one was created, to w.aborts once; call it after
// every part upload ended, so that no part lands after the abort.
func (w *Writer) abortUpload() {
	w.abortOnce.Do(func() {
		w.mu.Lock()
		id := w.uploadID
		w.mu.Unlock()
		if id != "" {
			w.aborts.start(w.c, w.key, id, w.log, w.panics)
		}
	})
}

func (w *Writer) stickyErr() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// orSticky prefers the first failure over err, which may only be its consequence (a cancelled request).
func (w *Writer) orSticky(err error) error {
	if s := w.stickyErr(); s != nil {
		return s
	}
	return err
}

func (w *Writer) options() s3client.PutOptions {
	w.mu.Lock()
	defer w.mu.Unlock()
	return cloneOptions(w.opts)
}

func (w *Writer) noteEnd(end int64) {
	for {
		cur := w.end.Load()
		if end <= cur || w.end.CompareAndSwap(cur, end) {
			return
		}
	}
}

func cloneOptions(o s3client.PutOptions) s3client.PutOptions {
	o.Metadata = maps.Clone(o.Metadata)
	return o
}

func sameOptions(a, b s3client.PutOptions) bool {
	return a.ContentType == b.ContentType && maps.Equal(a.Metadata, b.Metadata)
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
