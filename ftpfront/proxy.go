package ftpfront

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

// PROXY protocol (v1 text, v2 binary; haproxy's proxy-protocol.txt) on accepted connections.
//
// A connection from an address inside ProxyProtocol.From must open with a header; the header's source address
// is then the connection's client address everywhere (Admit, the PASV host map, the data connection peer
// check, logs, audit). A connection from anywhere else is taken as it is, and a header it sends is refused: its
// first read fails with ErrProxyUntrusted, which ends the connection. Parsing is github.com/pires/go-proxyproto;
// this file only decides whom to trust and carries the bytes that followed the header.

// DefaultProxyHeaderTimeout bounds the wait for a trusted balancer's PROXY header when
// ProxyProtocol.HeaderTimeout is zero.
const DefaultProxyHeaderTimeout = 5 * time.Second

// ErrProxyUntrusted is the read error of a connection from an address outside ProxyProtocol.From that opened
// with a PROXY header: only trusted balancers may claim another client's address.
var ErrProxyUntrusted = errors.New("PROXY header from an untrusted address")

// ErrProxyMissing is returned by ProxyProtocol.Accept when a trusted balancer's connection does not open with a
// valid PROXY header in time.
var ErrProxyMissing = errors.New("connection from a trusted proxy without a PROXY header")

// ProxyProtocol says which peers send PROXY protocol headers. The zero value is off: every peer is its own
// client and no header is looked for.
type ProxyProtocol struct {
	// From lists the balancers' networks. A connection from inside them must start with a v1 or v2 header.
	From []netip.Prefix
	// HeaderTimeout bounds the wait for the header (DefaultProxyHeaderTimeout when zero).
	HeaderTimeout time.Duration
}

// Enabled reports whether any peer is trusted to send headers.
func (p ProxyProtocol) Enabled() bool { return len(p.From) > 0 }

// Trusted reports whether a connection from ip must carry a header.
func (p ProxyProtocol) Trusted(ip netip.Addr) bool { return inPrefixes(ip, p.From) }

// Accept prepares the accepted connection c. It returns the connection to use from now on (it reads the bytes
// that followed the header), the client's address and whether it came from a header. For a trusted peer it
// reads the header, waiting at most HeaderTimeout; a missing or malformed header is an error wrapping
// ErrProxyMissing, and the caller closes c. A LOCAL header (the balancer's own health check) or an UNKNOWN one
// keeps the peer's address. For an untrusted peer (with the protocol enabled) the returned connection fails
// its first read with ErrProxyUntrusted if the peer sends a header. Accept blocks for trusted peers only.
func (p ProxyProtocol) Accept(c net.Conn) (conn net.Conn, client netip.Addr, proxied bool, err error) {
	peer := addrIP(c.RemoteAddr())
	if !p.Enabled() {
		return c, peer, false, nil
	}
	if !p.Trusted(peer) {
		return &sniffConn{Conn: c}, peer, false, nil
	}
	t := p.HeaderTimeout
	if t <= 0 {
		t = DefaultProxyHeaderTimeout
	}
	c.SetReadDeadline(time.Now().Add(t))
	br := bufio.NewReaderSize(c, 256)
	h, err := proxyproto.Read(br)
	c.SetReadDeadline(time.Time{})
	if err != nil {
		return nil, peer, false, fmt.Errorf("%w (from %s): %v", ErrProxyMissing, peer, err)
	}
	src, ok := headerSource(h)
	if !ok {
		return &proxiedConn{Conn: c, r: br, remote: c.RemoteAddr()}, peer, false, nil
	}
	return &proxiedConn{Conn: c, r: br, remote: net.TCPAddrFromAddrPort(src)}, src.Addr(), true, nil
}

// headerSource returns the client address a PROXY header carries, or false for LOCAL and UNKNOWN headers and
// non-TCP sources, whose connection keeps the peer's address.
func headerSource(h *proxyproto.Header) (netip.AddrPort, bool) {
	if h == nil || h.Command.IsLocal() || !h.TransportProtocol.IsStream() {
		return netip.AddrPort{}, false
	}
	ta, ok := h.SourceAddr.(*net.TCPAddr)
	if !ok {
		return netip.AddrPort{}, false
	}
	ap := ta.AddrPort()
	if !ap.Addr().IsValid() {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
}

// proxiedConn is a connection whose PROXY header was read: reads go through the reader that holds what
// followed the header, RemoteAddr is the header's source.
type proxiedConn struct {
	net.Conn
	r      *bufio.Reader
	remote net.Addr
}

func (c *proxiedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

func (c *proxiedConn) RemoteAddr() net.Addr { return c.remote }

// proxySignatures are the openings of a v1 ("PROXY ") and a v2 header.
var proxySignatures = [][]byte{[]byte("PROXY "), proxyproto.SIGV2}

// proxyVerdict classifies the first bytes b of a connection: a PROXY header (match), not one (neither), or too
// short to tell (more).
func proxyVerdict(b []byte) (match, more bool) {
	for _, sig := range proxySignatures {
		n := min(len(b), len(sig))
		if !bytes.Equal(b[:n], sig[:n]) {
			continue
		}
		if n == len(sig) {
			return true, false
		}
		more = true
	}
	return false, more
}

// sniffConn refuses a PROXY header from an untrusted peer. Until the first bytes show whether they open a
// header, reads collect them in head; then it fails with ErrProxyUntrusted, or hands head out before reading
// on. A peer that sends a prefix of a signature and waits only waits on its own read deadline.
type sniffConn struct {
	net.Conn
	head    []byte // collected bytes not yet returned
	decided bool
	err     error // ErrProxyUntrusted once seen
}

func (c *sniffConn) Read(b []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	for !c.decided {
		var buf [16]byte
		n, err := c.Conn.Read(buf[:])
		c.head = append(c.head, buf[:n]...)
		match, more := proxyVerdict(c.head)
		if match {
			c.err = ErrProxyUntrusted
			c.head = nil
			return 0, c.err
		}
		if !more {
			c.decided = true
			break
		}
		if err != nil {
			if len(c.head) == 0 {
				return 0, err
			}
			c.decided = true
		}
	}
	if len(c.head) > 0 {
		n := copy(b, c.head)
		c.head = c.head[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}
