package ftpfront

import (
	"crypto/tls"
	"strconv"
	"strings"
	"time"
)

// Session set-up: USER, PASS, QUIT (RFC 959) and AUTH, PBSZ, PROT (RFC 2228, RFC 4217).
var authCommands = map[string]commandSpec{
	"USER": {fn: cmdUSER, needArg: true},
	"PASS": {fn: cmdPASS},
	"QUIT": {fn: cmdQUIT},
	"AUTH": {fn: cmdAUTH, needArg: true},
	"PBSZ": {fn: cmdPBSZ, needArg: true},
	"PROT": {fn: cmdPROT, needArg: true},
}

func cmdUSER(s *session, cmd Command, _ cmdState) bool {
	if !s.tlsOn && !s.srv.opts.AllowPlain {
		s.log.Info("login refused: TLS required", "user", logName(sanitize(cmd.Arg)))
		s.reply(530, "TLS required: use AUTH TLS before USER")
		return true
	}
	if s.user != nil {
		s.reply(503, "Already logged in")
		return true
	}
	s.pendingUser = cmd.Arg
	s.reply(331, "Password required")
	return true
}

func cmdPASS(s *session, cmd Command, _ cmdState) bool {
	if s.user != nil {
		s.reply(503, "Already logged in")
		return true
	}
	name := s.pendingUser
	s.pendingUser = ""
	if name == "" {
		s.reply(503, "Log in with USER first")
		return true
	}
	u, err := s.srv.deps.Auth.Login(s.ctx, s.ip, name, cmd.Arg)
	if err == nil {
		var fsErr error
		if s.fs, fsErr = s.srv.deps.Fs(u); fsErr != nil {
			s.log.Error("home directory unavailable", "user", u.Name, "err", fsErr)
			s.audit(Event{Event: "login_failed", User: u.Name, Result: "home directory unavailable"})
			s.reply(530, "Login incorrect")
			return true
		}
	}
	if err != nil {
		s.failedLogin++
		s.log.Info("login failed", "user", logName(sanitize(name)), "err", err)
		s.audit(Event{Event: "login_failed", User: logName(sanitize(name)), Result: err.Error()})
		if s.ctx.Err() != nil {
			return false
		}
		s.reply(530, "Login incorrect")
		if s.failedLogin >= s.srv.opts.MaxLoginAttempts {
			s.reply(421, "Too many failed logins, closing control connection")
			return false
		}
		return true
	}
	s.user = u
	s.cwd = "/"
	s.log = s.log.With("user", u.Name)
	s.log.Info("login ok", "read_only", u.ReadOnly)
	s.audit(Event{Event: "login_ok"})
	s.reply(230, "Login successful")
	return true
}

func cmdQUIT(s *session, _ Command, _ cmdState) bool {
	s.reply(221, "Goodbye")
	return false
}

func cmdAUTH(s *session, cmd Command, _ cmdState) bool {
	switch strings.ToUpper(cmd.Arg) {
	case "TLS", "TLS-C", "SSL", "TLS-P":
	default:
		s.reply(504, "Unsupported security mechanism, use AUTH TLS")
		return true
	}
	if s.srv.tls == nil {
		s.reply(431, "TLS is not configured on this server")
		return true
	}
	if s.tlsOn {
		s.reply(503, "TLS already active")
		return true
	}
	if s.user != nil || s.pendingUser != "" {
		s.reply(503, "AUTH must come before USER")
		return true
	}
	s.reply(234, "AUTH TLS successful")
	if s.lr.buffered() > 0 {
		// Bytes sent in plaintext after AUTH would be processed as if they came over TLS (command injection,
		// CVE-2011-0411 class); refuse the session.
		s.log.Warn("plaintext data after AUTH TLS, closing")
		return false
	}
	tc := tls.Server(s.raw, s.srv.tls)
	tc.SetDeadline(time.Now().Add(s.srv.opts.LoginTimeout))
	if err := tc.HandshakeContext(s.ctx); err != nil {
		s.log.Info("control TLS handshake failed", "err", err)
		return false
	}
	tc.SetDeadline(time.Time{})
	s.wmu.Lock()
	s.conn = tc
	s.wmu.Unlock()
	s.lr = newLineReader(tc)
	s.tlsOn = true
	return true
}

func cmdPBSZ(s *session, cmd Command, _ cmdState) bool {
	if !s.tlsOn {
		s.reply(503, "PBSZ requires an active TLS session")
		return true
	}
	if _, err := strconv.ParseUint(cmd.Arg, 10, 32); err != nil {
		s.reply(501, "Bad PBSZ argument")
		return true
	}
	s.pbsz = true
	s.reply(200, "PBSZ=0")
	return true
}

func cmdPROT(s *session, cmd Command, _ cmdState) bool {
	if !s.tlsOn {
		s.reply(503, "PROT requires an active TLS session")
		return true
	}
	if !s.pbsz && !s.implicit {
		s.reply(503, "PBSZ required before PROT")
		return true
	}
	switch strings.ToUpper(cmd.Arg) {
	case "P":
		s.protP = true
		s.reply(200, "Protection level set to Private")
	case "C":
		if !s.srv.opts.AllowPlain {
			s.reply(534, "Clear data connections are denied by policy")
			return true
		}
		s.protP = false
		s.reply(200, "Protection level set to Clear")
	case "S", "E":
		s.reply(536, "Protection level not supported")
	default:
		s.reply(504, "Unknown protection level")
	}
	return true
}
