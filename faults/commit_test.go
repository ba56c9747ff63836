package faults

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/s3ftp/s3ftp/internal/miniotest"
)

// The commit model (SEMANTICS.md "Writing"), proved with the real binary over MinIO: programs that write a file
// the ordinary way (several commands on one redirection, children spawned between writes, dup'd descriptors)
// succeed, and S3 holds one complete object per file, created once.

// freePort returns a loopback address nobody listens on.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// s3Requests scrapes the daemon's /metrics and returns s3mount_s3_requests_total by operation, summed over
// statuses 2xx.
func s3Requests(t *testing.T, metricsAddr string) map[string]int {
	t.Helper()
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatalf("scrape metrics: %v", err)
	}
	defer resp.Body.Close()
	counts := map[string]int{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, `s3mount_s3_requests_total{op="`)
		if !ok {
			continue
		}
		op, rest, _ := strings.Cut(rest, `"`)
		if !strings.Contains(rest, `status="2`) {
			continue
		}
		f := strings.Fields(rest)
		v, _ := strconv.ParseFloat(f[len(f)-1], 64)
		counts[op] += int(v)
	}
	return counts
}

// creations is how many objects the requests in c created: each successful PutObject, CopyObject and
// CompleteMultipartUpload makes one (and one object-created event in S3).
func creations(c map[string]int) int {
	return c["PutObject"] + c["CopyObject"] + c["CompleteMultipartUpload"]
}

// TestCommitOrdinaryWriters runs the writers of the commit-model issue on the mount: a subshell with two
// writers, a brace group, `exec 3>f` with several commands (one writing more than a part), a Python program and
// a Go program that spawn a child between writes. Every one succeeds, every object holds every byte in order,
// and the daemon made exactly one object creation per file, none of them before the file was complete.
func TestCommitOrdinaryWriters(t *testing.T) {
	for _, tool := range []string{"bash", "python3", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed: %v", tool, err)
		}
	}
	srv := miniotest.Shared(t)
	bucket := srv.NewBucket(t)
	client := srv.Client(t, bucket)
	metrics := freePort(t)
	m := startMount(t, srv, srv.Endpoint, bucket, "--part-size", "5MiB", "--metrics-addr", metrics)

	local := t.TempDir()
	a, b := bytes.Repeat([]byte("a"), 1<<20), bytes.Repeat([]byte("b"), 6<<20+3)
	big := bytes.Repeat([]byte("0123456789abcdef"), 12<<20/16) // 12 MiB: more than two parts
	for name, data := range map[string][]byte{"a": a, "b": b, "big": big} {
		if err := os.WriteFile(filepath.Join(local, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	goProg := filepath.Join(local, "spawner")
	writeGoProgram(t, goProg)

	cases := []struct {
		name string
		cmd  []string
		want []byte
	}{
		{"subshell", []string{"bash", "-c", fmt.Sprintf("(cat %s/a; cat %s/b) > subshell", local, local)}, cat(a, b)},
		{"brace", []string{"bash", "-c", fmt.Sprintf("{ echo header; cat %s/b; } > brace", local)}, cat([]byte("header\n"), b)},
		{"exec3", []string{"bash", "-c", fmt.Sprintf("exec 3>exec3; echo one >&3; cat %s/big >&3; echo three >&3; exec 3>&-", local)},
			cat([]byte("one\n"), big, []byte("three\n"))},
		{"python", []string{"python3", "-c", `import subprocess
f = open("python", "w")
f.write("x" * 100)
f.flush()
subprocess.run(["true"], check=True)
f.write("y" * 100)
f.close()`}, cat(bytes.Repeat([]byte("x"), 100), bytes.Repeat([]byte("y"), 100))},
		{"go", []string{goProg, "go"}, cat(bytes.Repeat([]byte("g"), 6<<20), bytes.Repeat([]byte("h"), 100))},
	}
	before := creations(s3Requests(t, metrics))
	for _, c := range cases {
		cmd := exec.Command(c.cmd[0], c.cmd[1:]...)
		cmd.Dir = m.dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", c.name, err, out)
			continue
		}
		body, _, err := client.GetObject(context.Background(), c.name, 0, -1, "")
		if err != nil {
			t.Errorf("%s: get the object: %v", c.name, err)
			continue
		}
		got, _ := io.ReadAll(body)
		body.Close()
		if !bytes.Equal(got, c.want) {
			t.Errorf("%s: object has %d bytes, want %d; equal=%v", c.name, len(got), len(c.want), bytes.Equal(got, c.want))
		}
	}
	// Release (the last close) reaches the daemon after close(2) returned; a commit it made would show late.
	time.Sleep(time.Second)
	if n := creations(s3Requests(t, metrics)) - before; n != len(cases) {
		t.Errorf("%d object creations for %d files, want exactly one each: %v\nlog:\n%s", n, len(cases),
			s3Requests(t, metrics), readFile(m.logFile))
	}
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// writeGoProgram builds a Go program that writes 6 MiB to the file named by its argument, runs a child
// (os/exec: fork, then exec closes the inherited descriptor), writes 100 bytes more and closes.
func writeGoProgram(t *testing.T, bin string) {
	t.Helper()
	dir := t.TempDir()
	src := `package main

import (
	"bytes"
	"os"
	"os/exec"
)

func main() {
	f, err := os.Create(os.Args[1])
	if err != nil {
		panic(err)
	}
	if _, err := f.Write(bytes.Repeat([]byte("g"), 6<<20)); err != nil {
		panic(err)
	}
	if err := exec.Command("true").Run(); err != nil {
		panic(err)
	}
	if _, err := f.Write(bytes.Repeat([]byte("h"), 100)); err != nil {
		panic(err)
	}
	if err := f.Close(); err != nil {
		panic(err)
	}
}
`
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module spawner\n\ngo 1.22\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the Go writer: %v\n%s", err, out)
	}
}

// TestCommitBoundedServerSideCopies writes 1 GiB while a child process, given the descriptor, closes it every
// 100 MiB (a FLUSH each time). The stated bound is at most the committed size in copies per commit, and these
// flushes commit nothing: the object is created once, with no server-side copy at all, and holds every byte.
func TestCommitBoundedServerSideCopies(t *testing.T) {
	srv := miniotest.Shared(t)
	bucket := srv.NewBucket(t)
	client := srv.Client(t, bucket)
	metrics := freePort(t)
	m := startMount(t, srv, srv.Endpoint, bucket, "--metrics-addr", metrics)
	const size, every = 1 << 30, 100 << 20
	before := s3Requests(t, metrics)
	path := filepath.Join(m.dir, "big.bin")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	src := prng(42, size)
	buf := make([]byte, 1<<20)
	children := 0
	for written := int64(0); written < size; {
		n, _ := io.ReadFull(src, buf)
		if _, err := f.Write(buf[:n]); err != nil {
			t.Fatalf("write at %d: %v", written, err)
		}
		written += int64(n)
		if written%every == 0 {
			child := exec.Command("sh", "-c", "exec 3>&-")
			child.ExtraFiles = []*os.File{f}
			if out, err := child.CombinedOutput(); err != nil {
				t.Fatalf("child closing the descriptor: %v\n%s", err, out)
			}
			children++
		}
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close: %v\nlog:\n%s", err, readFile(m.logFile))
	}
	time.Sleep(time.Second)
	after := s3Requests(t, metrics)
	copies := after["UploadPartCopy"] - before["UploadPartCopy"] + after["CopyObject"] - before["CopyObject"]
	if copies != 0 || children < 10 {
		t.Errorf("%d server-side copy requests with %d child flushes, want none", copies, children)
	}
	if n := creations(after) - creations(before); n != 1 {
		t.Errorf("%d object creations, want 1: %v", n, after)
	}
	info, err := client.HeadObject(context.Background(), "big.bin")
	if err != nil || info.Size != size {
		t.Fatalf("object: %+v, %v", info, err)
	}
	if err := sameAs(path, 42, size); err != nil {
		t.Errorf("read back: %v", err)
	}
	t.Logf("1 GiB, %d child flushes: %d copy requests, %d creations", children, copies, creations(after)-creations(before))
}

// TestCommitS3KilledMidWrite kills MinIO while a new file and an overwrite of an existing one are being
// written: both closes fail, and once MinIO is back the new name has no object (not even an empty one) and the
// existing object is byte for byte what it was.
func TestCommitS3KilledMidWrite(t *testing.T) {
	srv := miniotest.Start(t)
	bucket := srv.NewBucket(t)
	client := srv.Client(t, bucket)
	const oldSeed, oldSize = 7, 20 << 20
	putObject(t, client, "old.bin", oldSeed, oldSize)
	m := startMount(t, srv, srv.Endpoint, bucket, append(append([]string{}, smallLimits...),
		"--s3-idle-timeout", "2s", "--s3-timeout", "2s", "--s3-max-attempts", "2")...)

	var once sync.Once
	kill := func(written int64) {
		if written >= 30<<20 {
			once.Do(func() {
				if err := srv.Kill(); err != nil {
					t.Errorf("kill minio: %v", err)
				}
			})
		}
	}
	var wg sync.WaitGroup
	results := make([]writeResult, 2)
	for i, name := range []string{"new.bin", "old.bin"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = writeFile(filepath.Join(m.dir, name), uint64(100+i), 400<<20, kill)
		}()
	}
	wg.Wait()
	for i, r := range results {
		if !r.failed() {
			t.Errorf("write %d succeeded with MinIO killed after %d bytes", i, r.written)
		}
	}
	if err := srv.Restart(); err != nil {
		t.Fatalf("restart minio: %v", err)
	}
	page, err := client.List(context.Background(), "new", "", "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Objects) != 0 {
		t.Errorf("objects under new.bin after the failed write: %+v", page.Objects)
	}
	if lost := checkObjects(t, client, expected{"old.bin": sum(oldSeed, oldSize)}); lost != 0 {
		t.Errorf("%d bytes lost of the existing object", lost)
	}
}

// TestCommitExclusiveCreateAcrossMounts races two mounts of one bucket creating the same new name with
// O_EXCL: both opens succeed (neither sees an object), exactly one close succeeds and the other gets EEXIST,
// and the object is the winner's.
func TestCommitExclusiveCreateAcrossMounts(t *testing.T) {
	srv := miniotest.Shared(t)
	bucket := srv.NewBucket(t)
	client := srv.Client(t, bucket)
	mounts := []*mount{startMount(t, srv, srv.Endpoint, bucket), startMount(t, srv, srv.Endpoint, bucket)}
	for _, size := range []int{100, 7 << 20} { // one PutObject, and a multipart upload
		name := fmt.Sprintf("race-%d", size)
		files := make([]*os.File, 2)
		for i, m := range mounts {
			f, err := os.OpenFile(filepath.Join(m.dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if err != nil {
				t.Fatalf("mount %d: exclusive open: %v", i, err)
			}
			if _, err := f.Write(bytes.Repeat([]byte{byte('A' + i)}, size)); err != nil {
				t.Fatalf("mount %d: write: %v", i, err)
			}
			files[i] = f
		}
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i, f := range files {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = f.Close() }()
		}
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil:
				winner = i
			case !errors.Is(err, syscall.EEXIST):
				t.Errorf("%s: mount %d: close = %v, want nil or EEXIST", name, i, err)
			}
		}
		if winner < 0 || errs[1-winner] == nil {
			t.Fatalf("%s: closes = %v, want exactly one success and one EEXIST", name, errs)
		}
		body, _, err := client.GetObject(context.Background(), name, 0, -1, "")
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(body)
		body.Close()
		if !bytes.Equal(got, bytes.Repeat([]byte{byte('A' + winner)}, size)) {
			t.Errorf("%s: the object is not the winner's (%d bytes)", name, len(got))
		}
	}
}

// TestChecksumsOfOneGiB: with --checksums --xattr the SHA-256 of a 1 GiB file written through the mount is
// read back as user.sha256 without a single GET of the object, matches the bytes, and a new daemon of the
// same mount shows the same value.
func TestChecksumsOfOneGiB(t *testing.T) {
	srv := miniotest.Shared(t)
	bucket := srv.NewBucket(t)
	metrics := freePort(t)
	m := startMount(t, srv, srv.Endpoint, bucket, "--metrics-addr", metrics, "--checksums", "--xattr")
	const size = 1 << 30
	path := filepath.Join(m.dir, "big.bin")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, h), prng(7, size)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close: %v\nlog:\n%s", err, readFile(m.logFile))
	}
	want := fmt.Sprintf("%x", h.Sum(nil))
	before := s3Requests(t, metrics)
	buf := make([]byte, 128)
	n, err := unix.Getxattr(path, "user.sha256", buf)
	if err != nil || string(buf[:n]) != want {
		t.Fatalf("user.sha256 = %q, %v; want %s", buf[:max(n, 0)], err, want)
	}
	after := s3Requests(t, metrics)
	if gets := after["GetObject"] - before["GetObject"]; gets != 0 {
		t.Errorf("reading the checksum cost %d GETs, want 0", gets)
	}
	m.unmount(t)
	m.pid = 0
	m2 := startMountAt(t, srv, srv.Endpoint, bucket, m.dir, "--xattr")
	n, err = unix.Getxattr(filepath.Join(m2.dir, "big.bin"), "user.sha256", buf)
	if err != nil || string(buf[:n]) != want {
		t.Errorf("user.sha256 after a new start = %q, %v; want %s", buf[:max(n, 0)], err, want)
	}
	t.Logf("1 GiB: sha256 %s read with %d GETs", want, after["GetObject"]-before["GetObject"])
}
