package s3client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"time"
)

// idleConn bounds the silence of one S3 connection: every Read must receive a byte, and every Write must
// hand its bytes to the kernel, within idle of its start. A slow transfer that keeps moving never fails; a
// connection whose peer went silent (a partition that drops packets and closes nothing) fails its pending
// Read or Write with an *IdleTimeoutError after idle instead of waiting for TCP to give up, which takes
// many minutes.
//
// Write sets the read deadline too: a request just sent means a response is expected, and net/http has a
// Read pending on every connection (its read loop), started while the connection sat idle in the pool. A
// deadline set on a connection applies to the Reads pending on it, so Write moves that Read's deadline to
// now+idle and the response has the full idle to start arriving.
//
// The pending Read of a connection idle in the pool is not pushed by anything and times out after idle;
// New sets the transport's IdleConnTimeout below idle (idlePoolTimeout), so the pool closes the connection
// first. A connection taken from the pool just before that and whose request is written more than idle/3
// later (a stalled process) can still see its read time out before the response; net/http then retries the
// request on a new connection when nothing was written yet, and the SDK's retryer retries it otherwise
// (every transport error is retryable), so the cost is one attempt.
//
// A request whose body write blocks has a Read pending too, and both deadlines expire together: whichever
// fails first, net/http closes the connection and the other sees net.ErrClosed. expired remembers that the
// deadline fired, so that error is reported as the idle timeout it is.
type idleConn struct {
	net.Conn
	idle    time.Duration
	expired atomic.Bool // a Read or Write failed on the idle deadline
}

// Read reads with a read deadline idle from now.
func (c *idleConn) Read(p []byte) (int, error) {
	if err := c.Conn.SetReadDeadline(time.Now().Add(c.idle)); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(p)
	return n, c.idleError("read", err)
}

// Write writes with both deadlines idle from now (see idleConn).
func (c *idleConn) Write(p []byte) (int, error) {
	if err := c.Conn.SetDeadline(time.Now().Add(c.idle)); err != nil {
		return 0, err
	}
	n, err := c.Conn.Write(p)
	return n, c.idleError("write", err)
}

// idleError turns an expired deadline, and a close that followed one, into an *IdleTimeoutError; other
// errors pass unchanged.
func (c *idleConn) idleError(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.expired.Store(true)
	case !errors.Is(err, net.ErrClosed) || !c.expired.Load():
		return err
	}
	return &IdleTimeoutError{Op: op, Idle: c.idle, Err: err}
}

// IdleTimeoutError reports that an S3 connection sent or received nothing for Config.IdleTimeout, so the
// request was failed rather than left waiting for the network to come back. The adapter classifies it as
// ErrUnavailable; the SDK retries it like any transport error. It is a net.Error whose Timeout is true and
// unwraps to the connection's deadline error (os.ErrDeadlineExceeded).
type IdleTimeoutError struct {
	Op   string        // "read" or "write"
	Idle time.Duration // the idle timeout that expired
	Err  error         // the connection's error
}

// Error formats as "no data received from S3 for 30s (idle timeout)".
func (e *IdleTimeoutError) Error() string {
	if e.Op == "write" {
		return fmt.Sprintf("S3 accepted no data for %v (idle timeout): %v", e.Idle, e.Err)
	}
	return fmt.Sprintf("no data received from S3 for %v (idle timeout): %v", e.Idle, e.Err)
}

// Unwrap returns the connection's error.
func (e *IdleTimeoutError) Unwrap() error { return e.Err }

// Timeout reports true: the error is a timeout (net.Error).
func (e *IdleTimeoutError) Timeout() bool { return true }

// Temporary reports true: a new connection may succeed (net.Error; the SDK's retryer consults it).
func (e *IdleTimeoutError) Temporary() bool { return true }

var _ net.Error = (*IdleTimeoutError)(nil)

// idleDialer wraps dial so that every connection it makes is an idleConn.
func idleDialer(dial func(ctx context.Context, network, addr string) (net.Conn, error), idle time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &idleConn{Conn: conn, idle: idle}, nil
	}
}

// idlePoolTimeout is how long a connection may sit unused in the pool: below idle, so that the pool closes
// it before the read pending on it times out (see idleConn), and at most 90 s.
func idlePoolTimeout(idle time.Duration) time.Duration {
	return min(90*time.Second, idle*2/3)
}
