package main

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/s3ftp/s3ftp/s3client"
	"github.com/s3ftp/s3ftp/s3client/s3fake"
)

// TestCheckBucketMessages: each start-up failure becomes exit code 4 and one line naming the bucket and the cause.
func TestCheckBucketMessages(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}
	tests := []struct {
		name   string
		op     string
		err    error
		want   []string
		reject []string // must not appear: the SDK's retry narrative
	}{
		{name: "ok"},
		{name: "missing bucket", op: "HeadBucket",
			err:  &s3client.Error{Op: "HeadBucket", Kind: s3client.ErrNotFound, Status: 404, Code: "NoSuchBucket"},
			want: []string{`bucket "b" does not exist at http://s3.test`}},
		{name: "denied", op: "HeadBucket",
			err:  &s3client.Error{Op: "HeadBucket", Kind: s3client.ErrAccessDenied, Status: 403, Code: "InvalidAccessKeyId", Err: errors.New("long SDK text")},
			want: []string{`access to bucket "b" at http://s3.test denied (403 InvalidAccessKeyId): check the credentials`}, reject: []string{"long SDK text"}},
		{name: "unreachable", op: "HeadBucket",
			err:  &s3client.Error{Op: "HeadBucket", Kind: s3client.ErrUnavailable, Err: errors.Join(errors.New("exceeded maximum number of attempts"), refused)},
			want: []string{"S3 endpoint http://s3.test unreachable", `"b"`, "connect: connection refused"}, reject: []string{"attempts"}},
		{name: "listing denied by Check", op: "List",
			err:  &s3client.Error{Op: "ListObjectsV2", Kind: s3client.ErrAccessDenied, Status: 403, Code: "AccessDenied"},
			want: []string{`access to bucket "b"`, "denied (403 AccessDenied)"}},
		{name: "other", op: "HeadBucket",
			err:  &s3client.Error{Op: "HeadBucket", Kind: s3client.ErrOther, Status: 400, Code: "BadRequest"},
			want: []string{`checking bucket "b" at http://s3.test`, "400 BadRequest"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseArgs([]string{"--endpoint", "http://s3.test", "b", "/m"})
			if err != nil {
				t.Fatal(err)
			}
			fake := s3fake.New()
			if tt.err != nil {
				fake.FailNext(tt.op, 1, tt.err)
			}
			err = checkBucket(context.Background(), c, fake)
			if tt.err == nil {
				if err != nil {
					t.Fatalf("checkBucket on a healthy bucket: %v", err)
				}
				if fake.Calls("HeadBucket") != 1 {
					t.Errorf("HeadBucket calls = %d, want 1", fake.Calls("HeadBucket"))
				}
				return
			}
			if code := exitCode(err); code != ExitS3 {
				t.Errorf("exit code %d, want %d (%v)", code, ExitS3, err)
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("message spans lines: %q", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q lacks %q", msg, w)
				}
			}
			for _, r := range tt.reject {
				if strings.Contains(msg, r) {
					t.Errorf("message %q contains %q", msg, r)
				}
			}
		})
	}
}
