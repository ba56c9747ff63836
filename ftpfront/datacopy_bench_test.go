package ftpfront

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// BenchmarkCopyData measures the data-channel copy loop (copyData) of a download over a loopback TCP connection:
// the file side is an in-memory reader, the peer discards what it receives. b.SetBytes makes the result MB/s.
func BenchmarkCopyData(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(io.Discard, c)
			}()
		}
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()

	payload := bytes.Repeat([]byte("0123456789abcdef"), (8<<20)/16)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		t := &transfer{}
		n, rerr, werr := copyData(conn, bytes.NewReader(payload), conn, time.Minute, t)
		if rerr != nil || werr != nil || n != int64(len(payload)) || t.bytes.Load() != n {
			b.Fatalf("copyData = %d, %v, %v; counted %d", n, rerr, werr, t.bytes.Load())
		}
	}
}
