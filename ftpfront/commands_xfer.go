package ftpfront

import (
	"context"
	"errors"
	"io"
	"os"
	"strconv"
	"time"
)

// File transfers: RETR STOR APPE REST ABOR (RFC 959, RFC 3659 REST STREAM).
var xferCommands = map[string]commandSpec{
	"RETR": {fn: cmdRETR, needLogin: true, needArg: true},
	"STOR": {fn: cmdSTOR, needLogin: true, needArg: true},
	"APPE": {fn: cmdAPPE, needLogin: true, needArg: true},
	"REST": {fn: cmdREST, needLogin: true, needArg: true},
	"ABOR": {fn: cmdABOR, duringTransfer: true},
}

func cmdREST(s *session, cmd Command, _ cmdState) bool {
	n, err := strconv.ParseInt(cmd.Arg, 10, 64)
	if err != nil || n < 0 {
		s.reply(501, "Bad REST offset")
		return true
	}
	s.rest = n
	s.reply(350, "Restarting at "+cmd.Arg+". Send STOR or RETR")
	return true
}

func cmdABOR(s *session, _ Command, _ cmdState) bool {
	if s.abortTransfer() {
		s.reply(226, "ABOR successful")
		return true
	}
	s.dropData()
	s.reply(225, "No transfer to abort")
	return true
}

// dataReady checks the data-protection policy and that PASV/EPSV/PORT/EPRT armed a data connection.
func (s *session) dataReady() bool {
	if !s.protP && !s.srv.opts.AllowPlain {
		s.reply(521, "Data connections must be protected: send PBSZ 0 and PROT P")
		return false
	}
	if s.data == nil {
		s.reply(425, "Use PASV or EPSV first")
		return false
	}
	return true
}

func cmdRETR(s *session, cmd Command, st cmdState) bool {
	p := s.abs(cmd.Arg)
	if !s.dataReady() {
		return true
	}
	f, err := s.fs.Open(p)
	if err != nil {
		if errors.Is(err, ErrStorageUnavailable) {
			s.audit(Event{Event: "download", Path: p, Result: err.Error()})
		}
		s.fsError("retr", p, err)
		return true
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		f.Close()
		s.reply(550, "Not a regular file")
		return true
	}
	if err == nil && st.rest > 0 {
		_, err = f.Seek(st.rest, io.SeekStart)
	}
	if err != nil {
		f.Close()
		s.fsError("retr", p, err)
		return true
	}
	ascii := s.ascii
	s.startTransfer("RETR", p, func(ctx context.Context, t *transfer, d dataOpener) {
		defer f.Close()
		conn, ok := s.openData(ctx, t, d, p, func() {
			s.audit(Event{Event: "download", Path: p, Duration: time.Since(t.started), Result: "no data connection"})
		})
		if !ok {
			return
		}
		var dst io.Writer = conn
		if ascii {
			dst = &crlfWriter{w: conn}
		}
		n, fileErr, dataErr := copyData(dst, f, conn, s.srv.opts.DataTimeout, t)
		if dataErr == nil {
			dataErr = conn.Close()
		} else {
			conn.Close()
		}
		ev := Event{Event: "download", Path: p, Bytes: n, Duration: time.Since(t.started)}
		switch {
		case t.aborted.Load():
			ev.Result = "aborted"
			s.reply(426, "Connection closed; transfer aborted")
		case fileErr != nil:
			ev.Result = fileErr.Error()
			s.log.Warn("download read failed", "path", p, "err", fileErr)
			s.reply(451, "Local error in processing, transfer aborted")
		case dataErr != nil:
			ev.Result = dataErr.Error()
			s.log.Info("download data connection failed", "path", p, "err", dataErr)
			s.reply(426, "Data connection error, transfer aborted")
		default:
			s.reply(226, "Transfer complete")
		}
		s.audit(ev)
	})
	return true
}

func cmdSTOR(s *session, cmd Command, st cmdState) bool {
	if st.rest > 0 {
		return s.store(s.abs(cmd.Arg), os.O_WRONLY|os.O_CREATE, st.rest, false)
	}
	return s.store(s.abs(cmd.Arg), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0, true)
}

func cmdAPPE(s *session, cmd Command, _ cmdState) bool {
	return s.store(s.abs(cmd.Arg), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0, false)
}

// store runs STOR/APPE. A plain STOR that fails (file write or close error, data connection error, ABOR)
// removes the partial file, before closing it when the transfer failed (so the mount stores nothing); APPE and REST+STOR leave the file as far as it was written, since removing it
// would destroy data the client had before.
func (s *session) store(p string, flag int, offset int64, removeOnFail bool) bool {
	if !s.dataReady() {
		return true
	}
	if fi, err := s.fs.Stat(p); err == nil && fi.IsDir() {
		s.reply(550, "Is a directory")
		return true
	}
	f, err := s.fs.OpenFile(p, flag, 0o644)
	if err != nil {
		if errors.Is(err, ErrStorageUnavailable) {
			s.audit(Event{Event: "upload", Path: p, Result: err.Error()})
		}
		s.fsError("stor", p, err)
		return true
	}
	if flag&os.O_TRUNC != 0 {
		// Truncate the handle as well: a FUSE file system that misses O_TRUNC in its open flags (the kernel
		// passes it there instead of a separate setattr) still sees an explicit ftruncate(0).
		if err := f.Truncate(0); err != nil {
			f.Close()
			s.audit(Event{Event: "upload", Path: p, Result: err.Error()})
			s.fsError("stor", p, err)
			return true
		}
	}
	if offset > 0 {
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			f.Close()
			s.audit(Event{Event: "upload", Path: p, Result: err.Error()})
			s.fsError("stor", p, err)
			return true
		}
	}
	ascii := s.ascii
	verb := "STOR"
	if flag&os.O_APPEND != 0 {
		verb = "APPE"
	}
	s.startTransfer(verb, p, func(ctx context.Context, t *transfer, d dataOpener) {
		// drop removes a plain STOR's partial file. It runs before the close where it can: on the mount, a file
		// unlinked while open is never stored, so a failed upload leaves no partial object behind at all.
		dropped := false
		drop := func() {
			if !removeOnFail || dropped {
				return
			}
			dropped = true
			if err := s.fs.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				s.log.Warn("removing partial upload failed", "path", p, "err", err)
			}
		}
		fail := func(result string) {
			drop()
			s.audit(Event{Event: "upload", Path: p, Bytes: t.bytes.Load(), Duration: time.Since(t.started), Result: result})
		}
		closed := false // f was closed: the upload's outcome is decided
		defer func() {
			if !closed {
				// A panic (startTransfer answers 451): the upload failed; a plain STOR's partial file goes.
				drop()
				f.Close()
				fail("internal error")
			}
		}()
		conn, ok := s.openData(ctx, t, d, p, func() {
			closed = true
			drop()
			f.Close()
			fail("no data connection")
		})
		if !ok {
			return
		}
		var dst io.Writer = f
		var lf *lfWriter
		if ascii {
			lf = &lfWriter{w: f}
			dst = lf
		}
		_, dataErr, fileErr := copyData(dst, conn, conn, s.srv.opts.DataTimeout, t)
		if dataErr == nil && fileErr == nil && truncated(conn) {
			dataErr = errTruncated
		}
		conn.Close()
		if fileErr == nil && lf != nil {
			fileErr = lf.flush()
		}
		if t.aborted.Load() || dataErr != nil {
			drop() // the transfer failed whatever the close says
		}
		// On a streaming backend Close is where the upload succeeds or fails (the mount completes the S3 upload).
		closed = true
		closeErr := f.Close()
		if fileErr == nil {
			fileErr = closeErr
		}
		switch {
		case t.aborted.Load():
			fail("aborted")
			s.reply(426, "Connection closed; transfer aborted")
		case dataErr != nil:
			s.log.Info("upload data connection failed", "path", p, "err", dataErr)
			fail(dataErr.Error())
			s.reply(426, "Data connection error, transfer aborted")
		case fileErr != nil:
			s.log.Warn("upload write failed", "path", p, "err", fileErr)
			fail(fileErr.Error())
			s.reply(451, "Local error in processing, upload failed")
		default:
			ev := Event{Event: "upload", Path: p, Bytes: t.bytes.Load(), Duration: time.Since(t.started)}
			if c, ok := s.fs.(Checksummer); ok {
				ev.SHA256, _ = c.Checksum(p, "SHA-256") // "" when the mount stored none
			}
			s.audit(ev)
			s.reply(226, "Transfer complete")
		}
	})
	return true
}

// crlfWriter converts LF to CRLF (TYPE A downloads). A CR already in front of the LF is kept as is.
type crlfWriter struct {
	w      io.Writer
	lastCR bool
	buf    []byte
}

func (c *crlfWriter) Write(p []byte) (int, error) {
	c.buf = c.buf[:0]
	for _, b := range p {
		if b == '\n' && !c.lastCR {
			c.buf = append(c.buf, '\r')
		}
		c.buf = append(c.buf, b)
		c.lastCR = b == '\r'
	}
	if _, err := c.w.Write(c.buf); err != nil {
		return 0, err
	}
	return len(p), nil
}

// lfWriter converts CRLF to LF (TYPE A uploads); a CR not followed by LF is kept.
type lfWriter struct {
	w         io.Writer
	pendingCR bool
	buf       []byte
}

func (l *lfWriter) Write(p []byte) (int, error) {
	l.buf = l.buf[:0]
	for _, b := range p {
		if l.pendingCR {
			l.pendingCR = false
			if b != '\n' {
				l.buf = append(l.buf, '\r')
			}
		}
		if b == '\r' {
			l.pendingCR = true
			continue
		}
		l.buf = append(l.buf, b)
	}
	if _, err := l.w.Write(l.buf); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (l *lfWriter) flush() error {
	if l.pendingCR {
		l.pendingCR = false
		_, err := l.w.Write([]byte{'\r'})
		return err
	}
	return nil
}
