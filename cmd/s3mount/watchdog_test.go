package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/s3ftp/s3ftp/internal/logbuf"
)

func TestWatchdogFromEnv(t *testing.T) {
	const pid = 4242
	for _, tc := range []struct {
		usec, wdPID string
		want        time.Duration
		wantErr     bool
	}{
		{"", "", 0, false},
		{"", "4242", 0, false},
		{"60000000", "", 30 * time.Second, false},
		{"400000", "4242", 200 * time.Millisecond, false},
		{"400000", "1", 0, false}, // another process's watchdog
		{"0", "", 0, true},
		{"-5", "", 0, true},
		{"60s", "", 0, true},
		{"400000", "pid", 0, true},
	} {
		env := map[string]string{"WATCHDOG_USEC": tc.usec, "WATCHDOG_PID": tc.wdPID}
		got, err := watchdogFromEnv(func(k string) string { return env[k] }, pid)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("WATCHDOG_USEC=%q WATCHDOG_PID=%q: %v, %v; want %v, error %v", tc.usec, tc.wdPID, got, err,
				tc.want, tc.wantErr)
		}
	}
}

// notifyListener is a fake service manager: a unixgram socket in a temporary directory named by NOTIFY_SOCKET.
func notifyListener(t *testing.T) *net.UnixConn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return l
}

// receive returns the next datagram, or "" when none arrives within wait.
func receive(t *testing.T, l *net.UnixConn, wait time.Duration) string {
	t.Helper()
	buf := make([]byte, 256)
	l.SetReadDeadline(time.Now().Add(wait))
	n, err := l.Read(buf)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

// drain discards the datagrams already queued.
func drain(t *testing.T, l *net.UnixConn) {
	t.Helper()
	for receive(t, l, time.Millisecond) != "" {
	}
}

// waitFor polls cond for up to a minute (a generous bound, never a timing assertion).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s after a minute", what)
		}
	}
}

// TestWatchdogPingsOnlyWhileTheMountAnswers: with the probe of the mount answering, WATCHDOG=1 datagrams reach
// the service manager's socket; while the statfs fails or hangs, probes go on (a hung statfs is not repeated)
// and no ping is sent; pings resume once it answers again; one WARN names each cause and one INFO marks each
// resumption; after stop no ping follows.
func TestWatchdogPingsOnlyWhileTheMountAnswers(t *testing.T) {
	l := notifyListener(t)
	log, logs := logbuf.New(nil)
	f := &fakeStat{release: make(chan struct{})}
	h := newMountHealth("/mnt", log)
	h.statfs = f.stat
	h.setState(stateServing)
	var probes atomic.Int32
	probe := func(ctx context.Context, timeout time.Duration) error {
		probes.Add(1)
		return h.check(ctx, timeout)
	}
	// A short interval keeps the test fast; a longer probe timeout keeps a slow scheduler from failing a probe
	// of the answering fake.
	const interval, probeTimeout = 10 * time.Millisecond, 250 * time.Millisecond
	wd := startWatchdog(interval, probeTimeout, probe, sdNotify, log, "/mnt")
	defer wd.stop()

	for i := range 3 {
		if got := receive(t, l, time.Minute); got != "WATCHDOG=1" {
			t.Fatalf("ping %d while the probe answers: %q", i, got)
		}
	}

	// noPingWhileProbing asserts that three more probes ran and failed without a ping in between.
	noPingWhileProbing := func(what string) {
		t.Helper()
		drain(t, l) // pings sent before the failure was seen
		n := probes.Load()
		waitFor(t, "three more probes", func() bool { return probes.Load() >= n+3 })
		if got := receive(t, l, time.Millisecond); got != "" {
			t.Errorf("%s: the service manager received %q", what, got)
		}
	}
	resumes := func(what string) {
		t.Helper()
		if got := receive(t, l, time.Minute); got != "WATCHDOG=1" {
			t.Fatalf("after %s: %q, want WATCHDOG=1", what, got)
		}
	}

	f.set(syscall.ENOTCONN, false)
	waitFor(t, "the WARN about the failing probe", func() bool { return strings.Contains(logs.String(), "not connected") })
	noPingWhileProbing("statfs fails")
	f.set(nil, false)
	resumes("the statfs answered again")

	calls := f.calls.Load()
	f.set(nil, true)
	waitFor(t, "the WARN about the hung probe", func() bool { return strings.Contains(logs.String(), "did not answer") })
	noPingWhileProbing("statfs hangs")
	if n := f.calls.Load() - calls; n != 1 {
		t.Errorf("%d statfs calls started while one hung, want 1", n)
	}
	f.set(nil, false)
	close(f.release)
	resumes("the hung statfs returned")

	wd.stop()
	drain(t, l)
	n := probes.Load()
	if got := receive(t, l, 5*interval); got != "" || probes.Load() != n {
		t.Errorf("after stop: received %q, %d more probes", got, probes.Load()-n)
	}

	out := logs.String()
	if n := strings.Count(out, "level=WARN msg=\"watchdog ping skipped"); n != 2 {
		t.Errorf("%d WARN lines about skipped pings, want 2 (one per episode):\n%s", n, out)
	}
	if n := strings.Count(out, "level=INFO msg=\"watchdog pings resumed"); n != 2 {
		t.Errorf("%d INFO lines about resumed pings, want 2:\n%s", n, out)
	}
	for _, want := range []string{"statfs of the mount root failed: transport endpoint is not connected",
		"statfs of the mount root did not answer within 250ms"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks the cause %q:\n%s", want, out)
		}
	}
}

// TestWatchdogOff: without WATCHDOG_USEC, or with WATCHDOG_PID naming another process, the daemon neither
// probes nor pings; the variables are cleared either way so children do not take them as theirs.
func TestWatchdogOff(t *testing.T) {
	l := notifyListener(t)
	log := slog.New(slog.DiscardHandler)
	for _, env := range [][2]string{{"", ""}, {"400000", strconv.Itoa(os.Getpid() + 1)}, {"abc", ""}} {
		t.Setenv("WATCHDOG_USEC", env[0])
		t.Setenv("WATCHDOG_PID", env[1])
		interval := watchdogInterval(log)
		if interval != 0 {
			t.Errorf("WATCHDOG_USEC=%q WATCHDOG_PID=%q: interval %v, want off", env[0], env[1], interval)
		}
		for _, k := range []string{"WATCHDOG_USEC", "WATCHDOG_PID"} {
			if v, ok := os.LookupEnv(k); ok {
				t.Errorf("%s=%q still set", k, v)
			}
		}
		var probes atomic.Int32
		wd := startWatchdog(interval, interval/2, func(context.Context, time.Duration) error { probes.Add(1); return nil },
			sdNotify, log, "/mnt")
		if got := receive(t, l, 50*time.Millisecond); got != "" || probes.Load() != 0 {
			t.Errorf("watchdog off: received %q after %d probes", got, probes.Load())
		}
		wd.stop()
	}
	t.Setenv("WATCHDOG_USEC", "400000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	if got := watchdogInterval(log); got != 200*time.Millisecond {
		t.Errorf("WATCHDOG_PID of this process: interval %v, want 200ms", got)
	}
}
