package sftpfront

// SCP: the legacy protocol that `scp -O` (and OpenSSH's scp before 9.0) speaks, run by an exec request whose
// command is scp with its flags. The client runs "scp -t PATH" to upload (this side is the sink) and
// "scp -f PATH..." to download (this side is the source). There is no shell: the command is split into words
// as a shell would split it (quotes and backslashes), and any other command, or one with shell operators,
// is refused.
//
// Wire protocol. Each side answers a line with one byte: 0 (ok), or 1 followed by a message and "\n" (an error
// for this file; the transfer goes on), or 2 and a message (fatal).
//
//	sink (-t), the client sends             source (-f), the client receives
//	server: 0 (ready)                       client: 0 (ready)
//	client: T<mtime> 0 <atime> 0 (-p)       server: T line (-p)                client: 0
//	client: C<mode> <size> <name>           server: C line                     client: 0
//	server: 0 (file open) or 1 message      server: <size bytes>, then 0       client: 0
//	client: <size bytes>, then 0
//	server: 0 once the file is closed, or 1 message
//	client: D<mode> 0 <name> ... E (-r)     server: D line ... E (-r)          client: 0 to each
//
// Uploads follow the SFTP rules: the data is written in order (it arrives in order), the file's close error is
// the upload's outcome and reaches the client as an scp error, and a failed upload removes its file. -p sets
// the mode (Chmod) and times (Chtimes) after the close, where the mount stores them with the object.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/s3ftp/s3ftp/ftpfront"
	"github.com/spf13/afero"
	"golang.org/x/crypto/ssh"
)

// scpMaxLine bounds a control line (a file name is at most 255 bytes on the mount); scpMaxDepth bounds the
// directory depth of a recursive transfer, which a symbolic link loop inside the home would otherwise make
// endless.
const (
	scpMaxLine  = 4096
	scpMaxDepth = 64
)

// scpCommand is a parsed scp command line.
type scpCommand struct {
	sink      bool // -t: the client sends files; otherwise -f: it receives them
	recursive bool // -r
	preserve  bool // -p
	targetDir bool // -d: the target must be a directory
	paths     []string
}

// parseSCP parses an exec request's command. It accepts exactly "scp", the flags -t or -f (one of them), -r, -p,
// -d and -v (grouped or not), an optional "--", and paths: one for -t, at least one for -f.
func parseSCP(command string) (scpCommand, error) {
	words, err := shellWords(command)
	if err != nil {
		return scpCommand{}, err
	}
	if len(words) == 0 || words[0] != "scp" {
		return scpCommand{}, errors.New("not an scp command")
	}
	var c scpCommand
	var to, from bool
	i := 1
	for ; i < len(words); i++ {
		w := words[i]
		if w == "--" {
			i++
			break
		}
		if len(w) < 2 || w[0] != '-' {
			break
		}
		for _, r := range w[1:] {
			switch r {
			case 't':
				to = true
			case 'f':
				from = true
			case 'r':
				c.recursive = true
			case 'p':
				c.preserve = true
			case 'd':
				c.targetDir = true
			case 'v':
			default:
				return scpCommand{}, fmt.Errorf("unsupported scp flag -%c", r)
			}
		}
	}
	if to == from {
		return scpCommand{}, errors.New("scp needs one of -t and -f")
	}
	c.sink = to
	c.paths = words[i:]
	switch {
	case len(c.paths) == 0:
		return scpCommand{}, errors.New("scp without a path")
	case c.sink && len(c.paths) != 1:
		return scpCommand{}, errors.New("scp -t with more than one target")
	}
	return c, nil
}

// shellWords splits s into words as a POSIX shell does without expanding anything: blanks separate words,
// single quotes keep everything, double quotes keep everything but backslash escapes of \ " $ `, and a
// backslash outside quotes keeps the next character. Unquoted shell operators and expansions (; & | < > ( ) $ `
// and newline) and wildcards (* ? [) are refused: no shell runs, so they would not do what the client meant.
func shellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == ' ' || ch == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case ch == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated quote")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case ch == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\\\"$`", s[i+1]) >= 0 {
					i++
				} else if s[i] == '$' || s[i] == '`' {
					return nil, errors.New("shell expansion not supported")
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, errors.New("unterminated quote")
			}
			inWord = true
		case ch == '\\':
			if i+1 >= len(s) {
				return nil, errors.New("trailing backslash")
			}
			i++
			cur.WriteByte(s[i])
			inWord = true
		case strings.IndexByte(";&|<>()$`\n\r*?[", ch) >= 0:
			return nil, fmt.Errorf("shell character %q not supported", ch)
		default:
			cur.WriteByte(ch)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// scpPath maps a path of the command line to a virtual path: relative paths and "~/" start at the home.
func scpPath(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		p = p[1:]
	}
	return path.Clean("/" + p)
}

// errSCPFatal ends a transfer: the connection failed, the peer broke the protocol or sent a fatal error.
var errSCPFatal = errors.New("scp: transfer ended")

// scpRun is one scp command on one channel.
type scpRun struct {
	h    *handlers
	cmd  scpCommand
	r    *bufio.Reader
	w    io.Writer
	errs int // errors reported to the client
	buf  []byte
}

// serveSCP runs cmd on ch and ends it with the exit status: 0 when every file went through, 1 otherwise.
func (s *Server) serveSCP(c *conn, h *handlers, ch ssh.Channel, cmd scpCommand) {
	run := &scpRun{h: h, cmd: cmd, r: bufio.NewReaderSize(ch, 32<<10), w: ch, buf: make([]byte, 32<<10)}
	var err error
	if err = h.checkAccount(); err != nil {
		run.fail(cmd.paths[0], err)
	} else if cmd.sink {
		err = run.sink()
	} else {
		err = run.source()
	}
	status := uint32(0)
	if err != nil || run.errs > 0 {
		status = 1
	}
	if err != nil && !errors.Is(err, io.EOF) {
		c.log.Debug("scp: ended", "err", err)
	}
	ch.CloseWrite()
	ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{status}))
}

// ok answers 0.
func (r *scpRun) ok() error {
	if _, err := r.w.Write([]byte{0}); err != nil {
		return fmt.Errorf("%w: %v", errSCPFatal, err)
	}
	return nil
}

// fail reports err for the virtual path p to the client (1 and a message naming no real path) and counts it.
// It returns the write error, if any.
func (r *scpRun) fail(p string, err error) error {
	r.errs++
	msg := strings.TrimPrefix(toStatus(r.h.log(), "scp", p, err).Error(), "failure: ")
	if p != "" {
		msg = p + ": " + msg
	}
	if _, werr := fmt.Fprintf(r.w, "\x01scp: %s\n", msg); werr != nil {
		return fmt.Errorf("%w: %v", errSCPFatal, werr)
	}
	return nil
}

// protocolError reports a broken protocol and ends the transfer.
func (r *scpRun) protocolError(what string) error {
	r.errs++
	fmt.Fprintf(r.w, "\x02scp: protocol error: %s\n", what)
	return fmt.Errorf("%w: protocol error: %s", errSCPFatal, what)
}

// readLine reads one line without its "\n"; io.EOF when the peer ended before its first byte.
func (r *scpRun) readLine() (string, error) {
	var b []byte
	for {
		c, err := r.r.ReadByte()
		if err != nil {
			if err == io.EOF && len(b) == 0 {
				return "", io.EOF
			}
			return "", fmt.Errorf("%w: %v", errSCPFatal, io.ErrUnexpectedEOF)
		}
		if c == '\n' {
			return string(b), nil
		}
		if len(b) >= scpMaxLine {
			return "", r.protocolError("line too long")
		}
		b = append(b, c)
	}
}

// errSCPSkip is the client's answer 1: it refused this file or directory; the transfer goes on.
var errSCPSkip = errors.New("scp: refused by the client")

// response reads the peer's answer: nil for 0, errSCPSkip for 1, a fatal error for 2 or a broken stream.
func (r *scpRun) response() error {
	c, err := r.r.ReadByte()
	if err != nil {
		return fmt.Errorf("%w: %v", errSCPFatal, err)
	}
	switch c {
	case 0:
		return nil
	case 1, 2:
		msg, err := r.readLine()
		if err != nil {
			return err
		}
		r.h.log().Info("scp: the client reports an error", "msg", truncate(msg, 200))
		if c == 1 {
			return errSCPSkip
		}
		return fmt.Errorf("%w: the client's fatal error", errSCPFatal)
	}
	return r.protocolError("unexpected response byte")
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// scpTimes are the times of a T line, applied to the next file or directory with -p.
type scpTimes struct{ mtime, atime time.Time }

// sink receives files into the target.
func (r *scpRun) sink() error {
	target := scpPath(r.cmd.paths[0])
	if err := r.h.denyReadOnly(); err != nil {
		r.fail(target, err)
		return nil
	}
	fi, err := r.h.fs.Stat(target)
	isDir := err == nil && fi.IsDir()
	if r.cmd.targetDir && !isDir {
		if err == nil {
			err = errNotDir
		}
		r.fail(target, err)
		return nil
	}
	if err := r.ok(); err != nil {
		return err
	}
	return r.sinkDir(target, isDir, 0)
}

// sinkDir receives the entries of one level: into target/name when targetIsDir, else into target itself. It
// returns at the E line of its level (depth > 0) or at the end of the stream (depth 0).
func (r *scpRun) sinkDir(target string, targetIsDir bool, depth int) error {
	var times *scpTimes
	for {
		line, err := r.readLine()
		if err == io.EOF && depth == 0 {
			return nil
		}
		if err != nil {
			return err
		}
		if line == "" {
			return r.protocolError("empty line")
		}
		switch line[0] {
		case 1, 2: // the client could not send a file
			r.h.log().Info("scp: the client reports an error", "msg", truncate(line[1:], 200))
			r.errs++
			if line[0] == 2 {
				return fmt.Errorf("%w: the client's fatal error", errSCPFatal)
			}
			continue
		case 'E':
			if depth == 0 {
				return r.protocolError("E outside a directory")
			}
			return r.ok()
		case 'T':
			t, err := parseSCPTimes(line[1:])
			if err != nil {
				return r.protocolError(err.Error())
			}
			times = &t
			if err := r.ok(); err != nil {
				return err
			}
			continue
		case 'C', 'D':
		default:
			return r.protocolError("unexpected line")
		}
		mode, size, name, err := parseSCPEntry(line[1:])
		if err != nil || (name == "." && line[0] == 'C') {
			return r.protocolError("unexpected file name")
		}
		p := target
		if targetIsDir {
			p = path.Join(target, name) // "." (scp -r . host:dir) is the target itself
		}
		t := times
		times = nil
		if line[0] == 'C' {
			if err := r.receiveFile(p, mode, size, t); err != nil {
				return err
			}
			continue
		}
		if !r.cmd.recursive {
			return r.protocolError("directory without -r")
		}
		if depth >= scpMaxDepth {
			r.fail(p, errors.New("directories nested too deep"))
			return fmt.Errorf("%w: too deep", errSCPFatal)
		}
		if err := r.makeDir(p); err != nil {
			r.fail(p, err) // the client sends the directory's entries anyway: nowhere to put them
			return fmt.Errorf("%w: mkdir: %v", errSCPFatal, err)
		}
		if err := r.ok(); err != nil {
			return err
		}
		if err := r.sinkDir(p, true, depth+1); err != nil {
			return err
		}
		if r.cmd.preserve {
			r.setAttrs(p, mode, t)
		}
	}
}

// makeDir makes directory p unless it is one already.
func (r *scpRun) makeDir(p string) error {
	if fi, err := r.h.fs.Stat(p); err == nil {
		if !fi.IsDir() {
			return errNotDir
		}
		return nil
	}
	err := r.h.fs.Mkdir(p, 0o755)
	r.h.sess.audit(ftpfront.Event{Event: "mkdir", Path: p, Result: result(err)})
	return err
}

// setAttrs applies -p's mode and times to p; a failure is logged, as OpenSSH's scp warns and goes on.
func (r *scpRun) setAttrs(p string, mode os.FileMode, t *scpTimes) error {
	if err := r.h.fs.Chmod(p, mode.Perm()); err != nil {
		r.h.log().Warn("scp: chmod failed", "path", p, "err", err)
		return err
	}
	if t != nil {
		if err := r.h.fs.Chtimes(p, t.atime, t.mtime); err != nil {
			r.h.log().Warn("scp: chtimes failed", "path", p, "err", err)
			return err
		}
	}
	return nil
}

// receiveFile receives one file of size bytes into p. A file that cannot be opened is refused before its
// data; a failed write, a client error or a close error removes the file and is reported after the data.
func (r *scpRun) receiveFile(p string, mode os.FileMode, size int64, t *scpTimes) error {
	started := time.Now()
	f, err := r.openUpload(p)
	if err != nil {
		r.h.sess.audit(ftpfront.Event{Event: "upload", Path: p, Result: err.Error()})
		return r.fail(p, err)
	}
	r.h.open.Add(1)
	defer r.h.open.Add(-1)
	if err := r.ok(); err != nil {
		f.Close()
		r.removePartial(p)
		return err
	}
	var written int64
	var upErr error // the upload's failure; the data is read on regardless to stay in step
	for left := size; left > 0; {
		n := int64(len(r.buf))
		if left < n {
			n = left
		}
		m, rerr := io.ReadFull(r.r, r.buf[:n])
		if upErr == nil && m > 0 {
			var w int
			w, upErr = f.Write(r.buf[:m])
			written += int64(w)
		}
		left -= int64(m)
		if rerr != nil {
			f.Close()
			r.removePartial(p)
			r.h.sess.audit(ftpfront.Event{Event: "upload", Path: p, Bytes: written, Duration: time.Since(started),
				Result: "connection lost"})
			return fmt.Errorf("%w: %v", errSCPFatal, rerr)
		}
	}
	fatal := r.response()
	if fatal == errSCPSkip {
		upErr, fatal = errors.New("the client failed reading its file"), nil
	}
	if fatal != nil && upErr == nil {
		upErr = fatal
	}
	if upErr != nil {
		r.removePartial(p) // before the close: on the mount, a file unlinked while open is never stored
	}
	cerr := f.Close()
	if upErr == nil && cerr != nil {
		upErr = cerr
		r.removePartial(p)
	}
	var attrErr error // the file is stored; only -p's attributes are missing
	if upErr == nil && r.cmd.preserve {
		attrErr = r.setAttrs(p, mode, t)
	}
	res := result(upErr)
	if upErr != nil {
		r.h.log().Warn("scp: upload failed", "path", p, "bytes", written, "err", upErr)
	}
	ev := ftpfront.Event{Event: "upload", Path: p, Bytes: written, Duration: time.Since(started), Result: res}
	if upErr == nil {
		ev.SHA256 = storedSHA256(r.h.fs, p)
	}
	r.h.sess.audit(ev)
	if fatal != nil {
		return fatal
	}
	if upErr != nil {
		return r.fail(p, upErr)
	}
	if attrErr != nil {
		return r.fail(p, attrErr)
	}
	return r.ok()
}

// openUpload opens p for a new upload, truncated as ftpfront's STOR does.
func (r *scpRun) openUpload(p string) (afero.File, error) {
	if fi, err := r.h.fs.Stat(p); err == nil && fi.IsDir() {
		return nil, errIsDir
	}
	f, err := r.h.fs.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	if err := f.Truncate(0); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// removePartial removes the file of a failed upload.
func (r *scpRun) removePartial(p string) {
	if err := r.h.fs.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		r.h.log().Warn("scp: removing partial upload failed", "path", p, "err", err)
	}
}

// parseSCPTimes parses the rest of a T line: "<mtime> <usec> <atime> <usec>".
func parseSCPTimes(s string) (scpTimes, error) {
	f := strings.Fields(s)
	if len(f) != 4 {
		return scpTimes{}, errors.New("bad T line")
	}
	var v [4]int64
	for i := range f {
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil || n < 0 || (i%2 == 1 && n >= 1e6) {
			return scpTimes{}, errors.New("bad T line")
		}
		v[i] = n
	}
	return scpTimes{mtime: time.Unix(v[0], v[1]*1000), atime: time.Unix(v[2], v[3]*1000)}, nil
}

// parseSCPEntry parses the rest of a C or D line: "<octal mode> <size> <name>". The name must be one path
// element or "." (which only a D line may carry).
func parseSCPEntry(s string) (os.FileMode, int64, string, error) {
	ms, rest, ok1 := strings.Cut(s, " ")
	ss, name, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 {
		return 0, 0, "", errors.New("bad C or D line")
	}
	mode, err := strconv.ParseUint(ms, 8, 32)
	if err != nil || mode > 0o7777 {
		return 0, 0, "", errors.New("bad mode")
	}
	size, err := strconv.ParseInt(ss, 10, 64)
	if err != nil || size < 0 {
		return 0, 0, "", errors.New("bad size")
	}
	if name == "" || name == ".." || strings.ContainsAny(name, "/\x00") {
		return 0, 0, "", errors.New("unexpected file name")
	}
	return os.FileMode(mode), size, name, nil
}

// source sends the paths of the command.
func (r *scpRun) source() error {
	if err := r.response(); err != nil { // the client's "ready"
		return err
	}
	for _, p := range r.cmd.paths {
		if err := r.send(scpPath(p), 0); err != nil {
			return err
		}
	}
	return nil
}

// send sends file or directory p; errors about p are reported and counted, and only a fatal error returns.
func (r *scpRun) send(p string, depth int) error {
	fi, err := r.h.fs.Stat(p)
	if err != nil {
		return r.fail(p, err)
	}
	name := path.Base(p)
	if p == "/" {
		name = "."
	}
	switch {
	case fi.IsDir() && !r.cmd.recursive:
		return r.fail(p, errIsDir)
	case fi.IsDir():
		if depth >= scpMaxDepth {
			return r.fail(p, errors.New("directories nested too deep"))
		}
		return r.sendDir(p, name, fi, depth)
	case fi.Mode().IsRegular():
		return r.sendFile(p, name, fi)
	}
	return r.fail(p, errors.New("not a regular file"))
}

// sendTimes sends a T line with fi's modification time (as the access time too) when -p asks for times.
func (r *scpRun) sendTimes(fi os.FileInfo) error {
	if !r.cmd.preserve {
		return nil
	}
	mt := fi.ModTime().Unix()
	if _, err := fmt.Fprintf(r.w, "T%d 0 %d 0\n", mt, mt); err != nil {
		return fmt.Errorf("%w: %v", errSCPFatal, err)
	}
	return r.response()
}

func (r *scpRun) sendDir(p, name string, fi os.FileInfo, depth int) error {
	if err := r.sendTimes(fi); err != nil {
		return skipToNil(err)
	}
	if _, err := fmt.Fprintf(r.w, "D%04o 0 %s\n", fi.Mode().Perm(), name); err != nil {
		return fmt.Errorf("%w: %v", errSCPFatal, err)
	}
	if err := r.response(); err != nil {
		return skipToNil(err)
	}
	d, err := r.h.fs.Open(p)
	if err != nil {
		r.fail(p, err)
	} else {
		// A directory is read in pieces, as SFTP's READDIR does: a large one is never held whole.
		for {
			fis, rerr := d.Readdir(256)
			for _, e := range fis {
				if err := r.send(path.Join(p, e.Name()), depth+1); err != nil {
					d.Close()
					return err
				}
			}
			if rerr != nil || len(fis) == 0 {
				if rerr != nil && rerr != io.EOF {
					r.fail(p, rerr)
				}
				break
			}
		}
		d.Close()
	}
	if _, err := io.WriteString(r.w, "E\n"); err != nil {
		return fmt.Errorf("%w: %v", errSCPFatal, err)
	}
	return skipToNil(r.response())
}

// skipToNil turns the client's refusal of one entry into nil: the transfer goes on with the next.
func skipToNil(err error) error {
	if err == errSCPSkip {
		return nil
	}
	return err
}

func (r *scpRun) sendFile(p, name string, fi os.FileInfo) error {
	f, err := r.h.fs.Open(p)
	if err != nil {
		r.h.sess.audit(ftpfront.Event{Event: "download", Path: p, Result: err.Error()})
		return r.fail(p, err)
	}
	defer f.Close()
	r.h.open.Add(1)
	defer r.h.open.Add(-1)
	started := time.Now()
	if err := r.sendTimes(fi); err != nil {
		return skipToNil(err)
	}
	size := fi.Size()
	if _, err := fmt.Fprintf(r.w, "C%04o %d %s\n", fi.Mode().Perm(), size, name); err != nil {
		return fmt.Errorf("%w: %v", errSCPFatal, err)
	}
	if err := r.response(); err != nil {
		return skipToNil(err)
	}
	// The client expects exactly size bytes: a read error pads with zeros to keep the stream in step and is
	// reported instead of the final 0.
	var sent int64
	var readErr error
	for sent < size {
		n := int64(len(r.buf))
		if size-sent < n {
			n = size - sent
		}
		m := 0
		if readErr == nil {
			m, readErr = io.ReadFull(f, r.buf[:n])
			if readErr == io.ErrUnexpectedEOF || readErr == io.EOF {
				readErr = errors.New("file shrank while being sent")
			}
		}
		clear(r.buf[m:n])
		if _, err := r.w.Write(r.buf[:n]); err != nil {
			r.h.sess.audit(ftpfront.Event{Event: "download", Path: p, Bytes: sent, Duration: time.Since(started),
				Result: "connection lost"})
			return fmt.Errorf("%w: %v", errSCPFatal, err)
		}
		sent += n
	}
	r.h.sess.audit(ftpfront.Event{Event: "download", Path: p, Bytes: sent, Duration: time.Since(started),
		Result: result(readErr)})
	if readErr != nil {
		if err := r.fail(p, readErr); err != nil {
			return err
		}
	} else if err := r.ok(); err != nil {
		return err
	}
	return skipToNil(r.response())
}
