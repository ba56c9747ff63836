package cache

import (
	"container/list"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// diskTier is the optional second tier: ready blocks are copied to files in dir (write-through, in the
// background, skipped when the writers are busy) and loaded from there on a memory miss. Every file has a
// unique name, so a file that is removed while being read is never replaced under the reader.
type diskTier struct {
	dir string
	max int64
	sem chan struct{} // bounds concurrent writers; a block is not written when none is free
	wg  sync.WaitGroup
}

// diskIndex is the disk tier's bookkeeping, guarded by Cache.mu. used counts the files on disk plus the files
// being written, and victims are deleted before a new file is written, so the directory never holds more than
// max bytes of blocks.
type diskIndex struct {
	entries map[blockKey]*diskEntry
	byKey   map[string]map[blockKey]*diskEntry
	lru     *list.List // of *diskEntry: written entries only; front is the most recently used
	used    int64
	seq     uint64
}

type diskEntry struct {
	k       blockKey
	name    string
	size    int64
	ready   bool // the file is complete
	dropped bool // removed from the index while being written; the writer deletes the file
	elem    *list.Element
}

// diskWriters is how many block files may be written at once.
const diskWriters = 2

func newDiskIndex() diskIndex {
	return diskIndex{entries: map[blockKey]*diskEntry{}, byKey: map[string]map[blockKey]*diskEntry{}, lru: list.New()}
}

func newDiskTier(dir string, maxBytes int64) (*diskTier, error) {
	if maxBytes <= 0 {
		return nil, fmt.Errorf("cache: DiskDir %q needs a positive DiskMaxBytes", dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cache: disk tier: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("cache: disk tier: %w", err)
	}
	for _, e := range ents {
		if n := e.Name(); strings.HasSuffix(n, ".blk") || strings.HasSuffix(n, ".tmp") {
			if err := os.Remove(filepath.Join(dir, n)); err != nil {
				return nil, fmt.Errorf("cache: disk tier: removing leftover: %w", err)
			}
		}
	}
	return &diskTier{dir: dir, max: maxBytes, sem: make(chan struct{}, diskWriters)}, nil
}

// diskScheduleLocked starts writing the ready block b to disk unless it is there already, does not fit, or
// every writer is busy. It makes room first by deleting least recently used files.
func (c *Cache) diskScheduleLocked(b *block) {
	d, x := c.disk, &c.diskState
	size := int64(len(b.buf))
	if size > d.max || x.entries[b.k] != nil {
		return
	}
	select {
	case d.sem <- struct{}{}:
	default:
		return
	}
	for x.used+size > d.max {
		e := x.lru.Back()
		if e == nil { // the rest is being written
			<-d.sem
			return
		}
		c.diskDropLocked(e.Value.(*diskEntry))
		c.stats.DiskEvictions++
	}
	x.seq++
	ent := &diskEntry{k: b.k, name: fmt.Sprintf("%016x.blk", x.seq), size: size}
	x.entries[b.k] = ent
	m := x.byKey[b.k.key]
	if m == nil {
		m = map[blockKey]*diskEntry{}
		x.byKey[b.k.key] = m
	}
	m[b.k] = ent
	x.used += size
	c.pinLocked(b)
	d.wg.Add(1)
	go c.diskWrite(b, ent)
}

// diskWrite writes the pinned block b to ent's file, then publishes the entry.
func (c *Cache) diskWrite(b *block, ent *diskEntry) {
	d := c.disk
	defer d.wg.Done()
	defer func() { <-d.sem }()
	final := filepath.Join(d.dir, ent.name)
	// A panic is a failed write: the entry is unindexed and its bytes uncounted below.
	err := c.panics.Call(c.log, "cache: disk tier write", func() error { return writeFile(final, b.buf) })
	c.mu.Lock()
	defer c.mu.Unlock()
	c.unpinLocked(b)
	x := &c.diskState
	if err != nil {
		c.log.Error("cache: disk tier write failed", slog.String("block", b.k.String()), slog.Any("err", err))
		if !ent.dropped {
			c.diskUnindexLocked(ent)
		}
		x.used -= ent.size
		return
	}
	if ent.dropped {
		removeQuiet(c, final)
		x.used -= ent.size
		return
	}
	ent.ready = true
	ent.elem = x.lru.PushFront(ent)
}

// writeFile writes data to path through a temporary file, so that a complete file is all a reader can see.
func writeFile(path string, data []byte) error {
	tmp := strings.TrimSuffix(path, ".blk") + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}

// diskRead fills the block b (created by the caller, being filled) from the disk tier. It reports false when
// the block is not on disk or the file cannot be read whole; the caller then fetches it from S3.
func (c *Cache) diskRead(b *block) bool {
	if c.disk == nil {
		return false
	}
	c.mu.Lock()
	ent := c.diskState.entries[b.k]
	if ent == nil || !ent.ready || ent.size != int64(len(b.buf)) {
		c.mu.Unlock()
		return false
	}
	c.diskState.lru.MoveToFront(ent.elem)
	path := filepath.Join(c.disk.dir, ent.name)
	c.mu.Unlock()
	f, err := os.Open(path)
	if err != nil {
		// Evicted since the lookup: an ordinary miss.
		return false
	}
	defer f.Close()
	if n, err := f.ReadAt(b.buf, 0); err != nil || n != len(b.buf) {
		c.log.Error("cache: disk tier read failed", slog.String("block", b.k.String()), slog.Any("err", err))
		return false
	}
	c.mu.Lock()
	c.stats.DiskHits++
	c.mu.Unlock()
	return true
}

// diskDropLocked removes ent from the index and deletes its file, or leaves the deletion to its writer.
func (c *Cache) diskDropLocked(ent *diskEntry) {
	c.diskUnindexLocked(ent)
	if !ent.ready {
		ent.dropped = true
		return
	}
	removeQuiet(c, filepath.Join(c.disk.dir, ent.name))
	c.diskState.used -= ent.size
}

func (c *Cache) diskUnindexLocked(ent *diskEntry) {
	x := &c.diskState
	delete(x.entries, ent.k)
	if m := x.byKey[ent.k.key]; m != nil {
		delete(m, ent.k)
		if len(m) == 0 {
			delete(x.byKey, ent.k.key)
		}
	}
	if ent.elem != nil {
		x.lru.Remove(ent.elem)
		ent.elem = nil
	}
}

func (c *Cache) diskInvalidateLocked(key string) {
	for _, ent := range c.diskState.byKey[key] {
		c.diskDropLocked(ent)
	}
}

// diskClearLocked deletes every file of the tier; no writer may be running.
func (c *Cache) diskClearLocked() error {
	for _, ent := range c.diskState.entries {
		c.diskDropLocked(ent)
	}
	return nil
}

// removeQuiet deletes a block file; a failure is logged, since it only costs disk space.
func removeQuiet(c *Cache, path string) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		c.log.Error("cache: disk tier remove failed", slog.String("path", path), slog.Any("err", err))
	}
}
