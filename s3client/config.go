package s3client

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"
)

// Config configures the aws-sdk-go-v2 adapter (New).
type Config struct {
	// Bucket is the bucket every call addresses. Required.
	Bucket string
	// Endpoint is the service URL, e.g. "http://127.0.0.1:9000"; empty means AWS S3. A non-AWS endpoint
	// implies path-style addressing.
	Endpoint string
	// Region is the signing region. Empty: the SDK chain's region (AWS_REGION, the profile), else us-east-1.
	Region string
	// Profile selects a shared-config profile; empty uses AWS_PROFILE or "default".
	Profile string
	// PathStyle forces path-style addressing (bucket in the path instead of the host name).
	PathStyle bool

	// AccessKey, SecretKey and SessionToken are optional static credentials. When AccessKey is empty the SDK
	// default chain is used: environment, shared profile, web identity, ECS, IMDS.
	AccessKey, SecretKey, SessionToken string

	// ChecksumWhenRequired sends and validates flexible checksums only when an operation requires them, which
	// S3-compatible servers such as MinIO need. DefaultConfig sets it.
	ChecksumWhenRequired bool
	// MaxAttempts bounds the attempts per request, the first included (the SDK's standard retryer with
	// exponential backoff and jitter). 0 means 3.
	MaxAttempts int
	// MaxBackoff bounds the delay between attempts. 0 means 20s.
	MaxBackoff time.Duration
	// ResponseHeaderTimeout bounds the wait for a response's headers once the request was sent. An S3 that
	// accepts connections but stays silent then fails the attempt, which is retried like any transport error,
	// instead of hanging a FUSE request for minutes. S3 answers slow operations (CopyObject,
	// CompleteMultipartUpload) with early headers, so the bound does not limit their duration. 0 means
	// DefaultResponseHeaderTimeout.
	ResponseHeaderTimeout time.Duration
	// IdleTimeout bounds the silence of every S3 connection: a read that receives nothing, or a write the
	// network accepts nothing of, for this long fails with an *IdleTimeoutError of kind ErrUnavailable, which
	// the retryer retries like any transport error. It ends a request (or a GetObject body being read) on a
	// partition that drops packets and closes nothing, which TCP alone gives up on only after many minutes.
	// A slow transfer that keeps moving is not limited, nor is a GetObject body that is not being read. It
	// also bounds the wait for a response's headers: the smaller of it and ResponseHeaderTimeout applies.
	// 0 means DefaultIdleTimeout.
	IdleTimeout time.Duration

	// SSE is the server-side encryption applied to every write: "", "AES256" or "aws:kms".
	SSE string
	// SSEKMSKeyID is the KMS key for SSE "aws:kms"; empty uses the bucket's default key.
	SSEKMSKeyID string
	// StorageClass applied to every write, e.g. "STANDARD_IA"; empty leaves the bucket default.
	StorageClass string
	// ACL is the canned ACL applied to every write, e.g. "bucket-owner-full-control"; empty sends none.
	ACL string

	// Logger receives the adapter's debug lines (one per failed request). nil means slog.Default(). The SDK's
	// own logging is always off.
	Logger *slog.Logger
	// Observer, when set, is called once per API call after retries, with the operation name, the final HTTP
	// status (200 for any success, 0 when no response arrived), the payload bytes sent (uploads) or announced (GetObject's
	// Content-Length), and the classified error. It must be fast and safe for concurrent use.
	Observer func(op string, status int, bytes int64, err error)
	// RetryObserver, when set, is called each time the SDK's retryer decides to retry a failed attempt (so
	// attempts beyond the first of every call), with the operation name, before the backoff. It must be fast
	// and safe for concurrent use.
	RetryObserver func(op string)
}

// DefaultResponseHeaderTimeout is the ResponseHeaderTimeout of a Config that leaves it 0.
const DefaultResponseHeaderTimeout = 30 * time.Second

// DefaultIdleTimeout is the IdleTimeout of a Config that leaves it 0. AWS S3 answers CompleteMultipartUpload
// and CopyObject with early headers and documents periodic whitespace while it works, so slow operations keep
// their connection busy; a server that stays silent longer while it processes a request needs a larger value.
const DefaultIdleTimeout = 30 * time.Second

// DefaultConfig returns a Config for bucket with the recommended defaults.
func DefaultConfig(bucket string) Config {
	return Config{
		Bucket:               bucket,
		ChecksumWhenRequired: true,
		MaxAttempts:          3,
		MaxBackoff:           20 * time.Second,
		// The SDK's default transport has none: a silent server holds a request until the OS gives up.
		ResponseHeaderTimeout: DefaultResponseHeaderTimeout,
		IdleTimeout:           DefaultIdleTimeout,
	}
}

// Validate reports the first invalid setting.
func (c *Config) Validate() error {
	if c.Bucket == "" {
		return errors.New("s3client: bucket is required")
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("s3client: endpoint %q is not an http(s) URL", c.Endpoint)
		}
	}
	switch c.SSE {
	case "", "AES256", "aws:kms":
	default:
		return fmt.Errorf("s3client: sse %q: want AES256 or aws:kms", c.SSE)
	}
	if c.SSEKMSKeyID != "" && c.SSE != "aws:kms" {
		return errors.New("s3client: an SSE KMS key ID needs sse aws:kms")
	}
	if (c.AccessKey == "") != (c.SecretKey == "") {
		return errors.New("s3client: static credentials need both an access key and a secret key")
	}
	if c.MaxAttempts < 0 || c.MaxBackoff < 0 || c.ResponseHeaderTimeout < 0 || c.IdleTimeout < 0 {
		return errors.New("s3client: max attempts, max backoff, the response header timeout and the idle timeout must not be negative")
	}
	return nil
}

// usePathStyle reports whether requests put the bucket in the path: forced, or any endpoint that is not AWS.
func (c *Config) usePathStyle() bool {
	if c.PathStyle {
		return true
	}
	if c.Endpoint == "" {
		return false
	}
	u, err := url.Parse(c.Endpoint)
	if err != nil {
		return true
	}
	h := strings.ToLower(u.Hostname())
	return !strings.HasSuffix(h, ".amazonaws.com") && !strings.HasSuffix(h, ".amazonaws.com.cn")
}

// LogValue describes the configuration for logs, with the secret key and session token redacted.
func (c Config) LogValue() slog.Value {
	redact := func(s string) string {
		if s == "" {
			return ""
		}
		return "REDACTED"
	}
	return slog.GroupValue(
		slog.String("bucket", c.Bucket), slog.String("endpoint", c.Endpoint), slog.String("region", c.Region),
		slog.String("profile", c.Profile), slog.Bool("path_style", c.usePathStyle()),
		slog.String("access_key", c.AccessKey), slog.String("secret_key", redact(c.SecretKey)),
		slog.String("session_token", redact(c.SessionToken)),
		slog.Bool("checksum_when_required", c.ChecksumWhenRequired), slog.Int("max_attempts", c.MaxAttempts),
		slog.Duration("max_backoff", c.MaxBackoff),
		slog.Duration("response_header_timeout", c.ResponseHeaderTimeout), slog.Duration("idle_timeout", c.IdleTimeout),
		slog.String("sse", c.SSE), slog.String("sse_kms_key_id", c.SSEKMSKeyID),
		slog.String("storage_class", c.StorageClass), slog.String("acl", c.ACL),
	)
}
