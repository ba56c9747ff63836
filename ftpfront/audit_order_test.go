package ftpfront

import (
	"crypto/tls"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"
	"github.com/spf13/afero"
)

// slowUploadAuditor holds the Record call of every upload event for a while and notes when it returned, so a
// test can tell whether the reply waited for it.
type slowUploadAuditor struct {
	recAuditor
	hold     time.Duration
	mu       sync.Mutex
	returned time.Time
}

func (a *slowUploadAuditor) Record(e Event) {
	if e.Event == "upload" {
		time.Sleep(a.hold)
		a.mu.Lock()
		a.returned = time.Now()
		a.mu.Unlock()
	}
	a.recAuditor.Record(e)
}

// An upload's audit record is complete (Record returned) before the client gets its 226, and every event names
// the protocol: "ftps" once the control connection is under TLS, "ftp" without it.
func TestUploadAuditedBeforeReplyWithProtocol(t *testing.T) {
	for _, tc := range []struct {
		name  string
		plain bool
		want  string
	}{{"ftps", false, "ftps"}, {"plain", true, "ftp"}} {
		t.Run(tc.name, func(t *testing.T) {
			aud := &slowUploadAuditor{hold: 300 * time.Millisecond}
			ts := startServer(t, memFs(afero.NewMemMapFs()), func(o *Options, d *Deps) {
				o.AllowPlain = tc.plain
				d.Audit = aud
			})
			opts := []ftp.DialOption{ftp.DialWithTimeout(10 * time.Second)}
			if !tc.plain {
				opts = append(opts, ftp.DialWithExplicitTLS(&tls.Config{InsecureSkipVerify: true}))
			}
			c, err := ftp.Dial(ts.addr, opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Quit()
			if err := c.Login("alice", "secret"); err != nil {
				t.Fatal(err)
			}
			if err := c.Stor("a.csv", strings.NewReader("x,y\n")); err != nil {
				t.Fatal(err)
			}
			got226 := time.Now()
			aud.mu.Lock()
			returned := aud.returned
			aud.mu.Unlock()
			if returned.IsZero() || returned.After(got226) {
				t.Fatalf("226 at %v, upload Record returned at %v: the reply did not wait for the audit", got226, returned)
			}
			ups := aud.find("upload", "/a.csv")
			if len(ups) != 1 || ups[0].Protocol != tc.want || ups[0].Result != "ok" || ups[0].Bytes != 4 {
				t.Fatalf("upload events %+v, want one ok event of 4 bytes with protocol %q", ups, tc.want)
			}
			if lo := aud.find("login_ok", ""); len(lo) != 1 || lo[0].Protocol != tc.want {
				t.Fatalf("login events %+v, want protocol %q", lo, tc.want)
			}
		})
	}
}
