package ftpfront

import (
	"errors"
	"io"
)

// Name-space changes: DELE RNFR RNTO MKD RMD (RFC 959) and XMKD XRMD (RFC 775).
var fileCommands = map[string]commandSpec{
	"DELE": {fn: cmdDELE, needLogin: true, needArg: true},
	"RNFR": {fn: cmdRNFR, needLogin: true, needArg: true},
	"RNTO": {fn: cmdRNTO, needLogin: true, needArg: true},
	"MKD":  {fn: cmdMKD, needLogin: true, needArg: true},
	"XMKD": {fn: cmdMKD, needLogin: true, needArg: true},
	"RMD":  {fn: cmdRMD, needLogin: true, needArg: true},
	"XRMD": {fn: cmdRMD, needLogin: true, needArg: true},
}

func cmdDELE(s *session, cmd Command, _ cmdState) bool {
	p := s.abs(cmd.Arg)
	fi, err := s.fs.Stat(p)
	if err == nil && fi.IsDir() {
		s.reply(550, "Is a directory, use RMD")
		return true
	}
	if err == nil {
		err = s.fs.Remove(p)
	}
	s.audit(Event{Event: "delete", Path: p, Result: errResult(err)})
	if err != nil {
		s.fsError("delete", p, err)
		return true
	}
	s.reply(250, "Deleted "+p)
	return true
}

func cmdRNFR(s *session, cmd Command, _ cmdState) bool {
	p := s.abs(cmd.Arg)
	if p == "/" {
		s.reply(550, "Permission denied")
		return true
	}
	if _, err := s.fs.Stat(p); err != nil {
		s.fsError("rename", p, err)
		return true
	}
	s.renameFrom = p
	s.reply(350, "Ready for RNTO")
	return true
}

func cmdRNTO(s *session, cmd Command, st cmdState) bool {
	if st.renameFrom == "" {
		s.reply(503, "RNFR required first")
		return true
	}
	to := s.abs(cmd.Arg)
	if to == "/" {
		s.reply(550, "Permission denied")
		return true
	}
	err := s.fs.Rename(st.renameFrom, to)
	s.audit(Event{Event: "rename", Path: st.renameFrom, To: to, Result: errResult(err)})
	if err != nil {
		s.fsError("rename", st.renameFrom, err)
		return true
	}
	s.reply(250, "Renamed to "+to)
	return true
}

func cmdMKD(s *session, cmd Command, _ cmdState) bool {
	p := s.abs(cmd.Arg)
	err := s.fs.Mkdir(p, 0o755)
	s.audit(Event{Event: "mkdir", Path: p, Result: errResult(err)})
	if err != nil {
		s.fsError("mkdir", p, err)
		return true
	}
	s.reply(257, quotePath(p)+" created")
	return true
}

func cmdRMD(s *session, cmd Command, _ cmdState) bool {
	p := s.abs(cmd.Arg)
	if p == "/" {
		s.reply(550, "Permission denied")
		return true
	}
	fi, err := s.fs.Stat(p)
	if err == nil && !fi.IsDir() {
		s.reply(550, "Not a directory")
		return true
	}
	if err == nil {
		// Checked here because not every afero.Fs refuses to remove a non-empty directory (MemMapFs does not).
		err = s.checkEmptyDir(p)
	}
	if err == nil {
		err = s.fs.Remove(p)
	}
	s.audit(Event{Event: "rmdir", Path: p, Result: errResult(err)})
	if err != nil {
		s.fsError("rmdir", p, err)
		return true
	}
	s.reply(250, "Removed "+p)
	return true
}

var errDirNotEmpty = errors.New("directory not empty")

func (s *session) checkEmptyDir(p string) error {
	f, err := s.fs.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if len(names) > 0 {
		return errDirNotEmpty
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}
