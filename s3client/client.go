// Package s3client is the seam between s3mount and S3.
//
// Client is the small set of S3 operations the mount uses, bound to one bucket; keys are full object keys (the
// mount's prefix is applied by the caller). Two implementations exist: the aws-sdk-go-v2 adapter in this package
// (New), and the in-memory fake in s3fake, which counts calls and injects faults for unit tests.
//
// Errors: every implementation returns *Error, whose Kind is one of the sentinel errors below, so callers classify
// with errors.Is(err, ErrNotFound) and never look at SDK types. HEAD responses carry no error code, so the adapter
// classifies by HTTP status first and by error code second.
//
// Upload defaults (server-side encryption, storage class, canned ACL) are configured once on the client and
// applied by the implementation to every PutObject, CreateMultipartUpload and CopyObject.
//
// The adapter (aws.go) retries with the SDK's standard retryer (bounded attempts, exponential backoff with
// jitter, no client-side retry quota), uses one HTTP/1.1 transport keeping up to 128 idle connections per host,
// addresses buckets path-style for any non-AWS endpoint, and keeps the SDK's own logging off; its only log
// output is one debug line per failed call, since callers log the errors they act on. Bodies of PutObject and
// UploadPart are in memory, hence seekable and safely retried. A GetObject body is bound to the context of
// the call that opened it and reports a connection cut mid-stream as ErrUnavailable, never as a short read.
//
// Bounded waits: no S3 connection stays silent longer than Config.IdleTimeout while a request waits on it. A
// Read that receives nothing or a Write the network takes nothing of for that long fails (*IdleTimeoutError,
// kind ErrUnavailable), so a partition that drops packets without closing anything ends a request, or the
// read of a GetObject body, after IdleTimeout instead of when TCP gives up. An attempt that meets a silent
// network ends once the connect timeout (10 s), IdleTimeout or ResponseHeaderTimeout expires, so a request
// fails after at most MaxAttempts such waits plus the backoff between them; a transfer that keeps moving is
// never cut. Connections idle in the pool are closed after two thirds of IdleTimeout (see idleConn for why).
package s3client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Limits imposed by S3 on multipart uploads.
const (
	// MinPartSize is the smallest size of any part but the last.
	MinPartSize = 5 << 20
	// MaxPartSize is the largest size of one part.
	MaxPartSize = 5 << 30
	// MaxParts is the largest part number.
	MaxParts = 10000
	// MaxCopySize is the largest object CopyObject copies in one request; larger ones need UploadPartCopy.
	MaxCopySize = 5 << 30
)

// Client is the S3 API subset used by s3mount, bound to one bucket.
//
// Every method honours ctx cancellation. Implementations must be safe for concurrent use.
type Client interface {
	// HeadBucket checks that the bucket exists and is reachable with the configured credentials.
	HeadBucket(ctx context.Context) error
	// HeadObject returns the object's metadata, or an error of kind ErrNotFound.
	HeadObject(ctx context.Context, key string) (ObjectInfo, error)
	// GetObject streams length bytes starting at off (length < 0: to the end). A non-empty ifMatch makes the
	// request conditional on the object's ETag (kind ErrPrecondition when it changed). The returned info describes
	// the whole object (Size is the object's size, not the range's).
	GetObject(ctx context.Context, key string, off, length int64, ifMatch string) (io.ReadCloser, ObjectInfo, error)
	// PutObject stores body as the whole object and returns its ETag.
	PutObject(ctx context.Context, key string, body []byte, opts PutOptions) (string, error)
	// CopyObject copies src to dst in one request (src up to MaxCopySize). With opts.ReplaceMetadata the
	// destination gets opts' content type and metadata, otherwise it keeps the source's.
	CopyObject(ctx context.Context, src, dst string, opts PutOptions) (string, error)
	// DeleteObject removes key. Deleting a missing key is not an error.
	DeleteObject(ctx context.Context, key string) error
	// List returns one page of keys under prefix. With a delimiter, keys containing it after the prefix are
	// rolled up into CommonPrefixes. token is the previous page's NextToken ("" for the first page).
	List(ctx context.Context, prefix, delimiter, token string, maxKeys int32) (ListPage, error)

	// CreateMultipartUpload starts a multipart upload and returns its upload ID.
	CreateMultipartUpload(ctx context.Context, key string, opts PutOptions) (string, error)
	// UploadPart uploads one part (1-based number) and returns its ETag.
	UploadPart(ctx context.Context, key, uploadID string, number int32, body []byte) (string, error)
	// UploadPartCopy fills part number with length bytes of src starting at off. A non-empty srcETag makes the
	// copy conditional on the source's ETag.
	UploadPartCopy(ctx context.Context, key, uploadID string, number int32, src, srcETag string, off, length int64) (string, error)
	// CompleteMultipartUpload assembles the parts (sorted by number) into the object and returns its ETag.
	// With ifNoneMatch the object is stored only if the key names none (If-None-Match: *); otherwise the
	// error is of kind ErrPrecondition.
	CompleteMultipartUpload(ctx context.Context, key, uploadID string, parts []Part, ifNoneMatch bool) (string, error)
	// AbortMultipartUpload discards an upload and its parts.
	AbortMultipartUpload(ctx context.Context, key, uploadID string) error
	// ListMultipartUploads lists the unfinished uploads under prefix.
	ListMultipartUploads(ctx context.Context, prefix string) ([]Upload, error)
}

// Tagger is what a Client offers beyond Client when it can tag objects (S3 object tagging: up to 10 tags of
// short values, changed without rewriting the object). The SDK adapter and the fake implement it; wrappers
// forward it.
type Tagger interface {
	// PutObjectTagging replaces key's tags.
	PutObjectTagging(ctx context.Context, key string, tags map[string]string) error
	// GetObjectTagging returns key's tags (none: an empty map), or an error of kind ErrNotFound.
	GetObjectTagging(ctx context.Context, key string) (map[string]string, error)
}

// errNoTagging is what a forwarding wrapper returns when the client it wraps cannot tag objects.
var errNoTagging = &Error{Op: "ObjectTagging", Kind: ErrOther, Err: errors.New("the S3 client does not support object tagging")}

// PutTags forwards PutObjectTagging to c when c is a Tagger; an error of kind ErrOther otherwise.
func PutTags(ctx context.Context, c Client, key string, tags map[string]string) error {
	if t, ok := c.(Tagger); ok {
		return t.PutObjectTagging(ctx, key, tags)
	}
	return errNoTagging
}

// GetTags forwards GetObjectTagging to c when c is a Tagger; an error of kind ErrOther otherwise.
func GetTags(ctx context.Context, c Client, key string) (map[string]string, error) {
	if t, ok := c.(Tagger); ok {
		return t.GetObjectTagging(ctx, key)
	}
	return nil, errNoTagging
}

// ObjectInfo describes one object.
type ObjectInfo struct {
	Key          string
	Size         int64
	ETag         string // as S3 returns it, quotes included
	LastModified time.Time
	ContentType  string
	// Metadata holds the user metadata (x-amz-meta-*) with lower-case names and without the prefix.
	// Listings do not return metadata; it is nil there.
	Metadata map[string]string
}

// PutOptions are the per-object settings of an upload or copy.
type PutOptions struct {
	ContentType string
	// Metadata is stored as x-amz-meta-<name>; names are lower-case.
	Metadata map[string]string
	// ReplaceMetadata, for CopyObject only: use ContentType and Metadata instead of the source's.
	ReplaceMetadata bool
	// IfNoneMatch, for PutObject only: store the object only if the key names none (If-None-Match: *); an
	// existing object gives an error of kind ErrPrecondition and is left as it was. Writers that complete a
	// multipart upload pass it on to CompleteMultipartUpload.
	IfNoneMatch bool
	// Tags, for PutObject only, are stored as the object's tags (x-amz-tagging) with it.
	Tags map[string]string
}

// ListPage is one page of a listing.
type ListPage struct {
	Objects        []ObjectInfo
	CommonPrefixes []string
	// NextToken continues the listing; empty when this is the last page.
	NextToken string
}

// Part identifies one uploaded part of a multipart upload.
type Part struct {
	Number int32
	ETag   string
}

// Upload is one unfinished multipart upload.
type Upload struct {
	Key       string
	UploadID  string
	Initiated time.Time
}

// Error kinds. Every error returned by a Client wraps exactly one of them (via *Error).
var (
	ErrNotFound       = errors.New("not found")           // 404, NoSuchKey, NoSuchBucket
	ErrAccessDenied   = errors.New("access denied")       // 401, 403
	ErrPrecondition   = errors.New("precondition failed") // 412: the ETag changed
	ErrInvalidRange   = errors.New("invalid range")       // 416
	ErrNoSuchUpload   = errors.New("no such upload")      // the multipart upload is gone
	ErrTooLarge       = errors.New("entity too large")    // EntityTooLarge, EntityTooSmall, InvalidPart*
	ErrUnavailable    = errors.New("service unavailable") // network failure, 5xx, throttling after retries
	ErrCanceled       = errors.New("canceled")            // the context was canceled or timed out
	ErrOther          = errors.New("request failed")      // anything else
	errKindsForLookup = []error{ErrNotFound, ErrAccessDenied, ErrPrecondition, ErrInvalidRange, ErrNoSuchUpload,
		ErrTooLarge, ErrUnavailable, ErrCanceled, ErrOther}
)

// Error is the error type of every Client. errors.Is(err, Kind) holds; errors.Unwrap gives the cause.
//
// Tell a cancellation by the kind (KindOf(err) == ErrCanceled), never by errors.Is(err,
// context.DeadlineExceeded): the cause of an ErrUnavailable may match it too, as net/http's "timeout awaiting
// response headers" from a silent server does.
type Error struct {
	Op     string // API operation, e.g. "UploadPart"
	Key    string // object key, or "" for bucket operations
	Kind   error  // one of the Err* kinds
	Status int    // HTTP status, 0 when no response was received
	Code   string // S3 error code, when the response carried one
	Err    error  // underlying cause
}

// Error formats as "s3 UploadPart "key": service unavailable (503 SlowDown): cause".
func (e *Error) Error() string {
	s := fmt.Sprintf("s3 %s %q: %v", e.Op, e.Key, e.Kind)
	switch {
	case e.Status != 0 && e.Code != "":
		s += fmt.Sprintf(" (%d %s)", e.Status, e.Code)
	case e.Status != 0:
		s += fmt.Sprintf(" (%d)", e.Status)
	case e.Code != "":
		s += fmt.Sprintf(" (%s)", e.Code)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Is reports whether target is e's kind.
func (e *Error) Is(target error) bool { return target == e.Kind }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// UploadGone reports whether an AbortMultipartUpload failed because the upload no longer exists (completed or
// aborted meanwhile, or its bucket removed): there is nothing left to clean up.
func UploadGone(err error) bool {
	k := KindOf(err)
	return k == ErrNoSuchUpload || k == ErrNotFound
}

// KindOf returns the kind of err: one of the Err* sentinels, or nil for a nil error. Errors that did not come
// from a Client are ErrOther, except context errors, which are ErrCanceled.
func KindOf(err error) error {
	if err == nil {
		return nil
	}
	for _, k := range errKindsForLookup {
		if errors.Is(err, k) {
			return k
		}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return ErrCanceled
	}
	return ErrOther
}
