package s3mount_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/s3ftp/s3ftp/s3mount/mounttest"
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

// A panic in a goroutine the mount runs outside any request fails the operation that goroutine worked for,
// and nothing else: a write whose part upload panics gets EIO from write(2) or close(2), stores nothing, and
// its multipart upload is aborted with every budget byte returned; a read whose prefetch (or block fetch)
// panics gets EIO. Each panic is logged once at ERROR with its stack and counted by Panics(); the mount keeps
// serving, and both files work once the panics stop.
func TestPanicInBackgroundGoroutineFailsItsOperationOnly(t *testing.T) {
	env, fake := mountFake(t, nil)
	readData := pattern(4<<20, 9)
	fake.Put("read.bin", readData)
	fake.SetFault(func(op, key string, call int) error {
		switch {
		case op == "UploadPart" && key == "upload.bin":
			panic("injected panic in UploadPart of upload.bin")
		case op == "GetObject" && key == "read.bin":
			panic("injected panic in GetObject of read.bin")
		}
		return nil
	})

	up := filepath.Join(env.Dir, "upload.bin")
	f, err := os.Create(up)
	if err != nil {
		t.Fatal(err)
	}
	chunk := pattern(1<<20, 3)
	var writeErr error
	for i := 0; i < 30 && writeErr == nil; i++ {
		_, writeErr = f.Write(chunk)
	}
	closeErr := f.Close()
	if !errors.Is(closeErr, syscall.EIO) {
		t.Errorf("close of a file whose part upload panicked = %v, want EIO", closeErr)
	}
	if writeErr != nil && !errors.Is(writeErr, syscall.EIO) {
		t.Errorf("write error = %v, want EIO", writeErr)
	}
	if _, ok := fake.Object("upload.bin"); ok {
		t.Errorf("an object was stored although a part upload panicked")
	}
	// The abort runs in the background once the parts in flight ended; the bound only makes a hang fail.
	for deadline := time.Now().Add(time.Minute); len(fake.Uploads()) != 0 || env.Mounted.Budget().InUse() != 0; {
		if time.Now().After(deadline) {
			t.Fatalf("uploads %v, budget in use %d a minute after the failed close; want none and 0",
				fake.Uploads(), env.Mounted.Budget().InUse())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := fake.Calls("AbortMultipartUpload"); n != 1 {
		t.Errorf("AbortMultipartUpload calls = %d, want 1", n)
	}

	rd := filepath.Join(env.Dir, "read.bin")
	if got, err := os.ReadFile(rd); !errors.Is(err, syscall.EIO) {
		t.Errorf("read of a file whose prefetch panics = %d bytes, %v; want EIO", len(got), err)
	}

	other := filepath.Join(env.Dir, "after.txt")
	if err := os.WriteFile(other, []byte("still serving"), 0o644); err != nil {
		t.Fatalf("create after the panics: %v", err)
	}
	if got, err := os.ReadFile(other); err != nil || string(got) != "still serving" {
		t.Fatalf("read after the panics = %q, %v", got, err)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(env.Dir, &st); err != nil || st.Type != fuseSuperMagic {
		t.Fatalf("statfs of the mount after the panics = type %#x, %v; want the FUSE mount", st.Type, err)
	}

	fake.SetFault(nil)
	if got, err := os.ReadFile(rd); err != nil || !bytes.Equal(got, readData) {
		t.Errorf("read once the GETs no longer panic: %d bytes, %v, equal %v", len(got), err, bytes.Equal(got, readData))
	}
	upData := pattern(12<<20, 4)
	if err := os.WriteFile(up, upData, 0o644); err != nil {
		t.Fatalf("write once the parts no longer panic: %v", err)
	}
	if got, ok := fake.Object("upload.bin"); !ok || !bytes.Equal(got, upData) {
		t.Errorf("object after the second write: present %v, equal %v", ok, bytes.Equal(got, upData))
	}
	checkPanicsLogged(t, env)
}

// checkPanicsLogged asserts that the panics of TestPanicInBackgroundGoroutineFailsItsOperationOnly were each
// logged once at ERROR with a stack and counted once, at least one of each kind. A read request the kernel
// sent before the failed read returned may still panic afterwards, so the count is compared once it stopped
// changing; the bound only makes a hang fail.
func checkPanicsLogged(t *testing.T, env *mounttest.Env) {
	t.Helper()
	var stackLines, uploadLines, readLines int
	for deadline := time.Now().Add(time.Minute); ; {
		stackLines, uploadLines, readLines = 0, 0, 0
		for _, l := range env.Logs() {
			if !strings.Contains(l, "stack=") {
				continue
			}
			stackLines++
			if !strings.Contains(l, "level=ERROR") {
				t.Errorf("panic logged below ERROR: %s", l)
			}
			switch {
			case strings.Contains(l, "injected panic in UploadPart"):
				uploadLines++
			case strings.Contains(l, "injected panic in GetObject"):
				readLines++
			}
		}
		if int64(stackLines) == env.Mounted.Panics() || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Both parts in flight may panic, and the kernel retries a failed read: at least one of each.
	if panics := env.Mounted.Panics(); uploadLines < 1 || readLines < 1 || int64(stackLines) != panics ||
		stackLines != uploadLines+readLines {
		t.Errorf("Panics() = %d; lines with a stack: %d (%d UploadPart, %d GetObject); want each panic logged once "+
			"and counted once", panics, stackLines, uploadLines, readLines)
	}
}

// A panic in one of the parallel copies of a directory rename fails the rename with EIO as a failed copy does:
// the copies made are deleted again and the source stays whole; the panic is counted.
func TestPanicInDirectoryRenameCopy(t *testing.T) {
	env, fake := mountFake(t, nil)
	for _, k := range []string{"src/a", "src/b", "src/c", "src/d"} {
		fake.Put(k, []byte("content of "+k))
	}
	fake.SetFault(func(op, key string, call int) error {
		if op == "CopyObject" && key == "src/c" {
			panic("injected panic in CopyObject of src/c")
		}
		return nil
	})
	err := os.Rename(filepath.Join(env.Dir, "src"), filepath.Join(env.Dir, "dst"))
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("rename of a directory whose copy panics = %v, want EIO", err)
	}
	fake.SetFault(nil)
	for _, k := range []string{"src/a", "src/b", "src/c", "src/d"} {
		if got, ok := fake.Object(k); !ok || string(got) != "content of "+k {
			t.Errorf("source %s after the failed rename: present %v, %q", k, ok, got)
		}
	}
	if s := fake.String(); strings.Contains(s, "dst/") {
		t.Errorf("copies left after the failed rename:\n%s", s)
	}
	if n := env.Mounted.Panics(); n != 1 {
		t.Errorf("Panics() = %d, want 1", n)
	}
}
