// Package cache is the read side of s3mount: a block cache bounded in bytes, shared by every open file, and a
// per-handle Reader that detects sequential reads and streams them from S3 ahead of the reader.
//
// # Key
//
// A block is identified by (object key, ETag, block index); blocks are Config.BlockSize bytes except the last of
// an object. Because the ETag is part of the key, a block of an older version is never served to a reader of a
// newer one, and every GET carries If-Match with the reader's ETag, so a Reader whose object changed gets an
// error of kind s3client.ErrPrecondition for any block not cached yet, never a mix of versions. Invalidate(key)
// drops the blocks of every ETag of key, in memory and on disk.
//
// # Byte budget
//
// Config.MaxBytes bounds every buffer the cache holds: ready blocks, blocks being filled (a prefetched block is
// an ordinary cache block) and full-size buffers kept on a free list for reuse, counted by capacity. A buffer
// is taken from the budget before anything is read into it: from the free list, by a new allocation while the
// budget allows, or by evicting the least recently used block and reusing its buffer. When every byte is
// pinned, the taker waits until one is released; nothing that holds a pin waits for memory, so the wait ends.
// Stats.PeakBytes records the most ever held.
//
// # Eviction order
//
// Only ready, unpinned blocks are evictable; they sit in one LRU list whose front is the block most recently
// released by a reader (or completed by a fill). Pinning a block (a reader copying from it, a View lent to a
// caller, a fill, a disk write, a stream passing a block it finds cached) takes it off the list; the last unpin
// puts it at the front.
// A failed fill is removed at once, so the next lookup misses.
//
// # Sharing
//
// All Readers of one Cache share blocks: a block being filled is in the index from the moment its fill starts,
// so a second reader of the same block pins it and waits for the bytes it needs (published every 64 KiB)
// instead of issuing another GET. A fill canceled by its owner's Close or stream restart fails its block with
// a cancellation error; waiters that did not cancel fetch the block again.
//
// # Disk tier
//
// With Config.DiskDir, every block filled from S3 is also written to a file there in the background (skipped
// when both writers are busy), and a memory miss reads the file before asking S3. The tier is bounded by
// Config.DiskMaxBytes, counting files being written, and evicted LRU; victims are deleted before a new file is
// written, so the directory never holds more. File names are unique, and files are written under a temporary
// name and renamed, so a reader never sees a partial or reused file. Leftover files are deleted by New.
//
// # Reading
//
// A Reader serves one open file handle. A read that starts near where the previous one ended (within
// max(4 blocks, the current window), so that the kernel's parallel readahead requests may arrive out of
// order), or the first read near offset 0, is sequential: it is served by the Reader's stream, one open-ended
// GET that fills blocks up to the prefetch window past the last read. The window starts at
// ReaderConfig.InitialWindow and doubles on each read that reaches a new block, up to ReaderConfig.MaxWindow
// (at most a quarter of MaxBytes) and to an equal share of half of MaxBytes among the open Readers (at least one
// block): concurrent streams together never prefetch more than half the cache, so none evicts blocks another
// prefetched before they are read. Other reads fetch exactly the blocks they touch, one ranged GET per block.
// The stream and the fetches run on the Reader's context and end at Close; the context passed to ReadAt only
// bounds the caller's wait, so an interrupted read leaves its fetch running for the retry.
//
// ReadView serves a read that lies within one block without copying: it lends a View of the block's bytes,
// pinned until View.Release (s3mount hands it to go-fuse, which writes it to the kernel and then releases it).
// A View pins one block, and only once the block holds the bytes asked for, so a View never waits for memory
// while holding a pin; it only delays that block's eviction by one reply's write.
//
// Resuming: a GET body that fails mid-block on a connection fault (kind s3client.ErrUnavailable: a reset, a
// body cut short, an idle timeout; or a body that ends early) is closed, and after a backoff (100 ms, 400 ms,
// 1.6 s) a new GET with the same If-Match asks for the rest from the first byte not received: the rest of the
// object for the stream, the rest of the block for a ranged fetch. The block keeps the bytes it holds, so its
// bytes stay exact, and no buffer is added. Each resume is one WARN line and counts in Stats.Resumes. Bytes
// arriving reset the count; three resumes in a row that receive nothing, or a resumed GET failing with another
// kind (a replaced object gives s3client.ErrPrecondition), fail the block as below. Errors of other kinds, a
// cancellation and a panic are never resumed, and a failed first GET is not either (the S3 client retried it
// already). Close ends a backoff at once.
//
// Errors: a GET that fails, or whose body fails and cannot be resumed, fails its block; the readers waiting
// for the block get the error, and a read of a block after a stream's failure point gets the stream's error
// once, after which the next sequential read starts a new stream. No read ever returns bytes a GET did not
// deliver. A changed object gives s3client.ErrPrecondition. An ObjectInfo without an ETag cannot be pinned to a
// version: its blocks are keyed by the empty ETag and GETs carry no If-Match, so such readers may mix versions
// (a resumed GET too); s3mount always resolves the ETag before opening a Reader.
//
// Panics: the stream, the ranged fetches and the disk writes run under recovery (internal/safego). A panic in one
// of them, in the GET call or while reading its body, is logged once with its stack, counted on Config.Panics,
// and is an error like a failed GET: the block being filled fails (its waiters get a *safego.PanicError, a
// stream's failure is reported to one read as above), a pin the stream held is dropped, and a disk write that
// panicked is a failed write. No pin, budget byte or disk byte leaks, and later reads fetch the block again.
//
// # Lock order
//
// Reader.mu, then Cache.mu. Neither is held while reading from S3, reading a disk file, or waiting; the only
// I/O under Cache.mu is deleting disk-tier files, which keeps the disk bound exact. Bytes below a block's
// published fill length never change while the block is pinned, so readers copy them without a lock.
package cache
