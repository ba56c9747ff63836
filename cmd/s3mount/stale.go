package main

import (
	"context"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/s3ftp/s3ftp/s3client"
)

// runtimeHeadroom is what setMemoryLimit adds to the budgets for the Go runtime, goroutine stacks, FUSE request
// buffers and the SDK's own allocations.
const runtimeHeadroom = 64 << 20

// setMemoryLimit sets the Go runtime's soft memory limit to memory-budget + cache-size + 64 MiB, the daemon's
// expected peak, so the garbage collector works harder as the heap nears it instead of letting RSS overshoot
// by up to GOGC (twice the live heap). It is a soft limit: the process is never killed for crossing it. A
// GOMEMLIMIT set in the environment wins. It returns the limit in effect.
func setMemoryLimit(log *slog.Logger, memoryBudget, cacheSize int64) int64 {
	if cur := debug.SetMemoryLimit(-1); cur != maxMemoryLimit {
		log.Info("Go memory limit taken from GOMEMLIMIT", "limit", formatSize(cur))
		return cur
	}
	limit := memoryBudget + cacheSize + runtimeHeadroom
	debug.SetMemoryLimit(limit)
	log.Info("Go memory limit set (soft: the GC works harder near it)", "limit", formatSize(limit),
		"memory_budget", formatSize(memoryBudget), "cache_size", formatSize(cacheSize),
		"headroom", formatSize(runtimeHeadroom))
	return limit
}

// maxMemoryLimit is the runtime's "no limit" value (math.MaxInt64).
const maxMemoryLimit = int64(^uint64(0) >> 1)

// uploadLister is what abortStaleUploads needs of the S3 client.
type uploadLister interface {
	ListMultipartUploads(ctx context.Context, prefix string) ([]s3client.Upload, error)
	AbortMultipartUpload(ctx context.Context, key, uploadID string) error
}

// abortStaleUploads aborts the unfinished multipart uploads under prefix initiated before now-olderThan: those
// a killed daemon (kill -9, a crash, a power loss) could not abort, whose parts would otherwise be stored and
// billed until a lifecycle rule removes them. Uploads of other writers to the same prefix that are younger
// than olderThan are kept, so olderThan must exceed the longest upload any writer of the prefix makes. Each
// abort is logged; failures are logged and do not stop the start: the mount works without the clean-up. It
// returns the number of uploads aborted.
func abortStaleUploads(ctx context.Context, log *slog.Logger, c uploadLister, prefix string, olderThan time.Duration) int {
	cutoff := time.Now().Add(-olderThan)
	ups, err := c.ListMultipartUploads(ctx, prefix)
	if err != nil {
		log.Error("listing unfinished multipart uploads failed; none aborted", "prefix", prefix, "err", err)
		return 0
	}
	n := 0
	for _, u := range ups {
		if !u.Initiated.Before(cutoff) {
			continue
		}
		err := c.AbortMultipartUpload(ctx, u.Key, u.UploadID)
		switch {
		case err == nil:
			n++
			log.Info("aborted a stale multipart upload", "key", u.Key, "upload_id", u.UploadID,
				"initiated", u.Initiated.UTC().Format(time.RFC3339), "older_than", olderThan)
		case s3client.UploadGone(err):
			// Completed or aborted by its writer since the listing.
		default:
			log.Error("aborting a stale multipart upload failed", "key", u.Key, "upload_id", u.UploadID, "err", err)
		}
	}
	return n
}
