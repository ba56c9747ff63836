package sftpfront

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"github.com/s3ftp/s3ftp/ftpfront"
	"golang.org/x/crypto/ssh"
)

// testUser is an account of a test server; its home is root/<name>.
type testUser struct {
	name, password string
	readOnly       bool
}

var (
	alice = testUser{name: "alice", password: "alice-secret"}
	bob   = testUser{name: "bob", password: "bob-secret", readOnly: true}
)

// recorder is an Auditor that keeps the events.
type recorder struct {
	mu     sync.Mutex
	events []ftpfront.Event
}

func (r *recorder) Record(e ftpfront.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// find returns the events named ev, as "path=result" strings.
func (r *recorder) find(ev string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		if e.Event == ev {
			out = append(out, e.Path+"="+e.Result)
		}
	}
	return out
}

// testServer is an sftpfront.Server on 127.0.0.1 serving root, with the users alice (read-write) and bob
// (read-only), and the Access it shares with any other protocol.
type testServer struct {
	t          *testing.T
	srv        *Server
	access     *ftpfront.Access
	audit      *recorder
	root       string
	port       string
	knownHosts string // known_hosts naming the server's host key
	work       string // the client's working directory (and $HOME)
}

// testSetup is what a serverOpt may change before the server starts.
type testSetup struct {
	opts   Options
	access ftpfront.AccessConfig
	keys   map[string][]string // authorized_keys lines by user name
	root   string              // served root; default a temporary directory
	fs     ftpfront.FsFactory  // default ftpfront.DefaultFsFactory
}

func withRoot(dir string) serverOpt {
	return func(s *testSetup) { s.root = dir }
}

type serverOpt func(*testSetup)

func withAccess(f func(*ftpfront.AccessConfig)) serverOpt {
	return func(s *testSetup) { f(&s.access) }
}

func withKeys(user string, lines ...string) serverOpt {
	return func(s *testSetup) { s.keys[user] = lines }
}

func newTestServer(t *testing.T, opts ...serverOpt) *testServer {
	t.Helper()
	st := testSetup{
		opts:   Options{Listen: "127.0.0.1:0", HostKeyDir: seededHostKeyDir(t)},
		access: ftpfront.AccessConfig{FailDelay: 10 * time.Millisecond},
		keys:   map[string][]string{},
	}
	for _, f := range opts {
		f(&st)
	}
	root := st.root
	if root == "" {
		root = t.TempDir()
	}
	var ucs []ftpfront.UserConfig
	for _, u := range []testUser{alice, bob} {
		h, err := ftpfront.HashPassword(u.password)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(filepath.Join(root, u.name), 0o755); err != nil {
			t.Fatal(err)
		}
		ucs = append(ucs, ftpfront.UserConfig{Name: u.name, Password: h, Home: u.name, ReadOnly: u.readOnly,
			AuthorizedKeys: st.keys[u.name]})
	}
	db, err := ftpfront.NewUserDB(root, ucs)
	if err != nil {
		t.Fatal(err)
	}
	o, ac := st.opts, st.access
	fsf := st.fs
	if fsf == nil {
		fsf = ftpfront.DefaultFsFactory
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	access := ftpfront.NewAccess(db, ac, log)
	rec := &recorder{}
	srv, err := NewServer(o, Deps{Auth: access, Admit: access, Fs: fsf, Audit: rec, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	_, port, _ := net.SplitHostPort(srv.Addr().String())
	work := t.TempDir()
	kh := filepath.Join(work, "known_hosts")
	line := fmt.Sprintf("[127.0.0.1]:%s %s", port, ssh.MarshalAuthorizedKey(srv.HostKey()))
	if err := os.WriteFile(kh, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	return &testServer{t: t, srv: srv, access: access, audit: rec, root: root, port: port, knownHosts: kh, work: work}
}

// testWriter sends log lines to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// needBinary returns the path of a client the test needs; a missing one fails the test (the test set-up,
// scripts/setup-test-deps.sh, installs openssh-client and sshpass).
func needBinary(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is required for this test and is not installed (scripts/setup-test-deps.sh installs it): %v", name, err)
	}
	return p
}

// sftpBatch runs OpenSSH's sftp as u with the batch commands and returns its output and error. Host key
// checking is strict (the known_hosts file names the server's key) and only password authentication is tried,
// once per connection.
func (s *testServer) sftpBatch(u testUser, batch string) (string, error) {
	s.t.Helper()
	bf := filepath.Join(s.work, "batch")
	if err := os.WriteFile(bf, []byte(batch), 0o600); err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, needBinary(s.t, "sshpass"), "-e", needBinary(s.t, "sftp"),
		"-F", "/dev/null",
		"-o", "BatchMode=no", // sftp -b sets BatchMode=yes, which forbids passwords; the first value wins
		"-o", "UserKnownHostsFile="+s.knownHosts,
		"-o", "StrictHostKeyChecking=yes",
		"-o", "PreferredAuthentications=password",
		"-o", "PubkeyAuthentication=no",
		"-o", "NumberOfPasswordPrompts=1",
		"-o", "ConnectTimeout=10",
		"-P", s.port, "-b", bf, u.name+"@127.0.0.1")
	cmd.Dir = s.work
	cmd.Env = append(os.Environ(), "HOME="+s.work, "LC_ALL=C", "SSHPASS="+u.password)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	s.t.Logf("sftp as %s:\n%s\n--- output:\n%s", u.name, batch, out.String())
	return out.String(), err
}

// mustSFTP runs the batch and fails the test when sftp fails.
func (s *testServer) mustSFTP(u testUser, batch string) string {
	s.t.Helper()
	out, err := s.sftpBatch(u, batch)
	if err != nil {
		s.t.Fatalf("sftp failed: %v\n%s", err, out)
	}
	return out
}

// dial connects pkg/sftp's client as u.
func (s *testServer) dial(u testUser) (*ssh.Client, *sftp.Client) {
	s.t.Helper()
	sc, err := ssh.Dial("tcp", "127.0.0.1:"+s.port, &ssh.ClientConfig{
		User:            u.name,
		Auth:            []ssh.AuthMethod{ssh.Password(u.password)},
		HostKeyCallback: s.hostKeyCallback(),
		Timeout:         10 * time.Second,
	})
	if err != nil {
		s.t.Fatal(err)
	}
	c, err := sftp.NewClient(sc)
	if err != nil {
		sc.Close()
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { c.Close(); sc.Close() })
	return sc, c
}

// home returns the path of name in u's home on the server.
func (s *testServer) home(u testUser, name string) string {
	return filepath.Join(s.root, u.name, filepath.FromSlash(name))
}

// local writes a file in the client's working directory.
func (s *testServer) local(name string, data []byte) string {
	s.t.Helper()
	p := filepath.Join(s.work, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		s.t.Fatal(err)
	}
	return p
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	for i := range b {
		b[i] = byte((i * 2654435761) >> 13)
	}
	return b
}

// sharedRSAKey is one RSA host key for all test servers: generating 3072 bits per test would dominate the run.
var sharedRSAKey = sync.OnceValues(func() ([]byte, error) {
	dir, err := os.MkdirTemp("", "sftpfront-rsa")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if _, _, err := LoadOrCreateRSAHostKey(dir); err != nil {
		return nil, err
	}
	return os.ReadFile(filepath.Join(dir, RSAHostKeyFile))
})

// seededHostKeyDir returns a new host key directory holding the shared RSA key; the ed25519 key is generated
// by the server.
func seededHostKeyDir(t *testing.T) string {
	t.Helper()
	key, err := sharedRSAKey()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, RSAHostKeyFile), key, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// hostKeyCallback accepts the server's host keys (ed25519 or RSA, as the client negotiates) and no other.
func (s *testServer) hostKeyCallback() ssh.HostKeyCallback {
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		for _, k := range s.srv.HostKeys() {
			if bytes.Equal(k.Marshal(), key.Marshal()) {
				return nil
			}
		}
		return fmt.Errorf("unknown host key %s", ssh.FingerprintSHA256(key))
	}
}
