package ftpfront

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/afero"
)

// FsFactory returns the file system a logged-in user's session works on. Paths given to it are virtual:
// "/" is the user's home. The session never passes a path containing ".." (it cleans every path first).
type FsFactory func(u *User) (afero.Fs, error)

// JailFs serves files under an OS directory. It is afero.BasePathFs (which maps "/" to home and refuses
// ".." escapes) plus a symlink check: any operation whose path, after resolving symlinks, leaves home (or goes
// through a dangling symlink, which a create would follow) fails with a *fs.PathError carrying ErrPermission.
// Errors name the virtual path, never the real one.
//
// The name HealthDir at the top of the home is reserved for the health probe (HealthHandler writes its files in
// HealthDir at the served root, which is the home of users whose home is "/"). JailFs hides it: Readdir and
// Readdirnames of the home omit it, and every operation on it or on a path inside it, directly or through a
// symlink, fails with a *fs.PathError carrying ErrNotExist, as if it did not exist (creating it included).
//
// Limits: the check and the operation are two steps, so a local user who can swap a directory for a symlink
// between them could still escape; the FTP users themselves cannot create symlinks.
type JailFs struct {
	base   afero.Fs
	home   string // absolute, symlinks resolved
	hidden string // home/HealthDir
}

var _ afero.Fs = (*JailFs)(nil)

// NewJailFs returns a JailFs rooted at home, which must be an existing directory.
func NewJailFs(home string) (*JailFs, error) {
	abs, err := filepath.Abs(home)
	if err != nil {
		return nil, err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("home %s: %w", home, err)
	}
	st, err := os.Stat(real)
	if err != nil {
		return nil, fmt.Errorf("home %s: %w", home, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("home %s is not a directory", home)
	}
	return &JailFs{base: afero.NewBasePathFs(afero.NewOsFs(), real), home: real, hidden: filepath.Join(real, HealthDir)}, nil
}

// DefaultFsFactory opens a JailFs at the user's home, read-only for ReadOnly users.
func DefaultFsFactory(u *User) (afero.Fs, error) {
	j, err := NewJailFs(u.Home)
	if err != nil {
		return nil, err
	}
	if u.ReadOnly {
		return readOnlyJail{Fs: afero.NewReadOnlyFs(j), j: j}, nil
	}
	return j, nil
}

func (j *JailFs) within(p string) bool {
	return p == j.home || strings.HasPrefix(p, j.home+string(filepath.Separator))
}

// isHidden reports whether the real path p is the reserved HealthDir or inside it.
func (j *JailFs) isHidden(p string) bool {
	return p == j.hidden || strings.HasPrefix(p, j.hidden+string(filepath.Separator))
}

// check refuses name when it resolves outside the jail, and reports a reserved name (see JailFs) as not existing.
// With follow false only the parent directory is resolved (the operation acts on the directory entry itself:
// remove, rename, lstat). It returns the real path name resolves to when it exists ("" otherwise).
func (j *JailFs) check(op, name string, follow bool) (string, error) {
	clean := path.Clean("/" + name)
	p := filepath.Join(j.home, filepath.FromSlash(clean))
	if j.isHidden(p) {
		return "", &fs.PathError{Op: op, Path: clean, Err: fs.ErrNotExist}
	}
	if !follow {
		p = filepath.Dir(p)
	}
	first := true
	for {
		if _, err := os.Lstat(p); err == nil {
			r, err := filepath.EvalSymlinks(p)
			if err != nil || !j.within(r) {
				return "", &fs.PathError{Op: op, Path: clean, Err: fs.ErrPermission}
			}
			if j.isHidden(r) {
				return "", &fs.PathError{Op: op, Path: clean, Err: fs.ErrNotExist}
			}
			if !first || !follow {
				r = ""
			}
			return r, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", &fs.PathError{Op: op, Path: clean, Err: unwrapPathErr(err)}
		}
		parent := filepath.Dir(p)
		if parent == p || !j.within(parent) {
			return "", &fs.PathError{Op: op, Path: clean, Err: fs.ErrPermission}
		}
		p = parent
		first = false
	}
}

func unwrapPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}

// virt rewrites an error from the base file system so that it names the virtual path only.
func virt(op, name string, err error) error {
	if err == nil {
		return nil
	}
	return &fs.PathError{Op: op, Path: path.Clean("/" + name), Err: unwrapPathErr(err)}
}

// Name returns "JailFs".
func (j *JailFs) Name() string { return "JailFs" }

// Create creates or truncates name.
func (j *JailFs) Create(name string) (afero.File, error) {
	return j.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o666)
}

// Mkdir creates a directory.
func (j *JailFs) Mkdir(name string, perm os.FileMode) error {
	if _, err := j.check("mkdir", name, true); err != nil {
		return err
	}
	return virt("mkdir", name, j.base.Mkdir(name, perm))
}

// MkdirAll creates a directory and its parents.
func (j *JailFs) MkdirAll(name string, perm os.FileMode) error {
	if _, err := j.check("mkdir", name, true); err != nil {
		return err
	}
	return virt("mkdir", name, j.base.MkdirAll(name, perm))
}

// Open opens name for reading.
func (j *JailFs) Open(name string) (afero.File, error) {
	return j.OpenFile(name, os.O_RDONLY, 0)
}

// OpenFile opens name with the given flags.
func (j *JailFs) OpenFile(name string, flag int, perm os.FileMode) (afero.File, error) {
	real, err := j.check("open", name, true)
	if err != nil {
		return nil, err
	}
	f, err := j.base.OpenFile(name, flag, perm)
	if err != nil {
		return nil, virt("open", name, err)
	}
	if real == j.home {
		return &hidingDir{File: f, hidden: HealthDir}, nil
	}
	return f, nil
}

// hidingDir is the home directory opened through a JailFs: its listings omit the reserved name.
type hidingDir struct {
	afero.File
	hidden string
}

// Readdir returns the entries but the hidden one. With count > 0 it returns at most count entries and reads on
// when the hidden entry was the only one read, so an empty result with a nil error never ends a listing early.
func (d *hidingDir) Readdir(count int) ([]os.FileInfo, error) {
	for {
		fis, err := d.File.Readdir(count)
		out := fis[:0]
		for _, fi := range fis {
			if fi.Name() != d.hidden {
				out = append(out, fi)
			}
		}
		if len(out) > 0 || err != nil || count <= 0 || len(fis) == 0 {
			return out, err
		}
	}
}

// Readdirnames is Readdir for names.
func (d *hidingDir) Readdirnames(n int) ([]string, error) {
	for {
		names, err := d.File.Readdirnames(n)
		out := names[:0]
		for _, name := range names {
			if name != d.hidden {
				out = append(out, name)
			}
		}
		if len(out) > 0 || err != nil || n <= 0 || len(names) == 0 {
			return out, err
		}
	}
}

// Remove removes a file or an empty directory (a symlink itself, not its target).
func (j *JailFs) Remove(name string) error {
	if _, err := j.check("remove", name, false); err != nil {
		return err
	}
	return virt("remove", name, j.base.Remove(name))
}

// RemoveAll removes name and everything below it.
func (j *JailFs) RemoveAll(name string) error {
	if _, err := j.check("remove", name, false); err != nil {
		return err
	}
	return virt("remove", name, j.base.RemoveAll(name))
}

// Rename renames a directory entry; both parents must be inside the jail.
func (j *JailFs) Rename(oldname, newname string) error {
	if _, err := j.check("rename", oldname, false); err != nil {
		return err
	}
	if _, err := j.check("rename", newname, false); err != nil {
		return err
	}
	return virt("rename", oldname, j.base.Rename(oldname, newname))
}

// Stat follows symlinks that stay inside the jail.
func (j *JailFs) Stat(name string) (os.FileInfo, error) {
	if _, err := j.check("stat", name, true); err != nil {
		return nil, err
	}
	fi, err := j.base.Stat(name)
	return fi, virt("stat", name, err)
}

// Chmod changes the mode.
func (j *JailFs) Chmod(name string, mode os.FileMode) error {
	if _, err := j.check("chmod", name, true); err != nil {
		return err
	}
	return virt("chmod", name, j.base.Chmod(name, mode))
}

// Chown changes the owner.
func (j *JailFs) Chown(name string, uid, gid int) error {
	if _, err := j.check("chown", name, true); err != nil {
		return err
	}
	return virt("chown", name, j.base.Chown(name, uid, gid))
}

// Chtimes sets the access and modification times.
func (j *JailFs) Chtimes(name string, atime, mtime time.Time) error {
	if _, err := j.check("chtimes", name, true); err != nil {
		return err
	}
	return virt("chtimes", name, j.base.Chtimes(name, atime, mtime))
}
