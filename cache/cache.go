package cache

// Lock order: Reader.mu, then Cache.mu. Cache.mu is never held during network or disk reads, nor while waiting;
// the only I/O under it is removing disk-tier files, which keeps the disk bound exact.

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"sync"
	"sync/atomic"

	"github.com/s3ftp/s3ftp/internal/safego"
	"github.com/s3ftp/s3ftp/s3client"
)

// Getter is what the cache needs from S3. s3client.Client satisfies it.
type Getter interface {
	// GetObject streams length bytes of key starting at off (length < 0: to the end). A non-empty ifMatch makes
	// the request conditional on the object's ETag, failing with kind s3client.ErrPrecondition when it changed.
	GetObject(ctx context.Context, key string, off, length int64, ifMatch string) (io.ReadCloser, s3client.ObjectInfo, error)
}

// DefaultBlockSize is the block size used when Config.BlockSize is zero.
const DefaultBlockSize = 1 << 20

// Config configures a Cache.
type Config struct {
	// MaxBytes is the hard memory budget: cached blocks, blocks being filled (prefetch included) and free
	// buffers kept for reuse, together. It must hold at least two blocks.
	MaxBytes int64
	// BlockSize is the unit of caching and fetching (default DefaultBlockSize).
	BlockSize int64
	// DiskDir, when set, enables a disk tier in that directory, hard-bounded by DiskMaxBytes and evicted LRU.
	// The cache owns the *.blk and *.tmp files in it and deletes leftovers from an earlier run in New.
	DiskDir string
	// DiskMaxBytes bounds the bytes of block files in DiskDir; required when DiskDir is set.
	DiskMaxBytes int64
	// Log receives one line per failed fetch or disk write (default slog.Default()).
	Log *slog.Logger
	// Panics counts the panics recovered in the cache's goroutines (s3mount passes the mount's counter); nil
	// counts them nowhere. They are logged and fail their blocks either way.
	Panics *safego.Panics
}

// Stats is a snapshot of the cache's counters.
type Stats struct {
	Hits       int64 // block lookups by ReadAt served from memory (cached or being filled)
	DiskHits   int64 // blocks loaded from the disk tier instead of S3
	Misses     int64 // blocks ReadAt had to fetch itself with a ranged GET
	Prefetched int64 // blocks filled by a reader's sequential stream
	MemBytes   int64 // bytes of block buffers held: cached, being filled, or free for reuse
	PeakBytes  int64 // largest MemBytes ever reached; never above Config.MaxBytes
	Blocks     int64 // blocks in the memory index (ready or being filled)
	Evictions  int64 // blocks evicted from memory to make room
	DiskBytes  int64 // bytes of block files in the disk tier, including files being written
	// DiskEvictions counts block files removed from the disk tier to make room.
	DiskEvictions int64
	// Resumes counts GETs issued to resume a body that failed mid-block, at the first byte not received.
	Resumes int64
}

// Cache is a bounded block cache shared by every Reader it creates. It is safe for concurrent use.
type Cache struct {
	bs     int64
	max    int64
	log    *slog.Logger
	panics *safego.Panics
	disk   *diskTier // nil without Config.DiskDir

	// readers counts the open Readers; their prefetch windows share half of max (Reader.windowCapLocked).
	readers atomic.Int64

	mu sync.Mutex
	// guarded by mu:
	blocks    map[blockKey]*block
	byKey     map[string]map[blockKey]*block
	lru       *list.List    // of *block: ready, cached and unpinned blocks only; front is the most recently used
	free      [][]byte      // full-size buffers kept for reuse; counted in used
	used      int64         // bytes of every buffer the cache holds
	memWait   int           // goroutines waiting in acquire for memory
	memFreed  chan struct{} // closed and replaced when memory may have become available to a waiter
	stats     Stats
	diskState diskIndex // the disk tier's index (unused when disk is nil)
}

// blockKey names one block of one object version.
type blockKey struct {
	key  string
	etag string
	idx  int64
}

func (k blockKey) String() string { return fmt.Sprintf("%s@%s#%d", k.key, k.etag, k.idx) }

type blockState uint8

const (
	filling blockState = iota
	ready
	failed
)

// block is one cached block. Its buffer stays allocated while it is pinned or cached; bytes below n never change
// while pinned, so pinned holders copy them without the lock.
type block struct {
	k blockKey
	// guarded by Cache.mu:
	buf      []byte // len is the block's length; cap is what the budget counts
	n        int    // bytes of buf filled so far; only grows
	state    blockState
	err      error // set when failed
	pins     int
	cached   bool          // present in Cache.blocks
	elem     *list.Element // position in Cache.lru when there
	progress chan struct{} // closed (and, while filling, replaced) whenever n or state changes
}

// New validates cfg and returns an empty cache.
func New(cfg Config) (*Cache, error) {
	if cfg.BlockSize == 0 {
		cfg.BlockSize = DefaultBlockSize
	}
	if cfg.BlockSize < 0 {
		return nil, fmt.Errorf("cache: negative BlockSize %d", cfg.BlockSize)
	}
	if cfg.MaxBytes < 2*cfg.BlockSize {
		return nil, fmt.Errorf("cache: MaxBytes %d must hold at least two blocks of %d bytes", cfg.MaxBytes, cfg.BlockSize)
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	c := &Cache{
		bs:       cfg.BlockSize,
		max:      cfg.MaxBytes,
		log:      cfg.Log,
		panics:   cfg.Panics,
		blocks:   map[blockKey]*block{},
		byKey:    map[string]map[blockKey]*block{},
		lru:      list.New(),
		memFreed: make(chan struct{}),
	}
	if cfg.DiskDir != "" {
		d, err := newDiskTier(cfg.DiskDir, cfg.DiskMaxBytes)
		if err != nil {
			return nil, err
		}
		c.disk = d
		c.diskState = newDiskIndex()
	} else if cfg.DiskMaxBytes != 0 {
		return nil, errors.New("cache: DiskMaxBytes set without DiskDir")
	}
	return c, nil
}

// Stats returns a snapshot of the counters.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.MemBytes = c.used
	s.Blocks = int64(len(c.blocks))
	s.DiskBytes = c.diskState.used
	return s
}

// Invalidate drops every block of key, whatever its ETag, from memory and disk. Blocks being filled or read
// finish for their current holders and are then freed; later lookups miss.
func (c *Cache) Invalidate(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range c.byKey[key] {
		c.removeLocked(b)
		if b.pins == 0 {
			c.releaseLocked(b)
		}
	}
	if c.disk != nil {
		c.diskInvalidateLocked(key)
	}
}

// Close waits for pending disk-tier writes and deletes the tier's files. Readers must be closed first; the
// memory cache stays usable.
func (c *Cache) Close() error {
	if c.disk == nil {
		return nil
	}
	c.disk.wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.diskClearLocked()
}

// blockLen is the length of block idx of an object of size bytes.
func (c *Cache) blockLen(size, idx int64) int64 {
	return min(c.bs, size-idx*c.bs)
}

// lookup pins and returns the block k if it is cached (ready or being filled), counting a hit; nil otherwise.
func (c *Cache) lookup(k blockKey) *block {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.blocks[k]
	if b == nil {
		return nil
	}
	c.stats.Hits++
	c.pinLocked(b)
	return b
}

// logFailure logs why a fill failed: nothing for a cancellation (a Close or a stream restart), a warning when
// the object changed (the reader's version is gone; its caller sees ErrPrecondition), an error otherwise.
func (c *Cache) logFailure(msg string, block slog.Attr, err error) {
	switch {
	case err == nil || isCanceled(err):
	case errors.Is(err, s3client.ErrPrecondition):
		c.log.Warn(msg+": object changed since open", block, slog.Any("err", err))
	default:
		c.log.Error(msg, block, slog.Any("err", err))
	}
}

// acquire returns block k pinned once. When k is not cached it creates it (state filling) with a buffer of
// length n taken from the budget, waiting for memory if every byte is pinned, and reports created: the caller
// then owns the fill and must end it with complete or fail, which drop this pin. ctx only bounds the wait.
func (c *Cache) acquire(ctx context.Context, k blockKey, n int64) (b *block, created bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		if b := c.blocks[k]; b != nil {
			c.pinLocked(b)
			return b, false, nil
		}
		if buf, ok := c.takeBufferLocked(n); ok {
			b := &block{k: k, buf: buf, pins: 1, cached: true, progress: make(chan struct{})}
			c.blocks[k] = b
			m := c.byKey[k.key]
			if m == nil {
				m = map[blockKey]*block{}
				c.byKey[k.key] = m
			}
			m[k] = b
			return b, true, nil
		}
		ch := c.memFreed
		c.memWait++
		c.mu.Unlock()
		select {
		case <-ch:
			err = nil
		case <-ctx.Done():
			err = ctx.Err()
		}
		c.mu.Lock()
		c.memWait--
		if err != nil {
			return nil, false, err
		}
	}
}

// takeBufferLocked returns a buffer of length n without exceeding the budget: a free full-size buffer, a new
// allocation, or the buffer of the least recently used block, which it evicts. It fails only when every byte
// of the budget is pinned.
func (c *Cache) takeBufferLocked(n int64) ([]byte, bool) {
	full := n == c.bs
	for {
		if full && len(c.free) > 0 {
			buf := c.free[len(c.free)-1]
			c.free = c.free[:len(c.free)-1]
			return buf[:n], true
		}
		if c.used+n <= c.max {
			c.used += n
			c.stats.PeakBytes = max(c.stats.PeakBytes, c.used)
			return make([]byte, n), true
		}
		if len(c.free) > 0 {
			c.free = c.free[:len(c.free)-1]
			c.used -= c.bs
			continue
		}
		e := c.lru.Back()
		if e == nil {
			return nil, false
		}
		v := e.Value.(*block)
		c.removeLocked(v)
		c.stats.Evictions++
		buf := v.buf
		v.buf = nil
		if full && int64(cap(buf)) == c.bs {
			return buf[:n], true
		}
		c.used -= int64(cap(buf))
	}
}

// pinLocked keeps b's buffer alive and out of the LRU until unpinLocked.
func (c *Cache) pinLocked(b *block) {
	if b.elem != nil {
		c.lru.Remove(b.elem)
		b.elem = nil
	}
	b.pins++
}

func (c *Cache) unpin(b *block) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.unpinLocked(b)
}

// unpinLocked drops one pin. The last pin makes a ready cached block the most recently used one, and frees the
// buffer of a block no longer cached.
func (c *Cache) unpinLocked(b *block) {
	b.pins--
	if b.pins > 0 {
		return
	}
	switch {
	case !b.cached:
		c.releaseLocked(b)
	case b.state == ready:
		b.elem = c.lru.PushFront(b)
		c.signalMemLocked()
	}
}

// removeLocked takes b out of the index and the LRU; its buffer stays with b until released.
func (c *Cache) removeLocked(b *block) {
	if !b.cached {
		return
	}
	b.cached = false
	delete(c.blocks, b.k)
	if m := c.byKey[b.k.key]; m != nil {
		delete(m, b.k)
		if len(m) == 0 {
			delete(c.byKey, b.k.key)
		}
	}
	if b.elem != nil {
		c.lru.Remove(b.elem)
		b.elem = nil
	}
}

// releaseLocked returns the buffer of an unpinned, uncached block to the free list or the budget.
func (c *Cache) releaseLocked(b *block) {
	if b.buf == nil {
		return
	}
	if int64(cap(b.buf)) == c.bs {
		c.free = append(c.free, b.buf[:0])
	} else {
		c.used -= int64(cap(b.buf))
	}
	b.buf = nil
	c.signalMemLocked()
}

func (c *Cache) signalMemLocked() {
	if c.memWait > 0 {
		close(c.memFreed)
		c.memFreed = make(chan struct{})
	}
}

// publish makes the first n bytes of a block being filled visible to readers.
func (c *Cache) publish(b *block, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b.n = n
	close(b.progress)
	b.progress = make(chan struct{})
}

// complete marks a fully filled block ready and drops the filler's pin. Unless the block came from disk, it is
// also handed to the disk tier.
func (c *Cache) complete(b *block, fromDisk bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b.n = len(b.buf)
	b.state = ready
	close(b.progress)
	if c.disk != nil && !fromDisk && b.cached {
		c.diskScheduleLocked(b)
	}
	c.unpinLocked(b)
}

// fail marks a block failed with err, removes it from the index so that later lookups miss, wakes its waiters
// (they get err) and drops the filler's pin.
func (c *Cache) fail(b *block, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b.state = failed
	b.err = err
	close(b.progress)
	c.removeLocked(b)
	c.unpinLocked(b)
}

// waitFor waits until the pinned block b holds at least need bytes, or failed (its error), or ctx is done.
func (c *Cache) waitFor(ctx context.Context, b *block, need int) error {
	c.mu.Lock()
	for {
		if b.n >= need {
			c.mu.Unlock()
			return nil
		}
		if b.state == failed {
			err := b.err
			c.mu.Unlock()
			return err
		}
		ch := b.progress
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		c.mu.Lock()
	}
}

// fill reads the block's bytes from body into the buffer from byte from on, publishing progress every
// publishEvery bytes, and returns how many of the block's bytes it holds: len(b.buf), or fewer with the error
// that stopped it. A body that ends early is an error (io.ErrUnexpectedEOF), never a short block.
func (c *Cache) fill(b *block, body io.Reader, from int) (int, error) {
	buf := b.buf // stable: the filler's pin keeps it
	n, last := from, from
	for n < len(buf) {
		m, err := body.Read(buf[n:])
		n += m
		if n-last >= publishEvery && n < len(buf) {
			c.publish(b, n)
			last = n
		}
		if err != nil && n < len(buf) {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return n, fmt.Errorf("cache: block %v: after %d of %d bytes: %w", b.k, n, len(buf), err)
		}
	}
	return n, nil
}

// publishEvery is how many new bytes of a block being filled make readers wake up: small enough for a short
// time to first byte, large enough to keep lock traffic low.
const publishEvery = 64 << 10

// isCanceled reports whether err means a context ended (the filler's or a waiter's), not that S3 failed. An
// S3 error's kind decides, not its chain: net/http's "timeout awaiting response headers" (a silent server)
// matches context.DeadlineExceeded, yet it is an S3 failure (kind ErrUnavailable) that must reach the reader.
// Taken for a cancellation, it would be retried silently, maxCanceledRetries GETs of a full retry chain each.
// context.Canceled in the chain is a cancellation whatever the kind: a body read ended by the reader's own
// context (Close, a stream restart) may be classified as a transport failure.
func isCanceled(err error) bool {
	return s3client.KindOf(err) == s3client.ErrCanceled || errors.Is(err, context.Canceled)
}

// errClosed is returned by a closed Reader.
var errClosed = fmt.Errorf("cache: reader closed: %w", os.ErrClosed)
