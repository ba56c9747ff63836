package s3mount

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"syscall"
	"testing"

	"github.com/s3ftp/s3ftp/s3client"
	"github.com/s3ftp/s3ftp/s3mount/upload"
)

func TestErrnoTable(t *testing.T) {
	var logs strings.Builder
	f := &fsys{log: slog.New(slog.NewTextHandler(&logs, nil))}
	s3err := func(kind error, code string) error {
		return &s3client.Error{Op: "HeadObject", Key: "k", Kind: kind, Code: code, Err: errors.New("cause")}
	}
	cases := []struct {
		err    error
		want   syscall.Errno
		logged bool
	}{
		{nil, 0, false},
		{s3err(s3client.ErrNotFound, "NoSuchKey"), syscall.ENOENT, false},
		{fmt.Errorf("wrapped: %w", s3err(s3client.ErrNotFound, "")), syscall.ENOENT, false},
		{s3err(s3client.ErrAccessDenied, "AccessDenied"), syscall.EACCES, true},
		{s3err(s3client.ErrPrecondition, "PreconditionFailed"), syscall.ESTALE, true},
		{fmt.Errorf("part 3: %w", upload.ErrNotSequential), syscall.EINVAL, true},
		{upload.ErrObjectTooLarge, syscall.EFBIG, true},
		{s3err(s3client.ErrOther, "KeyTooLongError"), syscall.ENAMETOOLONG, true},
		{s3err(s3client.ErrOther, "XMinioInvalidObjectName"), syscall.EINVAL, true},
		{s3err(s3client.ErrCanceled, ""), syscall.EINTR, false},
		{context.Canceled, syscall.EINTR, false},
		{s3err(s3client.ErrUnavailable, "SlowDown"), syscall.EIO, true},
		{errors.New("anything else"), syscall.EIO, true},
	}
	for _, c := range cases {
		logs.Reset()
		if got := f.errno("op", "the/key", c.err); got != c.want {
			t.Errorf("errno(%v) = %v, want %v", c.err, got, c.want)
		}
		lines := strings.Count(logs.String(), "\n")
		if c.logged && (lines != 1 || !strings.Contains(logs.String(), "key=the/key")) {
			t.Errorf("errno(%v) logged %q, want one line naming the key", c.err, logs.String())
		}
		if !c.logged && lines != 0 {
			t.Errorf("errno(%v) logged %q, want nothing", c.err, logs.String())
		}
	}
}
