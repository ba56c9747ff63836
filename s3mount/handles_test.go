package s3mount

import (
	"testing"

	"github.com/s3ftp/s3ftp/cache"
	"github.com/s3ftp/s3ftp/internal/logbuf"
	"github.com/s3ftp/s3ftp/internal/safego"
	"github.com/s3ftp/s3ftp/s3client"
	"github.com/s3ftp/s3ftp/s3client/s3fake"
)

// newTestFsys returns mount state over a fake without a kernel mount, for handle tests.
func newTestFsys(t *testing.T) (*fsys, *s3fake.Fake, *logbuf.Buffer) {
	t.Helper()
	fake := s3fake.New()
	opts := DefaultOptions()
	opts.PartSize = s3client.MinPartSize
	opts.MemoryBudget = 4 * s3client.MinPartSize
	opts.UploadConcurrency = 2
	if err := opts.Validate(); err != nil {
		t.Fatal(err)
	}
	log, logs := logbuf.New(nil)
	panics := &safego.Panics{}
	c, err := cache.New(cache.Config{MaxBytes: 8 << 20, Log: log, Panics: panics})
	if err != nil {
		t.Fatal(err)
	}
	return newFsys(fake, opts, log, c, panics), fake, logs
}
