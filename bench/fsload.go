package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// ioBlock is the size of each write(2) and read(2) the file workloads issue, like cp and dd bs=1M.
const ioBlock = 1 << 20

// writeFile creates path and writes size pattern bytes to it; the error of close() is the result, because it is
// where a mount reports a failed upload.
func writeFile(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	buf := make([]byte, min(size, ioBlock))
	src := newContent(size)
	for {
		n, rerr := io.ReadFull(src, buf)
		if n > 0 {
			if _, err := f.Write(buf[:n]); err != nil {
				f.Close()
				return fmt.Errorf("write %s: %w", filepath.Base(path), err)
			}
		}
		if rerr != nil {
			break
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", filepath.Base(path), err)
	}
	return nil
}

// readFile reads path to the end and checks the content and length against the pattern.
func readFile(path string, size int64) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	v := &verifier{}
	if _, err := io.CopyBuffer(v, struct{ io.Reader }{f}, make([]byte, ioBlock)); err != nil {
		return fmt.Errorf("read %s: %w", filepath.Base(path), err)
	}
	if v.off != size {
		return fmt.Errorf("read %s: got %d bytes, want %d", filepath.Base(path), v.off, size)
	}
	return nil
}

// timeIt runs f and returns its duration.
func timeIt(f func() error) (time.Duration, error) {
	t := time.Now()
	err := f()
	return time.Since(t), err
}

// mibps converts bytes over a duration to MiB/s.
func mibps(bytes int64, d time.Duration) float64 {
	return float64(bytes) / (1 << 20) / d.Seconds()
}

// perSecond converts a count over a duration to a rate.
func perSecond(n int, d time.Duration) float64 {
	return float64(n) / d.Seconds()
}

// parallelWrite writes n files of size bytes each into dir, all at once, and returns the first error.
func parallelWrite(dir string, n int, size int64) error {
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { errs[i] = writeFile(filepath.Join(dir, fmt.Sprintf("w%02d.bin", i)), size) })
	}
	wg.Wait()
	return firstError(errs)
}

// firstError returns the first non-nil error and how many failed, so one message stands for all.
func firstError(errs []error) error {
	var first error
	failed := 0
	for _, err := range errs {
		if err != nil {
			failed++
			if first == nil {
				first = err
			}
		}
	}
	if failed > 1 {
		return fmt.Errorf("%d of %d failed, first: %w", failed, len(errs), first)
	}
	return first
}

// createSmall creates n files of size bytes each in dir, one after the other.
func createSmall(dir string, n int, size int64) error {
	for i := range n {
		if err := writeFile(filepath.Join(dir, smallName(i)), size); err != nil {
			return fmt.Errorf("file %d of %d: %w", i+1, n, err)
		}
	}
	return nil
}

// smallName names the i-th small file, so listings sort in creation order.
func smallName(i int) string { return fmt.Sprintf("f%05d.dat", i) }

// lsLong runs "ls -l dir" and checks that it lists want regular files.
func lsLong(dir string, want int) error {
	var out, errb bytes.Buffer
	cmd := exec.Command("ls", "-l", dir)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ls -l: %v: %s", err, strings.TrimSpace(errb.String()))
	}
	files := 0
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(l, "-") {
			files++
		}
	}
	if files != want {
		return fmt.Errorf("ls -l listed %d files, want %d", files, want)
	}
	return nil
}

// dropCaches writes back dirty pages and drops the page, dentry and inode caches.
func dropCaches() error {
	exec.Command("sync").Run()
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0); err != nil {
		return fmt.Errorf("drop_caches (needs root): %w", err)
	}
	return nil
}
