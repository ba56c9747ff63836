// Package journal keeps a local list of the multipart uploads one mount has started and not yet finished, so
// that the next start of the same mount can abort the uploads a killed daemon left behind, and only those.
//
// S3 cannot tag a multipart upload with its writer, and a listing of the bucket's unfinished uploads cannot
// tell this mount's leftovers from another host's upload in progress. The journal is the record of ownership:
// Client, a wrapper around an s3client.Client, appends a record when CreateMultipartUpload returns an upload
// ID and a removal when CompleteMultipartUpload or AbortMultipartUpload succeeds (or S3 answers that the upload
// no longer exists). At start, Recover aborts every upload still listed. Uploads the journal never listed are
// never touched.
//
// # File
//
// One journal per (endpoint, bucket, prefix, mount point), named by a hash of the four (FileName), in a state
// directory. It is a text file of lines:
//
//	# comment (the first line names the mount)
//	+ "UPLOAD-ID" "KEY"     an upload was created
//	- "UPLOAD-ID"           it was completed or aborted
//
// A delete the mount defers (a file unlinked while open for reading, deleted at its last close) is a record
// of the same shape whose ID, "\x00delete\x00ETAG\x00KEY", no upload ID can be (AddDelete); Recover does it
// when the object is still that version.
//
// Both fields are Go-quoted strings, so a key may hold any byte. Records are appended with one write(2) each.
// A write that returned is in the kernel's page cache and survives the death of the process (SIGKILL, a crash,
// the OOM killer); an addition is also synced (fdatasync) before Add returns, so it survives a power loss too,
// at the cost of one disk flush per multipart upload (one per file of at least a part size). Removals are not
// synced: a removal lost to a power loss only makes the next start abort an upload S3 no longer has, which it
// answers NoSuchUpload. The bucket's lifecycle rule (AbortIncompleteMultipartUpload) remains the net for an
// upload created in the instant between S3's answer and the append, and for a lost state directory. When
// reading, a last line without its newline (a torn append) and lines that do not parse are skipped and counted
// (Skipped).
//
// # Compaction
//
// Open rewrites the file with only the live records, and so does an append once the file holds many more
// lines than live records: the new content goes to a temporary file, synced, that is renamed over the journal,
// and the directory is synced after the rename, so a crash or a power loss at any point leaves either the old or
// the new file whole. Close removes the file when no record is left, so a cleanly stopped mount leaves nothing
// in the state directory.
//
// # Locking
//
// The process that opened a journal holds an exclusive flock(2) on it until Close or its death; Open fails
// with ErrLocked while another process holds it, so two daemons of the same mount never share a journal and
// one can never abort the other's uploads in progress (a daemon still serving a lazily unmounted file system,
// for instance). Compaction locks the temporary file before renaming it, and Open checks after locking that
// the path still names the file it locked, retrying otherwise, so the lock survives the rename and removal.
// The descriptor is close-on-exec: no child process inherits the lock.
//
// # Concurrency
//
// A Journal and a Client are safe for concurrent use; one mutex serialises the appends and compactions.
package journal
