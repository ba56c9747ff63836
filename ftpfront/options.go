package ftpfront

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Options configure a Server. They are plain values: the CLI maps flags onto them and Validate checks them.
type Options struct {
	// Listen is the address of the explicit-FTPS (AUTH TLS) listener, e.g. "127.0.0.1:2121". Port 0 picks a
	// free port; Server.Addrs reports it.
	Listen string
	// ImplicitListen, when set, is the address of a listener that starts TLS immediately (implicit FTPS).
	ImplicitListen string
	// AllowPlain lets clients log in and transfer data without TLS. Off by default: USER before AUTH TLS gets
	// 530 and a transfer without PROT P gets 521.
	AllowPlain bool
	// AllowActive enables PORT and EPRT. Active data connections are only ever opened to the control
	// connection's IP address, on a port >= 1024 (no FTP bounce).
	AllowActive bool

	// TLSCert and TLSKey are PEM files. TLSSelfSigned generates an in-memory ECDSA certificate instead.
	TLSCert, TLSKey string
	TLSSelfSigned   bool
	// TLSLegacyCiphers widens TLS 1.2 to Go's default cipher suites (CBC with SHA-1 and SHA-256 included) for
	// old clients. Off, TLS 1.2 offers only ECDHE suites with AEAD (forward secrecy, no CBC); TLS 1.3's own
	// suites are always AEAD.
	TLSLegacyCiphers bool

	// PublicHost is the address (IPv4 literal or host name) announced in PASV replies when no PassiveHostMap
	// entry matches. Empty means the control connection's local address.
	PublicHost string
	// PassiveHostMap maps client networks to the PASV address announced to them; the longest matching prefix
	// wins.
	PassiveHostMap []HostMapping
	// PassivePortMin and PassivePortMax bound the passive listener ports; both 0 means any free port.
	PassivePortMin, PassivePortMax int
	// PassiveAllowCIDR lists networks (load balancers, NAT gateways) whose data connections are accepted in
	// addition to the control connection's own IP address.
	PassiveAllowCIDR []netip.Prefix

	// ProxyProtocolFrom lists the load balancers' networks that send a PROXY protocol header (v1 or v2) on the
	// control listeners (explicit and implicit FTPS). A control connection from inside them must open with a
	// header, whose source address is then the client's address for Admit (bans, per-address limits, reserved
	// slots), the PASV host map, the passive bound, the data connection peer check, logs and audit; one without a
	// header is closed and logged. A header from any other address closes that connection. Empty: off.
	ProxyProtocolFrom []netip.Prefix
	// ProxyProtocolData expects the header on passive data connections from ProxyProtocolFrom too (the
	// balancer forwards the passive port range with send-proxy): such a connection is accepted only when its
	// header's source is the control connection's client (or inside PassiveAllowCIDR). Needs ProxyProtocolFrom.
	ProxyProtocolData bool
	// ProxyHeaderTimeout bounds the wait for a trusted balancer's header (DefaultProxyHeaderTimeout when zero).
	ProxyHeaderTimeout time.Duration

	// MaxPassivePerIP bounds the passive listeners waiting for a data connection at one time per client address
	// (an IPv4 address or an IPv6 /64, as for bans), so one address cannot hold the passive port range; PASV and
	// EPSV beyond it answer 425. Each session holds at most one (a new PASV or EPSV closes the previous one), and
	// a listener holds its port only until its data connection arrives or DataAcceptTimeout passes. 0 means no
	// bound.
	MaxPassivePerIP int

	// DataAcceptTimeout bounds the wait for the client's data connection (passive accept or active dial). A
	// passive listener no client connected to within it (counted from PASV/EPSV, and again from the transfer
	// command) is closed and its port returned; the transfer command then answers 425.
	DataAcceptTimeout time.Duration
	// IdleTimeout closes a control connection with no command for this long (not while a transfer runs).
	IdleTimeout time.Duration
	// DataTimeout closes a data connection that moved no byte for this long; it also bounds control writes.
	DataTimeout time.Duration
	// LoginTimeout closes a connection that has not logged in this long after connecting.
	LoginTimeout time.Duration
	// MaxLoginAttempts closes the session after this many failed PASS commands.
	MaxLoginAttempts int
	// Banner is the text of the 220 greeting.
	Banner string
}

// HostMapping is one PassiveHostMap entry: clients inside Prefix are told to connect to Host.
type HostMapping struct {
	Prefix netip.Prefix
	Host   string
}

// DefaultOptions returns the documented defaults.
func DefaultOptions() Options {
	return Options{
		Listen:            "127.0.0.1:2121",
		MaxPassivePerIP:   8,
		DataAcceptTimeout: 30 * time.Second,
		IdleTimeout:       5 * time.Minute,
		DataTimeout:       60 * time.Second,
		LoginTimeout:      60 * time.Second,
		MaxLoginAttempts:  3,
		Banner:            "s3ftp ready",
	}
}

// Validate reports the first inconsistent option. Whether a certificate is available is checked by NewServer,
// which may also receive a ready *tls.Config: without AllowPlain, or with ImplicitListen, one is required.
func (o *Options) Validate() error {
	if o.Listen == "" && o.ImplicitListen == "" {
		return errors.New("no listener: set Listen or ImplicitListen")
	}
	for _, a := range []string{o.Listen, o.ImplicitListen} {
		if a == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("listen address %q: %w", a, err)
		}
	}
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return errors.New("TLSCert and TLSKey must be given together")
	}
	if o.TLSCert != "" && o.TLSSelfSigned {
		return errors.New("TLSSelfSigned and TLSCert are exclusive")
	}
	if o.PassivePortMin < 0 || o.PassivePortMax > 65535 || o.PassivePortMin > o.PassivePortMax ||
		(o.PassivePortMin == 0) != (o.PassivePortMax == 0) {
		return fmt.Errorf("passive port range %d-%d is invalid", o.PassivePortMin, o.PassivePortMax)
	}
	for _, m := range o.PassiveHostMap {
		if !m.Prefix.IsValid() || m.Host == "" {
			return fmt.Errorf("passive host map entry %v=%q is invalid", m.Prefix, m.Host)
		}
	}
	if o.ProxyProtocolData && len(o.ProxyProtocolFrom) == 0 {
		return errors.New("ProxyProtocolData needs ProxyProtocolFrom")
	}
	if o.ProxyHeaderTimeout < 0 {
		return errors.New("ProxyHeaderTimeout must not be negative")
	}
	if o.MaxPassivePerIP < 0 {
		return errors.New("MaxPassivePerIP must not be negative")
	}
	if o.DataAcceptTimeout <= 0 || o.IdleTimeout <= 0 || o.DataTimeout <= 0 || o.LoginTimeout <= 0 {
		return errors.New("timeouts must be positive")
	}
	if o.MaxLoginAttempts <= 0 {
		return errors.New("MaxLoginAttempts must be positive")
	}
	if strings.ContainsAny(o.Banner, "\r\n") {
		return errors.New("Banner must be one line")
	}
	return nil
}

// ParsePortRange parses "40000-40099", a single port "40000", or "0" (any free port).
func ParsePortRange(s string) (lo, hi int, err error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" {
		return 0, 0, nil
	}
	a, b, found := strings.Cut(s, "-")
	if !found {
		b = a
	}
	lo, err1 := strconv.Atoi(strings.TrimSpace(a))
	hi, err2 := strconv.Atoi(strings.TrimSpace(b))
	if err1 != nil || err2 != nil || lo < 1 || hi > 65535 || lo > hi {
		return 0, 0, fmt.Errorf("port range %q: want LOW-HIGH within 1-65535", s)
	}
	return lo, hi, nil
}

// ParseHostMap parses "10.0.0.0/8=10.1.2.3,0.0.0.0/0=ftp.example.com".
func ParseHostMap(s string) ([]HostMapping, error) {
	var out []HostMapping
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		cidr, host, ok := strings.Cut(item, "=")
		if !ok || strings.TrimSpace(host) == "" {
			return nil, fmt.Errorf("passive host map entry %q: want CIDR=HOST", item)
		}
		p, err := netip.ParsePrefix(strings.TrimSpace(cidr))
		if err != nil {
			return nil, fmt.Errorf("passive host map entry %q: %w", item, err)
		}
		out = append(out, HostMapping{Prefix: p.Masked(), Host: strings.TrimSpace(host)})
	}
	return out, nil
}

// ParseCIDRList parses a comma-separated list of CIDR prefixes; a bare address means a single host.
func ParseCIDRList(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if !strings.Contains(item, "/") {
			a, err := netip.ParseAddr(item)
			if err != nil {
				return nil, fmt.Errorf("CIDR %q: %w", item, err)
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(item)
		if err != nil {
			return nil, fmt.Errorf("CIDR %q: %w", item, err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// controlProxy is the PROXY protocol setting of the control listeners.
func (o *Options) controlProxy() ProxyProtocol {
	return ProxyProtocol{From: o.ProxyProtocolFrom, HeaderTimeout: o.ProxyHeaderTimeout}
}

// dataProxy is the PROXY protocol setting of the passive listeners: off unless ProxyProtocolData.
func (o *Options) dataProxy() ProxyProtocol {
	if !o.ProxyProtocolData {
		return ProxyProtocol{}
	}
	return o.controlProxy()
}
