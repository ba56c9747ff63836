package s3mount

import (
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync/atomic"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// recoveringFS is the fuse.RawFileSystem the server calls: it delegates every operation to the node file
// system and turns a panic inside one into EIO for that request alone, so that one bug fails one system call
// instead of the whole mount. Each recovered panic is logged as one ERROR line through the mount's logger,
// naming the operation and carrying the stack, and counted (Mounted.Panics).
//
// go-fuse itself also recovers panics of request handlers, but only prints them through its own log.Logger
// and counts nothing; recovering here first keeps them in the mount's structured log and metrics. Panics in
// goroutines that a request starts (uploads, prefetches) are outside any request and still end the process.
//
// Init, String and SetDebug are go-fuse's own bookkeeping and are delegated without a recover. Operations
// without a status (Forget, Release, ReleaseDir, OnUnmount) recover, log and count, and have nothing to answer.
type recoveringFS struct {
	fs     fuse.RawFileSystem
	log    *slog.Logger
	panics atomic.Int64
}

func newRecoveringFS(raw fuse.RawFileSystem, log *slog.Logger) *recoveringFS {
	return &recoveringFS{fs: raw, log: log}
}

// recover must be deferred directly by each operation. On a panic it logs and counts it and, when status is
// not nil, sets the operation's status to EIO; the operation's other results keep their zero values.
func (r *recoveringFS) recover(op string, status *fuse.Status) {
	v := recover()
	if v == nil {
		return
	}
	r.panics.Add(1)
	r.log.Error("panic in a file system operation; the request fails with EIO, the mount keeps serving",
		"op", op, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	if status != nil {
		*status = fuse.EIO
	}
}

// mountRaw mounts root on mountpoint as fs.Mount does (NewNodeFS, NewServer, Serve, WaitMount), with every
// operation going through a recoveringFS.
func mountRaw(mountpoint string, root fs.InodeEmbedder, opts *fs.Options, log *slog.Logger) (*fuse.Server, *recoveringFS, error) {
	raw := newRecoveringFS(fs.NewNodeFS(root, opts), log)
	server, err := fuse.NewServer(raw, mountpoint, &opts.MountOptions)
	if err != nil {
		return nil, nil, err
	}
	go server.Serve()
	if err := server.WaitMount(); err != nil {
		// As in fs.Mount: the serve loop cannot work on a failed mount and ends by itself.
		return nil, nil, err
	}
	return server, raw, nil
}

var _ fuse.RawFileSystem = (*recoveringFS)(nil)

func (r *recoveringFS) String() string           { return r.fs.String() }
func (r *recoveringFS) SetDebug(debug bool)      { r.fs.SetDebug(debug) }
func (r *recoveringFS) Init(server *fuse.Server) { r.fs.Init(server) }

func (r *recoveringFS) OnUnmount() {
	defer r.recover("OnUnmount", nil)
	r.fs.OnUnmount()
}

func (r *recoveringFS) Lookup(cancel <-chan struct{}, header *fuse.InHeader, name string, out *fuse.EntryOut) (st fuse.Status) {
	defer r.recover("Lookup", &st)
	return r.fs.Lookup(cancel, header, name, out)
}

func (r *recoveringFS) Forget(nodeid, nlookup uint64) {
	defer r.recover("Forget", nil)
	r.fs.Forget(nodeid, nlookup)
}

func (r *recoveringFS) GetAttr(cancel <-chan struct{}, input *fuse.GetAttrIn, out *fuse.AttrOut) (st fuse.Status) {
	defer r.recover("GetAttr", &st)
	return r.fs.GetAttr(cancel, input, out)
}

func (r *recoveringFS) SetAttr(cancel <-chan struct{}, input *fuse.SetAttrIn, out *fuse.AttrOut) (st fuse.Status) {
	defer r.recover("SetAttr", &st)
	return r.fs.SetAttr(cancel, input, out)
}

func (r *recoveringFS) Mknod(cancel <-chan struct{}, input *fuse.MknodIn, name string, out *fuse.EntryOut) (st fuse.Status) {
	defer r.recover("Mknod", &st)
	return r.fs.Mknod(cancel, input, name, out)
}

func (r *recoveringFS) Mkdir(cancel <-chan struct{}, input *fuse.MkdirIn, name string, out *fuse.EntryOut) (st fuse.Status) {
	defer r.recover("Mkdir", &st)
	return r.fs.Mkdir(cancel, input, name, out)
}

func (r *recoveringFS) Unlink(cancel <-chan struct{}, header *fuse.InHeader, name string) (st fuse.Status) {
	defer r.recover("Unlink", &st)
	return r.fs.Unlink(cancel, header, name)
}

func (r *recoveringFS) Rmdir(cancel <-chan struct{}, header *fuse.InHeader, name string) (st fuse.Status) {
	defer r.recover("Rmdir", &st)
	return r.fs.Rmdir(cancel, header, name)
}

func (r *recoveringFS) Rename(cancel <-chan struct{}, input *fuse.RenameIn, oldName string, newName string) (st fuse.Status) {
	defer r.recover("Rename", &st)
	return r.fs.Rename(cancel, input, oldName, newName)
}

func (r *recoveringFS) Link(cancel <-chan struct{}, input *fuse.LinkIn, filename string, out *fuse.EntryOut) (st fuse.Status) {
	defer r.recover("Link", &st)
	return r.fs.Link(cancel, input, filename, out)
}

func (r *recoveringFS) Symlink(cancel <-chan struct{}, header *fuse.InHeader, pointedTo string, linkName string, out *fuse.EntryOut) (st fuse.Status) {
	defer r.recover("Symlink", &st)
	return r.fs.Symlink(cancel, header, pointedTo, linkName, out)
}

func (r *recoveringFS) Readlink(cancel <-chan struct{}, header *fuse.InHeader) (out []byte, st fuse.Status) {
	defer r.recover("Readlink", &st)
	return r.fs.Readlink(cancel, header)
}

func (r *recoveringFS) Access(cancel <-chan struct{}, input *fuse.AccessIn) (st fuse.Status) {
	defer r.recover("Access", &st)
	return r.fs.Access(cancel, input)
}

func (r *recoveringFS) GetXAttr(cancel <-chan struct{}, header *fuse.InHeader, attr string, dest []byte) (sz uint32, st fuse.Status) {
	defer r.recover("GetXAttr", &st)
	return r.fs.GetXAttr(cancel, header, attr, dest)
}

func (r *recoveringFS) ListXAttr(cancel <-chan struct{}, header *fuse.InHeader, dest []byte) (sz uint32, st fuse.Status) {
	defer r.recover("ListXAttr", &st)
	return r.fs.ListXAttr(cancel, header, dest)
}

func (r *recoveringFS) SetXAttr(cancel <-chan struct{}, input *fuse.SetXAttrIn, attr string, data []byte) (st fuse.Status) {
	defer r.recover("SetXAttr", &st)
	return r.fs.SetXAttr(cancel, input, attr, data)
}

func (r *recoveringFS) RemoveXAttr(cancel <-chan struct{}, header *fuse.InHeader, attr string) (st fuse.Status) {
	defer r.recover("RemoveXAttr", &st)
	return r.fs.RemoveXAttr(cancel, header, attr)
}

func (r *recoveringFS) Create(cancel <-chan struct{}, input *fuse.CreateIn, name string, out *fuse.CreateOut) (st fuse.Status) {
	defer r.recover("Create", &st)
	return r.fs.Create(cancel, input, name, out)
}

func (r *recoveringFS) Tmpfile(cancel <-chan struct{}, input *fuse.CreateIn, out *fuse.CreateOut) (st fuse.Status) {
	defer r.recover("Tmpfile", &st)
	return r.fs.Tmpfile(cancel, input, out)
}

func (r *recoveringFS) Open(cancel <-chan struct{}, input *fuse.OpenIn, out *fuse.OpenOut) (st fuse.Status) {
	defer r.recover("Open", &st)
	return r.fs.Open(cancel, input, out)
}

func (r *recoveringFS) Read(cancel <-chan struct{}, input *fuse.ReadIn, buf []byte) (res fuse.ReadResult, st fuse.Status) {
	defer r.recover("Read", &st)
	return r.fs.Read(cancel, input, buf)
}

func (r *recoveringFS) Lseek(cancel <-chan struct{}, in *fuse.LseekIn, out *fuse.LseekOut) (st fuse.Status) {
	defer r.recover("Lseek", &st)
	return r.fs.Lseek(cancel, in, out)
}

func (r *recoveringFS) GetLk(cancel <-chan struct{}, input *fuse.LkIn, out *fuse.LkOut) (st fuse.Status) {
	defer r.recover("GetLk", &st)
	return r.fs.GetLk(cancel, input, out)
}

func (r *recoveringFS) SetLk(cancel <-chan struct{}, input *fuse.LkIn) (st fuse.Status) {
	defer r.recover("SetLk", &st)
	return r.fs.SetLk(cancel, input)
}

func (r *recoveringFS) SetLkw(cancel <-chan struct{}, input *fuse.LkIn) (st fuse.Status) {
	defer r.recover("SetLkw", &st)
	return r.fs.SetLkw(cancel, input)
}

func (r *recoveringFS) Release(cancel <-chan struct{}, input *fuse.ReleaseIn) {
	defer r.recover("Release", nil)
	r.fs.Release(cancel, input)
}

func (r *recoveringFS) Write(cancel <-chan struct{}, input *fuse.WriteIn, data []byte) (written uint32, st fuse.Status) {
	defer r.recover("Write", &st)
	return r.fs.Write(cancel, input, data)
}

func (r *recoveringFS) Writev(cancel <-chan struct{}, input *fuse.WriteIn, data [][]byte) (written uint32, st fuse.Status) {
	defer r.recover("Writev", &st)
	return r.fs.Writev(cancel, input, data)
}

func (r *recoveringFS) CopyFileRange(cancel <-chan struct{}, input *fuse.CopyFileRangeIn) (written uint32, st fuse.Status) {
	defer r.recover("CopyFileRange", &st)
	return r.fs.CopyFileRange(cancel, input)
}

func (r *recoveringFS) Ioctl(cancel <-chan struct{}, input *fuse.IoctlIn, inbuf []byte, output *fuse.IoctlOut, outbuf []byte) (st fuse.Status) {
	defer r.recover("Ioctl", &st)
	return r.fs.Ioctl(cancel, input, inbuf, output, outbuf)
}

func (r *recoveringFS) Flush(cancel <-chan struct{}, input *fuse.FlushIn) (st fuse.Status) {
	defer r.recover("Flush", &st)
	return r.fs.Flush(cancel, input)
}

func (r *recoveringFS) Fsync(cancel <-chan struct{}, input *fuse.FsyncIn) (st fuse.Status) {
	defer r.recover("Fsync", &st)
	return r.fs.Fsync(cancel, input)
}

func (r *recoveringFS) Fallocate(cancel <-chan struct{}, input *fuse.FallocateIn) (st fuse.Status) {
	defer r.recover("Fallocate", &st)
	return r.fs.Fallocate(cancel, input)
}

func (r *recoveringFS) OpenDir(cancel <-chan struct{}, input *fuse.OpenIn, out *fuse.OpenOut) (st fuse.Status) {
	defer r.recover("OpenDir", &st)
	return r.fs.OpenDir(cancel, input, out)
}

func (r *recoveringFS) ReadDir(cancel <-chan struct{}, input *fuse.ReadIn, out *fuse.DirEntryList) (st fuse.Status) {
	defer r.recover("ReadDir", &st)
	return r.fs.ReadDir(cancel, input, out)
}

func (r *recoveringFS) ReadDirPlus(cancel <-chan struct{}, input *fuse.ReadIn, out *fuse.DirEntryList) (st fuse.Status) {
	defer r.recover("ReadDirPlus", &st)
	return r.fs.ReadDirPlus(cancel, input, out)
}

func (r *recoveringFS) ReleaseDir(input *fuse.ReleaseIn) {
	defer r.recover("ReleaseDir", nil)
	r.fs.ReleaseDir(input)
}

func (r *recoveringFS) FsyncDir(cancel <-chan struct{}, input *fuse.FsyncIn) (st fuse.Status) {
	defer r.recover("FsyncDir", &st)
	return r.fs.FsyncDir(cancel, input)
}

func (r *recoveringFS) StatFs(cancel <-chan struct{}, input *fuse.InHeader, out *fuse.StatfsOut) (st fuse.Status) {
	defer r.recover("StatFs", &st)
	return r.fs.StatFs(cancel, input, out)
}

func (r *recoveringFS) Statx(cancel <-chan struct{}, input *fuse.StatxIn, out *fuse.StatxOut) (st fuse.Status) {
	defer r.recover("Statx", &st)
	return r.fs.Statx(cancel, input, out)
}
