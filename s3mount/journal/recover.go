package journal

import (
	"context"
	"errors"
	"log/slog"

	"github.com/s3ftp/s3ftp/s3client"
)

// Cleaner is what Recover needs of the S3 client.
type Cleaner interface {
	AbortMultipartUpload(ctx context.Context, key, uploadID string) error
	HeadObject(ctx context.Context, key string) (s3client.ObjectInfo, error)
	DeleteObject(ctx context.Context, key string) error
}

// finishDelete does a deferred delete: the object is deleted when it is still the version recorded; an
// object replaced since (another writer took the name) or already gone is left alone.
func finishDelete(ctx context.Context, c Cleaner, r Record) (deleted bool, err error) {
	info, err := c.HeadObject(ctx, r.Key)
	switch {
	case errors.Is(err, s3client.ErrNotFound):
		return false, nil
	case err != nil:
		return false, err
	case info.ETag != r.ETag:
		return false, nil
	}
	if err := c.DeleteObject(ctx, r.Key); err != nil && !errors.Is(err, s3client.ErrNotFound) {
		return false, err
	}
	return true, nil
}

// Recover aborts every upload listed in j, and does every deferred delete listed (finishDelete), (the leftovers of a daemon of this mount that did not finish them:
// killed, crashed, or whose own abort failed) and removes each from the journal once S3 has aborted it or
// answers that it no longer exists. An upload whose abort fails otherwise stays listed for the next start. It
// logs one line per upload aborted and per failure, and a summary when the journal listed any. It returns how
// many uploads it aborted, how many were already gone (completed or aborted before the daemon died) and how
// many stay listed. Pass the plain client, not a Client wrapping j.
func Recover(ctx context.Context, j *Journal, c Cleaner, log *slog.Logger) (aborted, already, kept int) {
	if n := j.Skipped(); n > 0 {
		log.Warn("skipped unreadable lines of the upload journal (a torn last append or damage)",
			"journal", j.Path(), "lines", n)
	}
	recs := j.Pending()
	if len(recs) == 0 {
		return 0, 0, 0
	}
	for _, r := range recs {
		if r.Delete {
			deleted, err := finishDelete(ctx, c, r)
			if err != nil {
				kept++
				log.Error("a delete deferred by a previous daemon of this mount failed; kept for the next start",
					"key", r.Key, "etag", r.ETag, "err", err)
				continue
			}
			log.Info("did a delete deferred by a previous daemon of this mount (a file unlinked while open)",
				"key", r.Key, "deleted", deleted)
			if err := j.Remove(r.UploadID); err != nil {
				log.Error("removing a deferred delete from the journal failed", "key", r.Key, "err", err)
			}
			continue
		}
		err := c.AbortMultipartUpload(ctx, r.Key, r.UploadID)
		switch {
		case err == nil:
			aborted++
			log.Info("aborted a multipart upload left by a previous daemon of this mount", "key", r.Key,
				"upload_id", r.UploadID)
		case s3client.UploadGone(err):
			already++
			log.Debug("a multipart upload listed in the journal no longer exists", "key", r.Key,
				"upload_id", r.UploadID)
		default:
			kept++
			log.Error("aborting a multipart upload left by a previous daemon failed; kept for the next start",
				"key", r.Key, "upload_id", r.UploadID, "err", err)
			continue
		}
		if err := j.Remove(r.UploadID); err != nil {
			log.Error("removing an aborted upload from the journal failed", "upload_id", r.UploadID, "err", err)
		}
	}
	log.Info("leftover multipart uploads of this mount handled", "journal", j.Path(), "listed", len(recs),
		"aborted", aborted, "already_gone", already, "kept", kept)
	return aborted, already, kept
}
