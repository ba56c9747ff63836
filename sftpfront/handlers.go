package sftpfront

import (
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pkg/sftp"
	"github.com/s3ftp/s3ftp/ftpfront"
	"github.com/spf13/afero"
)

// handlers maps one SFTP session's requests onto the user's file system. It implements pkg/sftp's four handler
// interfaces plus the optional ones listed in the assertions below.
type handlers struct {
	fs      afero.Fs
	user    *ftpfront.User
	sess    *conn
	window  int64
	uploads chan struct{} // one token per file open for writing on the connection
	open    atomic.Int64  // files open for reading or writing

	mu sync.Mutex
	// Guarded by mu.
	writing map[string]*upload // the open uploads by path, for SETSTAT by path during an upload
}

var (
	_ sftp.FileReader           = (*handlers)(nil)
	_ sftp.FileWriter           = (*handlers)(nil)
	_ sftp.FileCmder            = (*handlers)(nil)
	_ sftp.PosixRenameFileCmder = (*handlers)(nil)
	_ sftp.FileLister           = (*handlers)(nil)
	_ sftp.LstatFileLister      = (*handlers)(nil)
	_ sftp.RealPathFileLister   = (*handlers)(nil)
	_ sftp.ReadlinkFileLister   = (*handlers)(nil)
	_ sftp.StatVFSFileCmder     = (*handlers)(nil)
	// Deliberately not implemented: sftp.OpenFileWriter (a handle open for reading and writing at once: the
	// mount cannot read a file it is uploading).
)

func (h *handlers) log() *slog.Logger { return h.sess.log }

// recover, deferred by every method pkg/sftp calls, turns a panic into SSH_FX_FAILURE for that one request,
// logged with its stack and counted in Server.Panics: pkg/sftp runs the handlers in its own goroutines, where a
// panic would otherwise end the daemon and every FTPS and SFTP session with it.
func (h *handlers) recover(what string, err *error) {
	if v := recover(); v != nil {
		h.sess.srv.panics.Recovered(h.log(), "sftp: "+what, v)
		*err = sftp.ErrSSHFxFailure
	}
}

// status passes err through the error table.
func (h *handlers) status(op, p string, err error) error { return toStatus(h.log(), op, p, err) }

// checkAccount refuses a new request once the account the session logged in with was removed or changed
// (Deps.Auth is an ftpfront.AccountChecker and a reload changed the users file), as FTPS ends such a session at
// its next command. Requests on files already open go on, so no transfer is cut; once none is open, the
// connection is closed, and the client logs in again with the account as it is now.
func (h *handlers) checkAccount() error {
	ac, ok := h.sess.srv.deps.Auth.(ftpfront.AccountChecker)
	if !ok || ac.AccountValid(h.user) {
		return nil
	}
	if h.open.Load() == 0 {
		h.log().Info("sftp: account removed or changed; closing the connection")
		h.sess.closeConn()
	}
	return errAccountChanged
}

// denyReadOnly returns errDenied for read-only users.
func (h *handlers) denyReadOnly() error {
	if h.user.ReadOnly {
		return errDenied
	}
	return nil
}

// RealPath resolves p lexically against "/": the home.
func (h *handlers) RealPath(p string) (string, error) {
	return path.Clean("/" + p), nil
}

// Readlink is unsupported: the users cannot create links and the jail does not show where links lead.
func (h *handlers) Readlink(string) (string, error) { return "", errUnsupported }

// Fileread opens a file for reading.
func (h *handlers) Fileread(r *sftp.Request) (_ io.ReaderAt, err error) {
	defer h.recover("open", &err)
	if err := h.checkAccount(); err != nil {
		return nil, err
	}
	p := r.Filepath
	f, err := h.fs.Open(p)
	if err != nil {
		h.sess.audit(ftpfront.Event{Event: "download", Path: p, Result: err.Error()})
		return nil, h.status("open", p, err)
	}
	if fi, err := f.Stat(); err != nil || fi.IsDir() {
		f.Close()
		if err == nil {
			err = errIsDir
		}
		return nil, h.status("open", p, err)
	}
	h.open.Add(1)
	return &download{h: h, f: f, path: p, started: time.Now()}, nil
}

// download is a file open for reading; Close records the download.
type download struct {
	h       *handlers
	f       afero.File
	path    string
	started time.Time
	bytes   atomic.Int64
	failed  atomic.Pointer[error]
}

// ReadAt reads from the file.
func (d *download) ReadAt(p []byte, off int64) (_ int, err error) {
	defer d.h.recover("read", &err)
	n, err := d.f.ReadAt(p, off)
	d.bytes.Add(int64(n))
	if err != nil && err != io.EOF {
		return n, d.h.status("read", d.path, err)
	}
	return n, err
}

// TransferError records that the connection ended while the file was open.
func (d *download) TransferError(err error) { d.failed.CompareAndSwap(nil, &err) }

// Close closes the file and records the download.
func (d *download) Close() (err error) {
	defer d.h.recover("close", &err)
	defer d.h.open.Add(-1)
	err = d.f.Close()
	res := "ok"
	if e := d.failed.Load(); e != nil {
		res = (*e).Error()
	} else if err != nil {
		res = err.Error()
	}
	d.h.sess.audit(ftpfront.Event{Event: "download", Path: d.path, Bytes: d.bytes.Load(),
		Duration: time.Since(d.started), Result: res})
	return d.h.status("close", d.path, err)
}

// Filewrite opens a file for writing.
func (h *handlers) Filewrite(r *sftp.Request) (_ io.WriterAt, err error) {
	defer h.recover("open", &err)
	if err := h.checkAccount(); err != nil {
		return nil, err
	}
	if err := h.denyReadOnly(); err != nil {
		return nil, err
	}
	select {
	case h.uploads <- struct{}{}:
	default:
		return nil, errTooManyUploads
	}
	w, err := h.openUpload(r)
	if err != nil {
		<-h.uploads
		return nil, err
	}
	h.open.Add(1)
	return w, nil
}

// openUpload opens the file of an upload; the caller holds an uploads token, which the upload's Close returns.
func (h *handlers) openUpload(r *sftp.Request) (io.WriterAt, error) {
	p := r.Filepath
	pf := r.Pflags()
	fi, statErr := h.fs.Stat(p)
	if statErr == nil && fi.IsDir() {
		return nil, errIsDir
	}
	existed := statErr == nil
	flag := os.O_WRONLY
	if pf.Creat {
		flag |= os.O_CREATE
	}
	if pf.Trunc {
		flag |= os.O_TRUNC
	}
	if pf.Excl {
		flag |= os.O_EXCL
	}
	f, err := h.fs.OpenFile(p, flag, 0o644)
	if err != nil {
		h.sess.audit(ftpfront.Event{Event: "upload", Path: p, Result: err.Error()})
		return nil, h.status("open", p, err)
	}
	var start int64
	if pf.Trunc {
		// As ftpfront's STOR: a FUSE file system that misses O_TRUNC among the open flags still sees ftruncate(0).
		if err := f.Truncate(0); err != nil {
			f.Close()
			h.sess.audit(ftpfront.Event{Event: "upload", Path: p, Result: err.Error()})
			return nil, h.status("open", p, err)
		}
	} else if existed {
		// No truncation (reput, append): the stream continues at the end of what is there.
		start = fi.Size()
	}
	u := &upload{
		h: h, f: f, path: p, started: time.Now(),
		w:            newReorderWriter(f, start, h.window),
		removeOnFail: pf.Trunc || !existed,
	}
	if start > 0 {
		// A write before the end means a rewrite in place (scp in SFTP mode), not a resume: start over at 0.
		u.w.allowRewind(func() error {
			u.rewound.Store(true)
			return f.Truncate(0)
		})
	}
	h.mu.Lock()
	if h.writing == nil {
		h.writing = make(map[string]*upload)
	}
	h.writing[p] = u
	h.mu.Unlock()
	return u, nil
}

// openUploadOn returns the upload open on p, or nil.
func (h *handlers) openUploadOn(p string) *upload {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.writing[p]
}

// upload is a file open for writing: WriteAt goes through the reorder window, Close completes the upload.
type upload struct {
	h            *handlers
	f            afero.File
	path         string
	started      time.Time
	w            *reorderWriter
	removeOnFail bool        // new or truncated: a failed upload leaves nothing behind
	rewound      atomic.Bool // rewritten from 0 (reorderWriter's "rewound"): as truncated
	closeOnce    sync.Once
	closeErr     error

	mu sync.Mutex
	// Guarded by mu: attributes a SETSTAT set during the upload, applied again at close.
	size  *int64        // truncate to this size before the close, unless the stream ended there
	times *[2]time.Time // atime, mtime: set again after the close (writes change the mtime)
}

// WriteAt hands p to the reorder window.
func (u *upload) WriteAt(p []byte, off int64) (_ int, err error) {
	defer u.h.recover("write", &err)
	n, err := u.w.WriteAt(p, off)
	if err != nil {
		return n, u.h.status("write", u.path, err)
	}
	return n, nil
}

// TransferError fails the upload: the connection ended with the file open.
func (u *upload) TransferError(err error) { u.w.fail(err) }

// Close ends the stream and closes the file; its error is the upload's outcome. A failed upload of a new or
// truncated file is removed before the close where possible (on the mount, a file unlinked while open is never
// stored) and after it otherwise.
func (u *upload) Close() (err error) {
	defer u.h.recover("close", &err)
	u.closeOnce.Do(func() {
		u.h.mu.Lock()
		if u.h.writing[u.path] == u {
			delete(u.h.writing, u.path)
		}
		u.h.mu.Unlock()
		u.closeErr = u.close()
		<-u.h.uploads
		u.h.open.Add(-1)
	})
	return u.closeErr
}

func (u *upload) close() error {
	written, err := u.w.finish()
	u.mu.Lock()
	size, times := u.size, u.times
	u.mu.Unlock()
	if err == nil && size != nil && *size != u.w.end() {
		err = u.f.Truncate(*size)
	}
	removed := false
	drop := func() {
		if !(u.removeOnFail || u.rewound.Load()) || removed {
			return
		}
		removed = true
		if rerr := u.h.fs.Remove(u.path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			u.h.log().Warn("sftp: removing partial upload failed", "path", u.path, "err", rerr)
		}
	}
	if err != nil {
		drop()
	}
	closeErr := u.f.Close()
	if err == nil && closeErr != nil {
		err = closeErr
		drop()
	}
	if err == nil && times != nil {
		// The writes after the SETSTAT changed the mtime (WinSCP sets it before writing): set it again.
		err = u.h.fs.Chtimes(u.path, times[0], times[1])
	}
	res := "ok"
	if err != nil {
		res = err.Error()
		u.h.log().Warn("sftp: upload failed", "path", u.path, "bytes", written, "err", err)
	}
	ev := ftpfront.Event{Event: "upload", Path: u.path, Bytes: written, Duration: time.Since(u.started), Result: res}
	if err == nil {
		ev.SHA256 = storedSHA256(u.h.fs, u.path)
	}
	u.h.sess.audit(ev)
	return u.h.status("close", u.path, err)
}

// Filecmd runs the requests that change the file system without a handle.
func (h *handlers) Filecmd(r *sftp.Request) (err error) {
	defer h.recover(r.Method, &err)
	if err := h.checkAccount(); err != nil {
		return err
	}
	switch r.Method {
	case "Symlink", "Link":
		return errUnsupported
	}
	if err := h.denyReadOnly(); err != nil {
		return err
	}
	p := r.Filepath
	switch r.Method {
	case "Setstat":
		return h.status("setstat", p, h.setstat(r))
	case "Rename":
		if _, err := h.fs.Stat(r.Target); err == nil {
			return errExists // SFTP v3: RENAME does not replace; posix-rename does
		}
		return h.rename(p, r.Target)
	case "Mkdir":
		err := h.fs.Mkdir(p, 0o755)
		h.sess.audit(ftpfront.Event{Event: "mkdir", Path: p, Result: result(err)})
		return h.status("mkdir", p, err)
	case "Rmdir":
		fi, err := h.fs.Stat(p)
		if err == nil && !fi.IsDir() {
			err = errNotDir
		}
		if err == nil {
			err = h.fs.Remove(p)
		}
		h.sess.audit(ftpfront.Event{Event: "rmdir", Path: p, Result: result(err)})
		return h.status("rmdir", p, err)
	case "Remove":
		fi, err := h.fs.Stat(p)
		if err == nil && fi.IsDir() {
			err = errIsDir
		}
		if err == nil {
			err = h.fs.Remove(p)
		}
		h.sess.audit(ftpfront.Event{Event: "delete", Path: p, Result: result(err)})
		return h.status("remove", p, err)
	}
	return errUnsupported
}

// PosixRename renames, replacing the target.
func (h *handlers) PosixRename(r *sftp.Request) (err error) {
	defer h.recover("posix-rename", &err)
	if err := h.checkAccount(); err != nil {
		return err
	}
	if err := h.denyReadOnly(); err != nil {
		return err
	}
	return h.rename(r.Filepath, r.Target)
}

func (h *handlers) rename(from, to string) error {
	err := h.fs.Rename(from, to)
	h.sess.audit(ftpfront.Event{Event: "rename", Path: from, To: to, Result: result(err)})
	return h.status("rename", from, err)
}

// setstat applies the attributes a SETSTAT or FSETSTAT carries: size, permissions, times. uid/gid are
// ignored: the mount has one owner.
//
// During an upload of p (SETSTAT by path or FSETSTAT on its handle) a size is applied by the upload at its close
// (a second open of a file being uploaded would fail on the mount, and OpenSSH's scp in SFTP mode sets the size
// it wrote), and times are set at once and again after the close.
func (h *handlers) setstat(r *sftp.Request) error {
	flags, attrs := r.AttrFlags(), r.Attributes()
	p := r.Filepath
	u := h.openUploadOn(p)
	if u != nil {
		u.mu.Lock()
		if flags.Size {
			size := int64(attrs.Size)
			u.size = &size
		}
		if flags.Acmodtime {
			u.times = &[2]time.Time{attrs.AccessTime(), attrs.ModTime()}
		}
		u.mu.Unlock()
	}
	if flags.Size && u == nil {
		f, err := h.fs.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		err = f.Truncate(int64(attrs.Size))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	if flags.Permissions {
		if err := h.fs.Chmod(p, attrs.FileMode().Perm()); err != nil {
			return err
		}
	}
	if flags.Acmodtime {
		if err := h.fs.Chtimes(p, attrs.AccessTime(), attrs.ModTime()); err != nil {
			return err
		}
	}
	return nil
}

func result(err error) string {
	if err != nil {
		return err.Error()
	}
	return "ok"
}

// Filelist answers OPENDIR (List) and STAT (Stat).
func (h *handlers) Filelist(r *sftp.Request) (_ sftp.ListerAt, err error) {
	defer h.recover(r.Method, &err)
	if err := h.checkAccount(); err != nil {
		return nil, err
	}
	p := r.Filepath
	switch r.Method {
	case "Stat":
		fi, err := h.fs.Stat(p)
		if err != nil {
			return nil, h.status("stat", p, err)
		}
		return listerAt{fi}, nil
	case "List":
		d, err := h.fs.Open(p)
		if err != nil {
			return nil, h.status("opendir", p, err)
		}
		fi, err := d.Stat()
		if err == nil && !fi.IsDir() {
			err = errNotDir
		}
		if err != nil {
			d.Close()
			return nil, h.status("opendir", p, err)
		}
		return &dirLister{h: h, d: d, path: p}, nil
	}
	return nil, errUnsupported
}

// Lstat answers LSTAT: the entry itself where the file system can tell, else as Stat.
func (h *handlers) Lstat(r *sftp.Request) (_ sftp.ListerAt, err error) {
	defer h.recover("lstat", &err)
	if err := h.checkAccount(); err != nil {
		return nil, err
	}
	p := r.Filepath
	var fi os.FileInfo
	if l, ok := h.fs.(afero.Lstater); ok {
		fi, _, err = l.LstatIfPossible(p)
	} else {
		fi, err = h.fs.Stat(p)
	}
	if err != nil {
		return nil, h.status("lstat", p, err)
	}
	return listerAt{fi}, nil
}

// listerAt is a fixed list of entries.
type listerAt []os.FileInfo

// ListAt copies the entries from off.
func (l listerAt) ListAt(ls []os.FileInfo, off int64) (int, error) {
	if off >= int64(len(l)) {
		return 0, io.EOF
	}
	n := copy(ls, l[off:])
	if n < len(ls) {
		return n, io.EOF
	}
	return n, nil
}

// dirLister reads a directory in pieces, as READDIR asks: at most len(ls) entries are read per request, so a
// large directory is never held whole. pkg/sftp asks for consecutive offsets; another offset is an error.
type dirLister struct {
	h    *handlers
	d    afero.File
	path string

	mu   sync.Mutex
	read int64 // entries handed out
	eof  bool
}

// ListAt reads the next entries.
func (l *dirLister) ListAt(ls []os.FileInfo, off int64) (_ int, err error) {
	defer l.h.recover("readdir", &err)
	l.mu.Lock()
	defer l.mu.Unlock()
	if off != l.read {
		return 0, l.h.status("readdir", l.path, errors.New("directory read out of sequence"))
	}
	if l.eof || len(ls) == 0 {
		return 0, io.EOF
	}
	fis, err := l.d.Readdir(len(ls))
	n := copy(ls, fis)
	l.read += int64(n)
	if err == io.EOF || (err == nil && n < len(ls)) {
		l.eof = true
		if n == 0 {
			return 0, io.EOF
		}
		return n, nil
	}
	if err != nil {
		return n, l.h.status("readdir", l.path, err)
	}
	return n, nil
}

// Close closes the directory.
func (l *dirLister) Close() error { return l.d.Close() }

// StatVFS answers statvfs@openssh.com (df in OpenSSH's sftp) with the statfs of the file system under the path:
// the path is checked through the jail (Stat), then the home's real directory below it is asked. Read-only users
// see the read-only flag.
func (h *handlers) StatVFS(r *sftp.Request) (_ *sftp.StatVFS, err error) {
	defer h.recover("statvfs", &err)
	if err := h.checkAccount(); err != nil {
		return nil, err
	}
	p := r.Filepath
	if _, err := h.fs.Stat(p); err != nil {
		return nil, h.status("statvfs", p, err)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(filepath.Join(h.user.Home, filepath.FromSlash(p)), &st); err != nil {
		return nil, h.status("statvfs", p, err)
	}
	const stRdonly, stNosuid = 0x1, 0x2 // SSH2_FXE_STATVFS_ST_RDONLY, _ST_NOSUID
	flag := uint64(stNosuid)
	if h.user.ReadOnly || st.Flags&stRdonly != 0 {
		flag |= stRdonly
	}
	return &sftp.StatVFS{
		Bsize: uint64(st.Bsize), Frsize: uint64(st.Frsize), Blocks: st.Blocks, Bfree: st.Bfree, Bavail: st.Bavail,
		Files: st.Files, Ffree: st.Ffree, Favail: st.Ffree,
		Fsid:    uint64(uint32(st.Fsid.X__val[0]))<<32 | uint64(uint32(st.Fsid.X__val[1])),
		Flag:    flag,
		Namemax: uint64(st.Namelen),
	}, nil
}

// storedSHA256 is the SHA-256 the file system stored for a completed upload (s3mount --checksums --xattr,
// through ftpfront.Checksummer), "" when it has none.
func storedSHA256(fsys afero.Fs, name string) string {
	c, ok := fsys.(ftpfront.Checksummer)
	if !ok {
		return ""
	}
	sum, _ := c.Checksum(name, "SHA-256")
	return sum
}
