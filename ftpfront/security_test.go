package ftpfront

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/afero"
)

// A data connection to the passive port from another address (127.0.0.2: all of 127/8 is local) is closed,
// and the client that owns the control connection still gets its transfer.
func TestPassivePortTheftRefused(t *testing.T) {
	mem := afero.NewMemMapFs()
	data := []byte("the real client's data\n")
	writeFile(t, mem, "/f.txt", data)
	ts := startServer(t, memFs(mem), nil)
	c := dialRaw(t, ts.addr)
	c.secure("alice", "secret")
	addr := c.epsv()

	thief := dialData(t, addr, "127.0.0.2")
	thief.SetDeadline(time.Now().Add(10 * time.Second))
	if err := thief.Handshake(); err == nil {
		t.Fatal("the server completed a TLS handshake with a foreign data connection")
	}
	buf := make([]byte, 1)
	if n, err := thief.NetConn().Read(buf); err == nil || n > 0 {
		t.Fatalf("foreign data connection still open (n=%d, err=%v)", n, err)
	}

	real := dialData(t, addr, "127.0.0.1")
	c.must(150, "RETR f.txt")
	got, err := io.ReadAll(real)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("real client got %q, %v", got, err)
	}
	c.expect(226)
}

// With the thief's network in PassiveAllowCIDR (a load balancer), its connection is taken.
func TestPassiveAllowCIDR(t *testing.T) {
	mem := afero.NewMemMapFs()
	writeFile(t, mem, "/f.txt", []byte("via lb"))
	ts := startServer(t, memFs(mem), func(o *Options, _ *Deps) {
		o.PassiveAllowCIDR = []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}
	})
	c := dialRaw(t, ts.addr)
	c.secure("alice", "secret")
	lb := dialData(t, c.epsv(), "127.0.0.2")
	c.must(150, "RETR f.txt")
	if got, err := io.ReadAll(lb); err != nil || string(got) != "via lb" {
		t.Fatalf("got %q, %v", got, err)
	}
	c.expect(226)
}

// failingCloseFs returns files whose Close fails, like a mount whose S3 upload failed.
type failingCloseFs struct {
	afero.Fs
	closes int
}

type failingCloseFile struct{ afero.File }

func (f failingCloseFile) Close() error {
	f.File.Close()
	return errors.New("upload failed: S3 unavailable")
}

func (f *failingCloseFs) OpenFile(name string, flag int, perm os.FileMode) (afero.File, error) {
	file, err := f.Fs.OpenFile(name, flag, perm)
	if err != nil || flag&(os.O_WRONLY|os.O_RDWR) == 0 {
		return file, err
	}
	f.closes++
	return failingCloseFile{file}, nil
}

// A failed close of the uploaded file answers 451, and the partial file is removed.
func TestUploadCloseErrorIs451AndRemovesFile(t *testing.T) {
	fsys := &failingCloseFs{Fs: afero.NewMemMapFs()}
	ts := startServer(t, memFs(fsys), nil)
	c := dialRaw(t, ts.addr)
	c.secure("alice", "secret")
	d := dialData(t, c.epsv(), "")
	c.must(150, "STOR up.bin")
	payload := make([]byte, 1<<20)
	rand.Read(payload)
	if _, err := d.Write(payload); err != nil {
		t.Fatal(err)
	}
	d.Close()
	c.expect(451)
	if fsys.closes != 1 {
		t.Fatalf("closes = %d", fsys.closes)
	}
	if _, err := fsys.Stat("/up.bin"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("partial upload left behind: %v", err)
	}
	if ev := ts.audit.find("upload", "/up.bin"); len(ev) != 1 || !strings.Contains(ev[0].Result, "S3 unavailable") {
		t.Fatalf("audit = %+v", ev)
	}
	c.must(200, "NOOP")
}

// ABOR during an upload: 426 for the transfer, 226 for ABOR, and the partial file is removed.
func TestAbortUploadRemovesFile(t *testing.T) {
	mem := afero.NewMemMapFs()
	ts := startServer(t, memFs(mem), nil)
	c := dialRaw(t, ts.addr)
	c.secure("alice", "secret")
	d := dialData(t, c.epsv(), "")
	c.must(150, "STOR big.bin")
	if _, err := d.Write(make([]byte, 256<<10)); err != nil {
		t.Fatal(err)
	}
	// STAT is answered while the transfer runs.
	if text := c.must(211, "STAT"); !strings.Contains(text, "Transferring STOR /big.bin") {
		t.Fatalf("STAT during transfer = %q", text)
	}
	c.send("\xff\xf4\xff\xf2ABOR")
	c.expect(426)
	c.expect(226)
	if _, err := mem.Stat("/big.bin"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("aborted upload left behind: %v", err)
	}
	c.must(200, "NOOP")
	c.must(225, "ABOR")
}

// A data connection dropped mid-upload (no TLS close_notify) is not a complete upload.
func TestDroppedUploadRemovesFile(t *testing.T) {
	mem := afero.NewMemMapFs()
	ts := startServer(t, memFs(mem), nil)
	c := dialRaw(t, ts.addr)
	c.secure("alice", "secret")
	d := dialData(t, c.epsv(), "")
	c.must(150, "STOR drop.bin")
	if _, err := d.Write(make([]byte, 100<<10)); err != nil {
		t.Fatal(err)
	}
	d.NetConn().Close()
	c.expect(426)
	if _, err := mem.Stat("/drop.bin"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("dropped upload left behind: %v", err)
	}
}

// An over-long line is answered 500 without ending the session; replies never carry CR/LF from names.
func TestLongLineAndReplyInjection(t *testing.T) {
	mem := afero.NewMemMapFs()
	ts := startServer(t, memFs(mem), nil)
	c := dialRaw(t, ts.addr)
	c.secure("alice", "secret")
	c.must(500, "NOOP %s", strings.Repeat("x", 64<<10))
	c.must(200, "NOOP")
	// A bare CR inside a line is a syntax error, so a name with CR never reaches a reply...
	c.must(500, "MKD a\rb")
	// ...and quotes are doubled in 257 replies.
	if text := c.must(257, `MKD a"b`); !strings.HasPrefix(text, `"/a""b"`) {
		t.Fatalf("257 reply = %q", text)
	}
}

// The jail over a real directory: ".." and absolute paths stay inside the home, symlinks leading out are
// refused (and not listed), and another user's files are invisible.
func TestJailOverOsFs(t *testing.T) {
	root := t.TempDir()
	alice := filepath.Join(root, "alice")
	bob := filepath.Join(root, "bob")
	outside := t.TempDir()
	mustMkdir(t, filepath.Join(alice, "sub"))
	mustMkdir(t, bob)
	os.WriteFile(filepath.Join(alice, "mine.txt"), []byte("alice"), 0o644)
	os.WriteFile(filepath.Join(bob, "secret.txt"), []byte("bob"), 0o644)
	os.WriteFile(filepath.Join(outside, "passwd"), []byte("root:x"), 0o644)
	os.Symlink(bob, filepath.Join(alice, "tobob"))
	os.Symlink(filepath.Join(outside, "passwd"), filepath.Join(alice, "pw"))
	os.Symlink(filepath.Join(outside, "new"), filepath.Join(alice, "dangling"))
	os.Symlink("mine.txt", filepath.Join(alice, "inside"))

	ts := startServer(t, nil, nil)
	ts.auth.homes["alice"] = alice
	c := dialRaw(t, ts.addr)
	c.secure("alice", "secret")

	c.must(250, "CWD ..")
	c.must(257, "PWD")
	if text := c.must(257, "PWD"); !strings.HasPrefix(text, `"/"`) {
		t.Fatalf("PWD after CWD .. = %q", text)
	}
	c.must(250, "CWD sub")
	c.must(250, "CWD ../../..")
	if text := c.must(257, "PWD"); !strings.HasPrefix(text, `"/"`) {
		t.Fatalf("PWD = %q", text)
	}
	for _, p := range []string{"../bob/secret.txt", "/../bob/secret.txt", bob + "/secret.txt", "tobob/secret.txt", "pw", "/etc/passwd"} {
		c.must(550, "SIZE %s", p)
		c.must(550, "MDTM %s", p)
	}
	c.must(550, "CWD tobob")
	c.must(213, "SIZE inside")
	for _, p := range []string{"dangling", "tobob/new.txt", "../escape.txt"} {
		d := dialData(t, c.epsv(), "")
		code, _ := c.cmd("STOR %s", p)
		if code == 150 {
			d.Write([]byte("x"))
			d.Close()
			c.readReply()
		}
	}
	if _, err := os.Stat(filepath.Join(outside, "new")); err == nil {
		t.Fatal("STOR through a dangling symlink created a file outside the jail")
	}
	if _, err := os.Stat(filepath.Join(bob, "new.txt")); err == nil {
		t.Fatal("STOR through a symlink wrote into another user's home")
	}
	if _, err := os.Stat(filepath.Join(root, "escape.txt")); err == nil {
		t.Fatal("STOR ../escape.txt wrote above the home")
	}
	if _, err := os.Stat(filepath.Join(alice, "escape.txt")); err != nil {
		t.Fatalf("STOR ../escape.txt should land in the home as /escape.txt: %v", err)
	}

	// "ls ../" lists the home itself, without the links that lead out.
	d := dialData(t, c.epsv(), "")
	c.must(150, "NLST ../")
	list, err := io.ReadAll(d)
	if err != nil {
		t.Fatal(err)
	}
	c.expect(226)
	names := strings.Fields(string(list))
	got := strings.Join(names, ",")
	if strings.Contains(got, "secret") || strings.Contains(got, "bob") || strings.Contains(got, "pw") || strings.Contains(got, "dangling") {
		t.Fatalf("listing of ../ shows outside files: %s", got)
	}
	if !strings.Contains(got, "mine.txt") || !strings.Contains(got, "inside") {
		t.Fatalf("listing of ../ = %s", got)
	}
	// Error replies never carry the real path.
	c.epsv()
	if code, text := c.cmd("RETR nothere"); code != 550 || strings.Contains(text, root) {
		t.Fatalf("RETR nothere = %d %q", code, text)
	}
}

// failingWriteFs returns files whose writes fail after limit bytes, like a mount whose memory budget upload
// failed mid-stream.
type failingWriteFs struct {
	afero.Fs
	limit int
}

type failingWriteFile struct {
	afero.File
	left *int
}

func (f failingWriteFile) Write(p []byte) (int, error) {
	if len(p) > *f.left {
		return 0, errors.New("write failed: S3 part upload error")
	}
	*f.left -= len(p)
	return f.File.Write(p)
}

func (f *failingWriteFs) OpenFile(name string, flag int, perm os.FileMode) (afero.File, error) {
	file, err := f.Fs.OpenFile(name, flag, perm)
	if err != nil || flag&(os.O_WRONLY|os.O_RDWR) == 0 {
		return file, err
	}
	left := f.limit
	return failingWriteFile{file, &left}, nil
}

// A failed write answers 451 and removes the partial file of a plain STOR; APPE keeps the existing file.
func TestUploadWriteErrorIs451(t *testing.T) {
	fsys := &failingWriteFs{Fs: afero.NewMemMapFs(), limit: 64 << 10}
	writeFile(t, fsys.Fs, "/keep.bin", []byte("original"))
	ts := startServer(t, memFs(fsys), nil)
	c := dialRaw(t, ts.addr)
	c.secure("alice", "secret")
	for _, verb := range []string{"STOR new.bin", "APPE keep.bin"} {
		d := dialData(t, c.epsv(), "")
		c.must(150, verb)
		go func() {
			d.Write(make([]byte, 4<<20))
			d.Close()
		}()
		c.expect(451)
	}
	if _, err := fsys.Stat("/new.bin"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("partial STOR left behind: %v", err)
	}
	if got, err := afero.ReadFile(fsys.Fs, "/keep.bin"); err != nil || !bytes.HasPrefix(got, []byte("original")) {
		t.Fatalf("APPE failure damaged the existing file: %q, %v", got, err)
	}
}

// TLS 1.2 offers only ECDHE suites with AEAD by default: a client that knows only CBC-SHA1 suites cannot
// connect; with TLSLegacyCiphers it can. TLS 1.3 is unaffected.
func TestTLS12CipherSuites(t *testing.T) {
	for _, legacy := range []bool{false, true} {
		o := Options{TLSSelfSigned: true, TLSLegacyCiphers: legacy}
		conf, err := o.TLSConfig(slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		l, err := tls.Listen("tcp", "127.0.0.1:0", conf)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				go func() { c.(*tls.Conn).Handshake(); c.Close() }()
			}
		}()
		dial := func(max uint16, suites []uint16) error {
			c, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{InsecureSkipVerify: true, MaxVersion: max, CipherSuites: suites})
			if err == nil {
				c.Close()
			}
			return err
		}
		cbc := []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA}
		if err := dial(tls.VersionTLS12, cbc); (err == nil) != legacy {
			t.Errorf("legacy %v: a TLS 1.2 client offering only CBC-SHA1 suites: %v", legacy, err)
		}
		if err := dial(tls.VersionTLS12, []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}); err != nil {
			t.Errorf("legacy %v: a TLS 1.2 client offering ECDHE-ECDSA-AES128-GCM: %v", legacy, err)
		}
		if err := dial(tls.VersionTLS13, nil); err != nil {
			t.Errorf("legacy %v: a TLS 1.3 client: %v", legacy, err)
		}
		l.Close()
	}
}
