package scaletest

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/s3ftp/s3ftp/internal/mountinfo"
)

// Names of everything this file creates carry the test process's pid, so a later run can tell its own objects
// from a crashed run's leftovers (pid no longer alive) and from a concurrent run's (pid alive, left alone).
const (
	nsPrefix     = "s3ftp-t-" // network namespaces: s3ftp-t-<pid>-<role>
	bridgePrefix = "s3b"      // bridge: s3b<pid>
	vethPrefix   = "s3v"      // root-side veth ends: s3v<pid><role>; the namespace side is s3p<pid><role>
)

// topology is the test network: one bridge in the root namespace and three namespaces hanging off it.
//
//	root ns  bridge .1   MinIO relay (:9000) and the test's clients
//	lb       .10 (VIP)   haproxy's frontends; .11 source of control-backend connections, .12 of data-backend ones
//	a        .2          s3mount + ftpfront of host A
//	b        .3          s3mount + ftpfront of host B
type topology struct {
	pid    int
	bridge string
	net    netip.Prefix
	// ns maps a role ("lb", "a", "b") to its namespace name.
	ns map[string]string
}

// addr returns the address .n of the test subnet.
func (tp *topology) addr(n byte) netip.Addr {
	b := tp.net.Addr().As4()
	b[3] = n
	return netip.AddrFrom4(b)
}

// Addresses of the roles (see topology).
func (tp *topology) rootIP() netip.Addr { return tp.addr(1) }
func (tp *topology) hostIP(h string) netip.Addr {
	if h == "a" {
		return tp.addr(2)
	}
	return tp.addr(3)
}
func (tp *topology) vip() netip.Addr       { return tp.addr(10) }
func (tp *topology) lbCtlSrc() netip.Addr  { return tp.addr(11) }
func (tp *topology) lbDataSrc() netip.Addr { return tp.addr(12) }

// nsPath is the file nsenter --net= takes for role.
func (tp *topology) nsPath(role string) string { return filepath.Join("/run/netns", tp.ns[role]) }

// run runs a command and fails the test with its output when it fails.
func run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// tryRun runs a command for cleanup; failures are logged, never fatal, so every cleanup step gets its turn.
func tryRun(t testing.TB, name string, args ...string) {
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Logf("cleanup: %s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
}

// newTopology creates the bridge, the namespaces and their links, and removes them all in t.Cleanup. It first
// removes what runs of this test whose process is gone left behind.
func newTopology(t *testing.T) *topology {
	t.Helper()
	removeStale(t)
	pid := os.Getpid()
	tp := &topology{
		pid:    pid,
		bridge: fmt.Sprintf("%s%d", bridgePrefix, pid),
		// The third octet comes from the pid so that concurrent runs on one machine do not share a subnet.
		net: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 77, byte(pid%250 + 1), 0}), 24),
		ns:  map[string]string{},
	}
	if out, err := exec.Command("ip", "-4", "route", "show", tp.net.String()).Output(); err == nil && len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("subnet %s is already routed here (%s); another run with a colliding pid is active", tp.net, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { tp.remove(t) })

	run(t, "ip", "link", "add", tp.bridge, "type", "bridge")
	run(t, "ip", "addr", "add", tp.rootIP().String()+"/24", "dev", tp.bridge)
	run(t, "ip", "link", "set", tp.bridge, "up")

	roles := map[string][]netip.Addr{
		"lb": {tp.vip(), tp.lbCtlSrc(), tp.lbDataSrc()},
		"a":  {tp.hostIP("a")},
		"b":  {tp.hostIP("b")},
	}
	for _, role := range []string{"lb", "a", "b"} {
		ns := fmt.Sprintf("%s%d-%s", nsPrefix, pid, role)
		tp.ns[role] = ns
		run(t, "ip", "netns", "add", ns)
		outer := fmt.Sprintf("%s%d%s", vethPrefix, pid, role)
		inner := fmt.Sprintf("s3p%d%s", pid, role)
		run(t, "ip", "link", "add", outer, "type", "veth", "peer", "name", inner, "netns", ns)
		run(t, "ip", "link", "set", outer, "master", tp.bridge)
		run(t, "ip", "link", "set", outer, "up")
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
		for _, a := range roles[role] {
			run(t, "ip", "-n", ns, "addr", "add", a.String()+"/24", "dev", inner)
		}
		run(t, "ip", "-n", ns, "link", "set", inner, "up")
	}
	return tp
}

// remove deletes the namespaces (which takes their veth ends along) and the bridge. Processes must be gone
// first: a namespace with a process in it outlives "ip netns del" until that process exits.
func (tp *topology) remove(t testing.TB) {
	for _, ns := range tp.ns {
		tryRun(t, "ip", "netns", "del", ns)
	}
	for role := range tp.ns {
		if linkExists(fmt.Sprintf("%s%d%s", vethPrefix, tp.pid, role)) {
			tryRun(t, "ip", "link", "del", fmt.Sprintf("%s%d%s", vethPrefix, tp.pid, role))
		}
	}
	tryRun(t, "ip", "link", "del", tp.bridge)
}

func linkExists(name string) bool {
	_, err := os.Stat(filepath.Join("/sys/class/net", name))
	return err == nil
}

// pidAlive reports whether a process with this pid exists.
func pidAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}

// stalePid extracts the pid from a name "<prefix><pid>..." and reports whether it belongs to a dead run.
func stalePid(name, prefix string) bool {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return false
	}
	end := 0
	for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
		end++
	}
	pid, err := strconv.Atoi(rest[:end])
	return err == nil && pid > 0 && pid != os.Getpid() && !pidAlive(pid)
}

// removeStale removes mounts, namespaces and links that a run which no longer exists left behind.
func removeStale(t testing.TB) {
	// FUSE mounts of dead runs live under their temp dirs, whose names carry mountDirMarker and the pid.
	if entries, err := mountinfo.Read(); err == nil {
		for _, e := range entries {
			// Mount points are <tmp>/s3ftp-scale-<pid>-*/mnt-<host>.
			if mp := e.MountPoint; stalePid(filepath.Base(filepath.Dir(mp)), mountDirMarker) {
				t.Logf("removing stale mount %s", mp)
				if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil {
					t.Logf("unmount %s: %v", mp, err)
				}
			}
		}
	}
	if entries, err := os.ReadDir("/run/netns"); err == nil {
		for _, e := range entries {
			if stalePid(e.Name(), nsPrefix) {
				t.Logf("removing stale namespace %s", e.Name())
				tryRun(t, "ip", "netns", "del", e.Name())
			}
		}
	}
	if entries, err := os.ReadDir("/sys/class/net"); err == nil {
		for _, e := range entries {
			// A veth end goes away with its namespace, so it may be gone by now.
			if (stalePid(e.Name(), bridgePrefix) || stalePid(e.Name(), vethPrefix)) && linkExists(e.Name()) {
				t.Logf("removing stale link %s", e.Name())
				tryRun(t, "ip", "link", "del", e.Name())
			}
		}
	}
	if entries, err := os.ReadDir(os.TempDir()); err == nil {
		for _, e := range entries {
			if stalePid(e.Name(), mountDirMarker) {
				t.Logf("removing stale directory %s", e.Name())
				removeTestDir(t, filepath.Join(os.TempDir(), e.Name()))
			}
		}
	}
}

// removeTestDir removes a directory made by this test. Mount point directories are removed with os.Remove,
// never recursively: if an unmount failed, a recursive removal would delete the files of the bucket behind it.
// Only the directory of built binaries is removed recursively.
func removeTestDir(t testing.TB, dir string) {
	if strings.Contains(filepath.Base(dir), binDirMarker) {
		if err := os.RemoveAll(dir); err != nil {
			t.Logf("remove %s: %v", dir, err)
		}
		return
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			t.Logf("remove %s: %v", filepath.Join(dir, e.Name()), err)
		}
	}
	if err := os.Remove(dir); err != nil {
		t.Logf("remove %s: %v", dir, err)
	}
}

// isMounted reports whether dir is a mount point in this mount namespace; an unreadable table counts as no.
func isMounted(dir string) bool {
	ok, _ := mountinfo.IsMounted(dir)
	return ok
}
