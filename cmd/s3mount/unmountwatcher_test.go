package main

import (
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/s3ftp/s3ftp/internal/mountinfo"
)

// TestLocateMount is the watcher's identity check: only the entry with the recorded mount ID, device number and
// path is the daemon's mount; a mount stacked over it makes it "covered" (an unmount of the path would remove
// the other one); a mount with the same ID but another device, or on another path, is someone else's.
func TestLocateMount(t *testing.T) {
	id := mountIdentity{ID: 44, Dev: unix.Mkdev(0, 39), Path: "/srv/ftp"}
	root := mountinfo.Entry{ID: 22, Dev: unix.Mkdev(8, 1), MountPoint: "/", FSType: "ext4"}
	ours := mountinfo.Entry{ID: 44, Dev: unix.Mkdev(0, 39), MountPoint: "/srv/ftp", FSType: "fuse.s3mount"}
	tests := []struct {
		name    string
		entries []mountinfo.Entry
		want    mountState
	}{
		{"unmounted", []mountinfo.Entry{root}, mountGone},
		{"on top", []mountinfo.Entry{root, ours}, mountOnTop},
		{"new mount, same ID, other device", []mountinfo.Entry{root, {ID: 44, Dev: unix.Mkdev(0, 40), MountPoint: "/srv/ftp", FSType: "fuse.s3mount"}}, mountGone},
		{"same ID and device elsewhere", []mountinfo.Entry{root, {ID: 44, Dev: unix.Mkdev(0, 39), MountPoint: "/mnt/x", FSType: "fuse.s3mount"}}, mountGone},
		{"covered by a later mount", []mountinfo.Entry{root, ours, {ID: 45, Dev: unix.Mkdev(0, 50), MountPoint: "/srv/ftp", FSType: "tmpfs"}}, mountCovered},
		{"under it is something else", []mountinfo.Entry{root, {ID: 30, Dev: unix.Mkdev(0, 30), MountPoint: "/srv/ftp", FSType: "tmpfs"}, ours}, mountOnTop},
		{"a mount below the mount point does not cover it", []mountinfo.Entry{root, ours, {ID: 46, Dev: unix.Mkdev(0, 51), MountPoint: "/srv/ftp/sub", FSType: "tmpfs"}}, mountOnTop},
	}
	for _, tt := range tests {
		if got := locateMount(tt.entries, id); got != tt.want {
			t.Errorf("%s: locateMount = %d, want %d", tt.name, got, tt.want)
		}
	}
}

// TestConnectionGoneOnLiveDirectory: a directory whose file system answers is never taken for a dead mount.
func TestConnectionGoneOnLiveDirectory(t *testing.T) {
	dead, err := connectionGone(t.TempDir(), 10*time.Second)
	if dead || err != nil {
		t.Fatalf("connectionGone(a temporary directory) = %v, %v; want false, nil", dead, err)
	}
	dead, err = connectionGone("/nonexistent/s3mount-test", 10*time.Second)
	if dead || err == nil {
		t.Fatalf("connectionGone(a missing path) = %v, %v; want false and the error", dead, err)
	}
}

// TestIdentifyMountNotMounted: a directory that is not a mount point has no identity to watch.
func TestIdentifyMountNotMounted(t *testing.T) {
	dir := t.TempDir()
	if id, err := identifyMount(dir); err == nil {
		t.Fatalf("identifyMount(%s) = %+v for a plain directory; want an error", dir, id)
	}
}

// TestWatcherModeNeedsItsArguments: the hidden mode refuses to run without the identity it must check.
func TestWatcherModeNeedsItsArguments(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"--mount-id", "0", "--dev", "1", "/srv/ftp"},
		{"--mount-id", "44", "/srv/ftp"},
		{"--mount-id", "44", "--dev", "1"},
		{"--mount-id", "x", "--dev", "1", "/srv/ftp"},
	} {
		if code := runUnmountWatcher(args); code != ExitUsage {
			t.Errorf("runUnmountWatcher(%s) = %d, want %d", strings.Join(args, " "), code, ExitUsage)
		}
	}
}
