package ftpfront

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/afero"

	"github.com/s3ftp/s3ftp/internal/logbuf"
)

// fakeClock is an injectable clock for AccessConfig.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Passwords of the test accounts; TestPasswordsNeverLogged checks none of them reaches the log.
const (
	alicePW = "alice-Secret-1"
	bobPW   = "bob-Secret-2"
	rootPW  = "root-Secret-3"
)

// accessFixture is an Access over three accounts (alice, read-only bob, and root, whose name is refused) with a
// fake clock, a tiny failed-login delay and a captured log.
type accessFixture struct {
	a     *Access
	clock *fakeClock
	log   *logbuf.Buffer
	root  string
}

func newAccessFixture(t *testing.T, cfg AccessConfig) *accessFixture {
	t.Helper()
	root := t.TempDir()
	db, err := NewUserDB(root, []UserConfig{
		{Name: "alice", Password: cheapHash(t, alicePW), Home: "alice"},
		{Name: "bob", Password: cheapHash(t, bobPW), Home: "pub", ReadOnly: true},
		{Name: "root", Password: cheapHash(t, rootPW), Home: "/"},
	})
	if err != nil {
		t.Fatal(err)
	}
	log, logs := logbuf.New(&slog.HandlerOptions{Level: slog.LevelDebug})
	f := &accessFixture{clock: newFakeClock(), log: logs, root: root}
	if cfg.FailDelay == 0 {
		cfg.FailDelay = time.Nanosecond
	}
	cfg.Now = f.clock.Now
	f.a = NewAccess(db, cfg, log)
	return f
}

var (
	ipA = netip.MustParseAddr("192.0.2.1")
	ipB = netip.MustParseAddr("192.0.2.2")
	ipC = netip.MustParseAddr("198.51.100.7")
)

func TestLoginOK(t *testing.T) {
	f := newAccessFixture(t, AccessConfig{})
	u, err := f.a.Login(context.Background(), ipA, "alice", alicePW)
	if err != nil {
		t.Fatal(err)
	}
	if want := (User{Name: "alice", Home: filepath.Join(f.root, "alice")}); u.Name != want.Name || u.Home != want.Home || u.ReadOnly {
		t.Fatalf("user = %+v, want %+v", *u, want)
	}
	u, err = f.a.Login(context.Background(), ipA, "bob", bobPW)
	if err != nil || !u.ReadOnly {
		t.Fatalf("bob: %+v, %v; want a read-only user", u, err)
	}
	u.Home = "/elsewhere" // the caller's copy must not alias the database
	if u2, _ := f.a.Login(context.Background(), ipA, "bob", bobPW); u2.Home != filepath.Join(f.root, "pub") {
		t.Fatalf("changing a returned User changed the database: home %q", u2.Home)
	}
	if s := f.a.Stats(); s.LoginsOK != 3 || s.LoginsFailed != 0 || s.TrackedIPs != 0 {
		t.Fatalf("stats = %+v", s)
	}
}

func TestLoginFailures(t *testing.T) {
	f := newAccessFixture(t, AccessConfig{BanAfter: 100})
	cases := []struct{ what, name, pw string }{
		{"wrong password", "alice", bobPW},
		{"empty password", "alice", ""},
		{"unknown user", "mallory", alicePW},
		{"name differs in case", "Alice", alicePW},
		{"refused name with the right password", "root", rootPW},
		{"refused name in other case", "RoOt", rootPW},
		{"refused name without account", "admin", "x"},
		{"over-long password", "alice", alicePW + strings.Repeat("x", maxPasswordLen)},
	}
	for _, c := range cases {
		u, err := f.a.Login(context.Background(), ipA, c.name, c.pw)
		if u != nil || !errors.Is(err, ErrLoginFailed) {
			t.Errorf("%s: Login = %v, %v; want nil, ErrLoginFailed", c.what, u, err)
		}
	}
	if s := f.a.Stats(); s.LoginsFailed != uint64(len(cases)) || s.LoginsOK != 0 || s.TrackedIPs != 1 {
		t.Fatalf("stats = %+v, want %d failures from one address", s, len(cases))
	}
}

func TestRefusedNamesConfigurable(t *testing.T) {
	f := newAccessFixture(t, AccessConfig{RefusedNames: []string{}})
	if _, err := f.a.Login(context.Background(), ipA, "root", rootPW); err != nil {
		t.Fatalf("an empty refused list must refuse nothing: %v", err)
	}
	f = newAccessFixture(t, AccessConfig{RefusedNames: []string{"Alice"}})
	if _, err := f.a.Login(context.Background(), ipA, "alice", alicePW); !errors.Is(err, ErrLoginFailed) {
		t.Fatalf("alice on the refused list: err = %v", err)
	}
	if !strings.Contains(f.log.String(), "account can never log in") {
		t.Fatalf("an account with a refused name is not reported at start-up; log:\n%s", f.log)
	}
}

func TestBanAfterFailuresAndExpiry(t *testing.T) {
	f := newAccessFixture(t, AccessConfig{BanAfter: 3, BanWindow: 10 * time.Minute, BanFor: 30 * time.Minute})
	ctx := context.Background()
	for i := range 2 {
		f.a.Login(ctx, ipA, "alice", "wrong")
		f.clock.Advance(time.Minute)
		if f.a.Banned(ipA) {
			t.Fatalf("banned after %d failures", i+1)
		}
	}
	if _, err := f.a.Admit(ipA); err != nil {
		t.Fatalf("Admit before the ban: %v", err)
	}
	// A refused name counts as a failure too.
	if _, err := f.a.Login(ctx, ipA, "root", rootPW); !errors.Is(err, ErrLoginFailed) {
		t.Fatalf("third failure: %v", err)
	}
	if !f.a.Banned(ipA) {
		t.Fatal("not banned after 3 failures within the window")
	}
	if f.a.Banned(ipB) {
		t.Fatal("another address is banned too")
	}
	_, err := f.a.Admit(ipA)
	if !errors.Is(err, ErrBanned) || err.Error() != "too many failed logins, try later" {
		t.Fatalf("Admit while banned: %v", err)
	}
	if _, err := f.a.Login(ctx, ipA, "alice", alicePW); !errors.Is(err, ErrBanned) {
		t.Fatalf("right password while banned: err = %v, want ErrBanned", err)
	}
	if _, err := f.a.Login(ctx, ipB, "alice", alicePW); err != nil {
		t.Fatalf("another address: %v", err)
	}

	f.clock.Advance(30*time.Minute - time.Second)
	if !f.a.Banned(ipA) {
		t.Fatal("ban ended early")
	}
	f.clock.Advance(time.Second)
	if f.a.Banned(ipA) {
		t.Fatal("ban did not expire after BanFor")
	}
	if _, err := f.a.Login(ctx, ipA, "alice", alicePW); err != nil {
		t.Fatalf("login after the ban expired: %v", err)
	}
	// The count starts afresh after a ban: two more failures do not ban again.
	f.a.Login(ctx, ipA, "alice", "wrong")
	f.a.Login(ctx, ipA, "alice", "wrong")
	if f.a.Banned(ipA) {
		t.Fatal("banned again after only 2 new failures")
	}
	if s := f.a.Stats(); s.Bans != 1 || s.BannedNow != 0 {
		t.Fatalf("stats = %+v, want 1 ban in total, none now", s)
	}
}

func TestBanNeedsFailuresWithinWindow(t *testing.T) {
	f := newAccessFixture(t, AccessConfig{BanAfter: 3, BanWindow: 10 * time.Minute})
	ctx := context.Background()
	for range 3 { // at 0, 6m, 12m: never 3 within 10 minutes
		f.a.Login(ctx, ipA, "alice", "wrong")
		f.clock.Advance(6 * time.Minute)
	}
	if f.a.Banned(ipA) {
		t.Fatal("banned although the failures were spread over more than the window")
	}
	f.clock.Advance(-5 * time.Minute) // now 13m: failures at 6m, 12m, 13m are within 10 minutes
	f.a.Login(ctx, ipA, "alice", "wrong")
	if !f.a.Banned(ipA) {
		t.Fatal("not banned after 3 failures within the window")
	}
}

func TestSuccessDoesNotResetFailures(t *testing.T) {
	f := newAccessFixture(t, AccessConfig{BanAfter: 3})
	ctx := context.Background()
	f.a.Login(ctx, ipA, "bob", "guess1")
	f.a.Login(ctx, ipA, "bob", "guess2")
	if _, err := f.a.Login(ctx, ipA, "alice", alicePW); err != nil {
		t.Fatal(err)
	}
	f.a.Login(ctx, ipA, "bob", "guess3")
	if !f.a.Banned(ipA) {
		t.Fatal("a valid login between guesses reset the failure count")
	}
}

func TestIPv6BannedPerSlash64(t *testing.T) {
	f := newAccessFixture(t, AccessConfig{BanAfter: 3})
	ctx := context.Background()
	for i := 1; i <= 3; i++ {
		f.a.Login(ctx, netip.MustParseAddr(fmt.Sprintf("2001:db8:1:2::%x", i)), "alice", "wrong")
	}
	if !f.a.Banned(netip.MustParseAddr("2001:db8:1:2:ffff:ffff:ffff:ffff")) {
		t.Fatal("failures from one /64 did not ban the /64")
	}
	if f.a.Banned(netip.MustParseAddr("2001:db8:1:3::1")) {
		t.Fatal("the neighbouring /64 is banned")
	}
	// IPv4-mapped IPv6 addresses are the IPv4 address.
	for range 3 {
		f.a.Login(ctx, netip.MustParseAddr("::ffff:192.0.2.9"), "alice", "wrong")
	}
	if !f.a.Banned(netip.MustParseAddr("192.0.2.9")) {
		t.Fatal("failures from ::ffff:192.0.2.9 did not ban 192.0.2.9")
	}
}

func TestFailDelayHonoursContext(t *testing.T) {
	f := newAccessFixture(t, AccessConfig{FailDelay: time.Hour, BanAfter: 100})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := f.a.Login(ctx, ipA, "alice", "wrong")
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("failed login answered before its delay: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	if got := f.a.Stats().LoginsFailed; got != 1 {
		t.Fatalf("the failure must be counted before the delay: LoginsFailed = %d", got)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, ErrLoginFailed) {
			t.Fatalf("err = %v, want ErrLoginFailed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Login kept sleeping after its context ended")
	}
}

func TestVerificationSlotHonoursContext(t *testing.T) {
	f := newAccessFixture(t, AccessConfig{MaxVerifying: 1})
	f.a.verify <- struct{}{} // occupy the only slot
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := f.a.Login(ctx, ipA, "alice", alicePW); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled while no slot is free", err)
	}
	<-f.a.verify
	if _, err := f.a.Login(context.Background(), ipA, "alice", alicePW); err != nil {
		t.Fatal(err)
	}
}

func TestConnectionLimits(t *testing.T) {
	f := newAccessFixture(t, AccessConfig{MaxConns: 3, MaxConnsPerIP: 2})
	r1, err := f.a.Admit(ipA)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.a.Admit(ipA); err != nil {
		t.Fatal(err)
	}
	if _, err := f.a.Admit(ipA); !errors.Is(err, ErrTooManyConnsFromAddr) {
		t.Fatalf("third connection from one address: %v", err)
	}
	rB, err := f.a.Admit(ipB)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.a.Admit(ipC); !errors.Is(err, ErrTooManyConns) {
		t.Fatalf("fourth connection in total: %v", err)
	}
	if s := f.a.Stats(); s.ActiveConns != 3 || s.RefusedConns != 2 {
		t.Fatalf("stats = %+v", s)
	}
	// Releasing twice gives back one slot only.
	r1()
	r1()
	if s := f.a.Stats(); s.ActiveConns != 2 {
		t.Fatalf("ActiveConns after double release = %d, want 2", s.ActiveConns)
	}
	if _, err := f.a.Admit(ipA); err != nil {
		t.Fatalf("after release: %v", err)
	}
	if _, err := f.a.Admit(ipA); !errors.Is(err, ErrTooManyConns) && !errors.Is(err, ErrTooManyConnsFromAddr) {
		t.Fatalf("over the limits again: %v", err)
	}
	rB()
	if _, err := f.a.Admit(ipC); err != nil {
		t.Fatalf("after B released: %v", err)
	}
}

func TestConnectionCountsUnderConcurrency(t *testing.T) {
	f := newAccessFixture(t, AccessConfig{MaxConns: 1000, MaxConnsPerIP: 1000})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			ip := netip.AddrFrom4([4]byte{10, 0, 0, byte(g % 3)})
			for range 200 {
				r, err := f.a.Admit(ip)
				if err != nil {
					t.Error(err)
					return
				}
				var inner sync.WaitGroup
				inner.Go(r)
				inner.Go(r) // concurrent double release
				inner.Wait()
			}
		})
	}
	wg.Wait()
	if s := f.a.Stats(); s.ActiveConns != 0 {
		t.Fatalf("ActiveConns = %d after every connection was released", s.ActiveConns)
	}
	f.a.mu.Lock()
	defer f.a.mu.Unlock()
	if len(f.a.conns) != 0 {
		t.Fatalf("per-address counts left behind: %v", f.a.conns)
	}
}

// 10,000 failed logins from one address: it is banned after BanAfter, and the state stays one record.
func TestManyFailuresFromOneAddressBounded(t *testing.T) {
	f := newAccessFixture(t, AccessConfig{BanAfter: 5})
	ctx := context.Background()
	var banned int
	for i := range 10000 {
		_, err := f.a.Login(ctx, ipA, "mallory", "guess")
		if errors.Is(err, ErrBanned) && banned == 0 {
			banned = i
		}
	}
	if banned != 5 {
		t.Fatalf("first ErrBanned at attempt %d, want 5 (after 5 failures)", banned)
	}
	s := f.a.Stats()
	if s.BannedNow != 1 || s.TrackedIPs != 0 || s.Bans != 1 || s.LoginsFailed != 10000 {
		t.Fatalf("stats = %+v; want one ban and no failure records", s)
	}
}

// Failures from many addresses: failure records and bans each stay within MaxTrackedIPs, evicting the oldest.
func TestManyAddressesBounded(t *testing.T) {
	const max = 100
	f := newAccessFixture(t, AccessConfig{BanAfter: 2, MaxTrackedIPs: max})
	ctx := context.Background()
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}) }
	for i := range 5000 {
		f.a.Login(ctx, addr(i), "admin", "x")
		if s := f.a.Stats(); s.TrackedIPs > max {
			t.Fatalf("after %d addresses: %d failure records, bound %d", i+1, s.TrackedIPs, max)
		}
	}
	if s := f.a.Stats(); s.TrackedIPs != max || s.Evictions != 5000-max {
		t.Fatalf("stats = %+v; want %d records, %d evictions", s, max, 5000-max)
	}
	// The most recent addresses are still tracked: one more failure bans them.
	f.a.Login(ctx, addr(4999), "admin", "x")
	if !f.a.Banned(addr(4999)) {
		t.Fatal("the most recent failure record was evicted")
	}
	for i := range 300 {
		f.a.Login(ctx, addr(10000+i), "admin", "x")
		f.a.Login(ctx, addr(10000+i), "admin", "x")
		if s := f.a.Stats(); s.BannedNow > max {
			t.Fatalf("%d bans, bound %d", s.BannedNow, max)
		}
	}
	if !f.a.Banned(addr(10299)) || f.a.Banned(addr(10000)) {
		t.Fatal("ban eviction must drop the oldest ban and keep the newest")
	}
	// Records whose failures have left the window are pruned.
	f.clock.Advance(time.Hour)
	f.a.Login(ctx, ipA, "admin", "x")
	if s := f.a.Stats(); s.TrackedIPs != 1 || s.BannedNow != 0 {
		t.Fatalf("after the window and bans passed: stats = %+v; want 1 record, no bans", s)
	}
}

func TestPasswordsNeverLoggedAndReasonsGiven(t *testing.T) {
	f := newAccessFixture(t, AccessConfig{BanAfter: 4})
	ctx := context.Background()
	var errs []string
	login := func(name, pw string) {
		if _, err := f.a.Login(ctx, ipA, name, pw); err != nil {
			errs = append(errs, err.Error())
		}
	}
	login("alice", alicePW)
	login("alice", bobPW)
	login("mallory", rootPW)
	login("root", rootPW)
	login("bob", strings.Repeat("x", maxPasswordLen+1)) // the fourth failure bans
	login("bob", bobPW)
	f.a.Admit(ipA)
	want := []string{
		"login incorrect: wrong password",
		"login incorrect: unknown user",
		"login incorrect: refused name",
		"login incorrect: password too long",
		"too many failed logins, try later",
	}
	if strings.Join(errs, "|") != strings.Join(want, "|") {
		t.Fatalf("errors:\n got %q\nwant %q", errs, want)
	}
	log := f.log.String()
	for _, pw := range []string{alicePW, bobPW, rootPW} {
		if strings.Contains(log, pw) {
			t.Fatalf("password %q found in the log:\n%s", pw, log)
		}
	}
	if !strings.Contains(log, "address banned") || !strings.Contains(log, "ip=192.0.2.1") {
		t.Fatalf("the ban is not logged with its address:\n%s", log)
	}
}

func TestAccessImplementsSeams(t *testing.T) {
	var _ Authenticator = (*Access)(nil)
	var _ Admitter = (*Access)(nil)
	var _ Auditor = (*AuditLog)(nil)
}

// Every refusal does the work of a wrong password: a refused name, an unknown name and an overlong password
// each cost one hash verification, as a real name with a wrong password does, so timing does not tell them
// apart. A banned address costs none.
func TestRefusalsCostOneVerification(t *testing.T) {
	f := newAccessFixture(t, AccessConfig{BanAfter: 100})
	ctx := context.Background()
	for _, c := range []struct{ what, name, password string }{
		{"refused name", "root", rootPW},
		{"unknown name", "nobody-here", "x"},
		{"overlong password", "alice", strings.Repeat("p", maxPasswordLen+1)},
		{"wrong password", "alice", "wrong"},
	} {
		before := f.a.Stats().Verifications
		if _, err := f.a.Login(ctx, ipA, c.name, c.password); !errors.Is(err, ErrLoginFailed) {
			t.Errorf("%s: %v, want ErrLoginFailed", c.what, err)
		}
		if n := f.a.Stats().Verifications - before; n != 1 {
			t.Errorf("%s cost %d hash verifications, want 1", c.what, n)
		}
	}
}

// A client-supplied user name is logged and audited at most 64 bytes long, however long the USER line.
func TestLongUserNameLoggedCapped(t *testing.T) {
	log, logs := logbuf.New(nil)
	ts := startServer(t, memFs(afero.NewMemMapFs()), func(o *Options, d *Deps) {
		o.AllowPlain = true
		d.Log = log
	})
	c := dialRaw(t, ts.addr)
	long := strings.Repeat("n", 4000)
	c.send("USER %s", long)
	c.readReply()
	c.send("PASS x")
	if code, _ := c.readReply(); code != 530 {
		t.Fatalf("PASS after a 4000-byte USER = %d, want 530", code)
	}
	for _, l := range logs.Lines() {
		if strings.Contains(l, strings.Repeat("n", 65)) {
			t.Errorf("a log line carries more than 64 bytes of the name: %.200s...", l)
		}
	}
	for _, e := range ts.audit.find("login_failed", "") {
		if len(e.User) > 64+3 {
			t.Errorf("the audit record carries %d bytes of the name", len(e.User))
		}
	}
}

// The last ReservedConns connection slots go only to addresses that logged in within KnownFor: connections
// that never log in (200 idle bots) cannot lock out the customers who use the server.
func TestReservedConnsForKnownAddresses(t *testing.T) {
	f := newAccessFixture(t, AccessConfig{MaxConns: 8, ReservedConns: 2, KnownFor: time.Hour})
	ctx := context.Background()
	customer := netip.MustParseAddr("198.51.100.7")
	if _, err := f.a.Login(ctx, customer, "alice", alicePW); err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		if _, err := f.a.Admit(netip.AddrFrom4([4]byte{203, 0, 113, byte(i + 1)})); err != nil {
			t.Fatalf("unknown address %d of 6: %v", i+1, err)
		}
	}
	if _, err := f.a.Admit(netip.MustParseAddr("203.0.113.99")); !errors.Is(err, ErrTooManyConns) {
		t.Errorf("a 7th unknown address = %v, want ErrTooManyConns (2 slots kept for known addresses)", err)
	}
	release, err := f.a.Admit(customer)
	if err != nil {
		t.Fatalf("a customer that logged in before, with the reserve free: %v", err)
	}
	if _, err := f.a.Admit(customer); err != nil {
		t.Fatalf("its second connection: %v", err)
	}
	if _, err := f.a.Admit(customer); !errors.Is(err, ErrTooManyConns) {
		t.Errorf("past MaxConns = %v, want ErrTooManyConns", err)
	}
	release()
	f.clock.Advance(2 * time.Hour)
	if _, err := f.a.Admit(customer); !errors.Is(err, ErrTooManyConns) {
		t.Errorf("a customer last seen beyond KnownFor, only the reserve free = %v, want ErrTooManyConns", err)
	}
}
