package miniolocal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/s3ftp/s3ftp/s3client"
)

// Default root credentials of a launched server.
const (
	DefaultAccessKey = "s3ftp-test-admin"
	DefaultSecretKey = "s3ftp-test-secret-key"
	// Region is the region clients sign for.
	Region = "us-east-1"
)

// Options configure Launch.
type Options struct {
	// Binary is the minio executable; empty means FindBinary.
	Binary string
	// DataDir holds the objects; it is created if missing. Required.
	DataDir string
	// Addr is the API listen address; empty picks a free 127.0.0.1 port. It must be a loopback address.
	Addr string
	// AccessKey and SecretKey are the root credentials; empty means DefaultAccessKey and DefaultSecretKey.
	AccessKey, SecretKey string
	// Output, when set, receives the server's stdout and stderr as well.
	Output io.Writer
	// Logger receives start/stop lines; nil means slog.Default().
	Logger *slog.Logger
	// StartTimeout bounds the wait for the health check; 0 means 60s.
	StartTimeout time.Duration
}

// Server is a running (or stopped, restartable) MinIO process.
type Server struct {
	// Endpoint is the API base URL, e.g. "http://127.0.0.1:40123". It does not change across Restart.
	Endpoint string
	// AccessKey and SecretKey are the root credentials.
	AccessKey, SecretKey string
	// Addr is the API listen address and DataDir the data directory.
	Addr, DataDir string

	binary      string
	consoleAddr string
	output      io.Writer
	log         *slog.Logger
	timeout     time.Duration
	tail        *tailBuffer

	mu   sync.Mutex
	cmd  *exec.Cmd     // guarded by mu; nil when stopped
	done chan struct{} // guarded by mu; closed when cmd has exited
}

// FindBinary returns the path of the minio binary: $S3FTP_MINIO, then PATH, then $(go env GOBIN),
// $GOPATH/bin (each GOPATH entry, default ~/go) and /root/go/bin.
func FindBinary() (string, error) {
	if p := os.Getenv("S3FTP_MINIO"); p != "" {
		if isExecutable(p) {
			return p, nil
		}
		return "", fmt.Errorf("miniolocal: $S3FTP_MINIO=%q is not an executable file", p)
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p, nil
	}
	var dirs []string
	if out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output(); err == nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) > 0 && strings.TrimSpace(lines[0]) != "" {
			dirs = append(dirs, strings.TrimSpace(lines[0]))
		}
		if len(lines) > 1 {
			for _, gp := range filepath.SplitList(strings.TrimSpace(lines[1])) {
				dirs = append(dirs, filepath.Join(gp, "bin"))
			}
		}
	}
	if gp := os.Getenv("GOPATH"); gp != "" {
		for _, d := range filepath.SplitList(gp) {
			dirs = append(dirs, filepath.Join(d, "bin"))
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	dirs = append(dirs, "/root/go/bin")
	for _, d := range dirs {
		if p := filepath.Join(d, "minio"); isExecutable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("miniolocal: minio binary not found in $S3FTP_MINIO, PATH, %s", strings.Join(dirs, ", "))
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

// Launch starts MinIO and waits until it is live. A port picked here can be taken by someone else before
// MinIO binds it; Launch then retries with a new port.
func Launch(ctx context.Context, o Options) (*Server, error) {
	if o.DataDir == "" {
		return nil, errors.New("miniolocal: DataDir is required")
	}
	if o.Binary == "" {
		b, err := FindBinary()
		if err != nil {
			return nil, err
		}
		o.Binary = b
	}
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("miniolocal: %w", err)
	}
	if o.AccessKey == "" {
		o.AccessKey, o.SecretKey = DefaultAccessKey, DefaultSecretKey
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 60 * time.Second
	}
	attempts := 1
	if o.Addr == "" {
		attempts = 3
	}
	var lastErr error
	for range attempts {
		addr := o.Addr
		if addr == "" {
			var err error
			if addr, err = freeAddr(); err != nil {
				return nil, err
			}
		}
		if err := checkLoopback(addr); err != nil {
			return nil, err
		}
		console, err := freeAddr()
		if err != nil {
			return nil, err
		}
		s := &Server{
			Endpoint: "http://" + addr, AccessKey: o.AccessKey, SecretKey: o.SecretKey,
			Addr: addr, DataDir: o.DataDir,
			binary: o.Binary, consoleAddr: console, output: o.Output, log: o.Logger, timeout: o.StartTimeout,
			tail: &tailBuffer{max: 64 << 10},
		}
		if lastErr = s.start(ctx); lastErr == nil {
			return s, nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

// start runs the process and waits for the health check.
func (s *Server) start(ctx context.Context) error {
	cmd := exec.Command(s.binary, "server", s.DataDir, "--address", s.Addr, "--console-address", s.consoleAddr, "--quiet")
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"TMPDIR=" + os.TempDir(),
		"MINIO_ROOT_USER=" + s.AccessKey,
		"MINIO_ROOT_PASSWORD=" + s.SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_CI_CD=1", // no root-drive and no-TTY refusals
	}
	var out io.Writer = s.tail
	if s.output != nil {
		out = io.MultiWriter(s.tail, s.output)
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("miniolocal: start %s: %w", s.binary, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()

	if err := s.waitLive(ctx, done); err != nil {
		_ = s.Stop()
		return fmt.Errorf("miniolocal: %w; minio output:\n%s", err, s.tail.String())
	}
	s.log.Info("minio started", "endpoint", s.Endpoint, "data", s.DataDir, "pid", cmd.Process.Pid)
	return nil
}

func (s *Server) waitLive(ctx context.Context, done <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	url := s.Endpoint + "/minio/health/live"
	// Live is not enough: until the object layer is initialised, S3 requests get 503
	// XMinioServerNotInitialized. An anonymous ListBuckets answers 403 once it is.
	probes := []struct {
		url string
		ok  func(int) bool
	}{
		{url, func(c int) bool { return c == http.StatusOK }},
		{s.Endpoint + "/", func(c int) bool { return c != http.StatusServiceUnavailable }},
	}
	for {
		ready := true
		for _, p := range probes {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
			resp, err := client.Do(req)
			if err != nil {
				ready = false
				break
			}
			resp.Body.Close()
			if !p.ok(resp.StatusCode) {
				ready = false
				break
			}
		}
		if ready {
			return nil
		}
		select {
		case <-done:
			return errors.New("minio exited during start-up")
		case <-ctx.Done():
			return fmt.Errorf("minio not live at %s: %w", url, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Running reports whether the process is running.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return false
	}
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// Stop terminates the server (SIGTERM, SIGKILL after 10s) and waits for it. Stopping a stopped server is a
// no-op. The data directory is kept.
func (s *Server) Stop() error {
	return s.halt(syscall.SIGTERM, 10*time.Second)
}

// Kill stops the server abruptly with SIGKILL, as a crash would, and waits for it.
func (s *Server) Kill() error {
	return s.halt(syscall.SIGKILL, 0)
}

func (s *Server) halt(sig syscall.Signal, grace time.Duration) error {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd, s.done = nil, nil
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	pgid := cmd.Process.Pid
	select {
	case <-done:
		// Exited on its own and reaped: the group ID may already belong to someone else.
		return nil
	default:
	}
	_ = syscall.Kill(-pgid, sig)
	if grace > 0 {
		select {
		case <-done:
		case <-time.After(grace):
			s.log.Warn("minio ignored SIGTERM; killing it", "pid", pgid)
		}
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-done
	s.log.Info("minio stopped", "endpoint", s.Endpoint, "pid", pgid)
	return nil
}

// Restart stops the server if it runs and starts it again on the same address and data directory.
func (s *Server) Restart() error {
	if err := s.Stop(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	var err error
	// The port was just released; another process may grab it, but in practice it comes straight back.
	for range 3 {
		if err = s.start(ctx); err == nil {
			return nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	return err
}

// Env returns the environment a subprocess needs to reach the server with the SDK's default chain:
// credentials and region, nothing else. Pass the endpoint separately (e.g. --endpoint).
func (s *Server) Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + s.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + s.SecretKey,
		"AWS_REGION=" + Region,
	}
}

// Config returns an s3client configuration for bucket on this server, with static credentials.
func (s *Server) Config(bucket string) s3client.Config {
	c := s3client.DefaultConfig(bucket)
	c.Endpoint = s.Endpoint
	c.Region = Region
	c.AccessKey, c.SecretKey = s.AccessKey, s.SecretKey
	return c
}

// Client returns an s3client adapter bound to bucket on this server.
func (s *Server) Client(ctx context.Context, bucket string) (*s3client.SDK, error) {
	return s3client.New(ctx, s.Config(bucket))
}

// CreateBucket creates bucket; an existing bucket of ours is not an error.
func (s *Server) CreateBucket(ctx context.Context, bucket string) error {
	c, err := s.Client(ctx, bucket)
	if err != nil {
		return err
	}
	return c.CreateBucket(ctx)
}

// Output returns the tail of the server's output, for diagnosing failures.
func (s *Server) Output() string { return s.tail.String() }

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("miniolocal: pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("miniolocal: address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("miniolocal: address %q is not loopback", addr)
	}
	return nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
