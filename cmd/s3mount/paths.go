package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/s3ftp/s3ftp/internal/mountinfo"
)

// absPath makes a mount point absolute before the daemon changes its working directory to "/".
func absPath(p string) (string, error) {
	if p == "" {
		return "", errors.New("mount point: empty path")
	}
	a, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("mount point %q: %w", p, err)
	}
	return a, nil
}

// checkMountpoint verifies that dir exists, is a directory, and is not already a mount point, so a second mount
// on the same directory fails with a clear message instead of stacking on top of the first.
func checkMountpoint(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("mount point %s does not exist", dir)
	case err != nil:
		return fmt.Errorf("mount point %s: %w", dir, err)
	case !fi.IsDir():
		return fmt.Errorf("mount point %s is not a directory", dir)
	}
	busy, err := mountinfo.IsMounted(filepath.Clean(dir))
	if err != nil {
		return fmt.Errorf("mount point %s: reading the mount table: %w", dir, err)
	}
	if busy {
		return fmt.Errorf("mount point %s is busy: something is already mounted there", dir)
	}
	return nil
}
