package journal

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// ErrLocked is returned by Open when another process holds the journal: a daemon of the same mount still runs.
var ErrLocked = errors.New("journal is in use by another process")

// compactSlack is how many lines beyond twice the live records an append tolerates before it compacts.
const compactSlack = 256

// maxLine bounds one line when reading (an S3 key is at most 1024 bytes, quoted at most 4 times that).
const maxLine = 64 << 10

// Record is one upload listed in the journal, or one deferred delete (Delete: the object Key at ETag is to be
// deleted; see AddDelete).
type Record struct {
	UploadID string // the upload's ID; for a deferred delete, the record's own ID
	Key      string
	Delete   bool
	ETag     string // a deferred delete's version
}

// deletePrefix starts the ID of a deferred delete's record. Upload IDs never hold a NUL byte.
const deletePrefix = "\x00delete\x00"

// deleteID returns the record ID of the deferred delete of key at etag.
func deleteID(key, etag string) string { return deletePrefix + etag + "\x00" + key }

// record returns the Record of id and key.
func record(id, key string) Record {
	rest, ok := strings.CutPrefix(id, deletePrefix)
	if !ok {
		return Record{UploadID: id, Key: key}
	}
	etag, _, _ := strings.Cut(rest, "\x00")
	return Record{UploadID: id, Key: key, Delete: true, ETag: etag}
}

// FileName is the journal's file name for one mount: "uploads-" and 16 hex digits of a SHA-256 over the
// endpoint ("" for AWS), bucket, prefix and mount point.
func FileName(endpoint, bucket, prefix, mountpoint string) string {
	h := sha256.New()
	for _, s := range []string{endpoint, bucket, prefix, mountpoint} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return "uploads-" + hex.EncodeToString(h.Sum(nil)[:8]) + ".journal"
}

// Journal is the open, locked journal of one mount. See the package documentation.
type Journal struct {
	path   string
	header string // first line, without "# " and newline

	mu sync.Mutex
	// guarded by mu:
	f       *os.File          // open for appending, flock'd; nil after Close
	pending map[string]string // upload ID -> key
	order   []string          // upload IDs in the order they were added; may hold removed IDs
	lines   int               // record lines in the file
	skipped int               // unreadable lines found by Open

	// syncData and syncDir make a record and a rename durable: unix.Fdatasync and a directory fsync in
	// production; tests count the calls and inject failures. Called with mu held.
	syncData func(*os.File) error
	syncDir  func(dir string) error
}

// Open opens (creating it if needed, mode 0600) and locks the journal at path, reads its records and compacts
// it. header names the mount in the file's first line, for a human reading it. Open fails with an error
// wrapping ErrLocked when another process holds the journal.
func Open(path, header string) (*Journal, error) {
	j := &Journal{path: path, header: oneLine(header), pending: map[string]string{},
		syncData: fdatasync, syncDir: fsyncDir}
	f, err := openLocked(path)
	if err != nil {
		return nil, err
	}
	j.f = f
	if err := j.read(); err != nil {
		f.Close()
		return nil, fmt.Errorf("journal %s: %w", path, err)
	}
	if err := j.compactLocked(); err != nil {
		j.f.Close()
		return nil, err
	}
	return j, nil
}

// openLocked opens path and takes its exclusive lock without waiting. It retries when the path was renamed over
// or removed between the open and the lock, so the file it returns is the one path names.
func openLocked(path string) (*os.File, error) {
	for range 100 {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return nil, fmt.Errorf("journal: %w", err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, fmt.Errorf("journal %s: %w", path, ErrLocked)
			}
			return nil, fmt.Errorf("journal %s: lock: %w", path, err)
		}
		if same, err := names(path, f); err != nil {
			f.Close()
			return nil, fmt.Errorf("journal %s: %w", path, err)
		} else if same {
			return f, nil
		}
		f.Close() // compacted or removed by the previous holder: lock the file the path names now
	}
	return nil, fmt.Errorf("journal %s: the file keeps being replaced while it is locked", path)
}

// names reports whether path still names the open file f.
func names(path string, f *os.File) (bool, error) {
	fi, err := f.Stat()
	if err != nil {
		return false, err
	}
	pi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return os.SameFile(fi, pi), nil
}

// read loads the records of j.f.
func (j *Journal) read() error {
	if _, err := j.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	r := bufio.NewReaderSize(j.f, 64<<10)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			switch {
			case line[len(line)-1] != '\n':
				j.skipped++ // torn last append
			case len(line) > maxLine:
				j.skipped++
			default:
				if !j.apply(string(bytes.TrimSuffix(line, []byte("\n")))) {
					j.skipped++
				}
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// apply applies one line to the records; it reports whether the line was well-formed.
func (j *Journal) apply(line string) bool {
	if line == "" || strings.HasPrefix(line, "#") {
		return true
	}
	op, rest, ok := strings.Cut(line, " ")
	if !ok {
		return false
	}
	id, rest, ok := unquote(rest)
	if !ok || id == "" {
		return false
	}
	switch op {
	case "+":
		key, rest, ok := unquote(strings.TrimPrefix(rest, " "))
		if !ok || rest != "" {
			return false
		}
		j.addRecord(id, key)
	case "-":
		if rest != "" {
			return false
		}
		delete(j.pending, id)
	default:
		return false
	}
	return true
}

// unquote reads one Go-quoted string at the start of s and returns it with the rest of s.
func unquote(s string) (v, rest string, ok bool) {
	q, err := strconv.QuotedPrefix(s)
	if err != nil {
		return "", "", false
	}
	v, err = strconv.Unquote(q)
	if err != nil {
		return "", "", false
	}
	return v, s[len(q):], true
}

func (j *Journal) addRecord(id, key string) {
	if _, ok := j.pending[id]; !ok {
		j.order = append(j.order, id)
	}
	j.pending[id] = key
}

// Path returns the journal's file name.
func (j *Journal) Path() string { return j.path }

// Skipped returns the number of lines Open could not read (a torn last append, damaged lines).
func (j *Journal) Skipped() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.skipped
}

// Pending returns the uploads listed, oldest first.
func (j *Journal) Pending() []Record {
	j.mu.Lock()
	defer j.mu.Unlock()
	recs := make([]Record, 0, len(j.pending))
	for _, id := range j.order {
		if key, ok := j.pending[id]; ok {
			recs = append(recs, record(id, key))
		}
	}
	return recs
}

// Add records that the upload uploadID of key was created and syncs the record to the disk. When the sync
// fails, the upload stays listed (the record is written, only its durability is in doubt) and the error says so.
func (j *Journal) Add(key, uploadID string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return fmt.Errorf("journal %s: closed", j.path)
	}
	if err := j.appendLocked("+ " + strconv.Quote(uploadID) + " " + strconv.Quote(key) + "\n"); err != nil {
		return err
	}
	j.addRecord(uploadID, key)
	if err := j.syncData(j.f); err != nil {
		// The line is in the page cache: only a power loss before the kernel writes it can lose it.
		return fmt.Errorf("journal %s: sync: %w", j.path, err)
	}
	return nil
}

// AddDelete records that the object key, at version etag, is to be deleted later (a file unlinked while
// open for reading, deleted at its last close), and returns the record's ID for Remove. Synced as Add is.
func (j *Journal) AddDelete(key, etag string) (string, error) {
	id := deleteID(key, etag)
	return id, j.Add(key, id)
}

// Remove records that the upload uploadID was completed or aborted (or that a deferred delete was done). Removing an upload that is not listed does
// nothing.
func (j *Journal) Remove(uploadID string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, ok := j.pending[uploadID]; !ok {
		return nil
	}
	if j.f == nil {
		return fmt.Errorf("journal %s: closed", j.path)
	}
	delete(j.pending, uploadID)
	if err := j.appendLocked("- " + strconv.Quote(uploadID) + "\n"); err != nil {
		// Not recorded: the next start will try to abort an upload that is gone, which S3 answers NoSuchUpload.
		return err
	}
	if j.lines > 2*len(j.pending)+compactSlack {
		return j.compactLocked()
	}
	return nil
}

// appendLocked appends one line with a single write.
func (j *Journal) appendLocked(line string) error {
	if _, err := j.f.WriteString(line); err != nil {
		return fmt.Errorf("journal %s: append: %w", j.path, err)
	}
	j.lines++
	return nil
}

// compactLocked replaces the file by one holding only the live records (see the package documentation).
func (j *Journal) compactLocked() error {
	var b strings.Builder
	if j.header != "" {
		b.WriteString("# " + j.header + "\n")
	}
	live := j.order[:0]
	for _, id := range j.order {
		if key, ok := j.pending[id]; ok {
			live = append(live, id)
			b.WriteString("+ " + strconv.Quote(id) + " " + strconv.Quote(key) + "\n")
		}
	}
	j.order = live
	tmp := j.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("journal %s: compact: %w", j.path, err)
	}
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("journal %s: compact: %w", j.path, err)
	}
	// Locked before it takes the journal's name, so no other process can lock the new file in between.
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return fail(err)
	}
	if _, err := f.WriteString(b.String()); err != nil {
		return fail(err)
	}
	// Synced before the rename, so that after a power loss the name leads to the whole new content or to
	// the old file, never to an empty one.
	if err := j.syncData(f); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, j.path); err != nil {
		return fail(err)
	}
	j.f.Close()
	j.f = f
	j.lines = len(live)
	if err := j.syncDir(filepath.Dir(j.path)); err != nil {
		return fmt.Errorf("journal %s: compact: sync directory: %w", j.path, err)
	}
	return nil
}

// fdatasync flushes f's data (and the size, which appends change) to the disk.
func fdatasync(f *os.File) error {
	for {
		err := unix.Fdatasync(int(f.Fd()))
		if err != unix.EINTR {
			return err
		}
	}
}

// fsyncDir flushes the directory dir, so that a rename or creation in it survives a power loss.
func fsyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Close compacts the journal and releases it; the file is removed when no upload is listed. The records stay
// readable through Pending.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return nil
	}
	var err error
	if len(j.pending) == 0 {
		// Removed while locked: a process waiting on this file sees that the path no longer names it.
		if rerr := os.Remove(j.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = fmt.Errorf("journal %s: remove: %w", j.path, rerr)
		}
	} else if j.lines > len(j.pending) {
		err = j.compactLocked()
	}
	if cerr := j.f.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("journal %s: close: %w", j.path, cerr)
	}
	j.f = nil
	return err
}

// oneLine makes s fit the comment line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// PathIn creates the state directory dir (mode 0700) if needed and returns the path of one mount's journal in it.
func PathIn(dir, endpoint, bucket, prefix, mountpoint string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("state directory: %w", err)
	}
	return filepath.Join(dir, FileName(endpoint, bucket, prefix, mountpoint)), nil
}
