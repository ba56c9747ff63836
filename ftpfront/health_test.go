package ftpfront

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/afero"
)

// getHealth runs one request against h and returns the status and body.
func getHealth(t *testing.T, h http.Handler, method string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, "/healthz", nil))
	return rec.Code, rec.Body.String()
}

func TestHealthWritableRoot(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "existing"), []byte("x"), 0o644)
	h := HealthHandler(dir, 10*time.Second)
	for _, m := range []string{http.MethodGet, http.MethodHead} {
		code, body := getHealth(t, h, m)
		if code != http.StatusOK {
			t.Fatalf("%s: %d %q, want 200", m, code, body)
		}
		if m == http.MethodGet && !strings.HasPrefix(body, "ok\nprobed ") {
			t.Fatalf("body = %q", body)
		}
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 2 || ents[0].Name() != HealthDir || ents[1].Name() != "existing" {
		t.Fatalf("root holds %v, want the reserved %s and the existing file", ents, HealthDir)
	}
	if probes, err := os.ReadDir(filepath.Join(dir, HealthDir)); err != nil || len(probes) != 0 {
		t.Fatalf("probe left files behind: %v %v", probes, err)
	}
}

// TestHealthRootUnmounted: a root that was a mount point when the handler was built fails the check once it is
// unmounted (the empty local directory under it is writable, but uploads must not land there), and passes again
// once a file system is mounted there again. A root that never was a mount point is probed as it is.
func TestHealthRootUnmounted(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("mounting the tmpfs this test uses needs root")
	}
	root := t.TempDir()
	mount := func() {
		t.Helper()
		if err := syscall.Mount("tmpfs", root, "tmpfs", 0, "size=1m"); err != nil {
			t.Fatalf("mount tmpfs on %s: %v", root, err)
		}
	}
	unmount := func() {
		t.Helper()
		if err := syscall.Unmount(root, 0); err != nil {
			t.Fatalf("unmount %s: %v", root, err)
		}
	}
	mount()
	mounted := true
	t.Cleanup(func() {
		if mounted {
			syscall.Unmount(root, syscall.MNT_DETACH)
		}
	})
	h := HealthHandler(root, 10*time.Second)
	if code, body := getHealth(t, h, http.MethodGet); code != http.StatusOK {
		t.Fatalf("mounted root: %d %q, want 200", code, body)
	}
	unmount()
	mounted = false
	if code, body := getHealth(t, h, http.MethodGet); code != http.StatusServiceUnavailable || !strings.Contains(body, "no longer a mount point") {
		t.Fatalf("unmounted root: %d %q, want 503 naming the unmount", code, body)
	}
	if ents, _ := os.ReadDir(root); len(ents) != 0 {
		t.Fatalf("the check wrote into the local directory under the mount point: %v", ents)
	}
	mount()
	mounted = true
	if code, body := getHealth(t, h, http.MethodGet); code != http.StatusOK {
		t.Fatalf("mounted again: %d %q, want 200", code, body)
	}
}

func TestHealthMissingOrNotADirectory(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o644)
	for root, want := range map[string]string{
		filepath.Join(dir, "missing"): "unhealthy: root: stat: no such file or directory",
		file:                          "unhealthy: root is not a directory",
	} {
		code, body := getHealth(t, HealthHandler(root, 10*time.Second), http.MethodGet)
		if first, _, _ := strings.Cut(body, "\n"); code != http.StatusServiceUnavailable || first != want {
			t.Errorf("%s: %d %q; want 503 %q", root, code, body, want)
		}
		if strings.Contains(body, dir) {
			t.Errorf("the reason leaks the path: %q", body)
		}
	}
}

func TestHealthMethodNotAllowed(t *testing.T) {
	code, _ := getHealth(t, HealthHandler(t.TempDir(), time.Second), http.MethodPost)
	if code != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d, want 405", code)
	}
}

// A read-only root answers 503. Root ignores permission bits, so when the tests run as root the probe runs in a
// child process (this test binary, copied where an unprivileged user can run it) as the nobody user.
func TestHealthReadOnlyRoot(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o755) })
	want := "503 unhealthy: not writable: mkdir: permission denied\n"
	if os.Geteuid() != 0 {
		code, body := getHealth(t, HealthHandler(dir, 10*time.Second), http.MethodGet)
		if got := fmt.Sprintf("%d %s", code, body); !strings.HasPrefix(got, want) {
			t.Fatalf("got %q, want %q", got, want)
		}
		return
	}
	if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	binDir := t.TempDir()
	if err := os.Chmod(filepath.Dir(binDir), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(binDir, 0o755)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(binDir, "health.test")
	if err := copyFile(self, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestHelperHealthProbe$", "-test.count=1")
	cmd.Env = append(os.Environ(), "S3FTP_HEALTH_PROBE_DIR="+dir)
	cmd.Dir = binDir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, NoSetGroups: true}}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("probe as nobody: %v\n%s%s", err, out, stderr.String())
	}
	_, got, ok := strings.Cut(string(out), "RESULT: ")
	got, _, _ = strings.Cut(got, "\n")
	if !ok || got+"\n" != want {
		t.Fatalf("got %q, want %q; child output:\n%s%s", got, want, out, stderr.String())
	}
}

// TestHelperHealthProbe is TestHealthReadOnlyRoot's child process: it prints "RESULT: <status> <body>" for the directory in
// S3FTP_HEALTH_PROBE_DIR and does nothing when the variable is unset.
func TestHelperHealthProbe(t *testing.T) {
	dir := os.Getenv("S3FTP_HEALTH_PROBE_DIR")
	if dir == "" {
		return
	}
	code, body := getHealth(t, HealthHandler(dir, 10*time.Second), http.MethodGet)
	fmt.Printf("RESULT: %d %s\n", code, strings.TrimSuffix(body, "\n"))
}

// copyFile copies src to a new file dst with mode perm.
func copyFile(src, dst string, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// A hung probe gives 503 after the timeout; requests meanwhile join it instead of starting more probes; once it
// returns, the next request probes afresh.
func TestHealthHungProbe(t *testing.T) {
	var calls atomic.Int32
	unblock := make(chan struct{})
	var hang atomic.Bool
	hang.Store(true)
	probe := func(root string) error {
		calls.Add(1)
		if hang.Load() {
			<-unblock
			return errors.New("late")
		}
		return nil
	}
	h := newHealthHandler(t.TempDir(), HealthOptions{Timeout: 20 * time.Millisecond, Interval: time.Nanosecond}, probe)
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			code, body := getHealth(t, h, http.MethodGet)
			if code != http.StatusServiceUnavailable || !strings.Contains(body, "probe timed out") {
				t.Errorf("hung probe: %d %q; want 503 probe timed out", code, body)
			}
		})
	}
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d probes started while one was hung, want 1", n)
	}
	hang.Store(false)
	close(unblock)
	// The hung probe finishes in the background; poll until a fresh probe runs and succeeds.
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _ := getHealth(t, h, http.MethodGet)
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("health did not recover after the hung probe returned")
		}
		time.Sleep(time.Millisecond)
	}
	if n := calls.Load(); n < 2 {
		t.Fatalf("probe calls = %d, want a fresh probe after recovery", n)
	}
}

func TestHealthProbeDefaultTimeout(t *testing.T) {
	h := newHealthHandler(t.TempDir(), HealthOptions{}, osProbe)
	if h.timeout != defaultHealthTimeout || h.interval != DefaultHealthInterval {
		t.Fatalf("timeout, interval = %v, %v; want %v, %v", h.timeout, h.interval, defaultHealthTimeout, DefaultHealthInterval)
	}
}

// countingFs is the probe's file system seam in tests: it counts every operation and, while fail is set, fails
// every create with EIO (a mount whose uploads are refused).
type countingFs struct {
	afero.Fs
	ops     atomic.Int64 // every call below
	creates atomic.Int64 // OpenFile with O_CREATE
	fail    atomic.Bool
}

func (c *countingFs) Stat(name string) (os.FileInfo, error) { c.ops.Add(1); return c.Fs.Stat(name) }
func (c *countingFs) Open(name string) (afero.File, error)  { c.ops.Add(1); return c.Fs.Open(name) }
func (c *countingFs) Remove(name string) error              { c.ops.Add(1); return c.Fs.Remove(name) }
func (c *countingFs) MkdirAll(name string, perm os.FileMode) error {
	c.ops.Add(1)
	return c.Fs.MkdirAll(name, perm)
}
func (c *countingFs) OpenFile(name string, flag int, perm os.FileMode) (afero.File, error) {
	c.ops.Add(1)
	if flag&os.O_CREATE != 0 {
		c.creates.Add(1)
		if c.fail.Load() {
			return nil, &fs.PathError{Op: "open", Path: name, Err: syscall.EIO}
		}
	}
	return c.Fs.OpenFile(name, flag, perm)
}

// countedHandler returns a handler probing dir through a countingFs, with the given interval and clock (nil: the
// real one).
func countedHandler(t *testing.T, dir string, interval time.Duration, clock *fakeClock) (*healthHandler, *countingFs) {
	cfs := &countingFs{Fs: afero.NewOsFs()}
	h := newHealthHandler(dir, HealthOptions{Timeout: 10 * time.Second, Interval: interval, Log: testLogger(t)},
		func(root string) error { return probeRoot(cfs, root) })
	if clock != nil {
		h.now = clock.Now
	}
	return h, cfs
}

// 100 requests within one interval, 10 at a time, cost exactly one probe: the file operations of one probe and
// one created file, however many requests arrived while it ran or after it.
func TestHealthHundredRequestsOneProbe(t *testing.T) {
	dir := t.TempDir()
	ref := &countingFs{Fs: afero.NewOsFs()}
	if err := probeRoot(ref, dir); err != nil {
		t.Fatal(err)
	}
	perProbe := ref.ops.Load()
	h, cfs := countedHandler(t, dir, time.Hour, nil)
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			for range 10 {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
				if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Body.String(), "ok\nprobed ") || rec.Header().Get("Age") == "" {
					t.Errorf("check: %d %q Age=%q, want 200 with the result's age", rec.Code, rec.Body.String(), rec.Header().Get("Age"))
				}
			}
		})
	}
	wg.Wait()
	if c, o := cfs.creates.Load(), cfs.ops.Load(); c != 1 || o != perProbe {
		t.Fatalf("100 checks within one interval: %d files created, %d file operations; want 1 and %d (one probe)", c, o, perProbe)
	}
}

// A result is answered with its age until it is one interval old; the first request after that probes again.
func TestHealthReprobesAfterInterval(t *testing.T) {
	clock := newFakeClock()
	h, cfs := countedHandler(t, t.TempDir(), 10*time.Second, clock)
	get := func() (int, string, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
		return rec.Code, rec.Body.String(), rec.Header().Get("Age")
	}
	if code, body, age := get(); code != http.StatusOK || body != "ok\nprobed 0s ago\n" || age != "0" {
		t.Fatalf("first check: %d %q Age=%s", code, body, age)
	}
	clock.Advance(9*time.Second + 500*time.Millisecond)
	if code, body, age := get(); code != http.StatusOK || body != "ok\nprobed 9.5s ago\n" || age != "9" {
		t.Fatalf("check 9.5 s later: %d %q Age=%s, want the first result, 9.5 s old", code, body, age)
	}
	if n := cfs.creates.Load(); n != 1 {
		t.Fatalf("%d probes within the interval, want 1", n)
	}
	clock.Advance(500 * time.Millisecond)
	if code, body, age := get(); code != http.StatusOK || body != "ok\nprobed 0s ago\n" || age != "0" {
		t.Fatalf("check one interval later: %d %q Age=%s, want a fresh result", code, body, age)
	}
	if n := cfs.creates.Load(); n != 2 {
		t.Fatalf("%d probes after one interval, want 2", n)
	}
}

// A root that starts failing is answered 503 at the first request one interval after the last good probe, and
// not before (the good result is still answered, with its age).
func TestHealthFailingRootWithinInterval(t *testing.T) {
	clock := newFakeClock()
	h, cfs := countedHandler(t, t.TempDir(), 10*time.Second, clock)
	if code, body := getHealth(t, h, http.MethodGet); code != http.StatusOK {
		t.Fatalf("healthy root: %d %q", code, body)
	}
	cfs.fail.Store(true)
	clock.Advance(10*time.Second - time.Nanosecond)
	if code, body := getHealth(t, h, http.MethodGet); code != http.StatusOK {
		t.Fatalf("within the interval: %d %q, want the last result (200)", code, body)
	}
	clock.Advance(time.Nanosecond)
	if code, body := getHealth(t, h, http.MethodGet); code != http.StatusServiceUnavailable ||
		body != "unhealthy: not writable: open: input/output error\nprobed 0s ago\n" {
		t.Fatalf("one interval after the last good probe: %d %q, want 503 naming the failed create", code, body)
	}
	// The failure is itself a result: answered from the cache within the interval, at no cost.
	n := cfs.ops.Load()
	clock.Advance(time.Second)
	if code, _ := getHealth(t, h, http.MethodGet); code != http.StatusServiceUnavailable || cfs.ops.Load() != n {
		t.Fatalf("check after the failure: %d, %d new file operations; want 503 and none", code, cfs.ops.Load()-n)
	}
}

// On the real clock and the real file system: a root removed after a good probe answers 503 within one interval
// (plus the probe's time), and the answer names the missing root.
func TestHealthRemovedRootRealClock(t *testing.T) {
	parent := t.TempDir()
	root := filepath.Join(parent, "root")
	mustMkdir(t, root)
	const interval = 200 * time.Millisecond
	h := NewHealthHandler(root, HealthOptions{Timeout: 5 * time.Second, Interval: interval, Log: testLogger(t)})
	if code, body := getHealth(t, h, http.MethodGet); code != http.StatusOK {
		t.Fatalf("healthy root: %d %q", code, body)
	}
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	removed := time.Now()
	for {
		code, body := getHealth(t, h, http.MethodGet)
		if code == http.StatusServiceUnavailable {
			if !strings.HasPrefix(body, "unhealthy: root: stat: no such file or directory\n") {
				t.Fatalf("503 body %q", body)
			}
			break
		}
		if took := time.Since(removed); took > interval+time.Second {
			t.Fatalf("still %d %q %v after the root was removed, want 503 within %v", code, body, took, interval)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
