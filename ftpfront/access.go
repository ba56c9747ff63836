package ftpfront

// Login policy, bans and connection limits.
//
// Access is the server's Authenticator and Admitter. Its invariants:
//   - Addresses are tracked by key: an IPv4 address, or the /64 prefix of an IPv6 address (one host controls a
//     whole /64, so banning single IPv6 addresses would ban nothing). Bans and per-address limits apply per key.
//   - A failed login (unknown name, wrong password, refused name, over-long password) is recorded before the
//     failed-login delay starts, so closing the connection early does not avoid the count. A successful login does
//     not clear the count: one valid account must not unlock unlimited guessing of others.
//   - Memory is bounded: a failure record is a ring of BanAfter timestamps; at most MaxTrackedIPs keys have
//     failure records (least recently failing evicted first, stale ones pruned) and at most MaxTrackedIPs keys are
//     banned (the ban closest to expiry evicted first). Connection counts exist only for connected keys.
//   - Password verification runs outside the lock and at most MaxVerifying at a time, so a flood of logins costs
//     bounded CPU and memory (an argon2id verification allocates its m parameter).
//   - The accounts can be replaced while the server runs (SetUsers, on SIGHUP in ftpfront): a login verifies
//     against the accounts current when it starts, and AccountValid tells a session whether the account it
//     logged in with is still there unchanged.
//   - Lock order: Access.mu is a leaf; nothing is called while holding it except map/list bookkeeping and the
//     clock.

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
)

// DefaultRefusedNames are login names that are refused even when an account with that name and the right
// password exists: they are the names password-spraying bots try first, so they are never valid on this server.
var DefaultRefusedNames = []string{
	"admin", "administrator", "root", "test", "user", "ubuntu", "guest", "ftp", "ftpuser", "anonymous",
	"oracle", "pi", "postgres", "mysql", "support", "www", "www-data", "web", "backup", "operator", "info",
	"demo", "default", "nobody", "sysadmin", "manager", "service", "ec2-user", "centos", "debian", "git",
	"jenkins", "tomcat", "hadoop", "nagios", "apache", "nginx", "daemon", "bin", "mail", "sales", "office",
}

// Errors returned by Access. Their texts are meant for the client (the server prefixes the reply code) and for
// logs; none of them says whether a name exists.
var (
	// ErrLoginFailed is returned by Login for every refused login except a banned address.
	ErrLoginFailed = errors.New("login incorrect")
	// ErrBanned is returned by Admit and Login for an address banned after too many failed logins.
	ErrBanned = errors.New("too many failed logins, try later")
	// ErrTooManyConns is returned by Admit when the server has MaxConns connections.
	ErrTooManyConns = errors.New("too many connections, try later")
	// ErrTooManyConnsFromAddr is returned by Admit when the address has MaxConnsPerIP connections.
	ErrTooManyConnsFromAddr = errors.New("too many connections from your address, try later")
)

// AccessConfig tunes Access. Zero fields take the documented defaults.
type AccessConfig struct {
	// RefusedNames are refused logins regardless of password, compared case-insensitively. nil means
	// DefaultRefusedNames; an empty non-nil slice refuses no name.
	RefusedNames []string
	// FailDelay is how long a failed login waits before answering (default 2s). The wait ends early when the
	// session's context ends.
	FailDelay time.Duration
	// BanAfter failed logins from one address within BanWindow ban it for BanFor (defaults 5, 10m, 30m).
	BanAfter int
	// BanWindow is the window in which BanAfter failures ban an address (default 10m).
	BanWindow time.Duration
	// BanFor is how long a ban lasts (default 30m).
	BanFor time.Duration
	// MaxConns bounds concurrent control connections in total (default 200).
	MaxConns int
	// MaxConnsPerIP bounds concurrent control connections per address (default 20).
	MaxConnsPerIP int
	// ReservedConns is how many of MaxConns only addresses that logged in within KnownFor may take (default
	// MaxConns/4; negative: none), so that connections that never log in (idle bots, a flood of pre-login
	// connections) cannot lock out the customers who use the server.
	ReservedConns int
	// KnownFor is how long an address that logged in counts as known for ReservedConns (default 24h). At most
	// MaxTrackedIPs addresses are remembered; beyond that the oldest is forgotten.
	KnownFor time.Duration
	// MaxTrackedIPs bounds the addresses with failure records, and separately the banned addresses
	// (default 10000).
	MaxTrackedIPs int
	// MaxVerifying bounds concurrent password verifications (default GOMAXPROCS).
	MaxVerifying int
	// Now is the clock (default time.Now); tests inject one to expire windows and bans.
	Now func() time.Time
}

// withDefaults returns cfg with zero fields replaced by their defaults.
func (cfg AccessConfig) withDefaults() AccessConfig {
	if cfg.RefusedNames == nil {
		cfg.RefusedNames = DefaultRefusedNames
	}
	setDur := func(d *time.Duration, def time.Duration) {
		if *d <= 0 {
			*d = def
		}
	}
	setInt := func(n *int, def int) {
		if *n <= 0 {
			*n = def
		}
	}
	setDur(&cfg.FailDelay, 2*time.Second)
	setDur(&cfg.BanWindow, 10*time.Minute)
	setDur(&cfg.BanFor, 30*time.Minute)
	setInt(&cfg.BanAfter, 5)
	setInt(&cfg.MaxConns, 200)
	setDur(&cfg.KnownFor, 24*time.Hour)
	switch {
	case cfg.ReservedConns == 0:
		cfg.ReservedConns = cfg.MaxConns / 4
	case cfg.ReservedConns < 0:
		cfg.ReservedConns = 0
	}
	cfg.ReservedConns = min(cfg.ReservedConns, cfg.MaxConns)
	setInt(&cfg.MaxConnsPerIP, 20)
	setInt(&cfg.MaxTrackedIPs, 10000)
	setInt(&cfg.MaxVerifying, runtime.GOMAXPROCS(0))
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return cfg
}

// AccessStats is a snapshot of Access counters, for metrics.
type AccessStats struct {
	// LoginsOK and LoginsFailed count Login results since start (a banned address's attempt counts as failed).
	LoginsOK, LoginsFailed uint64
	// Verifications counts password hash verifications: one per login attempt that is not banned, whatever
	// the name (a refused or unknown name is verified against a dummy hash).
	Verifications uint64
	// Bans counts bans imposed since start.
	Bans uint64
	// BannedNow is the number of addresses currently banned.
	BannedNow int
	// TrackedIPs is the number of addresses with failure records.
	TrackedIPs int
	// ActiveConns is the number of admitted connections not yet released.
	ActiveConns int
	// RefusedConns counts Admit refusals (banned or over a limit) since start.
	RefusedConns uint64
	// Evictions counts failure records and bans dropped to stay within MaxTrackedIPs.
	Evictions uint64
}

// Access implements Authenticator and Admitter over a UserDB. It is safe for concurrent use.
type Access struct {
	users   atomic.Pointer[UserDB] // replaced whole by SetUsers
	cfg     AccessConfig
	refused map[string]struct{} // lower-cased names
	log     *slog.Logger
	verify  chan struct{} // semaphore: one token per running password verification

	loginsOK, loginsFailed atomic.Uint64
	verifications          atomic.Uint64

	mu sync.Mutex
	// Guarded by mu.
	fails        map[netip.Prefix]*list.Element // value *failRecord
	failLRU      list.List                      // most recent failure at the front
	bans         map[netip.Prefix]*list.Element // value *banRecord
	banOrder     list.List                      // newest ban at the front; bans expire from the back
	conns        map[netip.Prefix]int           // open connections per key, only keys > 0
	active       int
	known        map[netip.Prefix]*list.Element // value *knownRecord: keys that logged in within KnownFor
	knownOrder   list.List                      // most recent login at the front
	bansTotal    uint64
	refusedConns uint64
	evictions    uint64
}

// knownRecord is an address key that logged in, and when it last did.
type knownRecord struct {
	key netip.Prefix
	at  time.Time
}

// noteLoginLocked remembers that key logged in at now.
func (a *Access) noteLoginLocked(key netip.Prefix, now time.Time) {
	if e, ok := a.known[key]; ok {
		e.Value.(*knownRecord).at = now
		a.knownOrder.MoveToFront(e)
		return
	}
	a.known[key] = a.knownOrder.PushFront(&knownRecord{key: key, at: now})
	for len(a.known) > a.cfg.MaxTrackedIPs {
		old := a.knownOrder.Back()
		a.knownOrder.Remove(old)
		delete(a.known, old.Value.(*knownRecord).key)
	}
}

// knownLocked reports whether key logged in within KnownFor.
func (a *Access) knownLocked(key netip.Prefix, now time.Time) bool {
	e, ok := a.known[key]
	return ok && now.Sub(e.Value.(*knownRecord).at) < a.cfg.KnownFor
}

// failRecord holds the times of the last BanAfter failures of one key.
type failRecord struct {
	key   netip.Prefix
	times []int64 // ring, unix nanoseconds
	next  int     // ring slot for the next failure
	n     int     // failures recorded, at most len(times)
}

// banRecord is one banned key.
type banRecord struct {
	key   netip.Prefix
	until time.Time
}

// NewAccess returns the login and admission policy for users; users must not be nil. A nil log means
// slog.Default(). Accounts whose name is refused are reported in the log: they can never log in.
func NewAccess(users *UserDB, cfg AccessConfig, log *slog.Logger) *Access {
	if log == nil {
		log = slog.Default()
	}
	cfg = cfg.withDefaults()
	a := &Access{
		cfg:     cfg,
		refused: make(map[string]struct{}, len(cfg.RefusedNames)),
		log:     log,
		verify:  make(chan struct{}, cfg.MaxVerifying),
		fails:   make(map[netip.Prefix]*list.Element),
		bans:    make(map[netip.Prefix]*list.Element),
		conns:   make(map[netip.Prefix]int),
		known:   make(map[netip.Prefix]*list.Element),
	}
	for _, n := range cfg.RefusedNames {
		a.refused[strings.ToLower(n)] = struct{}{}
	}
	a.SetUsers(users)
	return a
}

// SetUsers replaces the accounts; users must not be nil. Logins that start afterwards see only the new accounts;
// a login verifying its password meanwhile finishes against the old ones. Sessions logged in with an account
// that users lacks or holds changed (password hash, home or read-only flag) find out through AccountValid.
// Accounts whose name is refused are reported in the log, as by NewAccess.
func (a *Access) SetUsers(users *UserDB) {
	for name := range users.users {
		if a.isRefused(name) {
			a.log.Warn("access: account can never log in: its name is on the refused list", "user", name)
		}
	}
	a.users.Store(users)
}

// AccountValid reports whether the account u was logged in with (u as returned by Login) still exists with the
// same password hash, home and read-only flag. It is false after SetUsers removed or changed the account, and
// for a User that Login did not return.
func (a *Access) AccountValid(u *User) bool {
	if u == nil || u.account == nil {
		return false
	}
	cur := a.users.Load().lookup(u.Name)
	return cur != nil && *cur == *u.account
}

// addrKey maps an address to its tracking key: the IPv4 address, or the IPv6 /64. The invalid address (e.g. a
// non-IP listener) maps to the zero Prefix, one shared key.
func addrKey(ip netip.Addr) netip.Prefix {
	ip = ip.Unmap()
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, err := ip.Prefix(bits)
	if err != nil {
		return netip.Prefix{}
	}
	return p
}

// isRefused reports whether name is on the refused list.
func (a *Access) isRefused(name string) bool {
	_, ok := a.refused[strings.ToLower(name)]
	return ok
}

// Login checks name and password from ip. It returns the account; ErrBanned for a banned address; an error
// wrapping ErrLoginFailed that names the reason ("login incorrect: unknown user", "...: wrong password",
// "...: refused name", "...: password too long") for the session's log and audit record, never for the client; or
// ctx's error if ctx ends while waiting for a verification slot. Refusals answer after FailDelay, or earlier if
// ctx ends. An unknown name is verified against a dummy hash of the same cost as the real ones, so that timing does
// not reveal which names exist. Access logs bans, not individual logins (the session logs those); passwords are
// never logged.
func (a *Access) Login(ctx context.Context, ip netip.Addr, name, password string) (*User, error) {
	key := addrKey(ip)
	a.mu.Lock()
	banned := a.bannedLocked(key, a.cfg.Now())
	a.mu.Unlock()
	if banned {
		a.loginsFailed.Add(1)
		a.sleep(ctx)
		return nil, ErrBanned
	}

	var (
		u   *dbUser
		ok  bool
		why string
	)
	// Every refusal costs the same work as a wrong password, so that timing tells nothing about why: a refused
	// name or an overlong password is verified against the dummy hash too.
	db := a.users.Load()
	hash, candidate := db.dummyHash, password
	switch {
	case a.isRefused(name):
		why, candidate = "refused name", ""
	case len(password) > maxPasswordLen:
		why, candidate = "password too long", ""
	default:
		if u = db.lookup(name); u != nil {
			hash = u.hash
		}
	}
	select {
	case a.verify <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	verified, err := VerifyPassword(hash, candidate)
	<-a.verify
	a.verifications.Add(1)
	if why == "" {
		ok = verified
		switch {
		case err != nil:
			// Hashes are validated when loaded, so this means a bug or memory corruption; refuse.
			a.log.Error("access: login refused: unusable password hash", "user", logName(name), "err", err)
			ok, why = false, "unusable hash"
		case u == nil:
			ok, why = false, "unknown user"
		case !ok:
			why = "wrong password"
		}
	}
	if ok {
		// A concurrent session from the same address may have been banned during the verification.
		a.mu.Lock()
		banned = a.bannedLocked(key, a.cfg.Now())
		a.mu.Unlock()
		if banned {
			a.loginsFailed.Add(1)
			a.sleep(ctx)
			return nil, ErrBanned
		}
		a.loginsOK.Add(1)
		a.mu.Lock()
		a.noteLoginLocked(key, a.cfg.Now())
		a.mu.Unlock()
		user := u.user
		user.account = u
		return &user, nil
	}

	a.loginsFailed.Add(1)
	a.mu.Lock()
	nowBanned := a.recordFailureLocked(key, a.cfg.Now())
	a.mu.Unlock()
	if nowBanned {
		a.log.Warn("access: address banned", "ip", ip, "key", key, "failures", a.cfg.BanAfter,
			"window", a.cfg.BanWindow, "for", a.cfg.BanFor)
	}
	a.sleep(ctx)
	return nil, fmt.Errorf("%w: %s", ErrLoginFailed, why)
}

// LoginKey checks that key is one of name's authorized keys (UserConfig.AuthorizedKeys), from ip. It returns
// the account; ErrBanned for a banned address; or an error wrapping ErrLoginFailed ("...: refused name",
// "...: unknown user or key"). Unlike Login it neither counts a refusal towards the ban nor delays it: an SSH
// client offers each key it holds in turn before it tries a password, and a public key cannot be guessed. The
// caller must have verified that the client holds the private key (x/crypto/ssh does, after its public key
// callback accepted the key), and counts the login; LoginKey changes no counter.
func (a *Access) LoginKey(ip netip.Addr, name string, key ssh.PublicKey) (*User, error) {
	a.mu.Lock()
	banned := a.bannedLocked(addrKey(ip), a.cfg.Now())
	a.mu.Unlock()
	switch {
	case banned:
		return nil, ErrBanned
	case a.isRefused(name):
		return nil, fmt.Errorf("%w: refused name", ErrLoginFailed)
	}
	u := a.users.Load().lookup(name)
	if u == nil || !u.hasKey(key) {
		return nil, fmt.Errorf("%w: unknown user or key", ErrLoginFailed)
	}
	user := u.user
	user.account = u
	return &user, nil
}

// KeyLoginDone records a public-key login from ip that completed (LoginKey accepted the key and the client proved
// it holds it) as Login records a password login: it counts in LoginsOK and makes ip known for ReservedConns.
func (a *Access) KeyLoginDone(ip netip.Addr) {
	a.loginsOK.Add(1)
	a.mu.Lock()
	a.noteLoginLocked(addrKey(ip), a.cfg.Now())
	a.mu.Unlock()
}

// sleep waits FailDelay or until ctx ends, whichever comes first.
func (a *Access) sleep(ctx context.Context) {
	t := time.NewTimer(a.cfg.FailDelay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// logName bounds a client-supplied name for logging: people sometimes type a password into the name field, and
// a megabyte name must not become a megabyte log line.
func logName(name string) string {
	const max = 64
	if len(name) > max {
		return name[:max] + "..."
	}
	return name
}

// Admit admits a new control connection from ip, or refuses it with ErrBanned, ErrTooManyConns or
// ErrTooManyConnsFromAddr (the server logs refusals). The last ReservedConns slots go only to addresses that
// logged in within KnownFor. The returned release function gives the slot back; calling it
// more than once has no further effect.
func (a *Access) Admit(ip netip.Addr) (release func(), err error) {
	key := addrKey(ip)
	now := a.cfg.Now()
	a.mu.Lock()
	switch {
	case a.bannedLocked(key, now):
		err = ErrBanned
	case a.active >= a.cfg.MaxConns:
		err = ErrTooManyConns
	case a.active >= a.cfg.MaxConns-a.cfg.ReservedConns && !a.knownLocked(key, now):
		err = ErrTooManyConns // the rest is kept for addresses that logged in before
	case a.conns[key] >= a.cfg.MaxConnsPerIP:
		err = ErrTooManyConnsFromAddr
	default:
		a.active++
		a.conns[key]++
	}
	if err != nil {
		a.refusedConns++
	}
	a.mu.Unlock()
	if err != nil {
		return nil, err
	}
	var released atomic.Bool
	return func() {
		if !released.CompareAndSwap(false, true) {
			return
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		a.active--
		if a.conns[key]--; a.conns[key] <= 0 {
			delete(a.conns, key)
		}
	}, nil
}

// Banned reports whether ip (or, for IPv6, its /64) is currently banned.
func (a *Access) Banned(ip netip.Addr) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.bannedLocked(addrKey(ip), a.cfg.Now())
}

// Stats returns a snapshot of the counters.
func (a *Access) Stats() AccessStats {
	a.mu.Lock()
	defer a.mu.Unlock()
	return AccessStats{
		LoginsOK:      a.loginsOK.Load(),
		LoginsFailed:  a.loginsFailed.Load(),
		Verifications: a.verifications.Load(),
		Bans:          a.bansTotal,
		BannedNow:     len(a.bans),
		TrackedIPs:    len(a.fails),
		ActiveConns:   a.active,
		RefusedConns:  a.refusedConns,
		Evictions:     a.evictions,
	}
}

// bannedLocked reports whether key is banned at now, dropping expired bans on the way.
func (a *Access) bannedLocked(key netip.Prefix, now time.Time) bool {
	a.pruneBansLocked(now)
	e, ok := a.bans[key]
	if !ok {
		return false
	}
	if now.Before(e.Value.(*banRecord).until) {
		return true
	}
	a.banOrder.Remove(e)
	delete(a.bans, key)
	return false
}

// pruneBansLocked drops expired bans from the back of banOrder (all bans last BanFor, so the back expires first).
func (a *Access) pruneBansLocked(now time.Time) {
	for e := a.banOrder.Back(); e != nil; e = a.banOrder.Back() {
		b := e.Value.(*banRecord)
		if now.Before(b.until) {
			return
		}
		a.banOrder.Remove(e)
		delete(a.bans, b.key)
	}
}

// recordFailureLocked counts a failed login from key at now and reports whether it banned key.
func (a *Access) recordFailureLocked(key netip.Prefix, now time.Time) bool {
	if a.bannedLocked(key, now) {
		return false
	}
	t := now.UnixNano()
	window := a.cfg.BanWindow.Nanoseconds()
	// Drop records whose newest failure has left the window; the LRU back holds the oldest newest-failure.
	for e := a.failLRU.Back(); e != nil; e = a.failLRU.Back() {
		r := e.Value.(*failRecord)
		if t-r.newest() < window {
			break
		}
		a.failLRU.Remove(e)
		delete(a.fails, r.key)
	}
	var r *failRecord
	if e, ok := a.fails[key]; ok {
		r = e.Value.(*failRecord)
		a.failLRU.MoveToFront(e)
	} else {
		if len(a.fails) >= a.cfg.MaxTrackedIPs {
			old := a.failLRU.Back()
			a.failLRU.Remove(old)
			delete(a.fails, old.Value.(*failRecord).key)
			a.evictions++
		}
		r = &failRecord{key: key, times: make([]int64, a.cfg.BanAfter)}
		a.fails[key] = a.failLRU.PushFront(r)
	}
	r.add(t)
	if r.n < len(r.times) || t-r.oldest() >= window {
		return false
	}
	a.failLRU.Remove(a.fails[key])
	delete(a.fails, key)
	if len(a.bans) >= a.cfg.MaxTrackedIPs {
		old := a.banOrder.Back()
		a.banOrder.Remove(old)
		delete(a.bans, old.Value.(*banRecord).key)
		a.evictions++
	}
	a.bans[key] = a.banOrder.PushFront(&banRecord{key: key, until: now.Add(a.cfg.BanFor)})
	a.bansTotal++
	return true
}

// add records a failure at t (unix nanoseconds).
func (r *failRecord) add(t int64) {
	r.times[r.next] = t
	r.next = (r.next + 1) % len(r.times)
	if r.n < len(r.times) {
		r.n++
	}
}

// newest returns the time of the latest failure; the record has at least one.
func (r *failRecord) newest() int64 {
	return r.times[(r.next+len(r.times)-1)%len(r.times)]
}

// oldest returns the time of the earliest failure still in the ring; meaningful when the ring is full.
func (r *failRecord) oldest() int64 {
	return r.times[r.next]
}
