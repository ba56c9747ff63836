package main

import (
	"bytes"
	"crypto/tls"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"
	"github.com/pkg/sftp"
	"github.com/s3ftp/s3ftp/sftpfront"
	"golang.org/x/crypto/ssh"
)

func TestSFTPListenWithoutHostKeyDirIsUsageError(t *testing.T) {
	var stderr bytes.Buffer
	code := run([]string{"--root", "/tmp", "--users", "u.yaml", "--sftp-listen", "127.0.0.1:0"}, os.Stdin, io.Discard, &stderr)
	if code != exitUsage || !strings.Contains(stderr.String(), "--sftp-host-key-dir") {
		t.Fatalf("code %d, stderr %s", code, stderr.String())
	}
}

// --ssh-legacy-algorithms maps to sftpfront.Options.LegacyAlgorithms, off by default.
func TestSSHLegacyAlgorithmsFlag(t *testing.T) {
	base := []string{"--root", "/tmp", "--users", "u.yaml", "--sftp-listen", "127.0.0.1:0", "--sftp-host-key-dir", "/tmp/k"}
	for _, tc := range []struct {
		extra []string
		want  bool
	}{{nil, false}, {[]string{"--ssh-legacy-algorithms"}, true}, {[]string{"--ssh-legacy-algorithms=false"}, false}} {
		c, code := parseFlags(append(append([]string(nil), base...), tc.extra...), io.Discard)
		if c == nil {
			t.Fatalf("%v: exit code %d", tc.extra, code)
		}
		if c.sftp.LegacyAlgorithms != tc.want {
			t.Errorf("%v: LegacyAlgorithms = %v, want %v", tc.extra, c.sftp.LegacyAlgorithms, tc.want)
		}
	}
}

// The binary serves SFTP beside FTPS from one users file: the same account logs in over both, a file uploaded
// over SFTP is read back over FTPS, the read-only flag holds over SFTP, the host key is generated once into
// --sftp-host-key-dir, its fingerprint logged, and a restart presents the same key.
func TestBinaryServesSFTPBesideFTPSFromOneUsersFile(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	for _, u := range []string{"dave", "rita"} {
		if err := os.MkdirAll(filepath.Join(root, u), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	hash := func(pw string) string {
		cmd := exec.Command(binary, "passwd")
		cmd.Stdin = strings.NewReader(pw + "\n")
		h, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(h))
	}
	users := filepath.Join(dir, "users.yaml")
	yaml := "users:\n  - name: dave\n    password: '" + hash("dave-pw") + "'\n    home: dave\n" +
		"  - name: rita\n    password: '" + hash("rita-pw") + "'\n    home: rita\n    read_only: true\n"
	if err := os.WriteFile(users, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join(dir, "state")
	args := []string{"--root", root, "--users", users, "--listen", "127.0.0.1:0", "--tls-self-signed",
		"--passive-ports", "0", "--fail-delay", "10ms", "--sftp-listen", "127.0.0.1:0", "--sftp-host-key-dir", keys}
	d := startDaemon(t, args...)
	addrs, logs := d.addrs, d.logs
	if addrs["sftp"] == "" {
		t.Fatalf("ready file has no sftp address: %v", addrs)
	}
	key, created, err := sftpfront.LoadOrCreateHostKey(keys)
	if err != nil || created {
		t.Fatalf("host key not in --sftp-host-key-dir: created=%v err=%v", created, err)
	}
	rkey, created, err := sftpfront.LoadOrCreateRSAHostKey(keys)
	if err != nil || created {
		t.Fatalf("RSA host key not in --sftp-host-key-dir: created=%v err=%v", created, err)
	}
	for _, k := range []ssh.PublicKey{key.PublicKey(), rkey.PublicKey()} {
		if fp := ssh.FingerprintSHA256(k); !strings.Contains(logs.String(), fp) {
			t.Errorf("log does not name the %s host key fingerprint %s:\n%s", k.Type(), fp, logs.String())
		}
	}
	if strings.Contains(logs.String(), "legacy algorithms enabled") {
		t.Error("legacy algorithms enabled without --ssh-legacy-algorithms")
	}

	dial := func(addr, user, pw string) *sftp.Client {
		t.Helper()
		sc, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: user, Auth: []ssh.AuthMethod{ssh.Password(pw)},
			HostKeyCallback: ssh.FixedHostKey(key.PublicKey()), HostKeyAlgorithms: []string{ssh.KeyAlgoED25519},
			Timeout: 10 * time.Second})
		if err != nil {
			t.Fatalf("ssh as %s: %v", user, err)
		}
		c, err := sftp.NewClient(sc)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(); sc.Close() })
		return c
	}
	c := dial(addrs["sftp"], "dave", "dave-pw")
	data := bytes.Repeat([]byte("sftp->ftps "), 100000)
	f, err := c.Create("both.txt")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.ReadFrom(bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	fc, err := ftp.Dial(addrs["explicit"], ftp.DialWithExplicitTLS(&tls.Config{InsecureSkipVerify: true}), ftp.DialWithTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := fc.Login("dave", "dave-pw"); err != nil {
		t.Fatal(err)
	}
	r, err := fc.Retr("both.txt")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	r.Close()
	fc.Quit()
	if !bytes.Equal(got, data) {
		t.Fatalf("FTPS read %d bytes of the SFTP upload, want %d identical", len(got), len(data))
	}
	rc := dial(addrs["sftp"], "rita", "rita-pw")
	if _, err := rc.Create("no.txt"); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("read-only user's create: %v, want permission denied", err)
	}
	d.stop()

	d = startDaemon(t, args...)
	addrs, logs = d.addrs, d.logs
	sc, err := ssh.Dial("tcp", addrs["sftp"], &ssh.ClientConfig{User: "dave", Auth: []ssh.AuthMethod{ssh.Password("dave-pw")},
		HostKeyCallback: ssh.FixedHostKey(key.PublicKey()), HostKeyAlgorithms: []string{ssh.KeyAlgoED25519},
		Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("after a restart the host key changed or login failed: %v\n%s", err, logs.String())
	}
	sc.Close()
	d.stop()
}
