package ftpfront

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"
	"github.com/spf13/afero"
)

// Hostile clients. Each test names the attack and asserts what the server promises: nothing outside a user's
// home is read, written or listed, the session survives malformed input (or ends with a reply), and resources
// held for an attacker are bounded. Attacks already covered elsewhere (".." and absolute paths, symlinks out
// of the home for SIZE/MDTM/CWD/STOR/NLST, over-long lines, CR inside a line, TLS required before USER) are
// in security_test.go and server_test.go and are not repeated here.

// hostileTree is a root with alice's home and a sibling directory the jail must hide.
type hostileTree struct {
	root, home, outside string
}

const hostileSecret = "TOP-SECRET-OUTSIDE"

func newHostileTree(t *testing.T) hostileTree {
	t.Helper()
	root := t.TempDir()
	h := hostileTree{root: root, home: filepath.Join(root, "alice"), outside: filepath.Join(root, "outside")}
	mustMkdir(t, filepath.Join(h.home, "sub"))
	mustMkdir(t, h.outside)
	for _, p := range []string{filepath.Join(h.outside, "secret.txt"), filepath.Join(root, "secret.txt")} {
		if err := os.WriteFile(p, []byte(hostileSecret), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(h.home, "mine.txt"), []byte("alice"), 0o644); err != nil {
		t.Fatal(err)
	}
	return h
}

// outsideFiles lists every path under root that is not inside the home, so a test can assert none was added,
// removed or changed.
func (h hostileTree) outsideFiles(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(h.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if p == h.home || strings.HasPrefix(p, h.home+string(filepath.Separator)) {
			return nil
		}
		content := "dir"
		if !d.IsDir() {
			b, _ := os.ReadFile(p)
			content = string(b)
		}
		out[p] = content
		return nil
	})
	return out
}

func (h hostileTree) start(t *testing.T) *testServer {
	ts := startServer(t, nil, nil)
	ts.auth.homes["alice"] = h.home
	return ts
}

// retrieve runs RETR p and returns the data if the server opened the transfer.
func (c *rawClient) hostileRetr(p string) (code int, data []byte) {
	c.t.Helper()
	d := dialData(c.t, c.epsv(), "")
	code, _ = c.cmd("RETR %s", p)
	if code != 150 && code != 125 {
		d.Close()
		return code, nil
	}
	data, _ = io.ReadAll(d)
	d.Close()
	code, _ = c.readReply()
	return code, data
}

// hostileStor runs STOR p with a small body; it returns the final reply code.
func (c *rawClient) hostileStor(p string) int {
	c.t.Helper()
	d := dialData(c.t, c.epsv(), "")
	code, _ := c.cmd("STOR %s", p)
	if code != 150 && code != 125 {
		d.Close()
		return code
	}
	d.Write([]byte("payload"))
	d.Close()
	code, _ = c.readReply()
	return code
}

// Encoded, backslash, NUL, over-long and invalid UTF-8 paths: none reaches a file outside the home, none
// writes outside it, and the session answers NOOP afterwards.
func TestHostilePathNames(t *testing.T) {
	h := newHostileTree(t)
	before := h.outsideFiles(t)
	ts := h.start(t)
	c := dialRaw(t, ts.addr)
	c.secure("alice", "secret")

	paths := []string{
		"%2e%2e/outside/secret.txt",
		"%2e%2e%2fsecret.txt",
		"..%2f..%2fsecret.txt",
		"..\\outside\\secret.txt",
		"sub\\..\\..\\secret.txt",
		"\\..\\..\\secret.txt",
		"....//....//secret.txt",
		"sub/../../outside/secret.txt",
		"/./../outside/./secret.txt",
		"//outside/secret.txt",
		h.outside + "/secret.txt",
		"../" + filepath.Base(h.outside) + "/secret.txt",
		"mine.txt\x00../../secret.txt",
		"\xc0\xae\xc0\xae/secret.txt", // overlong UTF-8 encoding of ".."
		"\xff\xfe/secret.txt",
		strings.Repeat("a", 300),
		strings.Repeat("../", 1300) + "secret.txt",
		strings.Repeat("sub/", 900) + "x",
	}
	for _, p := range paths {
		if code, _ := c.cmd("SIZE %s", p); code == 213 {
			t.Errorf("SIZE %q = 213: a file was found", p)
		}
		if code, data := c.hostileRetr(p); bytes.Contains(data, []byte(hostileSecret)) {
			t.Errorf("RETR %q (%d) returned the secret outside the home", p, code)
		}
		c.hostileStor(p)
		c.cmd("MKD %s", p)
		c.cmd("DELE %s", p)
		c.must(200, "NOOP")
	}
	// A CWD into the encoded names stays at or below "/".
	for _, p := range paths {
		c.cmd("CWD %s", p)
		if text := c.must(257, "PWD"); !strings.HasPrefix(text, `"/`) {
			t.Errorf("PWD after CWD %q = %q", p, text)
		}
		c.must(250, "CWD /")
	}
	after := h.outsideFiles(t)
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("files outside the home changed:\nbefore %v\nafter  %v", before, after)
	}
	// Whatever was stored went into the home, under a name without NUL, CR or LF.
	filepath.WalkDir(h.home, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.ContainsAny(d.Name(), "\x00\r\n") {
			t.Errorf("name with a control character created: %q", p)
		}
		return nil
	})
	if b, err := os.ReadFile(filepath.Join(h.home, "mine.txt")); err != nil || string(b) != "alice" {
		t.Errorf("mine.txt changed: %q, %v", b, err)
	}
}

// Symlinks inside the home that lead out: renaming into or out of them, deleting through them, creating
// directories and appending through them all fail, and nothing outside changes.
func TestHostileSymlinkEscapeWrites(t *testing.T) {
	h := newHostileTree(t)
	if err := os.Symlink(h.outside, filepath.Join(h.home, "out")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(h.outside, "secret.txt"), filepath.Join(h.home, "s")); err != nil {
		t.Fatal(err)
	}
	before := h.outsideFiles(t)
	ts := h.start(t)
	c := dialRaw(t, ts.addr)
	c.secure("alice", "secret")

	c.must(350, "RNFR mine.txt")
	if code, _ := c.cmd("RNTO out/stolen.txt"); code < 400 {
		t.Errorf("RNTO into a symlink leading out = %d", code)
	}
	if code, _ := c.cmd("RNFR out/secret.txt"); code == 350 {
		if code, _ := c.cmd("RNTO taken.txt"); code < 400 {
			t.Errorf("RNFR/RNTO out of a symlink leading out = %d", code)
		}
	}
	d := dialData(t, c.epsv(), "")
	if code, _ := c.cmd("APPE s"); code == 150 || code == 125 {
		d.Write([]byte("appended"))
		d.Close()
		c.readReply()
	} else {
		d.Close()
	}
	if code, data := c.hostileRetr("s"); bytes.Contains(data, []byte(hostileSecret)) {
		t.Errorf("RETR through a symlink returned the secret (%d)", code)
	}
	for _, cmd := range []string{"DELE out/secret.txt", "MKD out/newdir", "MFMT 20200101000000 out/secret.txt", "CWD out"} {
		if code, _ := c.cmd("%s", cmd); code < 400 {
			t.Errorf("%s = %d, want a refusal", cmd, code)
		}
	}
	// Removing the links themselves may succeed; their targets must stay.
	c.cmd("DELE s")
	c.cmd("RMD out")
	after := h.outsideFiles(t)
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("files outside the home changed:\nbefore %v\nafter  %v", before, after)
	}
}

// Before AUTH TLS and before login, no command touches the file system or opens a data port: every one is
// refused (4xx/5xx), and the session still accepts AUTH TLS afterwards.
func TestHostileCommandsBeforeLogin(t *testing.T) {
	mem := afero.NewMemMapFs()
	writeFile(t, mem, "/keep.txt", []byte("keep"))
	ts := startServer(t, memFs(mem), nil)
	cmds := []string{"PASV", "EPSV", "PORT 127,0,0,1,4,1", "EPRT |1|127.0.0.1|1025|", "LIST", "NLST", "MLSD",
		"RETR keep.txt", "STOR new.txt", "APPE keep.txt", "DELE keep.txt", "MKD d", "RMD d", "RNFR keep.txt",
		"RNTO x.txt", "CWD /", "CDUP", "PWD", "SIZE keep.txt", "MDTM keep.txt", "MFMT 20200101000000 keep.txt",
		"REST 10", "STAT keep.txt", "SITE CHMOD 777 keep.txt", "PASS secret"}
	check := func(c *rawClient, stage string) {
		for _, cmd := range cmds {
			if code, text := c.cmd("%s", cmd); code < 400 {
				t.Errorf("%s: %s = %d %q, want a refusal", stage, cmd, code, text)
			}
		}
	}
	c := dialRaw(t, ts.addr)
	check(c, "before AUTH TLS")
	c.must(234, "AUTH TLS")
	tc := tlsUpgrade(t, c)
	check(tc, "after AUTH TLS, before USER")
	tc.must(331, "USER alice")
	cmds = cmds[:len(cmds)-1] // PASS is the next step now
	check(tc, "after USER, before PASS")
	tc.must(331, "USER alice")
	tc.must(230, "PASS secret")

	var names []string
	afero.Walk(mem, "/", func(p string, _ os.FileInfo, _ error) error {
		names = append(names, p)
		return nil
	})
	if got := strings.Join(names, ","); got != "/,/keep.txt" {
		t.Errorf("file system after refused commands: %s", got)
	}
	if b, _ := afero.ReadFile(mem, "/keep.txt"); string(b) != "keep" {
		t.Errorf("keep.txt = %q", b)
	}
}

// File names carrying CR, LF or NUL (made on the disk behind the server, not through FTP) never break the
// listing's line structure nor appear raw in replies; "MKD a<LF>b" is one command line "MKD a" followed by a
// line "b", never a name with a line break.
func TestHostileCRLFInNames(t *testing.T) {
	h := newHostileTree(t)
	evil := "evil\r\n226 Transfer complete\r\nx"
	if err := os.WriteFile(filepath.Join(h.home, evil), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	ts := h.start(t)
	c := dialRaw(t, ts.addr)
	c.secure("alice", "secret")
	for _, cmd := range []string{"LIST", "NLST", "MLSD"} {
		d := dialData(t, c.epsv(), "")
		code, _ := c.cmd("%s", cmd)
		if code != 150 && code != 125 {
			d.Close()
			continue
		}
		list, _ := io.ReadAll(d)
		d.Close()
		c.expect(226)
		for _, line := range strings.Split(strings.TrimSuffix(string(list), "\r\n"), "\r\n") {
			if strings.ContainsAny(line, "\r\n") || strings.HasPrefix(line, "226 ") {
				t.Errorf("%s output has a broken or injected line %q", cmd, line)
			}
		}
	}
	// MLST and STAT name the file on the control connection.
	for _, cmd := range []string{"MLST " + "evil", "STAT ."} {
		c.send("%s", cmd)
		code, text := c.readReply()
		if strings.Contains(text, "\n226 ") {
			t.Errorf("%s reply (%d) carries an injected line: %q", cmd, code, text)
		}
	}
	c.send("MKD a\nb")
	c.readReply() // MKD a
	c.readReply() // b: unknown command
	c.must(200, "NOOP")
	entries, _ := os.ReadDir(h.home)
	for _, e := range entries {
		if e.Name() != evil && strings.ContainsAny(e.Name(), "\r\n") {
			t.Errorf("the server created a name with a line break: %q", e.Name())
		}
	}
}

// A slowloris control connection that trickles bytes of a line that never ends, and one that sends NOOPs
// but never logs in, are both closed by the login timeout; their goroutines end.
func TestHostileSlowloris(t *testing.T) {
	ts := startServer(t, memFs(afero.NewMemMapFs()), func(o *Options, _ *Deps) {
		o.LoginTimeout = 500 * time.Millisecond
	})
	base := hostileSettledGoroutines(-1)
	const conns = 20
	var wg sync.WaitGroup
	results := make(chan string, 2*conns)
	for i := range 2 * conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", ts.addr)
			if err != nil {
				results <- err.Error()
				return
			}
			defer c.Close()
			// Hang guard only: the server must close long before.
			c.SetDeadline(time.Now().Add(60 * time.Second))
			r := bufio.NewReader(c)
			r.ReadString('\n') // greeting
			for {
				if i%2 == 0 {
					// One byte of a line that never ends; any reply or EOF means the server acted.
					if _, err := c.Write([]byte("N")); err != nil {
						results <- closedOrHung(err)
						return
					}
					c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
					if _, err := r.ReadByte(); err == nil || !isTimeout(err) {
						results <- "closed"
						return
					}
					continue
				}
				// Complete commands, but never a login.
				if _, err := c.Write([]byte("NOOP\r\n")); err != nil {
					results <- closedOrHung(err)
					return
				}
				line, err := r.ReadString('\n')
				if err != nil {
					results <- closedOrHung(err)
					return
				}
				if strings.HasPrefix(line, "421") {
					results <- "closed"
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	close(results)
	for res := range results {
		if res != "closed" {
			t.Errorf("slowloris connection: %s", res)
		}
	}
	if after := hostileSettledGoroutines(base); after > base+2 {
		t.Errorf("goroutines: %d before the slowloris connections, %d after they were closed", base, after)
	}
}

// closedOrHung names why a slowloris connection ended: the server closed it, or the test's 60 s hang guard
// expired with the connection still open.
func closedOrHung(err error) string {
	if isTimeout(err) {
		return "still open after 60 s: " + err.Error()
	}
	return "closed"
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// hostileSettledGoroutines returns the goroutine count once it stops falling (or reaches target, when target
// is not negative), polling for up to 10 s.
func hostileSettledGoroutines(target int) int {
	n := runtime.NumGoroutine()
	for range 100 {
		if target >= 0 && n <= target {
			return n
		}
		time.Sleep(100 * time.Millisecond)
		m := runtime.NumGoroutine()
		if target < 0 && m == n {
			return m
		}
		n = m
	}
	return n
}

// hostileFDs counts this process's open descriptors.
func hostileFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// 10,000 failed logins from one address over the wire: it is banned after BanAfter failures, every later
// connection is refused at the greeting, and the heap does not grow with the attempts.
func TestHostileTenThousandFailedLogins(t *testing.T) {
	root := t.TempDir()
	hash, err := HashPassword("right")
	if err != nil {
		t.Fatal(err)
	}
	db, err := NewUserDB(root, []UserConfig{{Name: "carol", Password: hash, Home: "/"}})
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil)) // 10,000 refusals would flood the test log
	acc := NewAccess(db, AccessConfig{FailDelay: time.Millisecond, BanAfter: 5, BanWindow: time.Hour, BanFor: time.Hour}, quiet)
	ts := startServer(t, nil, func(o *Options, d *Deps) {
		d.Auth = acc
		d.Admit = acc
		d.Log = quiet
		o.MaxLoginAttempts = 3
	})
	const attempts = 10000
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	tried, sessions := 0, 0
	bannedAt := -1
	for tried < attempts {
		conn, err := net.DialTimeout("tcp", ts.addr, 5*time.Second)
		if err != nil {
			t.Fatalf("connect %d: %v", sessions, err)
		}
		sessions++
		conn.SetDeadline(time.Now().Add(30 * time.Second))
		r := bufio.NewReader(conn)
		greet, err := r.ReadString('\n')
		if err != nil {
			conn.Close()
			t.Fatalf("greeting: %v", err)
		}
		if strings.HasPrefix(greet, "421") {
			if bannedAt < 0 {
				bannedAt = tried
			}
			tried++
			conn.Close()
			continue
		}
		c := &rawClient{t: t, conn: conn, r: r}
		c.must(234, "AUTH TLS")
		tc := tlsUpgrade(t, c)
		for range 3 {
			tried++
			tc.send("USER carol")
			if code, _ := tc.readReply(); code != 331 {
				break
			}
			tc.send("PASS wrong-%d", tried)
			code, _ := tc.readReply()
			if code == 421 {
				break
			}
			if code != 530 {
				t.Fatalf("failed login %d got %d", tried, code)
			}
		}
		tc.conn.Close()
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	grow := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d attempts over %d connections; banned after %d failed logins; heap %d KiB -> %d KiB; stats %+v",
		tried, sessions, bannedAt, before.HeapAlloc>>10, after.HeapAlloc>>10, acc.Stats())
	if bannedAt < 0 || bannedAt > 5+3 {
		t.Errorf("banned after %d attempts, want within one session of BanAfter=5", bannedAt)
	}
	if s := acc.Stats(); s.BannedNow != 1 || s.TrackedIPs > 1 {
		t.Errorf("access state after %d attempts from one address: %+v", tried, s)
	}
	if grow > 8<<20 {
		t.Errorf("heap grew by %d KiB over %d failed attempts from one address", grow>>10, tried)
	}
}

// 200 concurrent FTPS sessions (jlaffaye/ftp) each store a small file and read it back: no errors, the files
// are intact, and once the sessions have quit, goroutines and descriptors return to where they were.
func TestHostileTwoHundredSessions(t *testing.T) {
	home := t.TempDir()
	// 200 TLS handshakes at once on a loaded CI machine: the data connection may take a while to arrive.
	// The 200 clients share one address (127.0.0.1), as behind a balancer: no per-address passive bound (that
	// bound is TestPassivePerAddressBound's).
	ts := startServer(t, nil, func(o *Options, _ *Deps) {
		o.DataAcceptTimeout = 2 * time.Minute
		o.MaxPassivePerIP = 0
	})
	ts.auth.homes["alice"] = home
	const n = 200
	baseG := hostileSettledGoroutines(-1)
	baseFD := hostileFDs(t)

	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			c, err := ftp.Dial(ts.addr, ftp.DialWithExplicitTLS(clientTLS()), ftp.DialWithTimeout(60*time.Second))
			if err != nil {
				errs <- fmt.Errorf("session %d: dial: %w", i, err)
				return
			}
			defer c.Quit()
			if err := c.Login("alice", "secret"); err != nil {
				errs <- fmt.Errorf("session %d: login: %w", i, err)
				return
			}
			body := bytes.Repeat([]byte(fmt.Sprintf("session %d\n", i)), 100+i)
			name := fmt.Sprintf("f%03d.txt", i)
			if err := c.Stor(name, bytes.NewReader(body)); err != nil {
				errs <- fmt.Errorf("session %d: STOR: %w", i, err)
				return
			}
			r, err := c.Retr(name)
			if err != nil {
				errs <- fmt.Errorf("session %d: RETR: %w", i, err)
				return
			}
			got, err := io.ReadAll(r)
			r.Close()
			if err != nil || !bytes.Equal(got, body) {
				errs <- fmt.Errorf("session %d: RETR returned %d bytes, want %d (%v)", i, len(got), len(body), err)
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i := range n {
		want := bytes.Repeat([]byte(fmt.Sprintf("session %d\n", i)), 100+i)
		if got, err := os.ReadFile(filepath.Join(home, fmt.Sprintf("f%03d.txt", i))); err != nil || !bytes.Equal(got, want) {
			t.Errorf("file of session %d: %d bytes, %v", i, len(got), err)
		}
	}
	afterG := hostileSettledGoroutines(baseG + 2)
	var afterFD int
	for range 100 {
		if afterFD = hostileFDs(t); afterFD <= baseFD+2 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%d sessions: goroutines %d -> %d, descriptors %d -> %d", n, baseG, afterG, baseFD, afterFD)
	if afterG > baseG+2 {
		t.Errorf("goroutine leak: %d before %d sessions, %d after", baseG, n, afterG)
	}
	if afterFD > baseFD+2 {
		t.Errorf("descriptor leak: %d before %d sessions, %d after", baseFD, n, afterFD)
	}
	if s := os.Getenv("S3FTP_SUMMARY"); s != "" {
		leaks := max(0, afterG-baseG-2) + max(0, afterFD-baseFD-2)
		status := "pass"
		if t.Failed() {
			status = "fail"
		}
		line := fmt.Sprintf("scenario=%s status=%s transfers=%d bytes_lost=0 leaks=%d\n", t.Name(), status, 2*n, leaks)
		if f, err := os.OpenFile(s, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			f.WriteString(line)
			f.Close()
		}
	}
}

// hostileList runs verb (LIST, NLST, MLSD) over a passive data connection and returns the listing.
func (c *rawClient) hostileList(verb string) string {
	c.t.Helper()
	d := dialData(c.t, c.epsv(), "")
	c.must(150, "%s", verb)
	data, err := io.ReadAll(d)
	d.Close()
	if err != nil {
		c.t.Fatalf("%s: read listing: %v", verb, err)
	}
	c.expect(226)
	return string(data)
}

// The health probe's reserved directory at the served root is invisible and unreachable for a user whose home is
// the whole root: no listing shows it (nor a symlink to it), and every command on it or inside it answers exactly
// as for a name that does not exist, directly or through a symlink; nothing inside it is read, changed or added.
func TestHostileReservedHealthDir(t *testing.T) {
	root := t.TempDir()
	if code, body := getHealth(t, HealthHandler(root, 10*time.Second), "GET"); code != 200 {
		t.Fatalf("health probe: %d %q", code, body)
	}
	reserved := filepath.Join(root, HealthDir)
	if err := os.WriteFile(filepath.Join(reserved, "probe-left"), []byte(hostileSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(HealthDir, filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "mine.txt"), []byte("alice"), 0o644); err != nil {
		t.Fatal(err)
	}
	snapshot := func() map[string]string {
		out := map[string]string{}
		ents, _ := os.ReadDir(reserved)
		for _, e := range ents {
			b, _ := os.ReadFile(filepath.Join(reserved, e.Name()))
			out[e.Name()] = string(b)
		}
		return out
	}
	before := snapshot()
	ts := startServer(t, nil, nil)
	ts.auth.homes["alice"] = root
	c := dialRaw(t, ts.addr)
	c.secure("alice", "secret")

	for _, verb := range []string{"LIST", "LIST -a", "NLST", "NLST -a", "MLSD", "LIST /", "MLSD /"} {
		l := c.hostileList(verb)
		if strings.Contains(l, HealthDir) || strings.Contains(l, "link") || !strings.Contains(l, "mine.txt") {
			t.Errorf("%s shows the reserved directory or a link to it, or misses mine.txt:\n%s", verb, l)
		}
	}
	c.must(257, "PWD") // waits for the last listing's transfer to end; STAT with a path does not
	if code, text := c.cmd("STAT /"); code != 213 || strings.Contains(text, HealthDir) {
		t.Errorf("STAT /: %d %q", code, text)
	}

	_, missing := c.cmd("CWD /no-such-dir")
	for _, p := range []string{HealthDir, "/" + HealthDir, "/" + HealthDir + "/", "link", "./" + HealthDir + "/../" + HealthDir} {
		if code, text := c.cmd("CWD %s", p); code != 550 || text != missing {
			t.Errorf("CWD %s: %d %q, want 550 %q (as for a missing directory)", p, code, text, missing)
		}
	}
	c.must(257, "PWD")
	for _, p := range []string{HealthDir + "/probe-left", "link/probe-left"} {
		if code, data := c.hostileRetr(p); code != 550 || len(data) != 0 {
			t.Errorf("RETR %s: %d %q, want 550 and no data", p, code, data)
		}
		for _, verb := range []string{"DELE", "SIZE", "MDTM", "MLST", "RNFR"} {
			if code, _ := c.cmd("%s %s", verb, p); code != 550 {
				t.Errorf("%s %s: %d, want 550", verb, p, code)
			}
		}
		if code := c.hostileStor(p); code != 550 {
			t.Errorf("STOR %s: %d, want 550", p, code)
		}
	}
	for _, p := range []string{HealthDir, HealthDir + "/new", "link/new"} {
		if code := c.hostileStor(p); code != 550 {
			t.Errorf("STOR %s: %d, want 550", p, code)
		}
		if code, _ := c.cmd("MKD %s", p); code != 550 {
			t.Errorf("MKD %s: %d, want 550", p, code)
		}
	}
	for _, p := range []string{HealthDir, "link/"} {
		if code, _ := c.cmd("RMD %s", p); code != 550 {
			t.Errorf("RMD %s: %d, want 550", p, code)
		}
	}
	c.must(350, "RNFR mine.txt")
	if code, _ := c.cmd("RNTO %s/stolen", HealthDir); code != 550 {
		t.Errorf("RNTO into the reserved directory: %d, want 550", code)
	}
	c.must(350, "RNFR mine.txt")
	if code, _ := c.cmd("RNTO %s", HealthDir); code != 550 {
		t.Errorf("RNTO onto the reserved name: %d, want 550", code)
	}
	c.must(200, "NOOP")

	if after := snapshot(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("the reserved directory changed: %v, was %v", after, before)
	}
	if fi, err := os.Stat(reserved); err != nil || !fi.IsDir() {
		t.Errorf("the reserved directory is gone: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "mine.txt")); err != nil {
		t.Errorf("mine.txt moved: %v", err)
	}
	if code, body := getHealth(t, HealthHandler(root, 10*time.Second), "GET"); code != 200 {
		t.Errorf("health probe after the session: %d %q", code, body)
	}
}
