package ftpfront

import (
	"errors"
	"fmt"
	"io"
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
		if m == http.MethodGet && body != "ok\n" {
			t.Fatalf("body = %q", body)
		}
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != "existing" {
		t.Fatalf("probe left files behind: %v", ents)
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
		filepath.Join(dir, "missing"): "unhealthy: root: stat: no such file or directory\n",
		file:                          "unhealthy: root is not a directory\n",
	} {
		code, body := getHealth(t, HealthHandler(root, 10*time.Second), http.MethodGet)
		if code != http.StatusServiceUnavailable || body != want {
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
	want := "503 unhealthy: not writable: open: permission denied\n"
	if os.Geteuid() != 0 {
		code, body := getHealth(t, HealthHandler(dir, 10*time.Second), http.MethodGet)
		if got := fmt.Sprintf("%d %s", code, body); got != want {
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
	h := newHealthHandler(t.TempDir(), 20*time.Millisecond, probe)
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
	h := newHealthHandler(t.TempDir(), 0, probeRoot)
	if h.timeout != defaultHealthTimeout {
		t.Fatalf("timeout = %v, want %v", h.timeout, defaultHealthTimeout)
	}
}
