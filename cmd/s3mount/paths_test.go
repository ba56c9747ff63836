package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sampleMountinfo = `22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/vda rw
36 22 0:32 / /mnt/s3 rw,nosuid,nodev,relatime shared:20 - fuse.s3mount s3ftp rw,user_id=0,group_id=0
37 22 0:33 / /mnt/with\040space rw shared:21 - tmpfs tmpfs rw
38 22 0:34 / /mnt/back\134slash rw shared:22 - tmpfs tmpfs rw
`

func TestIsMountpoint(t *testing.T) {
	for dir, want := range map[string]bool{
		"/":                  true,
		"/mnt/s3":            true,
		"/mnt/with space":    true,
		`/mnt/back\slash`:    true,
		"/mnt":               false,
		"/mnt/s3/sub":        false,
		`/mnt/with\040space`: false,
	} {
		got, err := isMountpoint(strings.NewReader(sampleMountinfo), dir)
		if err != nil || got != want {
			t.Errorf("isMountpoint(%q) = %v, %v; want %v", dir, got, err, want)
		}
	}
}

func TestCheckMountpoint(t *testing.T) {
	dir := t.TempDir()
	if err := checkMountpoint(dir); err != nil {
		t.Errorf("empty directory %s: %v", dir, err)
	}
	missing := filepath.Join(dir, "missing")
	if err := checkMountpoint(missing); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing directory: %v", err)
	}
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := checkMountpoint(file); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("regular file: %v", err)
	}
	// "/" is a mount point on every Linux system.
	if err := checkMountpoint("/"); err == nil || !strings.Contains(err.Error(), "busy") {
		t.Errorf("/: %v", err)
	}
}
