package sftpfront

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"github.com/s3ftp/s3ftp/ftpfront"
	"golang.org/x/crypto/ssh"
)

// newKey returns an ed25519 signer and its authorized_keys line.
func newKey(t *testing.T) (ssh.Signer, string, ed25519.PrivateKey) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.PublicKey()))) + " test key", priv
}

func (s *testServer) dialKey(user string, key ssh.Signer) (*ssh.Client, error) {
	return ssh.Dial("tcp", "127.0.0.1:"+s.port, &ssh.ClientConfig{
		User: user, Auth: []ssh.AuthMethod{ssh.PublicKeys(key)},
		HostKeyCallback: s.hostKeyCallback(), Timeout: 10 * time.Second,
	})
}

// A key from the user's authorized_keys logs in without the password, as that user with that user's home and
// read-only flag; a key listed for another user, or for no one, is refused and not counted towards the ban.
func TestPublicKeyLoginUsesTheUsersFileKeys(t *testing.T) {
	aliceKey, aliceLine, _ := newKey(t)
	bobKey, bobLine, _ := newKey(t)
	strayKey, _, _ := newKey(t)
	s := newTestServer(t, withKeys("alice", aliceLine), withKeys("bob", bobLine),
		withAccess(func(ac *ftpfront.AccessConfig) { ac.BanAfter = 2 }))
	if err := os.WriteFile(s.home(bob, "b.txt"), []byte("bob's"), 0o644); err != nil {
		t.Fatal(err)
	}

	sc, err := s.dialKey("alice", aliceKey)
	if err != nil {
		t.Fatalf("alice with her key: %v", err)
	}
	c, err := sftp.NewClient(sc)
	if err != nil {
		t.Fatal(err)
	}
	f, err := c.Create("k.txt")
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("by key"))
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	c.Close()
	sc.Close()
	if b, _ := os.ReadFile(s.home(alice, "k.txt")); string(b) != "by key" {
		t.Fatalf("alice's upload by key: %q", b)
	}

	for _, try := range []struct {
		user string
		key  ssh.Signer
	}{{"alice", bobKey}, {"alice", strayKey}, {"bob", aliceKey}, {"nobody-here", aliceKey}} {
		if sc, err := s.dialKey(try.user, try.key); err == nil {
			sc.Close()
			t.Errorf("%s logged in with a key not listed for them", try.user)
		}
	}
	if s.access.Banned(netip.MustParseAddr("127.0.0.1")) {
		t.Fatal("refused keys banned the address")
	}

	sc, err = s.dialKey("bob", bobKey)
	if err != nil {
		t.Fatalf("bob with his key: %v", err)
	}
	defer sc.Close()
	c, err = sftp.NewClient(sc)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Stat("b.txt"); err != nil {
		t.Errorf("bob by key does not see his home: %v", err)
	}
	if _, err := c.Create("x"); err == nil {
		t.Error("bob (read-only) created a file after a key login")
	}
	if st := s.access.Stats(); st.LoginsOK != 2 {
		t.Errorf("LoginsOK = %d, want 2 (the two key logins)", st.LoginsOK)
	}
	if got := s.audit.find("login_ok"); len(got) != 2 {
		t.Errorf("login_ok audit events = %v, want 2", got)
	}
}

// OpenSSH's sftp logs in with a key file (no password prompt possible: BatchMode).
func TestOpenSSHPublicKeyLogin(t *testing.T) {
	_, line, priv := newKey(t)
	s := newTestServer(t, withKeys("alice", line))
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	idFile := filepath.Join(s.work, "id_ed25519")
	if err := os.WriteFile(idFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	s.local("k.txt", []byte("key upload"))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bf := s.local("batch", []byte("put k.txt\n"))
	cmd := exec.CommandContext(ctx, needBinary(t, "sftp"), "-F", "/dev/null",
		"-o", "UserKnownHostsFile="+s.knownHosts, "-o", "StrictHostKeyChecking=yes",
		"-o", "IdentitiesOnly=yes", "-o", "PreferredAuthentications=publickey", "-i", idFile,
		"-P", s.port, "-b", bf, "alice@127.0.0.1")
	cmd.Dir = s.work
	cmd.Env = append(os.Environ(), "HOME="+s.work, "LC_ALL=C", "SSH_AUTH_SOCK=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sftp -i: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(s.home(alice, "k.txt")); string(b) != "key upload" {
		t.Fatalf("upload by key: %q\n%s", b, out)
	}
}

// The users file refuses authorized_keys lines it cannot honour (options, garbage, two keys on one line), and
// an account whose keys change is no longer valid for sessions logged in with it.
func TestUsersFileAuthorizedKeys(t *testing.T) {
	h, err := ftpfront.HashPassword("pw")
	if err != nil {
		t.Fatal(err)
	}
	signer, line, _ := newKey(t)
	_, other, _ := newKey(t)
	root := t.TempDir()
	db := func(keys ...string) (*ftpfront.UserDB, error) {
		return ftpfront.NewUserDB(root, []ftpfront.UserConfig{{Name: "kim", Password: h, Home: "/", AuthorizedKeys: keys}})
	}
	for _, bad := range []string{`from="10.0.0.0/8" ` + line, "ssh-ed25519 not-base64", line + "\n" + other} {
		if _, err := db(bad); err == nil || !strings.Contains(err.Error(), "authorized_keys") {
			t.Errorf("key %q: err = %v, want an authorized_keys error", bad, err)
		}
	}
	d1, err := db(line)
	if err != nil {
		t.Fatal(err)
	}
	a := ftpfront.NewAccess(d1, ftpfront.AccessConfig{}, nil)
	u, err := a.LoginKey(netip.MustParseAddr("192.0.2.1"), "kim", signer.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	if !a.AccountValid(u) {
		t.Fatal("fresh key login not valid")
	}
	d2, err := db(other)
	if err != nil {
		t.Fatal(err)
	}
	a.SetUsers(d2)
	if a.AccountValid(u) {
		t.Fatal("account still valid after its key was replaced")
	}
	if _, err := a.LoginKey(netip.MustParseAddr("192.0.2.1"), "kim", signer.PublicKey()); err == nil {
		t.Fatal("removed key still logs in")
	}
}

// keyboard-interactive asks for the password once and checks it like a password login: the right one logs in,
// a wrong one is refused and counted in the shared Access.
func TestKeyboardInteractiveIsAPasswordPrompt(t *testing.T) {
	s := newTestServer(t)
	dial := func(pw string) error {
		var questions []string
		sc, err := ssh.Dial("tcp", "127.0.0.1:"+s.port, &ssh.ClientConfig{
			User: alice.name,
			Auth: []ssh.AuthMethod{ssh.KeyboardInteractive(func(_, _ string, qs []string, echos []bool) ([]string, error) {
				questions = append(questions, qs...)
				if len(echos) != 1 || echos[0] {
					t.Errorf("echo flags %v, want one false", echos)
				}
				return []string{pw}, nil
			})},
			HostKeyCallback: s.hostKeyCallback(), Timeout: 10 * time.Second,
		})
		if len(questions) == 0 || questions[0] != "Password: " {
			t.Errorf("questions %q, want a password prompt", questions)
		}
		if err == nil {
			sc.Close()
		}
		return err
	}
	if err := dial(alice.password); err != nil {
		t.Fatalf("right password: %v", err)
	}
	if err := dial("wrong"); err == nil {
		t.Fatal("wrong password logged in")
	}
	if st := s.access.Stats(); st.LoginsOK != 1 || st.LoginsFailed < 1 {
		t.Fatalf("access stats %+v, want 1 ok and failures", st)
	}
}

// A key login makes the address known to the shared Access, as a password login does: it may then take the
// connection slots reserved for addresses that logged in before.
func TestKeyLoginMakesTheAddressKnownForReservedSlots(t *testing.T) {
	key, line, _ := newKey(t)
	s := newTestServer(t, withKeys("alice", line), withAccess(func(ac *ftpfront.AccessConfig) {
		ac.MaxConns, ac.ReservedConns = 2, 1
	}))
	sc, err := s.dialKey("alice", key)
	if err != nil {
		t.Fatalf("first connection: %v", err)
	}
	defer sc.Close()
	// One request on it: the server has finished the login (and recorded it) once it answers.
	c, err := sftp.NewClient(sc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Getwd(); err != nil {
		t.Fatal(err)
	}
	sc2, err := s.dialKey("alice", key)
	if err != nil {
		t.Fatalf("second connection (a reserved slot, the address is known after the key login): %v", err)
	}
	sc2.Close()
}
