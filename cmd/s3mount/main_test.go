package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/s3ftp/s3ftp/internal/miniotest"
)

// binary is the s3mount executable built from this package for the integration tests.
var binary string

// binDirPrefix names the per-run directory of the built binary, suffixed with the test process's PID.
// miniotest.Main exits the process, so a run cannot remove its own directory; the next run removes those of
// runs that are no longer alive.
const binDirPrefix = "s3mount-test-bin-"

// TestMain builds the real binary once, then runs the tests with a shared MinIO (stopped at the end).
func TestMain(m *testing.M) {
	removeStaleBinDirs()
	dir := filepath.Join(os.TempDir(), binDirPrefix+strconv.Itoa(os.Getpid()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "binary dir:", err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "s3mount")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "go build of s3mount for the integration tests failed:", err)
		os.Exit(1)
	}
	miniotest.Main(m)
}

func removeStaleBinDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), binDirPrefix+"*"))
	for _, d := range dirs {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(d), binDirPrefix))
		if err != nil || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			os.RemoveAll(d)
		}
	}
}
