package sftpfront

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/s3ftp/s3ftp/ftpfront"
	"golang.org/x/crypto/ssh"
)

func withProxyFrom(cidr string) serverOpt {
	return func(s *testSetup) {
		s.opts.ProxyProtocolFrom = []netip.Prefix{netip.MustParsePrefix(cidr)}
		s.opts.ProxyHeaderTimeout = 500 * time.Millisecond
	}
}

// headerV1 and headerV2 write IPv4 PROXY headers by hand.
func headerV1(src netip.AddrPort) []byte {
	return fmt.Appendf(nil, "PROXY TCP4 %s 192.0.2.1 %d 22\r\n", src.Addr(), src.Port())
}

func headerV2(src netip.AddrPort) []byte {
	b := append([]byte("\r\n\r\n\x00\r\nQUIT\n"), 0x21, 0x11, 0, 12)
	s, d := src.Addr().As4(), [4]byte{192, 0, 2, 1}
	b = append(append(b, s[:]...), d[:]...)
	b = binary.BigEndian.AppendUint16(b, src.Port())
	return binary.BigEndian.AppendUint16(b, 22)
}

// dialProxied opens an SSH connection as u that starts with header; it returns the error of the handshake.
func (s *testServer) dialProxied(u testUser, header []byte, password string) (*ssh.Client, error) {
	s.t.Helper()
	nc, err := net.DialTimeout("tcp", "127.0.0.1:"+s.port, 5*time.Second)
	if err != nil {
		s.t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := nc.Write(header); err != nil {
		s.t.Fatal(err)
	}
	cc, chans, reqs, err := ssh.NewClientConn(nc, nc.RemoteAddr().String(), &ssh.ClientConfig{
		User: u.name, Auth: []ssh.AuthMethod{ssh.Password(password)}, HostKeyCallback: s.hostKeyCallback(),
	})
	if err != nil {
		nc.Close()
		return nil, err
	}
	nc.SetDeadline(time.Time{})
	c := ssh.NewClient(cc, chans, reqs)
	s.t.Cleanup(func() { c.Close() })
	return c, nil
}

// ips returns the IP of every audit event named ev.
func (r *recorder) ips(ev string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		if e.Event == ev {
			out = append(out, e.IP)
		}
	}
	return out
}

// A trusted balancer's v1 or v2 header makes its source the SFTP client's address in the audit log.
func TestProxyHeaderSFTP(t *testing.T) {
	s := newTestServer(t, withProxyFrom("127.0.0.1/32"))
	for _, h := range [][]byte{headerV1(netip.MustParseAddrPort("203.0.113.8:5000")), headerV2(netip.MustParseAddrPort("203.0.113.9:5000"))} {
		c, err := s.dialProxied(alice, h, alice.password)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(s.audit.ips("disconnect")) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := strings.Join(s.audit.ips("login_ok"), ","); got != "203.0.113.8,203.0.113.9" {
		t.Fatalf("login_ok audited from %s", got)
	}
	if got := strings.Join(s.audit.ips("connect"), ","); got != "203.0.113.8,203.0.113.9" {
		t.Fatalf("connect audited from %s", got)
	}
}

// Failed logins ban the client behind the balancer, not the balancer: another client of it still logs in.
func TestProxyBanSFTP(t *testing.T) {
	s := newTestServer(t, withProxyFrom("127.0.0.1/32"), withAccess(func(c *ftpfront.AccessConfig) {
		c.BanAfter, c.BanWindow, c.BanFor = 2, time.Minute, time.Minute
	}))
	mallory := netip.MustParseAddrPort("198.51.100.66:1000")
	for i := 0; i < 2; i++ {
		if _, err := s.dialProxied(alice, headerV2(mallory), "guess"); err == nil {
			t.Fatal("wrong password logged in")
		}
	}
	if !s.access.Banned(mallory.Addr()) || s.access.Banned(netip.MustParseAddr("127.0.0.1")) {
		t.Fatalf("banned: mallory %v, balancer %v", s.access.Banned(mallory.Addr()), s.access.Banned(netip.MustParseAddr("127.0.0.1")))
	}
	if _, err := s.dialProxied(alice, headerV2(mallory), alice.password); err == nil {
		t.Fatal("banned client logged in")
	}
	c, err := s.dialProxied(alice, headerV1(netip.MustParseAddrPort("198.51.100.77:1000")), alice.password)
	if err != nil {
		t.Fatalf("another client of the balancer: %v", err)
	}
	c.Close()
}

// A header from an untrusted address ends the connection after the server's version line; a trusted
// balancer's connection without a header gets nothing and is closed.
func TestProxyRefusedSFTP(t *testing.T) {
	for _, tc := range []struct {
		name, from string
		send       []byte
		wantBanner bool
	}{
		{"untrusted v1", "127.0.0.2/32", headerV1(netip.MustParseAddrPort("203.0.113.1:1")), true},
		{"untrusted v2", "127.0.0.2/32", headerV2(netip.MustParseAddrPort("203.0.113.1:1")), true},
		{"trusted without header", "127.0.0.1/32", []byte("SSH-2.0-OpenSSH_9.6\r\n"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t, withProxyFrom(tc.from))
			nc, err := net.DialTimeout("tcp", "127.0.0.1:"+s.port, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(5 * time.Second))
			nc.Write(tc.send)
			got, err := io.ReadAll(bufio.NewReader(nc))
			if errors.Is(err, syscall.ECONNRESET) { // closed with the rest of the header unread
				err = nil
			}
			if err != nil {
				t.Fatalf("connection not closed: %v (read %q)", err, got)
			}
			if hasBanner := strings.HasPrefix(string(got), "SSH-2.0-"); hasBanner != tc.wantBanner || strings.Count(string(got), "\n") > 1 {
				t.Fatalf("server sent %q", got)
			}
			if n := len(s.audit.ips("login_ok")); n != 0 {
				t.Fatalf("%d logins", n)
			}
			for _, ip := range s.audit.ips("connect") {
				if ip != "127.0.0.1" {
					t.Fatalf("connect audited from %s", ip)
				}
			}
		})
	}
}
