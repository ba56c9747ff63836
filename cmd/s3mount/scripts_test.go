package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/s3ftp/s3ftp/internal/miniotest"
)

const (
	helperScript = "../../scripts/mount.s3mount"
	unitFile     = "../../scripts/systemd/s3mount@.service"
)

// runHelper runs scripts/mount.s3mount the way mount(8) does, with the test binary as s3mount and no
// credentials file besides the one given.
func runHelper(t *testing.T, srv *miniotest.Server, envFile string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(helperScript, args...)
	cmd.Env = append(append(os.Environ(), srv.Env()...), "S3MOUNT="+binary, "S3MOUNT_ENV_FILE="+envFile)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	} else if err != nil {
		t.Fatalf("running %s: %v", helperScript, err)
	}
	return 0, string(out)
}

// TestMountHelper: "mount.s3mount SPEC DIR [-sfnv] -o OPTS -t TYPE" (how mount(8) and fstab call it) mounts the
// bucket with fstab-only options ignored, -f (fake) mounts nothing, and failures keep s3mount's exit code.
func TestMountHelper(t *testing.T) {
	srv := miniotest.Shared(t)
	bucket := srv.NewBucket(t)
	mnt := t.TempDir()
	logFile := filepath.Join(t.TempDir(), "log")
	opts := "_netdev,nofail,defaults,noatime,x-systemd.automount,endpoint=" + srv.Endpoint + ",log_file=" + logFile +
		",memory_budget=32M,cache_size=32M,max_readahead=8M,log_level=debug"
	noEnv := filepath.Join(t.TempDir(), "absent.env")

	if code, out := runHelper(t, srv, noEnv, bucket, mnt, "-f", "-o", opts); code != 0 || isMounted(t, mnt) {
		t.Fatalf("fake mount (-f): exit %d, mounted %v: %s", code, isMounted(t, mnt), out)
	}

	code, out := runHelper(t, srv, noEnv, bucket+":in", mnt, "-sn", "-o", opts, "-t", "fuse.s3mount")
	if code != 0 {
		t.Fatalf("mount.s3mount exited %d: %s\nlog:\n%s", code, out, readFile(logFile))
	}
	d := &daemonMount{dir: mnt, logFile: logFile}
	t.Cleanup(func() { d.unmount(t) })
	if !isMounted(t, mnt) {
		t.Fatalf("%s not mounted after mount.s3mount exited 0", mnt)
	}
	d.pid = daemonPID(t, logFile)
	if err := os.WriteFile(filepath.Join(mnt, "f.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Client(t, bucket).HeadObject(t.Context(), "in/f.txt"); err != nil {
		t.Errorf("file written under the prefix mount: %v", err)
	}
	log := readFile(logFile)
	if !strings.Contains(log, "memory_budget=32MiB") {
		t.Errorf("the -o memory_budget did not reach s3mount; log:\n%s", log)
	}
	for _, o := range []string{"_netdev", "nofail", "defaults", "noatime", "x-systemd.automount"} {
		if !strings.Contains(log, `msg="mount option ignored" option=`+o+"\n") {
			t.Errorf("no debug line for the ignored option %s; log:\n%s", o, log)
		}
	}

	other := t.TempDir()
	code, out = runHelper(t, srv, noEnv, "no-such-bucket-helper", other, "-o", "endpoint="+srv.Endpoint+",log_file="+logFile)
	if code != ExitS3 || !strings.Contains(out, "no-such-bucket-helper") || strings.Count(out, "\n") != 1 {
		t.Errorf("missing bucket through the helper: exit %d, output %q; want %d and one line naming the bucket",
			code, out, ExitS3)
	}
}

// TestMountHelperEnvFile: credentials come from the env file, which must not be writable by others.
func TestMountHelperEnvFile(t *testing.T) {
	srv := miniotest.Shared(t)
	bucket := srv.NewBucket(t)
	envFile := filepath.Join(t.TempDir(), "env")
	if err := os.WriteFile(envFile, []byte("AWS_SECRET_ACCESS_KEY=wrong-from-env-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mnt := t.TempDir()
	args := []string{bucket, mnt, "-o", "endpoint=" + srv.Endpoint + ",log_file=" + filepath.Join(t.TempDir(), "log")}
	code, out := runHelper(t, srv, envFile, args...)
	if code != ExitS3 || !strings.Contains(out, "denied") {
		t.Errorf("with a wrong secret in the env file: exit %d, %q; want %d and access denied", code, out, ExitS3)
	}
	if err := os.Chmod(envFile, 0o666); err != nil {
		t.Fatal(err)
	}
	code, out = runHelper(t, srv, envFile, args...)
	if code == 0 || !strings.Contains(out, "writable") {
		t.Errorf("with a world-writable env file: exit %d, %q; want a refusal", code, out)
	}
	if isMounted(t, mnt) {
		exec.Command("fusermount3", "-u", mnt).Run()
		t.Error("mounted despite the refused env file")
	}
}

// TestSystemdUnitCommandLine: the unit's ExecStart, with its variables filled as documented, is a valid s3mount
// command line in the foreground, and the unit keeps the ordering ftpfront relies on.
func TestSystemdUnitCommandLine(t *testing.T) {
	f, err := os.Open(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keys := map[string]string{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := s.Text()
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			keys[k] = v
		}
	}
	// The journal's directory is the state directory systemd creates (/var/lib/ + StateDirectory), and the
	// dead-mount clean-up stays as a belt for the unmount watcher.
	for k, want := range map[string]string{"Restart": "on-failure", "Before": "ftpfront.service", "Type": "notify",
		"StateDirectory": "s3mount", "ExecStopPost": "-/bin/fusermount3 -u -z %f"} {
		if keys[k] != want {
			t.Errorf("%s=%q, want %q", k, keys[k], want)
		}
	}
	// The watchdog: pings come from the main process (NotifyAccess=main), systemd's default WatchdogSignal
	// (SIGABRT) makes the Go runtime log every goroutine's stack, Restart=on-failure covers a watchdog timeout,
	// and the probe's timeout (a quarter of WatchdogSec) is no shorter than /healthz's.
	if keys["NotifyAccess"] != "main" || keys["KillMode"] != "mixed" || keys["WatchdogSignal"] != "" {
		t.Errorf("NotifyAccess=%q KillMode=%q WatchdogSignal=%q, want main, mixed and the default SIGABRT",
			keys["NotifyAccess"], keys["KillMode"], keys["WatchdogSignal"])
	}
	wd, err := time.ParseDuration(keys["WatchdogSec"])
	if err != nil {
		t.Fatalf("WatchdogSec=%q: %v", keys["WatchdogSec"], err)
	}
	usec := strconv.FormatInt(wd.Microseconds(), 10)
	interval, err := watchdogFromEnv(func(k string) string { return map[string]string{"WATCHDOG_USEC": usec}[k] }, 1)
	if err != nil || interval != wd/2 || interval/2 < healthTimeout {
		t.Errorf("WatchdogSec=%v: ping interval %v (%v), probe timeout %v; want WatchdogSec/2 and a probe timeout "+
			"of at least %v", wd, interval, err, interval/2, healthTimeout)
	}
	cmdline := strings.NewReplacer(
		"${OPTIONS}", "allow_other,endpoint=https://s3.eu-west-1.amazonaws.com,memory_budget=256M",
		"${SOURCE}", "mybucket:inbox",
		"%f", "/srv/ftp").Replace(keys["ExecStart"])
	fields := strings.Fields(cmdline)
	if len(fields) < 2 || filepath.Base(fields[0]) != "s3mount" {
		t.Fatalf("ExecStart=%q does not run s3mount", keys["ExecStart"])
	}
	c, err := parseArgs(fields[1:])
	if err != nil {
		t.Fatalf("ExecStart %q: %v", cmdline, err)
	}
	if !c.Foreground || c.S3.Bucket != "mybucket" || c.Opts.Prefix != "inbox/" || c.Mountpoint != "/srv/ftp" ||
		!c.Opts.AllowOther || c.Opts.MemoryBudget != 256<<20 || !c.AutoUnmount {
		t.Errorf("ExecStart %q parsed as %+v", cmdline, c)
	}
	if d, _ := defaultStateDir(0); d != "/var/lib/"+keys["StateDirectory"] {
		t.Errorf("the unit's StateDirectory=%s is not root's default state directory %s", keys["StateDirectory"], d)
	}
	// An empty OPTIONS is still a valid command line.
	if _, err := parseArgs([]string{"-f", "-o", "", "b", "/srv/ftp"}); err != nil {
		t.Errorf("empty -o: %v", err)
	}
}
