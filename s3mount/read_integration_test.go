package s3mount_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/s3ftp/s3ftp/s3mount/mounttest"
)

// readersMiB is the size of each file of TestMinioConcurrentReadersByteIdentical. The default keeps `make test`
// short; the throughput target (8 readers of 256 MiB) is run with -args -s3mount.readers-mib=256.
var readersMiB = flag.Int("s3mount.readers-mib", 32, "MiB per file in the concurrent readers test")

// readInChunks reads the whole file with 1 MiB read(2)s, as the FTP server and the bench do.
func readInChunks(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out bytes.Buffer
	buf := make([]byte, 1<<20)
	for {
		n, err := f.Read(buf)
		out.Write(buf[:n])
		if err == io.EOF {
			return out.Bytes(), nil
		}
		if err != nil {
			return out.Bytes(), err
		}
	}
}

// Eight readers of eight different objects at once, on a cache smaller than one of the files: every reader gets
// exactly its object's bytes. Streams of different files evict each other's blocks and share the budget; a
// block lent to a reply must never be reused for another object while the kernel copies it.
func TestMinioConcurrentReadersByteIdentical(t *testing.T) {
	const readers = 8
	size := *readersMiB << 20
	env := mounttest.Mount(t, mounttest.Options())
	ctx := context.Background()
	want := make([][]byte, readers)
	for i := range want {
		want[i] = pattern(size+i*4099, byte(40+i)) // sizes off block boundaries, distinct contents
		if _, err := env.Client.PutObject(ctx, fmt.Sprintf("par/f%d.bin", i), want[i], s3PutOpts()); err != nil {
			t.Fatalf("PutObject f%d: %v", i, err)
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, readers)
	for i := range readers {
		wg.Go(func() {
			got, err := readInChunks(filepath.Join(env.Dir, "par", fmt.Sprintf("f%d.bin", i)))
			switch {
			case err != nil:
				errs[i] = err
			case !bytes.Equal(got, want[i]):
				errs[i] = fmt.Errorf("read %d bytes, want %d; first difference at %d", len(got), len(want[i]),
					firstDiff(got, want[i]))
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("reader %d: %v", i, err)
		}
	}
}

// firstDiff is the first offset at which a and b differ (the shorter length when one is a prefix).
func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// An object replaced by another client (same size, new ETag) reads as the new version once the stat TTL has
// passed: all new bytes, none of the old version's pages in the kernel or blocks in the cache.
func TestMinioETagChangeAfterTTLReadsNewBytes(t *testing.T) {
	o := mounttest.Options()
	o.StatTTL, o.NegativeTTL = 200*time.Millisecond, 200*time.Millisecond
	env := mounttest.Mount(t, o)
	ctx := context.Background()
	// Smaller than the cache (16 MiB): every block of the old version is still cached when the new one is read.
	const size = 6<<20 + 123
	v1, v2 := pattern(size, 1), pattern(size, 2)
	if _, err := env.Client.PutObject(ctx, "v.bin", v1, s3PutOpts()); err != nil {
		t.Fatalf("PutObject v1: %v", err)
	}
	fn := filepath.Join(env.Dir, "v.bin")
	if got, err := readInChunks(fn); err != nil || !bytes.Equal(got, v1) {
		t.Fatalf("first read: %v; equal to v1: %v", err, bytes.Equal(got, v1))
	}
	if _, err := env.Client.PutObject(ctx, "v.bin", v2, s3PutOpts()); err != nil {
		t.Fatalf("PutObject v2: %v", err)
	}
	time.Sleep(3 * o.StatTTL)
	got, err := readInChunks(fn)
	if err != nil {
		t.Fatalf("read after the change: %v", err)
	}
	if !bytes.Equal(got, v2) {
		t.Fatalf("read after the change: %d bytes, not v2: first byte differing from v2 at %d (from v1 at %d)",
			len(got), firstDiff(got, v2), firstDiff(got, v1))
	}
}

// SEMANTICS.md tenet 3: a handle opened before another client replaced the object never returns the new
// version's bytes, even after a later open read the new version in full. The kernel's page cache belongs to the
// inode: a changed ETag gives the path a new inode, so the old handle keeps the old pages (or fails with ESTALE)
// and the new open starts from an empty page cache.
func TestMinioOpenHandleNeverSeesReplacement(t *testing.T) {
	o := mounttest.Options()
	o.StatTTL, o.NegativeTTL = 200*time.Millisecond, 200*time.Millisecond
	env := mounttest.Mount(t, o)
	ctx := context.Background()
	const size = 6<<20 + 4321
	v1, v2 := pattern(size, 11), pattern(size, 12)
	if _, err := env.Client.PutObject(ctx, "swap.bin", v1, s3PutOpts()); err != nil {
		t.Fatalf("PutObject v1: %v", err)
	}
	fn := filepath.Join(env.Dir, "swap.bin")
	old, err := os.Open(fn)
	if err != nil {
		t.Fatalf("open v1: %v", err)
	}
	defer old.Close()
	head := make([]byte, 1<<20)
	if _, err := io.ReadFull(old, head); err != nil || !bytes.Equal(head, v1[:1<<20]) {
		t.Fatalf("first MiB through the old handle: %v; equal to v1: %v", err, bytes.Equal(head, v1[:1<<20]))
	}
	if _, err := env.Client.PutObject(ctx, "swap.bin", v2, s3PutOpts()); err != nil {
		t.Fatalf("PutObject v2: %v", err)
	}
	time.Sleep(3 * o.StatTTL)
	got, err := readInChunks(fn)
	if err != nil || !bytes.Equal(got, v2) {
		t.Fatalf("new open: %v; %d bytes, first difference from v2 at %d", err, len(got), firstDiff(got, v2))
	}
	// A re-open of the old inode (through /proc/self/fd, no lookup) asks for a version S3 no longer has.
	if f, err := os.Open(fmt.Sprintf("/proc/self/fd/%d", old.Fd())); !errors.Is(err, syscall.ESTALE) {
		if err == nil {
			f.Close()
		}
		t.Fatalf("re-open of the replaced file through /proc/self/fd: %v, want ESTALE", err)
	}
	rest, err := io.ReadAll(old)
	if len(rest) > 0 && firstDiff(rest, v1[1<<20:]) < len(rest) {
		t.Fatalf("old handle after the replacement returned bytes that are not v1's: %d bytes, first difference "+
			"from v1 at offset %d (from v2 at %d)", len(rest), 1<<20+firstDiff(rest, v1[1<<20:]),
			1<<20+firstDiff(rest, v2[1<<20:]))
	}
	if err == nil && len(rest) != size-1<<20 {
		t.Fatalf("old handle: %d bytes and no error, want %d bytes of v1 or an error", len(rest), size-1<<20)
	}
	t.Logf("old handle after the replacement: %d bytes of v1, err %v", len(rest), err)
}

// A file rewritten through the mount reads back as the new bytes from a later open, and a warm re-read of an
// unchanged file is served by the kernel's page cache (no read reaches the mount's block cache).
func TestMinioRereadAfterWriteThroughMount(t *testing.T) {
	opts := mounttest.Options()
	env := mounttest.Mount(t, opts)
	const size = 3<<20 + 77
	v1, v2 := pattern(size, 21), pattern(size, 22)
	fn := filepath.Join(env.Dir, "rw.bin")
	if err := os.WriteFile(fn, v1, 0o644); err != nil {
		t.Fatalf("write v1: %v", err)
	}
	lookups := func() int64 {
		s := env.Mounted.CacheStats()
		return s.Hits + s.Misses + s.Prefetched + s.DiskHits
	}
	// The first read follows the write, while the file's attributes are still those the write set; once the
	// stat TTL expired they come from S3, and the kernel may drop pages cached under the old ones once. Past
	// that, the measured read must be served by the page cache whatever the timing.
	var before int64
	for i := range 3 {
		if i == 1 {
			time.Sleep(opts.StatTTL + 200*time.Millisecond)
		}
		before = lookups()
		if got, err := readInChunks(fn); err != nil || !bytes.Equal(got, v1) {
			t.Fatalf("read %d of v1: %v; first difference at %d", i, err, firstDiff(got, v1))
		}
	}
	if n := lookups() - before; n != 0 {
		t.Errorf("warm re-read of an unchanged file reached the block cache %d times, want 0 (page cache kept)", n)
	}
	held, err := os.Open(fn)
	if err != nil {
		t.Fatalf("open v1: %v", err)
	}
	defer held.Close()
	if err := os.WriteFile(fn, v2, 0o644); err != nil {
		t.Fatalf("write v2: %v", err)
	}
	for i := range 2 {
		if got, err := readInChunks(fn); err != nil || !bytes.Equal(got, v2) {
			t.Fatalf("read %d after the rewrite: %v; %d bytes, first difference from v2 at %d (from v1 at %d)",
				i, err, len(got), firstDiff(got, v2), firstDiff(got, v1))
		}
	}
	// The rewrite went through the inode the handle reads, as an in-place rewrite does on a local disk: the
	// handle reads one version whole (v1 from S3, or v2 from the page cache the writes filled), or fails;
	// never a mix.
	got, err := io.ReadAll(held)
	if len(got) > 0 && firstDiff(got, v1) < len(got) && firstDiff(got, v2) < len(got) {
		t.Fatalf("handle opened before the rewrite read a mix: not v1's at %d, not v2's at %d (err %v)",
			firstDiff(got, v1), firstDiff(got, v2), err)
	}
}
