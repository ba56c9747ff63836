package s3mount_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/s3ftp/s3ftp/s3client"
	"github.com/s3ftp/s3ftp/s3mount"
)

// Permissions and ownership: the kernel checks access against what files show (default_permissions, on by
// default with allow_other), and a file keeps the mode it was created with, its creator's uid and gid, and both
// across an overwrite.

// reachable lets every user reach dir: t.TempDir's own directory is private (0700).
func reachable(t *testing.T, dir string) {
	t.Helper()
	if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
}

// nobody runs script with sh as uid and gid 65534, without supplementary groups, and returns its output.
func nobody(t *testing.T, script string) (string, error) {
	t.Helper()
	out, err := exec.Command("setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
		"sh", "-c", script).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func TestFakePermissionsAndOwnership(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root: the test runs commands as uid 65534 with setpriv")
	}
	// Directories show 0777 so that uid 65534 may create files in them.
	env, fake := mountFake(t, func(o *s3mount.Options) { o.DirMode, o.Umask = 0o777, 0 })
	reachable(t, env.Dir)

	// Created by root with mode 0600: only the mode differs from the mount's defaults.
	private := filepath.Join(env.Dir, "private")
	if err := os.WriteFile(private, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if info, _ := fake.Info("private"); info.Metadata["mode"] != "33152" || info.Metadata["uid"] != "" {
		t.Errorf("headers of root's 0600 file = %v, want mode 33152 (0100600) and no uid (the default)", info.Metadata)
	}
	if out, err := nobody(t, "cat "+private); err == nil || !strings.Contains(out, "Permission denied") {
		t.Errorf("uid 65534 reading root's 0600 file: %v %q, want Permission denied", err, out)
	}
	if out, err := nobody(t, "echo x >> "+private); err == nil || !strings.Contains(out, "Permission denied") {
		t.Errorf("uid 65534 appending to root's 0600 file: %v %q, want Permission denied", err, out)
	}

	// Created by uid 65534 with umask 027: its mode, uid and gid are stored.
	theirs := filepath.Join(env.Dir, "theirs")
	if out, err := nobody(t, "umask 027; echo mine > "+theirs); err != nil {
		t.Fatalf("uid 65534 creating a file: %v %s", err, out)
	}
	var st os.FileInfo
	st, err := os.Stat(theirs)
	if err != nil {
		t.Fatal(err)
	}
	if info, _ := fake.Info("theirs"); info.Metadata["mode"] != "33184" || info.Metadata["uid"] != "65534" ||
		info.Metadata["gid"] != "65534" || st.Mode().Perm() != 0o640 {
		t.Errorf("file created by uid 65534 with umask 027: headers %v, mode %v; want mode 33184 (0100640), uid and gid 65534",
			info.Metadata, st.Mode())
	}

	// An overwrite (O_TRUNC) keeps mode and owner, also when the mount knows the file from a listing only.
	if err := os.Chmod(private, 0o600); err != nil {
		t.Fatal(err)
	}
	fake.PutWith("listed", []byte("old"), s3client.PutOptions{Metadata: map[string]string{"mode": "33152", "uid": "65534", "gid": "65534"}})
	if _, err := os.ReadDir(env.Dir); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"private", "listed", "theirs"} {
		before, _ := fake.Info(name)
		if err := os.WriteFile(filepath.Join(env.Dir, name), []byte("rewritten"), 0o666); err != nil {
			t.Fatal(err)
		}
		after, _ := fake.Info(name)
		for _, k := range []string{"mode", "uid", "gid"} {
			if after.Metadata[k] != before.Metadata[k] {
				t.Errorf("%s: overwrite changed header %s from %q to %q", name, k, before.Metadata[k], after.Metadata[k])
			}
		}
	}
	if out, err := nobody(t, "cat "+filepath.Join(env.Dir, "listed")); err != nil || out != "rewritten" {
		t.Errorf("uid 65534 reading its own rewritten file: %v %q", err, out)
	}
}

// With DefaultPermissions off, the mount checks nothing: whoever reaches it may read anything.
func TestFakeDefaultPermissionsOff(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root: the test runs commands as uid 65534 with setpriv")
	}
	env, _ := mountFake(t, func(o *s3mount.Options) { o.DefaultPermissions = false })
	reachable(t, env.Dir)
	fn := filepath.Join(env.Dir, "private")
	if err := os.WriteFile(fn, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := nobody(t, "cat "+fn); err != nil || out != "secret" {
		t.Errorf("uid 65534 reading a 0600 file without default_permissions: %v %q, want the bytes", err, out)
	}
}
