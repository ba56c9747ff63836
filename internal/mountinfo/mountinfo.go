package mountinfo

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Path is the mount table of the calling process.
const Path = "/proc/self/mountinfo"

// Entry is one mounted file system.
type Entry struct {
	// ID is field 1, the mount's ID. The kernel reuses the ID of an unmounted file system for a later mount.
	ID int
	// Dev is field 3, the device number (MAJOR:MINOR) of the file system, as stat(2) reports it in st_dev;
	// 0 when the field does not parse.
	Dev uint64
	// MountPoint is field 5 of the line, unescaped.
	MountPoint string
	// FSType is the first field after " - " ("ext4", "fuse.s3mount"); "" when the line has none.
	FSType string
}

// Parse reads a mountinfo table from r. Lines with fewer than five fields are skipped; lines may be up to 1 MiB.
func Parse(r io.Reader) ([]Entry, error) {
	var entries []Entry
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		// "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS"
		pre, post, _ := strings.Cut(s.Text(), " - ")
		fields := strings.Fields(pre)
		if len(fields) < 5 {
			continue
		}
		e := Entry{MountPoint: Unescape(fields[4])}
		e.ID, _ = strconv.Atoi(fields[0])
		e.Dev = parseDev(fields[2])
		if types := strings.Fields(post); len(types) > 0 {
			e.FSType = types[0]
		}
		entries = append(entries, e)
	}
	return entries, s.Err()
}

// parseDev parses "MAJOR:MINOR" into a device number comparable with stat(2)'s st_dev; 0 when it does not parse.
func parseDev(s string) uint64 {
	maj, min, ok := strings.Cut(s, ":")
	if !ok {
		return 0
	}
	ma, err1 := strconv.ParseUint(maj, 10, 32)
	mi, err2 := strconv.ParseUint(min, 10, 32)
	if err1 != nil || err2 != nil {
		return 0
	}
	return unix.Mkdev(uint32(ma), uint32(mi))
}

// Read returns the entries of the calling process's mount table, in the kernel's order (parents first).
func Read() ([]Entry, error) {
	f, err := os.Open(Path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	entries, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", Path, err)
	}
	return entries, nil
}

// Top returns the entry mounted last on dir (clean and absolute) among entries, the one a path lookup of dir
// reaches when several file systems are stacked there. ok is false when dir is not a mount point.
func Top(entries []Entry, dir string) (e Entry, ok bool) {
	for i := len(entries) - 1; i >= 0; i-- {
		if entries[i].MountPoint == dir {
			return entries[i], true
		}
	}
	return Entry{}, false
}

// Lookup returns the first entry of the mount table whose mount point is dir (compared as given: pass a clean,
// absolute path). ok is false when dir is not a mount point.
func Lookup(dir string) (e Entry, ok bool, err error) {
	entries, err := Read()
	if err != nil {
		return Entry{}, false, err
	}
	for _, e := range entries {
		if e.MountPoint == dir {
			return e, true, nil
		}
	}
	return Entry{}, false, nil
}

// IsMounted reports whether dir (clean and absolute) is a mount point of the calling process.
func IsMounted(dir string) (bool, error) {
	_, ok, err := Lookup(dir)
	return ok, err
}

// Unescape undoes the kernel's octal escapes in a mountinfo path: a backslash followed by three octal digits
// whose value fits a byte becomes that byte; any other backslash is kept as it is.
func Unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// LazyUnmount detaches the FUSE mount at dir with "fusermount3 -u -z": the mount point disappears at once and the
// file system is released when its last open file closes. It works without root and for a mount whose daemon
// died. The error carries fusermount3's own message.
func LazyUnmount(dir string) error {
	out, err := exec.Command("fusermount3", "-u", "-z", dir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("fusermount3 -u -z %s: %w: %s", dir, err, strings.TrimSpace(string(out)))
	}
	return nil
}
