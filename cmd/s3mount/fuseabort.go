package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/s3ftp/s3ftp/internal/mountinfo"
)

// fuseConnID returns the name of dir's FUSE connection in the fusectl file system: the decimal device number
// of the mounted file system, as the kernel encodes it (major << 20 | minor). It must be read while dir still
// names the mount, that is before a lazy unmount.
func fuseConnID(dir string) (string, error) {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return "", fmt.Errorf("stat %s: %w", dir, err)
	}
	return strconv.FormatUint(uint64(unix.Major(st.Dev))<<20|uint64(unix.Minor(st.Dev)), 10), nil
}

// abortFUSEConnection aborts connection id through fusectl ("echo 1 > .../connections/ID/abort"): every
// request in flight and every later one fails with ENOTCONN and the server's read returns ENODEV, so the
// mount's server ends and package s3mount aborts the uploads still open, each with a log line. When fusectl is
// not mounted (containers), root mounts it on a private temporary directory for the write.
func abortFUSEConnection(id string) error {
	dir, err := fusectlDir()
	if err != nil {
		return err
	}
	if dir == "" {
		if os.Geteuid() != 0 {
			return errors.New("fusectl is not mounted and mounting it needs root")
		}
		tmp, err := os.MkdirTemp("", "s3mount-fusectl-")
		if err != nil {
			return err
		}
		defer os.Remove(tmp)
		if err := unix.Mount("fusectl", tmp, "fusectl", 0, ""); err != nil {
			return fmt.Errorf("mount fusectl on %s: %w", tmp, err)
		}
		defer unix.Unmount(tmp, unix.MNT_DETACH)
		dir = tmp
	}
	if err := os.WriteFile(filepath.Join(dir, id, "abort"), []byte("1"), 0); err != nil {
		return fmt.Errorf("abort FUSE connection %s: %w", id, err)
	}
	return nil
}

// fusectlDir returns where the fusectl file system is mounted, "" when it is not.
func fusectlDir() (string, error) {
	entries, err := mountinfo.Read()
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		if e.FSType == "fusectl" {
			return e.MountPoint, nil
		}
	}
	return "", nil
}
