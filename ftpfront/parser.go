package ftpfront

import (
	"bufio"
	"errors"
	"io"
)

// MaxLineLength is the longest control line (without CRLF) the server accepts. Longer lines are discarded as
// they arrive, never buffered, and answered with 500.
const MaxLineLength = 4096

// Command is one parsed control-connection line.
type Command struct {
	// Verb is the command name in upper case: three or four ASCII letters, and up to three digits after them
	// (extensions such as XSHA256).
	Verb string
	// Arg is everything after the single space that follows the verb, unchanged (file names may contain or
	// end with spaces). It never contains CR, LF or NUL.
	Arg string
}

var (
	errSyntax      = errors.New("syntax error")
	errLineTooLong = errors.New("command line too long")
)

// ParseCommand parses one control line. The line may end in CRLF or LF. Leading Telnet IAC sequences (which
// clients send before ABOR as "interrupt process" and "data mark") are skipped. A verb that is not three or four
// letters (and up to three digits after them), or a line containing NUL or a bare CR, is a syntax error.
func ParseCommand(line []byte) (Command, error) {
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
	}
	for len(line) >= 2 && line[0] == 0xFF {
		line = line[2:]
	}
	if len(line) > 0 && line[0] == 0xF2 { // a lone Telnet data mark left after urgent data
		line = line[1:]
	}
	for _, c := range line {
		if c == 0 || c == '\r' || c == '\n' {
			return Command{}, errSyntax
		}
	}
	i := 0
	for i < len(line) && line[i] != ' ' {
		i++
	}
	verb := make([]byte, i)
	letters, digits := 0, 0
	for j := 0; j < i; j++ {
		c := line[j]
		switch {
		case c >= 'A' && c <= 'Z' && digits == 0:
			letters++
		case c >= 'a' && c <= 'z' && digits == 0:
			c -= 'a' - 'A'
			letters++
		case c >= '0' && c <= '9' && letters > 0:
			digits++
		default:
			return Command{}, errSyntax
		}
		verb[j] = c
	}
	if letters < 3 || letters > 4 || digits > 3 {
		return Command{}, errSyntax
	}
	var arg string
	if i < len(line) {
		arg = string(line[i+1:])
	}
	return Command{Verb: string(verb), Arg: arg}, nil
}

// lineReader reads control lines of at most MaxLineLength bytes. An over-long line is consumed up to its LF
// without being kept and reported as errLineTooLong. A partial line survives a read error (a deadline), so the
// caller may retry.
type lineReader struct {
	r          *bufio.Reader
	buf        []byte
	discarding bool
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, 4096)}
}

// readLine returns the next line including its LF. The returned slice is valid until the next call.
func (l *lineReader) readLine() ([]byte, error) {
	if !l.discarding && len(l.buf) > 0 && l.buf[len(l.buf)-1] == '\n' {
		l.buf = l.buf[:0]
	}
	for {
		b, err := l.r.ReadByte()
		if err != nil {
			return nil, err
		}
		if l.discarding {
			if b == '\n' {
				l.discarding = false
				l.buf = l.buf[:0]
				return nil, errLineTooLong
			}
			continue
		}
		if b != '\n' && len(l.buf) >= MaxLineLength+1 { // +1 leaves room for the CR of CRLF
			l.discarding = true
			l.buf = l.buf[:0]
			continue
		}
		l.buf = append(l.buf, b)
		if b == '\n' {
			return l.buf, nil
		}
	}
}

// buffered reports how many bytes were read from the connection but not yet returned as lines.
func (l *lineReader) buffered() int {
	n := l.r.Buffered()
	if len(l.buf) > 0 && l.buf[len(l.buf)-1] != '\n' {
		n += len(l.buf)
	}
	return n
}
