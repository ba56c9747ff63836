package scaletest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"

	"github.com/s3ftp/s3ftp/ftpfront"
	"github.com/s3ftp/s3ftp/internal/miniotest"
	"github.com/s3ftp/s3ftp/s3client"
)

// The port plan: one control port on the balancer, and one passive range per host, forwarded to that host only.
// ftpfront on a host announces the balancer's address with a port of its own range, so the range tells which
// host a session landed on. noAllow* belong to an extra ftpfront on host A started without
// --passive-allow-cidr.
const (
	ctlPort        = 2121
	healthPort     = 8080
	noAllowCtlPort = 2122
	s3Port         = 9000
	statTTL        = time.Second
	user           = "scale"
)

var portPlan = map[string][2]int{"a": {40000, 40049}, "b": {40050, 40099}, "noallow": {40100, 40109}}

// hostOfPort names the host whose passive range holds port, or "".
func hostOfPort(port int) string {
	for h, r := range portPlan {
		if port >= r[0] && port <= r[1] {
			return h
		}
	}
	return ""
}

// host is one "machine" of the deployment: s3mount and ftpfront in one network namespace.
type host struct {
	name     string
	mnt      string
	s3mount  *daemon
	ftpfront *daemon
}

// deployment is the running system: MinIO, the topology, two hosts and haproxy.
type deployment struct {
	tp        *topology
	dir       string
	bucket    string
	s3        s3client.Client
	password  string
	hosts     map[string]*host
	noAllow   *daemon
	haproxy   *daemon
	statsSock string
}

// deploy starts everything; t.Cleanup stops it in reverse order (daemons, mounts, relay, namespaces, MinIO).
func deploy(t *testing.T) *deployment {
	requireTools(t)
	minio := miniotest.Start(t)
	bucket := minio.NewBucket(t)
	d := &deployment{dir: t.TempDir(), bucket: bucket, s3: minio.Client(t, bucket), hosts: map[string]*host{}}
	d.tp = newTopology(t)
	minioAddr := strings.TrimPrefix(minio.Endpoint, "http://")
	startRelay(t, fmt.Sprintf("%s:%d", d.tp.rootIP(), s3Port), minioAddr)

	mntParent, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", mountDirMarker, os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	// Registered before any mount, so it runs after every daemon's cleanup: a mount left by a killed s3mount is
	// detached before its directory is removed.
	t.Cleanup(func() {
		for _, h := range d.hosts {
			if isMounted(h.mnt) {
				if err := syscall.Unmount(h.mnt, syscall.MNT_DETACH); err != nil {
					t.Errorf("unmount %s: %v", h.mnt, err)
				}
			}
		}
		removeTestDir(t, mntParent)
	})

	pw := make([]byte, 12)
	rand.Read(pw)
	d.password = hex.EncodeToString(pw)
	hash, err := ftpfront.HashPassword(d.password)
	if err != nil {
		t.Fatal(err)
	}
	users := filepath.Join(d.dir, "users.yaml")
	if err := os.WriteFile(users, fmt.Appendf(nil, "users:\n  - name: %s\n    password: '%s'\n    home: /\n", user, hash), 0o600); err != nil {
		t.Fatal(err)
	}

	endpoint := fmt.Sprintf("http://%s:%d", d.tp.rootIP(), s3Port)
	for _, name := range []string{"a", "b"} {
		h := &host{name: name, mnt: filepath.Join(mntParent, "mnt-"+name)}
		if err := os.Mkdir(h.mnt, 0o755); err != nil {
			t.Fatal(err)
		}
		d.hosts[name] = h
		h.s3mount = startDaemon(t, d.dir, "s3mount-"+name, d.tp.nsPath(name), s3mountBin, []string{
			"-f", "--endpoint", endpoint, "--region", "us-east-1",
			"--stat-ttl", statTTL.String(), "--negative-ttl", statTTL.String(),
			"--state-dir", filepath.Join(d.dir, "state-"+name), // not /var/lib/s3mount: the killed daemon leaves its journal
			bucket, h.mnt,
		}, baseEnv(minio.Env()...))
	}
	for _, h := range d.hosts {
		waitUntil(t, 30*time.Second, "mount at "+h.mnt, h.s3mount, func() bool { return isMounted(h.mnt) })
	}
	for _, name := range []string{"a", "b"} {
		h := d.hosts[name]
		ip := d.tp.hostIP(name)
		h.ftpfront = d.startFTP(t, "ftpfront-"+name, name, h.mnt, users,
			"--listen", fmt.Sprintf("%s:%d", ip, ctlPort),
			"--health-addr", fmt.Sprintf("%s:%d", ip, healthPort),
			"--passive-ports", fmt.Sprintf("%d-%d", portPlan[name][0], portPlan[name][1]),
			"--public-host", d.tp.vip().String(),
			"--passive-allow-cidr", d.tp.lbDataSrc().String()+"/32")
	}
	d.noAllow = d.startFTP(t, "ftpfront-a-noallow", "a", d.hosts["a"].mnt, users,
		"--listen", fmt.Sprintf("%s:%d", d.tp.hostIP("a"), noAllowCtlPort),
		"--passive-ports", fmt.Sprintf("%d-%d", portPlan["noallow"][0], portPlan["noallow"][1]),
		"--public-host", d.tp.vip().String(),
		"--data-accept-timeout", "3s")

	d.startHAProxy(t)
	waitUntil(t, 30*time.Second, "both hosts UP in haproxy", d.haproxy, func() bool {
		st := d.serverStatus()
		return st["a"] == "UP" && st["b"] == "UP"
	})
	return d
}

// startFTP starts an ftpfront in host's namespace serving root and waits for its ready file.
func (d *deployment) startFTP(t *testing.T, name, hostName, root, users string, args ...string) *daemon {
	t.Helper()
	ready := filepath.Join(d.dir, name+".ready")
	args = append([]string{"--root", root, "--users", users, "--tls-self-signed", "--ready-file", ready,
		"--fail-delay", "0s"}, args...)
	p := startDaemon(t, d.dir, name, d.tp.nsPath(hostName), ftpfrontBin, args, baseEnv())
	waitUntil(t, 30*time.Second, name+" ready file", p, func() bool {
		b, err := os.ReadFile(ready)
		return err == nil && len(b) > 0
	})
	return p
}

// haproxyConfig is the balancer's configuration: round-robin control port with an HTTP health check of each
// host's /healthz, one passive range per host. Control and data backends connect from different balancer
// addresses, as the nodes of a multi-node balancer (or an NLB with IP targets) do: the hosts then see a
// session's data connection come from another address than its control connection.
func (d *deployment) haproxyConfig() string {
	tp := d.tp
	var b strings.Builder
	fmt.Fprintf(&b, `global
	stats socket %s mode 600 level admin
	log stdout format raw local0 info

defaults
	mode tcp
	log global
	option tcplog
	timeout connect 5s
	timeout client 2m
	timeout server 2m

frontend ftp_control
	bind %s:%d
	default_backend ftp_control

backend ftp_control
	balance roundrobin
	source %s
	option httpchk
	http-check send meth GET uri /healthz
	http-check expect status 200
	default-server check port %d inter 500ms fall 2 rise 2
	server a %s:%d
	server b %s:%d
`, d.statsSock, tp.vip(), ctlPort, tp.lbCtlSrc(), healthPort, tp.hostIP("a"), ctlPort, tp.hostIP("b"), ctlPort)
	for _, h := range []string{"a", "b"} {
		fmt.Fprintf(&b, `
frontend ftp_passive_%[1]s
	bind %[2]s:%[3]d-%[4]d
	default_backend ftp_passive_%[1]s

backend ftp_passive_%[1]s
	source %[5]s
	server %[1]s %[6]s
`, h, tp.vip(), portPlan[h][0], portPlan[h][1], tp.lbDataSrc(), tp.hostIP(h))
	}
	fmt.Fprintf(&b, `
frontend ftp_control_noallow
	bind %[1]s:%[2]d
	default_backend ftp_control_noallow

backend ftp_control_noallow
	source %[3]s
	server a %[4]s:%[2]d

frontend ftp_passive_noallow
	bind %[1]s:%[5]d-%[6]d
	default_backend ftp_passive_noallow

backend ftp_passive_noallow
	source %[7]s
	server a %[4]s
`, tp.vip(), noAllowCtlPort, tp.lbCtlSrc(), tp.hostIP("a"), portPlan["noallow"][0], portPlan["noallow"][1], tp.lbDataSrc())
	return b.String()
}

// startHAProxy writes the configuration, checks it and runs haproxy in the lb namespace.
func (d *deployment) startHAProxy(t *testing.T) {
	t.Helper()
	d.statsSock = filepath.Join(d.dir, "haproxy.sock")
	cfg := filepath.Join(d.dir, "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(d.haproxyConfig()), 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, haproxyBin, "-c", "-q", "-f", cfg)
	d.haproxy = startDaemon(t, d.dir, "haproxy", d.tp.nsPath("lb"), haproxyBin, []string{"-db", "-f", cfg}, baseEnv())
	waitUntil(t, 10*time.Second, "haproxy stats socket", d.haproxy, func() bool {
		c, err := net.Dial("unix", d.statsSock)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// serverStatus returns haproxy's view ("UP", "DOWN", ...) of each server of the ftp_control backend.
func (d *deployment) serverStatus() map[string]string {
	c, err := net.Dial("unix", d.statsSock)
	if err != nil {
		return nil
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "show stat\n"); err != nil {
		return nil
	}
	st := map[string]string{}
	sc := bufio.NewScanner(c)
	statusCol := -1
	for sc.Scan() {
		line := sc.Text()
		if header, ok := strings.CutPrefix(line, "# "); ok {
			statusCol = slices.Index(strings.Split(header, ","), "status")
			continue
		}
		f := strings.Split(line, ",")
		if statusCol >= 0 && len(f) > statusCol && f[0] == "ftp_control" && (f[1] == "a" || f[1] == "b") {
			st[f[1]] = f[statusCol]
		}
	}
	return st
}

// session is one FTPS session through the balancer; servedBy names the host whose passive range the data
// connections went to.
type session struct {
	*ftp.ServerConn
	mu    sync.Mutex
	ports []int // ports of the data connections dialled so far
}

// dial logs in through the balancer's control port (ctl) over explicit TLS, with PASV (not EPSV), so the
// announced --public-host is what the client connects to.
func (d *deployment) dial(ctl int) (*session, error) {
	s := &session{}
	dialer := net.Dialer{Timeout: 10 * time.Second, Control: func(_, address string, _ syscall.RawConn) error {
		if _, p, err := net.SplitHostPort(address); err == nil {
			if n, _ := strconv.Atoi(p); n != ctl {
				s.mu.Lock()
				s.ports = append(s.ports, n)
				s.mu.Unlock()
			}
		}
		return nil
	}}
	c, err := ftp.Dial(fmt.Sprintf("%s:%d", d.tp.vip(), ctl),
		ftp.DialWithDialer(dialer),
		ftp.DialWithExplicitTLS(&tls.Config{InsecureSkipVerify: true, ClientSessionCache: tls.NewLRUClientSessionCache(4)}),
		ftp.DialWithDisabledEPSV(true),
	)
	if err != nil {
		return nil, err
	}
	if err := c.Login(user, d.password); err != nil {
		c.Quit()
		return nil, err
	}
	s.ServerConn = c
	return s, nil
}

// servedBy returns the host all of this session's data connections went to, failing the test when they went
// nowhere or to different hosts.
func (s *session) servedBy(t testing.TB) string {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ports) == 0 {
		t.Fatal("session opened no data connection")
	}
	h := hostOfPort(s.ports[0])
	for _, p := range s.ports {
		if hostOfPort(p) != h || h == "" {
			t.Fatalf("data connections to ports %v: not one host's range of %v", s.ports, portPlan)
		}
	}
	return h
}

// upload stores data as name in a new session and returns the host that served it.
func (d *deployment) upload(t testing.TB, name string, data []byte) string {
	t.Helper()
	s, err := d.dial(ctlPort)
	if err != nil {
		t.Fatalf("login through the balancer: %v", err)
	}
	defer s.Quit()
	if err := s.Stor(name, bytes.NewReader(data)); err != nil {
		t.Fatalf("STOR %s: %v", name, err)
	}
	return s.servedBy(t)
}

// download reads name in a new session and returns its bytes and the host that served it.
func (d *deployment) download(t testing.TB, name string) ([]byte, string) {
	t.Helper()
	s, err := d.dial(ctlPort)
	if err != nil {
		t.Fatalf("login through the balancer: %v", err)
	}
	defer s.Quit()
	r, err := s.Retr(name)
	if err != nil {
		t.Fatalf("RETR %s: %v", name, err)
	}
	got, err := io.ReadAll(r)
	if cerr := r.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("RETR %s: reading: %v", name, err)
	}
	return got, s.servedBy(t)
}

// objects lists the bucket's keys under prefix with their sizes.
func (d *deployment) objects(t testing.TB, prefix string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	token := ""
	for {
		page, err := d.s3.List(context.Background(), prefix, "", token, 1000)
		if err != nil {
			t.Fatalf("list %q: %v", prefix, err)
		}
		for _, o := range page.Objects {
			out[o.Key] = o.Size
		}
		if token = page.NextToken; token == "" {
			return out
		}
	}
}

// objectBytes reads a whole object.
func (d *deployment) objectBytes(t testing.TB, key string) []byte {
	t.Helper()
	rc, _, err := d.s3.GetObject(context.Background(), key, 0, -1, "")
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	return b
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// healthz fetches a host's /healthz directly (from the root namespace) and returns the status code.
func (d *deployment) healthz(h string) int {
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://%s:%d/healthz", d.tp.hostIP(h), healthPort))
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestScaleOut runs two ftpfront+s3mount hosts over one bucket behind haproxy and checks, in order, that
// sessions are spread over both hosts and uploads land once, that every host's mount sees every upload, that
// downloads from either host are byte-identical, that --passive-allow-cidr is what lets the balancer's data
// connections in, and that a host failing its health check is drained while uploads keep succeeding.
func TestScaleOut(t *testing.T) {
	d := deploy(t)
	files := map[string][]byte{
		"scale-small.bin":  randomBytes(t, 100<<10),
		"scale-multi.bin":  randomBytes(t, 6<<20+7),
		"scale-empty.bin":  {},
		"scale-second.bin": randomBytes(t, 1<<20+3),
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range files {
			if !yield(n) {
				return
			}
		}
	})

	// Uploads through the balancer land once: one object per upload with the uploaded bytes, nothing else
	// under the prefix, no unfinished multipart upload; round-robin sent sessions to both hosts.
	uploaded := t.Run("UploadsLandOnce", func(t *testing.T) {
		served := map[string]int{}
		for _, n := range names {
			served[d.upload(t, n, files[n])]++
		}
		if served["a"] == 0 || served["b"] == 0 {
			t.Fatalf("round robin over %d uploads served by %v; want both hosts", len(names), served)
		}
		got := d.objects(t, "scale-")
		if len(got) != len(files) {
			t.Fatalf("bucket holds %v under scale-; want exactly %d objects", got, len(files))
		}
		for n, data := range files {
			if size, ok := got[n]; !ok || size != int64(len(data)) {
				t.Fatalf("object %s: size %d (present %v); want %d", n, size, ok, len(data))
			}
			if !bytes.Equal(d.objectBytes(t, n), data) {
				t.Fatalf("object %s: bytes differ from the upload", n)
			}
		}
		ups, err := d.s3.ListMultipartUploads(context.Background(), "")
		if err != nil || len(ups) != 0 {
			t.Fatalf("unfinished multipart uploads %v (err %v); want none", ups, err)
		}
	})

	// Every host's mount shows every upload, whichever host took it, once the stat TTL has passed.
	t.Run("VisibleOnEveryMount", func(t *testing.T) {
		if !uploaded {
			t.Fatal("needs the files of UploadsLandOnce, which failed")
		}
		for _, h := range []string{"a", "b"} {
			for _, n := range names {
				p := filepath.Join(d.hosts[h].mnt, n)
				waitUntil(t, 10*statTTL+5*time.Second, fmt.Sprintf("%s with the uploaded bytes on host %s", n, h), nil, func() bool {
					b, err := os.ReadFile(p)
					return err == nil && bytes.Equal(b, files[n])
				})
			}
		}
	})

	// Downloads through the balancer are byte-identical whichever host serves them.
	t.Run("DownloadsFromEitherHost", func(t *testing.T) {
		if !uploaded {
			t.Fatal("needs the files of UploadsLandOnce, which failed")
		}
		for _, n := range names {
			seen := map[string]bool{}
			for i := 0; i < 6 && !(seen["a"] && seen["b"]); i++ {
				got, h := d.download(t, n)
				if !bytes.Equal(got, files[n]) {
					t.Fatalf("RETR %s from host %s: %d bytes differing from the %d uploaded", n, h, len(got), len(files[n]))
				}
				seen[h] = true
			}
			if !seen["a"] || !seen["b"] {
				t.Fatalf("6 downloads of %s were served by %v only; round robin should reach both hosts", n, seen)
			}
		}
		// curl uses EPSV: the data connection goes to the balancer's address of the control connection.
		n := "scale-multi.bin"
		out, err := exec.Command(curlBin, "--silent", "--show-error", "--ssl-reqd", "--insecure", "--max-time", "60",
			"--user", user+":"+d.password, fmt.Sprintf("ftp://%s:%d/%s", d.tp.vip(), ctlPort, n)).Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("curl EPSV download of %s through the balancer: %v: %s", n, err, stderr)
		}
		if !bytes.Equal(out, files[n]) {
			t.Fatalf("curl EPSV download of %s: %d bytes differing from the %d uploaded", n, len(out), len(files[n]))
		}
	})

	// The balancer's data connections come from its data address, not from the address the control connection
	// came from: without --passive-allow-cidr ftpfront refuses them (and says so), and the upload fails.
	t.Run("PassiveAllowCIDRNeeded", func(t *testing.T) {
		s, err := d.dial(noAllowCtlPort)
		if err != nil {
			t.Fatalf("login through the balancer to the ftpfront without --passive-allow-cidr: %v", err)
		}
		defer s.Quit()
		err = s.Stor("scale-refused.bin", bytes.NewReader([]byte("refused")))
		if err == nil {
			t.Fatal("STOR succeeded although ftpfront has no --passive-allow-cidr for the balancer's data address")
		}
		want := "passive data connection from foreign address refused"
		wantFrom := "from=" + d.tp.lbDataSrc().String()
		waitUntil(t, 10*time.Second, fmt.Sprintf("log line %q with %s", want, wantFrom), d.noAllow, func() bool {
			for _, line := range strings.Split(d.noAllow.log(), "\n") {
				if strings.Contains(line, want) && strings.Contains(line, wantFrom) {
					return true
				}
			}
			return false
		})
		t.Logf("STOR without --passive-allow-cidr: %v", err)
		if _, ok := d.objects(t, "scale-refused")["scale-refused.bin"]; ok {
			t.Fatal("the refused upload created an object")
		}
	})

	// A host whose mount dies fails its health check; haproxy drains it and new sessions all go to the other
	// host, where uploads still succeed and land in the bucket.
	t.Run("HealthCheckDrain", func(t *testing.T) {
		d.hosts["a"].s3mount.kill()
		waitUntil(t, 20*time.Second, "host a DOWN in haproxy", d.haproxy, func() bool { return d.serverStatus()["a"] == "DOWN" })
		if code := d.healthz("a"); code != http.StatusServiceUnavailable {
			t.Fatalf("host a /healthz answered %d with its mount dead; want 503", code)
		}
		if st := d.serverStatus(); st["b"] != "UP" {
			t.Fatalf("haproxy server states %v; want b UP", st)
		}
		// A client that reaches host a without the balancer is refused with 451 (ftpfront's mount guard), and
		// nothing lands in the local directory under a's mount point.
		direct, err := ftp.Dial(fmt.Sprintf("%s:%d", d.tp.hostIP("a"), ctlPort), ftp.DialWithTimeout(10*time.Second),
			ftp.DialWithExplicitTLS(&tls.Config{InsecureSkipVerify: true}))
		if err != nil {
			t.Fatalf("dial host a directly: %v", err)
		}
		defer direct.Quit()
		if err := direct.Login(user, d.password); err != nil {
			t.Fatalf("login to host a directly: %v", err)
		}
		var te *textproto.Error
		if err := direct.Stor("scale-direct-a.bin", bytes.NewReader(randomBytes(t, 4096))); !errors.As(err, &te) || te.Code != 451 {
			t.Fatalf("STOR straight to host a with its mount down: %v; want 451", err)
		}
		if ents, err := os.ReadDir(d.hosts["a"].mnt); err != nil || len(ents) != 0 {
			t.Fatalf("local directory under host a's mount point: %v entries, %v; want none", len(ents), err)
		}
		for i := 0; i < 4; i++ {
			n := fmt.Sprintf("scale-drained-%d.bin", i)
			data := randomBytes(t, 64<<10+i)
			if h := d.upload(t, n, data); h != "b" {
				t.Fatalf("upload %d after draining a was served by host %q; want b", i, h)
			}
			if !bytes.Equal(d.objectBytes(t, n), data) {
				t.Fatalf("object %s: bytes differ from the upload", n)
			}
		}
		if got := d.objects(t, "scale-drained-"); len(got) != 4 {
			t.Fatalf("bucket holds %v under scale-drained-; want 4 objects", got)
		}
	})
}
