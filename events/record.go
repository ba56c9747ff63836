package events

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"time"

	"github.com/s3ftp/s3ftp/ftpfront"
)

// Event kinds: the Kind of a Record.
const (
	KindUploadCompleted = "upload_completed"
	KindUploadFailed    = "upload_failed"
	KindDownload        = "download"
	KindDelete          = "delete"
	KindRename          = "rename"
	KindMkdir           = "mkdir"
)

// Kinds lists every event kind, in the order the package doc describes them.
var Kinds = []string{KindUploadCompleted, KindUploadFailed, KindDownload, KindDelete, KindRename, KindMkdir}

// SchemaVersion is the Version of the records this package writes.
const SchemaVersion = 1

// Record is one event as journaled and delivered: its JSON encoding (one line in the journal) is the body every
// sink receives, byte for byte.
type Record struct {
	// Version is SchemaVersion.
	Version int `json:"version"`
	// ID is unique per event and stays the same across every delivery attempt and restart: receivers deduplicate
	// on it (delivery is at least once). 32 hex digits: the journaling time in nanoseconds, then 64 random bits.
	ID string `json:"id"`
	// Kind is one of Kinds.
	Kind string `json:"kind"`
	// Time is when the operation finished, UTC.
	Time time.Time `json:"time"`
	// Protocol is "ftps", "ftp" or "sftp".
	Protocol string `json:"protocol"`
	// User is the login name.
	User string `json:"user"`
	// ClientAddr is the client's IP address.
	ClientAddr string `json:"client_addr"`
	// Session is the front's session id (the audit log's "session").
	Session string `json:"session,omitempty"`
	// Path is the virtual path, as the user sees it ("/" is the user's home).
	Path string `json:"path"`
	// To is a rename's target (virtual path).
	To string `json:"to,omitempty"`
	// Size is the bytes transferred (uploads and downloads; 0 otherwise).
	Size int64 `json:"size"`
	// DurationMS is how long the transfer took, in milliseconds.
	DurationMS int64 `json:"duration_ms"`
	// Result is "ok" or "failed".
	Result string `json:"result"`
	// Reason is why the operation failed ("aborted", an error text); empty when Result is "ok".
	Reason string `json:"reason,omitempty"`
	// SHA256 is a completed upload's SHA-256 in hex, as the mount stored it (s3mount --checksums --xattr);
	// omitted when there is none.
	SHA256 string `json:"sha256,omitempty"`
}

// FromAudit turns an audit event into a Record without an ID, or reports false when the audit event is not one of
// the finished operations events cover (connect, logins, rmdir, disconnect).
func FromAudit(e ftpfront.Event) (Record, bool) {
	r := Record{
		Version:    SchemaVersion,
		Time:       e.Time.UTC(),
		Protocol:   e.Protocol,
		User:       e.User,
		ClientAddr: e.IP,
		Session:    e.Session,
		Path:       e.Path,
		To:         e.To,
		Size:       e.Bytes,
		SHA256:     e.SHA256,
		DurationMS: e.Duration.Milliseconds(),
		Result:     "ok",
	}
	if r.Time.IsZero() {
		r.Time = time.Now().UTC()
	}
	if e.Result != "" && e.Result != "ok" {
		r.Result, r.Reason = "failed", e.Result
	}
	switch e.Event {
	case "upload":
		r.Kind = KindUploadCompleted
		if r.Result != "ok" {
			r.Kind = KindUploadFailed
		}
	case "download", "delete", "rename", "mkdir":
		r.Kind = e.Event
	default:
		return Record{}, false
	}
	return r, true
}

// newID returns a Record ID: 8 bytes of now in nanoseconds and 8 random bytes, hex-encoded.
func newID(now time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixNano()))
	rand.Read(b[8:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}
