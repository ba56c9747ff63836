package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/s3ftp/s3ftp/s3mount/s3client"
)

// Getter is what the cache needs from S3. s3client.Client satisfies it.
type Getter interface {
	// GetObject streams length bytes of key starting at off (length < 0: to the end); a non-empty ifMatch makes
	// the request conditional on the object's ETag.
	GetObject(ctx context.Context, key string, off, length int64, ifMatch string) (io.ReadCloser, s3client.ObjectInfo, error)
}

// DefaultBlockSize is the block size used when Config.BlockSize is zero.
const DefaultBlockSize = 1 << 20

// Config configures a Cache.
type Config struct {
	// MaxBytes is the hard memory budget: cached blocks and prefetch buffers together. It must hold at least
	// two blocks.
	MaxBytes int64
	// BlockSize is the unit of caching and fetching (default DefaultBlockSize).
	BlockSize int64
	// DiskDir, when set, enables a disk tier in that directory, hard-bounded by DiskMaxBytes and evicted LRU.
	DiskDir string
	// DiskMaxBytes bounds the disk tier; required when DiskDir is set.
	DiskMaxBytes int64
	// Log receives one line per error (default slog.Default()).
	Log *slog.Logger
}

// Stats is a snapshot of the cache's counters.
type Stats struct {
	Hits      int64 // block lookups served from memory (cached or being filled)
	DiskHits  int64 // block lookups served from the disk tier
	Misses    int64 // block lookups that needed a GET
	MemBytes  int64 // bytes of block buffers held (cached, being filled, or free for reuse)
	PeakBytes int64 // largest MemBytes ever observed
	DiskBytes int64 // bytes of blocks in the disk tier
	Evictions int64 // blocks evicted from memory to make room
	// DiskEvictions counts blocks evicted from the disk tier to make room.
	DiskEvictions int64
}

// Cache is a bounded block cache shared by every Reader it creates.
type Cache struct {
	cfg Config
	log *slog.Logger
}

// New validates cfg and returns an empty cache.
func New(cfg Config) (*Cache, error) {
	if cfg.BlockSize == 0 {
		cfg.BlockSize = DefaultBlockSize
	}
	if cfg.BlockSize < 0 || cfg.MaxBytes < 2*cfg.BlockSize {
		return nil, fmt.Errorf("cache: MaxBytes %d must hold two blocks of %d bytes", cfg.MaxBytes, cfg.BlockSize)
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Cache{cfg: cfg, log: cfg.Log}, nil
}

// Stats returns a snapshot of the counters.
func (c *Cache) Stats() Stats { return Stats{} }

// Invalidate drops every block of key, whatever its ETag.
func (c *Cache) Invalidate(key string) {}

// ReaderConfig configures the prefetching of one Reader.
type ReaderConfig struct {
	InitialWindow int64 // first prefetch window
	MaxWindow     int64 // largest prefetch window
}

// Reader reads one object version for one open file handle. It is safe for concurrent use.
type Reader struct {
	c   *Cache
	g   Getter
	obj s3client.ObjectInfo
	rc  ReaderConfig
}

// NewReader returns a Reader of the object version obj (obj.Key, obj.ETag, obj.Size).
func (c *Cache) NewReader(g Getter, obj s3client.ObjectInfo, rc ReaderConfig) *Reader {
	return &Reader{c: c, g: g, obj: obj, rc: rc}
}

// ReadAt reads len(p) bytes at off. It returns fewer bytes only at the end of the object, with io.EOF.
func (r *Reader) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("cache: negative offset")
	}
	if off >= r.obj.Size {
		return 0, io.EOF
	}
	end := min(off+int64(len(p)), r.obj.Size)
	body, _, err := r.g.GetObject(ctx, r.obj.Key, off, end-off, r.obj.ETag)
	if err != nil {
		return 0, err
	}
	defer body.Close()
	n, err := io.ReadFull(body, p[:end-off])
	if err != nil {
		return n, err
	}
	if end-off < int64(len(p)) {
		return n, io.EOF
	}
	return n, nil
}

// Close releases the Reader's streams.
func (r *Reader) Close() error { return nil }
