package s3client_test

import (
	"context"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/s3ftp/s3ftp/s3client"
)

// TestSDKSilentServerFailsAttempts: a server that accepts requests but never answers makes each attempt fail
// after ResponseHeaderTimeout with a retryable ErrUnavailable, rather than hanging the call; the retry is
// reported to Config.RetryObserver.
func TestSDKSilentServerFailsAttempts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var conns atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() { // read the request, answer nothing, hold the connection until the client drops it
				defer c.Close()
				io.Copy(io.Discard, c)
			}()
		}
	}()

	cfg := s3client.DefaultConfig("silent")
	cfg.Endpoint = "http://" + ln.Addr().String()
	cfg.Region = "us-east-1"
	cfg.AccessKey, cfg.SecretKey = "key", "secretsecret"
	cfg.MaxAttempts = 2
	cfg.MaxBackoff = time.Millisecond
	cfg.ResponseHeaderTimeout = 100 * time.Millisecond
	var retries atomic.Int32
	var retriedOp atomic.Value
	cfg.RetryObserver = func(op string) {
		retries.Add(1)
		retriedOp.Store(op)
	}
	c, err := s3client.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.HeadObject(context.Background(), "k")
	assertKind(t, err, s3client.ErrUnavailable)
	if n := conns.Load(); n != 2 {
		t.Errorf("connections = %d, want one per attempt (2): the timed-out attempt is retried", n)
	}
	if n, op := retries.Load(), retriedOp.Load(); n != 1 || op != "HeadObject" {
		t.Errorf("RetryObserver saw %d retries (last op %v), want 1 of HeadObject", n, op)
	}
}

func TestConfigDefaultsResponseHeaderTimeout(t *testing.T) {
	if got := s3client.DefaultConfig("b").ResponseHeaderTimeout; got != s3client.DefaultResponseHeaderTimeout {
		t.Errorf("DefaultConfig ResponseHeaderTimeout = %v, want %v", got, s3client.DefaultResponseHeaderTimeout)
	}
	cfg := s3client.Config{Bucket: "b", ResponseHeaderTimeout: -time.Second}
	if err := cfg.Validate(); err == nil {
		t.Error("a negative ResponseHeaderTimeout is valid")
	}
}
