package ftpfront

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/spf13/afero"
)

// With the real Access as Authenticator and Admitter: failed logins ban the address, and a banned address is
// refused with 421 at connect.
func TestBannedIPRefused(t *testing.T) {
	root := t.TempDir()
	hash, err := HashPassword("right")
	if err != nil {
		t.Fatal(err)
	}
	db, err := NewUserDB(root, []UserConfig{{Name: "carol", Password: hash, Home: "/"}})
	if err != nil {
		t.Fatal(err)
	}
	acc := NewAccess(db, AccessConfig{FailDelay: time.Millisecond, BanAfter: 2, BanWindow: time.Minute, BanFor: time.Minute}, testLogger(t))
	ts := startServer(t, nil, func(o *Options, d *Deps) {
		d.Auth = acc
		d.Admit = acc
		o.MaxLoginAttempts = 5
	})

	c := dialRaw(t, ts.addr)
	c.must(234, "AUTH TLS")
	tlsUpgrade(t, c)
	c.must(331, "USER carol")
	c.must(230, "PASS right")
	c.must(221, "QUIT")

	c = dialRaw(t, ts.addr)
	c.must(234, "AUTH TLS")
	tlsUpgrade(t, c)
	for i := 0; i < 2; i++ {
		c.must(331, "USER carol")
		c.must(530, "PASS wrong")
	}
	if !acc.Banned(mustAddr("127.0.0.1")) {
		t.Fatal("address not banned after 2 failures")
	}

	raw, err := net.DialTimeout("tcp", ts.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(raw).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "421 ") {
		t.Fatalf("banned connect got %q, %v", line, err)
	}
	if ev := ts.audit.find("login_failed", ""); len(ev) != 2 || ev[0].User != "carol" {
		t.Fatalf("login_failed events = %+v", ev)
	}
}

// Read-only users get 550 for every change, and can still read.
func TestReadOnlyUser(t *testing.T) {
	mem := afero.NewMemMapFs()
	writeFile(t, mem, "/f", []byte("x"))
	ts := startServer(t, func(u *User) (afero.Fs, error) { return afero.NewReadOnlyFs(mem), nil }, nil)
	c := dialRaw(t, ts.addr)
	c.secure("alice", "secret")
	c.must(550, "MKD d")
	c.must(550, "DELE f")
	c.must(550, "MFMT 20200101000000 f")
	c.must(350, "RNFR f")
	c.must(550, "RNTO g")
	c.epsv()
	c.must(550, "STOR g")
	c.must(213, "SIZE f")
}
