package ftpfront

import (
	"context"
	"net/netip"
	"time"
)

// User is an authenticated FTP account.
type User struct {
	// Name is the login name.
	Name string
	// Home is the user's jail: an absolute local path every file operation of the session is confined to.
	Home string
	// ReadOnly users get 550 on every command that would change the file system.
	ReadOnly bool

	// account is the users-file entry Access.Login found, for Access.AccountValid; nil for Users made elsewhere.
	account *dbUser
}

// Authenticator checks a login. The session calls it on PASS, with the name given to USER.
//
// Login returns the user, or an error when the login is refused (unknown or blocked name, wrong password, banned
// address). Implementations apply the failed-login delay themselves, honouring ctx, and never say why a login
// failed in the error text sent to the client: the session always answers "530 Login incorrect".
type Authenticator interface {
	Login(ctx context.Context, ip netip.Addr, name, password string) (*User, error)
}

// AccountChecker is an optional interface of an Authenticator whose accounts can change while sessions run.
//
// A logged-in session calls AccountValid with the User that Login returned before each command, once no transfer
// is running (a transfer in progress is never cut). False means the account was removed or changed: the session
// answers "421 Account removed or changed, closing control connection" and ends; the client may log in again and
// gets the account as it is now. Without it, a session keeps the account it logged in with until it ends.
// AccountValid is called once per command, so it must be cheap and safe for concurrent use.
type AccountChecker interface {
	AccountValid(u *User) bool
}

// Admitter decides whether a new control connection may start.
//
// Admit is called on accept. It returns a release function that the server calls exactly once when the connection
// ends, or an error (banned address, too many connections in total or from that address), in which case the
// server answers "421" with the error's text and closes the connection.
type Admitter interface {
	Admit(ip netip.Addr) (release func(), err error)
}

// Event is one audit record: one JSON line in the audit log.
type Event struct {
	Time     time.Time     `json:"time"`
	Session  string        `json:"session"`
	Protocol string        `json:"protocol,omitempty"` // "ftps" (TLS on the control connection), "ftp" or "sftp"; set by the front
	Event    string        `json:"event"`              // connect, login_ok, login_failed, upload, download, delete, rename, mkdir, rmdir, disconnect
	User     string        `json:"user,omitempty"`
	IP       string        `json:"ip"`
	Path     string        `json:"path,omitempty"` // as the user sees it: relative to the user's home, starting with "/"
	To       string        `json:"to,omitempty"`   // rename target
	Bytes    int64         `json:"bytes,omitempty"`
	SHA256   string        `json:"sha256,omitempty"` // a completed upload's, when the file system stored one (Checksummer)
	Duration time.Duration `json:"duration_ns,omitempty"`
	Result   string        `json:"result"` // "ok" or the error's text
}

// Auditor records audit events. Record must be safe for concurrent use and must not block for long.
//
// The fronts call Record for a finished operation (upload, download, delete, rename, mkdir, rmdir) before they
// answer the client (226 and 250 over FTPS, the status reply over SFTP), so an Auditor that returns only once
// the event is durable (package events fsyncs its journal) makes the answer mean "recorded".
type Auditor interface {
	Record(Event)
}
