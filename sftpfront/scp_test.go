package sftpfront

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/s3ftp/s3ftp/ftpfront"
	"github.com/spf13/afero"
)

// scp runs OpenSSH's scp as u with args (remote paths written "R:path") and returns its output and error; host
// key checking and authentication as in sftpBatch.
func (s *testServer) scp(u testUser, args ...string) (string, error) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	full := []string{"-e", needBinary(s.t, "scp"),
		"-F", "/dev/null",
		"-o", "UserKnownHostsFile=" + s.knownHosts,
		"-o", "StrictHostKeyChecking=yes",
		"-o", "PreferredAuthentications=password",
		"-o", "PubkeyAuthentication=no",
		"-o", "NumberOfPasswordPrompts=1",
		"-o", "ConnectTimeout=10",
		"-P", s.port}
	for _, a := range args {
		if r, ok := strings.CutPrefix(a, "R:"); ok {
			a = u.name + "@127.0.0.1:" + r
		}
		full = append(full, a)
	}
	cmd := exec.CommandContext(ctx, needBinary(s.t, "sshpass"), full...)
	cmd.Dir = s.work
	cmd.Env = append(os.Environ(), "HOME="+s.work, "LC_ALL=C", "SSHPASS="+u.password)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	s.t.Logf("scp as %s %v: err %v\n%s", u.name, args, err, out.String())
	return out.String(), err
}

func (s *testServer) mustSCP(u testUser, args ...string) {
	s.t.Helper()
	if out, err := s.scp(u, args...); err != nil {
		s.t.Fatalf("scp %v failed: %v\n%s", args, err, out)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The command parser accepts exactly scp with its flags and paths, quoted as a shell would; every other
// command, and shell operators, are refused.
func TestParseSCPAcceptsOnlySCPCommands(t *testing.T) {
	for cmd, want := range map[string]string{
		"scp -t up.bin":                  "sink [up.bin]",
		"scp -v -r -p -d -t -- -x":       "sink r p d [-x]",
		"scp -rpf a b":                   "source r p [a b]",
		"scp -f 'with space' \"q\\\"x\"": "source [with space q\"x]",
		"scp -t ~/d":                     "sink [~/d]",
	} {
		c, err := parseSCP(cmd)
		if err != nil {
			t.Errorf("%q refused: %v", cmd, err)
			continue
		}
		got := map[bool]string{true: "sink", false: "source"}[c.sink]
		for _, f := range []struct {
			on   bool
			name string
		}{{c.recursive, "r"}, {c.preserve, "p"}, {c.targetDir, "d"}} {
			if f.on {
				got += " " + f.name
			}
		}
		got += " [" + strings.Join(c.paths, " ") + "]"
		if got != want {
			t.Errorf("%q = %s, want %s", cmd, got, want)
		}
	}
	for _, cmd := range []string{"id", "", "sh -c 'scp -t x'", "/usr/bin/scp -t x", "scp -t x; id", "scp -t x && id",
		"scp -t $(id)", "scp -t `id`", "scp -f *.txt", "scp -t a b", "scp -t", "scp -x -t a", "scp -t -f a",
		"scp a", "scp -t 'open", "scp -t x | cat", "scp -t x\nid"} {
		if c, err := parseSCP(cmd); err == nil {
			t.Errorf("%q accepted: %+v", cmd, c)
		}
	}
	if got := scpPath("../../a/./b"); got != "/a/b" {
		t.Errorf("scpPath(../../a/./b) = %q", got)
	}
	if got := scpPath("~/x"); got != "/x" {
		t.Errorf("scpPath(~/x) = %q", got)
	}
}

// scp -O (the legacy protocol) uploads a 3 MiB file, into the home and into a directory, and downloads it
// byte-identical; the audit log records each transfer.
func TestSCPLegacyPutAndGet(t *testing.T) {
	s := newTestServer(t)
	data := randomBytes(t, 3<<20+4321)
	s.local("up.bin", data)
	if err := os.Mkdir(s.home(alice, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	s.mustSCP(alice, "-O", "up.bin", "R:")
	s.mustSCP(alice, "-O", "up.bin", "R:d")
	s.mustSCP(alice, "-O", "up.bin", "R:renamed.bin")
	for _, p := range []string{"up.bin", "d/up.bin", "renamed.bin"} {
		if got := mustRead(t, s.home(alice, p)); !bytes.Equal(got, data) {
			t.Fatalf("%s on the server differs: %d bytes, want %d", p, len(got), len(data))
		}
	}
	s.mustSCP(alice, "-O", "R:d/up.bin", "down.bin")
	if got := mustRead(t, filepath.Join(s.work, "down.bin")); !bytes.Equal(got, data) {
		t.Fatalf("downloaded file differs: %d bytes", len(got))
	}
	if got := s.audit.find("upload"); strings.Join(got, " ") != "/up.bin=ok /d/up.bin=ok /renamed.bin=ok" {
		t.Errorf("upload audit = %v", got)
	}
	if got := s.audit.find("download"); len(got) != 1 || got[0] != "/d/up.bin=ok" {
		t.Errorf("download audit = %v", got)
	}
	if out, err := s.scp(alice, "-O", "R:missing.bin", "x.bin"); err == nil || !strings.Contains(out, "no such file") {
		t.Errorf("download of a missing file: err %v, output lacks \"no such file\":\n%s", err, out)
	}
}

// writeTree makes a small tree under dir: files at two depths, an empty directory and an empty file.
func writeTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{"a.txt": "a\n", "sub/b.txt": "bee\n", "sub/deeper/c.bin": strings.Repeat("c", 100000),
		"sub/empty.txt": ""}
	for p, c := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "emptydir"), 0o755); err != nil {
		t.Fatal(err)
	}
	return files
}

// checkTree fails unless dir holds exactly the files (and the empty directory) writeTree made.
func checkTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	got := map[string]string{}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			if rel == "emptydir" {
				got[rel] = "<dir>"
			}
			return nil
		}
		b, _ := os.ReadFile(p)
		got[filepath.ToSlash(rel)] = string(b)
		return nil
	})
	want := map[string]string{"emptydir": "<dir>"}
	for k, v := range files {
		want[k] = v
	}
	if len(got) != len(want) {
		t.Fatalf("tree %s has %d entries, want %d: %v", dir, len(got), len(want), keys(got))
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s/%s = %d bytes, want %d", dir, k, len(got[k]), len(v))
		}
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// scp -O -r uploads a small tree (nested directories, an empty directory, an empty file) and downloads it
// back identical.
func TestSCPLegacyRecursiveTree(t *testing.T) {
	s := newTestServer(t)
	files := writeTree(t, filepath.Join(s.work, "tree"))
	s.mustSCP(alice, "-O", "-r", "tree", "R:")
	checkTree(t, s.home(alice, "tree"), files)
	s.mustSCP(alice, "-O", "-r", "tree", "R:copy") // a target that does not exist is the directory's new name
	checkTree(t, s.home(alice, "copy"), files)
	s.mustSCP(alice, "-O", "-r", "R:tree", "back")
	checkTree(t, filepath.Join(s.work, "back"), files)
	if got := s.audit.find("mkdir"); len(got) != 8 {
		t.Errorf("mkdir audit = %v, want 8 directories", got)
	}
}

// scp -O -p keeps the modification time and mode both ways: on the server through Chtimes and Chmod, on the
// client from the T and C lines the server sends.
func TestSCPLegacyPreservesMtimeAndMode(t *testing.T) {
	s := newTestServer(t)
	mtime := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	p := s.local("old.txt", []byte("from 2001\n"))
	os.Chmod(p, 0o640)
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(s.work, "olddir")
	os.Mkdir(dir, 0o750)
	os.WriteFile(filepath.Join(dir, "in.txt"), []byte("in"), 0o600)
	os.Chtimes(filepath.Join(dir, "in.txt"), mtime, mtime)
	os.Chtimes(dir, mtime, mtime)
	s.mustSCP(alice, "-O", "-p", "old.txt", "R:")
	s.mustSCP(alice, "-O", "-p", "-r", "olddir", "R:")
	for p, mode := range map[string]os.FileMode{"old.txt": 0o640, "olddir": 0o750, "olddir/in.txt": 0o600} {
		fi, err := os.Stat(s.home(alice, p))
		if err != nil {
			t.Fatal(err)
		}
		if !fi.ModTime().Equal(mtime) {
			t.Errorf("%s: mtime on the server = %v, want %v", p, fi.ModTime().UTC(), mtime)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s: mode on the server = %v, want %v", p, fi.Mode().Perm(), mode)
		}
	}
	server := time.Date(1999, 12, 31, 23, 59, 58, 0, time.UTC)
	os.WriteFile(s.home(alice, "srv.txt"), []byte("server"), 0o604)
	os.Chtimes(s.home(alice, "srv.txt"), server, server)
	s.mustSCP(alice, "-O", "-p", "R:srv.txt", "got.txt")
	fi, err := os.Stat(filepath.Join(s.work, "got.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if !fi.ModTime().Equal(server) || fi.Mode().Perm() != 0o604 {
		t.Errorf("downloaded with -p: mtime %v mode %v, want %v 0604", fi.ModTime().UTC(), fi.Mode().Perm(), server)
	}
}

// A read-only user may download with scp -O, and an upload is refused with "permission denied" before any
// data moves; nothing changes on the server.
func TestSCPLegacyReadOnlyUserIsRefused(t *testing.T) {
	s := newTestServer(t)
	os.WriteFile(s.home(bob, "keep.txt"), []byte("keep"), 0o644)
	s.local("new.txt", []byte("new"))
	s.mustSCP(bob, "-O", "R:keep.txt", "got.txt")
	if b := mustRead(t, filepath.Join(s.work, "got.txt")); string(b) != "keep" {
		t.Fatalf("download by a read-only user: %q", b)
	}
	for _, args := range [][]string{{"-O", "new.txt", "R:"}, {"-O", "new.txt", "R:keep.txt"}, {"-O", "-r", "new.txt", "R:d"}} {
		out, err := s.scp(bob, args...)
		if err == nil || !strings.Contains(out, "permission denied") {
			t.Errorf("scp %v by a read-only user: err %v, output lacks \"permission denied\":\n%s", args, err, out)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(s.root, bob.name))
	if len(entries) != 1 || string(mustRead(t, s.home(bob, "keep.txt"))) != "keep" {
		t.Fatalf("bob's home changed: %v", entries)
	}
}

// Paths with "..", absolute paths and a symbolic link pointing out stay in the jail: an upload to
// "../../x.txt" lands in the home, and a file beside the home cannot be downloaded.
func TestSCPLegacyPathsStayInTheJail(t *testing.T) {
	s := newTestServer(t)
	outside := filepath.Join(s.root, "secret.txt")
	os.WriteFile(outside, []byte("secret"), 0o644)
	if err := os.Symlink(s.root, s.home(alice, "out")); err != nil {
		t.Fatal(err)
	}
	s.local("x.txt", []byte("x"))
	s.mustSCP(alice, "-O", "x.txt", "R:../../x.txt")
	if _, err := os.Stat(s.home(alice, "x.txt")); err != nil {
		t.Errorf("upload to ../../x.txt did not land in the home: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.root, "x.txt")); !os.IsNotExist(err) {
		t.Errorf("upload to ../../x.txt escaped the home: %v", err)
	}
	for _, src := range []string{"../secret.txt", "/../secret.txt", outside, "out/secret.txt"} {
		out, err := s.scp(alice, "-O", "R:"+src, "stolen.txt")
		if err == nil {
			t.Errorf("download of %s succeeded", src)
		}
		if strings.Contains(out, s.root) && src != outside {
			t.Errorf("the error for %s names a real path:\n%s", src, out)
		}
	}
	if out, err := s.scp(alice, "-O", "x.txt", "R:out/x.txt"); err == nil {
		t.Errorf("upload through the link out succeeded:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(s.work, "stolen.txt")); !os.IsNotExist(err) {
		t.Fatalf("a file from outside the jail was downloaded: %v", err)
	}
}

// closeFailFs fails the close of every file opened for writing, as the mount does when the S3 upload fails.
type closeFailFs struct{ afero.Fs }

func (c closeFailFs) OpenFile(name string, flag int, perm os.FileMode) (afero.File, error) {
	f, err := c.Fs.OpenFile(name, flag, perm)
	if err != nil || flag&(os.O_WRONLY|os.O_RDWR) == 0 {
		return f, err
	}
	return closeFailFile{f}, nil
}

type closeFailFile struct{ afero.File }

func (f closeFailFile) Close() error {
	f.File.Close()
	return errors.New("upload to S3 failed")
}

// When the file's close fails (on the mount: the S3 upload failed), scp -O reports an error and exits non-zero,
// the file is removed, and the audit log records the failure.
func TestSCPLegacyCloseErrorReachesTheClientAndRemovesTheFile(t *testing.T) {
	s := newTestServer(t, func(st *testSetup) {
		st.fs = func(u *ftpfront.User) (afero.Fs, error) {
			fs, err := ftpfront.DefaultFsFactory(u)
			return closeFailFs{fs}, err
		}
	})
	s.local("up.bin", randomBytes(t, 100000))
	out, err := s.scp(alice, "-O", "up.bin", "R:")
	if err == nil || !strings.Contains(out, "scp: /up.bin: failure") {
		t.Errorf("scp with a failing close: err %v, output lacks the error:\n%s", err, out)
	}
	if _, err := os.Stat(s.home(alice, "up.bin")); !os.IsNotExist(err) {
		t.Errorf("the file of the failed upload is still there: %v", err)
	}
	if got := s.audit.find("upload"); len(got) != 1 || !strings.HasSuffix(got[0], "upload to S3 failed") {
		t.Errorf("upload audit = %v", got)
	}
}

// Plain scp (SFTP mode, OpenSSH's default) puts and gets a file, and with -r -p a tree with its mtimes.
func TestSCPOverSFTPPutGetRecursivePreserve(t *testing.T) {
	s := newTestServer(t)
	data := randomBytes(t, 2<<20+5)
	s.local("up.bin", data)
	s.mustSCP(alice, "up.bin", "R:")
	s.mustSCP(alice, "R:up.bin", "down.bin")
	if !bytes.Equal(mustRead(t, s.home(alice, "up.bin")), data) || !bytes.Equal(mustRead(t, filepath.Join(s.work, "down.bin")), data) {
		t.Fatal("scp over SFTP: files differ")
	}
	files := writeTree(t, filepath.Join(s.work, "tree"))
	mtime := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	os.Chtimes(filepath.Join(s.work, "tree", "sub", "b.txt"), mtime, mtime)
	s.mustSCP(alice, "-r", "-p", "tree", "R:")
	checkTree(t, s.home(alice, "tree"), files)
	if fi, err := os.Stat(s.home(alice, "tree/sub/b.txt")); err != nil || !fi.ModTime().Equal(mtime) {
		t.Errorf("tree/sub/b.txt after scp -r -p: %v, %v; want mtime %v", fi, err, mtime)
	}
	s.mustSCP(alice, "-r", "-p", "R:tree", "back")
	checkTree(t, filepath.Join(s.work, "back"), files)
	if fi, err := os.Stat(filepath.Join(s.work, "back/sub/b.txt")); err != nil || !fi.ModTime().Equal(mtime) {
		t.Errorf("back/sub/b.txt after scp -r -p: %v, %v; want mtime %v", fi, err, mtime)
	}
}

// Plain scp (SFTP mode) opens an existing file without truncation and rewrites it from offset 0, then sets the
// size it wrote: over a larger and over a smaller file the result is the new file, byte-identical.
func TestSCPOverSFTPOverwritesAnExistingFile(t *testing.T) {
	s := newTestServer(t)
	for _, old := range []int{5 << 20, 100} {
		data := randomBytes(t, 1<<20+3)
		data[0] ^= byte(old)
		s.local("up.bin", data)
		if err := os.WriteFile(s.home(alice, "up.bin"), bytes.Repeat([]byte("o"), old), 0o644); err != nil {
			t.Fatal(err)
		}
		s.mustSCP(alice, "up.bin", "R:")
		if got := mustRead(t, s.home(alice, "up.bin")); !bytes.Equal(got, data) {
			t.Errorf("over a %d-byte file: the server has %d bytes, want %d identical", old, len(got), len(data))
		}
	}
}

// The sink refuses entry names that are not one path element ("..", "a/b", empty, "." for a file) and a
// directory without -r; it takes "." as a directory (scp -r . host:dir sends it) as the target itself.
func TestSCPSinkChecksEntryNames(t *testing.T) {
	for _, line := range []string{"C0644 1 ..", "C0644 1 a/b", "C0644 1 ", "C0644 1 .", "D0755 0 ..", "C0644 x a", "C99999 1 a",
		"C0644 -1 a", "Cxyz"} {
		if m, size, name, err := parseSCPEntry(line[1:]); err == nil && !(name == "." && line[0] == 'C') {
			t.Errorf("%q accepted: %v %d %q", line, m, size, name)
		}
	}
	if _, _, name, err := parseSCPEntry("0755 0 ."); err != nil || name != "." {
		t.Errorf(`"D0755 0 ." refused: %v`, err)
	}
	s := newTestServer(t)
	os.MkdirAll(filepath.Join(s.work, "here", "sub"), 0o755)
	os.WriteFile(filepath.Join(s.work, "here", "sub", "f.txt"), []byte("f"), 0o644)
	os.Mkdir(s.home(alice, "dest"), 0o755)
	s.mustSCP(alice, "-O", "-r", "../"+filepath.Base(s.work)+"/here/.", "R:dest")
	if b, err := os.ReadFile(s.home(alice, "dest/sub/f.txt")); err != nil || string(b) != "f" {
		t.Errorf("scp -O -r dir/. into dest: %q, %v", b, err)
	}
}

// A client that ends the channel in the middle of a file's data leaves no file behind, and the audit log
// records the upload as lost; an exec of any command but scp is refused on the same connection.
func TestSCPLostConnectionRemovesThePartialFile(t *testing.T) {
	s := newTestServer(t)
	sc, _ := s.dial(alice)
	sess, err := sc.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	stdin, _ := sess.StdinPipe()
	stdout, _ := sess.StdoutPipe()
	if err := sess.Start("scp -t /"); err != nil {
		t.Fatal(err)
	}
	ack := make([]byte, 1)
	if _, err := io.ReadFull(stdout, ack); err != nil || ack[0] != 0 {
		t.Fatalf("ready: %v %v", ack, err)
	}
	io.WriteString(stdin, "C0644 100000 half.bin\n")
	if _, err := io.ReadFull(stdout, ack); err != nil || ack[0] != 0 {
		t.Fatalf("C line answer: %v %v", ack, err)
	}
	stdin.Write(randomBytes(t, 40000))
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(s.home(alice, "half.bin")); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	stdin.Close()
	if err := sess.Wait(); err == nil {
		t.Error("scp with a cut upload exited 0")
	}
	for time.Now().Before(deadline) && len(s.audit.find("upload")) == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	if got := s.audit.find("upload"); len(got) != 1 || got[0] != "/half.bin=connection lost" {
		t.Errorf("upload audit = %v", got)
	}
	if _, err := os.Stat(s.home(alice, "half.bin")); !os.IsNotExist(err) {
		t.Errorf("the partial file is still there: %v", err)
	}
	sess, _ = sc.NewSession()
	if err := sess.Run("scp -t / ; id"); err == nil {
		t.Error("an scp command with a shell operator ran")
	}
	sess.Close()
}
