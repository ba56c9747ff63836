package ftpfront

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"
)

// Listings: LIST NLST (RFC 959), MLSD MLST (RFC 3659). Listings go over the data connection, except MLST and
// STAT with a path, which answer on the control connection.
var listCommands = map[string]commandSpec{
	"LIST": {fn: cmdLIST, needLogin: true},
	"NLST": {fn: cmdNLST, needLogin: true},
	"MLSD": {fn: cmdMLSD, needLogin: true},
	"MLST": {fn: cmdMLST, needLogin: true},
}

type listFormat int

const (
	listLong  listFormat = iota // ls -l style (LIST, STAT)
	listNames                   // bare names (NLST)
	listFacts                   // RFC 3659 facts (MLSD)
)

// stripListOptions drops ls-style options ("-la") that clients put in front of LIST/NLST/STAT paths.
func stripListOptions(arg string) string {
	for strings.HasPrefix(arg, "-") {
		_, rest, _ := strings.Cut(arg, " ")
		arg = strings.TrimLeft(rest, " ")
	}
	return arg
}

func cmdLIST(s *session, cmd Command, _ cmdState) bool {
	return s.list(s.abs(stripListOptions(cmd.Arg)), listLong)
}

func cmdNLST(s *session, cmd Command, _ cmdState) bool {
	return s.list(s.abs(stripListOptions(cmd.Arg)), listNames)
}

func cmdMLSD(s *session, cmd Command, _ cmdState) bool {
	return s.list(s.abs(cmd.Arg), listFacts)
}

func cmdMLST(s *session, cmd Command, _ cmdState) bool {
	p := s.abs(cmd.Arg)
	fi, err := s.fs.Stat(p)
	if err != nil {
		s.fsError("mlst", p, err)
		return true
	}
	s.replyLines(250, "Listing "+p, []string{s.facts(fi) + " " + p}, "End")
	return true
}

func (s *session) list(p string, format listFormat) bool {
	if !s.dataReady() {
		return true
	}
	fi, err := s.fs.Stat(p)
	if err != nil {
		s.fsError("list", p, err)
		return true
	}
	if format == listFacts && !fi.IsDir() {
		s.reply(501, "Not a directory")
		return true
	}
	lines, err := s.listLines(p, format)
	if err != nil {
		s.fsError("list", p, err)
		return true
	}
	s.startTransfer("LIST", p, func(ctx context.Context, t *transfer, d dataOpener) {
		conn, ok := s.openData(ctx, t, d, p, nil)
		if !ok {
			return
		}
		w := bufio.NewWriterSize(conn, 64<<10)
		var err error
		for _, l := range lines {
			conn.SetDeadline(time.Now().Add(s.srv.opts.DataTimeout))
			if _, err = io.WriteString(w, l+"\r\n"); err != nil {
				break
			}
		}
		if err == nil {
			err = w.Flush()
		}
		if cerr := conn.Close(); err == nil {
			err = cerr
		}
		switch {
		case t.aborted.Load():
			s.reply(426, "Connection closed; transfer aborted")
		case err != nil:
			s.log.Info("listing transfer failed", "path", p, "err", err)
			s.reply(426, "Data connection error; transfer aborted")
		default:
			s.reply(226, "Transfer complete")
		}
	})
	return true
}

// listLines renders p (a directory's entries sorted by name, or the single file p) in the given format.
// Symlinks are shown as what they point to when that is inside the jail, and left out otherwise.
func (s *session) listLines(p string, format listFormat) ([]string, error) {
	fi, err := s.fs.Stat(p)
	if err != nil {
		return nil, err
	}
	var infos []os.FileInfo
	if !fi.IsDir() {
		infos = []os.FileInfo{renamed{fi, path.Base(p)}}
	} else {
		f, err := s.fs.Open(p)
		if err != nil {
			return nil, err
		}
		entries, err := f.Readdir(-1)
		f.Close()
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if e.Mode()&os.ModeSymlink != 0 {
				t, err := s.fs.Stat(path.Join(p, e.Name()))
				if err != nil {
					continue
				}
				e = renamed{t, e.Name()}
			}
			infos = append(infos, e)
		}
		sort.Slice(infos, func(i, j int) bool { return infos[i].Name() < infos[j].Name() })
	}
	now := time.Now()
	lines := make([]string, 0, len(infos))
	for _, e := range infos {
		name := sanitize(e.Name())
		switch format {
		case listNames:
			if fi.IsDir() && p != s.cwd {
				// NLST of another directory returns paths usable as arguments.
				name = sanitize(path.Join(p, e.Name()))
			}
			lines = append(lines, name)
		case listFacts:
			lines = append(lines, s.facts(e)+" "+name)
		default:
			lines = append(lines, longLine(e, now, name))
		}
	}
	return lines, nil
}

// renamed overrides the name of a FileInfo (a symlink's target shown under the link's name).
type renamed struct {
	os.FileInfo
	name string
}

func (r renamed) Name() string { return r.name }

// longLine formats one "ls -l" line. Owner and group are fixed: the FTP user owns everything it sees.
func longLine(fi os.FileInfo, now time.Time, name string) string {
	perm := []byte("-rwxrwxrwx")
	if fi.IsDir() {
		perm[0] = 'd'
	}
	m := fi.Mode().Perm()
	for i := 0; i < 9; i++ {
		if m&(1<<uint(8-i)) == 0 {
			perm[i+1] = '-'
		}
	}
	t := fi.ModTime().UTC()
	var ts string
	if t.After(now.AddDate(0, -6, 0)) && t.Before(now.Add(time.Hour)) {
		ts = t.Format("Jan _2 15:04")
	} else {
		ts = t.Format("Jan _2  2006")
	}
	return fmt.Sprintf("%s 1 ftp ftp %13d %s %s", perm, fi.Size(), ts, name)
}

// facts formats the RFC 3659 facts of fi, ending with ";".
func (s *session) facts(fi os.FileInfo) string {
	ro := s.user != nil && s.user.ReadOnly
	mod := fi.ModTime().UTC().Format(timeFormat)
	if fi.IsDir() {
		perm := "el"
		if !ro {
			perm = "cdeflmp"
		}
		return fmt.Sprintf("type=dir;modify=%s;perm=%s;", mod, perm)
	}
	perm := "r"
	if !ro {
		perm = "adfrw"
	}
	return fmt.Sprintf("type=file;size=%d;modify=%s;perm=%s;", fi.Size(), mod, perm)
}
