package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("mount point %s: reading the mount table: %w", dir, err)
	}
	defer f.Close()
	busy, err := isMountpoint(f, filepath.Clean(dir))
	if err != nil {
		return fmt.Errorf("mount point %s: reading the mount table: %w", dir, err)
	}
	if busy {
		return fmt.Errorf("mount point %s is busy: something is already mounted there", dir)
	}
	return nil
}

// isMountpoint reports whether dir is the mount point (field 5) of a line of a /proc/PID/mountinfo table.
func isMountpoint(mountinfo io.Reader, dir string) (bool, error) {
	s := bufio.NewScanner(mountinfo)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) < 5 {
			continue
		}
		if unescapeMountinfo(fields[4]) == dir {
			return true, nil
		}
	}
	return false, s.Err()
}

// unescapeMountinfo undoes the kernel's octal escapes (\040 for a space, \011, \012, \134) in mountinfo paths.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
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
