package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

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
