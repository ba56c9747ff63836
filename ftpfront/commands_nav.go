package ftpfront

// Working directory: PWD CWD CDUP (RFC 959) and their X aliases (RFC 775).
var navCommands = map[string]commandSpec{
	"PWD":  {fn: cmdPWD, needLogin: true},
	"XPWD": {fn: cmdPWD, needLogin: true},
	"CWD":  {fn: cmdCWD, needLogin: true, needArg: true},
	"XCWD": {fn: cmdCWD, needLogin: true, needArg: true},
	"CDUP": {fn: cmdCDUP, needLogin: true},
	"XCUP": {fn: cmdCDUP, needLogin: true},
}

func cmdPWD(s *session, _ Command, _ cmdState) bool {
	s.reply(257, quotePath(s.cwd)+" is the current directory")
	return true
}

func cmdCWD(s *session, cmd Command, _ cmdState) bool {
	s.chdir(s.abs(cmd.Arg))
	return true
}

func cmdCDUP(s *session, _ Command, _ cmdState) bool {
	s.chdir(s.abs(".."))
	return true
}

func (s *session) chdir(p string) {
	fi, err := s.fs.Stat(p)
	if err != nil {
		s.fsError("cwd", p, err)
		return
	}
	if !fi.IsDir() {
		s.reply(550, "Not a directory")
		return
	}
	s.cwd = p
	s.reply(250, "Directory changed to "+p)
}
