package ftpfront

import (
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Informational and parameter commands: NOOP SYST FEAT OPTS TYPE MODE STRU ALLO HELP STAT (RFC 959, 2389) and
// SIZE MDTM (RFC 3659), MFMT (draft-somers-ftp-mfxx).
var infoCommands = map[string]commandSpec{
	"NOOP": {fn: cmdNOOP, duringTransfer: true},
	"SYST": {fn: cmdSYST},
	"FEAT": {fn: cmdFEAT},
	"OPTS": {fn: cmdOPTS, needArg: true},
	"TYPE": {fn: cmdTYPE, needArg: true, needLogin: true},
	"MODE": {fn: cmdMODE, needArg: true, needLogin: true},
	"STRU": {fn: cmdSTRU, needArg: true, needLogin: true},
	"ALLO": {fn: cmdALLO, needLogin: true},
	"HELP": {fn: cmdHELP},
	"STAT": {fn: cmdSTAT, duringTransfer: true},
	"SIZE": {fn: cmdSIZE, needArg: true, needLogin: true},
	"MDTM": {fn: cmdMDTM, needArg: true, needLogin: true},
	"MFMT": {fn: cmdMFMT, needArg: true, needLogin: true},
}

// timeFormat is the RFC 3659 time-val without fraction (UTC). Many clients parse exactly 14 digits.
const timeFormat = "20060102150405"

func cmdNOOP(s *session, _ Command, _ cmdState) bool {
	s.reply(200, "NOOP ok")
	return true
}

func cmdSYST(s *session, _ Command, _ cmdState) bool {
	s.reply(215, "UNIX Type: L8")
	return true
}

func cmdFEAT(s *session, _ Command, _ cmdState) bool {
	feats := []string{"EPSV", "MDTM", "MFMT", "MLST type*;size*;modify*;perm*;", "PASV", "REST STREAM", "SIZE", "TVFS", "UTF8",
		s.hashFeature(), "XCRC", "XMD5", "XSHA256"}
	if s.srv.tls != nil {
		feats = append(feats, "AUTH TLS", "PBSZ", "PROT")
	}
	if s.srv.opts.AllowActive {
		feats = append(feats, "EPRT")
	}
	sort.Strings(feats)
	s.replyLines(211, "Features:", feats, "End")
	return true
}

func cmdOPTS(s *session, cmd Command, _ cmdState) bool {
	name, val, _ := strings.Cut(cmd.Arg, " ")
	switch strings.ToUpper(name) {
	case "UTF8", "UTF-8":
		if v := strings.ToUpper(strings.TrimSpace(val)); v == "ON" || v == "" {
			s.reply(200, "UTF8 mode is always on")
		} else {
			s.reply(504, "UTF8 cannot be turned off")
		}
	case "MLST":
		s.reply(200, "MLST OPTS type;size;modify;perm;")
	case "HASH":
		s.optsHash(val)
	default:
		s.reply(501, "Option not understood")
	}
	return true
}

func cmdTYPE(s *session, cmd Command, _ cmdState) bool {
	switch strings.ToUpper(strings.Join(strings.Fields(cmd.Arg), " ")) {
	case "I", "L 8", "L8":
		s.ascii = false
		s.reply(200, "Type set to I")
	case "A", "A N":
		s.ascii = true
		s.reply(200, "Type set to A")
	case "E", "A T", "A C", "E N", "E T", "E C":
		s.reply(504, "Type not supported")
	default:
		s.reply(501, "Bad TYPE argument")
	}
	return true
}

func cmdMODE(s *session, cmd Command, _ cmdState) bool {
	switch strings.ToUpper(cmd.Arg) {
	case "S":
		s.reply(200, "Mode set to S")
	case "B", "C", "Z":
		s.reply(504, "Only stream mode is supported")
	default:
		s.reply(501, "Bad MODE argument")
	}
	return true
}

func cmdSTRU(s *session, cmd Command, _ cmdState) bool {
	switch strings.ToUpper(cmd.Arg) {
	case "F":
		s.reply(200, "Structure set to F")
	case "R", "P":
		s.reply(504, "Only file structure is supported")
	default:
		s.reply(501, "Bad STRU argument")
	}
	return true
}

func cmdALLO(s *session, _ Command, _ cmdState) bool {
	s.reply(202, "ALLO not needed")
	return true
}

func cmdHELP(s *session, _ Command, _ cmdState) bool {
	verbs := make([]string, 0, len(commandTable))
	for v := range commandTable {
		verbs = append(verbs, v)
	}
	sort.Strings(verbs)
	var lines []string
	for i := 0; i < len(verbs); i += 10 {
		lines = append(lines, strings.Join(verbs[i:min(i+10, len(verbs))], " "))
	}
	s.replyLines(214, "Commands recognized:", lines, "Help OK")
	return true
}

func cmdSTAT(s *session, cmd Command, _ cmdState) bool {
	s.mu.Lock()
	t := s.xfer
	s.mu.Unlock()
	if cmd.Arg == "" {
		lines := []string{fmt.Sprintf("Connected from %s", s.ip)}
		if s.user != nil {
			lines = append(lines, "Logged in as "+s.user.Name)
		} else {
			lines = append(lines, "Not logged in")
		}
		mode := "BINARY"
		if s.ascii {
			mode = "ASCII"
		}
		lines = append(lines, "TYPE: "+mode, fmt.Sprintf("TLS: %v, PROT P: %v", s.tlsOn, s.protP))
		if t != nil {
			lines = append(lines, fmt.Sprintf("Transferring %s %s: %d bytes in %s", t.verb, t.path, t.bytes.Load(),
				time.Since(t.started).Round(time.Second)))
		}
		s.replyLines(211, "FTP server status:", lines, "End of status")
		return true
	}
	if s.user == nil {
		s.reply(530, "Please log in with USER and PASS")
		return true
	}
	if t != nil {
		s.reply(450, "Transfer in progress, STAT with a path is not available")
		return true
	}
	p := s.abs(stripListOptions(cmd.Arg))
	lines, err := s.listLines(p, listLong)
	if err != nil {
		s.fsError("stat", p, err)
		return true
	}
	s.replyLines(213, "Status of "+p+":", lines, "End of status")
	return true
}

// fsError answers a failed file operation with a fixed text (never the error's text, which may name a real
// path), and logs the cause: 451 when the storage is unavailable (a transient error: the client may retry), 550
// otherwise.
func (s *session) fsError(op, vpath string, err error) {
	s.log.Info("file operation failed", "op", op, "path", vpath, "err", err)
	switch {
	case errors.Is(err, ErrStorageUnavailable):
		s.reply(451, "Storage unavailable, try again later")
	case errors.Is(err, fs.ErrNotExist):
		s.reply(550, "No such file or directory")
	case errors.Is(err, fs.ErrPermission):
		s.reply(550, "Permission denied")
	case errors.Is(err, fs.ErrExist):
		s.reply(550, "File exists")
	case errors.Is(err, errDirNotEmpty):
		s.reply(550, "Directory not empty")
	default:
		s.reply(550, "Requested action not taken")
	}
}

func cmdSIZE(s *session, cmd Command, _ cmdState) bool {
	p := s.abs(cmd.Arg)
	fi, err := s.fs.Stat(p)
	if err != nil {
		s.fsError("size", p, err)
		return true
	}
	if !fi.Mode().IsRegular() {
		s.reply(550, "Not a regular file")
		return true
	}
	if s.ascii {
		s.reply(550, "SIZE not allowed in ASCII mode")
		return true
	}
	s.reply(213, fmt.Sprint(fi.Size()))
	return true
}

var setTimeArg = regexp.MustCompile(`^(\d{14})(\.\d{1,9})? (.+)$`)

// parseTimeVal parses an RFC 3659 time-val (UTC), with an optional fraction.
func parseTimeVal(v, frac string) (time.Time, error) {
	t, err := time.Parse(timeFormat, v)
	if err != nil {
		return time.Time{}, err
	}
	if frac != "" {
		ns := frac[1:] + strings.Repeat("0", 9-len(frac[1:]))
		var n int
		fmt.Sscan(ns, &n)
		t = t.Add(time.Duration(n))
	}
	return t, nil
}

func cmdMDTM(s *session, cmd Command, _ cmdState) bool {
	p := s.abs(cmd.Arg)
	fi, err := s.fs.Stat(p)
	if err != nil {
		// "MDTM YYYYMMDDHHMMSS path" sets the time (older clients' form of MFMT).
		if m := setTimeArg.FindStringSubmatch(cmd.Arg); m != nil {
			return setMtime(s, m, 213)
		}
		s.fsError("mdtm", p, err)
		return true
	}
	if !fi.Mode().IsRegular() {
		s.reply(550, "Not a regular file")
		return true
	}
	s.reply(213, fi.ModTime().UTC().Format(timeFormat))
	return true
}

func cmdMFMT(s *session, cmd Command, _ cmdState) bool {
	m := setTimeArg.FindStringSubmatch(cmd.Arg)
	if m == nil {
		s.reply(501, "Usage: MFMT YYYYMMDDHHMMSS path")
		return true
	}
	return setMtime(s, m, 213)
}

func setMtime(s *session, m []string, code int) bool {
	t, err := parseTimeVal(m[1], m[2])
	if err != nil {
		s.reply(501, "Bad time value")
		return true
	}
	p := s.abs(m[3])
	if _, err := s.fs.Stat(p); err != nil {
		s.fsError("mfmt", p, err)
		return true
	}
	if err := s.fs.Chtimes(p, t, t); err != nil {
		s.fsError("mfmt", p, err)
		return true
	}
	// The reply carries the time the file system kept, which is not the requested one on a backend that
	// cannot store modification times (the S3 mount accepts utimens and changes nothing).
	if fi, err := s.fs.Stat(p); err == nil && !fi.ModTime().Truncate(time.Second).Equal(t.Truncate(time.Second)) {
		s.log.Info("modification time not kept by the file system", "path", p, "requested", t.UTC(), "kept", fi.ModTime().UTC())
		t = fi.ModTime()
	}
	s.reply(code, fmt.Sprintf("Modify=%s; %s", t.UTC().Format(timeFormat), p))
	return true
}
