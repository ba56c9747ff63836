package s3mount

import (
	"sync"
	"sync/atomic"

	"github.com/s3ftp/s3ftp/cache"
	"github.com/s3ftp/s3ftp/s3client"
)

// readHandle reads one object version: the ETag seen at open. Reads run concurrently under mu's read side;
// Release takes the write side, so no read uses the cache.Reader after it was closed.
type readHandle struct {
	f    *fsys
	node *fileNode // counts the handle among its readers
	key  string
	info s3client.ObjectInfo // the version read, as seen at open; immutable

	mu       sync.RWMutex
	released bool          // guarded by mu
	r        *cache.Reader // owns the S3 streams; lives as long as the handle, not the request

	failMu sync.Mutex    // a leaf, taken under mu's read side
	failed []failedRange // guarded by failMu: reads that failed on an unreachable S3 (handle_read.go)
	// lastFail is the time (UnixNano) of the newest entry of failed, 0 before the first: a read long after it
	// skips failMu.
	lastFail atomic.Int64
}
