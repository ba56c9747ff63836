package ftpfront

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Data connection set-up: PASV, PORT (RFC 959), EPSV, EPRT (RFC 2428).
var dataCommands = map[string]commandSpec{
	"PASV": {fn: cmdPASV, needLogin: true},
	"EPSV": {fn: cmdEPSV, needLogin: true},
	"PORT": {fn: cmdPORT, needLogin: true, needArg: true},
	"EPRT": {fn: cmdEPRT, needLogin: true, needArg: true},
}

// armData replaces the armed data connection.
func (s *session) armData(d dataOpener) {
	s.dropData()
	s.data = d
}

// dropData releases the armed data connection, so a new PASV can reuse its port when the range is small.
func (s *session) dropData() {
	if s.data != nil {
		s.data.Close()
		s.data = nil
	}
}

// passive opens a passive listener for PASV or EPSV, after closing the session's previous one (a session holds
// at most one). On failure it answers 425 and returns false.
func (s *session) passive() (*passive, bool) {
	s.dropData()
	p, err := s.listenPassive()
	switch {
	case errors.Is(err, errTooManyPassive):
		s.log.Warn("passive listen refused", "err", err, "max", s.srv.opts.MaxPassivePerIP)
		s.reply(425, "Too many passive connections pending from your address")
		return nil, false
	case err != nil:
		s.log.Error("passive listen failed", "err", err)
		s.reply(425, "Can't open passive connection")
		return nil, false
	}
	return p, true
}

func cmdPASV(s *session, _ Command, _ cmdState) bool {
	if s.epsvAll {
		s.reply(503, "PASV not allowed after EPSV ALL")
		return true
	}
	p, ok := s.passive()
	if !ok {
		return true
	}
	ip, err := s.srv.hosts.pasvIP(s.ctx, s.ip, addrIP(s.raw.LocalAddr()))
	if err != nil || !ip.Is4() {
		p.Close()
		s.log.Warn("no IPv4 address for PASV", "err", err)
		s.reply(425, "Can't announce an IPv4 passive address, use EPSV")
		return true
	}
	s.armData(p)
	a := ip.As4()
	port := p.port()
	s.reply(227, fmt.Sprintf("Entering Passive Mode (%d,%d,%d,%d,%d,%d)", a[0], a[1], a[2], a[3], port>>8, port&0xff))
	return true
}

func cmdEPSV(s *session, cmd Command, _ cmdState) bool {
	local := addrIP(s.raw.LocalAddr())
	switch strings.ToUpper(cmd.Arg) {
	case "":
	case "ALL":
		s.epsvAll = true
		s.reply(200, "EPSV ALL ok")
		return true
	case "1", "2":
		if (cmd.Arg == "1") != local.Is4() {
			if local.Is4() {
				s.reply(522, "Network protocol not supported, use (1)")
			} else {
				s.reply(522, "Network protocol not supported, use (2)")
			}
			return true
		}
	default:
		s.reply(501, "Bad EPSV argument")
		return true
	}
	p, ok := s.passive()
	if !ok {
		return true
	}
	s.armData(p)
	s.reply(229, fmt.Sprintf("Entering Extended Passive Mode (|||%d|)", p.port()))
	return true
}

func cmdPORT(s *session, cmd Command, _ cmdState) bool { return s.cmdActive(cmd, parsePORT) }

func cmdEPRT(s *session, cmd Command, _ cmdState) bool { return s.cmdActive(cmd, parseEPRT) }

// cmdActive arms an active-mode data connection to the address parse reads from the argument of PORT or EPRT.
func (s *session) cmdActive(cmd Command, parse func(string) (netip.AddrPort, error)) bool {
	if !s.srv.opts.AllowActive {
		s.reply(502, "Active mode is disabled, use PASV or EPSV")
		return true
	}
	target, err := parse(cmd.Arg)
	if err != nil {
		s.reply(501, "Bad "+cmd.Verb+" argument")
		return true
	}
	return s.armActive(target)
}

func (s *session) armActive(target netip.AddrPort) bool {
	if s.epsvAll {
		s.reply(503, "Active mode not allowed after EPSV ALL")
		return true
	}
	if target.Addr().Unmap() != s.ip || target.Port() < 1024 {
		s.log.Warn("active data target refused", "target", target.String())
		s.reply(500, "Illegal PORT command: address must be yours and port >= 1024")
		return true
	}
	s.armData(&active{target: target, local: addrIP(s.raw.LocalAddr()), timeout: s.srv.opts.DataAcceptTimeout})
	s.reply(200, "PORT command successful")
	return true
}
