package main

// Exit codes of s3mount. In daemon mode the parent exits with the code the background process reported before it
// became ready, so fstab, mount(8) and systemd see why a mount did not start.
const (
	// ExitOK: the mount is ready (daemon mode) or was unmounted cleanly (foreground).
	ExitOK = 0
	// ExitInternal: an unexpected failure not covered by the other codes.
	ExitInternal = 1
	// ExitUsage: bad command line: unknown flag or -o option, malformed value, options that Validate rejects, a
	// --metrics-addr that cannot be bound, a --state-dir that cannot be created or written.
	ExitUsage = 2
	// ExitMount: the mount point is missing, not a directory, already a mount point, FUSE refused the mount, or
	// another daemon of the same mount still runs (it holds the upload journal).
	ExitMount = 3
	// ExitS3: the bucket is missing, the credentials are refused, or the endpoint is unreachable.
	ExitS3 = 4
	// ExitDaemon: the background process could not be started, or it died before the mount became ready.
	ExitDaemon = 5
)

// exitError carries the exit code for an error that ends the command; its message is the one line printed.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// withCode wraps err with an exit code; a nil err stays nil.
func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}
