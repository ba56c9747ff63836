package ftpfront

// Mount guard.
//
// In production the served root is an s3mount mount point. When the daemon dies its mount is removed (the
// s3mount unmount watcher) and the path becomes the plain local directory underneath: an upload would land on
// local disk, be answered 226, and vanish from view once s3mount mounts again on top. A MountGuard prevents that:
// every file operation first checks that the root is still a mount point, and while it is not, fails with
// ErrStorageUnavailable, which sessions answer with 451 (a transient error clients retry). The same check makes
// the health check fail (HealthHandler), so a load balancer drains the host too.
//
// The check is two stats: the root and its parent differ in device number exactly when the root is a mount
// point. It cannot tell which file system is mounted: anything mounted on the root passes.
//
// Window: the check and the operation it guards are two steps. An unmount between them lets that one operation
// reach the local directory. OpenFile checks again after opening and, when the root is gone by then, closes the
// file and removes it if the open created it on the local directory (an empty file that the path still names),
// so a STOR cannot leave a file under the mount point; MKD, RNTO and the other operations have no second check.

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/afero"
)

// ErrStorageUnavailable is the error of every file operation a MountGuard refuses: the served root is not a
// mount point (or cannot be examined). Sessions answer it with 451 and a fixed text.
var ErrStorageUnavailable = errors.New("storage unavailable")

// errNotMounted is the cause given when root is not a mount point.
var errNotMounted = errors.New("root is no longer a mount point (file system unmounted?)")

// RequireMount says whether the served root must be a mount point.
type RequireMount string

// RequireMount values.
const (
	// RequireMountAuto requires a mount iff the root is a mount point when the guard is built.
	RequireMountAuto RequireMount = "auto"
	// RequireMountTrue requires a mount; building the guard fails when the root is not a mount point.
	RequireMountTrue RequireMount = "true"
	// RequireMountFalse serves whatever is at the root.
	RequireMountFalse RequireMount = "false"
)

// ParseRequireMount parses "auto" or a boolean ("true", "false", "1", "0", ...).
func ParseRequireMount(s string) (RequireMount, error) {
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, "auto") {
		return RequireMountAuto, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return "", fmt.Errorf("%q: want auto, true or false", s)
	}
	if b {
		return RequireMountTrue, nil
	}
	return RequireMountFalse, nil
}

// MountGuard refuses file operations while the served root is not a mount point (see the section comment). A nil
// *MountGuard guards nothing: Check returns nil and FsFactory returns its argument. Safe for concurrent use.
type MountGuard struct {
	root      string
	log       *slog.Logger
	isMounted func(dir string) (bool, error) // isMountPoint; tests replace it

	down atomic.Bool // the last check failed; the transitions are logged once per outage
}

// NewMountGuard resolves mode against root as it is now. It returns a nil guard when no mount is required
// (RequireMountFalse, or RequireMountAuto and root is not a mount point), and an error when root cannot be
// examined or mode is RequireMountTrue and root is not a mount point. A nil log means slog.Default().
func NewMountGuard(root string, mode RequireMount, log *slog.Logger) (*MountGuard, error) {
	if log == nil {
		log = slog.Default()
	}
	switch mode {
	case RequireMountFalse:
		return nil, nil
	case RequireMountAuto, RequireMountTrue:
	default:
		return nil, fmt.Errorf("require mount %q: want auto, true or false", mode)
	}
	mp, err := isMountPoint(root)
	if err != nil {
		return nil, fmt.Errorf("root %s: cannot tell whether it is a mount point: %w", root, err)
	}
	if !mp {
		if mode == RequireMountTrue {
			return nil, fmt.Errorf("root %s is not a mount point (mount s3mount there first, or set require-mount to auto or false)", root)
		}
		return nil, nil
	}
	return &MountGuard{root: root, log: log, isMounted: isMountPoint}, nil
}

// isMountPoint reports whether dir is the root of a mounted file system: its device differs from its parent's.
func isMountPoint(dir string) (bool, error) {
	var st, parent syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return false, err
	}
	if err := syscall.Stat(dir+"/..", &parent); err != nil { // resolved by the kernel, across the mount
		return false, err
	}
	return st.Dev != parent.Dev, nil
}

// Check returns nil while the root is a mount point, and an error wrapping ErrStorageUnavailable (and naming the
// cause) otherwise. The first failure of an outage is logged as a warning, the first success after it as info.
func (g *MountGuard) Check() error {
	if g == nil {
		return nil
	}
	mp, err := g.isMounted(g.root)
	if err == nil && mp {
		if g.down.CompareAndSwap(true, false) {
			g.log.Info("served root is mounted again; file operations resume", "root", g.root)
		}
		return nil
	}
	cause := errNotMounted
	if err != nil {
		cause = fmt.Errorf("root: %w", err)
	}
	if g.down.CompareAndSwap(false, true) {
		g.log.Warn("served root is not mounted; file operations are refused with 451 until it is mounted again",
			"root", g.root, "err", cause)
	}
	return fmt.Errorf("%w: %w", ErrStorageUnavailable, cause)
}

// FsFactory wraps next: every file system it returns checks the guard before each operation. When the root is not
// mounted at login, the user's file system is opened by next at its first operation after the root is mounted
// again, so the login succeeds and the commands get 451 (a 530 would read as a wrong password, which clients do
// not retry). A nil guard returns next.
func (g *MountGuard) FsFactory(next FsFactory) FsFactory {
	if g == nil {
		return next
	}
	return func(u *User) (afero.Fs, error) {
		gf := &guardFs{g: g, open: func() (afero.Fs, error) { return next(u) }}
		if g.Check() == nil {
			base, err := next(u)
			if err != nil {
				return nil, err
			}
			gf.base = base
		}
		return gf, nil
	}
}

// guardFs is the afero.Fs a MountGuard hands out: the user's file system behind a check of the guard.
type guardFs struct {
	g    *MountGuard
	open func() (afero.Fs, error) // opens the user's file system

	mu   sync.Mutex
	base afero.Fs // guarded by mu; nil until opened
}

var _ afero.Fs = (*guardFs)(nil)

// fs checks the guard and returns the user's file system, opening it on first use.
func (f *guardFs) fs() (afero.Fs, error) {
	if err := f.g.Check(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.base == nil {
		base, err := f.open()
		if err != nil {
			return nil, fmt.Errorf("open the user's file system: %w", err)
		}
		f.base = base
	}
	return f.base, nil
}

// do checks the guard and runs op on the user's file system.
func (f *guardFs) do(op func(afero.Fs) error) error {
	base, err := f.fs()
	if err != nil {
		return err
	}
	return op(base)
}

// Name returns "MountGuardFs".
func (f *guardFs) Name() string { return "MountGuardFs" }

// Create creates or truncates name.
func (f *guardFs) Create(name string) (afero.File, error) {
	return f.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o666)
}

// Open opens name for reading.
func (f *guardFs) Open(name string) (afero.File, error) {
	return f.OpenFile(name, os.O_RDONLY, 0)
}

// OpenFile checks the guard before and after the open (see the section comment for why and what it removes).
func (f *guardFs) OpenFile(name string, flag int, perm os.FileMode) (afero.File, error) {
	base, err := f.fs()
	if err != nil {
		return nil, err
	}
	file, err := base.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	if err := f.g.Check(); err != nil {
		f.discard(base, name, file, flag)
		return nil, err
	}
	return file, nil
}

// discard closes a file opened while the root was being unmounted, and removes it when the open created it under
// the mount point: O_CREATE was given, it is empty, and name still names that very file (a file opened on the
// mount before it went away is not what the path names now).
func (f *guardFs) discard(base afero.Fs, name string, file afero.File, flag int) {
	fi, statErr := file.Stat()
	if err := file.Close(); err != nil {
		f.g.log.Debug("closing a file opened during an unmount failed", "path", name, "err", err)
	}
	if flag&os.O_CREATE == 0 || statErr != nil || !fi.Mode().IsRegular() || fi.Size() != 0 {
		return
	}
	now, err := base.Stat(name)
	if err != nil || !os.SameFile(fi, now) {
		return
	}
	if err := base.Remove(name); err != nil {
		f.g.log.Warn("cannot remove a file created under the unmounted root", "path", name, "err", err)
		return
	}
	f.g.log.Info("removed a file created under the unmounted root", "path", name)
}

// Mkdir creates a directory.
func (f *guardFs) Mkdir(name string, perm os.FileMode) error {
	return f.do(func(base afero.Fs) error { return base.Mkdir(name, perm) })
}

// MkdirAll creates a directory and its parents.
func (f *guardFs) MkdirAll(name string, perm os.FileMode) error {
	return f.do(func(base afero.Fs) error { return base.MkdirAll(name, perm) })
}

// Remove removes a file or an empty directory.
func (f *guardFs) Remove(name string) error {
	return f.do(func(base afero.Fs) error { return base.Remove(name) })
}

// RemoveAll removes name and everything below it.
func (f *guardFs) RemoveAll(name string) error {
	return f.do(func(base afero.Fs) error { return base.RemoveAll(name) })
}

// Rename renames a directory entry.
func (f *guardFs) Rename(oldname, newname string) error {
	return f.do(func(base afero.Fs) error { return base.Rename(oldname, newname) })
}

// Stat returns the file's information.
func (f *guardFs) Stat(name string) (os.FileInfo, error) {
	base, err := f.fs()
	if err != nil {
		return nil, err
	}
	return base.Stat(name)
}

// Chmod changes the mode.
func (f *guardFs) Chmod(name string, mode os.FileMode) error {
	return f.do(func(base afero.Fs) error { return base.Chmod(name, mode) })
}

// Chown changes the owner.
func (f *guardFs) Chown(name string, uid, gid int) error {
	return f.do(func(base afero.Fs) error { return base.Chown(name, uid, gid) })
}

// Chtimes sets the access and modification times.
func (f *guardFs) Chtimes(name string, atime, mtime time.Time) error {
	return f.do(func(base afero.Fs) error { return base.Chtimes(name, atime, mtime) })
}
