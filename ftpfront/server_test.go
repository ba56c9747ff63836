package ftpfront

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"
	"github.com/spf13/afero"
)

func dialGo(t *testing.T, addr string) *ftp.ServerConn {
	t.Helper()
	c, err := ftp.Dial(addr, ftp.DialWithExplicitTLS(clientTLS()), ftp.DialWithTimeout(30*time.Second))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Quit() })
	if err := c.Login("alice", "secret"); err != nil {
		t.Fatalf("login: %v", err)
	}
	return c
}

// The jlaffaye/ftp client over explicit TLS: upload, download, resume, listing, rename, delete, directories,
// MFMT/MDTM, and "/" as the top of the virtual tree.
func TestGoClientExplicitTLS(t *testing.T) {
	mem := afero.NewMemMapFs()
	ts := startServer(t, memFs(mem), nil)
	c := dialGo(t, ts.addr)

	data := make([]byte, 3<<20+17)
	rand.Read(data)
	if err := c.MakeDir("dir"); err != nil {
		t.Fatal(err)
	}
	if err := c.ChangeDir("dir"); err != nil {
		t.Fatal(err)
	}
	if err := c.Stor("f.bin", bytes.NewReader(data)); err != nil {
		t.Fatalf("STOR: %v", err)
	}
	got, err := afero.ReadFile(mem, "/dir/f.bin")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("stored file differs (err %v, %d bytes)", err, len(got))
	}
	r, err := c.Retr("/dir/f.bin")
	if err != nil {
		t.Fatal(err)
	}
	back, err := io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(back, data) {
		t.Fatalf("RETR differs (err %v, %d bytes)", err, len(back))
	}
	r, err = c.RetrFrom("f.bin", 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	tail, err := io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(tail, data[1<<20:]) {
		t.Fatalf("REST+RETR differs (err %v, %d bytes)", err, len(tail))
	}
	if size, err := c.FileSize("f.bin"); err != nil || size != int64(len(data)) {
		t.Fatalf("SIZE = %d, %v", size, err)
	}

	// MFMT then MDTM.
	when := time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)
	if err := c.SetTime("f.bin", when); err != nil {
		t.Fatalf("MFMT: %v", err)
	}
	if got, err := c.GetTime("f.bin"); err != nil || !got.Equal(when) {
		t.Fatalf("MDTM = %v, %v; want %v", got, err, when)
	}

	// Listing (MLSD, as the client saw MLST in FEAT).
	writeFile(t, mem, "/dir/b.txt", []byte("hello"))
	entries, err := c.List("/dir")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name)
		if e.Name == "f.bin" && (e.Size != uint64(len(data)) || !e.Time.Equal(when)) {
			t.Errorf("f.bin listed as size %d time %v", e.Size, e.Time)
		}
	}
	sort.Strings(names)
	if strings.Join(names, ",") != "b.txt,f.bin" {
		t.Fatalf("MLSD names = %v", names)
	}
	nl, err := c.NameList("")
	if err != nil || strings.Join(nl, ",") != "b.txt,f.bin" {
		t.Fatalf("NLST = %v, %v", nl, err)
	}

	// Rename and delete.
	if err := c.Rename("b.txt", "c.txt"); err != nil {
		t.Fatal(err)
	}
	if _, err := mem.Stat("/dir/c.txt"); err != nil {
		t.Fatalf("renamed file missing: %v", err)
	}
	if err := c.Delete("c.txt"); err != nil {
		t.Fatal(err)
	}
	if _, err := mem.Stat("/dir/c.txt"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("deleted file still there: %v", err)
	}
	if err := c.Delete("nothere"); err == nil || !strings.HasPrefix(err.Error(), "550") {
		t.Fatalf("DELE of missing file: %v", err)
	}

	// APPE, and REST+STOR writing at an offset without truncating.
	if err := c.Append("f.bin", strings.NewReader("tail")); err != nil {
		t.Fatal(err)
	}
	if err := c.StorFrom("f.bin", strings.NewReader("XY"), 2); err != nil {
		t.Fatal(err)
	}
	got, _ = afero.ReadFile(mem, "/dir/f.bin")
	want := append(append(append([]byte{}, data[:2]...), "XY"...), data[4:]...)
	want = append(want, "tail"...)
	if !bytes.Equal(got, want) {
		t.Fatalf("APPE/REST+STOR result differs: %d bytes, want %d", len(got), len(want))
	}

	// "cd .." at home stays at "/".
	for i := 0; i < 3; i++ {
		if err := c.ChangeDirToParent(); err != nil {
			t.Fatal(err)
		}
	}
	if dir, err := c.CurrentDir(); err != nil || dir != "/" {
		t.Fatalf("PWD = %q, %v", dir, err)
	}
	if err := c.RemoveDir("dir"); err == nil {
		t.Fatal("RMD of a non-empty directory succeeded")
	}
	if err := c.RemoveDirRecur("dir"); err != nil {
		t.Fatal(err)
	}
	if _, err := mem.Stat("/dir"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("directory still there: %v", err)
	}

	if up := ts.audit.find("upload", "/dir/f.bin"); len(up) != 3 || up[0].Bytes != int64(len(data)) || up[0].Result != "ok" || up[0].User != "alice" {
		t.Fatalf("upload audit events = %+v", up)
	}
	if ev := ts.audit.find("rename", "/dir/b.txt"); len(ev) != 1 || ev[0].To != "/dir/c.txt" {
		t.Fatalf("rename audit events = %+v", ev)
	}
}

// Without AllowPlain, USER needs TLS; commands out of sequence get 503, unknown ones 502, and commands before
// login 530.
func TestTLSRequired(t *testing.T) {
	ts := startServer(t, memFs(afero.NewMemMapFs()), nil)
	c := dialRaw(t, ts.addr)
	c.must(530, "USER alice")
	c.must(503, "PASS secret")
	c.must(503, "PBSZ 0")
	c.must(502, "SITE CHMOD 777 x")
	c.must(530, "LIST")
	c.must(504, "AUTH KERBEROS")
	c.must(234, "AUTH TLS")
	tlsUpgrade(t, c)
	c.must(503, "AUTH TLS")
	c.must(331, "USER alice")
	c.must(230, "PASS secret")
	c.must(503, "USER alice")
}

func TestProtCRefusedAndTransferNeedsProtP(t *testing.T) {
	ts := startServer(t, memFs(afero.NewMemMapFs()), nil)
	c := dialRaw(t, ts.addr)
	c.must(234, "AUTH TLS")
	tc := tlsUpgrade(t, c)
	tc.must(331, "USER alice")
	tc.must(230, "PASS secret")
	tc.must(503, "PROT P") // PBSZ first
	tc.must(200, "PBSZ 0")
	tc.must(534, "PROT C")
	tc.epsv()
	tc.must(521, "LIST")
}

func tlsUpgrade(t *testing.T, c *rawClient) *rawClient {
	t.Helper()
	tcn := tls.Client(c.conn, clientTLS())
	if err := tcn.Handshake(); err != nil {
		t.Fatal(err)
	}
	c.conn = tcn
	c.r = bufio.NewReader(tcn)
	return c
}
