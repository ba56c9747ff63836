package main

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/s3ftp/s3ftp/internal/miniolocal"
)

// TestDemoCheck runs the whole demo with --check: real MinIO, real FUSE mount, real ftpfront, curl as the client.
// It needs the minio binary, /dev/fuse with fusermount3, curl and the go tool; a missing one fails the test.
func TestDemoCheck(t *testing.T) {
	if _, err := miniolocal.FindBinary(); err != nil {
		t.Fatalf("the demo test needs MinIO (scripts/setup-test-deps.sh installs it): %v", err)
	}
	for _, tool := range []string{"fusermount3", "curl", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the demo test needs %s in PATH: %v", tool, err)
		}
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Fatalf("the demo test needs /dev/fuse: %v", err)
	}
	// The demo runs from the repository root and builds into its bin/.
	wd, _ := os.Getwd()
	t.Chdir(filepath.Join(wd, "..", ".."))
	for _, k := range []string{"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION"} {
		t.Setenv(k, "") // the flags' defaults read them; MinIO mode removes all AWS_* anyway
	}
	dir := t.TempDir()
	var out, errw bytes.Buffer
	args := []string{"--check", "--dir", dir, "--bin", filepath.Join(dir, "bin"), "--listen", freeAddr(t), "--health-addr", freeAddr(t), "--passive-ports", "0"}
	code := run(args, &out, &errw)
	if code != 0 {
		t.Fatalf("demo --check exited %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errw.String())
	}
	for _, want := range []string{"curl --ssl-reqd -k -T somefile ftp://demo:", "lftp -u demo,", "check: passed",
		"nothing is mounted at " + filepath.Join(dir, "mnt")} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if mounted(filepath.Join(dir, "mnt")) {
		t.Fatal("the mount point is still mounted after the demo")
	}
	b, err := os.ReadFile(filepath.Join(dir, "users.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "users.yaml")); fi.Mode().Perm() != 0o600 {
		t.Errorf("users file mode %v, want 0600", fi.Mode().Perm())
	}
	i := strings.Index(out.String(), "password ")
	if i < 0 {
		t.Fatal("no password printed")
	}
	pw := strings.Fields(out.String()[i+len("password "):])[0]
	if strings.Contains(string(b), pw) {
		t.Error("the users file holds the password itself, not only its hash")
	}
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return "127.0.0.1:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		wantErr string
	}{
		{args: nil},
		{args: []string{"--bucket", "b", "--endpoint", "https://s3.example.net", "--region", "eu-west-1"}},
		{args: []string{"--endpoint", "http://x"}, wantErr: "need --bucket"},
		{args: []string{"--region", "x"}, wantErr: "need --bucket"},
		{args: []string{"extra"}, wantErr: "unexpected argument"},
	} {
		var errw bytes.Buffer
		_, err := parseFlags(tc.args, &errw)
		if (err == nil) != (tc.wantErr == "") || err != nil && !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("parseFlags(%q) = %v, want error containing %q", tc.args, err, tc.wantErr)
		}
	}
}

func TestRandomPassword(t *testing.T) {
	seen := map[string]bool{}
	for range 50 {
		p, err := randomPassword()
		if err != nil {
			t.Fatal(err)
		}
		if len(p) != 20 || strings.Trim(p, "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789") != "" {
			t.Fatalf("password %q: want 20 URL- and shell-safe characters", p)
		}
		if seen[p] {
			t.Fatalf("password %q repeated", p)
		}
		seen[p] = true
	}
}

func TestWithoutDaemonSettings(t *testing.T) {
	got := withoutDaemonSettings([]string{"PATH=/bin", "S3MOUNT_CONFIG=/etc/x", "FTPFRONT_ALLOW_PLAIN=true", "AWS_REGION=r", "XS3MOUNT_A=1"})
	if strings.Join(got, " ") != "PATH=/bin AWS_REGION=r XS3MOUNT_A=1" {
		t.Fatalf("got %q", got)
	}
}
