package s3mount

import (
	"errors"
	"strings"
	"syscall"

	"github.com/s3ftp/s3ftp/s3client"
	"github.com/s3ftp/s3ftp/s3mount/upload"
)

// errno is the one translation of errors into errnos at the FUSE boundary. go-fuse's own ToErrno does not
// unwrap, so SDK or wrapped errors must never reach it. Every error but "not found" and an interrupted request
// is logged once here, with the operation, the key and the cause.
//
//	s3client.ErrNotFound       ENOENT (not logged: lookups of missing names are normal)
//	s3client.ErrAccessDenied   EACCES
//	s3client.ErrPrecondition   ESTALE (the object changed under an open handle)
//	upload.ErrNotSequential    EINVAL (random writes are not supported)
//	upload.ErrObjectTooLarge   EFBIG  (past the largest object the part schedule allows)
//	S3 code KeyTooLongError    ENAMETOOLONG
//	S3 code *InvalidObjectName EINVAL (a key the store refuses, e.g. MinIO's XMinioInvalidObjectName)
//	s3client.ErrCanceled       EINTR  (the request was interrupted; not logged)
//	anything else              EIO
func (f *fsys) errno(op, key string, err error) syscall.Errno {
	var e syscall.Errno
	switch {
	case err == nil:
		return 0
	case errors.Is(err, s3client.ErrNotFound):
		return syscall.ENOENT
	case s3client.KindOf(err) == s3client.ErrCanceled:
		return syscall.EINTR
	case errors.Is(err, s3client.ErrAccessDenied):
		e = syscall.EACCES
	case errors.Is(err, s3client.ErrPrecondition):
		e = syscall.ESTALE
	case errors.Is(err, upload.ErrNotSequential):
		e = syscall.EINVAL
	case errors.Is(err, upload.ErrObjectTooLarge):
		e = syscall.EFBIG
	case s3Code(err) == "KeyTooLongError":
		e = syscall.ENAMETOOLONG
	case strings.HasSuffix(s3Code(err), "InvalidObjectName"): // MinIO's refusal of a key it cannot store
		e = syscall.EINVAL
	default:
		e = syscall.EIO
	}
	f.log.Error(op+" failed", "op", op, "key", key, "errno", e.Error(), "err", err)
	return e
}

// refuse logs why op on key is refused with e, and returns e. It is for refusals the mount decides itself
// (unsupported operations), as opposed to S3 errors, which go through errno.
func (f *fsys) refuse(op, key string, e syscall.Errno, why string) syscall.Errno {
	f.log.Warn(op+" refused", "op", op, "key", key, "errno", e.Error(), "why", why)
	return e
}

// s3Code returns the S3 error code carried by err, or "".
func s3Code(err error) string {
	var se *s3client.Error
	if errors.As(err, &se) {
		return se.Code
	}
	return ""
}

// uploadErrno is the errno of a failed write session, whose cause was logged where it happened (the writer,
// or openFile.failLocked):
//
//	s3client.ErrPrecondition of an O_EXCL create (excl)   EEXIST (another host created the name first)
//	upload.ErrNotSequential                              EINVAL
//	upload.ErrObjectTooLarge                             EFBIG
//	s3client.ErrCanceled                                 EINTR
//	anything else                                        EIO
func uploadErrno(err error, excl bool) syscall.Errno {
	switch {
	case excl && errors.Is(err, s3client.ErrPrecondition):
		return syscall.EEXIST
	case errors.Is(err, upload.ErrNotSequential):
		return syscall.EINVAL
	case errors.Is(err, upload.ErrObjectTooLarge):
		return syscall.EFBIG
	case s3client.KindOf(err) == s3client.ErrCanceled && !errors.Is(err, upload.ErrAborted):
		return syscall.EINTR
	}
	return syscall.EIO
}
