package faults

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/s3ftp/s3ftp/internal/miniotest"
	"github.com/s3ftp/s3ftp/internal/mountinfo"
	"github.com/s3ftp/s3ftp/s3client"
)

// autoUnmountBound bounds the wait for the unmount watcher to remove a dead mount, so a watcher that does not
// do its job fails the test instead of hanging it; the time actually taken is logged.
const autoUnmountBound = 30 * time.Second

// watcherPIDs lists the unmount watchers of the daemon daemonPID (processes of the test's binary whose command
// line holds "--unmount-watcher" and "--daemon-pid PID").
func watcherPIDs(t *testing.T, daemonPID int) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	mark := []byte("\x00--daemon-pid\x00" + strconv.Itoa(daemonPID) + "\x00")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !bytes.Contains(cmdline, []byte("\x00--unmount-watcher\x00")) || !bytes.Contains(cmdline, mark) {
			continue
		}
		if alive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// oneWatcher returns the single unmount watcher of the daemon pid; it fails the test when there is not exactly
// one.
func oneWatcher(t *testing.T, pid int) int {
	t.Helper()
	ws := watcherPIDs(t, pid)
	if len(ws) != 1 {
		t.Fatalf("daemon %d has %d unmount watchers %v; want 1", pid, len(ws), ws)
	}
	return ws[0]
}

// mountEntry returns the mount table's top entry on dir.
func mountEntry(t *testing.T, dir string) mountinfo.Entry {
	t.Helper()
	entries, err := mountinfo.Read()
	if err != nil {
		t.Fatal(err)
	}
	e, ok := mountinfo.Top(entries, dir)
	if !ok {
		t.Fatalf("%s is not mounted", dir)
	}
	return e
}

// waitUnmounted polls the mount table until dir is no longer a mount point or timeout passed; it returns how
// long that took and whether it happened.
func waitUnmounted(dir string, since time.Time, timeout time.Duration) (time.Duration, bool) {
	deadline := since.Add(timeout)
	for mounted(dir) {
		if time.Now().After(deadline) {
			return time.Since(since), false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(since), true
}

// TestKill9MidUpload kills the daemon with SIGKILL while a large file is written through the mount. It
// asserts that:
//
//   - the writer is not left hanging: its write or close returns an error;
//   - the mount point leaves the mount table by itself (the daemon's unmount watcher; no fusermount3 here)
//     within autoUnmountBound, the watcher logs it and exits, and a stat of the directory answers;
//   - no object, partial or otherwise, exists under the name being written;
//   - the killed daemon's multipart upload is listed in its journal in --state-dir, and a new daemon on the same
//     directory aborts it before it reports ready (ListMultipartUploads no longer has it), logging it; an
//     upload another client started in the same bucket is left alone;
//   - the new daemon works (write and read-back identical).
func TestKill9MidUpload(t *testing.T) {
	ctx := context.Background()
	srv := miniotest.Shared(t)
	bucket := srv.NewBucket(t)
	client := srv.Client(t, bucket)
	args := append([]string{"--state-dir", t.TempDir()}, smallLimits...)
	m := startMount(t, srv, srv.Endpoint, bucket, args...)
	var lost, leaks int64
	orphans := -1 // uploads of the killed daemon left after a new daemon started; -1 until counted
	unmountMS := int64(-1)
	defer func() {
		summary(t, 2, lost, leaks, fmt.Sprintf("orphan_uploads=%d", orphans), fmt.Sprintf("auto_unmount_ms=%d", unmountMS))
	}()

	// Another writer of the same bucket, with an upload in progress the restart must not touch.
	otherKey := "other-writer/in-progress.bin"
	otherID, err := client.CreateMultipartUpload(ctx, otherKey, s3client.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.AbortMultipartUpload(context.Background(), otherKey, otherID) })
	watcher := oneWatcher(t, m.pid)

	size := pick[int64](64<<20, 512<<20)
	const killAt = 16 << 20
	done := make(chan writeResult, 1)
	killed := make(chan time.Time, 1)
	go func() {
		done <- writeFile(filepath.Join(m.dir, "crash.bin"), 11, size, func(written int64) {
			if written == killAt {
				killed <- time.Now()
				syscall.Kill(m.pid, syscall.SIGKILL)
			}
		})
	}()
	var r writeResult
	select {
	case r = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("the writer still hangs two minutes after the daemon was killed")
	}
	var killTime time.Time
	select {
	case killTime = <-killed:
	default:
		t.Fatalf("the write ended at %d bytes before the kill at %d: %v %v", r.written, killAt, r.writeErr, r.closeErr)
	}
	t.Logf("after SIGKILL at %d MiB: write error %v, close error %v", killAt>>20, r.writeErr, r.closeErr)
	if !r.failed() {
		t.Errorf("writing through a killed daemon reported no error from write or close")
	}
	if !waitExit(m.pid, 30*time.Second) {
		t.Fatalf("daemon %d survived SIGKILL", m.pid)
	}
	m.pid = 0 // dead; the cleanup must not wait for it

	// The watcher unmounts the dead mount by itself.
	took, ok := waitUnmounted(m.dir, killTime, autoUnmountBound)
	if ok {
		unmountMS = took.Milliseconds()
		t.Logf("the mount point left the mount table %v after SIGKILL", took.Round(time.Millisecond))
	} else {
		t.Errorf("%s is still mounted %v after SIGKILL: the unmount watcher did not remove it", m.dir, took)
		leaks++
		if err := mountinfo.LazyUnmount(m.dir); err != nil {
			t.Fatal(err)
		}
	}
	if !waitExit(watcher, autoUnmountBound) {
		t.Errorf("the unmount watcher %d still runs after the dead mount was removed", watcher)
		leaks++
	}
	if log := readFile(m.logFile); !strings.Contains(log, "unmounted its dead mount") {
		t.Errorf("the log has no line of the watcher's unmount:\n%s", log)
	}
	if out, err := exec.Command("timeout", "10", "stat", m.dir).CombinedOutput(); err != nil {
		t.Errorf("stat %s after the automatic unmount: %v: %s", m.dir, err, out)
	}

	if info, err := client.HeadObject(ctx, "crash.bin"); !errors.Is(err, s3client.ErrNotFound) {
		t.Errorf("the killed upload left an object: %+v, %v", info, err)
		lost += info.Size
	}
	lost += checkObjects(t, client, expected{})
	before, err := client.ListMultipartUploads(ctx, "")
	if err != nil {
		t.Fatalf("list multipart uploads: %v", err)
	}
	var killedIDs []string
	for _, u := range before {
		if u.Key == "crash.bin" {
			killedIDs = append(killedIDs, u.UploadID)
		}
	}
	if len(killedIDs) == 0 {
		t.Fatalf("no multipart upload of crash.bin after the kill at %d MiB (uploads: %+v); the test needs one", killAt>>20, before)
	}
	journal := journalText(t, args[1])
	for _, id := range killedIDs {
		if !strings.Contains(journal, strconv.Quote(id)) {
			t.Errorf("the killed daemon's upload %s is not in its journal:\n%s", id, journal)
		}
	}

	// A new daemon on the same directory aborts the killed daemon's uploads before it is ready.
	m2 := startMountAt(t, srv, srv.Endpoint, bucket, m.dir, args...)
	after, err := client.ListMultipartUploads(ctx, "")
	if err != nil {
		t.Fatalf("list multipart uploads: %v", err)
	}
	orphans = 0
	otherKept := false
	for _, u := range after {
		switch {
		case u.Key == otherKey && u.UploadID == otherID:
			otherKept = true
		case slices.Contains(killedIDs, u.UploadID):
			orphans++
			t.Errorf("the killed daemon's upload %s of %s is still there after a new daemon started", u.UploadID, u.Key)
		}
	}
	if !otherKept {
		t.Errorf("the new daemon removed another client's upload %s of %s; uploads now: %+v", otherID, otherKey, after)
	}
	log2 := readFile(m2.logFile)
	for _, id := range killedIDs {
		if !strings.Contains(log2, "aborted a multipart upload left by a previous daemon") || !strings.Contains(log2, id) {
			t.Errorf("the new daemon's log has no line for the aborted upload %s:\n%s", id, log2)
		}
	}
	t.Logf("multipart uploads of the killed daemon: %d before the restart, %d after; another client's upload kept: %v",
		len(killedIDs), orphans, otherKept)
	oneWatcher(t, m2.pid)
	checkMountWorks(t, m2, "after-crash.bin", 12)
	lost += checkObjects(t, client, expected{"after-crash.bin": sum(12, 6<<20)})
}

// journalText returns the content of the journal files in stateDir.
func journalText(t *testing.T, stateDir string) string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(stateDir, "uploads-*.journal"))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, n := range names {
		b.WriteString(readFile(n))
	}
	return b.String()
}

// TestWatcherLeavesNewMount: the unmount watcher of a killed daemon never removes a new mount made on the same
// directory after the dead one was removed by someone else (systemd's ExecStopPost, an operator).
//
// The watcher is stopped (SIGSTOP) before the kill, so the dead mount is removed and a new daemon mounts before
// it looks; when it continues, the new mount must stay and work. The kernel may give the new mount the dead
// one's mount ID and device number; the second part runs a watcher whose recorded identity is exactly the live
// new mount's, which must find that the mount answers and leave it alone.
func TestWatcherLeavesNewMount(t *testing.T) {
	srv := miniotest.Shared(t)
	bucket := srv.NewBucket(t)
	args := append([]string{"--state-dir", t.TempDir()}, smallLimits...)
	m := startMount(t, srv, srv.Endpoint, bucket, args...)
	old := mountEntry(t, m.dir)
	watcher := oneWatcher(t, m.pid)
	if err := syscall.Kill(watcher, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(watcher, syscall.SIGCONT) })

	syscall.Kill(m.pid, syscall.SIGKILL)
	if !waitExit(m.pid, 30*time.Second) {
		t.Fatalf("daemon %d survived SIGKILL", m.pid)
	}
	m.pid = 0
	if !mounted(m.dir) {
		t.Fatalf("%s left the mount table with its watcher stopped", m.dir)
	}
	if err := mountinfo.LazyUnmount(m.dir); err != nil { // what ExecStopPost does
		t.Fatal(err)
	}
	m2 := startMountAt(t, srv, srv.Endpoint, bucket, m.dir, args...)
	cur := mountEntry(t, m.dir)
	t.Logf("dead mount: ID %d device %d:%d; new mount: ID %d device %d:%d", old.ID, unix.Major(old.Dev),
		unix.Minor(old.Dev), cur.ID, unix.Major(cur.Dev), unix.Minor(cur.Dev))

	if err := syscall.Kill(watcher, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if !waitExit(watcher, autoUnmountBound) {
		t.Fatalf("the killed daemon's watcher %d still runs after SIGCONT", watcher)
	}
	if e := mountEntry(t, m.dir); e.ID != cur.ID || e.Dev != cur.Dev {
		t.Fatalf("the mount on %s changed from ID %d to %d after the old watcher ran", m.dir, cur.ID, e.ID)
	}
	checkMountWorks(t, m2, "new-mount.bin", 21)

	// A watcher that believes the live new mount is its dead one.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(t.TempDir(), "watcher.log")
	cmd := exec.Command(binary, "--unmount-watcher", "--mount-id", strconv.Itoa(cur.ID),
		"--dev", strconv.FormatUint(cur.Dev, 10), "--daemon-pid", "1", "--log-file", logFile, "--", m.dir)
	cmd.ExtraFiles = []*os.File{r}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.Close()
	w.Close() // its "daemon" is gone
	werr := make(chan error, 1)
	go func() { werr <- cmd.Wait() }()
	select {
	case err := <-werr:
		if err != nil {
			t.Errorf("watcher exited with %v; log:\n%s", err, readFile(logFile))
		}
	case <-time.After(autoUnmountBound):
		cmd.Process.Kill()
		t.Fatalf("watcher still runs %v after its pipe closed", autoUnmountBound)
	}
	if e := mountEntry(t, m.dir); e.ID != cur.ID {
		t.Fatalf("a watcher with the live mount's identity unmounted it (now ID %d)", e.ID)
	}
	if log := readFile(logFile); !strings.Contains(log, "left alone") {
		t.Errorf("the watcher did not log why it left the live mount alone:\n%s", log)
	}
	checkMountWorks(t, m2, "new-mount-2.bin", 22)
}

// TestCleanStopLeavesNoWatcher: the watcher ignores SIGTERM, SIGINT and SIGHUP; an unmount (fusermount3 -u)
// ends the daemon and its watcher together, the watcher logs nothing, and the journal of a mount with no upload
// left is removed. With -o noauto_unmount no watcher is started.
func TestCleanStopLeavesNoWatcher(t *testing.T) {
	srv := miniotest.Shared(t)
	bucket := srv.NewBucket(t)
	state := t.TempDir()
	m := startMount(t, srv, srv.Endpoint, bucket, append([]string{"--state-dir", state}, smallLimits...)...)
	watcher := oneWatcher(t, m.pid)
	if names, _ := filepath.Glob(filepath.Join(state, "uploads-*.journal")); len(names) != 1 {
		t.Errorf("journals in the state directory while mounted: %v; want one", names)
	}
	// A service manager stopping the unit signals every process of it: the watcher must stay for its job.
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP} {
		if err := syscall.Kill(watcher, sig); err != nil {
			t.Fatal(err)
		}
	}
	checkMountWorks(t, m, "clean.bin", 31)
	if !alive(watcher) {
		t.Fatalf("the unmount watcher %d ended on SIGTERM, SIGINT or SIGHUP", watcher)
	}
	pid := m.pid
	m.unmount(t) // fusermount3 -u, then waits for the daemon to exit
	m.pid = 0
	if alive(watcher) {
		t.Errorf("unmount watcher %d still runs after its daemon %d exited", watcher, pid)
		if !waitExit(watcher, autoUnmountBound) {
			t.Fatalf("unmount watcher %d still runs %v after its daemon exited", watcher, autoUnmountBound)
		}
	}
	if log := readFile(m.logFile); strings.Contains(log, "unmount-watcher") || strings.Contains(log, "unmount watcher") {
		t.Errorf("a clean stop logged about the watcher:\n%s", log)
	}
	if names, _ := filepath.Glob(filepath.Join(state, "uploads-*")); len(names) != 0 {
		t.Errorf("files left in the state directory after a clean stop: %v", names)
	}

	off := startMount(t, srv, srv.Endpoint, bucket, append([]string{"-o", "noauto_unmount", "--state-dir", state}, smallLimits...)...)
	if ws := watcherPIDs(t, off.pid); len(ws) != 0 {
		t.Errorf("-o noauto_unmount: daemon %d has unmount watchers %v", off.pid, ws)
	}
}

// TestSecondDaemonWaitsForJournal: while a daemon still serves a lazily detached mount (SIGTERM with a file
// open), a new daemon of the same mount on the same directory is refused with exit 3 naming the cause, because
// it would abort the first one's uploads in progress; once the first has ended, it starts.
func TestSecondDaemonWaitsForJournal(t *testing.T) {
	srv := miniotest.Shared(t)
	bucket := srv.NewBucket(t)
	args := append([]string{"--state-dir", t.TempDir()}, smallLimits...)
	m := startMount(t, srv, srv.Endpoint, bucket, args...)
	f, err := os.Create(filepath.Join(m.dir, "open.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("kept open")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(m.pid, syscall.SIGTERM); err != nil { // busy: detached, still serving f
		t.Fatal(err)
	}
	if _, ok := waitUnmounted(m.dir, time.Now(), autoUnmountBound); !ok {
		t.Fatalf("%s still mounted after SIGTERM with a file open; want it detached", m.dir)
	}
	if !alive(m.pid) {
		t.Fatalf("the daemon ended with a file open on its detached mount")
	}

	all := append(append([]string{"--endpoint", srv.Endpoint, "--log-file", filepath.Join(t.TempDir(), "second.log")}, args...), bucket, m.dir)
	cmd := exec.Command(binary, all...)
	cmd.Env = append(os.Environ(), srv.Env()...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 || !strings.Contains(string(out), "another s3mount") {
		if err == nil {
			exec.Command("fusermount3", "-u", m.dir).Run()
		}
		t.Fatalf("second daemon of the same mount: %v, output %q; want exit 3 naming the running daemon", err, out)
	}
	t.Logf("second daemon refused: %s", strings.TrimSpace(string(out)))

	if err := f.Close(); err != nil {
		t.Fatalf("close of the file on the detached mount: %v", err)
	}
	if !waitExit(m.pid, time.Minute) {
		t.Fatalf("daemon %d still runs after its last file was closed", m.pid)
	}
	m.pid = 0
	m2 := startMountAt(t, srv, srv.Endpoint, bucket, m.dir, args...)
	checkMountWorks(t, m2, "after.bin", 41)
	lost := checkObjects(t, srv.Client(t, bucket), expected{"open.bin": sumOf("kept open"), "after.bin": sum(41, 6<<20)})
	if lost != 0 {
		t.Errorf("%d bytes lost", lost)
	}
}

// sumOf is the SHA-256 of s.
func sumOf(s string) [32]byte { return sha256.Sum256([]byte(s)) }

// TestKill9WithUnlinkedOpenFile: a file unlinked while open for reading keeps its object until the last close;
// a daemon killed before that leaves the delete in its journal, and the next start of the mount does it.
func TestKill9WithUnlinkedOpenFile(t *testing.T) {
	ctx := context.Background()
	srv := miniotest.Shared(t)
	bucket := srv.NewBucket(t)
	client := srv.Client(t, bucket)
	args := append([]string{"--state-dir", t.TempDir()}, smallLimits...)
	putObject(t, client, "tmp.bin", 5, 1<<20)
	m := startMount(t, srv, srv.Endpoint, bucket, args...)
	f, err := os.Open(filepath.Join(m.dir, "tmp.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(f, make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(m.dir, "tmp.bin")); err != nil {
		t.Fatalf("unlink while open: %v", err)
	}
	if _, err := client.HeadObject(ctx, "tmp.bin"); err != nil {
		t.Fatalf("the object went while a reader still had it open: %v", err)
	}
	if j := journalText(t, args[1]); !strings.Contains(j, `delete`) || !strings.Contains(j, `"tmp.bin"`) {
		t.Fatalf("the deferred delete is not in the journal:\n%s", j)
	}
	killTime := time.Now()
	syscall.Kill(m.pid, syscall.SIGKILL)
	if !waitExit(m.pid, 30*time.Second) {
		t.Fatalf("daemon %d survived SIGKILL", m.pid)
	}
	m.pid = 0
	f.Close() // ENOTCONN: the daemon is gone
	if _, ok := waitUnmounted(m.dir, killTime, autoUnmountBound); !ok {
		if err := mountinfo.LazyUnmount(m.dir); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := client.HeadObject(ctx, "tmp.bin"); err != nil {
		t.Fatalf("the object went with the killed daemon, before a new start: %v", err)
	}

	m2 := startMountAt(t, srv, srv.Endpoint, bucket, m.dir, args...)
	if _, err := client.HeadObject(ctx, "tmp.bin"); !errors.Is(err, s3client.ErrNotFound) {
		t.Errorf("after the new start: HEAD tmp.bin = %v, want not found (the deferred delete done)", err)
	}
	if log := readFile(m2.logFile); !strings.Contains(log, "did a delete deferred by a previous daemon") {
		t.Errorf("the new daemon's log has no line for the deferred delete:\n%s", log)
	}
	added, removed := 0, 0
	j := journalText(t, args[1])
	for _, line := range strings.Split(j, "\n") {
		switch {
		case strings.HasPrefix(line, "+ ") && strings.Contains(line, "tmp.bin"):
			added++
		case strings.HasPrefix(line, "- ") && strings.Contains(line, "tmp.bin"):
			removed++
		}
	}
	if added != removed {
		t.Errorf("the deferred delete is still journaled after it was done (%d records, %d removals):\n%s", added, removed, j)
	}
}
