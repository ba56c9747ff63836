package ftpfront

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Real FTP clients (curl, lftp, Python ftplib) against the server over explicit TLS with PROT P, on a real
// directory through JailFs: a 100 MiB upload and download byte-identical, a resumed download, listings, rename,
// delete and MFMT/MDTM. A missing client binary fails the test (the test set-up installs them).

const bigSize = 100 << 20

type clientEnv struct {
	t       *testing.T
	ts      *testServer
	home    string // the user's home on disk
	src     string // 100 MiB source file, outside the home
	srcSum  [32]byte
	work    string
	host    string
	port    string
	timeout time.Duration
}

func newClientEnv(t *testing.T) *clientEnv {
	t.Helper()
	root := t.TempDir()
	home := filepath.Join(root, "alice")
	mustMkdir(t, home)
	work := t.TempDir()
	src := filepath.Join(work, "src.bin")
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	rng := rand.NewChaCha8([32]byte{1, 2, 3})
	if _, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(rng, bigSize)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, nil, nil)
	ts.auth.homes["alice"] = home
	host, port, _ := net.SplitHostPort(ts.addr)
	e := &clientEnv{t: t, ts: ts, home: home, src: src, work: work, host: host, port: port, timeout: 3 * time.Minute}
	copy(e.srcSum[:], h.Sum(nil))
	return e
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

// partialCopy writes the first n bytes of src to a new file and returns its path.
func (e *clientEnv) partialCopy(name string, n int64) string {
	e.t.Helper()
	in, err := os.Open(e.src)
	if err != nil {
		e.t.Fatal(err)
	}
	defer in.Close()
	p := filepath.Join(e.work, name)
	out, err := os.Create(p)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := io.CopyN(out, in, n); err != nil {
		e.t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		e.t.Fatal(err)
	}
	return p
}

func needBinary(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is required for this test and is not installed (the test set-up installs curl, lftp and python3): %v", name, err)
	}
	return p
}

func (e *clientEnv) run(name string, args ...string) string {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, needBinary(e.t, name), args...)
	cmd.Dir = e.work
	cmd.Env = append(os.Environ(), "HOME="+e.work, "LC_ALL=C")
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		e.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

func (e *clientEnv) checkSame(path, what string) {
	e.t.Helper()
	if got := fileSum(e.t, path); got != e.srcSum {
		st, _ := os.Stat(path)
		var size int64 = -1
		if st != nil {
			size = st.Size()
		}
		e.t.Fatalf("%s differs from the source (%d bytes)", what, size)
	}
}

func (e *clientEnv) checkGone(name string) {
	e.t.Helper()
	if _, err := os.Stat(filepath.Join(e.home, name)); !os.IsNotExist(err) {
		e.t.Fatalf("%s still exists in the home: %v", name, err)
	}
}

func (e *clientEnv) checkMtime(name string, want time.Time) {
	e.t.Helper()
	st, err := os.Stat(filepath.Join(e.home, name))
	if err != nil {
		e.t.Fatal(err)
	}
	if !st.ModTime().Equal(want) {
		e.t.Fatalf("mtime of %s = %v, want %v", name, st.ModTime().UTC(), want)
	}
}

var mfmtTime = time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)

func TestCurlClient(t *testing.T) {
	e := newClientEnv(t)
	base := fmt.Sprintf("ftp://%s:%s", e.host, e.port)
	curl := func(args ...string) string {
		return e.run("curl", append([]string{"--ssl-reqd", "-k", "-sS", "--user", "alice:secret", "--max-time", "170"}, args...)...)
	}
	curl("-T", e.src, base+"/curl.bin")
	e.checkSame(filepath.Join(e.home, "curl.bin"), "file uploaded by curl")

	out := filepath.Join(e.work, "curl.out")
	curl("-o", out, base+"/curl.bin")
	e.checkSame(out, "file downloaded by curl")

	partial := e.partialCopy("curl.partial", bigSize-7<<20-3)
	curl("-C", "-", "-o", partial, base+"/curl.bin")
	e.checkSame(partial, "download resumed by curl")

	curl("--ftp-create-dirs", "-T", filepath.Join(e.work, "curl.out"), base+"/sub/dir/copy.bin")
	e.checkSame(filepath.Join(e.home, "sub", "dir", "copy.bin"), "upload into created directories")

	list := curl(base + "/")
	if !strings.Contains(list, " curl.bin") || !strings.HasPrefix(list, "-rw") && !strings.Contains(list, "\n-rw") {
		t.Fatalf("LIST output:\n%s", list)
	}
	if !strings.Contains(list, "drwx") || !strings.Contains(list, " sub") {
		t.Fatalf("LIST output lacks the directory:\n%s", list)
	}
	names := curl("--list-only", base+"/sub/dir/")
	if strings.TrimSpace(names) != "copy.bin" {
		t.Fatalf("NLST output %q", names)
	}

	curl("-Q", "MFMT 20210304050607 curl.bin", base+"/")
	e.checkMtime("curl.bin", mfmtTime)
	head := curl("-I", base+"/curl.bin")
	if !strings.Contains(head, "Last-Modified: Thu, 04 Mar 2021 05:06:07 GMT") ||
		!strings.Contains(head, fmt.Sprintf("Content-Length: %d", bigSize)) {
		t.Fatalf("curl -I (MDTM, SIZE):\n%s", head)
	}

	curl("-Q", "RNFR curl.bin", "-Q", "RNTO renamed.bin", base+"/")
	e.checkGone("curl.bin")
	e.checkSame(filepath.Join(e.home, "renamed.bin"), "renamed file")
	curl("-Q", "DELE renamed.bin", base+"/")
	e.checkGone("renamed.bin")
}

func TestLftpClient(t *testing.T) {
	e := newClientEnv(t)
	partial := e.partialCopy("lftp.partial", bigSize-5<<20-1)
	script := strings.Join([]string{
		"set ftp:ssl-force true",
		"set ftp:ssl-protect-data true",
		"set ssl:verify-certificate no",
		"set net:max-retries 1",
		"set net:timeout 30",
		"set xfer:clobber on",
		"set cmd:fail-exit true",
		fmt.Sprintf("open -u alice,secret -p %s %s", e.port, e.host),
		fmt.Sprintf("put %s -o lftp.bin", e.src),
		fmt.Sprintf("get lftp.bin -o %s", filepath.Join(e.work, "lftp.out")),
		fmt.Sprintf("get -c lftp.bin -o %s", partial),
		"mkdir ldir",
		"echo ==LS==",
		"ls",
		"echo ==CLS==",
		"cls -l --sort=name",
		"echo ==END==",
		"quote MFMT 20210304050607 lftp.bin",
		"quote MDTM lftp.bin",
		"mv lftp.bin ldir/moved.bin",
		"cd ..",
		"cd ..",
		"pwd",
		"echo ==LSUP==",
		"ls ../",
		"echo ==ENDUP==",
		"rm ldir/moved.bin",
		"rmdir ldir",
		"quit",
	}, "; ")
	out := e.run("lftp", "-c", script)
	e.checkSame(filepath.Join(e.work, "lftp.out"), "file downloaded by lftp")
	e.checkSame(partial, "download resumed by lftp")
	ls := between(out, "==LS==", "==CLS==")
	if !strings.Contains(ls, " lftp.bin") || !strings.Contains(ls, " ldir") {
		t.Fatalf("lftp ls:\n%s", out)
	}
	cls := between(out, "==CLS==", "==END==")
	if !strings.Contains(cls, "lftp.bin") || !strings.Contains(cls, fmt.Sprint(bigSize)) {
		t.Fatalf("lftp cls (MLSD):\n%s", out)
	}
	if !strings.Contains(out, "213 20210304050607\n") {
		t.Fatalf("lftp MFMT/MDTM round trip:\n%s", out)
	}
	if !strings.Contains(out, "@"+e.host+":"+e.port+"/\n") {
		t.Fatalf("lftp pwd after cd .. at home is not /:\n%s", out)
	}
	if up := between(out, "==LSUP==", "==ENDUP=="); !strings.Contains(up, " ldir") || strings.Contains(up, "alice") {
		t.Fatalf("ls ../ must show the home itself:\n%s", up)
	}
	e.checkGone("lftp.bin")
	e.checkGone("ldir")
	if ev := e.ts.audit.find("upload", "/lftp.bin"); len(ev) != 1 || ev[0].Bytes != bigSize {
		t.Fatalf("audit of the lftp upload: %+v", ev)
	}
	if ev := e.ts.audit.find("rename", "/lftp.bin"); len(ev) != 1 || ev[0].To != "/ldir/moved.bin" {
		t.Fatalf("audit of the lftp rename: %+v", ev)
	}
}

func between(s, from, to string) string {
	i := strings.Index(s, from)
	j := strings.Index(s, to)
	if i < 0 || j < i {
		return ""
	}
	return s[i+len(from) : j]
}

func TestPythonFtplibClient(t *testing.T) {
	e := newClientEnv(t)
	script, err := filepath.Abs("testdata/ftps_client.py")
	if err != nil {
		t.Fatal(err)
	}
	down := filepath.Join(e.work, "py.out")
	partial := e.partialCopy("py.partial", bigSize-3<<20-5)
	out := e.run("python3", script, e.host, e.port, "alice", "secret", e.src, down, partial)
	if !strings.Contains(out, "python ftplib OK") {
		t.Fatalf("python output:\n%s", out)
	}
	e.checkSame(down, "file downloaded by ftplib")
	e.checkSame(partial, "download resumed by ftplib")
	e.checkGone("py.bin")
	e.checkGone("pydir")
	if ev := e.ts.audit.find("upload", "/py.bin"); len(ev) != 1 || ev[0].Bytes != bigSize || ev[0].Result != "ok" {
		t.Fatalf("audit of the ftplib upload: %+v", ev)
	}
}
