package s3mount

import (
	"strings"
	"syscall"
)

// Limits of the key↔path mapping.
const (
	// maxKeyLen is S3's limit on the length of an object key in bytes.
	maxKeyLen = 1024
	// maxNameLen is the longest file name the kernel accepts (NAME_MAX).
	maxNameLen = 255
)

// checkName reports whether name can be one path segment of a key: a clean errno when it cannot.
// EINVAL: empty, ".", "..", or containing "/" or NUL; ENAMETOOLONG: longer than maxNameLen bytes.
func checkName(name string) syscall.Errno {
	switch {
	case name == "" || name == "." || name == "..":
		return syscall.EINVAL
	case strings.ContainsAny(name, "/\x00"):
		return syscall.EINVAL
	case len(name) > maxNameLen:
		return syscall.ENAMETOOLONG
	}
	return 0
}

// childKey returns the key of the entry name in the directory whose key prefix is dirKey ("" or ending in "/").
// Files map to dirKey+name, directories to dirKey+name+"/" (their marker object and the prefix of their
// children). A name that cannot be a key segment, or a key longer than S3 allows, gives a clean errno.
func childKey(dirKey, name string, dir bool) (string, syscall.Errno) {
	if errno := checkName(name); errno != 0 {
		return "", errno
	}
	key := dirKey + name
	if dir {
		key += "/"
	}
	if len(key) > maxKeyLen {
		return "", syscall.ENAMETOOLONG
	}
	return key, 0
}

// nameFromKey maps a listed key (an object key, or a common prefix ending in "/") under dirKey back to the
// entry name it shows as. ok is false, with the reason, for keys that cannot be file names: not under dirKey,
// the directory's own marker, empty segments ("a//b"), "." or "..", NUL, names longer than maxNameLen and keys
// longer than maxKeyLen. Such keys are skipped in listings.
func nameFromKey(dirKey, key string) (name string, dir bool, ok bool, reason string) {
	if !strings.HasPrefix(key, dirKey) {
		return "", false, false, "outside the directory"
	}
	if len(key) > maxKeyLen {
		return "", false, false, "key longer than 1024 bytes"
	}
	rest := key[len(dirKey):]
	if rest == "" {
		return "", false, false, "directory marker"
	}
	if strings.HasSuffix(rest, "/") {
		dir = true
		rest = rest[:len(rest)-1]
	}
	switch errno := checkName(rest); errno {
	case 0:
		return rest, dir, true, ""
	case syscall.ENAMETOOLONG:
		return "", false, false, "name longer than 255 bytes"
	default:
		if rest == "" || strings.Contains(rest, "/") {
			return "", false, false, "empty path segment"
		}
		return "", false, false, "name is \".\", \"..\" or contains NUL"
	}
}
