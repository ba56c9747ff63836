package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// rawClient is aws-sdk-go-v2's S3 client with its defaults (signed payloads, its own HTTP transport) except for
// the settings MinIO needs: a fixed endpoint, path-style addressing and checksums only where required. It also
// prepares and cleans up the buckets of the mount tools.
type rawClient struct {
	s3 *s3.Client
}

// newRawClient builds the client for a MinIO endpoint and its root credentials.
func newRawClient(endpoint, accessKey, secretKey string) *rawClient {
	cfg := aws.Config{
		Region:                     "us-east-1",
		Credentials:                credentials.NewStaticCredentialsProvider(accessKey, secretKey, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		RetryMaxAttempts:           3,
	}
	// The SDK keeps 10 idle connections per host by default; the parallel workloads use more streams than that,
	// and a connection dropped after each request would make the ceiling a measure of TCP set-up instead.
	cfg.HTTPClient = awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConns, t.MaxIdleConnsPerHost = 256, 128
	})
	return &rawClient{s3: s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.UsePathStyle = true
	})}
}

// put uploads size pattern bytes as key: one PutObject up to partSize, otherwise a multipart upload with
// concurrency parts in flight.
func (c *rawClient) put(ctx context.Context, bucket, key string, size, partSize int64, concurrency int) error {
	if size <= partSize {
		_, err := c.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key,
			Body: bytes.NewReader(patternSlice(0, size)), ContentLength: aws.Int64(size)})
		return err
	}
	up, err := c.s3.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key})
	if err != nil {
		return err
	}
	nparts := int((size + partSize - 1) / partSize)
	parts := make([]types.CompletedPart, nparts)
	errs := make([]error, nparts)
	sem := make(chan struct{}, concurrency)
	var wg sync.WaitGroup
	for i := range nparts {
		off := int64(i) * partSize
		n := min(partSize, size-off)
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			out, err := c.s3.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: &key, UploadId: up.UploadId,
				PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(patternSlice(off, n)),
				ContentLength: aws.Int64(n)})
			if err != nil {
				errs[i] = fmt.Errorf("part %d: %w", i+1, err)
				return
			}
			parts[i] = types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(int32(i + 1))}
		})
	}
	wg.Wait()
	if err := firstError(errs); err != nil {
		c.s3.AbortMultipartUpload(context.WithoutCancel(ctx), &s3.AbortMultipartUploadInput{Bucket: &bucket,
			Key: &key, UploadId: up.UploadId})
		return err
	}
	_, err = c.s3.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: &key,
		UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
	return err
}

// get streams the whole object in one GET and verifies it.
func (c *rawClient) get(ctx context.Context, bucket, key string, size int64) error {
	out, err := c.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		return err
	}
	defer out.Body.Close()
	v := &verifier{}
	if _, err := io.CopyBuffer(v, out.Body, make([]byte, ioBlock)); err != nil {
		return err
	}
	if v.off != size {
		return fmt.Errorf("GET returned %d bytes, want %d", v.off, size)
	}
	return nil
}

// getRanged reads the object with ranged GETs of partSize, concurrency at a time, and verifies each range.
func (c *rawClient) getRanged(ctx context.Context, bucket, key string, size, partSize int64, concurrency int) error {
	n := int((size + partSize - 1) / partSize)
	errs := make([]error, n)
	sem := make(chan struct{}, concurrency)
	var wg sync.WaitGroup
	for i := range n {
		off := int64(i) * partSize
		l := min(partSize, size-off)
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			out, err := c.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key,
				Range: aws.String(fmt.Sprintf("bytes=%d-%d", off, off+l-1))})
			if err != nil {
				errs[i] = err
				return
			}
			defer out.Body.Close()
			buf := make([]byte, l)
			if _, err := io.ReadFull(out.Body, buf); err != nil {
				errs[i] = fmt.Errorf("range at %d: %w", off, err)
				return
			}
			errs[i] = checkAt(buf, off)
		})
	}
	wg.Wait()
	return firstError(errs)
}

// headSize returns the object's size, or -1 when it does not exist.
func (c *rawClient) headSize(ctx context.Context, bucket, key string) (int64, error) {
	out, err := c.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		var re interface{ HTTPStatusCode() int }
		if errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound {
			return -1, nil
		}
		return 0, err
	}
	return aws.ToInt64(out.ContentLength), nil
}

// waitComplete polls HEAD until key exists with size bytes, and returns when it did.
func (c *rawClient) waitComplete(ctx context.Context, bucket, key string, size int64) (time.Time, error) {
	for {
		got, err := c.headSize(ctx, bucket, key)
		if err != nil {
			return time.Time{}, err
		}
		if got == size {
			return time.Now(), nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("object %s never reached %d bytes in S3 (last seen: %d): %w", key, size,
				got, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitPrefix polls ListObjectsV2 until prefix holds n objects of size bytes each (a directory marker aside),
// and returns when it did.
func (c *rawClient) waitPrefix(ctx context.Context, bucket, prefix string, n int, size int64) (time.Time, error) {
	for {
		got, err := c.countSized(ctx, bucket, prefix, size)
		if err != nil {
			return time.Time{}, err
		}
		if got == n {
			return time.Now(), nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("only %d of %d objects under %s reached S3 complete: %w", got, n,
				prefix, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// countSized counts the objects under prefix whose size is size.
func (c *rawClient) countSized(ctx context.Context, bucket, prefix string, size int64) (int, error) {
	n := 0
	p := s3.NewListObjectsV2Paginator(c.s3, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: &prefix})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return n, err
		}
		for _, o := range out.Contents {
			if aws.ToString(o.Key) != prefix && aws.ToInt64(o.Size) == size {
				n++
			}
		}
	}
	return n, nil
}

// list counts the objects under prefix with ListObjectsV2, as a good "ls -l" implementation would issue it.
func (c *rawClient) list(ctx context.Context, bucket, prefix string) (int, error) {
	n := 0
	p := s3.NewListObjectsV2Paginator(c.s3, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: &prefix,
		Delimiter: aws.String("/")})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return n, err
		}
		for _, o := range out.Contents {
			if aws.ToString(o.Key) != prefix {
				n++
			}
		}
	}
	return n, nil
}

// deletePrefix removes every object under prefix (all of the bucket for ""), and aborts its multipart uploads.
func (c *rawClient) deletePrefix(ctx context.Context, bucket, prefix string) error {
	p := s3.NewListObjectsV2Paginator(c.s3, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: &prefix})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return err
		}
		for _, o := range out.Contents {
			if _, err := c.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: o.Key}); err != nil {
				return err
			}
		}
	}
	up, err := c.s3.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &bucket, Prefix: &prefix})
	if err != nil {
		return err
	}
	for _, u := range up.Uploads {
		c.s3.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &bucket, Key: u.Key, UploadId: u.UploadId})
	}
	return nil
}
