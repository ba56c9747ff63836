package sftpfront

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/s3ftp/s3ftp/ftpfront"
)

// OpenSSH's sftp uploads a 5 MiB file (more than the 64 × 32 KiB it keeps in flight, so writes are pipelined),
// downloads it byte-identical, makes a directory, renames into it, removes the file and the directory; the
// server's directory shows each step and the audit log records them.
func TestOpenSSHPutGetRenameMkdirRm(t *testing.T) {
	s := newTestServer(t)
	data := randomBytes(t, 5<<20+12345)
	s.local("up.bin", data)
	s.mustSFTP(alice, "put up.bin\nget up.bin down.bin\nmkdir d\nrename up.bin d/moved.bin\nls -l d\n")
	got, err := os.ReadFile(s.home(alice, "d/moved.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("uploaded file differs: %d bytes, want %d", len(got), len(data))
	}
	down, err := os.ReadFile(filepath.Join(s.work, "down.bin"))
	if err != nil || !bytes.Equal(down, data) {
		t.Fatalf("downloaded file differs (%d bytes, err %v)", len(down), err)
	}
	if _, err := os.Stat(s.home(alice, "up.bin")); !os.IsNotExist(err) {
		t.Fatalf("up.bin still there after rename: %v", err)
	}

	s.mustSFTP(alice, "rm d/moved.bin\nrmdir d\n")
	if _, err := os.Stat(s.home(alice, "d")); !os.IsNotExist(err) {
		t.Fatalf("d still there after rm and rmdir: %v", err)
	}
	for ev, want := range map[string]string{
		"upload": "/up.bin=ok", "download": "/up.bin=ok", "mkdir": "/d=ok",
		"rename": "/up.bin=ok", "delete": "/d/moved.bin=ok", "rmdir": "/d=ok",
	} {
		if got := s.audit.find(ev); len(got) != 1 || got[0] != want {
			t.Errorf("audit %s = %v, want [%s]", ev, got, want)
		}
	}
}

// put -p keeps the local file's modification time and mode: SETSTAT reaches os.Chtimes and os.Chmod.
func TestOpenSSHPutPreservesMtimeAndMode(t *testing.T) {
	s := newTestServer(t)
	p := s.local("old.txt", []byte("from 2001\n"))
	mtime := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o640); err != nil {
		t.Fatal(err)
	}
	s.mustSFTP(alice, "put -p old.txt\n")
	fi, err := os.Stat(s.home(alice, "old.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if !fi.ModTime().Equal(mtime) {
		t.Errorf("mtime = %v, want %v", fi.ModTime().UTC(), mtime)
	}
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("mode = %v, want 0640", fi.Mode().Perm())
	}
}

// A read-only user can list and download, and gets "Permission denied" for put, mkdir, rename and rm; nothing
// changes on the server.
func TestOpenSSHReadOnlyUserIsRefusedEveryChange(t *testing.T) {
	s := newTestServer(t)
	if err := os.WriteFile(s.home(bob, "keep.txt"), []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.local("new.txt", []byte("new"))
	s.mustSFTP(bob, "get keep.txt got.txt\n")
	if b, err := os.ReadFile(filepath.Join(s.work, "got.txt")); err != nil || string(b) != "keep" {
		t.Fatalf("download by a read-only user: %q, %v", b, err)
	}
	for _, cmd := range []string{"put new.txt", "mkdir d", "rename keep.txt k2.txt", "rm keep.txt", "chmod 600 keep.txt"} {
		out, err := s.sftpBatch(bob, cmd+"\n")
		if err == nil {
			t.Errorf("%q by a read-only user succeeded", cmd)
		}
		if !strings.Contains(out, "Permission denied") {
			t.Errorf("%q: output lacks \"Permission denied\":\n%s", cmd, out)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(s.root, bob.name))
	if len(entries) != 1 || entries[0].Name() != "keep.txt" {
		t.Fatalf("bob's home changed: %v", entries)
	}
	if fi, _ := os.Stat(s.home(bob, "keep.txt")); fi.Mode().Perm() != 0o644 {
		t.Fatalf("keep.txt mode changed to %v", fi.Mode().Perm())
	}
}

// "..", absolute paths and a symbolic link placed in the home pointing out all stay in the jail: a file beside
// the home cannot be read, an upload to "../../x" lands in the home, and "cd .." stays at "/".
func TestOpenSSHPathsStayInTheJail(t *testing.T) {
	s := newTestServer(t)
	outside := filepath.Join(s.root, "secret.txt")
	if err := os.WriteFile(outside, []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(s.root, s.home(alice, "out")); err != nil {
		t.Fatal(err)
	}
	s.local("x.txt", []byte("x"))
	for _, cmd := range []string{"get ../secret.txt", "get /../secret.txt", "get " + outside, "get out/secret.txt", "ls out/"} {
		out, err := s.sftpBatch(alice, cmd+"\n")
		if err == nil {
			t.Errorf("%q succeeded", cmd)
		}
		if strings.Contains(out, "secret.txt") && strings.Contains(out, "Fetching") {
			t.Errorf("%q fetched the file outside the jail:\n%s", cmd, out)
		}
	}
	if _, err := os.Stat(filepath.Join(s.work, "secret.txt")); !os.IsNotExist(err) {
		t.Fatalf("a file from outside the jail was downloaded: %v", err)
	}
	out := s.mustSFTP(alice, "put x.txt ../../x.txt\ncd ..\ncd ..\npwd\n")
	if !strings.Contains(out, "Remote working directory: /\n") {
		t.Errorf("pwd after cd .. is not /:\n%s", out)
	}
	if _, err := os.Stat(s.home(alice, "x.txt")); err != nil {
		t.Errorf("upload to ../../x.txt did not land in the home: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.root, "x.txt")); !os.IsNotExist(err) {
		t.Errorf("upload to ../../x.txt escaped the home: %v", err)
	}
	out, err := s.sftpBatch(alice, "ln -s x.txt l\n")
	if err == nil || !strings.Contains(out, "Operation unsupported") {
		t.Errorf("symlink request: err %v, output lacks \"Operation unsupported\":\n%s", err, out)
	}
}

// A wrong password is refused, and the failures count in the shared Access: after BanAfter of them the address
// is banned there (the same table FTPS admits by), so the right password no longer gets in.
func TestOpenSSHWrongPasswordIsRefusedAndCountsTowardsTheSharedBan(t *testing.T) {
	s := newTestServer(t, withAccess(func(ac *ftpfront.AccessConfig) { ac.BanAfter = 2 }))
	wrong := alice
	wrong.password = "not-it"
	for i := 0; i < 2; i++ {
		out, err := s.sftpBatch(wrong, "pwd\n")
		if err == nil || strings.Contains(out, "Remote working directory") {
			t.Fatalf("attempt %d with a wrong password logged in:\n%s", i+1, out)
		}
	}
	st := s.access.Stats()
	if st.LoginsFailed != 2 || st.LoginsOK != 0 {
		t.Errorf("access stats: %d failed, %d ok; want 2 failed, 0 ok", st.LoginsFailed, st.LoginsOK)
	}
	ip := netip.MustParseAddr("127.0.0.1")
	if !s.access.Banned(ip) {
		t.Fatal("address not banned in the shared Access after 2 failures")
	}
	if out, err := s.sftpBatch(alice, "pwd\n"); err == nil {
		t.Fatalf("banned address logged in with the right password:\n%s", out)
	}
	if got := s.audit.find("login_failed"); len(got) != 2 {
		t.Errorf("login_failed audit events = %v, want 2", got)
	}
	// An FTPS server on the same Access refuses the address too.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	fsrv, err := ftpfront.NewServer(ftpfront.Options{Listen: ln.Addr().String(), AllowPlain: true, TLSSelfSigned: true,
		LoginTimeout: 10 * time.Second, IdleTimeout: 10 * time.Second, DataTimeout: 10 * time.Second,
		DataAcceptTimeout: 10 * time.Second, MaxLoginAttempts: 3, Banner: "test"},
		ftpfront.Deps{Auth: s.access, Admit: s.access})
	if err != nil {
		t.Fatal(err)
	}
	if err := fsrv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fsrv.Serve(ctx) }()
	defer func() { cancel(); <-done }()
	c, err := net.DialTimeout("tcp", fsrv.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	greeting, _ := bufio.NewReader(c).ReadString('\n')
	if !strings.HasPrefix(greeting, "421") {
		t.Fatalf("FTP greeting to the address banned over SFTP = %q, want 421", greeting)
	}
}

// reput continues an interrupted upload from the server's size and reget an interrupted download from the local
// size; both end byte-identical.
func TestOpenSSHReputAndReget(t *testing.T) {
	s := newTestServer(t)
	data := randomBytes(t, 3<<20+99)
	s.local("r.bin", data)
	if err := os.WriteFile(s.home(alice, "r.bin"), data[:1<<20], 0o644); err != nil {
		t.Fatal(err)
	}
	s.mustSFTP(alice, "reput r.bin\n")
	if got, _ := os.ReadFile(s.home(alice, "r.bin")); !bytes.Equal(got, data) {
		t.Fatalf("after reput the server has %d bytes, want %d identical", len(got), len(data))
	}
	s.local("g.bin", data[:777])
	s.mustSFTP(alice, "reget r.bin g.bin\n")
	if got, _ := os.ReadFile(filepath.Join(s.work, "g.bin")); !bytes.Equal(got, data) {
		t.Fatalf("after reget the client has %d bytes, want %d identical", len(got), len(data))
	}
	if got := s.audit.find("upload"); len(got) != 1 || got[0] != "/r.bin=ok" {
		t.Errorf("upload audit = %v", got)
	}
}
