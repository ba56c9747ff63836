package ftpfront

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/afero"
)

// freePortRange returns the first port of n consecutive ports on 127.0.0.1 that are free now.
func freePortRange(t *testing.T, n int) int {
	t.Helper()
	for base := 41000; base+n < 60000; base += n + 17 {
		var lns []net.Listener
		for p := base; p < base+n; p++ {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				break
			}
			lns = append(lns, ln)
		}
		for _, ln := range lns {
			ln.Close()
		}
		if len(lns) == n {
			return base
		}
	}
	t.Fatalf("no %d consecutive free ports", n)
	return 0
}

// pasvPort sends PASV and returns the announced port, or the reply's code and text when it is not 227.
func (c *rawClient) pasvPort() (port, code int, text string) {
	c.t.Helper()
	code, text = c.cmd("PASV")
	if code != 227 {
		return 0, code, text
	}
	i, j := strings.Index(text, "("), strings.Index(text, ")")
	f := strings.Split(text[i+1:j], ",")
	if len(f) != 6 {
		c.t.Fatalf("bad PASV reply %q", text)
	}
	hi, _ := strconv.Atoi(f[4])
	lo, _ := strconv.Atoi(f[5])
	return hi<<8 | lo, code, text
}

// dialRawFrom is dialRaw from the local address from (another loopback address is another client address).
func dialRawFrom(t *testing.T, addr, from string) *rawClient {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(60 * time.Second))
	rc := &rawClient{t: t, conn: c, r: bufio.NewReader(c)}
	rc.expect(220)
	return rc
}

// listOver runs LIST over the passive data connection at port and returns the listing.
func (c *rawClient) listOver(port int) string {
	c.t.Helper()
	d := dialData(c.t, fmt.Sprintf("127.0.0.1:%d", port), "")
	c.must(150, "LIST")
	data, err := io.ReadAll(d)
	d.Close()
	if err != nil {
		c.t.Fatalf("LIST: %v", err)
	}
	c.expect(226)
	return string(data)
}

// The scenario: five sessions each send PASV and nothing else, holding the whole five-port range (a sixth
// session's PASV gets 425). At the accept timeout (3 s) every listener is closed and its port returned: 5 s later
// a new PASV succeeds and its transfer works, and an idle session's transfer command answers 425.
func TestPassiveIdleListenersReturnPortsAtTimeout(t *testing.T) {
	base := freePortRange(t, 5)
	mem := afero.NewMemMapFs()
	writeFile(t, mem, "/f", []byte("x"))
	ts := startServer(t, memFs(mem), func(o *Options, _ *Deps) {
		o.PassivePortMin, o.PassivePortMax = base, base+4
		o.DataAcceptTimeout = 3 * time.Second
	})
	var idle []*rawClient
	for i := range 5 {
		c := dialRaw(t, ts.addr)
		c.secure("alice", "secret")
		if port, code, text := c.pasvPort(); code != 227 || port < base || port > base+4 {
			t.Fatalf("session %d: PASV %d %q (port %d), want 227 within %d-%d", i, code, text, port, base, base+4)
		}
		idle = append(idle, c)
	}
	late := dialRaw(t, ts.addr)
	late.secure("alice", "secret")
	if _, code, text := late.pasvPort(); code != 425 {
		t.Fatalf("PASV with the range held by five idle sessions: %d %q, want 425", code, text)
	}
	if n := ts.srv.passives.held(mustAddr("127.0.0.1")); n != 5 {
		t.Fatalf("%d passive listeners held, want 5", n)
	}
	time.Sleep(5 * time.Second)
	if n := ts.srv.passives.held(mustAddr("127.0.0.1")); n != 0 {
		t.Fatalf("%d passive listeners held after the accept timeout, want 0", n)
	}
	for p := base; p <= base+4; p++ { // every port of the range is free again
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Fatalf("port %d still bound after the accept timeout: %v", p, err)
		}
		ln.Close()
	}
	port, code, text := late.pasvPort()
	if code != 227 {
		t.Fatalf("PASV 5 s later: %d %q, want 227", code, text)
	}
	if l := late.listOver(port); !strings.Contains(l, " f") {
		t.Fatalf("LIST over the new passive connection: %q", l)
	}
	idle[0].must(150, "RETR f")
	idle[0].expect(425)
	idle[0].must(200, "NOOP")
}

// A session holds one passive listener at a time: with a one-port range, PASV and EPSV again in the same session
// succeed (the previous listener was closed and its port freed), while another session's PASV gets 425 as long
// as the first session holds the port, and 227 once it has ended.
func TestPassiveSecondPASVFreesTheFirst(t *testing.T) {
	port := freePortRange(t, 1)
	ts := startServer(t, memFs(afero.NewMemMapFs()), func(o *Options, _ *Deps) {
		o.PassivePortMin, o.PassivePortMax = port, port
	})
	a := dialRaw(t, ts.addr)
	a.secure("alice", "secret")
	b := dialRaw(t, ts.addr)
	b.secure("alice", "secret")
	for i := range 3 {
		if got, code, text := a.pasvPort(); code != 227 || got != port {
			t.Fatalf("PASV #%d in one session: %d %q (port %d), want 227 on %d", i+1, code, text, got, port)
		}
		if n := ts.srv.passives.held(mustAddr("127.0.0.1")); n != 1 {
			t.Fatalf("after PASV #%d: %d listeners held, want 1", i+1, n)
		}
		if _, code, _ := b.pasvPort(); code != 425 {
			t.Fatalf("another session's PASV while the port is held: %d, want 425", code)
		}
	}
	if text := a.must(229, "EPSV"); !strings.Contains(text, fmt.Sprintf("(|||%d|)", port)) {
		t.Fatalf("EPSV after PASV: %q, want port %d", text, port)
	}
	if l := a.listOver(port); l != "" {
		t.Fatalf("LIST of the empty root: %q", l)
	}
	// The transfer closed the listener: the other session can take the port.
	if got, code, text := b.pasvPort(); code != 227 || got != port {
		t.Fatalf("PASV after the first session's transfer: %d %q, want 227", code, text)
	}
	b.must(221, "QUIT")
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, code, _ := a.pasvPort(); code == 227 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the port was not freed when the session holding it ended")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// MaxPassivePerIP bounds the listeners one client address holds: the third session from 127.0.0.1 gets 425 while
// two wait, a session from another address (127.0.0.2) is not affected, and a listener that got its data
// connection frees its slot.
func TestPassivePerAddressBound(t *testing.T) {
	mem := afero.NewMemMapFs()
	ts := startServer(t, memFs(mem), func(o *Options, _ *Deps) { o.MaxPassivePerIP = 2 })
	var cs []*rawClient
	for range 3 {
		c := dialRaw(t, ts.addr)
		c.secure("alice", "secret")
		cs = append(cs, c)
	}
	port0, code, _ := cs[0].pasvPort()
	if code != 227 {
		t.Fatalf("first PASV: %d", code)
	}
	if _, code, _ := cs[1].pasvPort(); code != 227 {
		t.Fatalf("second PASV: %d", code)
	}
	if _, code, text := cs[2].pasvPort(); code != 425 || !strings.Contains(text, "Too many passive") {
		t.Fatalf("third PASV from the same address: %d %q, want 425 Too many passive", code, text)
	}
	if code, text := cs[2].cmd("EPSV"); code != 425 {
		t.Fatalf("EPSV from the same address: %d %q, want 425", code, text)
	}
	other := dialRawFrom(t, ts.addr, "127.0.0.2")
	other.secure("alice", "secret")
	if _, code, text := other.pasvPort(); code != 227 {
		t.Fatalf("PASV from another address: %d %q, want 227", code, text)
	}
	cs[0].listOver(port0)
	if port, code, text := cs[2].pasvPort(); code != 227 {
		t.Fatalf("PASV after a listener got its connection: %d %q, want 227", code, text)
	} else {
		cs[2].listOver(port)
	}
	if n := ts.srv.passives.held(mustAddr("127.0.0.1")); n != 1 {
		t.Fatalf("%d listeners held for 127.0.0.1, want 1 (the second session's)", n)
	}
}

// passiveLimit counts per address key: an IPv6 /64 shares one bound, and release is idempotent.
func TestPassiveLimitKeys(t *testing.T) {
	l := newPassiveLimit(2)
	r1, ok1 := l.acquire(mustAddr("2001:db8::1"))
	_, ok2 := l.acquire(mustAddr("2001:db8::2"))
	_, ok3 := l.acquire(mustAddr("2001:db8::3"))
	_, ok4 := l.acquire(mustAddr("2001:db8:0:1::1"))
	if !ok1 || !ok2 || ok3 || !ok4 {
		t.Fatalf("acquire = %v %v %v %v, want true true false true", ok1, ok2, ok3, ok4)
	}
	r1()
	r1()
	if n := l.held(mustAddr("2001:db8::9")); n != 1 {
		t.Fatalf("held after a double release = %d, want 1", n)
	}
	if _, ok := newPassiveLimit(0).acquire(mustAddr("192.0.2.1")); !ok {
		t.Fatal("max 0 refused a listener")
	}
}
