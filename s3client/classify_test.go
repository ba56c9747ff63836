package s3client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"syscall"
	"testing"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

func responseErr(status int, code string) error {
	var inner error = errors.New("boom")
	if code != "" {
		inner = &smithy.GenericAPIError{Code: code, Message: "m"}
	}
	return &smithy.OperationError{ServiceID: "S3", OperationName: "X", Err: &smithyhttp.ResponseError{
		Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}}, Err: inner}}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err  error
		kind error
	}{
		{responseErr(404, ""), ErrNotFound}, // HEAD: no code
		{responseErr(404, "NoSuchKey"), ErrNotFound},
		{responseErr(404, "NoSuchUpload"), ErrNoSuchUpload},
		{responseErr(403, ""), ErrAccessDenied},
		{responseErr(400, "InvalidAccessKeyId"), ErrAccessDenied},
		{responseErr(412, ""), ErrPrecondition},
		{responseErr(416, "InvalidRange"), ErrInvalidRange},
		{responseErr(400, "EntityTooSmall"), ErrTooLarge},
		{responseErr(400, "InvalidPart"), ErrTooLarge},
		{responseErr(503, "SlowDown"), ErrUnavailable},
		{responseErr(500, ""), ErrUnavailable},
		{responseErr(400, "InvalidArgument"), ErrOther},
		{responseErr(301, "PermanentRedirect"), ErrOther},
		{&smithyhttp.RequestSendError{Err: syscall.ECONNREFUSED}, ErrUnavailable},
		{fmt.Errorf("read: %w", io.ErrUnexpectedEOF), ErrUnavailable},
		{&smithy.OperationError{Err: context.Canceled}, ErrCanceled},
		{&smithy.CanceledError{Err: context.DeadlineExceeded}, ErrCanceled},
		// net/http's response header timeout matches context.DeadlineExceeded but is the server's silence.
		{&smithyhttp.RequestSendError{Err: fmt.Errorf("net/http: timeout awaiting response headers: %w", context.DeadlineExceeded)}, ErrUnavailable},
		{&smithy.InvalidParamsError{Context: "X"}, ErrOther},
	} {
		e := classify("Op", "k", tc.err)
		if e.Kind != tc.kind || !errors.Is(e, tc.kind) || e.Op != "Op" || e.Key != "k" {
			t.Errorf("classify(%v) = %v, want kind %v", tc.err, e, tc.kind)
		}
	}
	if classify("Op", "k", nil) != nil {
		t.Error("classify(nil) is not nil")
	}
	if e := classify("Op", "k", responseErr(503, "SlowDown")); e.Status != 503 || e.Code != "SlowDown" {
		t.Errorf("status/code not kept: %+v", e)
	}
}

func TestPathStyleAndEscaping(t *testing.T) {
	for ep, want := range map[string]bool{
		"":                                   false,
		"http://127.0.0.1:9000":              true,
		"https://s3.eu-west-1.amazonaws.com": false,
		"https://minio.example.org":          true,
	} {
		c := Config{Bucket: "b", Endpoint: ep}
		if got := c.usePathStyle(); got != want {
			t.Errorf("usePathStyle(%q) = %v", ep, got)
		}
	}
	if got := escapePath("b/dir/a b+c?ü"); got != "b/dir/a%20b%2Bc%3F%C3%BC" {
		t.Errorf("escapePath: %s", got)
	}
}

func TestConfigLogValueRedactsSecrets(t *testing.T) {
	c := Config{Bucket: "b", AccessKey: "AKID", SecretKey: "very-secret", SessionToken: "tok-secret"}
	var buf strings.Builder
	slog.New(slog.NewTextHandler(&buf, nil)).Info("cfg", "s3", c)
	out := buf.String()
	if strings.Contains(out, "very-secret") || strings.Contains(out, "tok-secret") || !strings.Contains(out, "AKID") || !strings.Contains(out, "s3.secret_key=REDACTED") {
		t.Fatalf("log line: %s", out)
	}
}
