// Package scaletest is the integration test of the scale-out deployment described in docs/SCALE-OUT.md: two
// hosts, each running s3mount and ftpfront over the same bucket, behind one haproxy in TCP mode.
//
// The package has no code outside its tests. The test builds both daemons from this module, starts MinIO
// (internal/miniotest), and creates a bridge in the root network namespace with three namespaces on it:
//
//	root ns   10.77.N.1   bridge; relay to MinIO (which miniolocal binds to loopback); the test's FTP clients
//	lb        10.77.N.10  haproxy's frontends (the balancer address clients use)
//	          10.77.N.11  source address of haproxy's control-port backend connections
//	          10.77.N.12  source address of haproxy's passive-range backend connections
//	a         10.77.N.2   s3mount -f + ftpfront, passive ports 40000-40049
//	b         10.77.N.3   s3mount -f + ftpfront, passive ports 40050-40099
//
// N is derived from the test process's pid. Daemons run under nsenter --net, which keeps the mount namespace,
// so each host's FUSE mount (on its own directory) is visible to its ftpfront and to the test.
//
// # What the test proves
//
//   - Uploads through the balancer are spread over both hosts and land once: one object per upload with the
//     uploaded bytes, no stray objects, no unfinished multipart upload.
//   - Each host's mount shows every upload once the stat TTL has passed, and downloads through the balancer
//     are byte-identical whichever host serves them, with PASV (jlaffaye/ftp) and EPSV (curl).
//   - ftpfront refuses data connections from the balancer's data address without --passive-allow-cidr, and
//     logs the refusal naming that address.
//   - When a host's mount dies its /healthz answers 503, haproxy marks it DOWN and every new session goes to
//     the other host, where uploads still succeed; an upload sent to the dead host directly is answered 451 and
//     nothing lands in the local directory under its mount point.
//
// # Invariants
//
//   - Everything created carries the test process's pid in its name (namespaces s3ftp-t-<pid>-<role>, links
//     s3b<pid>, s3v<pid><role>, mount directories s3ftp-scale-<pid>-*). Each run first removes what dead runs
//     left behind; t.Cleanup stops the daemons (SIGTERM, then SIGKILL), detaches any mount that is left, and
//     deletes the namespaces and links, also when the test fails.
//   - Each s3mount keeps its upload journal in a --state-dir under the test's temp directory, never in
//     /var/lib/s3mount.
//   - Daemons die with the test binary (Pdeathsig) and get an environment of PATH, HOME and the MinIO
//     credentials only; no AWS_*, S3MOUNT_* or FTPFRONT_* setting of the caller reaches them.
//   - A missing prerequisite (root, ip, nsenter, haproxy, fusermount3, curl, /dev/fuse, minio) fails the test
//     with what to install; nothing is skipped.
package scaletest
