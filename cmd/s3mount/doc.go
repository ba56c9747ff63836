// Command s3mount mounts an S3 bucket, or the keys under a prefix, as a FUSE file system.
//
//	s3mount [flags] BUCKET[:PREFIX] MOUNTPOINT
//
// Every long flag --name VALUE is also accepted as "-o name=VALUE", so the same settings work on the command
// line, in /etc/fstab (through scripts/mount.s3mount) and in the systemd unit. The options themselves live in
// package s3mount (Options, Validate) and s3client (Config); this command only maps flags onto them. Run
// "s3mount --help" for the list.
//
// # Start-up and daemon mode
//
// Before the mount is ready the command checks, in order: the command line (exit 2), the mount point exists, is
// a directory and is not already a mount point (exit 3), the bucket answers HEAD and a listing under the prefix
// with the configured credentials (exit 4), and the FUSE mount itself (exit 3). A failure prints one line naming
// the cause on stderr.
//
// Without -f the command starts itself again in the background (Go cannot fork): a new session, stdin and stdout
// on /dev/null, stderr on --log-file. The child reports "ready" or "error CODE MESSAGE" through a pipe inherited
// as file descriptor 3 (see daemon.go); the parent exits 0 once the mount serves requests, otherwise with the
// child's code and message, so mount(8), fstab and systemd see failures. A daemon without --log-file logs to
// syslog when /dev/log exists; otherwise its logs are discarded and the parent warns about it.
//
// With -f the command stays attached and logs to stderr (or --log-file). SIGINT and SIGTERM (in either mode)
// unmount the file system; an upload that no close completed is aborted with a log line by package s3mount, so
// no partial object is ever stored. When the mount is busy (a process has a file open) it is detached lazily
// instead: it leaves the namespace at once, open files keep working, writes in progress complete when they are
// closed, and the process exits 0 after the last one. A second signal stops waiting: it aborts the FUSE
// connection (through fusectl, mounted privately when the system has not), so open files fail with ENOTCONN
// and their unfinished uploads are aborted, each with a log line. Unmounting from outside (fusermount3 -u,
// umount) ends either mode with exit 0. With NOTIFY_SOCKET set (systemd Type=notify) the command sends
// READY=1 once mounted and STOPPING=1 when a signal asks it to stop. When the service manager asks for a
// watchdog (WATCHDOG_USEC, with WATCHDOG_PID unset or naming this process) it sends WATCHDOG=1 every half of
// WATCHDOG_USEC between the two, each time only after a statfs of its own mount root answered within a
// quarter of it (watchdog.go: why statfs, and why S3 cannot stop the pings).
//
// # When the daemon dies
//
// With --auto-unmount (the default; off with --auto-unmount=false or -o noauto_unmount; -o auto_unmount is
// accepted) the daemon starts, once mounted, a watcher process: this executable again with the hidden first
// argument --unmount-watcher, in its own session, ignoring SIGINT, SIGTERM and SIGHUP. It holds the read end
// of a pipe only the daemon can write to and does nothing until the daemon exits, however it exits (SIGKILL,
// the OOM killer, a panic). If the daemon's own mount is still in the mount table then (same mount ID, device
// number and path as recorded at the mount), not covered by another mount, and it answers statfs with ENOTCONN
// as a FUSE mount without its server does, the watcher unmounts it lazily (umount2 MNT_DETACH as root,
// fusermount3 -u -z otherwise) and logs one line where the daemon logs; the directory is then the plain local
// directory again, and a new daemon can mount on it. A mount made by a new daemon on the same directory is
// never touched, even when the kernel gave it the dead mount's ID and device number: it answers statfs. On a
// clean unmount the daemon stops its watcher and waits for it, so it leaves no process behind. This is what
// fusermount3's auto_unmount does; go-fuse cannot use that option (see unmountwatcher.go). Once unmounted,
// programs that use the mount point see the empty local directory instead of ENOTCONN: keep that directory
// unwritable for them (owned by root, mode 0755, or chattr +i), so nothing is written to local disk by mistake
// while the mount is down.
//
// # Leftover multipart uploads
//
// S3 cannot tag a multipart upload with its writer. The daemon keeps a journal of the uploads it started and
// has not completed or aborted (package s3mount/journal) in --state-dir: /var/lib/s3mount as root, otherwise
// $XDG_STATE_HOME/s3mount or ~/.local/state/s3mount, one file per endpoint, bucket, prefix and mount point. At
// start, before the mount is ready, it aborts every upload its journal still lists, one log line each and a
// summary; an abort that fails keeps its record for the next start, and uploads the journal does not list
// (another host's, an import job's) are never touched. The journal is locked while a daemon runs: a second
// daemon of the same mount fails with exit 3. The record of a new upload is flushed to disk before the upload
// goes on, so it survives a power loss; an upload created in the instant before its record was written is not
// listed: the bucket's lifecycle rule (AbortIncompleteMultipartUpload) remains the net for those and for a lost
// state directory. A cleanly stopped mount removes its journal.
//
// A failed or abandoned upload is aborted by package upload, retried in the background through an S3 outage
// for up to 5 minutes; an unmount waits up to 30 s for those aborts. With --abort-uploads-older-than DURATION
// the next start also lists the unfinished uploads under the mount's prefix and aborts those initiated more
// than DURATION ago, whoever made them, one log line each, before the mount is ready; a failure is logged and
// does not stop the start. Other writers of the same prefix (another s3mount, an import job) may have uploads
// in progress, so DURATION must exceed the longest upload any of them makes; 0 (the default) leaves every
// upload alone.
//
// # Exit codes
//
// See exitcodes.go: 0 ready or cleanly unmounted, 1 internal, 2 usage (also a --state-dir that cannot be
// created), 3 mount point or FUSE (also another daemon of the same mount still running), 4 S3 (bucket missing,
// credentials refused, endpoint unreachable), 5 the background process failed to start or died before it was
// ready.
//
// # Observability
//
// Logs are text or JSON lines (--log-format), one line per event naming its cause. With --metrics-addr
// HOST:PORT (also -o metrics_addr=HOST:PORT in fstab) the daemon serves Prometheus metrics at /metrics and a
// health check at /healthz; the listener is bound before the S3 checks, so a taken address fails the start
// (exit 2) before anything is mounted. /metrics counts S3 requests by operation and final status, retries,
// payload bytes up and down, parts in flight, the write budget in use, read cache hits, misses and bytes,
// recovered panics, and the Go runtime (names in package internal/metrics). /healthz answers 200 "ok" while a
// statfs of the mount's root returns within 5s, and 503 with the reason before the mount is up, once an
// unmount was asked for, or when the statfs fails or hangs (health.go: one statfs at a time; unlike a stat, the
// kernel passes every statfs to the daemon).
//
// # Limits
//
// At start-up the daemon logs its effective limits: the memory budget of upload part buffers, the read cache
// size, the largest object one file can become (from --part-size and half the memory budget, see
// upload.MaxObjectSize), and the read-ahead window. Peak memory is about memory-budget + cache-size plus the Go
// runtime's fixed overhead; written data never touches local disk. The daemon sets the Go runtime's soft memory
// limit (debug.SetMemoryLimit) to memory-budget + cache-size + 64 MiB and logs it, so the garbage collector
// works harder as the heap nears that sum instead of letting the resident size overshoot; GOMEMLIMIT in the
// environment takes precedence.
package main
