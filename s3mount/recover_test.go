package s3mount_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// fuseSuperMagic is the f_type statfs(2) reports for a FUSE mount.
const fuseSuperMagic = 0x65735546

// A panic inside a FUSE operation (here: the HEAD of a lookup) fails that system call with EIO, is logged once
// at ERROR with the operation and the stack, and is counted; the mount keeps serving other files and, once
// the cause is gone, the same name.
func TestPanicInLookupFailsWithEIOAndMountKeepsServing(t *testing.T) {
	env, fake := mountFake(t, nil)
	fake.SetFault(func(op, key string, call int) error {
		if op == "HeadObject" && key == "boom" {
			panic("injected panic for key boom")
		}
		return nil
	})
	boom := filepath.Join(env.Dir, "boom")
	if _, err := os.Stat(boom); !errors.Is(err, syscall.EIO) {
		t.Fatalf("stat of a name whose lookup panics = %v, want EIO", err)
	}
	if n := env.Mounted.Panics(); n != 1 {
		t.Errorf("Panics() = %d after one panicking lookup, want 1", n)
	}
	var panicLines []string
	for _, l := range env.Logs() {
		if strings.Contains(l, "panic") && strings.Contains(l, "level=ERROR") {
			panicLines = append(panicLines, l)
		}
	}
	if len(panicLines) != 1 {
		t.Fatalf("%d ERROR lines about a panic, want 1: %q", len(panicLines), env.Logs())
	}
	l := panicLines[0]
	for _, want := range []string{"injected panic for key boom", "stack=", "(*dirNode).Lookup"} {
		if !strings.Contains(l, want) {
			t.Errorf("panic log line lacks %q: %s", want, l)
		}
	}

	other := filepath.Join(env.Dir, "after.txt")
	if err := os.WriteFile(other, []byte("still serving"), 0o644); err != nil {
		t.Fatalf("create after the panic: %v", err)
	}
	if got, err := os.ReadFile(other); err != nil || string(got) != "still serving" {
		t.Fatalf("read after the panic = %q, %v", got, err)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(env.Dir, &st); err != nil || st.Type != fuseSuperMagic {
		t.Fatalf("statfs of the mount after the panic = type %#x, %v; want the FUSE mount", st.Type, err)
	}

	fake.SetFault(nil)
	fake.Put("boom", []byte("fine now"))
	if got, err := os.ReadFile(boom); err != nil || string(got) != "fine now" {
		t.Errorf("read of the name once its lookup no longer panics = %q, %v", got, err)
	}
	if n := env.Mounted.Panics(); n != 1 {
		t.Errorf("Panics() = %d at the end, want 1", n)
	}
}
