package sftpfront

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"syscall"

	"github.com/pkg/sftp"
	"github.com/s3ftp/s3ftp/ftpfront"
)

// Errors sent to clients for conditions that have no SFTP v3 status of their own. pkg/sftp sends an error's
// text as the status message; these name no path.
var (
	errStorageUnavailable = fmt.Errorf("%w: storage unavailable, try again later", sftp.ErrSSHFxFailure)
	errExists             = fmt.Errorf("%w: file exists", sftp.ErrSSHFxFailure)
	errNotEmpty           = fmt.Errorf("%w: directory not empty", sftp.ErrSSHFxFailure)
	errIsDir              = fmt.Errorf("%w: is a directory", sftp.ErrSSHFxFailure)
	errNotDir             = fmt.Errorf("%w: not a directory", sftp.ErrSSHFxFailure)
	errTooManyUploads     = fmt.Errorf("%w: too many uploads open on this connection", sftp.ErrSSHFxFailure)
	errAccountChanged     = fmt.Errorf("%w: account removed or changed, log in again", sftp.ErrSSHFxPermissionDenied)
	errUnsupported        = sftp.ErrSSHFxOpUnsupported
	errDenied             = sftp.ErrSSHFxPermissionDenied
)

// toStatus is the one error → SFTP status table: every error a handler returns to pkg/sftp passes through it.
// Known conditions map to their status (with a fixed text); a *WriteOrderError keeps its text; anything else is
// logged with its cause and sent as a bare SSH_FX_FAILURE, since its text may name a real path. io.EOF passes
// unchanged (pkg/sftp turns it into SSH_FX_EOF).
func toStatus(log *slog.Logger, op, p string, err error) error {
	var we *WriteOrderError
	switch {
	case err == nil:
		return nil
	case err == io.EOF:
		return err
	case errors.Is(err, ftpfront.ErrStorageUnavailable):
		log.Warn("sftp: storage unavailable", "op", op, "path", p, "err", err)
		return errStorageUnavailable
	case errors.As(err, &we):
		return fmt.Errorf("%w: %s", sftp.ErrSSHFxFailure, we.Error())
	case errors.Is(err, errIncomplete):
		return fmt.Errorf("%w: %s", sftp.ErrSSHFxFailure, err.Error())
	case errors.Is(err, sftp.ErrSSHFxFailure), errors.Is(err, sftp.ErrSSHFxOpUnsupported),
		errors.Is(err, sftp.ErrSSHFxPermissionDenied), errors.Is(err, sftp.ErrSSHFxNoSuchFile):
		return err // already a status from this package
	case errors.Is(err, fs.ErrNotExist):
		return sftp.ErrSSHFxNoSuchFile
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EROFS):
		return errDenied
	case errors.Is(err, fs.ErrExist):
		return errExists
	case errors.Is(err, syscall.ENOTEMPTY):
		return errNotEmpty
	case errors.Is(err, syscall.EISDIR):
		return errIsDir
	case errors.Is(err, syscall.ENOTDIR):
		return errNotDir
	case errors.Is(err, syscall.ENOTSUP), errors.Is(err, syscall.ENOSYS):
		return errUnsupported
	}
	log.Warn("sftp: operation failed", "op", op, "path", p, "err", err)
	return sftp.ErrSSHFxFailure
}
