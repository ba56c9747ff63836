package scaletest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Paths of the binaries TestMain builds and of the tools the test runs; set before any test runs.
var (
	s3mountBin, ftpfrontBin string
	nsenterBin, haproxyBin  string
	curlBin                 string
)

// mountDirMarker starts the name of every temporary directory of this test, followed by the pid, so that
// removeStale can find a dead run's mounts and directories. binDirMarker follows the pid in the name of the
// directory of built binaries, the only one removed recursively.
const (
	mountDirMarker = "s3ftp-scale-"
	binDirMarker   = "-bin-"
)

// TestMain builds s3mount and ftpfront from this module once for all tests.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", fmt.Sprintf("%s%d%s", mountDirMarker, os.Getpid(), binDirMarker))
	if err != nil {
		fmt.Fprintln(os.Stderr, "scaletest:", err)
		os.Exit(1)
	}
	out, err := exec.Command("go", "build", "-o", dir+"/",
		"github.com/s3ftp/s3ftp/cmd/s3mount", "github.com/s3ftp/s3ftp/cmd/ftpfront").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "scaletest: building the daemons failed: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	s3mountBin, ftpfrontBin = filepath.Join(dir, "s3mount"), filepath.Join(dir, "ftpfront")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// requireTools fails the test, naming what is missing and how to get it, unless the test runs as root with
// ip, nsenter, haproxy, fusermount3, curl and /dev/fuse available.
func requireTools(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the scale-out test creates network namespaces and FUSE mounts: run it as root")
	}
	var missing []string
	look := func(name, pkg string) string {
		for _, p := range []string{"", "/usr/sbin/", "/sbin/"} {
			if p == "" {
				if path, err := exec.LookPath(name); err == nil {
					return path
				}
			} else if _, err := os.Stat(p + name); err == nil {
				return p + name
			}
		}
		missing = append(missing, fmt.Sprintf("%s (Debian package %s)", name, pkg))
		return ""
	}
	look("ip", "iproute2")
	nsenterBin = look("nsenter", "util-linux")
	haproxyBin = look("haproxy", "haproxy")
	look("fusermount3", "fuse3")
	curlBin = look("curl", "curl")
	if _, err := os.Stat("/dev/fuse"); err != nil {
		missing = append(missing, "/dev/fuse (load the fuse module or run the container with --device /dev/fuse)")
	}
	if len(missing) > 0 {
		t.Fatalf("missing: %v; scripts/setup-test-deps.sh installs them", missing)
	}
}
