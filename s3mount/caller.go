package s3mount

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// Who closes a file: the commit rule of a FLUSH (openfile.go) asks which process sent it and which processes
// still hold the file open for writing. The kernel names the calling thread in every request; /proc answers the
// rest without a request to this mount (readlink and fdinfo never reach the file system), so these functions
// cannot deadlock with the mount that calls them.

// callerProcess returns the process (thread group ID) whose thread made the request in ctx, or 0 when the
// request carries none (a kernel-internal request, or a caller outside the mount's PID namespace).
func callerProcess(ctx context.Context) uint32 {
	c, ok := fuse.FromContext(ctx)
	if !ok || c.Pid == 0 {
		return 0
	}
	return threadGroup(c.Pid)
}

// threadGroup maps a thread ID to its process (the Tgid line of /proc/<tid>/status); tid itself when that
// cannot be read (a single-threaded process's thread ID is its process ID).
func threadGroup(tid uint32) uint32 {
	b, err := os.ReadFile("/proc/" + strconv.FormatUint(uint64(tid), 10) + "/status")
	if err != nil {
		return tid
	}
	if v, ok := procField(b, "Tgid:"); ok {
		if n, err := strconv.ParseUint(v, 10, 32); err == nil && n != 0 {
			return uint32(n)
		}
	}
	return tid
}

// procField returns the value of the line "name<whitespace>value" of a /proc status or fdinfo file.
func procField(b []byte, name string) (string, bool) {
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte(name)); ok {
			return string(bytes.TrimSpace(v)), true
		}
	}
	return "", false
}

// fileOnMount identifies this mount's file for holdsForWrite: the mount's point and ID as /proc/self/mountinfo
// shows them, and the inode number the kernel knows the file by.
type fileOnMount struct {
	mountpoint string // as /proc shows paths on the mount
	mountID    int    // 0 when unknown: fdinfo's mnt_id is then not checked
	ino        uint64
}

// holdsForWrite reports whether process pid has a descriptor open for writing on file. It reads the process's
// fd table: a descriptor counts when its path lies on the mount and its fdinfo names the mount, the inode and
// a write access mode. A process that has exited (or whose table cannot be read) holds nothing.
func holdsForWrite(pid uint32, file fileOnMount) bool {
	if pid == 0 || file.mountpoint == "" {
		return false
	}
	base := "/proc/" + strconv.FormatUint(uint64(pid), 10)
	fds, err := os.ReadDir(base + "/fd")
	if err != nil {
		return false
	}
	for _, fd := range fds {
		link, err := os.Readlink(base + "/fd/" + fd.Name())
		if err != nil || !onMount(link, file.mountpoint) {
			continue
		}
		info, err := os.ReadFile(base + "/fdinfo/" + fd.Name())
		if err != nil {
			continue
		}
		if fdWrites(info, file) {
			return true
		}
	}
	return false
}

// onMount reports whether path lies at or below mountpoint.
func onMount(path, mountpoint string) bool {
	if mountpoint == "/" {
		return strings.HasPrefix(path, "/")
	}
	rest, ok := strings.CutPrefix(path, mountpoint)
	return ok && (rest == "" || rest[0] == '/')
}

// fdWrites reports whether the fdinfo text b describes a descriptor open for writing on file.
func fdWrites(b []byte, file fileOnMount) bool {
	ino, ok := procField(b, "ino:")
	if !ok || ino != strconv.FormatUint(file.ino, 10) {
		return false
	}
	if file.mountID != 0 {
		if id, ok := procField(b, "mnt_id:"); !ok || id != strconv.Itoa(file.mountID) {
			return false
		}
	}
	flags, ok := procField(b, "flags:")
	if !ok {
		return false
	}
	fl, err := strconv.ParseUint(flags, 8, 32)
	return err == nil && fl&syscall.O_ACCMODE != syscall.O_RDONLY
}
