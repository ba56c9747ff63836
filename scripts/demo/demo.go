package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/s3ftp/s3ftp/ftpfront"
	"github.com/s3ftp/s3ftp/internal/miniolocal"
	"github.com/s3ftp/s3ftp/internal/mountinfo"
	"github.com/s3ftp/s3ftp/s3client"
)

// demoUser is the FTP account the demo creates. It is on ftpfront's default refused list (scanners try it), so
// the demo passes that list without it.
const demoUser = "demo"

// Start-up bounds: a failure to become ready within them is reported with the log's tail.
const (
	mountReadyTimeout = 2 * time.Minute
	ftpReadyTimeout   = 30 * time.Second
)

// demo is one run: what was started, so teardown can stop it in reverse order.
type demo struct {
	o         options
	out, errw io.Writer

	dir, mnt, bin string // absolute paths
	endpoint      string
	bucket        string
	region        string
	childEnv      []string
	s3cfg         s3client.Config
	password      string

	minio    *miniolocal.Server
	minioLog *os.File
	notify   *notifySocket
	s3mount  *child
	ftpfront *child
}

func (d *demo) say(format string, a ...any) {
	fmt.Fprintf(d.out, "demo: "+format+"\n", a...)
}

// run starts everything, prints the walk-through and waits for ctx (or runs the self-check).
func (d *demo) run(ctx context.Context) error {
	if _, err := os.Stat("go.mod"); err != nil {
		return errors.New("run the demo from the repository root (go run ./scripts/demo, or make demo)")
	}
	var err error
	if d.dir, err = filepath.Abs(d.o.dir); err != nil {
		return err
	}
	if d.bin, err = filepath.Abs(d.o.bin); err != nil {
		return err
	}
	d.mnt = filepath.Join(d.dir, "mnt")
	if err := os.MkdirAll(d.mnt, 0o755); err != nil {
		return err
	}
	if d.o.bucket == "" {
		cleanAWSEnv()
	}
	if err := d.unmountLeftover(); err != nil {
		return err
	}
	if !d.o.skipBuild {
		d.say("building s3mount and ftpfront into %s", d.bin)
		if err := d.goCmd(ctx, "build", "-o", d.bin+"/", "./cmd/s3mount", "./cmd/ftpfront"); err != nil {
			return fmt.Errorf("building the daemons: %w", err)
		}
	}
	if err := d.startS3(ctx); err != nil {
		return err
	}
	if err := d.startMount(ctx); err != nil {
		return err
	}
	if err := d.startFTP(ctx); err != nil {
		return err
	}
	d.printWalkthrough()
	if d.o.check {
		return d.selfCheck(ctx)
	}
	d.say("running; press Ctrl-C to stop everything and unmount")
	select {
	case <-ctx.Done():
		fmt.Fprintln(d.out)
		d.say("stopping")
		return nil
	case <-d.s3mount.done:
		return fmt.Errorf("s3mount exited: %v\n%s", d.s3mount.err, d.s3mount.tail())
	case <-d.ftpfront.done:
		return fmt.Errorf("ftpfront exited: %v\n%s", d.ftpfront.err, d.ftpfront.tail())
	}
}

// goCmd runs the go tool in the repository root with output to the demo's stderr.
func (d *demo) goCmd(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Stdout, cmd.Stderr = d.errw, d.errw
	return cmd.Run()
}

// unmountLeftover detaches a mount a killed earlier run left on the mount point.
func (d *demo) unmountLeftover() error {
	if !mounted(d.mnt) {
		return nil
	}
	d.say("%s is still mounted from an earlier run; unmounting it", d.mnt)
	return mountinfo.LazyUnmount(d.mnt)
}

// startS3 starts MinIO and creates the bucket, or configures the external bucket.
func (d *demo) startS3(ctx context.Context) error {
	if d.o.bucket != "" {
		d.endpoint, d.bucket, d.region = d.o.endpoint, d.o.bucket, d.o.region
		d.childEnv = withoutDaemonSettings(os.Environ())
		d.s3cfg = s3client.DefaultConfig(d.bucket)
		d.s3cfg.Endpoint, d.s3cfg.Region = d.endpoint, d.region
		where := d.endpoint
		if where == "" {
			where = "AWS S3"
		}
		d.say("using bucket %q on %s (credentials from the AWS SDK's default chain)", d.bucket, where)
		return nil
	}
	bin, err := miniolocal.FindBinary()
	if err != nil {
		d.say("no minio binary (%v); installing it with go install (takes a few minutes)", err)
		if err := d.goCmd(ctx, "install", "github.com/minio/minio@latest"); err != nil {
			return fmt.Errorf("installing minio: %w", err)
		}
		if bin, err = miniolocal.FindBinary(); err != nil {
			return err
		}
	}
	logf, err := os.OpenFile(filepath.Join(d.dir, "minio.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	d.minioLog = logf // closed after MinIO stops: its output is copied into it until then
	d.say("starting MinIO (%s), data in %s", bin, filepath.Join(d.dir, "minio"))
	d.minio, err = miniolocal.Launch(ctx, miniolocal.Options{Binary: bin, DataDir: filepath.Join(d.dir, "minio"), Output: logf})
	if err != nil {
		return fmt.Errorf("starting MinIO: %w", err)
	}
	d.endpoint, d.bucket, d.region = d.minio.Endpoint, "demo", miniolocal.Region
	if err := d.minio.CreateBucket(ctx, d.bucket); err != nil {
		return fmt.Errorf("creating bucket %q: %w", d.bucket, err)
	}
	d.s3cfg = d.minio.Config(d.bucket)
	d.childEnv = append(minimalEnv(), d.minio.Env()...)
	return nil
}

// withoutDaemonSettings drops S3MOUNT_* and FTPFRONT_* variables (and the configuration files they name), so
// the daemons run with exactly the settings the demo passes.
func withoutDaemonSettings(env []string) []string {
	return slices.DeleteFunc(env, func(kv string) bool {
		return strings.HasPrefix(kv, "S3MOUNT_") || strings.HasPrefix(kv, "FTPFRONT_")
	})
}

// minimalEnv is the environment of the daemons in MinIO mode: enough to run, nothing that configures AWS.
func minimalEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "LANG", "TZ"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// startMount runs bin/s3mount -f and waits for its READY=1 (sd_notify) and the mount in the mount table.
func (d *demo) startMount(ctx context.Context) error {
	args := []string{"-f"}
	if d.endpoint != "" {
		args = append(args, "--endpoint", d.endpoint)
	}
	if d.region != "" {
		args = append(args, "--region", d.region)
	}
	args = append(args, d.bucket, d.mnt)
	notify, err := listenNotify()
	if err != nil {
		return err
	}
	d.notify = notify // kept open until s3mount exits, which also notifies STOPPING=1
	env := append(slices.Clone(d.childEnv), "NOTIFY_SOCKET="+notify.path)
	d.say("mounting: %s/s3mount %s", d.o.bin, strings.Join(args, " "))
	d.s3mount, err = startChild("s3mount", filepath.Join(d.bin, "s3mount"), args, env, filepath.Join(d.dir, "s3mount.log"))
	if err != nil {
		return err
	}
	if err := notify.waitReady(ctx, d.s3mount, mountReadyTimeout); err != nil {
		return fmt.Errorf("s3mount did not become ready: %w\n%s", err, d.s3mount.tail())
	}
	if !mounted(d.mnt) {
		return fmt.Errorf("s3mount reported ready but %s is not in the mount table\n%s", d.mnt, d.s3mount.tail())
	}
	return nil
}

// startFTP writes the users file and runs bin/ftpfront, waiting for its ready file and a healthy /healthz.
func (d *demo) startFTP(ctx context.Context) error {
	var err error
	if d.password, err = randomPassword(); err != nil {
		return err
	}
	hash, err := ftpfront.HashPassword(d.password)
	if err != nil {
		return err
	}
	users := filepath.Join(d.dir, "users.yaml")
	yaml := fmt.Sprintf("# written by the demo; the password is printed at start-up\nusers:\n  - name: %s\n    password: '%s'\n    home: /\n",
		demoUser, hash)
	if err := os.WriteFile(users, []byte(yaml), 0o600); err != nil {
		return err
	}
	if err := os.Chmod(users, 0o600); err != nil { // WriteFile keeps the mode of an existing file
		return err
	}
	ready := filepath.Join(d.dir, "ftpfront.ready")
	os.Remove(ready)
	var refused []string
	for _, n := range ftpfront.DefaultRefusedNames {
		if n != demoUser {
			refused = append(refused, n)
		}
	}
	args := []string{"--root", d.mnt, "--users", users, "--tls-self-signed", "--listen", d.o.listen,
		"--passive-ports", d.o.passivePorts, "--health-addr", d.o.healthAddr, "--ready-file", ready,
		"--refuse-users", strings.Join(refused, ",")}
	d.say("serving FTPS: %s/ftpfront --root %s --users %s --tls-self-signed --listen %s --passive-ports %s --health-addr %s",
		d.o.bin, d.mnt, users, d.o.listen, d.o.passivePorts, d.o.healthAddr)
	d.ftpfront, err = startChild("ftpfront", filepath.Join(d.bin, "ftpfront"), args, d.childEnv, filepath.Join(d.dir, "ftpfront.log"))
	if err != nil {
		return err
	}
	health := "http://" + d.o.healthAddr + "/healthz"
	err = waitFor(ctx, d.ftpfront, ftpReadyTimeout, func() bool {
		if _, err := os.Stat(ready); err != nil {
			return false
		}
		res, err := http.Get(health)
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
	if err != nil {
		return fmt.Errorf("ftpfront did not become ready (ready file and %s): %w\n%s", health, err, d.ftpfront.tail())
	}
	return nil
}

// randomPassword returns 20 characters from an alphabet that needs no quoting in URLs or shells.
func randomPassword() (string, error) {
	const alphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b), nil
}

func (d *demo) printWalkthrough() {
	rel := func(p string) string {
		if wd, err := os.Getwd(); err == nil {
			if r, err := filepath.Rel(wd, p); err == nil && !strings.HasPrefix(r, "..") {
				return "./" + r
			}
		}
		return p
	}
	url := fmt.Sprintf("ftp://%s:%s@%s/", demoUser, d.password, d.o.listen)
	host, port, _ := strings.Cut(d.o.listen, ":")
	fmt.Fprintf(d.out, `
s3ftp demo is ready.
  S3:        bucket %q at %s
  mount:     %s   (s3mount log: %s)
  FTPS:      %s, user %s, password %s   (ftpfront log: %s)
  health:    http://%s/healthz

Upload a file over FTPS:
  curl --ssl-reqd -k -T somefile %s
List and download:
  curl --ssl-reqd -k %s
  curl --ssl-reqd -k -o copy %ssomefile
With lftp:
  lftp -u %s,%s -p %s -e 'set ssl:verify-certificate no; set ftp:ssl-force true; set ftp:ssl-protect-data true; put somefile; ls; bye' %s
Import jobs read the files from the mount:
  ls -l %s/ && cat %s/somefile
`, d.bucket, orAWS(d.endpoint), rel(d.mnt), rel(d.s3mount.logPath), d.o.listen, demoUser, d.password,
		rel(d.ftpfront.logPath), d.o.healthAddr, url, url, url, demoUser, d.password, port, host, rel(d.mnt), rel(d.mnt))
	if d.minio != nil {
		fmt.Fprintf(d.out, "MinIO (S3 API) at %s, access key %s, secret key %s\n", d.minio.Endpoint, d.minio.AccessKey, d.minio.SecretKey)
	}
	fmt.Fprintln(d.out)
}

func orAWS(endpoint string) string {
	if endpoint == "" {
		return "AWS S3"
	}
	return endpoint
}

// teardown stops what run started, in reverse order, and makes sure nothing stays mounted.
func (d *demo) teardown() error {
	var errs []error
	if d.ftpfront != nil {
		if err := d.ftpfront.stop(10 * time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	if d.s3mount != nil {
		if err := d.s3mount.stop(30 * time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	if d.notify != nil {
		d.notify.Close()
	}
	if d.mnt != "" && mounted(d.mnt) {
		d.say("%s is still mounted; detaching it with fusermount3 -u -z", d.mnt)
		if err := mountinfo.LazyUnmount(d.mnt); err != nil {
			errs = append(errs, err)
		}
	}
	if d.minio != nil {
		if err := d.minio.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("stopping MinIO: %w", err))
		}
	}
	if d.minioLog != nil {
		d.minioLog.Close()
	}
	if d.mnt != "" && mounted(d.mnt) {
		errs = append(errs, fmt.Errorf("%s is still mounted", d.mnt))
	} else if d.s3mount != nil {
		d.say("stopped; nothing is mounted at %s; data stays in %s", d.mnt, d.dir)
	}
	return errors.Join(errs...)
}
