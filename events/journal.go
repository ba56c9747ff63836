package events

// Files in Options.Dir:
//
//	journal.jsonl        one Record per line, appended and fsynced by Record; rewritten by compaction
//	acked-NAME.ids       per sink, the IDs it acknowledged (delivered or dead-lettered), one per line, fsynced
//	dead-letter.jsonl    one deadLetter per line, fsynced
//
// Compaction writes a new journal of the records some sink still owes to journal.jsonl.tmp, fsyncs it, renames it
// over the journal and fsyncs the directory; then it rewrites each ack file the same way with only the IDs of
// records still in the journal. A crash between the steps leaves ack lines for records no longer in the journal,
// which loading ignores.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

const (
	journalName    = "journal.jsonl"
	deadLetterName = "dead-letter.jsonl"
)

func ackName(sink string) string { return "acked-" + sink + ".ids" }

// journalLine is one record read back from the journal: the decoded record and its exact bytes.
type journalLine struct {
	rec  Record
	line []byte
}

// readJournal returns the records in the journal file at p and the length of its valid prefix. A last line
// without its newline or that does not decode is a record whose Record call never returned (a crash during the
// append): it is not returned, and the caller truncates the file to the valid prefix. A bad line in the middle
// is skipped and counted in bad.
func readJournal(p string) (lines []journalLine, valid int64, bad int, err error) {
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, 0, nil
	}
	if err != nil {
		return nil, 0, 0, err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var off int64
	for {
		b, err := br.ReadBytes('\n')
		if err == io.EOF {
			return lines, valid, bad, nil // b (if any) is a torn last line
		}
		if err != nil {
			return nil, 0, 0, err
		}
		off += int64(len(b))
		line := bytes.TrimSuffix(b, []byte("\n"))
		var r Record
		if json.Unmarshal(line, &r) != nil || r.ID == "" {
			bad++
			continue
		}
		valid = off
		lines = append(lines, journalLine{rec: r, line: line})
	}
}

// readAcks returns the set of IDs in the ack file at p; a torn last line is ignored.
func readAcks(p string) (map[string]bool, error) {
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]bool{}, nil
	}
	if err != nil {
		return nil, err
	}
	acks := map[string]bool{}
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			break
		}
		acks[string(b[:i])] = true
		b = b[i+1:]
	}
	return acks, nil
}

// replaceFile writes lines (each followed by a newline) to p atomically: a temporary file, fsync, rename, fsync of
// the directory. It returns the new file opened for appending.
func replaceFile(p string, lines [][]byte) (*os.File, error) {
	tmp := p + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	w := bufio.NewWriter(f)
	for _, l := range lines {
		w.Write(l)
		w.WriteByte('\n')
	}
	err = w.Flush()
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err == nil {
		err = syncDir(filepath.Dir(p))
	}
	if err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("rewriting %s: %w", p, err)
	}
	return openAppend(p)
}

// openAppend opens p for appending, creating it.
func openAppend(p string) (*os.File, error) {
	return os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
}

// appendSync appends line and a newline to f in one write and fsyncs it.
func appendSync(f *os.File, line []byte) error {
	buf := make([]byte, 0, len(line)+1)
	buf = append(append(buf, line...), '\n')
	if _, err := f.Write(buf); err != nil {
		return err
	}
	return f.Sync()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
