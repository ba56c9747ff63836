package ftpfront

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/s3ftp/s3ftp/internal/logbuf"
	"github.com/spf13/afero"
)

func TestParseRequireMount(t *testing.T) {
	for in, want := range map[string]RequireMount{
		"auto": RequireMountAuto, "AUTO": RequireMountAuto, " auto ": RequireMountAuto,
		"true": RequireMountTrue, "1": RequireMountTrue, "false": RequireMountFalse, "0": RequireMountFalse,
	} {
		if got, err := ParseRequireMount(in); err != nil || got != want {
			t.Errorf("ParseRequireMount(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "yes please", "mounted"} {
		if _, err := ParseRequireMount(in); err == nil {
			t.Errorf("ParseRequireMount(%q) accepted", in)
		}
	}
}

// tmpfsRoot is a temp directory with a tmpfs mounted on it (the s3mount in production); mount and unmount change
// that, and the test's end unmounts what is left.
type tmpfsRoot struct {
	t       *testing.T
	dir     string
	mounted bool
}

func newTmpfsRoot(t *testing.T) *tmpfsRoot {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("mounting the tmpfs this test uses needs root")
	}
	r := &tmpfsRoot{t: t, dir: t.TempDir()}
	t.Cleanup(func() {
		if r.mounted {
			syscall.Unmount(r.dir, syscall.MNT_DETACH)
		}
	})
	r.mount()
	return r
}

func (r *tmpfsRoot) mount() {
	r.t.Helper()
	if err := syscall.Mount("tmpfs", r.dir, "tmpfs", 0, "size=4m"); err != nil {
		r.t.Fatalf("mount tmpfs on %s: %v", r.dir, err)
	}
	r.mounted = true
}

// unmount detaches the tmpfs as s3mount's unmount watcher does (a file a finished transfer still closes may
// hold it for a moment).
func (r *tmpfsRoot) unmount() {
	r.t.Helper()
	if err := syscall.Unmount(r.dir, syscall.MNT_DETACH); err != nil {
		r.t.Fatalf("unmount %s: %v", r.dir, err)
	}
	r.mounted = false
}

// bare fails the test when the local directory under the mount point has any entry.
func (r *tmpfsRoot) bare(when string) {
	r.t.Helper()
	if r.mounted {
		r.t.Fatal("bare called while mounted")
	}
	ents, err := os.ReadDir(r.dir)
	if err != nil {
		r.t.Fatal(err)
	}
	if len(ents) != 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		r.t.Fatalf("%s: the local directory under the mount point has %v", when, names)
	}
}

func TestNewMountGuardModes(t *testing.T) {
	plain := t.TempDir()
	for _, mode := range []RequireMount{RequireMountAuto, RequireMountFalse} {
		if g, err := NewMountGuard(plain, mode, nil); g != nil || err != nil {
			t.Errorf("plain directory, %s: guard %v, err %v; want none", mode, g, err)
		}
	}
	if g, err := NewMountGuard(plain, RequireMountTrue, nil); g != nil || err == nil || !strings.Contains(err.Error(), "is not a mount point") {
		t.Errorf("plain directory, true: guard %v, err %v; want an error naming the cause", g, err)
	}
	if _, err := NewMountGuard(filepath.Join(plain, "missing"), RequireMountAuto, nil); err == nil {
		t.Error("missing root, auto: no error")
	}
	if _, err := NewMountGuard(plain, "sometimes", nil); err == nil {
		t.Error("unknown mode accepted")
	}
	// A nil guard guards nothing.
	var g *MountGuard
	if g.Check() != nil {
		t.Error("nil guard refused")
	}

	r := newTmpfsRoot(t)
	for _, mode := range []RequireMount{RequireMountAuto, RequireMountTrue} {
		if g, err := NewMountGuard(r.dir, mode, nil); g == nil || err != nil {
			t.Errorf("mount point, %s: guard %v, err %v; want a guard", mode, g, err)
		}
	}
	if g, err := NewMountGuard(r.dir, RequireMountFalse, nil); g != nil || err != nil {
		t.Errorf("mount point, false: guard %v, err %v; want none", g, err)
	}
}

// guardedServer runs a server whose users' file systems are JailFs at root behind a MountGuard built with mode.
func guardedServer(t *testing.T, root string, mode RequireMount, log *slog.Logger) (*testServer, *MountGuard) {
	t.Helper()
	g, err := NewMountGuard(root, mode, log)
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, g.FsFactory(DefaultFsFactory), nil)
	ts.auth.homes["alice"] = root
	return ts, g
}

// upload stores data as name over a new passive data connection and expects 226.
func (c *rawClient) upload(name, data string) {
	c.t.Helper()
	d := dialData(c.t, c.epsv(), "")
	c.must(150, "STOR %s", name)
	io.WriteString(d, data)
	d.Close()
	c.expect(226)
}

// download retrieves name over a new passive data connection and expects 226.
func (c *rawClient) download(name string) string {
	c.t.Helper()
	d := dialData(c.t, c.epsv(), "")
	c.must(150, "RETR %s", name)
	b, err := io.ReadAll(d)
	if err != nil {
		c.t.Fatalf("RETR %s: %v", name, err)
	}
	c.expect(226)
	return string(b)
}

// TestMountGuardRefusesUnmountedRoot: with a guard, uploads work while the root is mounted; once it is unmounted
// every file command (STOR APPE MKD RETR LIST NLST MLSD MLST SIZE MDTM MFMT CWD DELE RNFR RMD STAT path) gets
// 451, refused transfers are audited, one warning names the cause, a login still works, and nothing appears in
// the local directory under the mount point; after mounting again the same sessions (including the one that
// logged in during the outage) upload again.
func TestMountGuardRefusesUnmountedRoot(t *testing.T) {
	r := newTmpfsRoot(t)
	log, logs := logbuf.New(nil)
	ts, _ := guardedServer(t, r.dir, RequireMountAuto, log)

	c := dialRaw(t, ts.addr)
	c.secure("alice", "secret")
	c.must(257, "MKD d")
	c.upload("a.txt", "on the mount")
	if got := c.download("a.txt"); got != "on the mount" {
		t.Fatalf("RETR while mounted = %q", got)
	}

	r.unmount()
	for _, cmd := range []string{"STOR b.txt", "APPE a.txt", "RETR a.txt", "LIST", "NLST", "MLSD"} {
		c.epsv()
		if code, text := c.cmd("%s", cmd); code != 451 || !strings.Contains(text, "Storage unavailable") {
			t.Errorf("%s while unmounted: %d %q, want 451 Storage unavailable", cmd, code, text)
		}
	}
	for _, cmd := range []string{"MKD e", "MLST a.txt", "SIZE a.txt", "MDTM a.txt", "MFMT 20240102030405 a.txt",
		"CWD d", "DELE a.txt", "RNFR a.txt", "RMD d", "STAT a.txt"} {
		if code, text := c.cmd("%s", cmd); code != 451 || !strings.Contains(text, "Storage unavailable") {
			t.Errorf("%s while unmounted: %d %q, want 451 Storage unavailable", cmd, code, text)
		}
	}
	c.must(257, "PWD")
	c2 := dialRaw(t, ts.addr)
	c2.secure("alice", "secret") // a login needs no storage
	c2.epsv()
	c2.must(451, "STOR late.txt")
	r.bare("after the refused commands")

	for _, want := range []struct{ kind, path string }{{"upload", "/b.txt"}, {"upload", "/a.txt"}, {"download", "/a.txt"}, {"upload", "/late.txt"}} {
		evs := ts.audit.find(want.kind, want.path)
		if len(evs) == 0 || !strings.Contains(evs[len(evs)-1].Result, "storage unavailable") {
			t.Errorf("no audit record of the refused %s of %s: %+v", want.kind, want.path, evs)
		}
	}
	if n := strings.Count(logs.String(), "served root is not mounted"); n != 1 {
		t.Errorf("%d warnings naming the unmount, want 1 per outage:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("the unmount is not logged as a warning:\n%s", logs.String())
	}

	r.mount()
	c.upload("c.txt", "mounted again")
	c2.upload("late.txt", "after the outage")
	for name, want := range map[string]string{"c.txt": "mounted again", "late.txt": "after the outage"} {
		if got, err := os.ReadFile(filepath.Join(r.dir, name)); err != nil || string(got) != want {
			t.Errorf("%s on the new mount: %q, %v", name, got, err)
		}
	}
	if !strings.Contains(logs.String(), "served root is mounted again") {
		t.Errorf("the end of the outage is not logged:\n%s", logs.String())
	}
}

// TestMountGuardOff: with --require-mount=false the server keeps serving whatever is at the root, as before the
// guard existed: an upload after the unmount lands in the local directory.
func TestMountGuardOff(t *testing.T) {
	r := newTmpfsRoot(t)
	ts, g := guardedServer(t, r.dir, RequireMountFalse, testLogger(t))
	if g != nil {
		t.Fatal("require-mount false built a guard")
	}
	c := dialRaw(t, ts.addr)
	c.secure("alice", "secret")
	r.unmount()
	c.upload("local.txt", "on local disk")
	if got, err := os.ReadFile(filepath.Join(r.dir, "local.txt")); err != nil || string(got) != "on local disk" {
		t.Fatalf("upload without a guard: %q, %v", got, err)
	}
}

// TestMountGuardUnmountDuringOpen: the root goes away between the guard's check and the open (simulated by a
// check that unmounts the root and still reports it mounted). A STOR then created its file on the local
// directory; the check after the open refuses it and removes that empty file. An APPE to a file that already
// had content there keeps it.
func TestMountGuardUnmountDuringOpen(t *testing.T) {
	r := newTmpfsRoot(t)
	g, err := NewMountGuard(r.dir, RequireMountTrue, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	var unmountNext atomic.Bool
	g.isMounted = func(dir string) (bool, error) {
		if unmountNext.Swap(false) {
			r.unmount()
			return true, nil
		}
		return isMountPoint(dir)
	}
	fsys, err := g.FsFactory(DefaultFsFactory)(&User{Name: "alice", Home: r.dir})
	if err != nil {
		t.Fatal(err)
	}

	unmountNext.Store(true)
	_, err = fsys.OpenFile("/new.txt", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if !errors.Is(err, ErrStorageUnavailable) {
		t.Fatalf("STOR's open across the unmount: %v, want ErrStorageUnavailable", err)
	}
	r.bare("after a STOR's open across the unmount")

	// The local directory already holds a file with content (written there while nothing was mounted).
	old := filepath.Join(r.dir, "old.txt")
	if err := os.WriteFile(old, []byte("kept"), 0o644); err != nil {
		t.Fatal(err)
	}
	r.mount()
	unmountNext.Store(true)
	_, err = fsys.OpenFile("/old.txt", os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if !errors.Is(err, ErrStorageUnavailable) {
		t.Fatalf("APPE's open across the unmount: %v, want ErrStorageUnavailable", err)
	}
	if got, err := os.ReadFile(old); err != nil || string(got) != "kept" {
		t.Fatalf("a local file with content was changed: %q, %v", got, err)
	}
}

// A guardFs opened while the root is unmounted opens the user's file system at its first operation after the
// mount is back, and refuses every afero.Fs operation while the root is down.
func TestMountGuardFsOperations(t *testing.T) {
	r := newTmpfsRoot(t)
	g, err := NewMountGuard(r.dir, RequireMountAuto, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	var opened atomic.Int32
	r.unmount()
	fsys, err := g.FsFactory(func(u *User) (afero.Fs, error) {
		opened.Add(1)
		return DefaultFsFactory(u)
	})(&User{Name: "alice", Home: r.dir})
	if err != nil {
		t.Fatal(err)
	}
	if opened.Load() != 0 {
		t.Fatal("the user's file system was opened while the root was unmounted")
	}
	ops := map[string]func() error{
		"Create":    func() error { _, err := fsys.Create("/x"); return err },
		"Open":      func() error { _, err := fsys.Open("/"); return err },
		"Mkdir":     func() error { return fsys.Mkdir("/d", 0o755) },
		"MkdirAll":  func() error { return fsys.MkdirAll("/d/e", 0o755) },
		"Remove":    func() error { return fsys.Remove("/x") },
		"RemoveAll": func() error { return fsys.RemoveAll("/d") },
		"Rename":    func() error { return fsys.Rename("/x", "/y") },
		"Stat":      func() error { _, err := fsys.Stat("/"); return err },
		"Chmod":     func() error { return fsys.Chmod("/", 0o755) },
		"Chown":     func() error { return fsys.Chown("/", 0, 0) },
		"Chtimes":   func() error { return fsys.Chtimes("/", time.Unix(0, 0), time.Unix(0, 0)) },
	}
	for name, op := range ops {
		if err := op(); !errors.Is(err, ErrStorageUnavailable) {
			t.Errorf("%s while unmounted: %v, want ErrStorageUnavailable", name, err)
		}
	}
	r.bare("after every operation was refused")
	r.mount()
	if err := afero.WriteFile(fsys, "/x", []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := fsys.Rename("/x", "/y"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(r.dir, "y")); err != nil {
		t.Fatalf("write after the mount came back: %v", err)
	}
	if opened.Load() != 1 {
		t.Fatalf("the user's file system was opened %d times, want once", opened.Load())
	}
}
