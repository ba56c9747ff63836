// Package s3metrics connects s3mount's S3 client to the metrics package: the adapter's Observer feeds the request
// and byte counters, and a Client wrapper keeps s3mount_parts_in_flight. It is separate from metrics so that
// metrics depends on nothing (ftpfront links it without the AWS SDK).
package s3metrics

import (
	"context"

	"github.com/s3ftp/s3ftp/internal/metrics"
	"github.com/s3ftp/s3ftp/s3client"
)

// Wire registers the s3mount metrics in r and makes cfg's Observer and RetryObserver feed them; observers already
// set are still called, after the metrics. Call it before s3client.New(ctx, *cfg):
//
//	m := s3metrics.Wire(reg, &s3cfg)
func Wire(r *metrics.Registry, cfg *s3client.Config) *metrics.S3Mount {
	m := metrics.NewS3Mount(r)
	if nextRetry := cfg.RetryObserver; nextRetry == nil {
		cfg.RetryObserver = m.ObserveRetry
	} else {
		cfg.RetryObserver = func(op string) {
			m.ObserveRetry(op)
			nextRetry(op)
		}
	}
	next := cfg.Observer
	if next == nil {
		cfg.Observer = m.ObserveS3
		return m
	}
	cfg.Observer = func(op string, status int, bytes int64, err error) {
		m.ObserveS3(op, status, bytes, err)
		next(op, status, bytes, err)
	}
	return m
}

// Client returns c with UploadPart counted in m.PartsInFlight while it runs. Every other method is c's own.
//
//	client = s3metrics.Client(client, m)
func Client(c s3client.Client, m *metrics.S3Mount) s3client.Client {
	return partCounter{Client: c, m: m}
}

// partCounter embeds the wrapped client, so only UploadPart is intercepted.
type partCounter struct {
	s3client.Client
	m *metrics.S3Mount
}

// UploadPart implements s3client.Client.
func (p partCounter) UploadPart(ctx context.Context, key, uploadID string, number int32, body []byte) (string, error) {
	p.m.PartsInFlight.Inc()
	defer p.m.PartsInFlight.Dec()
	return p.Client.UploadPart(ctx, key, uploadID, number, body)
}

// PutObjectTagging forwards to the wrapped client (s3client.Tagger).
func (p partCounter) PutObjectTagging(ctx context.Context, key string, tags map[string]string) error {
	return s3client.PutTags(ctx, p.Client, key, tags)
}

// GetObjectTagging forwards to the wrapped client (s3client.Tagger).
func (p partCounter) GetObjectTagging(ctx context.Context, key string) (map[string]string, error) {
	return s3client.GetTags(ctx, p.Client, key)
}
