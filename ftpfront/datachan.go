package ftpfront

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// dataOpener is an armed data connection: a passive listener (PASV/EPSV) or an active target (PORT/EPRT).
type dataOpener interface {
	// open returns the connected TCP data connection, waiting at most the accept timeout or until ctx ends.
	open(ctx context.Context) (net.Conn, error)
	// Close releases the listener and any connection not yet handed out. It is safe to call more than once.
	Close() error
}

var errNoDataConn = errors.New("data connection not established")

// passive listens for one data connection and accepts it only from the control connection's IP address or an
// allowed network. Connections from anywhere else are closed and logged, and the listener keeps waiting, so a
// port-stealing attacker cannot take the transfer and cannot stop the real client from connecting.
//
// The listener holds its port only while it waits: it is closed, and its slot in the per-address bound
// released, when the data connection is accepted, when the accept deadline passes with no connection (the
// transfer command then answers 425), or on Close, whichever comes first.
type passive struct {
	ln      *net.TCPListener
	timeout time.Duration
	conn    chan net.Conn // buffered(1): the accepted connection
	done    chan struct{} // closed when the accept loop ended
	once    sync.Once     // Close
	stop    sync.Once     // closeListener
	release func()        // returns the per-address slot; called once, by closeListener
	closed  atomic.Bool
}

var errTooManyPassive = errors.New("too many passive listeners for this client address")

func (s *session) listenPassive() (*passive, error) {
	release, ok := s.srv.passives.acquire(s.ip)
	if !ok {
		return nil, errTooManyPassive
	}
	local := addrIP(s.raw.LocalAddr())
	o := s.srv.opts
	var ln *net.TCPListener
	var err error
	if o.PassivePortMin == 0 {
		ln, err = net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(local, 0)))
	} else {
		n := o.PassivePortMax - o.PassivePortMin + 1
		start := rand.IntN(n)
		for i := 0; i < n; i++ {
			port := o.PassivePortMin + (start+i)%n
			ln, err = net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(local, uint16(port))))
			if err == nil {
				break
			}
		}
	}
	if err != nil {
		release()
		return nil, fmt.Errorf("no free passive port: %w", err)
	}
	p := &passive{ln: ln, timeout: o.DataAcceptTimeout, conn: make(chan net.Conn, 1), done: make(chan struct{}), release: release}
	ln.SetDeadline(time.Now().Add(o.DataAcceptTimeout))
	// A panic ends the loop like an accept error: done closes and the transfer answers 425.
	s.srv.panics.Go(s.log, "ftpfront: passive data accept", func() { p.acceptLoop(s.ip, o.PassiveAllowCIDR, o.dataProxy(), s.log) })
	return p, nil
}

func (p *passive) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// closeListener closes the listener, returning its port, and releases the per-address slot. Safe to call more
// than once and concurrently.
func (p *passive) closeListener() {
	p.stop.Do(func() {
		p.ln.Close()
		p.release()
	})
}

// acceptLoop accepts the data connection. It closes the listener and done when it ends: after a failed Accept
// (the deadline passed, or Close), open finds no connection; after a successful one, open finds it in conn first.
// With proxy enabled (Options.ProxyProtocolData) a connection from a trusted balancer is judged by its PROXY
// header's source address, read here (at most proxy's header timeout); one without a header is refused.
func (p *passive) acceptLoop(ctrl netip.Addr, allow []netip.Prefix, proxy ProxyProtocol, log *slog.Logger) {
	defer close(p.done)
	defer p.closeListener()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		peer := addrIP(c.RemoteAddr())
		pc, ip, _, err := proxy.Accept(c)
		if err != nil {
			log.Warn("passive data connection refused", "proxy", peer.String(), "err", err)
			c.Close()
			continue
		}
		if ip != ctrl && !inPrefixes(ip, allow) {
			log.Warn("passive data connection from foreign address refused", "from", ip.String(), "proxy", proxyAttr(ip, peer))
			c.Close()
			continue
		}
		c = pc
		p.conn <- c
		p.closeListener()
		if p.closed.Load() {
			p.drain() // Close ran while this connection was being accepted
		}
		return
	}
}

func inPrefixes(ip netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func (p *passive) open(ctx context.Context) (net.Conn, error) {
	p.ln.SetDeadline(time.Now().Add(p.timeout))
	select {
	case c := <-p.conn:
		return c, nil
	case <-p.done:
		select {
		case c := <-p.conn:
			return c, nil
		default:
			return nil, errNoDataConn
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (p *passive) Close() error {
	p.once.Do(func() {
		p.closed.Store(true)
		p.closeListener()
		p.drain()
	})
	return nil
}

// passiveLimit counts the passive listeners waiting per address key (addrKey: the IPv4 address or the IPv6 /64)
// and refuses more than max of them; max 0 refuses none. Safe for concurrent use.
type passiveLimit struct {
	max int

	mu sync.Mutex
	n  map[netip.Prefix]int // guarded by mu; keys with at least one listener
}

func newPassiveLimit(max int) *passiveLimit {
	return &passiveLimit{max: max, n: map[netip.Prefix]int{}}
}

// acquire takes a slot for ip. It returns the function that gives it back (idempotent) and true, or false when
// ip's key already holds max listeners.
func (l *passiveLimit) acquire(ip netip.Addr) (release func(), ok bool) {
	k := addrKey(ip)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.max > 0 && l.n[k] >= l.max {
		return nil, false
	}
	l.n[k]++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			if l.n[k]--; l.n[k] <= 0 {
				delete(l.n, k)
			}
		})
	}, true
}

// held returns the number of listeners ip's key holds.
func (l *passiveLimit) held(ip netip.Addr) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n[addrKey(ip)]
}

func (p *passive) drain() {
	select {
	case c := <-p.conn:
		c.Close()
	default:
	}
}

// active dials the client (PORT/EPRT) from the control connection's local address.
type active struct {
	target  netip.AddrPort
	local   netip.Addr
	timeout time.Duration
}

func (a *active) open(ctx context.Context) (net.Conn, error) {
	d := net.Dialer{Timeout: a.timeout, LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(a.local, 0))}
	return d.DialContext(ctx, "tcp", a.target.String())
}

func (a *active) Close() error { return nil }

// hostResolver chooses the address announced in PASV replies: the longest PassiveHostMap prefix containing the
// client's address, else PublicHost, else the control connection's local address. Host names are resolved to
// IPv4 per use, with a one-minute cache; a failed lookup falls back to the last good answer.
type hostResolver struct {
	public string
	maps   []HostMapping // longest prefix first
	log    *slog.Logger

	mu    sync.Mutex
	cache map[string]resolved
}

type resolved struct {
	ip  netip.Addr
	exp time.Time
}

const hostCacheTTL = time.Minute

func newHostResolver(public string, maps []HostMapping, log *slog.Logger) (*hostResolver, error) {
	h := &hostResolver{public: public, log: log, cache: map[string]resolved{}}
	h.maps = append(h.maps, maps...)
	sort.SliceStable(h.maps, func(i, j int) bool { return h.maps[i].Prefix.Bits() > h.maps[j].Prefix.Bits() })
	hosts := []string{public}
	for _, m := range maps {
		hosts = append(hosts, m.Host)
	}
	for _, host := range hosts {
		if host == "" {
			continue
		}
		if _, err := h.resolve(context.Background(), host); err != nil {
			log.Warn("passive host does not resolve yet", "host", host, "err", err)
		}
	}
	return h, nil
}

func (h *hostResolver) pasvIP(ctx context.Context, client, local netip.Addr) (netip.Addr, error) {
	for _, m := range h.maps {
		if m.Prefix.Contains(client) {
			return h.resolve(ctx, m.Host)
		}
	}
	if h.public != "" {
		return h.resolve(ctx, h.public)
	}
	return local, nil
}

func (h *hostResolver) resolve(ctx context.Context, host string) (netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip.Unmap(), nil
	}
	h.mu.Lock()
	c, ok := h.cache[host]
	h.mu.Unlock()
	if ok && time.Now().Before(c.exp) {
		return c.ip, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip4", host)
	if err != nil || len(ips) == 0 {
		if ok {
			h.log.Warn("passive host lookup failed, using last answer", "host", host, "err", err)
			return c.ip, nil
		}
		if err == nil {
			err = errors.New("no IPv4 address")
		}
		return netip.Addr{}, fmt.Errorf("resolve %s: %w", host, err)
	}
	ip := ips[0].Unmap()
	h.mu.Lock()
	h.cache[host] = resolved{ip: ip, exp: time.Now().Add(hostCacheTTL)}
	h.mu.Unlock()
	return ip, nil
}

// parsePORT parses the RFC 959 "h1,h2,h3,h4,p1,p2" argument.
func parsePORT(arg string) (netip.AddrPort, error) {
	parts := strings.Split(arg, ",")
	if len(parts) != 6 {
		return netip.AddrPort{}, errSyntax
	}
	var b [6]byte
	for i, p := range parts {
		v, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || v < 0 || v > 255 {
			return netip.AddrPort{}, errSyntax
		}
		b[i] = byte(v)
	}
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[:4])), uint16(b[4])<<8|uint16(b[5])), nil
}

// parseEPRT parses the RFC 2428 "|proto|addr|port|" argument (any delimiter character).
func parseEPRT(arg string) (netip.AddrPort, error) {
	if len(arg) < 7 {
		return netip.AddrPort{}, errSyntax
	}
	d := arg[:1]
	parts := strings.Split(arg, d)
	if len(parts) != 5 || parts[0] != "" || parts[4] != "" {
		return netip.AddrPort{}, errSyntax
	}
	ip, err := netip.ParseAddr(parts[2])
	if err != nil {
		return netip.AddrPort{}, errSyntax
	}
	if (parts[1] == "1") != ip.Is4() || (parts[1] != "1" && parts[1] != "2") {
		return netip.AddrPort{}, errSyntax
	}
	port, err := strconv.Atoi(parts[3])
	if err != nil || port < 1 || port > 65535 {
		return netip.AddrPort{}, errSyntax
	}
	return netip.AddrPortFrom(ip, uint16(port)), nil
}

// transfer is the one data transfer a session may run at a time.
type transfer struct {
	verb    string
	path    string
	started time.Time
	bytes   atomic.Int64
	aborted atomic.Bool
	cancel  context.CancelFunc
	done    chan struct{}

	mu   sync.Mutex
	conn net.Conn // the data connection once open; closed by abort
}

func (t *transfer) setConn(c net.Conn) {
	t.mu.Lock()
	t.conn = c
	t.mu.Unlock()
	if t.aborted.Load() {
		c.Close()
	}
}

func (t *transfer) abort() {
	t.aborted.Store(true)
	t.cancel()
	t.mu.Lock()
	if t.conn != nil {
		t.conn.Close()
	}
	t.mu.Unlock()
}

// startTransfer runs fn in the transfer goroutine with the armed data connection. fn sends the final reply
// (226, 426 or 451). When fn returns, the control read deadline is re-armed and waitTransfer returns.
func (s *session) startTransfer(verb, vpath string, fn func(ctx context.Context, t *transfer, d dataOpener)) {
	d := s.data
	s.data = nil
	ctx, cancel := context.WithCancel(s.ctx)
	t := &transfer{verb: verb, path: vpath, started: time.Now(), cancel: cancel, done: make(chan struct{})}
	s.mu.Lock()
	s.xfer = t
	s.mu.Unlock()
	go func() {
		defer func() {
			cancel()
			d.Close()
			s.mu.Lock()
			s.xfer = nil
			s.setReadDeadlineLocked()
			s.mu.Unlock()
			close(t.done)
		}()
		defer func() {
			if r := recover(); r != nil {
				s.srv.panics.Recovered(s.log, "ftpfront: transfer "+verb, r)
				t.abort() // closes the data connection fn did not get to close
				s.reply(451, "Internal error, transfer aborted")
			}
		}()
		fn(ctx, t, d)
	}()
}

// waitTransfer blocks until the running transfer, if any, has sent its final reply.
func (s *session) waitTransfer() {
	s.mu.Lock()
	t := s.xfer
	s.mu.Unlock()
	if t != nil {
		<-t.done
	}
}

// abortTransfer aborts the running transfer and waits for it; it reports whether there was one.
func (s *session) abortTransfer() bool {
	s.mu.Lock()
	t := s.xfer
	s.mu.Unlock()
	if t == nil {
		return false
	}
	t.abort()
	<-t.done
	return true
}

// openData sends the 150 preliminary reply, then connects the data channel and, under PROT P, runs the TLS
// handshake on it with the session's TLS configuration. On failure it runs cleanup (when not nil: removing a
// partial upload, the audit record) and only then replies 425 (or 426 when aborted), so a client that reads the
// failure reply never sees the transfer's leftovers.
func (s *session) openData(ctx context.Context, t *transfer, d dataOpener, what string, cleanup func()) (net.Conn, bool) {
	mode := "BINARY"
	if s.ascii {
		mode = "ASCII"
	}
	s.reply(150, fmt.Sprintf("Opening %s mode data connection for %s", mode, what))
	c, err := d.open(ctx)
	if err != nil {
		if cleanup != nil {
			cleanup()
		}
		if t.aborted.Load() {
			s.reply(426, "Connection closed; transfer aborted")
		} else {
			s.log.Warn("data connection failed", "err", err)
			s.reply(425, "Can't open data connection")
		}
		return nil, false
	}
	t.setConn(c)
	if !s.protP {
		return c, true
	}
	tc := tls.Server(&eofConn{Conn: c}, s.srv.tls)
	t.setConn(tc)
	tc.SetDeadline(time.Now().Add(s.srv.opts.DataTimeout))
	if err := tc.HandshakeContext(ctx); err != nil {
		tc.Close()
		if cleanup != nil {
			cleanup()
		}
		if t.aborted.Load() {
			s.reply(426, "Connection closed; transfer aborted")
		} else {
			s.log.Warn("data connection TLS handshake failed", "err", err)
			s.reply(425, "Can't open data connection: TLS handshake failed")
		}
		return nil, false
	}
	return tc, true
}

// copyData copies src to dst, refreshing conn's deadline before each step so that a peer stalled for
// DataTimeout ends the copy. It reports the read and the write error separately: the caller answers a data
// connection failure with 426 and a file failure with 451.
func copyData(dst io.Writer, src io.Reader, conn net.Conn, timeout time.Duration, t *transfer) (n int64, readErr, writeErr error) {
	buf := make([]byte, 256<<10)
	for {
		conn.SetDeadline(time.Now().Add(timeout))
		nr, er := src.Read(buf)
		if nr > 0 {
			conn.SetDeadline(time.Now().Add(timeout))
			nw, ew := dst.Write(buf[:nr])
			n += int64(nw)
			t.bytes.Add(int64(nw))
			if ew == nil && nw != nr {
				ew = io.ErrShortWrite
			}
			if ew != nil {
				return n, nil, ew
			}
		}
		if er == io.EOF {
			return n, nil, nil
		}
		if er != nil {
			return n, er, nil
		}
	}
}

// eofConn records whether the peer closed the TCP connection. Go's TLS reports a TCP close at a record boundary
// as a clean io.EOF, like a close_notify alert; for uploads the difference matters (a dropped connection is a
// truncated file), so the store path asks truncated after reading EOF.
type eofConn struct {
	net.Conn
	rawEOF atomic.Bool
}

func (c *eofConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err == io.EOF {
		c.rawEOF.Store(true)
	}
	return n, err
}

var errTruncated = errors.New("data connection closed without TLS close_notify: upload truncated")

// truncated reports whether a TLS data connection that returned io.EOF ended by a TCP close instead of a
// close_notify alert. It is false for plain connections, where the two cannot be told apart.
func truncated(conn net.Conn) bool {
	if tc, ok := conn.(*tls.Conn); ok {
		if ec, ok := tc.NetConn().(*eofConn); ok {
			return ec.rawEOF.Load()
		}
	}
	return false
}
