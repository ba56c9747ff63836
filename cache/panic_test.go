package cache

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/s3ftp/s3ftp/internal/logbuf"
	"github.com/s3ftp/s3ftp/internal/safego"
	"github.com/s3ftp/s3ftp/s3client"
	"github.com/s3ftp/s3ftp/s3client/s3fake"
)

// panickingBody returns, for its first GetObject only, a body that panics after delivering after bytes: a
// bug in the SDK's body reader.
type panickingBody struct {
	g     Getter
	after int64
	used  atomic.Bool
}

func (p *panickingBody) GetObject(ctx context.Context, key string, off, length int64, ifMatch string) (io.ReadCloser, s3client.ObjectInfo, error) {
	body, info, err := p.g.GetObject(ctx, key, off, length, ifMatch)
	if err != nil || p.used.Swap(true) {
		return body, info, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.MultiReader(io.LimitReader(body, p.after), panicReader{}), body}, info, nil
}

type panicReader struct{}

func (panicReader) Read([]byte) (int, error) { panic("injected panic in a GET body") }

// A panic in a goroutine that fills blocks (the prefetch stream or a ranged fetch; in the GET call or while
// reading its body) fails the block it was filling: the read that needs the block gets a *safego.PanicError,
// the panic is logged once with its stack and counted once, the same read again returns the exact bytes, a new
// reader reads the whole object exactly, and once the readers are closed the cache's accounting balances
// (checkIdle: no pin, no block stuck filling, the budget equal to the buffers held).
func TestPanicInFillFailsBlockAndCacheRecovers(t *testing.T) {
	const bs = 64 << 10
	cases := []struct {
		name   string
		off    int64 // where the reads start: 0 is sequential (the stream), 5 blocks in is a ranged fetch
		getter func(f *s3fake.Fake) Getter
	}{
		{"stream GET panics", 0, panicInGet},
		{"stream body panics mid-block", 0, func(f *s3fake.Fake) Getter { return &panickingBody{g: f, after: 2*bs + bs/2} }},
		{"ranged GET panics", 5 * bs, panicInGet},
		{"ranged GET body panics", 5 * bs, func(f *s3fake.Fake) Getter { return &panickingBody{g: f, after: bs / 2} }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := s3fake.New()
			data, info := putObject(t, f, "obj", 8*bs, 21)
			log, logs := logbuf.New(nil)
			panics := &safego.Panics{}
			c := newCache(t, Config{MaxBytes: 1 << 20, BlockSize: bs, Panics: panics, Log: log})
			g := tc.getter(f)
			r := c.NewReader(g, info, ReaderConfig{})
			// Bounds the reads only so that a block left filling by a panic fails the test instead of hanging it.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()

			const chunk = 16 << 10
			buf := make([]byte, chunk)
			off := tc.off
			var rerr error
			for ; off < int64(len(data)); off += chunk {
				var n int
				n, rerr = r.ReadAt(ctx, buf, off)
				if !bytes.Equal(buf[:n], data[off:off+int64(n)]) {
					t.Fatalf("wrong bytes at %d", off)
				}
				if rerr != nil {
					break
				}
			}
			var pe *safego.PanicError
			if !errors.As(rerr, &pe) {
				t.Fatalf("read at %d = %v (%T), want a *safego.PanicError", off, rerr, rerr)
			}
			if n := panics.Count(); n != 1 {
				t.Errorf("panics counted = %d, want 1", n)
			}
			if l := logs.Matching("stack="); len(l) != 1 || !strings.Contains(l[0], "level=ERROR") || !strings.Contains(l[0], "injected panic") {
				t.Errorf("want one ERROR line with the panic and its stack, got %q", l)
			}

			// The same read again, then the rest, return the exact bytes.
			rest := make([]byte, int64(len(data))-off)
			if n, err := r.ReadAt(ctx, rest, off); (err != nil && err != io.EOF) || !bytes.Equal(rest[:n], data[off:]) {
				t.Fatalf("read again at %d: %d bytes, %v", off, n, err)
			}
			r.Close()
			r2 := newReader(t, c, g, info, ReaderConfig{})
			if got := readSeq(t, r2, chunk); !bytes.Equal(got, data) {
				t.Fatalf("a new reader read %d bytes that differ from the object", len(got))
			}
			r2.Close()
			checkIdle(t, c)
			if s := c.Stats(); s.MemBytes > c.max || s.PeakBytes > c.max {
				t.Errorf("MemBytes %d, PeakBytes %d above MaxBytes %d", s.MemBytes, s.PeakBytes, c.max)
			}
			if n := panics.Count(); n != 1 {
				t.Errorf("panics counted at the end = %d, want 1", n)
			}
		})
	}
}

// panicInGet makes the fake's first GetObject call panic.
func panicInGet(f *s3fake.Fake) Getter {
	f.SetFault(func(op, key string, call int) error {
		if op == "GetObject" && call == 1 {
			panic("injected panic in GetObject")
		}
		return nil
	})
	return f
}
