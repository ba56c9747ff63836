// Command bench measures the s3mount FUSE mount and the ftpfront FTPS and SFTP fronts against the raw aws-sdk-go-v2
// client and against the tools users would pick instead (s3fs, rclone mount), in one run on one machine.
//
// Usage:
//
//	go run ./bench [--quick] [--size N] [--reps N] [--out DIR] [--tools LIST] [--link RATE[,LATENCY]]
//
// The run starts its own MinIO on loopback (internal/miniolocal), one bucket per tool, and for each tool runs the
// same workloads through a mount point: sequential write timed to close(), cold and warm sequential read,
// parallel writers, creation of many small files, and a cold "ls -l" of a large directory. The raw SDK runs the
// S3 equivalent of each workload and is the ceiling every figure is divided by. The SSH tools (s3mount+sftp,
// sshd+s3mount, sshd+s3fs) upload and download one file with OpenSSH's sftp client, through ftpfront's SFTP
// server or through OpenSSH's sshd (internal-sftp, chrooted at the mount point), and are compared with each other.
//
// Invariants the program keeps:
//   - Every figure is a rate (higher is better) reported as the median of --reps repetitions with its min–max
//     spread; a failed repetition is recorded with its error and never replaced by a retry.
//   - "Cold" means a fresh daemon process (a remount, with an empty cache directory for tools that keep one) after
//     sync and drop_caches; "warm" is a second read in the same mount.
//   - Each daemon gets its own scratch file system (a tmpfs mounted by the run) as TMPDIR and cache directory, so
//     the local-disk figure is the bytes that tool itself put on disk; MinIO's data lives on another tmpfs.
//   - With --link, every client (the raw SDK, its set-up and polls included, and every daemon) reaches MinIO
//     only through one in-process toxiproxy that limits each connection to RATE per direction and adds LATENCY
//     per direction, so all tools see the same emulated link; the table heading states it.
//   - Every mount, daemon and MinIO process started by the run is unmounted or stopped before it exits, also on
//     failure and on SIGINT/SIGTERM (fusermount3 -uz, then SIGKILL).
//
// Output: a table on stdout (progress on stderr), and results.csv, results.json and throughput.png (gnuplot) in
// --out. bench/README.md explains each row and the caveats.
package main
