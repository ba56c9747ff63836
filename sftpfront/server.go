package sftpfront

// Connections, authentication and channels.
//
// Per connection: Admit (shared with FTPS) → SSH handshake with password, keyboard-interactive (a password
// prompt) or public-key authentication through the shared access layer, all within LoginTimeout → FsFactory(user) → "session" channels, each of which may start the
// "sftp" subsystem once. Lock order: Server.mu is a leaf.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkg/sftp"
	"github.com/s3ftp/s3ftp/ftpfront"
	"github.com/s3ftp/s3ftp/internal/safego"
	"golang.org/x/crypto/ssh"
)

// Options configure a Server. Zero fields take the documented defaults, except Listen and HostKeyDir.
type Options struct {
	// Listen is the SSH listen address, e.g. "127.0.0.1:2022"; port 0 picks a free port (Server.Addr).
	Listen string
	// HostKeyDir holds the host keys (HostKeyFile, RSAHostKeyFile), generated there on first start.
	HostKeyDir string
	// LegacyAlgorithms widens the algorithms for old clients: ECDH (NIST curves) and Diffie-Hellman group 14
	// and group exchange key exchanges (SHA-256, and SHA-1 for group 14), AES-CTR ciphers, non-ETM HMAC-SHA2 and
	// HMAC-SHA1 MACs, and the RSA host key signed with SHA-1 (ssh-rsa). Off by default.
	LegacyAlgorithms bool
	// LoginTimeout bounds the time from connect to the end of authentication (default 60s).
	LoginTimeout time.Duration
	// IdleTimeout closes a logged-in connection from which nothing arrived for that long (no request, no data,
	// no window adjustment, no keepalive); 0 never does. ftpfront passes its --idle-timeout.
	IdleTimeout time.Duration
	// MaxAuthTries closes the connection after this many failed authentications (default 3, as ftpfront's
	// MaxLoginAttempts).
	MaxAuthTries int
	// MaxChannels bounds the session channels open at once on one connection (default 10, OpenSSH's
	// MaxSessions); more are refused.
	MaxChannels int
	// ReorderWindow is the reorder window per open file in bytes (default DefaultReorderWindow).
	ReorderWindow int64
	// ProxyProtocolFrom lists the load balancers' networks that send a PROXY protocol header (v1 or v2), as
	// ftpfront.Options.ProxyProtocolFrom: a connection from inside them must open with one, and its source address
	// is then the client's for Admit, authentication, logs and audit; a header from elsewhere closes the
	// connection. Empty: off.
	ProxyProtocolFrom []netip.Prefix
	// ProxyHeaderTimeout bounds the wait for a trusted balancer's header (ftpfront.DefaultProxyHeaderTimeout when
	// zero).
	ProxyHeaderTimeout time.Duration
	// MaxUploads bounds the files open for writing at once on one connection (default 8); opening one more fails
	// with SSH_FX_FAILURE "too many uploads open". With the window it bounds the reorder memory of a connection:
	// MaxUploads × ReorderWindow (32 MiB by default).
	MaxUploads int
}

func (o Options) withDefaults() Options {
	if o.LoginTimeout <= 0 {
		o.LoginTimeout = 60 * time.Second
	}
	if o.MaxAuthTries <= 0 {
		o.MaxAuthTries = 3
	}
	if o.MaxChannels <= 0 {
		o.MaxChannels = 10
	}
	if o.ReorderWindow <= 0 {
		o.ReorderWindow = DefaultReorderWindow
	}
	if o.MaxUploads <= 0 {
		o.MaxUploads = 8
	}
	return o
}

// Deps are the access layer and file seam the server uses: the same values that serve FTPS.
type Deps struct {
	// Auth checks passwords (required).
	Auth ftpfront.Authenticator
	// Admit admits connections; nil admits every connection.
	Admit ftpfront.Admitter
	// Fs opens a logged-in user's file system (required); ftpfront.DefaultFsFactory behind the MountGuard.
	Fs ftpfront.FsFactory
	// Audit records events; nil records nothing.
	Audit ftpfront.Auditor
	// Log receives the server's log lines; nil means slog.Default().
	Log *slog.Logger
}

// KeyAuthenticator is an optional interface of Deps.Auth: public-key authentication (ftpfront.Access has it).
//
// LoginKey is called for each key the client offers, before the client proves it holds the private key; it
// returns the user the key logs in, or an error when the key is not accepted (the client may offer another key or
// a password). It must not delay or count refusals: clients offer keys one after another. KeyLoginDone is called
// once a key login completed (the client proved it holds the key). Without the interface only password
// authentication is offered.
type KeyAuthenticator interface {
	LoginKey(ip netip.Addr, name string, key ssh.PublicKey) (*ftpfront.User, error)
	KeyLoginDone(ip netip.Addr)
}

// Server is an SFTP server. Listen, then Serve; Close ends it.
type Server struct {
	opts    Options
	deps    Deps
	log     *slog.Logger
	hostKey ssh.Signer // ed25519
	rsaKey  ssh.Signer // RSA, restricted to the signature algorithms offered
	panics  safego.Panics

	mu sync.Mutex
	// Guarded by mu.
	ln     net.Listener
	conns  map[net.Conn]struct{}
	closed bool

	wg sync.WaitGroup // connection goroutines
}

// Algorithms offered: modern ones only, and with Options.LegacyAlgorithms the legacy ones after them.
var (
	kexAlgos = []string{ssh.KeyExchangeMLKEM768X25519, ssh.KeyExchangeCurve25519, "curve25519-sha256@libssh.org"}
	// AES-GCM only: clients pick by their own order, and OpenSSH's puts chacha20-poly1305 first, which
	// x/crypto/ssh computes without assembly on amd64 (an SFTP upload ran at 49.8 MiB/s with it, 68.0 with
	// AES-GCM, bench/README.md). chacha20-poly1305 stays available with LegacyAlgorithms.
	ciphers  = []string{ssh.CipherAES128GCM, ssh.CipherAES256GCM}
	macs     = []string{ssh.HMACSHA256ETM, ssh.HMACSHA512ETM}
	rsaAlgos = []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256}

	legacyKexAlgos = []string{ssh.KeyExchangeECDHP256, ssh.KeyExchangeECDHP384, ssh.KeyExchangeECDHP521,
		ssh.KeyExchangeDHGEXSHA256, ssh.KeyExchangeDH16SHA512, ssh.KeyExchangeDH14SHA256, ssh.InsecureKeyExchangeDH14SHA1}
	legacyCiphers  = []string{ssh.CipherChaCha20Poly1305, ssh.CipherAES256CTR, ssh.CipherAES192CTR, ssh.CipherAES128CTR}
	legacyMACs     = []string{ssh.HMACSHA256, ssh.HMACSHA512, ssh.HMACSHA1}
	legacyRSAAlgos = []string{ssh.KeyAlgoRSA}
)

// algorithms returns the key exchanges, ciphers, MACs and RSA signature algorithms offered.
func (o Options) algorithms() (kex, ciph, mac, rsa []string) {
	kex, ciph, mac, rsa = kexAlgos, ciphers, macs, rsaAlgos
	if o.LegacyAlgorithms {
		kex = append(append([]string(nil), kex...), legacyKexAlgos...)
		ciph = append(append([]string(nil), ciph...), legacyCiphers...)
		mac = append(append([]string(nil), mac...), legacyMACs...)
		rsa = append(append([]string(nil), rsa...), legacyRSAAlgos...)
	}
	return kex, ciph, mac, rsa
}

// NewServer loads or creates the host keys and returns a server; it logs the host keys' fingerprints.
func NewServer(opts Options, deps Deps) (*Server, error) {
	if deps.Auth == nil || deps.Fs == nil {
		return nil, errors.New("sftpfront: Deps.Auth and Deps.Fs are required")
	}
	if opts.Listen == "" {
		return nil, errors.New("sftpfront: no listen address")
	}
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	opts = opts.withDefaults()
	key, created, err := LoadOrCreateHostKey(opts.HostKeyDir)
	if err != nil {
		return nil, fmt.Errorf("sftpfront: %w", err)
	}
	s := &Server{opts: opts, deps: deps, log: deps.Log, hostKey: key, conns: make(map[net.Conn]struct{})}
	s.log.Info("sftp host key", "type", key.PublicKey().Type(), "fingerprint", ssh.FingerprintSHA256(key.PublicKey()),
		"dir", opts.HostKeyDir, "generated", created)
	rkey, created, err := LoadOrCreateRSAHostKey(opts.HostKeyDir)
	if err != nil {
		return nil, fmt.Errorf("sftpfront: %w", err)
	}
	as, ok := rkey.(ssh.AlgorithmSigner)
	if !ok || rkey.PublicKey().Type() != ssh.KeyAlgoRSA {
		return nil, fmt.Errorf("sftpfront: %s is not an RSA key", RSAHostKeyFile)
	}
	_, _, _, ralgos := opts.algorithms()
	if s.rsaKey, err = ssh.NewSignerWithAlgorithms(as, ralgos); err != nil {
		return nil, fmt.Errorf("sftpfront: RSA host key: %w", err)
	}
	s.log.Info("sftp host key", "type", rkey.PublicKey().Type(), "fingerprint", ssh.FingerprintSHA256(rkey.PublicKey()),
		"dir", opts.HostKeyDir, "generated", created, "signatures", strings.Join(ralgos, ","))
	if opts.LegacyAlgorithms {
		s.log.Warn("sftp: legacy algorithms enabled for old clients (SHA-1, CTR ciphers, NIST curves)")
	}
	return s, nil
}

// Panics returns how many panics the server recovered (each logged once with its stack): in request handlers,
// sessions and connection set-up. Each failed one request or ended one connection.
func (s *Server) Panics() int64 { return s.panics.Count() }

// HostKey returns the server's ed25519 public host key.
func (s *Server) HostKey() ssh.PublicKey { return s.hostKey.PublicKey() }

// HostKeys returns the server's public host keys: ed25519, then RSA.
func (s *Server) HostKeys() []ssh.PublicKey {
	return []ssh.PublicKey{s.hostKey.PublicKey(), s.rsaKey.PublicKey()}
}

// Listen binds the listen address.
func (s *Server) Listen() error {
	ln, err := net.Listen("tcp", s.opts.Listen)
	if err != nil {
		return fmt.Errorf("sftpfront: listen %s: %w", s.opts.Listen, err)
	}
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	s.log.Info("sftp listening", "addr", ln.Addr().String())
	return nil
}

// Addr returns the bound address, or nil before Listen.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Serve accepts connections until ctx ends (it then closes the server and returns nil) or accepting fails.
func (s *Server) Serve(ctx context.Context) error {
	s.mu.Lock()
	ln := s.ln
	s.mu.Unlock()
	if ln == nil {
		return errors.New("sftpfront: Serve before Listen")
	}
	stop := context.AfterFunc(ctx, s.Close)
	defer stop()
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				s.wg.Wait()
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			s.Close()
			return fmt.Errorf("sftpfront: accept: %w", err)
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			continue
		}
		s.conns[nc] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, nc)
				s.mu.Unlock()
			}()
			defer func() {
				if v := recover(); v != nil {
					s.panics.Recovered(s.log, "sftp: connection", v)
				}
			}()
			defer nc.Close()
			s.handle(ctx, nc)
		}()
	}
}

// Close closes the listener and every connection and waits for their goroutines.
func (s *Server) Close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		if s.ln != nil {
			s.ln.Close()
		}
		for c := range s.conns {
			c.Close()
		}
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// conn is one SSH connection's state, shared by its channels.
type conn struct {
	srv *Server
	id  string
	ip  netip.Addr
	log *slog.Logger
	sc  *ssh.ServerConn // set once the handshake is done

	mu sync.Mutex
	// Guarded by mu. Set by the authentication callbacks, read after the handshake.
	user    *ftpfront.User            // the password login's user
	keyUser map[string]*ftpfront.User // by login name + " " + key fingerprint: the users accepted keys would log in
}

func (c *conn) audit(e ftpfront.Event) {
	if c.srv.deps.Audit == nil {
		return
	}
	e.Time = time.Now().UTC()
	e.Session = c.id
	e.IP = c.ip.String()
	e.Protocol = "sftp"
	c.mu.Lock()
	if c.user != nil && e.User == "" {
		e.User = c.user.Name
	}
	c.mu.Unlock()
	c.srv.deps.Audit.Record(e)
}

// closeConn ends the connection; handle's loops and pkg/sftp's request servers then end too.
func (c *conn) closeConn() { c.sc.Close() }

func newConnID() string {
	var b [6]byte
	rand.Read(b[:])
	return "sftp-" + hex.EncodeToString(b[:])
}

func remoteIP(nc net.Conn) netip.Addr {
	if ap, err := netip.ParseAddrPort(nc.RemoteAddr().String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// idleConn ends a connection that receives nothing for idle once armed (after the login): each Read sets its
// deadline anew. The SSH transport reads all the time, so any message from the client counts as activity.
type idleConn struct {
	net.Conn
	idle  time.Duration
	armed atomic.Bool
}

// arm starts the idle timeout (none when idle is 0).
func (c *idleConn) arm() { c.armed.Store(c.idle > 0) }

// Read reads, first pushing the read deadline idle into the future once armed.
func (c *idleConn) Read(p []byte) (int, error) {
	if c.armed.Load() {
		c.Conn.SetReadDeadline(time.Now().Add(c.idle))
	}
	return c.Conn.Read(p)
}

// handle runs one connection to its end.
func (s *Server) handle(ctx context.Context, nc net.Conn) {
	peer := remoteIP(nc)
	proxy := ftpfront.ProxyProtocol{From: s.opts.ProxyProtocolFrom, HeaderTimeout: s.opts.ProxyHeaderTimeout}
	nc, ip, proxied, err := proxy.Accept(nc)
	if err != nil {
		s.log.Warn("sftp: connection refused", "proxy", peer.String(), "err", err)
		return
	}
	idle := &idleConn{Conn: nc, idle: s.opts.IdleTimeout}
	nc = idle
	c := &conn{srv: s, id: newConnID(), ip: ip}
	c.log = s.log.With("session", c.id, "ip", c.ip.String(), "proto", "sftp")
	if proxied {
		c.log = c.log.With("proxy", peer.String())
	}
	if s.deps.Admit != nil {
		release, err := s.deps.Admit.Admit(c.ip)
		if err != nil {
			c.log.Info("sftp: connection refused", "err", err)
			return
		}
		defer release()
	}
	c.audit(ftpfront.Event{Event: "connect", Result: "ok"})
	started := time.Now()
	defer func() { c.audit(ftpfront.Event{Event: "disconnect", Duration: time.Since(started), Result: "ok"}) }()

	nc.SetDeadline(time.Now().Add(s.opts.LoginTimeout))
	loginCtx, cancel := context.WithTimeout(ctx, s.opts.LoginTimeout)
	defer cancel()
	sc, chans, reqs, err := ssh.NewServerConn(nc, s.serverConfig(loginCtx, c))
	if errors.Is(err, ftpfront.ErrProxyUntrusted) {
		c.log.Warn("sftp: PROXY header from an untrusted address, closing the connection")
		return
	}
	if err != nil {
		c.log.Debug("sftp: handshake ended", "err", err)
		return
	}
	defer sc.Close()
	c.sc = sc
	nc.SetDeadline(time.Time{})
	idle.arm()
	cancel()
	go ssh.DiscardRequests(reqs) // tcpip-forward and every other global request: false

	c.mu.Lock()
	user := c.user
	if id := sc.Permissions.Extensions[extKeyLogin]; id != "" {
		user = c.keyUser[id]
		c.user = user
	}
	c.keyUser = nil
	c.mu.Unlock()
	if user == nil { // cannot happen: every method that succeeds sets a user, and NoClientAuth is off
		return
	}
	if id := sc.Permissions.Extensions[extKeyLogin]; id != "" {
		s.deps.Auth.(KeyAuthenticator).KeyLoginDone(c.ip)
		_, fp, _ := strings.Cut(id, " ")
		c.log.Info("sftp: login", "user", user.Name, "read_only", user.ReadOnly, "method", "publickey", "key", fp)
		c.audit(ftpfront.Event{Event: "login_ok", User: user.Name, Result: "ok"})
	}
	fsys, err := s.deps.Fs(user)
	if err != nil {
		c.log.Error("sftp: cannot open the user's file system", "user", user.Name, "err", err)
		return
	}
	h := &handlers{fs: fsys, user: user, sess: c, window: s.opts.ReorderWindow, uploads: make(chan struct{}, s.opts.MaxUploads)}

	sem := make(chan struct{}, s.opts.MaxChannels)
	var wg sync.WaitGroup
	defer wg.Wait()
	for nch := range chans {
		if nch.ChannelType() != "session" {
			nch.Reject(ssh.Prohibited, "only the sftp subsystem is served")
			continue
		}
		select {
		case sem <- struct{}{}:
		default:
			nch.Reject(ssh.ResourceShortage, "too many channels")
			continue
		}
		ch, creqs, err := nch.Accept()
		if err != nil {
			<-sem
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			s.panics.Call(c.log, "sftp: session", func() error { s.session(c, h, ch, creqs); return nil })
		}()
	}
}

// serverConfig returns the SSH configuration for connection c: password and keyboard-interactive
// authentication through the shared Authenticator, public keys through KeyAuthenticator when Deps.Auth has it,
// the host keys and the algorithms of Options.algorithms.
func (s *Server) serverConfig(ctx context.Context, c *conn) *ssh.ServerConfig {
	kex, ciph, mac, _ := s.opts.algorithms()
	cfg := &ssh.ServerConfig{
		Config:        ssh.Config{KeyExchanges: kex, Ciphers: ciph, MACs: mac},
		MaxAuthTries:  s.opts.MaxAuthTries,
		ServerVersion: "SSH-2.0-s3ftp",
		PasswordCallback: func(meta ssh.ConnMetadata, password []byte) (*ssh.Permissions, error) {
			return c.loginPassword(ctx, meta.User(), string(password), "password")
		},
		// keyboard-interactive is a password prompt (PuTTY and WinSCP prefer it): one question, checked as a
		// password.
		KeyboardInteractiveCallback: func(meta ssh.ConnMetadata, ask ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
			answers, err := ask("", "", []string{"Password: "}, []bool{false})
			if err != nil {
				return nil, err
			}
			if len(answers) != 1 {
				return nil, errors.New("want one answer")
			}
			return c.loginPassword(ctx, meta.User(), answers[0], "keyboard-interactive")
		},
	}
	if ka, ok := s.deps.Auth.(KeyAuthenticator); ok {
		cfg.PublicKeyCallback = func(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			u, err := ka.LoginKey(c.ip, meta.User(), key)
			if err != nil {
				c.log.Debug("sftp: key not accepted", "user", meta.User(), "key", ssh.FingerprintSHA256(key), "err", err)
				return nil, errors.New("key not accepted")
			}
			// Not logged in yet: x/crypto/ssh checks the client's signature next (and caches this answer per name
			// and key); handle finds the user by the name and key that passed. The same key may be authorized
			// for several names, so the name is part of the entry.
			id := meta.User() + " " + ssh.FingerprintSHA256(key)
			c.mu.Lock()
			if c.keyUser == nil {
				c.keyUser = make(map[string]*ftpfront.User)
			}
			c.keyUser[id] = u
			c.mu.Unlock()
			return &ssh.Permissions{Extensions: map[string]string{extKeyLogin: id}}, nil
		}
	}
	cfg.AddHostKey(s.hostKey)
	cfg.AddHostKey(s.rsaKey)
	return cfg
}

// loginPassword checks a password through the shared Authenticator (failed-login delay, ban counting) and
// records the outcome.
func (c *conn) loginPassword(ctx context.Context, name, password, method string) (*ssh.Permissions, error) {
	u, err := c.srv.deps.Auth.Login(ctx, c.ip, name, password)
	if err != nil {
		c.log.Info("sftp: login failed", "user", name, "method", method, "err", err)
		c.audit(ftpfront.Event{Event: "login_failed", User: name, Result: err.Error()})
		return nil, errors.New("login incorrect")
	}
	c.mu.Lock()
	c.user = u
	c.mu.Unlock()
	c.log.Info("sftp: login", "user", u.Name, "read_only", u.ReadOnly, "method", method)
	c.audit(ftpfront.Event{Event: "login_ok", User: u.Name, Result: "ok"})
	return &ssh.Permissions{}, nil
}

// extKeyLogin is the ssh.Permissions extension naming the login name and key fingerprint of a public-key
// login: the conn.keyUser entry.
const extKeyLogin = "s3ftp-key-login"

// session serves one session channel: the "sftp" subsystem or one scp command (an exec request, scp.go) once;
// every other request is answered false.
func (s *Server) session(c *conn, h *handlers, ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer func() {
		ch.Close()
		go ssh.DiscardRequests(reqs) // unserviced requests would stall the connection
	}()
	started := false
	done := make(chan struct{})
	for {
		select {
		case req, ok := <-reqs:
			if !ok {
				if started {
					<-done
				}
				return
			}
			var run func()
			switch {
			case started:
			case req.Type == "subsystem":
				var sub struct{ Name string }
				if err := ssh.Unmarshal(req.Payload, &sub); err == nil && sub.Name == "sftp" {
					run = func() { s.serveSFTP(c, h, ch) }
				}
			case req.Type == "exec":
				var ex struct{ Command string }
				if err := ssh.Unmarshal(req.Payload, &ex); err == nil {
					cmd, err := parseSCP(ex.Command)
					if err != nil {
						c.log.Info("sftp: exec refused", "command", truncate(ex.Command, 200), "err", err)
					} else {
						run = func() { s.serveSCP(c, h, ch, cmd) }
					}
				}
			}
			if run == nil {
				c.log.Debug("sftp: channel request refused", "type", req.Type)
			}
			// The answer goes before the subsystem's or the command's first byte.
			req.Reply(run != nil, nil)
			if run != nil {
				started = true
				go func() {
					defer close(done)
					s.panics.Call(c.log, "sftp: "+req.Type, func() error { run(); return nil })
				}()
			}
		case <-done:
			return
		}
	}
}

// serveSFTP runs pkg/sftp's request server on ch until the client ends it.
func (s *Server) serveSFTP(c *conn, h *handlers, ch ssh.Channel) {
	gc := newGatedChannel(ch)
	rs := sftp.NewRequestServer(gc, sftp.Handlers{FileGet: h, FilePut: h, FileCmd: h, FileList: h})
	err := rs.Serve()
	if err != nil && !errors.Is(err, io.EOF) {
		c.log.Debug("sftp: subsystem ended", "err", err)
	}
	// Before rs.Close, which closes the channel: scp (SFTP mode) fails when the exit status is missing.
	ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{0}))
	rs.Close()
}
