package journal

import (
	"context"
	"log/slog"

	"github.com/s3ftp/s3ftp/s3client"
)

// Aborter is what Recover needs of the S3 client.
type Aborter interface {
	AbortMultipartUpload(ctx context.Context, key, uploadID string) error
}

// Recover aborts every upload listed in j (the leftovers of a daemon of this mount that did not finish them:
// killed, crashed, or whose own abort failed) and removes each from the journal once S3 has aborted it or
// answers that it no longer exists. An upload whose abort fails otherwise stays listed for the next start. It
// logs one line per upload aborted and per failure, and a summary when the journal listed any. It returns how
// many uploads it aborted, how many were already gone (completed or aborted before the daemon died) and how
// many stay listed. Pass the plain client, not a Client wrapping j.
func Recover(ctx context.Context, j *Journal, c Aborter, log *slog.Logger) (aborted, already, kept int) {
	if n := j.Skipped(); n > 0 {
		log.Warn("skipped unreadable lines of the upload journal (a torn last append or damage)",
			"journal", j.Path(), "lines", n)
	}
	recs := j.Pending()
	if len(recs) == 0 {
		return 0, 0, 0
	}
	for _, r := range recs {
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
