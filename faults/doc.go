// Package faults holds the reliability tests of s3ftp: the real s3mount binary over a real MinIO, with an
// in-process toxiproxy between them, and the real FUSE mount driven by this test process.
//
// The package has no non-test code. Each test states the fault it injects and asserts outcomes, never
// durations:
//
//   - a writer whose upload S3 cannot take gets an error from write or close (the SDK retries with a bounded
//     number of attempts, then the mount reports EIO);
//   - no partial or corrupt object ever appears: every object that exists in the bucket has the SHA-256 of what
//     was written under its name, and an object whose write failed does not exist;
//   - no multipart upload is left once the failure is reported and S3 is reachable again;
//   - the mount keeps working after the fault is removed: a new write and its read-back are byte-identical;
//   - a daemon killed with SIGKILL does not leave a hung mount point behind;
//   - under concurrent load the daemon's peak RSS stays within memory budget + cache size + a fixed overhead.
//
// Test data come from a seeded PRNG and are regenerated for checking, so nothing is staged on local disk.
//
// Modes: by default (make test) each scenario runs a short version, tens of seconds in all. With
// S3FTP_SOAK=1 (make soak, scripts/soak.sh) sizes and counts grow; the load scenario then moves 50 GiB in and
// 50 GiB out and needs about 62 GiB free for MinIO (S3FTP_LOAD="WxSIZE,RxSIZE" sets a smaller load). With
// S3FTP_SUMMARY=FILE every scenario appends one line "scenario=NAME transfers=N bytes_lost=N leaks=N" that
// scripts/soak.sh totals.
//
// A missing dependency (the minio binary, /dev/fuse, fusermount3) fails the tests with a message; they never
// skip. RELIABILITY.md at the repository root lists every scenario with its measured results.
package faults
