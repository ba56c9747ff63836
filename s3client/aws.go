package s3client

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/logging"
)

// SDK is the Client backed by aws-sdk-go-v2. It is safe for concurrent use.
type SDK struct {
	api    *s3.Client
	bucket string
	cfg    Config
	log    *slog.Logger
}

var _ Client = (*SDK)(nil)

// New builds the adapter. It resolves credentials lazily (the first request), so an unreachable service or
// bad credentials show up on the first call, typically HeadBucket.
func New(ctx context.Context, c Config) (*SDK, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	log := c.Logger
	if log == nil {
		log = slog.Default()
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = retry.DefaultMaxAttempts
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = retry.DefaultMaxBackoff
	}
	if c.ResponseHeaderTimeout == 0 {
		c.ResponseHeaderTimeout = DefaultResponseHeaderTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	// The dialer is installed by the s3 client option below: the SDK may replace it while resolving its
	// defaults mode, and the client stays a BuildableClient until then so that AWS_CA_BUNDLE still applies.
	httpClient := awshttp.NewBuildableClient().
		WithTransportOptions(func(t *http.Transport) {
			// Many parallel part uploads and range reads go to one host; keep their connections.
			t.MaxIdleConns = 256
			t.MaxIdleConnsPerHost = 128
			t.IdleConnTimeout = idlePoolTimeout(c.IdleTimeout)
			t.ResponseHeaderTimeout = c.ResponseHeaderTimeout
			// HTTP/1.1 only: one stream per connection keeps large transfers from sharing a window.
			t.ForceAttemptHTTP2 = false
			t.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
			t.WriteBufferSize = 256 << 10
			t.ReadBufferSize = 256 << 10
		})

	opts := []func(*config.LoadOptions) error{
		config.WithHTTPClient(httpClient),
		config.WithLogger(logging.Nop{}),
		config.WithClientLogMode(0),
		config.WithRetryer(func() aws.Retryer {
			std := retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = c.MaxAttempts
				o.MaxBackoff = c.MaxBackoff
				// No client-side retry quota: a long outage must not leave later requests without retries.
				o.RateLimiter = ratelimit.None
			})
			if c.RetryObserver == nil {
				return std
			}
			return observedRetryer{RetryerV2: std, observe: c.RetryObserver}
		}),
	}
	if c.Region != "" {
		opts = append(opts, config.WithRegion(c.Region))
	}
	if c.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(c.Profile))
	}
	if c.AccessKey != "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(c.AccessKey, c.SecretKey, c.SessionToken)))
	}
	if c.ChecksumWhenRequired {
		opts = append(opts,
			config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
			config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3client: load AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = "us-east-1"
	}
	var dialErr error
	api := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
		}
		o.UsePathStyle = c.usePathStyle()
		o.HTTPClient, dialErr = withIdleDialer(o.HTTPClient, c.IdleTimeout)
	})
	if dialErr != nil {
		return nil, dialErr
	}
	return &SDK{api: api, bucket: c.Bucket, cfg: c, log: log}, nil
}

// withIdleDialer returns hc, which must be the BuildableClient New configured, frozen with a dialer whose
// connections fail a Read or Write that makes no progress for idle (idleConn). Options run after the SDK
// resolved its defaults mode, so nothing replaces the dialer afterwards.
func withIdleDialer(hc s3.HTTPClient, idle time.Duration) (s3.HTTPClient, error) {
	b, ok := hc.(*awshttp.BuildableClient)
	if !ok {
		return nil, fmt.Errorf("s3client: HTTP client %T: cannot install the idle timeout", hc)
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return b.WithTransportOptions(func(t *http.Transport) {
		t.DialContext = idleDialer(dialer.DialContext, idle)
	}).Freeze(), nil
}

// observedRetryer is the SDK's retryer with Config.RetryObserver told of every retry. The SDK asks for a retry
// token after it decided that a failed attempt is retryable and attempts remain, right before the backoff, so
// GetRetryToken sees each retry once.
type observedRetryer struct {
	aws.RetryerV2
	observe func(op string)
}

// GetRetryToken reports the retry, then hands out the wrapped retryer's token.
func (r observedRetryer) GetRetryToken(ctx context.Context, opErr error) (func(error) error, error) {
	r.observe(awsmiddleware.GetOperationName(ctx))
	return r.RetryerV2.GetRetryToken(ctx, opErr)
}

// Bucket returns the bucket the client is bound to.
func (s *SDK) Bucket() string { return s.bucket }

// CreateBucket creates the bucket; a bucket the caller already owns is not an error. For tests and demos.
func (s *SDK) CreateBucket(ctx context.Context) error {
	_, err := s.api.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &s.bucket})
	var owned *types.BucketAlreadyOwnedByYou
	if errors.As(err, &owned) {
		err = nil
	}
	return s.done("CreateBucket", "", 0, err)
}

// done classifies err, logs it at debug level, reports the call to the observer and returns the *Error (or
// nil: a typed nil must not escape as a non-nil error).
func (s *SDK) done(op, key string, n int64, err error) error {
	e := classify(op, key, err)
	if s.cfg.Observer != nil {
		status := http.StatusOK
		if e != nil {
			status = e.Status
		}
		var oerr error
		if e != nil {
			oerr = e
		}
		s.cfg.Observer(op, status, n, oerr)
	}
	if e == nil {
		return nil
	}
	s.log.Debug("s3 request failed", "op", op, "key", key, "kind", e.Kind, "status", e.Status, "code", e.Code, "err", e.Err)
	return e
}

// HeadBucket checks that the bucket exists and is reachable.
func (s *SDK) HeadBucket(ctx context.Context) error {
	_, err := s.api.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &s.bucket})
	return s.done("HeadBucket", "", 0, err)
}

// HeadObject returns key's metadata.
func (s *SDK) HeadObject(ctx context.Context, key string) (ObjectInfo, error) {
	out, err := s.api.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		return ObjectInfo{}, s.done("HeadObject", key, 0, err)
	}
	_ = s.done("HeadObject", key, 0, nil)
	return ObjectInfo{
		Key:          key,
		Size:         aws.ToInt64(out.ContentLength),
		ETag:         aws.ToString(out.ETag),
		LastModified: aws.ToTime(out.LastModified),
		ContentType:  aws.ToString(out.ContentType),
		Metadata:     lowerMeta(out.Metadata),
	}, nil
}

// GetObject streams a range of key. off == 0 with length < 0 requests the whole object without a Range
// header (so an empty object reads fine); any other range must start below the object's size (S3 answers
// 416 otherwise). length == 0 is answered by a HEAD (with the same If-Match) and an empty body. Read errors
// on the returned body are *Error too; the body lives as long as ctx.
func (s *SDK) GetObject(ctx context.Context, key string, off, length int64, ifMatch string) (io.ReadCloser, ObjectInfo, error) {
	const op = "GetObject"
	if off < 0 {
		return nil, ObjectInfo{}, &Error{Op: op, Key: key, Kind: ErrInvalidRange, Err: fmt.Errorf("negative offset %d", off)}
	}
	if length == 0 {
		out, err := s.api.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: &key, IfMatch: optional(ifMatch)})
		if err != nil {
			return nil, ObjectInfo{}, s.done(op, key, 0, err)
		}
		if off > aws.ToInt64(out.ContentLength) {
			return nil, ObjectInfo{}, s.done(op, key, 0, &Error{Op: op, Key: key, Kind: ErrInvalidRange,
				Err: fmt.Errorf("offset %d beyond size %d", off, aws.ToInt64(out.ContentLength))})
		}
		_ = s.done(op, key, 0, nil)
		return io.NopCloser(bytes.NewReader(nil)), ObjectInfo{
			Key: key, Size: aws.ToInt64(out.ContentLength), ETag: aws.ToString(out.ETag),
			LastModified: aws.ToTime(out.LastModified), ContentType: aws.ToString(out.ContentType),
			Metadata: lowerMeta(out.Metadata),
		}, nil
	}
	in := &s3.GetObjectInput{Bucket: &s.bucket, Key: &key, IfMatch: optional(ifMatch)}
	switch {
	case off == 0 && length < 0:
	case length < 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", off))
	default:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", off, off+length-1))
	}
	out, err := s.api.GetObject(ctx, in)
	if err != nil {
		return nil, ObjectInfo{}, s.done(op, key, 0, err)
	}
	n := aws.ToInt64(out.ContentLength)
	size := n
	if total, ok := contentRangeTotal(aws.ToString(out.ContentRange)); ok {
		size = total
	}
	_ = s.done(op, key, n, nil)
	return &getBody{rc: out.Body, key: key}, ObjectInfo{
		Key: key, Size: size, ETag: aws.ToString(out.ETag), LastModified: aws.ToTime(out.LastModified),
		ContentType: aws.ToString(out.ContentType), Metadata: lowerMeta(out.Metadata),
	}, nil
}

// getBody classifies the errors of a GET response body: a connection cut mid-stream is ErrUnavailable
// (net/http reports the short body as io.ErrUnexpectedEOF), a done context ErrCanceled.
type getBody struct {
	rc  io.ReadCloser
	key string
}

func (b *getBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil && err != io.EOF {
		return n, classify("GetObject", b.key, err)
	}
	return n, err
}

func (b *getBody) Close() error { return b.rc.Close() }

// PutObject stores body as key.
func (s *SDK) PutObject(ctx context.Context, key string, body []byte, opts PutOptions) (string, error) {
	in := &s3.PutObjectInput{
		Bucket: &s.bucket, Key: &key, Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body))),
		ContentType: optional(opts.ContentType), Metadata: opts.Metadata,
		ServerSideEncryption: types.ServerSideEncryption(s.cfg.SSE), SSEKMSKeyId: optional(s.cfg.SSEKMSKeyID),
		StorageClass: types.StorageClass(s.cfg.StorageClass), ACL: types.ObjectCannedACL(s.cfg.ACL),
		IfNoneMatch: ifNoneMatchHeader(opts.IfNoneMatch),
	}
	if len(opts.Tags) > 0 {
		in.Tagging = aws.String(tagQuery(opts.Tags))
	}
	out, err := s.api.PutObject(ctx, in)
	if err != nil {
		err = s.done("PutObject", key, int64(len(body)), err)
		if opts.IfNoneMatch {
			sum := md5.Sum(body)
			return s.lostConditional(ctx, "PutObject", key, hex.EncodeToString(sum[:]), err)
		}
		return "", err
	}
	return aws.ToString(out.ETag), s.done("PutObject", key, int64(len(body)), nil)
}

// tagQuery encodes tags as the x-amz-tagging header wants them: a URL query, keys sorted.
func tagQuery(tags map[string]string) string {
	v := url.Values{}
	for k, val := range tags {
		v.Set(k, val)
	}
	return v.Encode()
}

// PutObjectTagging replaces key's tags.
func (s *SDK) PutObjectTagging(ctx context.Context, key string, tags map[string]string) error {
	set := make([]types.Tag, 0, len(tags))
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		set = append(set, types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	_, err := s.api.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: &s.bucket, Key: &key,
		Tagging: &types.Tagging{TagSet: set}})
	return s.done("PutObjectTagging", key, 0, err)
}

// GetObjectTagging returns key's tags.
func (s *SDK) GetObjectTagging(ctx context.Context, key string) (map[string]string, error) {
	out, err := s.api.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		return nil, s.done("GetObjectTagging", key, 0, err)
	}
	tags := make(map[string]string, len(out.TagSet))
	for _, t := range out.TagSet {
		tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return tags, s.done("GetObjectTagging", key, 0, nil)
}

// CopyObject copies src to dst server-side.
func (s *SDK) CopyObject(ctx context.Context, src, dst string, opts PutOptions) (string, error) {
	in := &s3.CopyObjectInput{
		Bucket: &s.bucket, Key: &dst, CopySource: aws.String(s.copySource(src)),
		ServerSideEncryption: types.ServerSideEncryption(s.cfg.SSE), SSEKMSKeyId: optional(s.cfg.SSEKMSKeyID),
		StorageClass: types.StorageClass(s.cfg.StorageClass), ACL: types.ObjectCannedACL(s.cfg.ACL),
	}
	if opts.ReplaceMetadata {
		in.MetadataDirective = types.MetadataDirectiveReplace
		in.ContentType = optional(opts.ContentType)
		in.Metadata = opts.Metadata
	}
	out, err := s.api.CopyObject(ctx, in)
	if err != nil {
		return "", s.done("CopyObject", src, 0, err)
	}
	etag := ""
	if out.CopyObjectResult != nil {
		etag = aws.ToString(out.CopyObjectResult.ETag)
	}
	return etag, s.done("CopyObject", src, 0, nil)
}

// DeleteObject removes key.
func (s *SDK) DeleteObject(ctx context.Context, key string) error {
	_, err := s.api.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &key})
	return s.done("DeleteObject", key, 0, err)
}

// List returns one ListObjectsV2 page.
func (s *SDK) List(ctx context.Context, prefix, delimiter, token string, maxKeys int32) (ListPage, error) {
	in := &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: optional(prefix), Delimiter: optional(delimiter),
		ContinuationToken: optional(token)}
	if maxKeys > 0 {
		in.MaxKeys = aws.Int32(maxKeys)
	}
	out, err := s.api.ListObjectsV2(ctx, in)
	if err != nil {
		return ListPage{}, s.done("List", prefix, 0, err)
	}
	var page ListPage
	for _, o := range out.Contents {
		page.Objects = append(page.Objects, ObjectInfo{
			Key: aws.ToString(o.Key), Size: aws.ToInt64(o.Size), ETag: aws.ToString(o.ETag),
			LastModified: aws.ToTime(o.LastModified),
		})
	}
	for _, p := range out.CommonPrefixes {
		page.CommonPrefixes = append(page.CommonPrefixes, aws.ToString(p.Prefix))
	}
	if aws.ToBool(out.IsTruncated) {
		page.NextToken = aws.ToString(out.NextContinuationToken)
	}
	return page, s.done("List", prefix, 0, nil)
}

// CreateMultipartUpload starts an upload with the configured encryption, storage class and ACL.
func (s *SDK) CreateMultipartUpload(ctx context.Context, key string, opts PutOptions) (string, error) {
	out, err := s.api.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: &s.bucket, Key: &key, ContentType: optional(opts.ContentType), Metadata: opts.Metadata,
		ServerSideEncryption: types.ServerSideEncryption(s.cfg.SSE), SSEKMSKeyId: optional(s.cfg.SSEKMSKeyID),
		StorageClass: types.StorageClass(s.cfg.StorageClass), ACL: types.ObjectCannedACL(s.cfg.ACL),
	})
	if err != nil {
		return "", s.done("CreateMultipartUpload", key, 0, err)
	}
	return aws.ToString(out.UploadId), s.done("CreateMultipartUpload", key, 0, nil)
}

// UploadPart uploads one part. The body is seekable, so the SDK can retry it.
func (s *SDK) UploadPart(ctx context.Context, key, uploadID string, number int32, body []byte) (string, error) {
	out, err := s.api.UploadPart(ctx, &s3.UploadPartInput{
		Bucket: &s.bucket, Key: &key, UploadId: &uploadID, PartNumber: aws.Int32(number),
		Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body))),
	})
	if err != nil {
		return "", s.done("UploadPart", key, int64(len(body)), err)
	}
	return aws.ToString(out.ETag), s.done("UploadPart", key, int64(len(body)), nil)
}

// UploadPartCopy fills a part from a byte range of src.
func (s *SDK) UploadPartCopy(ctx context.Context, key, uploadID string, number int32, src, srcETag string, off, length int64) (string, error) {
	const op = "UploadPartCopy"
	if off < 0 || length <= 0 {
		return "", &Error{Op: op, Key: key, Kind: ErrInvalidRange, Err: fmt.Errorf("bad copy range %d+%d", off, length)}
	}
	out, err := s.api.UploadPartCopy(ctx, &s3.UploadPartCopyInput{
		Bucket: &s.bucket, Key: &key, UploadId: &uploadID, PartNumber: aws.Int32(number),
		CopySource: aws.String(s.copySource(src)), CopySourceIfMatch: optional(srcETag),
		CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", off, off+length-1)),
	})
	if err != nil {
		return "", s.done(op, key, 0, err)
	}
	etag := ""
	if out.CopyPartResult != nil {
		etag = aws.ToString(out.CopyPartResult.ETag)
	}
	return etag, s.done(op, key, 0, nil)
}

// CompleteMultipartUpload assembles the parts, sorted by number.
func (s *SDK) CompleteMultipartUpload(ctx context.Context, key, uploadID string, parts []Part, ifNoneMatch bool) (string, error) {
	sorted := slices.SortedFunc(slices.Values(parts), func(a, b Part) int { return int(a.Number) - int(b.Number) })
	completed := make([]types.CompletedPart, len(sorted))
	for i, p := range sorted {
		completed[i] = types.CompletedPart{PartNumber: aws.Int32(p.Number), ETag: aws.String(p.ETag)}
	}
	out, err := s.api.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: &s.bucket, Key: &key, UploadId: &uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: completed},
		IfNoneMatch:     ifNoneMatchHeader(ifNoneMatch),
	})
	if err != nil {
		err = s.done("CompleteMultipartUpload", key, 0, err)
		if ifNoneMatch {
			return s.lostConditional(ctx, "CompleteMultipartUpload", key, multipartETag(sorted), err)
		}
		return "", err
	}
	return aws.ToString(out.ETag), s.done("CompleteMultipartUpload", key, 0, nil)
}

// lostConditional settles a conditional write (If-None-Match: *) whose answer was lost (err is ErrUnavailable):
// S3 may have refused it before reading the whole body and closed the connection, which the client sees as a
// reset, on every attempt. One HEAD tells: no object, err stands; an object whose ETag is ours (etag, the MD5
// S3 gives an unencrypted or SSE-S3 object), ours was stored; any other object, another writer won and the
// result is ErrPrecondition, as the answer would have said.
func (s *SDK) lostConditional(ctx context.Context, op, key, etag string, err error) (string, error) {
	if !errors.Is(err, ErrUnavailable) {
		return "", err
	}
	info, herr := s.HeadObject(ctx, key)
	switch {
	case herr != nil:
		return "", err
	case strings.Trim(info.ETag, `"`) == etag:
		s.log.Debug("conditional write: the answer was lost, the object stored is ours", "op", op, "key", key)
		return info.ETag, nil
	}
	return "", &Error{Op: op, Key: key, Kind: ErrPrecondition, Status: http.StatusPreconditionFailed,
		Err: fmt.Errorf("another writer created the object while the answer to this conditional write was lost: %w", err)}
}

// multipartETag is the ETag S3 gives the object completed from parts (sorted): the MD5 of their MD5s, then
// "-" and their number.
func multipartETag(parts []Part) string {
	h := md5.New()
	for _, p := range parts {
		b, err := hex.DecodeString(strings.Trim(p.ETag, `"`))
		if err != nil {
			return ""
		}
		h.Write(b)
	}
	return fmt.Sprintf("%s-%d", hex.EncodeToString(h.Sum(nil)), len(parts))
}

// AbortMultipartUpload discards an upload.
func (s *SDK) AbortMultipartUpload(ctx context.Context, key, uploadID string) error {
	_, err := s.api.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &s.bucket, Key: &key, UploadId: &uploadID})
	return s.done("AbortMultipartUpload", key, 0, err)
}

// ListMultipartUploads lists every unfinished upload under prefix, following the pages. The prefix is applied
// here, not by the server: MinIO only matches an upload's exact key, not a prefix of it.
func (s *SDK) ListMultipartUploads(ctx context.Context, prefix string) ([]Upload, error) {
	const op = "ListMultipartUploads"
	var ups []Upload
	in := &s3.ListMultipartUploadsInput{Bucket: &s.bucket}
	for {
		out, err := s.api.ListMultipartUploads(ctx, in)
		if err != nil {
			return nil, s.done(op, prefix, 0, err)
		}
		for _, u := range out.Uploads {
			if !strings.HasPrefix(aws.ToString(u.Key), prefix) {
				continue
			}
			ups = append(ups, Upload{Key: aws.ToString(u.Key), UploadID: aws.ToString(u.UploadId), Initiated: aws.ToTime(u.Initiated)})
		}
		if !aws.ToBool(out.IsTruncated) || (aws.ToString(out.NextKeyMarker) == "" && aws.ToString(out.NextUploadIdMarker) == "") {
			return ups, s.done(op, prefix, 0, nil)
		}
		in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
	}
}

// copySource is the x-amz-copy-source value "bucket/key", percent-encoded except for unreserved characters
// and "/", which S3 and MinIO both decode unambiguously ("+" would otherwise be read as a space).
func (s *SDK) copySource(key string) string {
	return escapePath(s.bucket + "/" + key)
}

func escapePath(p string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_.~/", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

// contentRangeTotal parses the total of "bytes 0-99/1234".
func contentRangeTotal(cr string) (int64, bool) {
	i := strings.LastIndexByte(cr, '/')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(cr[i+1:], 10, 64)
	return n, err == nil
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func lowerMeta(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range maps.All(m) {
		out[strings.ToLower(k)] = v
	}
	return out
}

// ifNoneMatchHeader is the If-None-Match value of a conditional create: "*" when asked for, nil otherwise.
func ifNoneMatchHeader(on bool) *string {
	if on {
		return aws.String("*")
	}
	return nil
}
