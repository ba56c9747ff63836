// Package s3mount is a FUSE file system over one S3 bucket (or a prefix of it), built on go-fuse's fs API.
//
// Mount starts it, Check verifies the bucket and credentials beforehand, Options configures it (the command
// line in cmd/s3mount only maps flags onto Options).
//
// # Namespace
//
// A file is an object under Options.Prefix; its path is its key without the prefix. A directory is a prefix:
// either a "dir/" marker object (Mkdir creates one, Rmdir deletes it) or objects below "dir/"; both are
// accepted. When an object "a" and a prefix "a/" both exist, the file shadows the directory, in Lookup and in
// Readdir alike. Keys that cannot be file names (empty segments, "." or "..", NUL, a segment over 255 bytes, a
// key over 1024 bytes) are left out of listings with one log line each; names that cannot become keys get
// EINVAL or ENAMETOOLONG. The mapping lives in keys.go (pure, fuzzed by FuzzKeyName).
//
// # What is cached, and for how long
//
//   - The stat cache (statcache.go) remembers what a key names (file with size, ETag and mtime, or directory)
//     for Options.StatTTL, and that a key names nothing for Options.NegativeTTL. Listings fill it, so `ls -l`
//     costs one LIST per 1000 entries and no HEAD per entry. Changes made through the mount update it. A
//     directory listed in full or made by Mkdir is marked complete for min(StatTTL, NegativeTTL): a name it
//     does not hold is answered ENOENT without a request, and past the TTL one listing of a small directory
//     renews the mark (statCache.relistable). Every forget drops the marks around the key.
//   - The kernel caches attributes and directory entries for StatTTL (fs.Options AttrTimeout/EntryTimeout) and
//     failed lookups for NegativeTTL. After these TTLs, an object changed by another client is seen with its new
//     size and ETag. The page cache is kept per version: an inode stands for one ETag (inodes.go), a lookup
//     or open that finds another ETag gives the path a new inode, and opens of the version an inode stands for
//     keep its page cache (FOPEN_KEEP_CACHE). Handles opened on an older version keep the older inode and its
//     pages, so a reader never sees pages of a newer version. An open that finds the inode's version replaced
//     answers ESTALE, which the kernel retries once with a revalidating lookup (the new inode); an inode with
//     write state is rebound instead and opened without FOPEN_KEEP_CACHE.
//   - File data is cached by the cache package's block cache, keyed by (key, ETag, block), within
//     Options.CacheSize bytes. A read handle is bound to the ETag seen at open: when the object changes under it,
//     reads fail with ESTALE instead of mixing two versions.
//
// # Writes
//
// Writing streams a new version of the object through upload.Writer, under the mount-wide memory budget
// (Options.MemoryBudget): no local disk, parts upload while the file is written. Every handle open for
// writing on a file shares its openFile (openfile.go, with the state diagram), kept in the mount's table
// (fsys.files). Nothing is stored at create: S3 holds only complete objects, created at a commit. A commit
// runs at an fsync, at the last release, and at a FLUSH after which the process that opened the handle holds
// no descriptor for writing on the file (commitsOnFlush reads that process's fd table only, bounded by
// procScanWait); the closes of forked children, of dup'd descriptors and of a shell's several commands on
// one redirection never commit while the opener holds the file. Writes after a commit start the next version,
// which keeps the committed bytes server-side, so a commit costs at most the committed size in copies.
//
// While a file is dirty (bytes not committed), a second process opening it for writing and a reader get
// EBUSY; a handle open for writing (O_RDWR included) cannot read (EBADF). Getattr reports its size so far and
// the attributes set meanwhile. A failed part or commit fails the file (every later write, flush and fsync
// gets EIO, one log line names the key and the cause); a file created with O_EXCL commits with If-None-Match
// until its first commit (EEXIST when another host won). Unlink of a file being written drops its upload;
// the mount's end aborts every upload still open, each with a log line.
//
// What the new version starts with is decided by its first change: from scratch after creation, O_TRUNC or
// a truncation to 0; with the first n bytes of the old version after a truncation to n; with the old bytes
// before the first write's offset, and after the last written byte (O_APPEND, FTP's APPE and REST+STOR).
// Kept bytes are copied server-side by upload.Copier plans (UploadPartCopy from 5 MiB, one ranged GET below)
// conditional on the old ETag; kept bytes after the written range are read and uploaded again. After the
// first write, writes must be sequential (small reordering is tolerated by the writer); any other write gets
// EINVAL and fails the file, so no object with a hole or a mix is ever stored.
//
// # Memory
//
// The daemon holds Options.MemoryBudget (upload part buffers) + Options.CacheSize (read blocks, prefetch
// included) + the Go runtime, plus one go-fuse request buffer of Options.MaxWrite bytes per FUSE request in
// flight, which neither budget counts: a WRITE that waits for the budget keeps its data until it is copied
// into a part buffer, and a READ holds its reply. Requests in flight are at most one per thread blocked in a
// system call on the mount plus the kernel's asynchronous READs (max_background, 12), so a smaller MaxWrite
// bounds that part where many clients write at once.
//
// # Attributes
//
// The kernel checks permissions (default_permissions, Options.DefaultPermissions) against what Getattr shows. A
// created file is stored with its create mode and its creator's uid and gid where they differ from the
// mount's defaults (createAttrs), and every new version of a file keeps its mode and owner headers.
//
// chmod, chown and utimens store s3fs's headers (x-amz-meta-mode, -uid, -gid, -mtime; attrHeaders), on the
// object of a file and on the marker "dir/" of a directory (Mkdir writes them; setDirAttrs; withMarker reads
// them at lookup). On a file
// being written they go with its upload (Writer.SetOptions); otherwise the object is copied onto itself with
// the headers replaced (upload.Copier: CopyObject, multipart above 5 GiB), unless they are unchanged. Objects without headers
// show LastModified and the mount's UID, GID and modes. Listings carry no metadata: the stat cache remembers
// the headers seen per key, ETag and size (statCache.known) so listed entries keep them.
//
// # Other operations
//
// Rename moves a file with a server-side copy (UploadPartCopy parts above 5 GiB) and a delete; a directory by
// copying every object below it, then deleting the sources, dirRenameConcurrency at a time (renameDir states
// the rule on failure). Neither is atomic. RENAME_NOREPLACE gives EEXIST. Unlink deletes the object (of a file
// being written: drops its upload, nothing is stored; of a file open for reading: at its last close,
// unlinked.go). Rmdir deletes the marker (ENOTEMPTY while anything else is below it).
// Truncate shortens server-side and extends with zeros (uploaded; the kept bytes are copied server-side). Statfs reports large constant numbers.
// Symlinks are objects in s3fs's format (symlink.go); no hard links, device nodes or locks (see
// node_api_check.go). A read-only mount answers EROFS to every change. SEMANTICS.md at the repository root lists every
// rule with the test that proves it.
//
// # Errnos
//
// errno.go holds the one error→errno table: ENOENT for S3's not found, EACCES for access denied, ESTALE for a
// changed ETag, EINVAL for non-sequential writes, EINTR for interrupted requests, and EIO with one log line
// naming the operation, the key and the cause for anything else. No SDK or wrapped error reaches go-fuse.
//
// An unreachable S3 (the client's attempts used up) gives EIO in bounded time: every request ends after at
// most the client's retry chain, MaxAttempts × min(idle timeout, response header timeout) plus the backoff
// between attempts (about 95 s with the defaults), as does a GET stream that goes silent (after one idle
// timeout). A read(2) costs one chain, not two: the kernel's immediate second READ for a page whose
// readahead failed is answered from the failure just seen on the handle (UnavailableRetryWindow).
//
// # Panics
//
// A panic never ends the process. In a request, go-fuse recovers it (MountOptions.PanicHandler) and the request
// fails with EIO. Every goroutine the mount starts outside a request runs under recovery too (internal/safego):
// the end-of-mount cleanup, the copies and deletes of a directory rename (forEachBounded), and, through the
// counter passed in upload.Config and cache.Config, part uploads, completions and aborts, prefetch streams,
// block fetches and disk-tier writes. Such a panic fails what the goroutine worked for, as an S3 error would:
// the upload (write and close get EIO, nothing is stored, the multipart upload is aborted), the block (the
// read that needs it gets EIO), the rename (EIO, copies undone). Each panic is logged once at ERROR with its
// stack and counted in Mounted.Panics.
//
// # Contexts
//
// go-fuse cancels a request's context when the calling process gets any signal (Go programs get SIGURG all the
// time). Requests that only read (HEAD, LIST, waiting for data or budget) honour it and return EINTR, which
// callers retry. Requests that change the bucket (PUT, COPY, DELETE, completing an upload) run detached from
// it: a change cut in half is worse than a late answer. S3 streams and uploads belong to the handle, not to
// the request.
//
// # Locks
//
// Lock order: openFile.mu, then fileNode.mu, then fsys.filesMu. A writeHandle has no lock; its fields are
// guarded by its openFile's mu. fsys.hiddenMu is a leaf (taken under fileNode.mu). statCache.mu is a leaf: nothing is
// locked while it is held. readHandle.mu is taken alone (read side for reads, write side for Release), with
// readHandle.failMu as a leaf under its read side. go-fuse's
// own tree locks are never held while these are taken (we only call GetChild/Children/Parent, which lock and
// unlock internally).
package s3mount
