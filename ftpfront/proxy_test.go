package ftpfront

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/spf13/afero"

	"github.com/s3ftp/s3ftp/internal/logbuf"
)

// proxyV1 writes a v1 header by hand: "PROXY TCP4|TCP6 src dst sport dport\r\n".
func proxyV1(src, dst netip.AddrPort) []byte {
	fam := "TCP4"
	if src.Addr().Is6() {
		fam = "TCP6"
	}
	return fmt.Appendf(nil, "PROXY %s %s %s %d %d\r\n", fam, src.Addr(), dst.Addr(), src.Port(), dst.Port())
}

// proxyV2 writes a v2 PROXY (command 0x21) TCP header by hand: signature, version/command, family, length,
// addresses, ports.
func proxyV2(src, dst netip.AddrPort) []byte {
	b := []byte("\r\n\r\n\x00\r\nQUIT\n")
	b = append(b, 0x21)
	var addrs []byte
	if src.Addr().Is4() {
		b = append(b, 0x11)
		s, d := src.Addr().As4(), dst.Addr().As4()
		addrs = append(append(addrs, s[:]...), d[:]...)
	} else {
		b = append(b, 0x21)
		s, d := src.Addr().As16(), dst.Addr().As16()
		addrs = append(append(addrs, s[:]...), d[:]...)
	}
	addrs = binary.BigEndian.AppendUint16(addrs, src.Port())
	addrs = binary.BigEndian.AppendUint16(addrs, dst.Port())
	b = binary.BigEndian.AppendUint16(b, uint16(len(addrs)))
	return append(b, addrs...)
}

// proxyV2Local is a v2 LOCAL header (a balancer's own health check), no addresses.
func proxyV2Local() []byte {
	return append([]byte("\r\n\r\n\x00\r\nQUIT\n"), 0x20, 0x00, 0, 0)
}

// dialProxied connects from 127.0.0.1, writes header and returns the client once the 220 greeting arrived.
func dialProxied(t *testing.T, addr string, header []byte) *rawClient {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write(header); err != nil {
		t.Fatal(err)
	}
	rc := &rawClient{t: t, conn: c, r: bufio.NewReader(c)}
	rc.expect(220)
	return rc
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// startProxyServer runs a server trusting from for PROXY headers, with its log in a buffer.
func startProxyServer(t *testing.T, from string, edit func(*Options, *Deps)) (*testServer, *logbuf.Buffer) {
	t.Helper()
	log, logs := logbuf.New(&slog.HandlerOptions{Level: slog.LevelDebug})
	ts := startServer(t, memFs(afero.NewMemMapFs()), func(o *Options, d *Deps) {
		o.ProxyProtocolFrom = []netip.Prefix{netip.MustParsePrefix(from)}
		o.ProxyHeaderTimeout = 500 * time.Millisecond
		d.Log = log
		if edit != nil {
			edit(o, d)
		}
	})
	return ts, logs
}

// waitLog waits until a log line contains every one of parts, and returns it.
func waitLog(t *testing.T, logs *logbuf.Buffer, parts ...string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, l := range logs.Lines() {
			ok := true
			for _, p := range parts {
				ok = ok && strings.Contains(l, p)
			}
			if ok {
				return l
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %q in:\n%s", parts, logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// connectIPs returns the IP of every connect audit event, in order.
func connectIPs(ts *testServer) []string {
	var out []string
	for _, e := range ts.audit.find("connect", "") {
		out = append(out, e.IP)
	}
	return out
}

// waitClosed reads from c until it ends and fails if it answers anything or stays open past 5s.
func waitClosed(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if isTimeout(err) {
		t.Fatalf("connection still open, got %q", b)
	}
	if len(b) > 0 {
		t.Fatalf("closed connection answered %q", b)
	}
}

// A trusted balancer's v1 or v2 header (IPv4 or IPv6 source) makes its source the client everywhere: the STAT
// reply, the audit log and the session's log lines, which also name the balancer.
func TestProxyHeaderGivesClientAddress(t *testing.T) {
	for _, tc := range []struct {
		name, client string
		header       func(src, dst netip.AddrPort) []byte
	}{
		{"v1 IPv4", "203.0.113.7:40001", proxyV1},
		{"v1 IPv6", "[2001:db8::5]:40002", proxyV1},
		{"v2 IPv4", "198.51.100.23:40003", proxyV2},
		{"v2 IPv6", "[2001:db8:1::9]:40004", proxyV2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts, logs := startProxyServer(t, "127.0.0.1/32", nil)
			src := ap(tc.client)
			dst := ap("192.0.2.1:21")
			if src.Addr().Is6() {
				dst = ap("[2001:db8::1]:21")
			}
			c := dialProxied(t, ts.addr, tc.header(src, dst))
			c.secure("alice", "secret")
			if text := c.must(211, "STAT"); !strings.Contains(text, "Connected from "+src.Addr().String()) {
				t.Fatalf("STAT = %q, want the header's source %s", text, src.Addr())
			}
			c.must(221, "QUIT")
			waitLog(t, logs, "msg=disconnect", "ip="+src.Addr().String(), "proxy=127.0.0.1")
			if ips := connectIPs(ts); len(ips) != 1 || ips[0] != src.Addr().String() {
				t.Fatalf("audit connect IPs = %v, want [%s]", ips, src.Addr())
			}
			for _, e := range ts.audit.find("login_ok", "") {
				if e.IP != src.Addr().String() {
					t.Fatalf("login_ok audited from %s", e.IP)
				}
			}
		})
	}
}

// On the implicit FTPS listener the header comes before the TLS ClientHello; the bytes read with the header
// reach the TLS handshake.
func TestProxyHeaderImplicitTLS(t *testing.T) {
	ts, _ := startProxyServer(t, "127.0.0.1/32", func(o *Options, _ *Deps) { o.ImplicitListen = "127.0.0.1:0" })
	c, err := net.DialTimeout("tcp", ts.srv.ImplicitAddr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	// Header and ClientHello in one write, as a balancer that forwards eagerly may send them.
	bw := bufio.NewWriter(c)
	bw.Write(proxyV2(ap("203.0.113.50:5000"), ap("192.0.2.1:990")))
	tc := tlsClientConn(&preWriteConn{Conn: c, w: bw})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	rc := &rawClient{t: t, conn: tc, r: bufio.NewReader(tc)}
	rc.expect(220)
	rc.must(331, "USER alice")
	rc.must(230, "PASS secret")
	rc.must(221, "QUIT")
	if ips := connectIPs(ts); len(ips) != 1 || ips[0] != "203.0.113.50" {
		t.Fatalf("audit connect IPs = %v", ips)
	}
}

// preWriteConn sends w's buffered bytes together with the first write.
type preWriteConn struct {
	net.Conn
	w *bufio.Writer
}

func (c *preWriteConn) Write(b []byte) (int, error) {
	if c.w != nil {
		c.w.Write(b)
		err := c.w.Flush()
		c.w = nil
		return len(b), err
	}
	return c.Conn.Write(b)
}

// A header from an address outside ProxyProtocolFrom closes the connection with one log line, on the explicit
// and the implicit listener, for v1 and v2; a client from there without a header is served as itself.
func TestProxyHeaderFromUntrustedClosed(t *testing.T) {
	ts, logs := startProxyServer(t, "127.0.0.2/32", func(o *Options, _ *Deps) { o.ImplicitListen = "127.0.0.1:0" })
	for name, h := range map[string][]byte{
		"v1": proxyV1(ap("203.0.113.9:1"), ap("192.0.2.1:21")),
		"v2": proxyV2(ap("203.0.113.9:1"), ap("192.0.2.1:21")),
	} {
		t.Run("explicit "+name, func(t *testing.T) {
			c := dialRaw(t, ts.addr)
			if _, err := c.conn.Write(h); err != nil {
				t.Fatal(err)
			}
			waitClosed(t, c.conn)
		})
		t.Run("implicit "+name, func(t *testing.T) {
			c, err := net.DialTimeout("tcp", ts.srv.ImplicitAddr().String(), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write(h); err != nil {
				t.Fatal(err)
			}
			waitClosed(t, c)
		})
	}
	if n := len(logs.Matching("PROXY header from an untrusted address")); n != 4 {
		t.Fatalf("%d untrusted-header log lines, want 4:\n%s", n, logs.String())
	}
	if len(ts.audit.find("login_ok", "")) != 0 {
		t.Fatal("a login happened")
	}
	for _, ip := range connectIPs(ts) {
		if ip != "127.0.0.1" {
			t.Fatalf("connect audited from %s: a forged header was believed", ip)
		}
	}
	c := dialRaw(t, ts.addr)
	c.secure("alice", "secret")
	if text := c.must(211, "STAT"); !strings.Contains(text, "Connected from 127.0.0.1") {
		t.Fatalf("STAT = %q", text)
	}
}

// A trusted balancer's connection without a header is closed without a greeting and logged once, whether it
// sends nothing (closed at the header timeout) or an FTP command.
func TestProxyTrustedWithoutHeaderRefused(t *testing.T) {
	ts, logs := startProxyServer(t, "127.0.0.1/32", nil)
	for name, first := range map[string]string{"silent": "", "command": "USER alice\r\n"} {
		t.Run(name, func(t *testing.T) {
			c, err := net.DialTimeout("tcp", ts.addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if first != "" {
				c.Write([]byte(first))
			}
			waitClosed(t, c)
		})
	}
	// A truncated v2 header is not a header either.
	c, err := net.DialTimeout("tcp", ts.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.Write(proxyV2(ap("203.0.113.9:1"), ap("192.0.2.1:21"))[:20])
	waitClosed(t, c)
	c.Close()
	if n := len(logs.Matching("without a PROXY header")); n != 3 {
		t.Fatalf("%d refusal log lines, want 3:\n%s", n, logs.String())
	}
	if ips := connectIPs(ts); len(ips) != 0 {
		t.Fatalf("sessions started for %v", ips)
	}
	// A LOCAL header (the balancer's health check) keeps the balancer's own address.
	rc := dialProxied(t, ts.addr, proxyV2Local())
	rc.must(221, "QUIT")
	if ips := connectIPs(ts); len(ips) != 1 || ips[0] != "127.0.0.1" {
		t.Fatalf("LOCAL header audited as %v", ips)
	}
}

// Bans and per-address limits apply to the header's address: one client guessing passwords behind the balancer
// is banned, another client of the same balancer still logs in, and the balancer itself is never banned.
func TestProxyBanOneClientNotAnother(t *testing.T) {
	hash, err := HashPassword("right")
	if err != nil {
		t.Fatal(err)
	}
	db, err := NewUserDB(t.TempDir(), []UserConfig{{Name: "carol", Password: hash, Home: "/"}})
	if err != nil {
		t.Fatal(err)
	}
	acc := NewAccess(db, AccessConfig{FailDelay: time.Millisecond, BanAfter: 2, BanWindow: time.Minute, BanFor: time.Minute, MaxConnsPerIP: 1}, testLogger(t))
	ts, _ := startProxyServer(t, "127.0.0.1/32", func(o *Options, d *Deps) {
		d.Auth, d.Admit = acc, acc
		o.MaxLoginAttempts = 5
	})
	dst := ap("192.0.2.1:21")
	mallory, bob := ap("198.51.100.66:4000"), ap("198.51.100.77:4000")

	m := dialProxied(t, ts.addr, proxyV1(mallory, dst))
	m.must(234, "AUTH TLS")
	tlsUpgrade(t, m)
	for i := 0; i < 2; i++ {
		m.must(331, "USER carol")
		m.must(530, "PASS guess")
	}
	if !acc.Banned(mallory.Addr()) {
		t.Fatal("mallory not banned")
	}
	if acc.Banned(mustAddr("127.0.0.1")) || acc.Banned(bob.Addr()) {
		t.Fatal("the balancer or bob is banned")
	}

	// Bob logs in through the same balancer while mallory's session still holds mallory's one slot.
	b := dialProxied(t, ts.addr, proxyV2(bob, dst))
	b.must(234, "AUTH TLS")
	tlsUpgrade(t, b)
	b.must(331, "USER carol")
	b.must(230, "PASS right")

	// Mallory's next connection is refused (banned), and so is bob's second one (one connection per address).
	for _, src := range []netip.AddrPort{mallory, bob} {
		c, err := net.DialTimeout("tcp", ts.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write(proxyV2(src, dst))
		line, _ := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if !strings.HasPrefix(line, "421 ") {
			t.Fatalf("connection of %s got %q, want 421", src.Addr(), line)
		}
	}
	b.must(221, "QUIT")
	for _, e := range ts.audit.find("login_failed", "") {
		if e.IP != mallory.Addr().String() {
			t.Fatalf("login_failed audited from %s", e.IP)
		}
	}
}

// The PASV host map and the passive bound use the header's address.
func TestProxyPassiveHostMapUsesClient(t *testing.T) {
	ts, _ := startProxyServer(t, "127.0.0.1/32", func(o *Options, _ *Deps) {
		o.PassiveHostMap = []HostMapping{{Prefix: netip.MustParsePrefix("198.51.100.0/24"), Host: "10.9.9.9"}}
		o.MaxPassivePerIP = 1
	})
	dst := ap("192.0.2.1:21")
	in := dialProxied(t, ts.addr, proxyV1(ap("198.51.100.5:1"), dst))
	in.secure("alice", "secret")
	if text := in.must(227, "PASV"); !strings.Contains(text, "(10,9,9,9,") {
		t.Fatalf("mapped client got %q", text)
	}
	out := dialProxied(t, ts.addr, proxyV1(ap("203.0.113.5:1"), dst))
	out.secure("alice", "secret")
	if text := out.must(227, "PASV"); !strings.Contains(text, "(127,0,0,1,") {
		t.Fatalf("unmapped client got %q", text)
	}
	// 198.51.100.5 holds its one passive listener; another session of it is refused one, 203.0.113.5 is not
	// counted against it.
	in2 := dialProxied(t, ts.addr, proxyV2(ap("198.51.100.5:2"), dst))
	in2.secure("alice", "secret")
	in2.must(425, "PASV")
}

// With ProxyProtocolData, a data connection through the balancer is accepted only with a header whose source
// is the control connection's client; one claiming another client or carrying no header is refused and logged,
// and the real client's connection still gets the listing.
func TestProxyDataConnectionPeerCheck(t *testing.T) {
	ts, logs := startProxyServer(t, "127.0.0.1/32", func(o *Options, d *Deps) {
		o.ProxyProtocolData = true
		fsys := afero.NewMemMapFs()
		writeFile(t, fsys, "/hello.txt", []byte("hi"))
		d.Fs = memFs(fsys)
	})
	dst := ap("192.0.2.1:21")
	client := ap("198.51.100.9:3000")
	c := dialProxied(t, ts.addr, proxyV2(client, dst))
	c.secure("alice", "secret")
	addr := c.epsv()

	// Another client of the balancer, then the balancer without a header.
	thief, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	thief.Write(proxyV2(ap("198.51.100.10:3000"), ap("192.0.2.1:40000")))
	waitClosed(t, thief)
	waitLog(t, logs, "foreign address refused", "from=198.51.100.10", "proxy=127.0.0.1")
	bare, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	waitClosed(t, bare)
	waitLog(t, logs, "passive data connection refused", "without a PROXY header")

	d, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	d.SetDeadline(time.Now().Add(30 * time.Second))
	d.Write(proxyV1(netip.AddrPortFrom(client.Addr(), 3001), ap("192.0.2.1:40000")))
	c.send("NLST")
	c.expect(150)
	tc := tlsClientConn(d)
	got, err := io.ReadAll(tc)
	if err != nil {
		t.Fatal(err)
	}
	c.expect(226)
	if !strings.Contains(string(got), "hello.txt") {
		t.Fatalf("NLST = %q", got)
	}
}

// Without ProxyProtocolData the passive listeners take connections as they come: a header there is not
// looked for, so a balancer forwarding the passive range must not send one.
func TestProxyDataOffByDefault(t *testing.T) {
	o := DefaultOptions()
	o.ProxyProtocolData = true
	if err := o.Validate(); err == nil {
		t.Fatal("ProxyProtocolData without ProxyProtocolFrom validated")
	}
	o.ProxyProtocolFrom = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	if o.ProxyProtocolData = false; o.dataProxy().Enabled() {
		t.Fatal("data proxy enabled without ProxyProtocolData")
	}
}

// chunkConn hands out data in the given chunk sizes, then io.EOF.
type chunkConn struct {
	net.Conn
	data   []byte
	chunks []int
}

func (c *chunkConn) Read(b []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := len(c.data)
	if len(c.chunks) > 0 {
		n = max(1, min(n, c.chunks[0]))
		c.chunks = c.chunks[1:]
	}
	n = copy(b, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

func (c *chunkConn) RemoteAddr() net.Addr            { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9} }
func (c *chunkConn) SetReadDeadline(time.Time) error { return nil }

// sniffAll reads everything through a sniffConn.
func sniffAll(data []byte, chunks []int) ([]byte, error) {
	return io.ReadAll(&sniffConn{Conn: &chunkConn{data: data, chunks: chunks}})
}

// An untrusted peer's bytes pass unchanged unless they open with a PROXY signature, however they are split.
func TestSniffConn(t *testing.T) {
	for _, tc := range []struct {
		in     string
		chunks []int
		proxy  bool
	}{
		{"USER alice\r\n", nil, false},
		{"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", []int{1, 1, 1, 1, 1, 1}, true},
		{"PROX", nil, false},           // a signature prefix, then EOF: handed out as it is
		{"PROXYY", []int{3, 3}, false}, // diverges at the sixth byte
		{"\r\n\r\nUSER a\r\n", []int{2, 2, 2}, false},
		{string(proxyV2(ap("1.2.3.4:1"), ap("5.6.7.8:2"))), []int{5, 7, 100}, true},
		{"", nil, false},
	} {
		got, err := sniffAll([]byte(tc.in), tc.chunks)
		if tc.proxy {
			if !errors.Is(err, ErrProxyUntrusted) {
				t.Errorf("%q: err %v, want ErrProxyUntrusted", tc.in, err)
			}
			continue
		}
		if err != nil || string(got) != tc.in {
			t.Errorf("%q split %v: got %q, %v", tc.in, tc.chunks, got, err)
		}
	}
}

// The sniffer refuses exactly the streams that open with a signature and returns every other stream
// unchanged, for any split of the bytes.
func FuzzSniffConn(f *testing.F) {
	f.Add([]byte("USER a\r\n"), []byte{1, 2})
	f.Add([]byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), []byte{3})
	f.Add(proxyV2(ap("1.2.3.4:1"), ap("5.6.7.8:2")), []byte{1, 1, 1, 1, 9})
	f.Fuzz(func(t *testing.T, data, split []byte) {
		chunks := make([]int, len(split))
		for i, s := range split {
			chunks[i] = int(s%32) + 1
		}
		got, err := sniffAll(data, chunks)
		opens := bytes.HasPrefix(data, []byte("PROXY ")) || bytes.HasPrefix(data, []byte("\r\n\r\n\x00\r\nQUIT\n"))
		if opens {
			if !errors.Is(err, ErrProxyUntrusted) {
				t.Fatalf("%q: err %v, want ErrProxyUntrusted", data, err)
			}
			return
		}
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%q: got %q, %v", data, got, err)
		}
	})
}

// Accept from a trusted peer either fails or yields a valid client address, and what it reads afterwards is a
// suffix of the input (the bytes after the header), never bytes of the header itself.
func FuzzProxyAccept(f *testing.F) {
	f.Add(append(proxyV1(ap("203.0.113.1:1"), ap("192.0.2.1:21")), "USER a\r\n"...))
	f.Add(append(proxyV2(ap("[2001:db8::1]:1"), ap("[2001:db8::2]:21")), 0x16, 3, 1))
	f.Add(proxyV2Local())
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add([]byte("PROXY TCP4 1.2.3.4\r\n"))
	p := ProxyProtocol{From: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, HeaderTimeout: time.Second}
	f.Fuzz(func(t *testing.T, data []byte) {
		conn, client, proxied, err := p.Accept(&chunkConn{data: data})
		if err != nil {
			if !errors.Is(err, ErrProxyMissing) {
				t.Fatalf("error %v does not wrap ErrProxyMissing", err)
			}
			return
		}
		if !client.IsValid() || (!proxied && client != mustAddr("127.0.0.1")) {
			t.Fatalf("client %v proxied %v", client, proxied)
		}
		if proxied && addrIP(conn.RemoteAddr()) != client {
			t.Fatalf("RemoteAddr %v, client %v", conn.RemoteAddr(), client)
		}
		rest, _ := io.ReadAll(conn)
		if !bytes.HasSuffix(data, rest) || len(rest) >= len(data) {
			t.Fatalf("read %q after the header of %q", rest, data)
		}
	})
}
