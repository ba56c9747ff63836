package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ftpServer is a running ftpfront serving a mount point over explicit FTPS.
type ftpServer struct {
	cmd        *exec.Cmd
	addr       string
	user, pass string
	logPath    string
	exited     chan struct{}
}

// startFTP runs ftpfront over root with a one-user file whose hash comes from "ftpfront passwd", and waits until
// it greets on its port.
func (e *benchEnv) startFTP(ctx context.Context, root string) (*ftpServer, error) {
	f := &ftpServer{user: "bench", pass: randomPassword(), exited: make(chan struct{})}
	hash, err := e.passwordHash(ctx, f.pass)
	if err != nil {
		return nil, err
	}
	users := filepath.Join(e.work, "ftp-users.yaml")
	yaml := fmt.Sprintf("users:\n  - name: %s\n    password: '%s'\n    home: /\n", f.user, hash)
	if err := os.WriteFile(users, []byte(yaml), 0o600); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	lo, hi, err := freePortRange(16)
	if err != nil {
		return nil, err
	}
	f.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	e.sessionSeq++
	f.logPath = filepath.Join(e.logDir, fmt.Sprintf("%03d-ftpfront.log", e.sessionSeq))
	logf, err := os.Create(f.logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	argv := []string{e.ftpfrontBin, "--root", root, "--users", users, "--listen", f.addr, "--tls-self-signed",
		"--passive-ports", fmt.Sprintf("%d-%d", lo, hi),
		// Every parallel client of a workload comes from 127.0.0.1: no per-address bound on passive listeners.
		"--max-passive-per-ip", "0"}
	fmt.Fprintf(logf, "# %s\n", strings.Join(argv, " "))
	f.cmd = exec.Command(argv[0], argv[1:]...)
	f.cmd.Env = e.childEnv(os.TempDir())
	f.cmd.Stdout, f.cmd.Stderr = logf, logf
	f.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := f.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start ftpfront: %w", err)
	}
	go func() { f.cmd.Wait(); close(f.exited) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", f.addr, time.Second)
		if err == nil {
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 4)
			_, rerr := c.Read(buf)
			c.Close()
			if rerr == nil && string(buf[:3]) == "220" {
				return f, nil
			}
		}
		select {
		case <-f.exited:
			return nil, fmt.Errorf("ftpfront exited before greeting: %s", tailFile(f.logPath))
		case <-ctx.Done():
			f.stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			f.stop()
			return nil, fmt.Errorf("ftpfront did not greet on %s within 30s: %s", f.addr, tailFile(f.logPath))
		}
	}
}

// randomPassword returns a new random password of 24 hex digits.
func randomPassword() string {
	pw := make([]byte, 12)
	rand.Read(pw)
	return hex.EncodeToString(pw)
}

// passwordHash hashes pass with "ftpfront passwd", for a users file.
func (e *benchEnv) passwordHash(ctx context.Context, pass string) (string, error) {
	cmd := exec.CommandContext(ctx, e.ftpfrontBin, "passwd")
	cmd.Stdin = strings.NewReader(pass + "\n")
	var errb bytes.Buffer
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("ftpfront passwd: %v: %s", err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

// peakRSS is ftpfront's VmHWM, -1 when unreadable.
func (f *ftpServer) peakRSS() int64 {
	v, err := vmHWM(f.cmd.Process.Pid)
	if err != nil {
		return -1
	}
	return v
}

// stop asks ftpfront to exit with SIGTERM and kills it after 10 seconds.
func (f *ftpServer) stop() {
	f.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-f.exited:
	case <-time.After(10 * time.Second):
		syscall.Kill(-f.cmd.Process.Pid, syscall.SIGKILL)
		<-f.exited
	}
}

// curlArgs are the options of every transfer: explicit FTPS required, the self-signed certificate accepted,
// passive mode.
func (f *ftpServer) curlArgs(path string) []string {
	return []string{"-sS", "--ssl-reqd", "--insecure", "--ftp-pasv", "--user", f.user + ":" + f.pass,
		"ftp://" + f.addr + "/" + path}
}

// upload sends size pattern bytes to path with curl reading its standard input.
func (f *ftpServer) upload(ctx context.Context, path string, size int64) error {
	cmd := exec.CommandContext(ctx, "curl", append(f.curlArgs(path), "-T", "-")...)
	cmd.Stdin = newContent(size)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("curl upload: %v: %s", err, strings.TrimSpace(errb.String()))
	}
	return nil
}

// download fetches path with curl and verifies the bytes and their count.
func (f *ftpServer) download(ctx context.Context, path string, size int64) error {
	cmd := exec.CommandContext(ctx, "curl", f.curlArgs(path)...)
	v := &verifier{}
	cmd.Stdout = v
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("curl download: %v: %s", err, strings.TrimSpace(errb.String()))
	}
	if v.off != size {
		return fmt.Errorf("curl download: got %d bytes, want %d", v.off, size)
	}
	return nil
}

// freePort asks the kernel for a free loopback TCP port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// freePortRange finds n consecutive loopback ports that can be bound now, for ftpfront's passive range.
func freePortRange(n int) (int, int, error) {
	for try := 0; try < 50; try++ {
		var b [2]byte
		rand.Read(b[:])
		lo := 30000 + int(b[0])<<8%20000 + int(b[1])
		ok := true
		for p := lo; p < lo+n && ok; p++ {
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
			if err != nil {
				ok = false
				continue
			}
			l.Close()
		}
		if ok {
			return lo, lo + n - 1, nil
		}
	}
	return 0, 0, errors.New("no free range of passive ports found")
}

// ftpsRep measures one repetition of the FTPS path: curl through ftpfront serving an s3mount mount point.
func (r *runner) ftpsRep(ctx context.Context, t mountTool, bucket string, rep int) {
	o := r.o
	key := fmt.Sprintf("ftp-%d.bin", rep)
	r.prog.step(toolFTPS, "seq-write", rep)
	r.ftpSession(ctx, t, bucket, []string{"seq-write", "seq-write-durable"}, false, func(f *ftpServer) error {
		wctx, cancel := context.WithTimeout(ctx, o.Timeout)
		defer cancel()
		start := time.Now()
		err := f.upload(wctx, key, o.Size)
		done := time.Now()
		r.record(toolFTPS, "seq-write", mibps(o.Size, done.Sub(start)), err)
		if err != nil {
			r.record(toolFTPS, "seq-write-durable", 0, fmt.Errorf("upload failed: %w", err))
			return err
		}
		at, err := r.e.raw.waitComplete(wctx, bucket, key, o.Size)
		r.record(toolFTPS, "seq-write-durable", mibps(o.Size, at.Sub(start)), err)
		return err
	})
	r.cleanup(ctx, bucket, key)

	r.prog.step(toolFTPS, "cold-read", rep)
	r.ftpSession(ctx, t, bucket, []string{"cold-read", "warm-read"}, true, func(f *ftpServer) error {
		wctx, cancel := context.WithTimeout(ctx, o.Timeout)
		defer cancel()
		d, err := timeIt(func() error { return f.download(wctx, "read.bin", o.Size) })
		r.record(toolFTPS, "cold-read", mibps(o.Size, d), err)
		d, err2 := timeIt(func() error { return f.download(wctx, "read.bin", o.Size) })
		r.record(toolFTPS, "warm-read", mibps(o.Size, d), err2)
		return errors.Join(err, err2)
	})
}

// ftpSession is inSession for the FTPS path: s3mount mounted, ftpfront serving it, body given the server. The
// rows get s3mount's peak RSS; ftpfront's goes into a note.
func (r *runner) ftpSession(ctx context.Context, t mountTool, bucket string, wls []string, fresh bool,
	body func(f *ftpServer) error) {
	ft := t
	ft.name = toolFTPS
	r.inSession(ctx, ft, bucket, wls, fresh, func(mp string, s *session) error {
		f, err := r.e.startFTP(ctx, mp)
		if err != nil {
			for _, w := range wls {
				r.record(toolFTPS, w, 0, err)
			}
			return err
		}
		err = body(f)
		rss := f.peakRSS()
		f.stop()
		r.mu.Lock()
		r.frontRSS[toolFTPS] = max(r.frontRSS[toolFTPS], rss)
		r.mu.Unlock()
		return err
	})
}
