package ftpfront

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/spf13/afero"

	"github.com/s3ftp/s3ftp/internal/testcert"
)

// reloadUsers builds a UserDB over root from name → password hash; homes are "/" for everybody.
func reloadUsers(t *testing.T, root string, hashes map[string]string) *UserDB {
	t.Helper()
	var ucs []UserConfig
	for name, h := range hashes {
		ucs = append(ucs, UserConfig{Name: name, Password: h, Home: "/"})
	}
	db, err := NewUserDB(root, ucs)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// After SetUsers, logins see only the new accounts: an added account logs in, a removed one is refused as an
// unknown user; AccountValid stays true for an unchanged account (a new hash of the same password counts as a
// change) and turns false for a removed or changed one.
func TestSetUsersReplacesAccounts(t *testing.T) {
	f := newAccessFixture(t, AccessConfig{})
	ctx := context.Background()
	alice, err := f.a.Login(ctx, ipA, "alice", alicePW)
	if err != nil {
		t.Fatal(err)
	}
	bob, err := f.a.Login(ctx, ipA, "bob", bobPW)
	if err != nil {
		t.Fatal(err)
	}
	if !f.a.AccountValid(alice) || !f.a.AccountValid(bob) {
		t.Fatal("fresh logins are not valid")
	}
	if f.a.AccountValid(&User{Name: "alice", Home: alice.Home}) {
		t.Fatal("a User that Login did not return is valid")
	}
	old := f.a.users.Load()
	aliceHash := old.lookup("alice").hash
	carolHash := cheapHash(t, "carol-pw")
	// alice unchanged, bob's entry changed (same password, new hash and home), carol added, root removed.
	db, err := NewUserDB(f.root, []UserConfig{
		{Name: "alice", Password: aliceHash, Home: "alice"},
		{Name: "bob", Password: cheapHash(t, bobPW), Home: "elsewhere", ReadOnly: true},
		{Name: "carol", Password: carolHash, Home: "/"},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.a.SetUsers(db)
	if !f.a.AccountValid(alice) {
		t.Error("alice's unchanged account became invalid")
	}
	if f.a.AccountValid(bob) {
		t.Error("bob's changed account is still valid")
	}
	if _, err := f.a.Login(ctx, ipB, "carol", "carol-pw"); err != nil {
		t.Errorf("added account: %v", err)
	}
	f.a.SetUsers(reloadUsers(t, f.root, map[string]string{"carol": carolHash}))
	if f.a.AccountValid(alice) {
		t.Error("alice's removed account is still valid")
	}
	if _, err := f.a.Login(ctx, ipB, "alice", alicePW); !errors.Is(err, ErrLoginFailed) {
		t.Errorf("removed account logs in: %v", err)
	}
}

// reloadServer runs a Server whose Authenticator is an Access over alice and bob (homes "/", one shared
// in-memory file system).
func reloadServer(t *testing.T, fsys afero.Fs) (*testServer, *Access, map[string]string) {
	t.Helper()
	root := t.TempDir()
	hashes := map[string]string{"alice": cheapHash(t, alicePW), "bob": cheapHash(t, bobPW)}
	acc := NewAccess(reloadUsers(t, root, hashes), AccessConfig{RefusedNames: []string{}}, testLogger(t))
	ts := startServer(t, memFs(fsys), func(_ *Options, d *Deps) { d.Auth = acc })
	return ts, acc, hashes
}

// A session of a removed account ends at its next command with 421 and the connection closed; a session of an
// account that is still there goes on.
func TestRemovedAccountSessionEndsWith421(t *testing.T) {
	ts, acc, hashes := reloadServer(t, afero.NewMemMapFs())
	a := dialRaw(t, ts.addr)
	a.secure("alice", alicePW)
	b := dialRaw(t, ts.addr)
	b.secure("bob", bobPW)
	a.must(257, "PWD")

	acc.SetUsers(reloadUsers(t, acc.users.Load().Root(), map[string]string{"bob": hashes["bob"]}))
	if code, text := a.cmd("PWD"); code != 421 {
		t.Fatalf("removed account's next command: %d %q, want 421", code, text)
	}
	if _, err := a.r.ReadByte(); err == nil {
		t.Fatal("the connection stays open after 421")
	}
	b.must(257, "PWD")
	b.must(200, "NOOP")
}

// A transfer running when the account is removed is not cut: NOOP is answered during it, the upload completes
// with 226 and all its bytes, and the command after it gets 421.
func TestRemovedAccountTransferCompletes(t *testing.T) {
	fsys := afero.NewMemMapFs()
	ts, acc, hashes := reloadServer(t, fsys)
	c := dialRaw(t, ts.addr)
	c.secure("alice", alicePW)
	addr := c.epsv()
	c.must(150, "STOR up.bin")
	d := dialData(t, addr, "")
	if err := d.Handshake(); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("reload "), 10000)
	if _, err := d.Write(data[:len(data)/2]); err != nil {
		t.Fatal(err)
	}
	acc.SetUsers(reloadUsers(t, acc.users.Load().Root(), map[string]string{"bob": hashes["bob"]}))
	c.must(200, "NOOP")
	if _, err := d.Write(data[len(data)/2:]); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	c.expect(226)
	if got, err := afero.ReadFile(fsys, "/up.bin"); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("upload after the account's removal: %d bytes, %v; want %d", len(got), err, len(data))
	}
	if code, text := c.cmd("PWD"); code != 421 {
		t.Fatalf("command after the transfer: %d %q, want 421", code, text)
	}
}

// leafSerial dials the implicit-TLS address and returns the serial number of the certificate served.
func leafSerial(t *testing.T, addr string) string {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// ReloadCertificate: new handshakes get the new certificate while a session established before goes on with
// its own; a broken file, a key of another certificate and an expired certificate are refused with an error
// naming the file, and the certificate served so far stays.
func TestReloadCertificate(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := testcert.Write(t, dir, 1, time.Now().Add(time.Hour))
	ts := startServer(t, memFs(afero.NewMemMapFs()), func(o *Options, d *Deps) {
		o.TLSCert, o.TLSKey = certFile, keyFile
		o.ImplicitListen = "127.0.0.1:0"
		d.TLS = nil
	})
	implicit := ts.srv.ImplicitAddr().String()
	if got := leafSerial(t, implicit); got != "1" {
		t.Fatalf("serial %s before the reload, want 1", got)
	}
	old := dialRaw(t, ts.addr)
	old.secure("alice", "secret")

	testcert.Write(t, dir, 2, time.Now().Add(time.Hour))
	if err := ts.srv.ReloadCertificate(); err != nil {
		t.Fatal(err)
	}
	if got := leafSerial(t, implicit); got != "2" {
		t.Fatalf("serial %s after the reload, want 2", got)
	}
	old.must(257, "PWD")
	daddr := old.epsv()
	old.send("LIST")
	dc := dialData(t, daddr, "")
	if err := dc.Handshake(); err != nil {
		t.Fatalf("data connection of the session opened before the reload: %v", err)
	}
	io.Copy(io.Discard, dc)
	old.expect(150)
	old.expect(226)

	keep := func(what string) {
		t.Helper()
		err := ts.srv.ReloadCertificate()
		if err == nil || !strings.Contains(err.Error(), certFile) {
			t.Errorf("%s: reload error %v, want one naming %s", what, err, certFile)
		}
		if got := leafSerial(t, implicit); got != "2" {
			t.Errorf("%s: serial %s served, want the previous certificate's 2", what, got)
		}
	}
	goodKey, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(certFile, []byte("not a certificate\n"), 0o600)
	keep("garbage certificate file")
	testcert.Write(t, dir, 3, time.Now().Add(time.Hour))
	os.WriteFile(keyFile, goodKey, 0o600)
	keep("key of another certificate")
	testcert.Write(t, dir, 4, time.Now().Add(-time.Minute))
	keep("expired certificate")
	old.must(200, "NOOP")
}
