package cache

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/s3ftp/s3ftp/internal/logbuf"
	"github.com/s3ftp/s3ftp/s3client"
	"github.com/s3ftp/s3ftp/s3client/s3fake"
)

// headerTimeout returns the error net/http gives a request whose server accepted it and never answered:
// "timeout awaiting response headers", which matches context.DeadlineExceeded although no context ended.
func headerTimeout(t *testing.T) error {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var held sync.WaitGroup
	defer held.Wait()
	held.Add(1)
	go func() { // read the request, answer nothing, hold the connection until the client drops it
		defer held.Done()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(io.Discard, c)
	}()
	tr := &http.Transport{ResponseHeaderTimeout: 50 * time.Millisecond}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get("http://" + ln.Addr().String() + "/")
	if err == nil {
		resp.Body.Close()
		t.Fatal("a server that never answers answered")
	}
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "awaiting response headers") {
		t.Fatalf("net/http's header timeout is %v, which does not match context.DeadlineExceeded: the case "+
			"this test covers no longer exists", err)
	}
	return err
}

// TestHeaderTimeoutIsAnS3Failure: a GET that failed on the response header timeout (an S3 error of kind
// ErrUnavailable whose cause matches context.DeadlineExceeded) fails the read that needs the block after that
// one GET, with the S3 error and a log line, whether a ranged fetch or the stream issued it. It is not taken
// for a fill canceled by another reader, which would be fetched again, silently, up to maxCanceledRetries
// times: with the default settings that is eight retry chains of about 95 s each for one read.
func TestHeaderTimeoutIsAnS3Failure(t *testing.T) {
	cause := &s3client.Error{Kind: s3client.ErrUnavailable, Err: headerTimeout(t)}
	const bs = 1024
	for _, tc := range []struct {
		name string
		off  int64 // 0: the first read is sequential (stream); far from 0: a ranged fetch
	}{
		{"stream", 0},
		{"ranged-fetch", 40 * bs},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := s3fake.New()
			log, logs := logbuf.New(nil)
			c := newCache(t, Config{MaxBytes: 64 * bs, BlockSize: bs, Log: log})
			data, info := putObject(t, f, "obj", 64*bs, 7)
			r := newReader(t, c, f, info, ReaderConfig{})
			var partitioned atomic.Bool
			partitioned.Store(true)
			f.SetFault(func(op, _ string, _ int) error {
				if op == "GetObject" && partitioned.Load() {
					return cause
				}
				return nil
			})

			_, err := r.ReadAt(context.Background(), make([]byte, bs), tc.off)
			if s3client.KindOf(err) != s3client.ErrUnavailable {
				t.Fatalf("read while every GET times out awaiting headers: err %v (kind %v), want kind %v", err,
					s3client.KindOf(err), s3client.ErrUnavailable)
			}
			if n := f.Calls("GetObject"); n != 1 {
				t.Errorf("GETs issued for one failed read = %d, want 1: the failure was retried as a cancellation", n)
			}
			r.Close() // ends the fills, so the log is complete
			if !strings.Contains(logs.String(), "awaiting response headers") {
				t.Errorf("no log line names the header timeout; log:\n%s", logs.String())
			}

			// The failure is not remembered: once S3 answers again, the same read gets the exact bytes.
			partitioned.Store(false)
			r2 := newReader(t, c, f, info, ReaderConfig{})
			p := make([]byte, bs)
			if _, err := r2.ReadAt(context.Background(), p, tc.off); err != nil {
				t.Fatalf("read after S3 answers again: %v", err)
			}
			if !bytes.Equal(p, data[tc.off:tc.off+bs]) {
				t.Error("read after S3 answers again: bytes differ from the object's")
			}
		})
	}
}
