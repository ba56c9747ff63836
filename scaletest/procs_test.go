package scaletest

import (
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// daemon is a process started inside a network namespace with nsenter (which, unlike "ip netns exec", keeps
// the mount namespace, so a FUSE mount made by s3mount is seen by ftpfront and the test).
type daemon struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has exited
	err     error         // exit status; valid once done is closed
}

// startDaemon runs bin with args in the network namespace file nsPath, output appended to a log file in dir, and
// stops it in t.Cleanup. env is the whole environment (nothing is inherited). The process dies with the test
// binary (Pdeathsig) and gets its own process group.
func startDaemon(t *testing.T, dir, name, nsPath, bin string, args, env []string) *daemon {
	t.Helper()
	d := &daemon{name: name, logPath: filepath.Join(dir, name+".log"), done: make(chan struct{})}
	logf, err := os.OpenFile(d.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	d.cmd = exec.Command(nsenterBin, append([]string{"--net=" + nsPath, "--", bin}, args...)...)
	d.cmd.Env = env
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		d.err = d.cmd.Wait()
		logf.Close()
		close(d.done)
	}()
	t.Cleanup(func() {
		d.stop(t)
		if t.Failed() {
			t.Logf("%s log (tail):\n%s", name, tail(d.log(), 3000))
		}
	})
	return d
}

// exited reports whether the process has ended.
func (d *daemon) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and, after 10 s, SIGKILL to the process group, and waits for the process.
func (d *daemon) stop(t testing.TB) {
	if d.exited() {
		return
	}
	_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		t.Logf("%s ignored SIGTERM for 10s; killing it", d.name)
		_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		<-d.done
	}
}

// kill ends the process group with SIGKILL, as a crash would, and waits for the process.
func (d *daemon) kill() {
	_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
	<-d.done
}

// log returns what the process wrote so far.
func (d *daemon) log() string {
	b, _ := os.ReadFile(d.logPath)
	return string(b)
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// waitUntil polls cond every 50 ms until it holds, d (when not nil) exits, or timeout passes; the last two fail
// the test with what.
func waitUntil(t testing.TB, timeout time.Duration, what string, d *daemon, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if d != nil && d.exited() {
			t.Fatalf("%s exited (%v) while waiting for %s; log:\n%s", d.name, d.err, what, tail(d.log(), 3000))
		}
		if time.Now().After(deadline) {
			if d != nil {
				t.Fatalf("no %s after %v; %s log:\n%s", what, timeout, d.name, tail(d.log(), 3000))
			}
			t.Fatalf("no %s after %v", what, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// relay forwards TCP connections from a listener to target. It lets the hosts' namespaces reach the MinIO
// server, which miniolocal binds to loopback only.
type relay struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{} // guarded by mu; every connection relayed so far (few: SDK keep-alive), closed by Close
	closed bool                  // guarded by mu
}

// startRelay listens on addr and forwards to target until t ends.
func startRelay(t *testing.T, addr, target string) *relay {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("relay listen %s: %v", addr, err)
	}
	r := &relay{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	r.wg.Add(1)
	go r.accept(t)
	t.Cleanup(r.Close)
	return r
}

func (r *relay) accept(t *testing.T) {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				t.Logf("relay accept: %v", err)
			}
			return
		}
		up, err := net.Dial("tcp", r.target)
		if err != nil {
			t.Logf("relay dial %s: %v", r.target, err)
			c.Close()
			continue
		}
		if !r.track(c, up) {
			return
		}
		r.wg.Add(2)
		go r.pipe(c, up)
		go r.pipe(up, c)
	}
}

// track registers both ends of a relayed connection; false (and both closed) once the relay is closed.
func (r *relay) track(a, b net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		a.Close()
		b.Close()
		return false
	}
	r.conns[a], r.conns[b] = struct{}{}, struct{}{}
	return true
}

// pipe copies src to dst and then half-closes dst, so each direction ends on its own.
func (r *relay) pipe(dst, src net.Conn) {
	defer r.wg.Done()
	_, _ = io.Copy(dst, src)
	if tc, ok := dst.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
}

// Close stops accepting, closes every relayed connection and waits for the copy goroutines.
func (r *relay) Close() {
	r.mu.Lock()
	r.closed = true
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.ln.Close()
	r.wg.Wait()
}

// baseEnv is the environment every daemon gets: PATH and HOME only, plus what the caller adds. No AWS_*,
// S3MOUNT_* or FTPFRONT_* setting of the test's environment reaches a daemon.
func baseEnv(extra ...string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for _, kv := range extra {
		if strings.Contains(kv, "=") {
			env = append(env, kv)
		}
	}
	return env
}
