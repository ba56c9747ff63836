package ftpfront

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/spf13/afero"

	"github.com/s3ftp/s3ftp/internal/safego"
)

// Deps are the collaborators of a Server. Only Auth is required.
type Deps struct {
	// Auth checks USER/PASS.
	Auth Authenticator
	// Admit decides on each new control connection; nil admits every connection.
	Admit Admitter
	// Audit receives audit events; nil drops them.
	Audit Auditor
	// Fs opens a user's file system; nil means DefaultFsFactory (a JailFs at User.Home).
	Fs FsFactory
	// Log receives operational logs; nil means slog.Default().
	Log *slog.Logger
	// TLS overrides the configuration built from Options (tests); nil means Options.TLSConfig.
	TLS *tls.Config
}

// Server is an FTP/FTPS server. Create it with NewServer, bind with Listen, run with Serve.
type Server struct {
	opts  Options
	deps  Deps
	log   *slog.Logger
	tls   *tls.Config
	certs *certSource // behind tls's GetCertificate; nil with Deps.TLS or without TLS
	hosts *hostResolver
	// passives counts the passive listeners waiting per client address (Options.MaxPassivePerIP).
	passives *passiveLimit
	// panics recovers and counts the panics of every goroutine the server starts (accept loops, sessions,
	// commands, transfers, passive accepts).
	panics safego.Panics

	// proxy is the control listeners' PROXY protocol setting (Options.ProxyProtocolFrom).
	proxy ProxyProtocol

	mu        sync.Mutex
	listeners []serverListener
	sessions  map[*session]struct{}
	pending   map[net.Conn]struct{} // trusted balancers' connections whose PROXY header is being read
	closed    bool
	wg        sync.WaitGroup
}

type serverListener struct {
	ln       net.Listener
	implicit bool
}

type nopAuditor struct{}

func (nopAuditor) Record(Event) {}

// NewServer validates opts and prepares the TLS configuration (loading or generating the certificate).
func NewServer(opts Options, deps Deps) (*Server, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if deps.Auth == nil {
		return nil, errors.New("ftpfront: Deps.Auth is required")
	}
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	if deps.Audit == nil {
		deps.Audit = nopAuditor{}
	}
	if deps.Fs == nil {
		deps.Fs = DefaultFsFactory
	}
	s := &Server{opts: opts, deps: deps, log: deps.Log, sessions: map[*session]struct{}{}, pending: map[net.Conn]struct{}{}, proxy: opts.controlProxy(), passives: newPassiveLimit(opts.MaxPassivePerIP)}
	s.tls = deps.TLS
	if s.tls == nil {
		c, src, err := opts.tlsConfig(deps.Log)
		if err != nil {
			return nil, err
		}
		s.tls, s.certs = c, src
	}
	if s.tls == nil && opts.ImplicitListen != "" {
		return nil, errors.New("ftpfront: implicit FTPS needs a TLS configuration")
	}
	if s.tls == nil && !opts.AllowPlain {
		return nil, errors.New("ftpfront: TLS is required but no TLS configuration is available")
	}
	h, err := newHostResolver(opts.PublicHost, opts.PassiveHostMap, deps.Log)
	if err != nil {
		return nil, err
	}
	s.hosts = h
	return s, nil
}

// ReloadCertificate reads Options.TLSCert and TLSKey again; the next TLS handshakes (new control connections,
// AUTH TLS, data connections) get the new certificate, connections already established keep theirs. On an
// error (unreadable file, no PEM, key not matching the certificate, certificate expired) the certificate served
// so far stays and the error names the files. It does nothing without certificate files (a self-signed
// certificate, Deps.TLS, plain FTP only).
func (s *Server) ReloadCertificate() error {
	if s.certs == nil {
		return nil
	}
	return s.certs.reload(time.Now())
}

// Listen binds the configured listeners and logs one "listening" line per address.
func (s *Server) Listen() error {
	bind := func(addr string, implicit bool) error {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen %s: %w", addr, err)
		}
		s.mu.Lock()
		s.listeners = append(s.listeners, serverListener{ln: ln, implicit: implicit})
		s.mu.Unlock()
		s.log.Info("listening", "addr", ln.Addr().String(), "implicit_tls", implicit)
		return nil
	}
	if s.opts.Listen != "" {
		if err := bind(s.opts.Listen, false); err != nil {
			return err
		}
	}
	if s.opts.ImplicitListen != "" {
		if err := bind(s.opts.ImplicitListen, true); err != nil {
			s.Close()
			return err
		}
	}
	return nil
}

// Addr returns the bound explicit-FTPS address (nil before Listen or when only implicit FTPS is configured).
func (s *Server) Addr() net.Addr { return s.addr(false) }

// ImplicitAddr returns the bound implicit-FTPS address, or nil.
func (s *Server) ImplicitAddr() net.Addr { return s.addr(true) }

func (s *Server) addr(implicit bool) net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.listeners {
		if l.implicit == implicit {
			return l.ln.Addr()
		}
	}
	return nil
}

// Serve accepts connections until ctx is cancelled or Close is called, then closes every session and waits for
// their goroutines. It returns nil after a normal shutdown.
func (s *Server) Serve(ctx context.Context) error {
	s.mu.Lock()
	lns := append([]serverListener(nil), s.listeners...)
	s.mu.Unlock()
	if len(lns) == 0 {
		return errors.New("ftpfront: Serve before Listen")
	}
	errc := make(chan error, len(lns))
	for _, l := range lns {
		// A panic of the loop itself (each connection's set-up has its own recovery) ends Serve with an error
		// instead of the process.
		go func(l serverListener) {
			errc <- s.panics.Call(s.log, "ftpfront: accept loop", func() error { return s.acceptLoop(ctx, l) })
		}(l)
	}
	var first error
	select {
	case <-ctx.Done():
	case first = <-errc:
	}
	s.Close()
	return first
}

// Close stops the listeners, closes every session's connections and waits for the session goroutines.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return
	}
	s.closed = true
	for _, l := range s.listeners {
		l.ln.Close()
	}
	for sess := range s.sessions {
		sess.kill()
	}
	for c := range s.pending {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *Server) acceptLoop(ctx context.Context, l serverListener) error {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed || ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			s.log.Error("accept failed", "addr", l.ln.Addr().String(), "err", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		s.accept(ctx, c, l.implicit)
	}
}

// accept starts c's session. A trusted balancer's connection first has its PROXY header read, in a goroutine of
// its own so that a slow header does not hold the accept loop; without a valid header in time it is closed with
// one log line. Any other connection starts at once.
func (s *Server) accept(ctx context.Context, c net.Conn, implicit bool) {
	peer := addrIP(c.RemoteAddr())
	if !s.proxy.Trusted(peer) {
		conn, ip, _, _ := s.proxy.Accept(c) // neither blocks nor fails for an untrusted peer
		// A panic while setting up one connection closes it (startSession's defer); the loop goes on.
		_ = s.panics.Call(s.log, "ftpfront: starting a session", func() error {
			s.startSession(ctx, conn, ip, peer, implicit)
			return nil
		})
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.Close()
		return
	}
	s.pending[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	s.panics.Go(s.log, "ftpfront: reading a PROXY header", func() {
		handed := false
		defer func() {
			s.mu.Lock()
			delete(s.pending, c)
			s.mu.Unlock()
			if !handed {
				c.Close()
			}
			s.wg.Done()
		}()
		conn, ip, _, err := s.proxy.Accept(c)
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if !closed {
				s.log.Warn("connection refused", "proxy", peer.String(), "err", err)
			}
			return
		}
		handed = true
		_ = s.panics.Call(s.log, "ftpfront: starting a session", func() error {
			s.startSession(ctx, conn, ip, peer, implicit)
			return nil
		})
	})
}

// Panics returns how many panics the server recovered (each logged once with its stack): in command handlers
// (answered 451, or 421 before login), sessions (421), transfers (451), accept loops and connection set-up.
func (s *Server) Panics() int64 { return s.panics.Count() }

func addrIP(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(ta.IP); ok {
			return ip.Unmap()
		}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// startSession admits c, whose client is ip (peer is the TCP peer: ip itself, or the balancer that sent a
// PROXY header), and starts its session goroutine. Until the goroutine owns c, c is closed and its admission
// released on every way out: refused, the server closed, or a panic.
func (s *Server) startSession(ctx context.Context, c net.Conn, ip, peer netip.Addr, implicit bool) {
	release := func() {}
	started := false
	defer func() {
		if !started {
			c.Close()
			release()
		}
	}()
	if s.deps.Admit != nil {
		r, err := s.deps.Admit.Admit(ip)
		if err != nil {
			s.log.Warn("connection refused", "ip", ip.String(), "proxy", proxyAttr(ip, peer), "err", err)
			if !implicit {
				c.SetWriteDeadline(time.Now().Add(5 * time.Second))
				fmt.Fprintf(c, "421 %s\r\n", sanitize(err.Error()))
			}
			return
		}
		release = r
	}
	sess := newSession(ctx, s, c, ip, implicit, release)
	if peer != ip {
		sess.log = sess.log.With("proxy", peer.String())
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.sessions[sess] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	started = true
	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			delete(s.sessions, sess)
			s.mu.Unlock()
		}()
		sess.serve()
	}()
}

// proxyAttr is the "proxy" log attribute: the balancer's address when it differs from the client's, else "".
func proxyAttr(ip, peer netip.Addr) string {
	if peer == ip {
		return ""
	}
	return peer.String()
}

// sanitize makes text safe to place in a reply line: CR, LF and NUL become spaces, so a file name cannot
// inject a reply.
func sanitize(text string) string {
	if !strings.ContainsAny(text, "\r\n\x00") {
		return text
	}
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == 0 {
			return ' '
		}
		return r
	}, text)
}

// quotePath formats a virtual path for a 257 reply (RFC 959: embedded quotes are doubled).
func quotePath(p string) string {
	return `"` + strings.ReplaceAll(sanitize(p), `"`, `""`) + `"`
}

func newSessionID() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// session is one control connection.
//
// Concurrency: serve's goroutine reads commands and runs every handler; at most one transfer goroutine runs
// beside it. Lock order: s.mu before s.wmu. s.wmu serialises reply writes (both goroutines reply).
// State read by the transfer goroutine (fs, user, tls settings) is fixed before it starts and not changed while
// it runs, because handlers other than ABOR, STAT and NOOP wait for the transfer to end first.
type session struct {
	srv      *Server
	id       string
	ip       netip.Addr
	log      *slog.Logger
	started  time.Time
	implicit bool
	release  func()
	ctx      context.Context
	cancel   context.CancelFunc

	wmu  sync.Mutex
	conn net.Conn // current control connection (plain or TLS); replaced on AUTH TLS under wmu
	raw  net.Conn // the TCP connection
	lr   *lineReader

	// Command-loop state, only touched by serve's goroutine.
	tlsOn       bool
	pbsz        bool
	protP       bool
	pendingUser string
	failedLogin int
	user        *User
	fs          afero.Fs
	cwd         string
	ascii       bool
	hashAlgo    string // OPTS HASH's choice; "" is SHA-256
	rest        int64
	renameFrom  string
	epsvAll     bool
	data        dataOpener // armed by PASV/EPSV/PORT/EPRT, consumed by the next transfer

	mu   sync.Mutex
	xfer *transfer // running transfer, guarded by mu
}

func newSession(parent context.Context, srv *Server, c net.Conn, ip netip.Addr, implicit bool, release func()) *session {
	id := newSessionID()
	var once sync.Once
	ctx, cancel := context.WithCancel(parent)
	return &session{
		ctx:      ctx,
		cancel:   cancel,
		srv:      srv,
		id:       id,
		ip:       ip,
		log:      srv.log.With("session", id, "ip", ip.String()),
		started:  time.Now(),
		implicit: implicit,
		release:  func() { once.Do(release) },
		conn:     c,
		raw:      c,
		cwd:      "/",
	}
}

// kill closes the connection from outside the session (server shutdown).
func (s *session) kill() {
	s.cancel()
	s.raw.Close()
}

func (s *session) audit(ev Event) {
	ev.Time = time.Now().UTC()
	ev.Session = s.id
	ev.IP = s.ip.String()
	ev.Protocol = "ftp"
	if s.tlsOn {
		ev.Protocol = "ftps"
	}
	if s.user != nil && ev.User == "" {
		ev.User = s.user.Name
	}
	if ev.Result == "" {
		ev.Result = "ok"
	}
	s.srv.deps.Audit.Record(ev)
}

func errResult(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

// reply writes one reply line.
func (s *session) reply(code int, text string) {
	s.writeReply(fmt.Sprintf("%d %s\r\n", code, sanitize(text)))
}

// replyLines writes a multi-line reply (RFC 959 4.2): "code-first", then the middle lines each indented by a
// space (so none can look like an end line), then "code last".
func (s *session) replyLines(code int, first string, middle []string, last string) {
	var b strings.Builder
	fmt.Fprintf(&b, "%d-%s\r\n", code, sanitize(first))
	for _, m := range middle {
		b.WriteString(" ")
		b.WriteString(sanitize(m))
		b.WriteString("\r\n")
	}
	fmt.Fprintf(&b, "%d %s\r\n", code, sanitize(last))
	s.writeReply(b.String())
}

func (s *session) writeReply(msg string) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.conn.SetWriteDeadline(time.Now().Add(s.srv.opts.DataTimeout))
	if _, err := s.conn.Write([]byte(msg)); err != nil {
		s.log.Debug("reply write failed", "err", err)
		s.raw.Close()
	}
}

// setReadDeadline arms the control read deadline: none while a transfer runs (the transfer re-arms it when it
// ends), the idle timeout otherwise, capped by the login timeout before login.
func (s *session) setReadDeadline() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setReadDeadlineLocked()
}

func (s *session) setReadDeadlineLocked() {
	if s.xfer != nil {
		s.raw.SetReadDeadline(time.Time{})
		return
	}
	d := time.Now().Add(s.srv.opts.IdleTimeout)
	if s.user == nil {
		if l := s.started.Add(s.srv.opts.LoginTimeout); l.Before(d) {
			d = l
		}
	}
	s.raw.SetReadDeadline(d)
}

func (s *session) serve() {
	defer s.cancel()
	s.log.Info("connect", "implicit_tls", s.implicit)
	s.audit(Event{Event: "connect"})
	defer func() {
		if s.data != nil {
			s.data.Close()
		}
		s.abortTransfer()
		s.raw.Close()
		s.release()
		s.audit(Event{Event: "disconnect", Duration: time.Since(s.started)})
		s.log.Info("disconnect", "duration", time.Since(s.started).Round(time.Millisecond))
	}()
	defer func() {
		// Command handlers have their own recovery (run); this one covers the rest of the session (the
		// implicit TLS handshake, reading commands).
		if r := recover(); r != nil {
			s.srv.panics.Recovered(s.log, "ftpfront: session", r)
			s.reply(421, "Internal error, closing control connection")
		}
	}()
	if s.implicit {
		tc := tls.Server(s.raw, s.srv.tls)
		tc.SetDeadline(time.Now().Add(s.srv.opts.LoginTimeout))
		if err := tc.HandshakeContext(s.ctx); err != nil {
			if errors.Is(err, ErrProxyUntrusted) {
				s.log.Warn("PROXY header from an untrusted address, closing the connection")
				return
			}
			s.log.Info("implicit TLS handshake failed", "err", err)
			return
		}
		tc.SetDeadline(time.Time{})
		s.conn = tc
		s.tlsOn = true
		s.protP = true
	}
	s.lr = newLineReader(s.conn)
	s.reply(220, s.srv.opts.Banner)
	for {
		s.setReadDeadline()
		line, err := s.lr.readLine()
		if errors.Is(err, errLineTooLong) {
			s.log.Warn("command line too long")
			s.reply(500, "Command line too long")
			continue
		}
		if err != nil {
			var ne net.Error
			if errors.Is(err, ErrProxyUntrusted) {
				s.log.Warn("PROXY header from an untrusted address, closing the connection")
			} else if errors.As(err, &ne) && ne.Timeout() {
				s.log.Info("control connection timed out")
				s.reply(421, "Timeout, closing control connection")
			} else {
				s.log.Debug("control read ended", "err", err)
			}
			return
		}
		cmd, err := ParseCommand(line)
		if err != nil {
			s.reply(500, "Syntax error, command unrecognized")
			continue
		}
		if !s.dispatch(cmd) {
			return
		}
	}
}

// dispatch runs one command and reports whether the session goes on.
func (s *session) dispatch(cmd Command) bool {
	spec, ok := commandTable[cmd.Verb]
	if !ok {
		s.reply(502, "Command not implemented")
		return true
	}
	if !spec.duringTransfer {
		s.waitTransfer()
	}
	if cmd.Verb == "PASS" {
		s.log.Debug("command", "verb", cmd.Verb)
	} else {
		s.log.Debug("command", "verb", cmd.Verb, "arg", cmd.Arg)
	}
	if !s.accountStillValid() {
		s.log.Info("account removed or changed, closing the session")
		s.reply(421, "Account removed or changed, closing control connection")
		return false
	}
	rest, renameFrom := s.rest, s.renameFrom
	s.rest, s.renameFrom = 0, ""
	if spec.needLogin && s.user == nil {
		s.reply(530, "Please log in with USER and PASS")
		return true
	}
	if spec.needArg && cmd.Arg == "" {
		s.reply(501, "Missing argument")
		return true
	}
	return s.run(spec, cmd, cmdState{rest: rest, renameFrom: renameFrom})
}

// accountStillValid reports whether the session may go on with the account it logged in with (AccountChecker).
// It is true before login, while a transfer runs (the check waits for the next command after it) and when the
// Authenticator does not implement AccountChecker.
func (s *session) accountStillValid() bool {
	if s.user == nil {
		return true
	}
	ac, ok := s.srv.deps.Auth.(AccountChecker)
	if !ok {
		return true
	}
	s.mu.Lock()
	running := s.xfer != nil
	s.mu.Unlock()
	return running || ac.AccountValid(s.user)
}

// run runs a command's handler and reports whether the session goes on. A panic in the handler is logged
// with its stack and counted, and fails that command only: a logged-in session answers 451 and reads the next
// command. Before login the session ends with 421 instead, so that a client cannot retry a login path that
// panics on one connection without limit.
func (s *session) run(spec commandSpec, cmd Command, st cmdState) bool {
	goOn := false
	err := s.srv.panics.Call(s.log, "ftpfront: command "+cmd.Verb, func() error {
		goOn = spec.fn(s, cmd, st)
		return nil
	})
	if err == nil {
		return goOn
	}
	if s.user == nil {
		s.reply(421, "Internal error, closing control connection")
		return false
	}
	s.reply(451, "Internal error, command aborted")
	return true
}

// cmdState carries the one-command-lived state set by the previous command (REST offset, RNFR source).
type cmdState struct {
	rest       int64
	renameFrom string
}

type commandSpec struct {
	fn             func(s *session, cmd Command, st cmdState) bool
	needLogin      bool
	needArg        bool
	duringTransfer bool // runs while a transfer is in progress instead of waiting for it
}

var commandTable map[string]commandSpec

func init() {
	commandTable = map[string]commandSpec{}
	for _, fam := range []map[string]commandSpec{authCommands, infoCommands, navCommands, fileCommands, listCommands, xferCommands, dataCommands, hashCommands} {
		for k, v := range fam {
			commandTable[k] = v
		}
	}
}

// abs turns a client path argument into a clean virtual path ("/" is home). ".." never climbs above "/".
func (s *session) abs(arg string) string {
	if arg == "" {
		return s.cwd
	}
	p := arg
	if !strings.HasPrefix(p, "/") {
		p = s.cwd + "/" + p
	}
	return cleanVirtual(p)
}

func cleanVirtual(p string) string {
	out := make([]string, 0, 8)
	for _, part := range strings.Split(p, "/") {
		switch part {
		case "", ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, part)
		}
	}
	return "/" + strings.Join(out, "/")
}
