package journal

import (
	"context"
	"log/slog"

	"github.com/s3ftp/s3ftp/s3client"
)

// Client is an s3client.Client that records the multipart uploads made through it in a Journal. Every other
// call goes to the wrapped client unchanged.
//
// A record that cannot be written (a full disk, say) is logged and does not fail the S3 call: the upload goes
// on, and only its clean-up after a crash falls to the bucket's lifecycle rule.
type Client struct {
	s3client.Client
	j   *Journal
	log *slog.Logger
}

// Wrap returns c recording its multipart uploads in j; failures to record are logged on log.
func Wrap(c s3client.Client, j *Journal, log *slog.Logger) *Client {
	return &Client{Client: c, j: j, log: log}
}

// CreateMultipartUpload starts the upload and records it.
func (c *Client) CreateMultipartUpload(ctx context.Context, key string, opts s3client.PutOptions) (string, error) {
	id, err := c.Client.CreateMultipartUpload(ctx, key, opts)
	if err != nil {
		return id, err
	}
	if jerr := c.j.Add(key, id); jerr != nil {
		c.log.Error("recording a multipart upload in the journal failed: a crash would leave it to the lifecycle rule",
			"key", key, "upload_id", id, "err", jerr)
	}
	return id, nil
}

// CompleteMultipartUpload assembles the object; the record goes once the upload is complete or gone.
func (c *Client) CompleteMultipartUpload(ctx context.Context, key, uploadID string, parts []s3client.Part, ifNoneMatch bool) (string, error) {
	etag, err := c.Client.CompleteMultipartUpload(ctx, key, uploadID, parts, ifNoneMatch)
	if err == nil || s3client.KindOf(err) == s3client.ErrNoSuchUpload {
		c.remove(key, uploadID)
	}
	return etag, err
}

// AbortMultipartUpload discards the upload; the record goes once the upload is aborted or gone.
func (c *Client) AbortMultipartUpload(ctx context.Context, key, uploadID string) error {
	err := c.Client.AbortMultipartUpload(ctx, key, uploadID)
	if err == nil || s3client.UploadGone(err) {
		c.remove(key, uploadID)
	}
	return err
}

// DeferDelete records that the object key at etag is to be deleted later, so that a daemon killed before
// doing it leaves the delete to the next start (Recover). It returns the record's ID for DeleteDone; a record
// that cannot be written is logged and returns "".
func (c *Client) DeferDelete(key, etag string) string {
	id, err := c.j.AddDelete(key, etag)
	if err != nil {
		c.log.Error("recording a deferred delete in the journal failed: a crash before it is done leaves the object",
			"key", key, "err", err)
		return ""
	}
	return id
}

// DeleteDone removes the record DeferDelete returned.
func (c *Client) DeleteDone(id string) {
	if id != "" {
		c.remove("", id)
	}
}

// PutObjectTagging forwards to the wrapped client (s3client.Tagger).
func (c *Client) PutObjectTagging(ctx context.Context, key string, tags map[string]string) error {
	return s3client.PutTags(ctx, c.Client, key, tags)
}

// GetObjectTagging forwards to the wrapped client (s3client.Tagger).
func (c *Client) GetObjectTagging(ctx context.Context, key string) (map[string]string, error) {
	return s3client.GetTags(ctx, c.Client, key)
}

func (c *Client) remove(key, uploadID string) {
	if err := c.j.Remove(uploadID); err != nil {
		c.log.Error("removing a finished multipart upload from the journal failed: the next start tries to abort it",
			"key", key, "upload_id", uploadID, "err", err)
	}
}
