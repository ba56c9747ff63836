// Package upload streams one object to S3 while it is written, with bounded memory and no local disk.
//
// A Writer accepts (nearly) sequential writes into a part buffer. When the buffer is full and more data
// arrives, the part is handed to a goroutine that uploads it (UploadPart) while the writer fills the next one.
// Close stores an object that never filled its first part with one PutObject, and otherwise uploads the last
// part and calls CompleteMultipartUpload. The multipart upload is created when the first part is handed off.
//
// # Extending an existing object
//
// NewFromExisting starts an upload whose first keep bytes are an existing object's (append, or FTP's REST +
// STOR). A kept prefix of 5 MiB or more becomes the first parts through UploadPartCopy (the parts of CopyPlan),
// so a large object is extended without downloading it; a shorter prefix is read with one ranged GET into the
// first part buffer. Both are conditional on the source's ETag: if it changed, the writer fails with
// s3client.ErrPrecondition instead of splicing two versions.
//
// # Memory budget
//
// All writers of a mount share one Budget. Every byte of every part buffer is counted from the moment the
// buffer is acquired (before it is filled) until its part's upload has finished, successfully or not; a
// buffer's full capacity counts, however much of it is filled. WriteAt blocks while the budget cannot hold the
// next buffer: the caller sees backpressure, never ENOSPC. The wait ends when a buffer is released, when the
// caller's ctx is cancelled (WriteAt returns ctx's error) or when the writer is aborted or failed.
//
// Released buffers stay on the Budget's free list for reuse while InUse plus the free list stays within Max, so
// the Go heap stays near the budget instead of growing with garbage-collector lag: live part buffers, in use or
// free, never exceed Max. Only when a buffer of a new size is needed (the part size grows every 900 parts) are
// free buffers of the old size dropped, and they are garbage until the next collection. Fixed overhead outside the budget: per writer, up to MaxReorder bytes of writes
// that arrived ahead of a gap; nothing else holds object data.
//
// # Progress
//
// A writer holds at most one buffer it fills plus at most Concurrency buffers in flight; buffers in flight
// are always released when their request ends (the SDK bounds its retries). A part is never larger than
// Budget.Max()/2, so a writer alone can hold the buffer it fills while a previous part uploads. A writer that
// waits for the budget therefore waits only for uploads in flight, which finish, or for buffers other writers
// are filling, which their callers fill or close. One thread that alternates between several files whose
// partly filled buffers together exhaust the budget would wait forever; s3mount sizes the budget to hold at
// least two parts and cancels the wait when the request is interrupted. Waiters are served first come, first
// served, so a large part is not starved by small ones.
//
// # Part size schedule
//
// PartSize(n, base, limit): the first 900 parts are base bytes (Config.PartSize, at least 5 MiB); the size
// doubles every 900 parts and is capped at limit = min(Budget.Max()/2, 5 GiB). Uncapped, 10,000 parts from
// base = 5 MiB hold more than 5 TiB. The largest object a writer can store is therefore
//
//	MaxObjectSize(base, limit) = Σ_{n=1..10000} min(base · 2^⌊(n-1)/900⌋, limit)
//
// (about 905 GiB with 8 MiB parts and a 256 MiB budget; 7.2 TiB with a 4 GiB budget). A write past it fails
// the writer with ErrObjectTooLarge.
//
// # Out-of-order writes
//
// Kernel writeback may reorder writes slightly. A write starting after the end of the contiguous data is held
// aside (at most MaxReorder bytes per writer) until the gap is filled; Close fills a remaining gap with zeros.
// Bytes of the part buffer still being filled may be rewritten. Anything else is ErrNotSequential.
//
// # Failures
//
// S3 requests run on the writer's own context, not the caller's: a cancelled FUSE request stops waiting but
// does not cancel an upload. Retrying is the SDK's job; a request that still fails fails the writer: the error
// is sticky (every later WriteAt and Close return it, so a caller that ignores close() still sees it on the
// next write), one line naming the key and the cause is logged, the other parts are cancelled, and once they
// ended the multipart upload's abort is handed to an Aborts (Config.Aborts, else the shared DefaultAborts()).
// The abort runs in the background, retried with backoff (1 s doubling to 15 s) until S3 accepts it or reports
// the upload gone, for at most 5 minutes: an abort tried once inside the outage that failed the writer would
// fail too and leave the parts stored. Close and Abort return the writer's own error without waiting for it;
// an unmount waits a bounded time with Aborts.Wait.
//
// # Panics
//
// Every goroutine of the package (part uploads and copies, the completion started by Close or Abort, the
// hand-over and the retries of an abort) runs under recovery (internal/safego); only Aborts.Wait's waiter, which
// just waits for a WaitGroup, is exempt. A panic there is logged once with its stack and counted on
// Config.Panics, and is a failure like any other: a part or the completion fails the writer with a
// *safego.PanicError (WriteAt and Close return it; the buffers go back to the budget; the multipart upload is
// aborted), and a panicking abort is given up (Aborts.Failed) with the upload left to the lifecycle rule or to
// --abort-uploads-older-than. A panic inside a PutObject or CompleteMultipartUpload that S3 had already
// accepted cannot undo the object: Close then reports a failure for an object that exists.
//
// # What Close guarantees
//
// Close returns nil only after S3 confirmed the whole object (PutObject or CompleteMultipartUpload); the
// returned ObjectInfo has the key, size, ETag and options. On any failure no object version is created by this
// writer and the multipart upload is aborted in the background (an abort given up after its bound is logged with
// the upload ID; s3mount --abort-uploads-older-than removes such leftovers at the next start). Close is
// idempotent; a Close whose ctx is cancelled returns early while the completion continues, and the next Close
// returns its result. Options changed with SetOptions after the multipart upload was created are applied by
// copying the object onto itself (Copier).
//
// # Server-side copies
//
// Copier is the one copy engine of the mount: renames, metadata replacement, late options. Up to 5 GiB one
// CopyObject; above, UploadPartCopy parts of CopyPlan (at least 512 MiB each, at most 10,000),
// CopyConcurrency in flight, conditional on the source's ETag, the multipart upload aborted through Aborts on
// failure. Each mount has its own Aborts, which its unmount waits for.
//
// # Locks
//
// Lock order: Writer.writeMu (serialises WriteAt and Close's completion; held while waiting for the budget or
// an upload slot), then Writer.mu (sticky error, upload ID, parts, options; shared with the part goroutines),
// then Budget.mu. Part goroutines never take writeMu.
package upload
