package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/s3ftp/s3ftp/internal/logbuf"
)

// Loopback addresses of the haproxy test: the clients, haproxy's source toward ftpfront, ftpfront itself.
// haproxy's frontends listen on 127.0.0.1.
const (
	hapClient  = "127.0.0.2"
	hapClient2 = "127.0.0.5"
	hapSource  = "127.0.0.3"
	hapBackend = "127.0.0.4"
	hapProbe   = "127.0.0.6"
)

// freeRange returns n consecutive ports free on 127.0.0.1 and on hapBackend.
func freeRange(t *testing.T, n int) int {
	t.Helper()
	// Below the ephemeral range (32768 and up), so no outgoing connection takes a port between the check and use.
	for base := 10000 + os.Getpid()%20000; base < 32768-n; base += n {
		ok := true
		var lns []net.Listener
		for p := base; p < base+n && ok; p++ {
			for _, host := range []string{"127.0.0.1", hapBackend} {
				ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
				if err != nil {
					ok = false
					break
				}
				lns = append(lns, ln)
			}
		}
		for _, ln := range lns {
			ln.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free port range")
	return 0
}

// curlFTP runs curl from the local address from against url as dave with password, with extra arguments.
func curlFTP(from, url, password string, stdin []byte, extra ...string) ([]byte, error) {
	args := append([]string{"--silent", "--show-error", "--ssl-reqd", "--insecure", "--max-time", "30",
		"--interface", from, "--user", "dave:" + password}, extra...)
	cmd := exec.Command("curl", append(args, url)...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("curl %s: %v: %s", url, err, stderr.String())
	}
	return out, nil
}

// auditIPs returns the set of "event ip" pairs of the audit log.
func auditIPs(t *testing.T, path string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var e struct{ Event, IP string }
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		out[e.Event+" "+e.IP] = true
	}
	return out
}

// A real haproxy in front of ftpfront, with send-proxy (v1) and send-proxy-v2 on the control port and the
// passive range, driven by curl over explicit FTPS with EPSV: the audit log records the client's address
// (never haproxy's), the data connections through haproxy pass the peer check by their header, and failed
// logins of one client ban that client only while another client of the same haproxy goes on.
func TestHAProxySendProxy(t *testing.T) {
	hap, err := exec.LookPath("haproxy")
	if err != nil {
		t.Fatal("haproxy not found: install it (apt-get install -y haproxy, or scripts/setup-test-deps.sh)")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl not found: install it (scripts/setup-test-deps.sh)")
	}
	for _, mode := range []string{"send-proxy", "send-proxy-v2"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			root := filepath.Join(dir, "root")
			if err := os.MkdirAll(root, 0o755); err != nil {
				t.Fatal(err)
			}
			users := filepath.Join(dir, "users.yaml")
			writeUsers(t, users, hashes(t, "dave"), "dave")
			audit := filepath.Join(dir, "audit.log")
			lo := freeRange(t, 9)
			ctl, plo, phi := lo, lo+1, lo+8
			d := startDaemon(t, "--root", root, "--users", users, "--tls-self-signed",
				"--listen", net.JoinHostPort(hapBackend, "0"), "--passive-ports", fmt.Sprintf("%d-%d", plo, phi),
				"--public-host", "127.0.0.1", "--proxy-protocol-from", hapSource+"/32", "--proxy-protocol-data",
				"--audit-log", audit, "--fail-delay", "10ms", "--ban-after", "2", "--log-level", "debug")
			backend := d.addrs["explicit"]
			if backend == "" {
				t.Fatalf("no explicit address in the ready file: %v", d.addrs)
			}
			cfg := fmt.Sprintf(`defaults
	mode tcp
	timeout connect 5s
	timeout client 1m
	timeout server 1m

frontend ftp_control
	bind 127.0.0.1:%[1]d
	default_backend ftp_control
backend ftp_control
	source %[2]s
	server a %[3]s %[4]s

frontend ftp_passive
	bind 127.0.0.1:%[5]d-%[6]d
	default_backend ftp_passive
backend ftp_passive
	source %[2]s
	server a %[7]s %[4]s
`, ctl, hapSource, backend, mode, plo, phi, hapBackend)
			cfgFile := filepath.Join(dir, "haproxy.cfg")
			if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(hap, "-c", "-q", "-f", cfgFile).CombinedOutput(); err != nil {
				t.Fatalf("haproxy -c: %v: %s", err, out)
			}
			hlogs := &logbuf.Buffer{}
			hp := exec.Command(hap, "-db", "-f", cfgFile)
			hp.Stdout, hp.Stderr = hlogs, hlogs
			if err := hp.Start(); err != nil {
				t.Fatal(err)
			}
			hexited := make(chan error, 1)
			go func() { hexited <- hp.Wait() }()
			t.Cleanup(func() {
				hp.Process.Kill()
				<-hexited
			})
			front := fmt.Sprintf("127.0.0.1:%d", ctl)
			deadline := time.Now().Add(10 * time.Second)
			for {
				// The probe connects from hapProbe: haproxy passes it on with that address.
				dl := net.Dialer{Timeout: time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(hapProbe)}}
				c, err := dl.Dial("tcp", front)
				if err == nil {
					c.Close()
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("haproxy not listening on %s: %v\n%s", front, err, hlogs.String())
				}
				time.Sleep(50 * time.Millisecond)
			}

			data := []byte("through the balancer, " + mode + "\n")
			url := "ftp://" + front + "/"
			if _, err := curlFTP(hapClient, url+"up.txt", "dave-pw", data, "-T", "-"); err != nil {
				t.Fatalf("%v\nftpfront:\n%s", err, d.logs.String())
			}
			got, err := curlFTP(hapClient, url+"up.txt", "dave-pw", nil)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("download %q, %v", got, err)
			}
			if b, err := os.ReadFile(filepath.Join(root, "up.txt")); err != nil || !bytes.Equal(b, data) {
				t.Fatalf("stored %q, %v", b, err)
			}

			// Another client of the same haproxy guesses dave's password until it is banned.
			for i := 0; i < 2; i++ {
				if _, err := curlFTP(hapClient2, url, "guess", nil); err == nil {
					t.Fatal("a wrong password listed the directory")
				}
			}
			if _, err := curlFTP(hapClient2, url, "dave-pw", nil); err == nil {
				t.Fatal("the banned client logged in")
			}
			list, err := curlFTP(hapClient, url, "dave-pw", nil, "--list-only")
			if err != nil || !strings.Contains(string(list), "up.txt") {
				t.Fatalf("the other client after the ban: %q, %v\nftpfront:\n%s", list, err, d.logs.String())
			}

			ips := auditIPs(t, audit)
			for _, want := range []string{"connect " + hapClient, "login_ok " + hapClient, "upload " + hapClient,
				"download " + hapClient, "login_failed " + hapClient2, "connect " + hapProbe} {
				if !ips[want] {
					t.Errorf("audit log lacks %q: %v", want, ips)
				}
			}
			for k := range ips {
				if strings.HasSuffix(k, " "+hapSource) {
					t.Errorf("audit event %q names the balancer", k)
				}
			}
			if len(d.logs.Matching("passive data connection from foreign address refused")) > 0 {
				t.Errorf("a data connection through haproxy was refused:\n%s", d.logs.String())
			}
			if len(d.logs.Matching("ip="+hapClient2)) == 0 || len(d.logs.Matching("proxy="+hapSource)) == 0 {
				t.Errorf("log lines lack ip=%s or proxy=%s:\n%s", hapClient2, hapSource, d.logs.String())
			}
			d.stop()
		})
	}
}
