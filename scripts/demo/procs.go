package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/s3ftp/s3ftp/internal/mountinfo"
)

// child is a daemon the demo started. Its stdout and stderr go to logPath; done closes when it exits.
type child struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error // Wait's result, valid once done is closed
}

// startChild starts bin with args in its own process group (so a terminal's Ctrl-C reaches only the demo, which
// stops the daemons in order) with SIGTERM as its parent-death signal (so a killed demo still unmounts).
func startChild(name, bin string, args, env []string, logPath string) (*child, error) {
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own descriptor
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

// stop sends SIGTERM and waits up to grace, then kills. An exit caused by the SIGTERM is not an error; a
// non-zero exit code is (the daemons exit 0 after a clean shutdown).
func (c *child) stop(grace time.Duration) error {
	select {
	case <-c.done:
		return c.exitErr()
	default:
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
		return c.exitErr()
	case <-time.After(grace):
	}
	c.cmd.Process.Kill()
	<-c.done
	return fmt.Errorf("%s did not stop within %v after SIGTERM and was killed\n%s", c.name, grace, c.tail())
}

func (c *child) exitErr() error {
	if c.err == nil {
		return nil
	}
	var ee *exec.ExitError
	if errors.As(c.err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM {
			return nil
		}
	}
	return fmt.Errorf("%s: %v\n%s", c.name, c.err, c.tail())
}

// tail returns the last lines of the child's log, for error messages.
func (c *child) tail() string {
	b, err := os.ReadFile(c.logPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return "--- last lines of " + c.logPath + " ---\n" + strings.Join(lines, "\n")
}

// waitFor polls cond until it holds, the child exits, ctx ends or timeout passes.
func waitFor(ctx context.Context, c *child, timeout time.Duration, cond func() bool) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if cond() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.done:
			return fmt.Errorf("%s exited: %v", c.name, c.err)
		case <-deadline.C:
			return fmt.Errorf("not ready after %v", timeout)
		case <-tick.C:
		}
	}
}

// notifySocket receives sd_notify datagrams (READY=1) from a child, as systemd would.
type notifySocket struct {
	conn *net.UnixConn
	dir  string
	path string
}

// listenNotify binds a datagram socket in a fresh temporary directory (socket paths are limited to 107 bytes,
// so not under the demo directory).
func listenNotify() (*notifySocket, error) {
	base := ""
	if len(os.TempDir()) > 60 {
		base = "/tmp" // a long $TMPDIR would push the socket path over the limit
	}
	dir, err := os.MkdirTemp(base, "s3ftp-demo-")
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("notify socket: %w", err)
	}
	return &notifySocket{conn: conn, dir: dir, path: path}, nil
}

func (n *notifySocket) Close() {
	n.conn.Close()
	os.RemoveAll(n.dir)
}

// waitReady waits for a datagram with the line READY=1.
func (n *notifySocket) waitReady(ctx context.Context, c *child, timeout time.Duration) error {
	got := make(chan error, 1)
	go func() {
		buf := make([]byte, 4096)
		for {
			k, _, err := n.conn.ReadFromUnix(buf)
			if err != nil {
				got <- err
				return
			}
			for _, line := range bytes.Split(buf[:k], []byte("\n")) {
				if string(line) == "READY=1" {
					got <- nil
					return
				}
			}
		}
	}()
	defer n.conn.SetReadDeadline(time.Now()) // ends the reader goroutine
	select {
	case err := <-got:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-c.done:
		return fmt.Errorf("%s exited: %v", c.name, c.err)
	case <-time.After(timeout):
		return fmt.Errorf("no READY=1 after %v", timeout)
	}
}

// mounted reports whether dir is a mount point in this process's mount table; an unreadable table counts as no.
func mounted(dir string) bool {
	ok, _ := mountinfo.IsMounted(dir)
	return ok
}
