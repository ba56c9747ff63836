package s3client

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// codeKinds maps the S3 error codes whose meaning is finer than their HTTP status (NoSuchUpload is a 404,
// EntityTooSmall a 400) or that arrive without a telling status.
var codeKinds = map[string]error{
	"NoSuchKey":    ErrNotFound,
	"NoSuchBucket": ErrNotFound,
	"NotFound":     ErrNotFound,

	"NoSuchUpload": ErrNoSuchUpload,

	"AccessDenied":          ErrAccessDenied,
	"AllAccessDisabled":     ErrAccessDenied,
	"InvalidAccessKeyId":    ErrAccessDenied,
	"SignatureDoesNotMatch": ErrAccessDenied,
	"ExpiredToken":          ErrAccessDenied,
	"InvalidToken":          ErrAccessDenied,

	"PreconditionFailed": ErrPrecondition,
	// A conditional write that raced another write of the same key (409).
	"ConditionalRequestConflict": ErrPrecondition,
	"InvalidRange":               ErrInvalidRange,

	"EntityTooLarge":   ErrTooLarge,
	"EntityTooSmall":   ErrTooLarge,
	"InvalidPart":      ErrTooLarge,
	"InvalidPartOrder": ErrTooLarge,

	"SlowDown":                   ErrUnavailable,
	"ServiceUnavailable":         ErrUnavailable,
	"InternalError":              ErrUnavailable,
	"RequestTimeout":             ErrUnavailable,
	"RequestTimeTooSkewed":       ErrUnavailable,
	"XMinioServerNotInitialized": ErrUnavailable,
}

// statusKind classifies by HTTP status; nil when the status says nothing specific.
func statusKind(status int) error {
	switch {
	case status == http.StatusNotFound:
		return ErrNotFound
	case status == http.StatusUnauthorized, status == http.StatusForbidden:
		return ErrAccessDenied
	case status == http.StatusPreconditionFailed:
		return ErrPrecondition
	case status == http.StatusRequestedRangeNotSatisfiable:
		return ErrInvalidRange
	case status == http.StatusRequestEntityTooLarge:
		return ErrTooLarge
	case status == http.StatusRequestTimeout, status == http.StatusTooManyRequests, status >= 500:
		return ErrUnavailable
	}
	return nil
}

// classify turns an error from the SDK (or from reading a response body) into an *Error. The error code wins
// where it is more specific than the status; then the status decides (HEAD responses have no code); without
// a response, context errors are ErrCanceled and transport failures (an idle timeout included) ErrUnavailable.
func classify(op, key string, err error) *Error {
	if err == nil {
		return nil
	}
	var se *Error
	if errors.As(err, &se) {
		return se
	}
	e := &Error{Op: op, Key: key, Err: err}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		e.Status = re.HTTPStatusCode()
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		e.Code = ae.ErrorCode()
	}
	if k, ok := codeKinds[e.Code]; ok {
		e.Kind = k
		return e
	}
	if k := statusKind(e.Status); k != nil {
		e.Kind = k
		return e
	}
	var canceled *smithy.CanceledError
	var reqCanceled *aws.RequestCanceledError
	var send *smithyhttp.RequestSendError
	var idle *IdleTimeoutError
	switch {
	case errors.As(err, &canceled) || errors.As(err, &reqCanceled):
		e.Kind = ErrCanceled
		return e
	case errors.As(err, &idle):
		// The connection went silent (Config.IdleTimeout), mid-request or while a GetObject body was read.
		e.Kind = ErrUnavailable
		return e
	case e.Status == 0 && errors.As(err, &send):
		// The SDK reports a done request context as a CanceledError (above), so a send error is the
		// transport's own, even one that matches context.DeadlineExceeded: net/http's "timeout awaiting
		// response headers" (Config.ResponseHeaderTimeout) from a silent server.
		e.Kind = ErrUnavailable
		return e
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		e.Kind = ErrCanceled
		return e
	}
	if e.Status == 0 && isTransport(err) {
		e.Kind = ErrUnavailable
		return e
	}
	e.Kind = ErrOther
	return e
}

// isTransport reports whether err is a failure to exchange bytes with the server.
func isTransport(err error) bool {
	var send *smithyhttp.RequestSendError
	var ne net.Error
	return errors.As(err, &send) || errors.As(err, &ne) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
