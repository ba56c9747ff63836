package sftpfront

import (
	"bytes"
	"encoding/binary"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/s3ftp/s3ftp/ftpfront"
	"golang.org/x/crypto/ssh"
)

// fakeChannel is an ssh.Channel whose client side is a fixed byte stream; what the server sends is discarded.
type fakeChannel struct{ in io.Reader }

func (c *fakeChannel) Read(p []byte) (int, error)                     { return c.in.Read(p) }
func (c *fakeChannel) Write(p []byte) (int, error)                    { return len(p), nil }
func (c *fakeChannel) Close() error                                   { return nil }
func (c *fakeChannel) CloseWrite() error                              { return nil }
func (c *fakeChannel) SendRequest(string, bool, []byte) (bool, error) { return false, nil }
func (c *fakeChannel) Stderr() io.ReadWriter                          { return discardRW{} }

type discardRW struct{}

func (discardRW) Read([]byte) (int, error)    { return 0, io.EOF }
func (discardRW) Write(p []byte) (int, error) { return len(p), nil }

// serveStream runs one session channel, as Server.handle does after authentication, for a client that sends
// the request req and then the bytes in; the user alice is jailed in a new directory. It fails the test on a
// recovered panic or on goroutines left running once the session ended.
func serveStream(t *testing.T, req *ssh.Request, in []byte) {
	home := t.TempDir()
	before := runtime.NumGoroutine()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := &Server{opts: Options{}.withDefaults(), log: log, deps: Deps{Log: log}}
	c := &conn{srv: s, id: "fuzz", log: log}
	fsys, err := ftpfront.NewJailFs(home)
	if err != nil {
		t.Fatal(err)
	}
	u := &ftpfront.User{Name: "alice", Home: home}
	h := &handlers{fs: fsys, user: u, sess: c, window: 1 << 20, uploads: make(chan struct{}, s.opts.MaxUploads)}
	reqs := make(chan *ssh.Request, 1)
	reqs <- req
	close(reqs)
	s.session(c, h, &fakeChannel{in: &limitedReader{data: in}}, reqs)
	if n := s.panics.Count(); n != 0 {
		t.Fatalf("%d panics recovered", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines before, %d after the session ended:\n%s", before, runtime.NumGoroutine(),
				buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// limitedReader hands out data in pieces of at most 7 bytes, so that packets straddle reads.
type limitedReader struct{ data []byte }

func (r *limitedReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(r.data), 7)
	copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

// SFTP packet encoding for the seed corpus.
type pkt []byte

func (p pkt) u8(v byte) pkt    { return append(p, v) }
func (p pkt) u32(v uint32) pkt { return binary.BigEndian.AppendUint32(p, v) }
func (p pkt) u64(v uint64) pkt { return binary.BigEndian.AppendUint64(p, v) }
func (p pkt) str(s string) pkt { return append(p.u32(uint32(len(s))), s...) }

// frame prefixes the packet body with its length.
func frame(body pkt) []byte { return append(pkt(nil).u32(uint32(len(body))), body...) }

// request is a packet of type typ with request id id.
func request(typ byte, id uint32) pkt { return pkt(nil).u8(typ).u32(id) }

func stream(packets ...[]byte) []byte {
	var out []byte
	for _, p := range packets {
		out = append(out, p...)
	}
	return out
}

// sftpSeeds are packet streams that exercise each request the server answers, in order and out of it.
func sftpSeeds() [][]byte {
	const (
		fxpInit, fxpOpen, fxpClose, fxpRead, fxpWrite, fxpLstat, fxpFstat, fxpSetstat, fxpFsetstat = 1, 3, 4, 5, 6, 7, 8, 9, 10
		fxpOpendir, fxpReaddir, fxpRemove, fxpMkdir, fxpRmdir, fxpRealpath, fxpStat, fxpRename     = 11, 12, 13, 14, 15, 16, 17, 18
		fxpReadlink, fxpSymlink, fxpExtended                                                       = 19, 20, 200
		write, creat, trunc, read                                                                  = 0x2, 0x8, 0x10, 0x1
	)
	init := frame(pkt(nil).u8(fxpInit).u32(3))
	open := func(id uint32, name string, flags uint32) []byte {
		return frame(request(fxpOpen, id).str(name).u32(flags).u32(0))
	}
	wr := func(id uint32, handle string, off uint64, data string) []byte {
		return frame(request(fxpWrite, id).str(handle).u64(off).str(data))
	}
	onPath := func(typ byte, id uint32, p string) []byte { return frame(request(typ, id).str(p)) }
	return [][]byte{
		init,
		stream(init, onPath(fxpRealpath, 1, "."), onPath(fxpStat, 2, "/"), onPath(fxpLstat, 3, "/"),
			onPath(fxpOpendir, 4, "/"), onPath(fxpReaddir, 5, "1"), onPath(fxpReaddir, 6, "1"), onPath(fxpClose, 7, "1")),
		stream(init, open(1, "f.bin", write|creat|trunc), wr(2, "1", 5, "world"), wr(3, "1", 0, "hello"),
			frame(request(fxpFsetstat, 4).str("1").u32(0x8).u32(1000).u32(2000)), onPath(fxpFstat, 5, "1"),
			onPath(fxpClose, 6, "1"), open(7, "f.bin", read), frame(request(fxpRead, 8).str("2").u64(0).u32(100)),
			onPath(fxpClose, 9, "2")),
		stream(init, open(1, "gap.bin", write|creat), wr(2, "1", 1<<30, "far"), wr(3, "1", 10, "gap"), onPath(fxpClose, 4, "1")),
		stream(init, open(1, "open.bin", write|creat|trunc), wr(2, "1", 0, "unclosed")),
		stream(init, frame(request(fxpMkdir, 1).str("d").u32(0)), frame(request(fxpSetstat, 2).str("d").u32(0x4).u32(0o700)),
			frame(request(fxpRename, 3).str("d").str("e")),
			frame(request(fxpExtended, 4).str("posix-rename@openssh.com").str("e").str("../../f")),
			frame(request(fxpExtended, 5).str("statvfs@openssh.com").str("/")),
			frame(request(fxpExtended, 6).str("hardlink@openssh.com").str("f").str("g")),
			frame(request(fxpSymlink, 7).str("x").str("/etc/passwd")), onPath(fxpReadlink, 8, "x"),
			onPath(fxpRmdir, 9, "f"), onPath(fxpRemove, 10, "nope"), onPath(fxpStat, 11, "/../../etc")),
		stream(init, frame(request(fxpExtended, 1).str("no-such@example.com"))),
		stream(init, pkt(nil).u32(0xffffffff), []byte{fxpOpen}),
		stream(init, frame(request(fxpOpen, 1).str("truncated"))),
		stream(init, frame(pkt{fxpWrite})),
		{},
	}
}

// The server's channel handling takes any byte stream as the SFTP subsystem's input: no panic (recovered or
// not), and no goroutine left once the stream ends. The seed corpus covers every request the server answers;
// `go test -fuzz FuzzSFTPPackets ./sftpfront/` explores from it.
func FuzzSFTPPackets(f *testing.F) {
	for _, s := range sftpSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		serveStream(t, &ssh.Request{Type: "subsystem", Payload: ssh.Marshal(struct{ Name string }{"sftp"})}, in)
	})
}

// The scp command takes any byte stream as the client's side of the legacy protocol, as sink (-t, with the
// client's files) and as source (-f, with the client's answers): no panic, no goroutine left.
func FuzzSCPStream(f *testing.F) {
	for _, s := range []string{
		"C0644 5 a.txt\nhello\x00",
		"T981173106 0 981173106 0\nC0640 3 b\nabc\x00D0755 0 dir\nC0644 1 c\nx\x00E\n",
		"D0755 0 d\nD0755 0 e\nE\nE\nE\n",
		"C0644 10 short\nabc",
		"C0644 3 ../up\nabc\x00",
		"\x01scp: local error\nC0644 1 z\nz\x02",
		"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
		"\x00\x01no\n\x00\x00",
		"X\n",
	} {
		f.Add(false, []byte(s))
		f.Add(true, []byte(s))
	}
	f.Fuzz(func(t *testing.T, source bool, in []byte) {
		cmd := "scp -r -p -t /"
		if source {
			cmd = "scp -r -p -f / a.txt"
		}
		serveStream(t, &ssh.Request{Type: "exec", Payload: ssh.Marshal(struct{ Command string }{cmd})}, in)
	})
}

// pipeChannel is an ssh.Channel reading from a pipe and recording what is written.
type pipeChannel struct {
	fakeChannel
	mu  sync.Mutex
	out []byte
}

func (c *pipeChannel) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.out = append(c.out, p...)
	return len(p), nil
}

// The gate hands on a WRITE sent right after an OPEN only once the OPEN's answer was written, even when the
// answer is written in pieces; packets other than READ and WRITE pass at once.
func TestGateHoldsAWriteUntilTheOpenIsAnswered(t *testing.T) {
	in := stream(frame(request(3, 7).str("f").u32(0x1a).u32(0)), frame(request(17, 8).str("/")),
		frame(request(6, 9).str("1").u64(0).str("data")))
	g := newGatedChannel(&pipeChannel{fakeChannel: fakeChannel{in: &limitedReader{data: in}}})
	buf := make([]byte, 1<<10)
	var got []byte
	for len(got) < len(in)-len(frame(request(6, 9).str("1").u64(0).str("data"))) {
		n, err := g.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
	}
	done := make(chan []byte)
	go func() {
		n, _ := io.ReadFull(g, buf[:len(in)-len(got)])
		done <- buf[:n]
	}()
	select {
	case <-done:
		t.Fatal("the WRITE passed before the OPEN was answered")
	case <-time.After(50 * time.Millisecond):
	}
	reply := frame(pkt(nil).u8(102).u32(7).str("1"))
	g.Write(reply[:6])
	select {
	case <-done:
		t.Fatal("the WRITE passed on half an answer")
	case <-time.After(20 * time.Millisecond):
	}
	g.Write(reply[6:])
	select {
	case b := <-done:
		if got = append(got, b...); !bytes.Equal(got, in) {
			t.Fatalf("the stream changed: %x, want %x", got, in)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the WRITE stayed held after the answer")
	}
}
