// Package s3fake is an in-memory s3client.Client for unit tests: it behaves like one S3 bucket, counts every
// call, and injects faults.
//
// # Behaviour
//
// ETags are quoted hex MD5s of the content; a completed multipart upload's ETag is the quoted MD5 of the
// concatenated binary part MD5s followed by "-N" (N = number of parts), as S3 computes it. LastModified is
// the fake's clock (time.Now, truncated to whole seconds as S3's HEAD reports it) at the time the object was
// written. Content type and user metadata are stored as given (no default content type is invented).
// Errors are *s3client.Error carrying the kind, HTTP status and S3 error code the real service would return.
// Multipart uploads enforce the part rules of S3: part numbers 1..10000, every part but the last at least
// MinPartSize bytes (lowered with SetMinPartSize for fast tests), and the listed ETags must match.
//
// # Counting and faults
//
// Calls(op) counts the calls of each Client method by name ("UploadPart"), including calls that failed.
// BytesUploaded counts the body bytes of PutObject and UploadPart; BytesDownloaded counts the bytes actually
// read from GetObject bodies (server-side copies count for neither). A call first checks its context, then
// sleeps for the configured latency, then consults the fault hook (SetFault) and the queued failures
// (FailNext); a fault is returned before any state changes. The hook runs without the fake's lock, so it may
// also panic, as a bug in a client would, to test recovery. GET bodies can be made to fail after a number of
// bytes (FailNextBody) to test truncated streams. A GET body also fails once the context of its GetObject
// call is done, as an SDK body does.
//
// # Concurrency
//
// A Fake is safe for concurrent use. One mutex guards all state; it is never held while sleeping or while a
// caller reads a body. Stored object bytes are never mutated after a write, so bodies read them without the
// lock.
package s3fake
