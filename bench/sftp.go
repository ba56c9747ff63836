package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The SSH tools upload and download one file with OpenSSH's sftp client (sftp -b, key authentication, the
// client's default 64 requests of 32 KiB in flight) through one of two servers:
//
//   - s3mount+sftp: ftpfront's SFTP server (--sftp-listen) over an s3mount mount point;
//   - sshd+s3mount, sshd+s3fs: Debian's OpenSSH sshd with "Subsystem sftp internal-sftp", ForceCommand
//     internal-sftp and ChrootDirectory at the mount point, over s3mount or s3fs.
//
// Both servers get the same per-run ed25519 client key. The upload source and the download target are files on
// a tmpfs of their own (not the tool's scratch file system), so the client reads and writes memory. sshd's
// ChrootDirectory needs every component of the mount point's path to be root-owned and not writable by group or
// others, which /tmp is not: the sshd tools mount under e.chrootBase, a directory under /run.

// sshTool describes one SSH tool: the mount it serves and whether sshd (rather than ftpfront) serves it.
type sshTool struct {
	mount string // toolS3mount or toolS3fs
	sshd  bool
}

// sshTools are the SSH tools by name.
var sshTools = map[string]sshTool{
	toolSFTP:        {mount: toolS3mount},
	toolSSHDS3mount: {mount: toolS3mount, sshd: true},
	toolSSHDS3fs:    {mount: toolS3fs, sshd: true},
}

// isSSHTool reports whether tool is one of the SSH tools.
func isSSHTool(tool string) bool {
	_, ok := sshTools[tool]
	return ok
}

// sshdBinary is where Debian's openssh-server installs sshd; sshd re-executes itself and needs an absolute path.
const sshdBinary = "/usr/sbin/sshd"

// sshClientKey returns the run's client key (private key path and authorized_keys line), generating it with
// ssh-keygen on first use.
func (e *benchEnv) sshClientKey(ctx context.Context) (string, string, error) {
	if e.sshKey == "" {
		dir := filepath.Join(e.work, "ssh")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", "", err
		}
		key := filepath.Join(dir, "id_ed25519")
		if err := sshKeygen(ctx, key); err != nil {
			return "", "", err
		}
		pub, err := os.ReadFile(key + ".pub")
		if err != nil {
			return "", "", err
		}
		e.sshKey, e.sshPub = key, strings.TrimSpace(string(pub))
	}
	return e.sshKey, e.sshPub, nil
}

// sshKeygen writes a new ed25519 key pair without passphrase at path and path.pub.
func sshKeygen(ctx context.Context, path string) error {
	out, err := exec.CommandContext(ctx, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "s3ftp-bench",
		"-f", path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ssh-keygen: %v: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// sftpLocal returns the directory of the SFTP transfers' local files, a tmpfs mounted on first use, and the
// upload source in it: a --size pattern file written once per run.
func (e *benchEnv) sftpLocal() (dir, src string, err error) {
	dir = filepath.Join(e.work, "sftp-local")
	src = filepath.Join(dir, "upload.bin")
	if mounted(dir) {
		return dir, src, nil
	}
	if err := e.mountTmpfs(dir); err != nil {
		return "", "", err
	}
	f, err := os.Create(src)
	if err != nil {
		return "", "", err
	}
	_, err = io.Copy(f, newContent(e.opts.Size))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return dir, src, err
}

// sshServer is a running SSH server (ftpfront or sshd) whose SFTP serves a mount point.
type sshServer struct {
	name    string // for messages: "ftpfront" or "sshd"
	cmd     *exec.Cmd
	addr    string
	user    string
	logPath string
	exited  chan struct{}
}

// startProcess runs argv in its own process group with its output in a new log file named after the session
// sequence and name.
func (e *benchEnv) startProcess(name string, argv, env []string) (*exec.Cmd, string, chan struct{}, error) {
	e.sessionSeq++
	logPath := filepath.Join(e.logDir, fmt.Sprintf("%03d-%s.log", e.sessionSeq, name))
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, "", nil, err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "# %s\n", strings.Join(argv, " "))
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, "", nil, fmt.Errorf("start %s: %w", name, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	return cmd, logPath, exited, nil
}

// greets reports whether a server on addr sends a line starting with prefix within 5 seconds.
func greets(addr, prefix string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, len(prefix))
	_, err = io.ReadFull(c, buf)
	return err == nil && string(buf) == prefix
}

// waitGreeting waits up to 30 seconds until every address greets with its prefix; it stops the process when it
// does not, or when ctx ends.
func waitGreeting(ctx context.Context, name string, exited chan struct{}, logPath string, stop func(),
	addrPrefix ...string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok := true
		for i := 0; i+1 < len(addrPrefix) && ok; i += 2 {
			ok = greets(addrPrefix[i], addrPrefix[i+1])
		}
		if ok {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("%s exited before greeting: %s", name, tailFile(logPath))
		case <-ctx.Done():
			stop()
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return fmt.Errorf("%s did not greet within 30s: %s", name, tailFile(logPath))
		}
	}
}

// startFrontSFTP runs ftpfront over root with SFTP on, the run's client key in the user's authorized_keys, and
// waits until both its FTPS and SFTP ports greet. The host keys are generated into the work directory by the
// first session and reused by the next.
func (e *benchEnv) startFrontSFTP(ctx context.Context, root string) (*sshServer, error) {
	_, pub, err := e.sshClientKey(ctx)
	if err != nil {
		return nil, err
	}
	hash, err := e.passwordHash(ctx, randomPassword())
	if err != nil {
		return nil, err
	}
	s := &sshServer{name: "ftpfront", user: "bench"}
	users := filepath.Join(e.work, "sftp-users.yaml")
	yaml := fmt.Sprintf("users:\n  - name: %s\n    password: '%s'\n    home: /\n    authorized_keys:\n      - '%s'\n",
		s.user, hash, pub)
	if err := os.WriteFile(users, []byte(yaml), 0o600); err != nil {
		return nil, err
	}
	ftpPort, err := freePort()
	if err != nil {
		return nil, err
	}
	sftpPort, err := freePort()
	if err != nil {
		return nil, err
	}
	ftpAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(ftpPort))
	s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(sftpPort))
	argv := []string{e.ftpfrontBin, "--root", root, "--users", users, "--listen", ftpAddr, "--tls-self-signed",
		"--sftp-listen", s.addr, "--sftp-host-key-dir", filepath.Join(e.work, "ftpfront-host-keys")}
	s.cmd, s.logPath, s.exited, err = e.startProcess("ftpfront", argv, e.childEnv(os.TempDir()))
	if err != nil {
		return nil, err
	}
	if err := waitGreeting(ctx, "ftpfront", s.exited, s.logPath, s.stop, ftpAddr, "220", s.addr, "SSH-"); err != nil {
		return nil, err
	}
	return s, nil
}

// sshdConfig is the configuration of the sshd tools: key-only root login on loopback, SFTP only (internal-sftp
// forced), chrooted at the mount point, no forwarding, no PAM.
const sshdConfig = `ListenAddress 127.0.0.1
HostKey %[1]s/ssh_host_ed25519_key
PidFile %[1]s/sshd.pid
AuthorizedKeysFile %[1]s/authorized_keys
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
AllowUsers root
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AllowTcpForwarding no
AllowAgentForwarding no
X11Forwarding no
PermitTTY no
Subsystem sftp internal-sftp
ForceCommand internal-sftp
ChrootDirectory %[2]s
LogLevel INFO
`

// startSSHD runs OpenSSH's sshd in the foreground on a free loopback port, chrooted SFTP at mp, and waits until it
// greets. Its configuration, host key and authorized_keys live under e.chrootBase.
func (e *benchEnv) startSSHD(ctx context.Context, mp string) (*sshServer, error) {
	_, pub, err := e.sshClientKey(ctx)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(e.chrootBase, "sshd")
	if _, err := os.Stat(filepath.Join(dir, "ssh_host_ed25519_key")); err != nil {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		if err := sshKeygen(ctx, filepath.Join(dir, "ssh_host_ed25519_key")); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), []byte(pub+"\n"), 0o600); err != nil {
			return nil, err
		}
		// sshd's privilege separation directory, made by the systemd unit where sshd runs as a service.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			return nil, err
		}
	}
	config := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(config, []byte(fmt.Sprintf(sshdConfig, dir, mp)), 0o600); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &sshServer{name: "sshd", user: "root", addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	argv := []string{sshdBinary, "-D", "-e", "-f", config, "-p", strconv.Itoa(port)}
	s.cmd, s.logPath, s.exited, err = e.startProcess("sshd", argv, e.childEnv(os.TempDir()))
	if err != nil {
		return nil, err
	}
	if err := waitGreeting(ctx, "sshd", s.exited, s.logPath, s.stop, s.addr, "SSH-"); err != nil {
		return nil, err
	}
	return s, nil
}

// stop asks the server to exit with SIGTERM and kills its process group (sshd's per-connection children
// included) after 10 seconds or once the main process has exited.
func (s *sshServer) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
	}
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.exited
}

// peakRSS is the server's main process VmHWM, -1 when unreadable.
func (s *sshServer) peakRSS() int64 {
	v, err := vmHWM(s.cmd.Process.Pid)
	if err != nil {
		return -1
	}
	return v
}

// sftpBatch runs OpenSSH's sftp against the server with the given batch commands, key authentication only and
// no configuration file, host key or agent of the machine's. sftp -b exits non-zero when a command fails.
func (s *sshServer) sftpBatch(ctx context.Context, key, batch string) error {
	_, port, _ := net.SplitHostPort(s.addr)
	cmd := exec.CommandContext(ctx, "sftp", "-b", "-", "-F", "/dev/null", "-P", port, "-i", key,
		"-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "GlobalKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", s.user+"@127.0.0.1")
	cmd.Stdin = strings.NewReader(batch)
	var outb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outb, &outb
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("sftp via %s: %v: %s", s.name, err, strings.Join(strings.Fields(outb.String()), " "))
	}
	return nil
}

// startSSHServer starts the tool's SSH server over the mount point.
func (e *benchEnv) startSSHServer(ctx context.Context, tool, mp string) (*sshServer, error) {
	if sshTools[tool].sshd {
		return e.startSSHD(ctx, mp)
	}
	return e.startFrontSFTP(ctx, mp)
}

// sshRep measures one repetition of an SSH tool: an sftp put of the --size local file (its object's size then
// checked in S3) and an sftp get of read.bin in a fresh mount, whose bytes are verified after the timing.
func (r *runner) sshRep(ctx context.Context, tool, bucket string, rep int) {
	o := r.o
	t := mountTools()[sshTools[tool].mount]
	t.name = tool
	t.chroot = sshTools[tool].sshd
	key := fmt.Sprintf("sftp-%d.bin", rep)
	r.prog.step(tool, "seq-write", rep)
	r.sshSession(ctx, t, bucket, []string{"seq-write", "seq-write-durable"}, false, func(s *sshServer, clientKey, local, src string) error {
		wctx, cancel := context.WithTimeout(ctx, o.Timeout)
		defer cancel()
		start := time.Now()
		err := s.sftpBatch(wctx, clientKey, fmt.Sprintf("put %s /%s\n", src, key))
		done := time.Now()
		r.record(tool, "seq-write", mibps(o.Size, done.Sub(start)), err)
		if err != nil {
			r.record(tool, "seq-write-durable", 0, fmt.Errorf("upload failed: %w", err))
			return err
		}
		at, err := r.e.raw.waitComplete(wctx, bucket, key, o.Size)
		r.record(tool, "seq-write-durable", mibps(o.Size, at.Sub(start)), err)
		return err
	})
	r.cleanup(ctx, bucket, key)

	r.prog.step(tool, "cold-read", rep)
	r.sshSession(ctx, t, bucket, []string{"cold-read"}, true, func(s *sshServer, clientKey, local, src string) error {
		wctx, cancel := context.WithTimeout(ctx, o.Timeout)
		defer cancel()
		dst := filepath.Join(local, "download.bin")
		defer os.Remove(dst)
		d, err := timeIt(func() error { return s.sftpBatch(wctx, clientKey, "get /read.bin "+dst+"\n") })
		if err == nil {
			err = verifyFile(dst, o.Size)
		}
		r.record(tool, "cold-read", mibps(o.Size, d), err)
		return err
	})
}

// verifyFile checks that the file at path is the first size bytes of the pattern, and no more.
func verifyFile(path string, size int64) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	v := &verifier{}
	if _, err := io.Copy(v, f); err != nil {
		return fmt.Errorf("downloaded file: %w", err)
	}
	if v.off != size {
		return fmt.Errorf("downloaded %d bytes, want %d", v.off, size)
	}
	return nil
}

// sshSession is inSession for the SSH tools: the mount up, the tool's SSH server serving it, body given the
// server, the client key and the local transfer directory with the upload source. The rows get the mount
// daemon's peak RSS; the SSH server's main process peak goes into a note.
func (r *runner) sshSession(ctx context.Context, t mountTool, bucket string, wls []string, fresh bool,
	body func(s *sshServer, clientKey, local, src string) error) {
	fail := func(err error) error {
		for _, w := range wls {
			r.record(t.name, w, 0, err)
		}
		return err
	}
	clientKey, _, err := r.e.sshClientKey(ctx)
	if err != nil {
		fail(err)
		return
	}
	local, src, err := r.e.sftpLocal()
	if err != nil {
		fail(fmt.Errorf("local transfer tmpfs: %w", err))
		return
	}
	r.inSession(ctx, t, bucket, wls, fresh, func(mp string, _ *session) error {
		s, err := r.e.startSSHServer(ctx, t.name, mp)
		if err != nil {
			return fail(err)
		}
		err = body(s, clientKey, local, src)
		rss := s.peakRSS()
		s.stop()
		r.mu.Lock()
		r.frontRSS[t.name] = max(r.frontRSS[t.name], rss)
		r.mu.Unlock()
		return err
	})
}

// sshAvailable says why an SSH tool cannot run, or nil.
func (r *runner) sshAvailable(tool string) error {
	st := sshTools[tool]
	var errs []error
	if st.mount == toolS3mount {
		errs = append(errs, r.e.binErr[toolS3mount])
	} else {
		errs = append(errs, lookTool(st.mount))
	}
	if st.sshd {
		if _, err := os.Stat(sshdBinary); err != nil {
			errs = append(errs, fmt.Errorf("%s is missing: install openssh-server (scripts/bench.sh does)", sshdBinary))
		}
		if r.e.chrootBase == "" {
			errs = append(errs, errors.New("no chroot base directory for sshd"))
		}
	} else {
		errs = append(errs, r.e.binErr[toolFTPS])
	}
	errs = append(errs, lookTool("sftp"), lookTool("ssh-keygen"))
	return errors.Join(errs...)
}
