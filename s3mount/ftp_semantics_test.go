package s3mount_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/textproto"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/jlaffaye/ftp"
	"golang.org/x/sys/unix"

	"github.com/s3ftp/s3ftp/ftpfront"
	"github.com/s3ftp/s3ftp/s3mount"
	"github.com/s3ftp/s3ftp/s3mount/mounttest"
)

// vsftpdMountOptions are the options of a mount served by vsftpd, which runs anonymous sessions as the user
// ftp: the mount lets other users in (AllowOther). Its root stays owned by root with mode 0755, because vsftpd
// refuses to chroot into a directory its session user may write; the mount does not check permissions
// (DefaultPermissions off), so the session can still create and write files.
func vsftpdMountOptions() s3mount.Options {
	o := mounttest.Options()
	o.AllowOther = true
	o.DefaultPermissions = false
	o.UID, o.GID = 0, 0
	return o
}

// ftpDial logs into the FTP server at addr in binary mode; MDTM with a time sets the modification time when
// the server does not offer MFMT.
func ftpDial(t *testing.T, addr, name, password string) *ftp.ServerConn {
	t.Helper()
	c, err := ftp.Dial(addr, ftp.DialWithTimeout(60*time.Second), ftp.DialWithWritingMDTM(true))
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = c.Quit() })
	if err := c.Login(name, password); err != nil {
		t.Fatalf("login %s: %v", name, err)
	}
	if err := c.Type(ftp.TransferTypeBinary); err != nil {
		t.Fatal(err)
	}
	return c
}

// ftpRetr downloads name.
func ftpRetr(t *testing.T, c *ftp.ServerConn, name string) []byte {
	t.Helper()
	r, err := c.Retr(name)
	if err != nil {
		t.Fatalf("RETR %s: %v", name, err)
	}
	b, err := io.ReadAll(r)
	if cerr := r.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("RETR %s: %v", name, err)
	}
	return b
}

// checkSame fails unless the file name holds want when read through FTP, through the mount and from S3.
func checkSame(t *testing.T, env *mounttest.Env, c *ftp.ServerConn, step, name string, want []byte) {
	t.Helper()
	if got := ftpRetr(t, c, name); !bytes.Equal(got, want) {
		t.Errorf("%s: RETR %s: %d bytes, want %d (equal=false)", step, name, len(got), len(want))
	}
	got, err := os.ReadFile(filepath.Join(env.Dir, name))
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("%s: %s through the mount: %v, %d bytes, want %d", step, name, err, len(got), len(want))
	}
	if got := readObject(t, env, name); !bytes.Equal(got, want) {
		t.Errorf("%s: object %s: %d bytes, want %d (equal=false)", step, name, len(got), len(want))
	}
}

// runFTPFileSemantics drives the FTP upload commands a legacy server depends on through c and checks every
// result byte for byte through FTP, the mount and S3: STOR of a new file (multipart), STOR over it (shorter),
// APPE with a kept prefix under 5 MiB (fetched) and over 5 MiB (server-side copy), REST+STOR in the middle
// (the tail after the written range stays, as on a local disk) and at the end (resume), and setting the
// modification time (MFMT, or MDTM with a time), which survives in the object's x-amz-meta-mtime.
func runFTPFileSemantics(t *testing.T, env *mounttest.Env, c *ftp.ServerConn) {
	const name = "up/a.bin"
	if err := c.MakeDir("up"); err != nil {
		t.Fatalf("MKD: %v", err)
	}
	want := pattern(7<<20+5, 1)
	if err := c.Stor(name, bytes.NewReader(want)); err != nil {
		t.Fatalf("STOR new: %v", err)
	}
	checkSame(t, env, c, "STOR new", name, want)

	want = pattern(3<<20+7, 2)
	if err := c.Stor(name, bytes.NewReader(want)); err != nil {
		t.Fatalf("STOR over an existing file: %v", err)
	}
	checkSame(t, env, c, "STOR over", name, want)

	more := pattern(3<<20, 3)
	if err := c.Append(name, bytes.NewReader(more)); err != nil {
		t.Fatalf("APPE (3 MiB kept): %v", err)
	}
	want = append(want, more...)
	checkSame(t, env, c, "APPE small prefix", name, want)

	more = pattern(100<<10+1, 4)
	if err := c.Append(name, bytes.NewReader(more)); err != nil {
		t.Fatalf("APPE (6 MiB kept): %v", err)
	}
	want = append(want, more...)
	checkSame(t, env, c, "APPE large prefix", name, want)

	mid := pattern(512<<10, 5)
	off := 1 << 20
	if err := c.StorFrom(name, bytes.NewReader(mid), uint64(off)); err != nil {
		t.Fatalf("REST %d + STOR: %v", off, err)
	}
	want = append(append(append([]byte{}, want[:off]...), mid...), want[off+len(mid):]...)
	checkSame(t, env, c, "REST+STOR in the middle", name, want)

	tail := pattern(2<<20+3, 6)
	if err := c.StorFrom(name, bytes.NewReader(tail), uint64(len(want))); err != nil {
		t.Fatalf("REST %d + STOR: %v", len(want), err)
	}
	want = append(want, tail...)
	checkSame(t, env, c, "REST+STOR resume", name, want)

	mtime := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	if err := c.SetTime(name, mtime); err != nil {
		t.Fatalf("setting the modification time: %v", err)
	}
	if got, err := c.GetTime(name); err != nil || !got.Equal(mtime) {
		t.Errorf("MDTM after setting it: %v, %v; want %v", got, err, mtime)
	}
	if fi, err := os.Stat(filepath.Join(env.Dir, name)); err != nil || !fi.ModTime().Equal(mtime) {
		t.Errorf("mtime through the mount: %v, %v; want %v", fi, err, mtime)
	}
	info, err := env.Client.HeadObject(context.Background(), name)
	if err != nil || info.Metadata["mtime"] != strconv.FormatInt(mtime.Unix(), 10) {
		t.Errorf("object metadata after setting the time: %v, %v; want mtime=%d", info.Metadata, err, mtime.Unix())
	}
	checkSame(t, env, c, "after setting the time", name, want)
}

// Debian's vsftpd serving the mount: STOR (vsftpd opens O_WRONLY without O_TRUNC and ftruncates), STOR over a
// file, APPE, REST+STOR and MDTM-set all succeed with byte-identical results through FTP, the mount and S3.
func TestMinioVsftpdFileSemantics(t *testing.T) {
	if _, err := user.Lookup("ftp"); err != nil {
		t.Fatalf("vsftpd runs anonymous sessions as the system user ftp, which is missing: %v", err)
	}
	env := mounttest.Mount(t, vsftpdMountOptions())
	srv := mounttest.StartVsftpd(t, env.Dir)
	c := ftpDial(t, srv.Addr, "anonymous", "")
	runFTPFileSemantics(t, env, c)
}

// ftpfrontAuth lets one name and password in, jailed to home.
type ftpfrontAuth struct{ name, password, home string }

func (a ftpfrontAuth) Login(_ context.Context, _ netip.Addr, name, password string) (*ftpfront.User, error) {
	if name == a.name && password == a.password {
		return &ftpfront.User{Name: name, Home: a.home}, nil
	}
	return nil, errors.New("login incorrect")
}

// startFtpfront serves home with ftpfront (plain FTP on 127.0.0.1, any passive port) until the test ends and
// returns its address.
func startFtpfront(t *testing.T, home string) string {
	t.Helper()
	return startFtpfrontAudited(t, home, nil)
}

// auditLog keeps the audit events ftpfront records.
type auditLog struct {
	mu     sync.Mutex
	events []ftpfront.Event
}

// Record implements ftpfront.Auditor.
func (a *auditLog) Record(e ftpfront.Event) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.events = append(a.events, e)
}

// startFtpfrontAudited is startFtpfront with its audit events recorded in audit (nil: none).
func startFtpfrontAudited(t *testing.T, home string, audit *auditLog) string {
	t.Helper()
	o := ftpfront.DefaultOptions()
	o.Listen = "127.0.0.1:0"
	o.AllowPlain = true
	o.PassivePortMin, o.PassivePortMax = 0, 0
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	deps := ftpfront.Deps{Auth: ftpfrontAuth{"u", "p", home}, Log: log}
	if audit != nil {
		deps.Audit = audit
	}
	srv, err := ftpfront.NewServer(o, deps)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		srv.Close()
		<-done
	})
	return srv.Addr().String()
}

// ftpfront serving the mount: the same commands as with vsftpd (MFMT for the time) give the same results;
// its jail cannot be left through the mount: no symlink made on the mount is followed out of the home, hard
// links cannot be made, and ".." and absolute paths stay inside the home.
func TestMinioFtpfrontFileSemantics(t *testing.T) {
	env := mounttest.Mount(t, mounttest.Options())
	c := ftpDial(t, startFtpfront(t, env.Dir), "u", "p")
	runFTPFileSemantics(t, env, c)

	// Links on the mount (as a local user or an import job could make them): ftpfront follows none out of the
	// home, whatever it points at; one that stays inside is served as its target. Hard links cannot be made.
	target := filepath.Join(env.Dir, "up", "a.bin")
	if err := os.Link(target, filepath.Join(env.Dir, "hard")); !errors.Is(err, syscall.EPERM) &&
		!errors.Is(err, syscall.ENOTSUP) && !errors.Is(err, syscall.ENOSYS) {
		t.Errorf("link on the mount: %v, want EPERM, ENOTSUP or ENOSYS", err)
	}
	for name, to := range map[string]string{
		"etc":    "/etc",
		"root":   "/",
		"parent": "..",
		"other":  filepath.Join(filepath.Dir(env.Dir), "another-home"),
		"chain1": "chain2",
		"chain2": "/etc/passwd",
		"inside": target,
	} {
		if err := os.Symlink(to, filepath.Join(env.Dir, name)); err != nil {
			t.Fatalf("symlink %s -> %s on the mount: %v", name, to, err)
		}
	}
	for _, p := range []string{"etc/passwd", "root/etc/passwd", "chain1", "other/x"} {
		if r, err := c.Retr(p); err == nil {
			b, _ := io.ReadAll(r)
			r.Close()
			t.Errorf("RETR %s through a link leading out succeeded: %d bytes", p, len(b))
		}
	}
	for _, p := range []string{"etc", "root", "parent", "other"} {
		if err := c.ChangeDir("/" + p); err == nil {
			t.Errorf("CWD /%s through a link leading out succeeded", p)
			c.ChangeDir("/")
		}
	}
	if r, err := c.Retr("inside"); err != nil {
		t.Errorf("RETR through a link inside the home: %v", err)
	} else {
		r.Close()
	}
	if err := c.ChangeDir("/../../.."); err != nil {
		t.Fatalf("CWD /../../..: %v", err)
	}
	if dir, err := c.CurrentDir(); err != nil || dir != "/" {
		t.Errorf("PWD after CWD /../../..: %q, %v; want /", dir, err)
	}
	if r, err := c.Retr("../../../../etc/passwd"); err == nil {
		b, _ := io.ReadAll(r)
		r.Close()
		t.Errorf("RETR ../../../../etc/passwd succeeded: %d bytes", len(b))
	}
	names, err := c.NameList("/..")
	if err != nil {
		t.Fatalf("NLST /..: %v", err)
	}
	if got := strings.ReplaceAll(strings.Join(names, " "), "/", ""); got != "inside up" {
		t.Errorf("NLST /.. = %q, want the home's own entries, without the links leading out (inside up)", names)
	}
}

// inotify on the mount sees a file uploaded through ftpfront: IN_CREATE when the upload starts and
// IN_CLOSE_WRITE when ftpfront closes it (the moment the object is complete in S3).
func TestMinioFtpfrontInotify(t *testing.T) {
	env := mounttest.Mount(t, mounttest.Options())
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		t.Fatalf("inotify_init1: %v", err)
	}
	defer unix.Close(fd)
	if _, err := unix.InotifyAddWatch(fd, env.Dir, unix.IN_CREATE|unix.IN_CLOSE_WRITE); err != nil {
		t.Fatalf("inotify_add_watch %s: %v", env.Dir, err)
	}
	c := ftpDial(t, startFtpfront(t, env.Dir), "u", "p")
	data := pattern(6<<20+1, 7)
	if err := c.Stor("watched.bin", bytes.NewReader(data)); err != nil {
		t.Fatalf("STOR: %v", err)
	}
	if got := readObject(t, env, "watched.bin"); !bytes.Equal(got, data) {
		t.Fatalf("object after STOR: %d bytes, want %d", len(got), len(data))
	}
	var seen []string
	deadline := time.Now().Add(30 * time.Second)
	for !(contains(seen, "CREATE watched.bin") && contains(seen, "CLOSE_WRITE watched.bin")) {
		if time.Now().After(deadline) {
			t.Fatalf("inotify events after the upload: %q; want CREATE and CLOSE_WRITE of watched.bin", seen)
		}
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(pfd, 1000); err != nil && !errors.Is(err, unix.EINTR) {
			t.Fatal(err)
		}
		seen = append(seen, readInotify(t, fd)...)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// readInotify returns the pending events as "KIND name" strings.
func readInotify(t *testing.T, fd int) []string {
	t.Helper()
	var out []string
	buf := make([]byte, 64<<10)
	n, err := unix.Read(fd, buf)
	if errors.Is(err, unix.EAGAIN) {
		return nil
	}
	if err != nil {
		t.Fatalf("reading inotify events: %v", err)
	}
	for off := 0; off+unix.SizeofInotifyEvent <= n; {
		ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
		name := string(bytes.TrimRight(buf[off+unix.SizeofInotifyEvent:off+unix.SizeofInotifyEvent+int(ev.Len)], "\x00"))
		off += unix.SizeofInotifyEvent + int(ev.Len)
		for _, k := range []struct {
			mask uint32
			name string
		}{{unix.IN_CREATE, "CREATE"}, {unix.IN_CLOSE_WRITE, "CLOSE_WRITE"}} {
			if ev.Mask&k.mask != 0 {
				out = append(out, fmt.Sprintf("%s %s", k.name, name))
			}
		}
	}
	return out
}

// An upload through ftpfront that is aborted (ABOR while the data still streams) leaves nothing in S3: the
// partial file is removed before it is closed, so the mount never stores it, not even for a moment.
func TestFakeFtpfrontAbortedStorStoresNothing(t *testing.T) {
	env, fake := mountFake(t, nil)
	conn, err := net.Dial("tcp", startFtpfront(t, env.Dir))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Minute))
	ctrl := textproto.NewConn(conn)
	expect := func(code int, cmd string) string {
		t.Helper()
		if cmd != "" {
			if err := ctrl.PrintfLine("%s", cmd); err != nil {
				t.Fatal(err)
			}
		}
		_, msg, err := ctrl.ReadResponse(code)
		if err != nil {
			t.Fatalf("%s: %v (want %d)", cmd, err, code)
		}
		return msg
	}
	expect(220, "")
	expect(331, "USER u")
	expect(230, "PASS p")
	expect(200, "TYPE I")
	pasv := expect(227, "PASV")
	var h [6]int
	if _, err := fmt.Sscanf(pasv[strings.Index(pasv, "(")+1:], "%d,%d,%d,%d,%d,%d", &h[0], &h[1], &h[2], &h[3], &h[4], &h[5]); err != nil {
		t.Fatalf("PASV reply %q: %v", pasv, err)
	}
	data, err := net.Dial("tcp", fmt.Sprintf("%d.%d.%d.%d:%d", h[0], h[1], h[2], h[3], h[4]<<8|h[5]))
	if err != nil {
		t.Fatal(err)
	}
	defer data.Close()
	expect(150, "STOR part.bin")
	if _, err := data.Write(pattern(7<<20, 4)); err != nil { // more than a part: a multipart upload is under way
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); len(fake.Uploads()) == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no multipart upload started")
		}
	}
	expect(426, "ABOR")
	expect(226, "")
	if keys, ups, c := fake.Keys(), uploadsAfterAborts(fake), fake.Created("part.bin"); len(keys) != 0 || len(ups) != 0 || c != 0 {
		t.Errorf("after the aborted STOR: objects %v, uploads %v, creations %d; want none", keys, ups, c)
	}
}

// ftpControl logs into addr on a raw control connection and returns a function that sends a command and reads
// the reply (code, text).
func ftpControl(t *testing.T, addr string) func(cmd string) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(time.Minute))
	ctrl := textproto.NewConn(conn)
	send := func(cmd string) (int, string) {
		t.Helper()
		if cmd != "" {
			if err := ctrl.PrintfLine("%s", cmd); err != nil {
				t.Fatal(err)
			}
		}
		code, msg, err := ctrl.ReadResponse(0)
		if err != nil && code == 0 {
			t.Fatalf("%s: %v", cmd, err)
		}
		return code, msg
	}
	send("")
	send("USER u")
	if code, msg := send("PASS p"); code != 230 {
		t.Fatalf("login: %d %s", code, msg)
	}
	return send
}

// HASH, XSHA256, XMD5 and XCRC through ftpfront over the mount answer the checksums s3mount stored while the
// upload streamed (s3mount --checksums --xattr), without a GET of the object; a file stored without them
// answers 550; FEAT lists them.
func TestFakeFtpfrontChecksumCommands(t *testing.T) {
	env, fake := mountFake(t, func(o *s3mount.Options) { o.Xattr, o.Checksums, o.ChecksumMD5 = true, true, true })
	audit := &auditLog{}
	addr := startFtpfrontAudited(t, env.Dir, audit)
	data := pattern(9<<20+3, 8)
	c := ftpDial(t, addr, "u", "p")
	if err := c.Stor("in.csv", bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	fake.Put("foreign.csv", data)
	sha, md := sha256.Sum256(data), md5.Sum(data)
	crc := crc32.ChecksumIEEE(data)
	send := ftpControl(t, addr)
	if code, msg := send("FEAT"); code != 211 || !strings.Contains(msg, "HASH SHA-256*;MD5;CRC32") || !strings.Contains(msg, "XSHA256") {
		t.Errorf("FEAT = %d %q, want HASH and XSHA256 listed", code, msg)
	}
	fake.ResetCounters()
	if code, msg := send("HASH in.csv"); code != 213 || msg != fmt.Sprintf("SHA-256 0-%d %x /in.csv", len(data)-1, sha) {
		t.Errorf("HASH = %d %q", code, msg)
	}
	if code, msg := send("OPTS HASH MD5"); code != 200 || msg != "MD5" {
		t.Errorf("OPTS HASH MD5 = %d %q", code, msg)
	}
	if code, msg := send("HASH in.csv"); code != 213 || !strings.Contains(msg, fmt.Sprintf("MD5 0-%d %x", len(data)-1, md)) {
		t.Errorf("HASH after OPTS HASH MD5 = %d %q", code, msg)
	}
	if code, msg := send("XSHA256 in.csv"); code != 250 || msg != fmt.Sprintf("%x", sha) {
		t.Errorf("XSHA256 = %d %q", code, msg)
	}
	if code, msg := send("XCRC in.csv"); code != 250 || msg != fmt.Sprintf("%08x", crc) {
		t.Errorf("XCRC = %d %q, want %08x", code, msg, crc)
	}
	if code, msg := send("OPTS HASH SHA-512"); code != 504 {
		t.Errorf("OPTS HASH SHA-512 = %d %q, want 504", code, msg)
	}
	if n := fake.Calls("GetObject"); n != 0 {
		t.Errorf("the checksum commands cost %d GETs, want 0", n)
	}
	if code, msg := send("XSHA256 foreign.csv"); code != 550 || !strings.Contains(msg, "not available") {
		t.Errorf("XSHA256 of an object stored without checksums = %d %q, want 550 not available", code, msg)
	}
	if code, _ := send("HASH missing.csv"); code != 550 {
		t.Errorf("HASH of a missing file = %d, want 550", code)
	}
	audit.mu.Lock()
	defer audit.mu.Unlock()
	found := false
	for _, e := range audit.events {
		if e.Event == "upload" && e.Path == "/in.csv" {
			found = true
			if e.SHA256 != fmt.Sprintf("%x", sha) {
				t.Errorf("the upload's audit event carries sha256 %q, want %x", e.SHA256, sha)
			}
		}
	}
	if !found {
		t.Errorf("no upload event for /in.csv in %+v", audit.events)
	}
}
