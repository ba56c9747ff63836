package sftpfront

import (
	"bytes"
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"github.com/s3ftp/s3ftp/ftpfront"
	"github.com/spf13/afero"
	"golang.org/x/crypto/ssh"
)

func withWindow(n int64) serverOpt {
	return func(s *testSetup) { s.opts.ReorderWindow = n }
}

// Writes sent in reverse order, all within the window, are answered OK and reach the file in order; the close
// is OK and the file is byte-identical.
func TestClientReverseWritesWithinTheWindowMakeTheRightFile(t *testing.T) {
	s := newTestServer(t, withWindow(1<<20))
	_, c := s.dial(alice)
	const chunk, n = 32 << 10, 32 // exactly the 1 MiB window
	data := randomBytes(t, chunk*n)
	f, err := c.Create("rev.bin")
	if err != nil {
		t.Fatal(err)
	}
	for i := n - 1; i >= 0; i-- {
		if _, err := f.WriteAt(data[i*chunk:(i+1)*chunk], int64(i*chunk)); err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	got, err := os.ReadFile(s.home(alice, "rev.bin"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("file differs: %d bytes, want %d (err %v)", len(got), len(data), err)
	}
}

// A write reaching past the window fails with a message naming the window, every later write on the handle
// fails too, the close reports the failure, and the new file is removed.
func TestClientAWriteOutsideTheWindowFailsTheUploadAndRemovesTheFile(t *testing.T) {
	s := newTestServer(t, withWindow(1<<20))
	_, c := s.dial(alice)
	f, err := c.Create("far.bin")
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteAt(make([]byte, 1024), 1<<20)
	if err == nil || !strings.Contains(err.Error(), "beyond the reorder window") {
		t.Fatalf("write past the window: err = %v, want one naming the reorder window", err)
	}
	if _, err := f.WriteAt([]byte("seq"), 0); err == nil {
		t.Fatal("a sequential write after the refused one succeeded")
	}
	if err := f.Close(); err == nil {
		t.Fatal("close of a failed upload returned OK")
	}
	if _, err := os.Stat(s.home(alice, "far.bin")); !os.IsNotExist(err) {
		t.Fatalf("the failed upload's file is still there: %v", err)
	}
	if got := s.audit.find("upload"); len(got) != 1 || strings.HasSuffix(got[0], "=ok") {
		t.Fatalf("upload audit = %v, want one failed upload", got)
	}
}

// An upload that leaves a gap (a write ahead of the written position that is never preceded) fails at close
// with "upload incomplete", and the file is removed.
func TestClientAGapNeverFilledFailsTheClose(t *testing.T) {
	s := newTestServer(t)
	_, c := s.dial(alice)
	f, err := c.Create("gap.bin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("later"), 100); err != nil {
		t.Fatal(err)
	}
	err = f.Close()
	if err == nil || !strings.Contains(err.Error(), "upload incomplete") {
		t.Fatalf("close = %v, want upload incomplete", err)
	}
	if _, err := os.Stat(s.home(alice, "gap.bin")); !os.IsNotExist(err) {
		t.Fatalf("the incomplete upload's file is still there: %v", err)
	}
}

// A resumed upload (opened without truncation) continues at the file's size.
func TestClientResumeContinuesAtTheFileSize(t *testing.T) {
	s := newTestServer(t)
	if err := os.WriteFile(s.home(alice, "part.txt"), []byte("hello "), 0o644); err != nil {
		t.Fatal(err)
	}
	_, c := s.dial(alice)
	f, err := c.OpenFile("part.txt", os.O_WRONLY)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("world"), 6); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(s.home(alice, "part.txt")); string(b) != "hello world" {
		t.Fatalf("file = %q, want %q", b, "hello world")
	}
}

// Through a symbolic link placed in the home pointing out, stat answers permission denied; RENAME refuses an
// existing target while posix-rename replaces it; hard links are unsupported.
func TestClientJailLinksAndRenameSemantics(t *testing.T) {
	s := newTestServer(t)
	os.WriteFile(filepath.Join(s.root, "secret.txt"), []byte("secret"), 0o644)
	os.Symlink(s.root, s.home(alice, "out"))
	os.WriteFile(s.home(alice, "a"), []byte("a"), 0o644)
	os.WriteFile(s.home(alice, "b"), []byte("b"), 0o644)
	_, c := s.dial(alice)

	if _, err := c.Stat("out/secret.txt"); !errors.Is(err, os.ErrPermission) {
		t.Errorf("stat through an escaping link: %v, want permission denied", err)
	}
	if _, err := c.Open("/../../secret.txt"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("open /../../secret.txt: %v, want not found (it is the home's /secret.txt)", err)
	}
	if err := c.Rename("a", "b"); err == nil {
		t.Error("RENAME onto an existing file succeeded")
	}
	if err := c.PosixRename("a", "b"); err != nil {
		t.Errorf("posix-rename: %v", err)
	}
	if b, _ := os.ReadFile(s.home(alice, "b")); string(b) != "a" {
		t.Errorf("b = %q after posix-rename, want %q", b, "a")
	}
	var se *sftp.StatusError
	if err := c.Link("b", "c"); !errors.As(err, &se) || se.FxCode() != sftp.ErrSSHFxOpUnsupported {
		t.Errorf("link: %v, want SSH_FX_OP_UNSUPPORTED", err)
	}
}

// A directory larger than one READDIR answer is listed whole.
func TestClientLargeDirectoryIsListedWhole(t *testing.T) {
	s := newTestServer(t)
	const n = 1234
	for i := 0; i < n; i++ {
		if err := os.WriteFile(s.home(alice, "f"+strings.Repeat("x", i%7)+time.Duration(i).String()), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, c := s.dial(alice)
	fis, err := c.ReadDir("/")
	if err != nil {
		t.Fatal(err)
	}
	if len(fis) != n {
		t.Fatalf("ReadDir returned %d entries, want %d", len(fis), n)
	}
}

// Shell, exec, other subsystems, port forwarding (both directions) and agent forwarding are refused; the
// connection still serves SFTP afterwards.
func TestOnlyTheSFTPSubsystemIsServed(t *testing.T) {
	s := newTestServer(t)
	sc, c := s.dial(alice)
	sess, err := sc.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.Run("id"); err == nil {
		t.Error("exec succeeded")
	}
	sess.Close()
	sess, _ = sc.NewSession()
	if err := sess.Shell(); err == nil {
		t.Error("shell succeeded")
	}
	sess.Close()
	sess, _ = sc.NewSession()
	if err := sess.RequestSubsystem("scp"); err == nil {
		t.Error("subsystem scp accepted")
	}
	if ok, err := sess.SendRequest("auth-agent-req@openssh.com", true, nil); ok || err != nil {
		t.Errorf("agent forwarding: ok=%v err=%v, want refused", ok, err)
	}
	sess.Close()
	if conn, err := sc.Dial("tcp", s.srv.Addr().String()); err == nil {
		conn.Close()
		t.Error("direct-tcpip (local forwarding) succeeded")
	}
	if ln, err := sc.Listen("tcp", "127.0.0.1:0"); err == nil {
		ln.Close()
		t.Error("tcpip-forward (remote forwarding) succeeded")
	}
	if _, err := c.Getwd(); err != nil {
		t.Errorf("SFTP after the refusals: %v", err)
	}
}

// The host key is generated once into the directory (mode 0600) and reused by the next server.
func TestHostKeyIsGeneratedOnceAndReused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	k1, created, err := LoadOrCreateHostKey(dir)
	if err != nil || !created {
		t.Fatalf("first load: created=%v err=%v", created, err)
	}
	fi, err := os.Stat(filepath.Join(dir, HostKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	k2, created, err := LoadOrCreateHostKey(dir)
	if err != nil || created {
		t.Fatalf("second load: created=%v err=%v", created, err)
	}
	if ssh.FingerprintSHA256(k1.PublicKey()) != ssh.FingerprintSHA256(k2.PublicKey()) {
		t.Fatal("the second load returned a different key")
	}
	if k1.PublicKey().Type() != ssh.KeyAlgoED25519 {
		t.Fatalf("key type %s, want ed25519", k1.PublicKey().Type())
	}
	os.WriteFile(filepath.Join(dir, HostKeyFile), []byte("garbage"), 0o600)
	if _, _, err := LoadOrCreateHostKey(dir); err == nil {
		t.Fatal("an unparsable key file was accepted (or replaced)")
	}
}

// An RSA host key is generated beside the ed25519 one (mode 0600, a .pub file) and reused; a server offers
// both.
func TestRSAHostKeyIsGeneratedBesideTheEd25519OneAndReused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	k1, created, err := LoadOrCreateRSAHostKey(dir)
	if err != nil || !created {
		t.Fatalf("first load: created=%v err=%v", created, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, RSAHostKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v; want mode 0600", err)
	}
	if _, err := os.Stat(filepath.Join(dir, RSAHostKeyFile+".pub")); err != nil {
		t.Fatal(err)
	}
	k2, created, err := LoadOrCreateRSAHostKey(dir)
	if err != nil || created || ssh.FingerprintSHA256(k1.PublicKey()) != ssh.FingerprintSHA256(k2.PublicKey()) {
		t.Fatalf("second load: created=%v err=%v, same key %v", created, err,
			err == nil && ssh.FingerprintSHA256(k1.PublicKey()) == ssh.FingerprintSHA256(k2.PublicKey()))
	}
	if k1.PublicKey().Type() != ssh.KeyAlgoRSA || k1.PublicKey().(ssh.CryptoPublicKey).CryptoPublicKey().(*rsa.PublicKey).N.BitLen() != 3072 {
		t.Fatalf("key type %s, want a 3072-bit RSA key", k1.PublicKey().Type())
	}
	db, err := ftpfront.NewUserDB(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(Options{Listen: "127.0.0.1:0", HostKeyDir: dir},
		Deps{Auth: ftpfront.NewAccess(db, ftpfront.AccessConfig{}, nil), Fs: ftpfront.DefaultFsFactory})
	if err != nil {
		t.Fatal(err)
	}
	keys := srv.HostKeys()
	if len(keys) != 2 || keys[0].Type() != ssh.KeyAlgoED25519 || ssh.FingerprintSHA256(keys[1]) != ssh.FingerprintSHA256(k1.PublicKey()) {
		t.Fatalf("server host keys %v, want ed25519 and the RSA key in the directory", keys)
	}
}

// dialWith connects with only the given algorithms (nil: the client's defaults) and runs one SFTP request.
func (s *testServer) dialWith(hostKeyAlgos, kex, ciphers, macs []string) error {
	sc, err := ssh.Dial("tcp", "127.0.0.1:"+s.port, &ssh.ClientConfig{
		User:              alice.name,
		Auth:              []ssh.AuthMethod{ssh.Password(alice.password)},
		HostKeyCallback:   s.hostKeyCallback(),
		HostKeyAlgorithms: hostKeyAlgos,
		Config:            ssh.Config{KeyExchanges: kex, Ciphers: ciphers, MACs: macs},
		Timeout:           10 * time.Second,
	})
	if err != nil {
		return err
	}
	defer sc.Close()
	c, err := sftp.NewClient(sc)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Getwd()
	return err
}

// By default the RSA host key signs with SHA-2 only: a client asking for rsa-sha2-256 logs in, one asking for
// ssh-rsa (SHA-1) finds no common algorithm, as does one offering only old key exchanges, ciphers or MACs.
func TestDefaultAlgorithmsAreModernOnly(t *testing.T) {
	s := newTestServer(t)
	if err := s.dialWith([]string{ssh.KeyAlgoRSASHA256}, nil, nil, nil); err != nil {
		t.Errorf("rsa-sha2-256 host key: %v", err)
	}
	for name, algos := range map[string][4][]string{
		"ssh-rsa":                     {{ssh.KeyAlgoRSA}},
		"diffie-hellman-group14-sha1": {nil, {ssh.InsecureKeyExchangeDH14SHA1}},
		"ecdh-sha2-nistp256":          {nil, {ssh.KeyExchangeECDHP256}},
		"aes128-ctr":                  {nil, nil, {ssh.CipherAES128CTR}},
		"hmac-sha1":                   {nil, nil, {ssh.CipherAES128CTR}, {ssh.HMACSHA1}},
	} {
		if err := s.dialWith(algos[0], algos[1], algos[2], algos[3]); err == nil || !strings.Contains(err.Error(), "no common algorithm") {
			t.Errorf("%s: %v, want no common algorithm", name, err)
		}
	}
}

// With LegacyAlgorithms a client offering only old algorithms logs in: ssh-rsa host key, group 14 SHA-1 or
// NIST ECDH key exchange, AES-CTR, HMAC-SHA1; so does OpenSSH's sftp restricted to them.
func TestLegacyAlgorithmsLetOldClientsIn(t *testing.T) {
	s := newTestServer(t, func(st *testSetup) { st.opts.LegacyAlgorithms = true })
	if err := s.dialWith([]string{ssh.KeyAlgoRSA}, []string{ssh.InsecureKeyExchangeDH14SHA1}, []string{ssh.CipherAES128CTR},
		[]string{ssh.HMACSHA1}); err != nil {
		t.Errorf("old algorithms with LegacyAlgorithms: %v", err)
	}
	if err := s.dialWith(nil, []string{ssh.KeyExchangeECDHP256}, []string{ssh.CipherAES256CTR}, []string{ssh.HMACSHA256}); err != nil {
		t.Errorf("NIST ECDH, aes256-ctr, hmac-sha2-256 with LegacyAlgorithms: %v", err)
	}
	kh := fmt.Sprintf("[127.0.0.1]:%s %s", s.port, ssh.MarshalAuthorizedKey(s.srv.HostKeys()[1]))
	if err := os.WriteFile(s.knownHosts, []byte(kh), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, needBinary(t, "sshpass"), "-e", needBinary(t, "sftp"), "-F", "/dev/null",
		"-o", "BatchMode=no", "-o", "UserKnownHostsFile="+s.knownHosts, "-o", "StrictHostKeyChecking=yes",
		"-o", "PreferredAuthentications=password", "-o", "PubkeyAuthentication=no", "-o", "NumberOfPasswordPrompts=1",
		"-o", "HostKeyAlgorithms=ssh-rsa", "-o", "KexAlgorithms=diffie-hellman-group14-sha1",
		"-o", "Ciphers=aes128-ctr", "-o", "MACs=hmac-sha1", "-P", s.port, "-b", "-", alice.name+"@127.0.0.1")
	cmd.Stdin = strings.NewReader("pwd\n")
	cmd.Env = append(os.Environ(), "HOME="+s.work, "LC_ALL=C", "SSHPASS="+alice.password)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Remote working directory: /") {
		t.Errorf("OpenSSH sftp with ssh-rsa, group14-sha1, aes128-ctr, hmac-sha1: %v\n%s", err, out)
	}
}

// df (statvfs@openssh.com) answers with the statfs of the file system under the home, checked through the jail:
// a path outside is refused; a read-only user sees the read-only flag.
func TestClientStatVFSAnswersThroughTheJail(t *testing.T) {
	s := newTestServer(t)
	if err := os.Symlink(s.root, s.home(alice, "out")); err != nil {
		t.Fatal(err)
	}
	_, c := s.dial(alice)
	st, err := c.StatVFS("/")
	if err != nil {
		t.Fatal(err)
	}
	var want syscall.Statfs_t
	if err := syscall.Statfs(s.home(alice, ""), &want); err != nil {
		t.Fatal(err)
	}
	if st.Bsize != uint64(want.Bsize) || st.Blocks != want.Blocks || st.Namemax != uint64(want.Namelen) || st.Flag&1 != 0 {
		t.Errorf("statvfs = %+v, want bsize %d blocks %d namemax %d, writable", st, want.Bsize, want.Blocks, want.Namelen)
	}
	if _, err := c.StatVFS("/out"); err == nil {
		t.Error("statvfs through a link out of the jail answered")
	}
	if _, err := c.StatVFS("/missing"); err == nil {
		t.Error("statvfs of a missing path answered")
	}
	_, rc := s.dial(bob)
	if st, err := rc.StatVFS("/"); err != nil || st.Flag&1 == 0 {
		t.Errorf("statvfs for a read-only user: %+v, %v; want the read-only flag", st, err)
	}
	out := s.mustSFTP(alice, "df -h\n")
	if !strings.Contains(out, "Size") {
		t.Errorf("OpenSSH sftp df:\n%s", out)
	}
}

// A client offering only old algorithms (aes128-ctr, hmac-sha1, diffie-hellman-group14-sha1) is refused.
func TestOldAlgorithmsAreRefused(t *testing.T) {
	s := newTestServer(t)
	_, err := ssh.Dial("tcp", "127.0.0.1:"+s.port, &ssh.ClientConfig{
		User:            alice.name,
		Auth:            []ssh.AuthMethod{ssh.Password(alice.password)},
		HostKeyCallback: s.hostKeyCallback(),
		Config:          ssh.Config{Ciphers: []string{"aes128-ctr"}, MACs: []string{"hmac-sha1"}},
		Timeout:         10 * time.Second,
	})
	if err == nil || !strings.Contains(err.Error(), "no common algorithm") {
		t.Fatalf("dial with old algorithms: %v, want no common algorithm", err)
	}
}

// A connection may hold MaxUploads files open for writing; one more is refused with a clear message, and a slot
// frees when an upload closes.
func TestClientOpenUploadsAreBoundedPerConnection(t *testing.T) {
	s := newTestServer(t, func(st *testSetup) { st.opts.MaxUploads = 2 })
	_, c := s.dial(alice)
	a, err := c.Create("a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create("b"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create("c"); err == nil || !strings.Contains(err.Error(), "too many uploads open") {
		t.Fatalf("third upload: %v, want too many uploads open", err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := c.Create("c")
	if err != nil {
		t.Fatalf("upload after a slot freed: %v", err)
	}
	f.Close()
}

// A connection that does not finish authenticating within LoginTimeout is closed.
func TestLoginTimeoutClosesSilentConnections(t *testing.T) {
	s := newTestServer(t, func(st *testSetup) { st.opts.LoginTimeout = 300 * time.Millisecond })
	nc, err := net.Dial("tcp", "127.0.0.1:"+s.port)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	_, err = io.Copy(io.Discard, nc) // the server's version line, then EOF when it gives up
	if err != nil {
		t.Fatalf("connection not closed by the server: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("closed after %v, want about 300ms", d)
	}
}

// panicFs panics in Stat of "/boom".
type panicFs struct{ afero.Fs }

func (p panicFs) Stat(name string) (os.FileInfo, error) {
	if name == "/boom" {
		panic("injected")
	}
	return p.Fs.Stat(name)
}

// A panic in a request handler fails that request with SSH_FX_FAILURE, is counted, and the connection and the
// server go on.
func TestClientAPanicFailsOneRequest(t *testing.T) {
	s := newTestServer(t, func(st *testSetup) {
		st.fs = func(u *ftpfront.User) (afero.Fs, error) {
			fs, err := ftpfront.DefaultFsFactory(u)
			return panicFs{fs}, err
		}
	})
	_, c := s.dial(alice)
	var se *sftp.StatusError
	if _, err := c.Stat("boom"); !errors.As(err, &se) || se.FxCode() != sftp.ErrSSHFxFailure {
		t.Fatalf("stat boom: %v, want SSH_FX_FAILURE", err)
	}
	if n := s.srv.Panics(); n != 1 {
		t.Fatalf("Panics = %d, want 1", n)
	}
	if _, err := c.Stat("/"); err != nil {
		t.Fatalf("the connection after the panic: %v", err)
	}
}

// After a reload removes the account, the session's next request is refused; an upload already open completes,
// and once no file is open the connection is closed. Logging in again fails: the account is gone.
func TestClientRemovedAccountEndsTheSessionWithoutCuttingATransfer(t *testing.T) {
	s := newTestServer(t)
	_, c := s.dial(alice)
	f, err := c.Create("during.txt")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("before ")); err != nil {
		t.Fatal(err)
	}
	h, _ := ftpfront.HashPassword(bob.password)
	db, err := ftpfront.NewUserDB(s.root, []ftpfront.UserConfig{{Name: bob.name, Password: h, Home: bob.name, ReadOnly: true}})
	if err != nil {
		t.Fatal(err)
	}
	s.access.SetUsers(db)

	if _, err := c.Stat("/"); !errors.Is(err, os.ErrPermission) {
		t.Fatalf("stat after the account was removed: %v, want permission denied", err)
	}
	if _, err := f.Write([]byte("after")); err != nil {
		t.Fatalf("write on the open upload: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close of the open upload: %v", err)
	}
	if b, _ := os.ReadFile(s.home(alice, "during.txt")); string(b) != "before after" {
		t.Fatalf("upload = %q, want it complete", b)
	}
	c.Stat("/") // refused, and with no file open the connection closes
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := c.Getwd(); err != nil && !errors.Is(err, os.ErrPermission) {
			break // connection lost
		}
		if time.Now().After(deadline) {
			t.Fatal("connection still open 10s after the refused request")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if sc, err := ssh.Dial("tcp", "127.0.0.1:"+s.port, &ssh.ClientConfig{User: alice.name,
		Auth: []ssh.AuthMethod{ssh.Password(alice.password)}, HostKeyCallback: s.hostKeyCallback(),
		Timeout: 10 * time.Second}); err == nil {
		sc.Close()
		t.Fatal("the removed account logged in again")
	}
}

// pkg/sftp's client sets the mtime with SETSTAT (by path) and FSETSTAT (the mode, on the handle) right after the
// open and before its writes, as WinSCP's "preserve timestamp" does; the writes that follow do not win: after
// the close the file has the mtime and mode that were set, and its data.
func TestClientSetstatBeforeTheWritesKeepsTheMtime(t *testing.T) {
	s := newTestServer(t)
	checkSetstatBeforeWrites(t, s)
}

func checkSetstatBeforeWrites(t *testing.T, s *testServer) {
	t.Helper()
	_, c := s.dial(alice)
	mtime := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	data := randomBytes(t, 3<<20+17)
	f, err := c.OpenFile("winscp.bin", os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Chtimes("winscp.bin", mtime, mtime); err != nil {
		t.Fatalf("SETSTAT mtime before the writes: %v", err)
	}
	if err := f.Chmod(0o640); err != nil {
		t.Fatalf("FSETSTAT mode before the writes: %v", err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	fi, err := os.Stat(s.home(alice, "winscp.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if !fi.ModTime().Equal(mtime) {
		t.Errorf("mtime after the close = %v, want %v", fi.ModTime().UTC(), mtime)
	}
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("mode after the close = %v, want 0640", fi.Mode().Perm())
	}
	if got, _ := os.ReadFile(s.home(alice, "winscp.bin")); !bytes.Equal(got, data) {
		t.Errorf("data differs: %d bytes, want %d", len(got), len(data))
	}
	if rfi, err := c.Stat("winscp.bin"); err != nil || !rfi.ModTime().Equal(mtime) {
		t.Errorf("STAT after the close: %v, %v; want mtime %v", rfi, err, mtime)
	}
}

// A logged-in connection that sends nothing for IdleTimeout is closed; one that keeps sending requests is not.
func TestIdleTimeoutClosesIdleConnections(t *testing.T) {
	s := newTestServer(t, func(st *testSetup) { st.opts.IdleTimeout = 500 * time.Millisecond })
	_, busy := s.dial(alice)
	_, idle := s.dial(alice)
	for deadline := time.Now().Add(1500 * time.Millisecond); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if _, err := busy.Getwd(); err != nil {
			t.Fatalf("a busy connection was closed: %v", err)
		}
	}
	if _, err := idle.Getwd(); err == nil {
		t.Errorf("a connection idle for 1.5 s with a 500 ms idle timeout still answers")
	}
}
