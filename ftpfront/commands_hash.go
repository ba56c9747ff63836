package ftpfront

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"

	"github.com/spf13/afero"
	"golang.org/x/sys/unix"
)

// Checksum commands: HASH and OPTS HASH (draft-bryan-ftpext-hash), XSHA256, XMD5 and XCRC. They read the
// checksum s3mount stored with the object while it was uploaded (its extended attribute user.sha256,
// user.md5 or user.crc32, with s3mount --checksums --xattr); nothing is downloaded to compute one. A file
// without a stored checksum answers 550.
var hashCommands = map[string]commandSpec{
	"HASH":    {fn: cmdHASH, needArg: true, needLogin: true},
	"XSHA256": {fn: xhash("SHA-256"), needArg: true, needLogin: true},
	"XMD5":    {fn: xhash("MD5"), needArg: true, needLogin: true},
	"XCRC":    {fn: xhash("CRC32"), needArg: true, needLogin: true},
}

// hashAlgorithms maps the algorithm names of HASH to the extended attributes that hold them.
var hashAlgorithms = map[string]string{"SHA-256": "user.sha256", "MD5": "user.md5", "CRC32": "user.crc32"}

// hashFeature is the FEAT line of HASH, the session's algorithm marked with "*".
func (s *session) hashFeature() string {
	var names []string
	for _, a := range []string{"SHA-256", "MD5", "CRC32"} {
		if a == s.hashAlgorithm() {
			a += "*"
		}
		names = append(names, a)
	}
	return "HASH " + strings.Join(names, ";")
}

// hashAlgorithm is the algorithm HASH uses: OPTS HASH's choice, SHA-256 by default.
func (s *session) hashAlgorithm() string {
	if s.hashAlgo == "" {
		return "SHA-256"
	}
	return s.hashAlgo
}

// optsHash answers OPTS HASH [algorithm].
func (s *session) optsHash(val string) {
	val = strings.ToUpper(strings.TrimSpace(val))
	if val == "" {
		s.reply(200, s.hashAlgorithm())
		return
	}
	if _, ok := hashAlgorithms[val]; !ok {
		s.reply(504, "Unknown algorithm; offered: SHA-256, MD5, CRC32")
		return
	}
	s.hashAlgo = val
	s.reply(200, val)
}

// Checksummer is a file system that can answer a file's stored checksum: JailFs reads s3mount's extended
// attributes. ErrChecksumUnavailable when the file has none.
type Checksummer interface {
	Checksum(name, algorithm string) (string, error)
}

// ErrChecksumUnavailable: the file has no stored checksum of that algorithm (written before checksums were
// on, by another tool, or kept 5 MiB or more of an earlier version).
var ErrChecksumUnavailable = errors.New("no checksum stored for the file")

// Checksum returns the stored checksum of name (hex) for algorithm (SHA-256, MD5, CRC32).
func (j *JailFs) Checksum(name, algorithm string) (string, error) {
	attr, ok := hashAlgorithms[algorithm]
	if !ok {
		return "", fmt.Errorf("algorithm %s: %w", algorithm, ErrChecksumUnavailable)
	}
	real, err := j.check("hash", name, true)
	if err != nil {
		return "", err
	}
	if real == "" {
		return "", virt("hash", name, os.ErrNotExist)
	}
	buf := make([]byte, 128)
	n, err := unix.Getxattr(real, attr, buf)
	switch {
	case errors.Is(err, syscall.ENODATA) || errors.Is(err, syscall.ENOTSUP):
		return "", ErrChecksumUnavailable
	case err != nil:
		return "", virt("hash", name, err)
	}
	return string(buf[:n]), nil
}

// readOnlyJail is a read-only JailFs that still answers checksums.
type readOnlyJail struct {
	afero.Fs
	j *JailFs
}

// Checksum is the JailFs's.
func (r readOnlyJail) Checksum(name, algorithm string) (string, error) {
	return r.j.Checksum(name, algorithm)
}

// Checksum forwards to the user's file system when it is a Checksummer.
func (f *guardFs) Checksum(name, algorithm string) (string, error) {
	base, err := f.fs()
	if err != nil {
		return "", err
	}
	c, ok := base.(Checksummer)
	if !ok {
		return "", ErrChecksumUnavailable
	}
	return c.Checksum(name, algorithm)
}

// checksum answers a checksum command for the argument with algorithm; it returns the checksum and the
// file's size, or replies an error itself and returns false.
func (s *session) checksum(arg, algorithm string) (string, int64, string, bool) {
	p := s.abs(arg)
	fi, err := s.fs.Stat(p)
	if err != nil {
		s.fsError("hash", p, err)
		return "", 0, p, false
	}
	if !fi.Mode().IsRegular() {
		s.reply(550, "Not a regular file")
		return "", 0, p, false
	}
	c, ok := s.fs.(Checksummer)
	if !ok {
		s.reply(550, "Checksums are not available on this server")
		return "", 0, p, false
	}
	sum, err := c.Checksum(p, algorithm)
	switch {
	case errors.Is(err, ErrChecksumUnavailable):
		s.reply(550, algorithm+" not available: the file was stored without one")
		return "", 0, p, false
	case err != nil:
		s.fsError("hash", p, err)
		return "", 0, p, false
	}
	return sum, fi.Size(), p, true
}

func cmdHASH(s *session, cmd Command, _ cmdState) bool {
	alg := s.hashAlgorithm()
	sum, size, p, ok := s.checksum(cmd.Arg, alg)
	if ok {
		end := max(size-1, 0)
		s.reply(213, fmt.Sprintf("%s 0-%d %s %s", alg, end, sum, sanitize(p)))
	}
	return true
}

// xhash returns the handler of XSHA256, XMD5 or XCRC: "250 <checksum>".
func xhash(algorithm string) func(*session, Command, cmdState) bool {
	return func(s *session, cmd Command, _ cmdState) bool {
		if sum, _, _, ok := s.checksum(cmd.Arg, algorithm); ok {
			s.reply(250, sum)
		}
		return true
	}
}
