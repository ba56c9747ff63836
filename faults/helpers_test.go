package faults

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/Shopify/toxiproxy/v2"
	"github.com/Shopify/toxiproxy/v2/collectors"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/s3ftp/s3ftp/internal/miniotest"
	"github.com/s3ftp/s3ftp/internal/mountinfo"
	"github.com/s3ftp/s3ftp/s3client"
)

// binary is the s3mount executable built by TestMain from ../cmd/s3mount.
var binary string

// TestMain builds the real s3mount once and runs the tests; the shared MinIO (if any test used it) is stopped
// at the end.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "faults-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "faults: temp dir for the binary:", err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "s3mount")
	build := exec.Command("go", "build", "-o", binary, "../cmd/s3mount")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "faults: go build ../cmd/s3mount: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := 0
	func() {
		defer os.RemoveAll(dir)
		defer func() {
			if r := recover(); r != nil {
				fmt.Fprintln(os.Stderr, "faults: panic:", r)
				code = 1
			}
		}()
		miniotest.Main(m)
	}()
	os.Exit(code)
}

// soak reports whether the long versions run (S3FTP_SOAK=1, set by make soak).
func soak() bool { return os.Getenv("S3FTP_SOAK") == "1" }

// pick returns short in make test mode and long under S3FTP_SOAK=1.
func pick[T any](short, long T) T {
	if soak() {
		return long
	}
	return short
}

var summaryMu sync.Mutex

// summary appends one line for scripts/soak.sh to the file named by S3FTP_SUMMARY (nothing when unset). lost
// counts bytes written and acknowledged that did not read back identically (or partial objects), leaks counts
// left-over multipart uploads, hung mounts, goroutines or descriptors.
// extra fields ("name=value") are appended as given.
func summary(t *testing.T, transfers int, lost, leaks int64, extra ...string) {
	t.Helper()
	path := os.Getenv("S3FTP_SUMMARY")
	if path == "" {
		return
	}
	summaryMu.Lock()
	defer summaryMu.Unlock()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Errorf("summary file %s: %v", path, err)
		return
	}
	defer f.Close()
	status := "pass"
	if t.Failed() {
		status = "fail"
	}
	line := fmt.Sprintf("scenario=%s status=%s transfers=%d bytes_lost=%d leaks=%d", t.Name(), status, transfers, lost, leaks)
	for _, e := range extra {
		line += " " + e
	}
	fmt.Fprintln(f, line)
}

// proxy is an in-process toxiproxy between the daemon and MinIO.
type proxy struct {
	p        *toxiproxy.Proxy
	endpoint string // http://127.0.0.1:PORT
}

// startProxy listens on a free loopback port and forwards to srv; it stops when the test ends.
func startProxy(t *testing.T, srv *miniotest.Server) *proxy {
	t.Helper()
	api := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	api.Metrics.ProxyMetrics = collectors.NewProxyMetricCollectors()
	upstream := strings.TrimPrefix(srv.Endpoint, "http://")
	p := toxiproxy.NewProxy(api, "minio", "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		t.Fatalf("toxiproxy in front of %s: %v", upstream, err)
	}
	t.Cleanup(p.Stop)
	return &proxy{p: p, endpoint: "http://" + p.Listen}
}

// add installs a toxic given as toxiproxy JSON ({"name":..,"type":..,"stream":..,"attributes":{..}}).
func (p *proxy) add(t *testing.T, toxicJSON string) {
	t.Helper()
	if _, err := p.p.Toxics.AddToxicJson(strings.NewReader(toxicJSON)); err != nil {
		t.Fatalf("add toxic %s: %v", toxicJSON, err)
	}
}

// remove deletes a toxic by name.
func (p *proxy) remove(t *testing.T, name string) {
	t.Helper()
	if err := p.p.Toxics.RemoveToxic(context.Background(), name); err != nil {
		t.Fatalf("remove toxic %s: %v", name, err)
	}
}

// mount is an s3mount daemon started by a test; it is unmounted in t.Cleanup.
type mount struct {
	dir     string
	logFile string
	pid     int
}

var readyPID = regexp.MustCompile(`msg=ready .*pid=(\d+)`)

// startMount runs "s3mount --endpoint endpoint ... bucket dir" in daemon mode with srv's credentials and
// waits for it to return (it does once the mount serves requests).
func startMount(t *testing.T, srv *miniotest.Server, endpoint, bucket string, args ...string) *mount {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return startMountAt(t, srv, endpoint, bucket, dir, args...)
}

// startMountAt is startMount on an existing empty directory.
func startMountAt(t *testing.T, srv *miniotest.Server, endpoint, bucket, dir string, args ...string) *mount {
	t.Helper()
	for _, dep := range []string{"/dev/fuse"} {
		if _, err := os.Stat(dep); err != nil {
			t.Fatalf("FUSE is needed for the fault tests: %v", err)
		}
	}
	if _, err := exec.LookPath("fusermount3"); err != nil {
		t.Fatalf("fusermount3 is needed for the fault tests (apt-get install fuse3): %v", err)
	}
	m := &mount{dir: dir, logFile: filepath.Join(t.TempDir(), "s3mount.log")}
	all := append(append([]string{"--endpoint", endpoint, "--log-file", m.logFile}, args...), bucket, m.dir)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, all...)
	cmd.Env = append(os.Environ(), srv.Env()...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("s3mount %q: %v\n%s\nlog:\n%s", all, err, out, readFile(m.logFile))
	}
	t.Cleanup(func() { m.unmount(t) })
	mt := readyPID.FindStringSubmatch(readFile(m.logFile))
	if mt == nil {
		t.Fatalf("no ready line with a pid in the s3mount log:\n%s", readFile(m.logFile))
	}
	m.pid, _ = strconv.Atoi(mt[1])
	return m
}

// unmount unmounts (retrying while the kernel releases files, then lazily) and waits for the daemon to end.
func (m *mount) unmount(t *testing.T) {
	if mounted(m.dir) {
		var err error
		var out []byte
		for range 20 {
			if out, err = exec.Command("fusermount3", "-u", m.dir).CombinedOutput(); err == nil {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		if err != nil {
			t.Errorf("fusermount3 -u %s: %v: %s; unmounting lazily", m.dir, err, out)
			if err := mountinfo.LazyUnmount(m.dir); err != nil {
				t.Log(err)
			}
		}
	}
	if m.pid != 0 && !waitExit(m.pid, time.Minute) {
		t.Errorf("s3mount %d still runs a minute after the unmount; killing it", m.pid)
		syscall.Kill(m.pid, syscall.SIGKILL)
	}
	if t.Failed() {
		t.Logf("s3mount log %s:\n%s", m.logFile, readFile(m.logFile))
	}
}

// mounted reports whether dir is a mount point; an unreadable mount table counts as no.
func mounted(dir string) bool {
	ok, _ := mountinfo.IsMounted(dir)
	return ok
}

// alive reports whether pid runs: a zombie counts as exited once every one of its threads is gone too. The
// thread group leader of a killed multi-threaded process turns zombie before its other threads have exited,
// and those still hold its files (the upload journal's lock among them).
func alive(pid int) bool {
	if zombie, ok := threadZombie(fmt.Sprintf("/proc/%d/stat", pid)); !ok || !zombie {
		return ok
	}
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	for _, task := range tasks {
		if zombie, ok := threadZombie(task); ok && !zombie {
			return true
		}
	}
	return false
}

// threadZombie reads a /proc stat file: whether the thread is a zombie, and whether it exists.
func threadZombie(path string) (zombie, ok bool) {
	st, err := os.ReadFile(path)
	if err != nil {
		return false, false
	}
	i := bytes.LastIndexByte(st, ')')
	return i >= 0 && i+2 < len(st) && st[i+2] == 'Z', true
}

// waitExit polls until pid has exited or timeout passed; it reports whether the process is gone.
func waitExit(pid int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for alive(pid) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// vmHWM returns the peak resident set of pid in bytes.
func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("status of the daemon: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			if err != nil {
				t.Fatalf("VmHWM %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in the daemon's status")
	return 0
}

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	return string(b)
}

// prng is the deterministic content of n bytes for seed.
func prng(seed uint64, n int64) io.Reader {
	var key [32]byte
	for i := range 8 {
		key[i] = byte(seed >> (8 * i))
	}
	return io.LimitReader(rand.NewChaCha8(key), n)
}

// sum is the SHA-256 of prng(seed, n).
func sum(seed uint64, n int64) [32]byte {
	h := sha256.New()
	io.Copy(h, prng(seed, n))
	var s [32]byte
	h.Sum(s[:0])
	return s
}

// writeResult is what writing one file through the mount returned.
type writeResult struct {
	written  int64 // bytes write(2) accepted
	writeErr error
	closeErr error
}

func (r writeResult) failed() bool { return r.writeErr != nil || r.closeErr != nil }

// writeFile writes prng(seed, size) to path in 1 MiB writes, calling during(written) after each write, and
// stops at the first write error.
func writeFile(path string, seed uint64, size int64, during func(written int64)) writeResult {
	var r writeResult
	f, err := os.Create(path)
	if err != nil {
		r.writeErr = err
		return r
	}
	src := prng(seed, size)
	buf := make([]byte, 1<<20)
	for r.written < size {
		n, _ := io.ReadFull(src, buf)
		w, err := f.Write(buf[:n])
		r.written += int64(w)
		if err != nil {
			r.writeErr = err
			break
		}
		if during != nil {
			during(r.written)
		}
	}
	r.closeErr = f.Close()
	return r
}

// sameAs reports whether path holds exactly prng(seed, size), reading it in 1 MiB blocks.
func sameAs(path string, seed uint64, size int64) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return sameContent(f, seed, size)
}

// sameContent reports whether reading f from its current offset to EOF gives exactly prng(seed, size).
func sameContent(f *os.File, seed uint64, size int64) error {
	path := f.Name()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return fmt.Errorf("read %s after %d bytes: %w", path, n, err)
	}
	if n != size {
		return fmt.Errorf("%s has %d bytes, want %d", path, n, size)
	}
	if got, want := h.Sum(nil), sum(seed, size); !bytes.Equal(got, want[:]) {
		return fmt.Errorf("%s: SHA-256 differs from what was written", path)
	}
	return nil
}

// expected maps each object that may exist to the SHA-256 of its complete content.
type expected map[string][32]byte

// checkObjects lists the bucket and fails for every object that is not in want or whose SHA-256 differs; it
// returns the number of bad bytes (sizes of partial or corrupt objects).
func checkObjects(t *testing.T, c s3client.Client, want expected) int64 {
	t.Helper()
	ctx := context.Background()
	var lost int64
	token := ""
	for {
		page, err := c.List(ctx, "", "", token, 1000)
		if err != nil {
			t.Fatalf("list the bucket: %v", err)
		}
		for _, o := range page.Objects {
			w, ok := want[o.Key]
			if !ok {
				t.Errorf("object %q (%d bytes) exists though its write failed or never completed", o.Key, o.Size)
				lost += o.Size
				continue
			}
			body, _, err := c.GetObject(ctx, o.Key, 0, -1, "")
			if err != nil {
				t.Errorf("get %q: %v", o.Key, err)
				continue
			}
			h := sha256.New()
			_, err = io.Copy(h, body)
			body.Close()
			if err != nil {
				t.Errorf("read %q: %v", o.Key, err)
				continue
			}
			if !bytes.Equal(h.Sum(nil), w[:]) {
				t.Errorf("object %q (%d bytes): SHA-256 differs from what was written", o.Key, o.Size)
				lost += o.Size
			}
		}
		if page.NextToken == "" {
			return lost
		}
		token = page.NextToken
	}
}

// waitNoUploads polls ListMultipartUploads until none is left or timeout passed, and returns what is left.
func waitNoUploads(t *testing.T, c s3client.Client, timeout time.Duration) []s3client.Upload {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(timeout)
	for {
		ups, err := c.ListMultipartUploads(ctx, "")
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("list multipart uploads: %v", err)
		}
		if len(ups) == 0 || time.Now().After(deadline) {
			return ups
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// checkMountWorks writes a fresh file through the mount and reads it back byte-identical.
func checkMountWorks(t *testing.T, m *mount, name string, seed uint64) {
	t.Helper()
	const size = 6 << 20 // more than one part
	path := filepath.Join(m.dir, name)
	if r := writeFile(path, seed, size, nil); r.failed() {
		t.Fatalf("write after the fault was removed: write %v, close %v", r.writeErr, r.closeErr)
	}
	if err := sameAs(path, seed, size); err != nil {
		t.Fatalf("read back after the fault was removed: %v", err)
	}
}

// putObject stores prng(seed, size) as key directly in the bucket, bypassing the mount.
func putObject(t *testing.T, c s3client.Client, key string, seed uint64, size int64) {
	t.Helper()
	data, err := io.ReadAll(prng(seed, size))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(context.Background(), key, data, s3client.PutOptions{}); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

// verifier reads a file from its current offset and compares every byte with prng(seed, size) at the same
// offset, so that a read that fails part-way still proves the bytes it returned.
type verifier struct {
	f    *os.File
	want io.Reader
	size int64
	off  int64 // bytes read and found identical
}

// newVerifier checks f, positioned at offset 0, against prng(seed, size).
func newVerifier(f *os.File, seed uint64, size int64) *verifier {
	return &verifier{f: f, want: prng(seed, size), size: size}
}

// read reads n more bytes in 1 MiB reads (n reaching the size: to EOF, which must come exactly at the size).
// It returns the first read error as is, or a content complaint that isMismatch recognizes.
func (v *verifier) read(n int64) error {
	buf := make([]byte, 1<<20)
	exp := make([]byte, len(buf))
	end := min(v.off+n, v.size)
	for v.off < end {
		k, err := v.f.Read(buf[:min(int64(len(buf)), end-v.off)])
		if k > 0 {
			io.ReadFull(v.want, exp[:k])
			if !bytes.Equal(buf[:k], exp[:k]) {
				return fmt.Errorf("%s: the bytes at %d differ from what was written", v.f.Name(), v.off)
			}
			v.off += int64(k)
		}
		if err == io.EOF && v.off < v.size {
			return fmt.Errorf("%s has %d bytes, want %d", v.f.Name(), v.off, v.size)
		}
		if err != nil && err != io.EOF {
			return fmt.Errorf("read %s at %d: %w", v.f.Name(), v.off, err)
		}
	}
	return nil
}
