// Package miniolocal runs a MinIO server on loopback for tests, benchmarks and demos.
//
// Launch starts one `minio server` process on 127.0.0.1 with its own data directory, root credentials, the
// web console on a second loopback port and the browser off. It returns once /minio/health/live answers and
// S3 requests are served (no longer 503 XMinioServerNotInitialized).
//
// Invariants:
//
//   - The process never outlives its parent: it runs with Pdeathsig=SIGKILL in its own process group, so a
//     crashed or killed test binary takes it along, and Stop kills the whole group.
//   - The process gets a minimal environment (PATH, HOME, TMPDIR and the MINIO_* settings made here); no
//     ambient AWS_* or MINIO_* variable reaches it.
//   - Restart reuses the data directory and the port, so clients keep their endpoint and objects survive;
//     it is how a test makes "the service goes away and comes back".
//   - The last 64 KiB of the server's output are kept and quoted in launch errors.
//
// FindBinary looks for the minio binary in $S3FTP_MINIO, PATH, $(go env GOBIN), $GOPATH/bin and /root/go/bin.
package miniolocal
