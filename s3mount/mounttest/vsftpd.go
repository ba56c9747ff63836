package mounttest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// VsftpdBinary is where Debian installs vsftpd.
const VsftpdBinary = "/usr/sbin/vsftpd"

// Vsftpd is Debian's vsftpd running in the foreground for one test, serving a directory (normally a mount) to
// anonymous clients over plain FTP on 127.0.0.1. Anonymous users may upload, overwrite, append (APPE), resume
// (REST+STOR), rename, delete, create directories and set modification times (MDTM with a time). vsftpd runs
// the session as the system user "ftp", so the served directory must be writable by it (a mount with
// AllowOther and the ftp user's UID/GID).
type Vsftpd struct {
	// Addr is the control connection's address, host:port.
	Addr string
	// Log is vsftpd's log file (the FTP protocol dialogue).
	Log string
}

// StartVsftpd starts vsftpd serving root and stops it when the test ends. The test fails, with a message saying
// what is missing, when vsftpd is not installed or does not come up.
func StartVsftpd(t testing.TB, root string) *Vsftpd {
	t.Helper()
	if _, err := os.Stat(VsftpdBinary); err != nil {
		t.Fatalf("mounttest: vsftpd is not installed (%v): apt-get install vsftpd", err)
	}
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty") // secure_chroot_dir: must exist and not be writable by ftp
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	pasv := freePort(t)
	logFile := filepath.Join(dir, "vsftpd.log")
	conf := strings.Join([]string{
		"listen=YES",
		"listen_ipv6=NO",
		"listen_address=127.0.0.1",
		fmt.Sprintf("listen_port=%d", port),
		"background=NO",
		"seccomp_sandbox=NO",
		"anonymous_enable=YES",
		"no_anon_password=YES",
		"local_enable=NO",
		"anon_root=" + root,
		"write_enable=YES",
		"anon_upload_enable=YES",
		"anon_mkdir_write_enable=YES",
		"anon_other_write_enable=YES",
		"anon_world_readable_only=NO",
		"anon_umask=022",
		"allow_writeable_chroot=YES",
		"mdtm_write=YES",
		"use_localtime=NO",
		"pasv_enable=YES",
		"pasv_address=127.0.0.1",
		fmt.Sprintf("pasv_min_port=%d", pasv),
		fmt.Sprintf("pasv_max_port=%d", pasv),
		"connect_from_port_20=NO",
		"secure_chroot_dir=" + empty,
		"check_shell=NO",
		"syslog_enable=NO",
		"xferlog_enable=YES",
		"log_ftp_protocol=YES",
		"vsftpd_log_file=" + logFile,
		"dual_log_enable=NO",
		"max_per_ip=0",
		"",
	}, "\n")
	confFile := filepath.Join(dir, "vsftpd.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd := exec.Command(VsftpdBinary, confFile)
	cmd.Stdout = &stderr
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("mounttest: starting vsftpd: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		// vsftpd forks one process pair per session: stop the whole process group.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			if b, err := os.ReadFile(logFile); err == nil {
				t.Logf("vsftpd log:\n%s", b)
			}
		}
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case err := <-exited:
			t.Fatalf("mounttest: vsftpd exited at start-up (%v): %s", err, stderr.String())
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("mounttest: vsftpd does not listen on %s after 15s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &Vsftpd{Addr: addr, Log: logFile}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
