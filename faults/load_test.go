package faults

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/s3ftp/s3ftp/internal/metrics"
	"github.com/s3ftp/s3ftp/internal/miniotest"
	"github.com/s3ftp/s3ftp/s3client"
)

// TestConcurrentWritersAndReaders runs writers and readers through one mount at the same time. Writers stream
// new files; readers read objects put into S3 beforehand. It asserts that every transfer succeeds, every
// written file reads back byte-identical through the mount and in S3, every reader gets exactly the seeded
// bytes, the bucket holds no other object, and the daemon's peak RSS (VmHWM) stays within the bound the README
// documents: memory budget + cache size + a fixed overhead + one FUSE request buffer (max-write, 1 MiB) per
// request that can be in flight: one per writer thread (a WRITE waiting for the budget keeps its data), one per
// reader thread and the kernel's max_background (12) asynchronous READs. Writers wait for the budget instead of
// growing the daemon.
//
// Sizes: make test runs 8 writers × 32 MiB and 8 readers × 16 MiB. Soak (S3FTP_SOAK=1) runs the scale,
// 50 writers × 1 GiB and 50 readers × 1 GiB at once: 50 GiB written, 10 seeded objects of 1 GiB, 50 GiB read.
// S3FTP_LOAD="WxSIZE,RxSIZE" (e.g. "50x1GiB,50x1GiB") sets other counts and sizes. Before seeding, the test
// fails unless the file system of MinIO's data directory has room for the seeded and written objects plus a
// margin; t.Cleanup deletes every object so the space is freed.
//
// Readers share objects, five to an object, and start at offsets a fifth of the object apart, wrapping around
// to read the whole object. The read cache is shared and keyed by (key, ETag, block), so readers starting
// together would mostly hit blocks another reader fetched; staggered readers never share a cached block,
// every one drives its own GET stream and prefetch window, which is the worst case for the cache budget.
//
// Every byte is compared with the seeded generator (blockData) rather than hashed: a difference fails with
// its offset, and the test spends its CPU generating data, not hashing it twice. While the load runs, the
// daemon's RSS and its /metrics (write budget in use, cache bytes) are sampled once a second; the peak RSS,
// when it occurred, how often the write budget was full, and the CPU time of the test and the daemon are
// logged.
func TestConcurrentWritersAndReaders(t *testing.T) {
	const (
		budget      = 64 << 20
		cache       = 32 << 20
		partSize    = 8 << 20
		overhead    = 100 << 20 // Go runtime, HTTP connections, the binary's text
		maxWrite    = 1 << 20   // s3mount's default --max-write: the size of one FUSE request buffer
		background  = 12        // go-fuse's MaxBackground: asynchronous READs the kernel keeps in flight
		perObject   = 5         // readers per seeded object
		diskMargin  = 2 << 30   // MinIO metadata and other tests' objects
		verifyConns = 4         // concurrent read-backs after the load
	)
	shape := loadShapeFor(t)
	objects := (shape.readers + perObject - 1) / perObject
	srv := miniotest.Shared(t)
	need := int64(objects)*shape.readSize + int64(shape.writers)*shape.writeSize + diskMargin
	if free := freeBytes(t, srv.DataDir); free < need {
		t.Fatalf("MinIO's data directory %s has %d MiB free; this load needs %d MiB (%d seeded objects × %d MiB + "+
			"%d written files × %d MiB + %d MiB margin): free space or set S3FTP_LOAD to a smaller load",
			srv.DataDir, free>>20, need>>20, objects, shape.readSize>>20, shape.writers, shape.writeSize>>20, diskMargin>>20)
	}
	bucket := srv.NewBucket(t)
	client := srv.Client(t, bucket)
	t.Cleanup(func() { deleteObjects(t, client) })
	var lost int64
	defer func() {
		summary(t, 2*shape.writers+shape.readers, lost, 0,
			fmt.Sprintf("written_bytes=%d", int64(shape.writers)*shape.writeSize),
			fmt.Sprintf("read_bytes=%d", int64(shape.readers)*shape.readSize))
	}()

	seedStart := time.Now()
	var seeds []func() error
	for i := range objects {
		seeds = append(seeds, func() error {
			key := fmt.Sprintf("in/%02d.bin", i)
			if err := putStream(client, key, readSeed(i), shape.readSize); err != nil {
				return fmt.Errorf("put %s: %w", key, err)
			}
			return nil
		})
	}
	for _, err := range runAll(seeds, verifyConns) {
		t.Fatal(err)
	}
	t.Logf("seeded %d objects × %d MiB in %s", objects, shape.readSize>>20, time.Since(seedStart).Round(time.Second))

	m := startMount(t, srv, srv.Endpoint, bucket, "--memory-budget", "64MiB", "--part-size", "8MiB",
		"--cache-size", "32MiB", "--max-readahead", "16MiB", "--metrics-addr", "127.0.0.1:0")
	var written, read atomic.Int64
	start := time.Now()
	mon := startMonitor(t, m, budget-partSize, func(rss int64) {
		t.Logf("%s: written %d MiB, read %d MiB, daemon RSS %d MiB", time.Since(start).Round(time.Second),
			written.Load()>>20, read.Load()>>20, rss>>20)
	})
	cpuTest0, cpuDaemon0 := selfCPU(t), processCPU(t, m.pid)

	var load []func() error
	for i := range shape.writers {
		load = append(load, func() error {
			path := filepath.Join(m.dir, fmt.Sprintf("out-%02d.bin", i))
			if err := writeBlocks(path, writeSeed(i), shape.writeSize, &written); err != nil {
				return fmt.Errorf("writer %d: %w", i, err)
			}
			return nil
		})
	}
	for r := range shape.readers {
		obj, nth := r%objects, r/objects
		load = append(load, func() error {
			path := filepath.Join(m.dir, "in", fmt.Sprintf("%02d.bin", obj))
			from := int64(nth) * shape.readSize / perObject
			if err := readAround(path, readSeed(obj), shape.readSize, from, &read); err != nil {
				return fmt.Errorf("reader %d: %w", r, err)
			}
			return nil
		})
	}
	errs := runAll(load, len(load))
	wall := time.Since(start)
	peak := mon.stop()
	cpuTest, cpuDaemon := selfCPU(t)-cpuTest0, processCPU(t, m.pid)-cpuDaemon0
	for _, err := range errs {
		t.Error(err)
	}

	want := map[string]bool{}
	for i := range objects {
		want[fmt.Sprintf("in/%02d.bin", i)] = true
	}
	var backs []func() error
	var backLost atomic.Int64
	for i := range shape.writers {
		name := fmt.Sprintf("out-%02d.bin", i)
		want[name] = true
		backs = append(backs, func() error {
			if err := readAround(filepath.Join(m.dir, name), writeSeed(i), shape.writeSize, 0, nil); err != nil {
				backLost.Add(shape.writeSize)
				return fmt.Errorf("read back through the mount: %w", err)
			}
			return nil
		}, func() error {
			if err := sameObject(client, name, writeSeed(i), shape.writeSize); err != nil {
				backLost.Add(shape.writeSize)
				return fmt.Errorf("in S3: %w", err)
			}
			return nil
		})
	}
	checkStart := time.Now()
	for _, err := range runAll(backs, verifyConns) {
		t.Error(err)
	}
	lost += backLost.Load()
	lost += onlyObjects(t, client, want)
	checkTime := time.Since(checkStart)

	hwm := vmHWM(t, m.pid)
	requests := int64(shape.writers + shape.readers + background)
	limit := budget + cache + overhead + maxWrite*requests
	t.Logf("%d writers × %d MiB, %d readers × %d MiB (%d objects): load %s, %.0f MiB/s through the mount; "+
		"read-back through the mount and S3 %s", shape.writers, shape.writeSize>>20, shape.readers,
		shape.readSize>>20, objects, wall.Round(time.Second),
		float64(written.Load()+read.Load())/(1<<20)/wall.Seconds(), checkTime.Round(time.Second))
	t.Logf("daemon peak RSS %d MiB (limit %d MiB); sampled peak %d MiB at %s; write budget full in %d of %d "+
		"samples; peaks: cache %d MiB, Go heap %d MiB, goroutines %d", hwm>>20, limit>>20,
		peak.rss>>20, peak.rssAt.Round(time.Second), peak.budgetFull, peak.samples, peak.cache>>20,
		peak.heap>>20, peak.goroutines)
	t.Logf("CPU during the load: test process %s, daemon %s (wall %s); test process peak RSS %d MiB",
		cpuTest.Round(time.Second), cpuDaemon.Round(time.Second), wall.Round(time.Second),
		vmHWM(t, os.Getpid())>>20)
	if hwm > limit {
		t.Errorf("daemon peak RSS %d MiB exceeds memory budget %d MiB + cache %d MiB + %d MiB overhead + "+
			"%d FUSE requests × %d KiB", hwm>>20, budget>>20, cache>>20, overhead>>20, requests, maxWrite>>10)
	}
}

// loadShape is the size of TestConcurrentWritersAndReaders.
type loadShape struct {
	writers   int
	writeSize int64
	readers   int
	readSize  int64
}

// loadShapeFor returns the make test or soak shape, or the one S3FTP_LOAD="WxSIZE,RxSIZE" gives.
func loadShapeFor(t *testing.T) loadShape {
	t.Helper()
	s := pick(loadShape{8, 32 << 20, 8, 16 << 20}, loadShape{50, 1 << 30, 50, 1 << 30})
	v := os.Getenv("S3FTP_LOAD")
	if v == "" {
		return s
	}
	w, r, ok := strings.Cut(v, ",")
	var errW, errR error
	s.writers, s.writeSize, errW = parseCountSize(w)
	s.readers, s.readSize, errR = parseCountSize(r)
	if !ok || errW != nil || errR != nil || s.writers < 1 || s.readers < 1 {
		t.Fatalf("S3FTP_LOAD=%q: want WRITERSxSIZE,READERSxSIZE with counts ≥ 1, e.g. 50x1GiB,50x1GiB (%v, %v)",
			v, errW, errR)
	}
	return s
}

var countSize = regexp.MustCompile(`^(\d+)x(\d+)(|KiB|MiB|GiB)$`)

// parseCountSize parses "50x1GiB" into 50 and 1<<30.
func parseCountSize(s string) (int, int64, error) {
	m := countSize.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, 0, fmt.Errorf("%q is not COUNTxSIZE (SIZE in bytes, KiB, MiB or GiB)", s)
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		return 0, 0, fmt.Errorf("count in %q: %w", s, err)
	}
	size, err := strconv.ParseInt(m[2], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("size in %q: %w", s, err)
	}
	shift := map[string]int{"": 0, "KiB": 10, "MiB": 20, "GiB": 30}[m[3]]
	if size <= 0 || size > 1<<(62-shift) {
		return 0, 0, fmt.Errorf("size in %q out of range", s)
	}
	return n, size << shift, nil
}

func readSeed(i int) uint64  { return uint64(100 + i) }
func writeSeed(i int) uint64 { return uint64(10_000 + i) }

// freeBytes returns the bytes an unprivileged writer may still use on the file system holding dir.
func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatalf("free space of %s: %v", dir, err)
	}
	return int64(st.Bavail) * st.Bsize
}

// runAll runs fns with at most workers at a time and returns their errors.
func runAll(fns []func() error, workers int) []error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	sem := make(chan struct{}, workers)
	for _, fn := range fns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errs
}

// dataBlock is the unit of blockData: each block has its own ChaCha8 key.
const dataBlock = 1 << 20

// blockData is bytes [off, off+n) of the load test's content for seed: block b (dataBlock bytes) is the
// ChaCha8 stream keyed by (seed, b). Unlike prng it starts at any offset without generating what lies before,
// so a reader starting in the middle of an object is checked at the cost of what it reads. Every block of
// every seed has its own key, so a block served at the wrong offset or from another object differs.
func blockData(seed uint64, off, n int64) io.Reader {
	return &blockReader{seed: seed, off: off, end: off + n, block: -1}
}

type blockReader struct {
	seed     uint64
	off, end int64
	block    int64 // index of the block cur generates; -1 before the first Read
	cur      *rand.ChaCha8
}

func (r *blockReader) Read(p []byte) (int, error) {
	if r.off >= r.end {
		return 0, io.EOF
	}
	if b := r.off / dataBlock; b != r.block {
		var key [32]byte
		for i := range 8 {
			key[i] = byte(r.seed >> (8 * i))
			key[8+i] = byte(b >> (8 * i))
		}
		r.cur, r.block = rand.NewChaCha8(key), b
		if skip := r.off % dataBlock; skip > 0 {
			io.CopyN(io.Discard, r.cur, skip)
		}
	}
	n := min(int64(len(p)), (r.block+1)*dataBlock-r.off, r.end-r.off)
	r.cur.Read(p[:n])
	r.off += n
	return int(n), nil
}

// sameStream reads got to its end and reports the first difference from want, which holds n bytes starting
// at offset base of the content (for messages). Every byte read is added to count when count is not nil.
func sameStream(got io.Reader, want io.Reader, base, n int64, count *atomic.Int64) error {
	g, w := make([]byte, 1<<20), make([]byte, 1<<20)
	var off int64
	for off < n {
		k := min(int64(len(g)), n-off)
		rk, err := io.ReadFull(got, g[:k])
		if count != nil {
			count.Add(int64(rk))
		}
		if err != nil {
			return fmt.Errorf("read at offset %d: %w", base+off+int64(rk), err)
		}
		io.ReadFull(want, w[:k])
		if i := firstDiff(g[:k], w[:k]); i >= 0 {
			return fmt.Errorf("byte %d differs from what was written", base+off+int64(i))
		}
		off += k
	}
	return nil
}

// firstDiff returns the index of the first byte where a and b (of equal length) differ, or -1.
func firstDiff(a, b []byte) int {
	if bytes.Equal(a, b) {
		return -1
	}
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

// readAround reads path, which must hold blockData(seed, 0, size), from offset from to its end and then from 0
// to from, comparing every byte; bytes read are added to count when it is not nil.
func readAround(path string, seed uint64, size, from int64, count *atomic.Int64) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return err
	} else if fi.Size() != size {
		return fmt.Errorf("%s has %d bytes, want %d", path, fi.Size(), size)
	}
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return err
	}
	if err := sameStream(f, blockData(seed, from, size-from), from, size-from, count); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if k, err := f.Read(make([]byte, 1)); k != 0 || err != io.EOF {
		return fmt.Errorf("%s: %d more bytes past its size (%v)", path, k, err)
	}
	if from == 0 {
		return nil
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := sameStream(f, blockData(seed, 0, from), 0, from, count); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// writeBlocks writes blockData(seed, 0, size) to path in 1 MiB writes, adding accepted bytes to count, and
// returns the first write error or the close error.
func writeBlocks(path string, seed uint64, size int64, count *atomic.Int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	src := blockData(seed, 0, size)
	buf := make([]byte, 1<<20)
	var done int64
	for done < size {
		n, _ := io.ReadFull(src, buf)
		w, err := f.Write(buf[:n])
		done += int64(w)
		count.Add(int64(w))
		if err != nil {
			f.Close()
			return fmt.Errorf("write %s after %d bytes: %w", path, done, err)
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s after %d bytes: %w", path, done, err)
	}
	return nil
}

// sameObject reports whether the object key holds exactly blockData(seed, 0, size).
func sameObject(c s3client.Client, key string, seed uint64, size int64) error {
	body, info, err := c.GetObject(context.Background(), key, 0, -1, "")
	if err != nil {
		return fmt.Errorf("get %s: %w", key, err)
	}
	defer body.Close()
	if info.Size != size {
		return fmt.Errorf("%s has %d bytes, want %d", key, info.Size, size)
	}
	if err := sameStream(body, blockData(seed, 0, size), 0, size, nil); err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	return nil
}

// onlyObjects lists the bucket and fails for every object not in want; it returns their total size.
func onlyObjects(t *testing.T, c s3client.Client, want map[string]bool) int64 {
	t.Helper()
	var extra int64
	seen := map[string]bool{}
	for token := ""; ; {
		page, err := c.List(context.Background(), "", "", token, 1000)
		if err != nil {
			t.Fatalf("list the bucket: %v", err)
		}
		for _, o := range page.Objects {
			seen[o.Key] = true
			if !want[o.Key] {
				t.Errorf("object %q (%d bytes) exists though no write of it completed", o.Key, o.Size)
				extra += o.Size
			}
		}
		if token = page.NextToken; token == "" {
			break
		}
	}
	for k := range want {
		if !seen[k] {
			t.Errorf("object %q is missing from the listing", k)
		}
	}
	return extra
}

// deleteObjects removes every object and multipart upload of the bucket, so that a large load frees its disk
// space when the test ends.
func deleteObjects(t *testing.T, c s3client.Client) {
	ctx := context.Background()
	var n, bytes int64
	for token := ""; ; {
		page, err := c.List(ctx, "", "", token, 1000)
		if err != nil {
			t.Errorf("list the bucket to delete its objects: %v", err)
			return
		}
		for _, o := range page.Objects {
			if err := c.DeleteObject(ctx, o.Key); err != nil {
				t.Errorf("delete %q: %v", o.Key, err)
				continue
			}
			n, bytes = n+1, bytes+o.Size
		}
		if token = page.NextToken; token == "" {
			break
		}
	}
	ups, err := c.ListMultipartUploads(ctx, "")
	if err != nil {
		t.Errorf("list multipart uploads to abort them: %v", err)
	}
	for _, u := range ups {
		if err := c.AbortMultipartUpload(ctx, u.Key, u.UploadID); err != nil {
			t.Errorf("abort the upload of %q: %v", u.Key, err)
		}
	}
	t.Logf("deleted %d objects (%d MiB) and %d multipart uploads", n, bytes>>20, len(ups))
}

// selfCPU is the user + system CPU time the test process has used.
func selfCPU(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// processCPU is the user + system CPU time pid has used (from /proc/PID/stat, in clock ticks of 10 ms).
func processCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatalf("CPU time of %d: %v", pid, err)
	}
	i := strings.LastIndexByte(string(st), ')')
	f := strings.Fields(string(st[i+1:])) // f[0] is field 3 (state); utime and stime are fields 14 and 15
	if i < 0 || len(f) < 13 {
		t.Fatalf("/proc/%d/stat: %q", pid, st)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		t.Fatalf("/proc/%d/stat: %v", pid, err)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// monitor samples the daemon's RSS and /metrics once a second while a load runs, and reports progress once a
// minute. It stops when stop is called or the test ends.
type monitor struct {
	t        *testing.T
	pid      int
	url      string
	fullAt   float64 // budget bytes in use at or above which the budget counts as full
	progress func(rss int64)
	once     sync.Once
	done     chan struct{}
	finished chan peaks
}

// peaks is what a monitor saw.
type peaks struct {
	rss        int64         // largest VmRSS sampled
	rssAt      time.Duration // when, after the monitor started
	cache      int64         // largest s3mount_cache_bytes
	heap       int64         // largest go_heap_bytes
	goroutines int           // largest go_goroutines
	samples    int
	budgetFull int // samples with s3mount_write_budget_bytes_in_use ≥ fullAt
}

var metricsAddr = regexp.MustCompile(`msg="metrics listening" .*addr=(\S+)`)

// startMonitor starts sampling m, whose daemon runs with --metrics-addr; budgetFull is the bytes in use from
// which the write budget counts as full (no room for another part). progress is called once a minute with the
// last RSS sampled.
func startMonitor(t *testing.T, m *mount, budgetFull int64, progress func(rss int64)) *monitor {
	t.Helper()
	a := metricsAddr.FindStringSubmatch(readFile(m.logFile))
	if a == nil {
		t.Fatalf("no metrics address in the s3mount log:\n%s", readFile(m.logFile))
	}
	mon := &monitor{t: t, pid: m.pid, url: "http://" + a[1] + "/metrics", fullAt: float64(budgetFull),
		progress: progress, done: make(chan struct{}), finished: make(chan peaks, 1)}
	go mon.run()
	t.Cleanup(func() { mon.stop() })
	return mon
}

func (mon *monitor) run() {
	var p peaks
	start := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	failed := false
	for {
		select {
		case <-mon.done:
			mon.finished <- p
			return
		case <-tick.C:
		}
		rss, err := statusBytes(mon.pid, "VmRSS:")
		var s map[string]float64
		if err == nil {
			s, err = scrapeMetrics(mon.url)
		}
		if err != nil {
			if !failed {
				mon.t.Errorf("sampling the daemon: %v", err)
				failed = true
			}
			continue
		}
		p.samples++
		if rss > p.rss {
			p.rss, p.rssAt = rss, time.Since(start)
		}
		p.cache = max(p.cache, int64(s["s3mount_cache_bytes"]))
		p.heap = max(p.heap, int64(s["go_heap_bytes"]))
		p.goroutines = max(p.goroutines, int(s["go_goroutines"]))
		if s["s3mount_write_budget_bytes_in_use"] >= mon.fullAt {
			p.budgetFull++
		}
		if p.samples%60 == 0 {
			mon.progress(rss)
		}
	}
}

// stop ends the sampling and returns what it saw; later calls return the zero peaks.
func (mon *monitor) stop() peaks {
	var p peaks
	mon.once.Do(func() {
		close(mon.done)
		p = <-mon.finished
	})
	return p
}

// statusBytes returns a "NAME: N kB" field of /proc/PID/status in bytes.
func statusBytes(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, err := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// scrapeMetrics fetches and parses a /metrics page.
func scrapeMetrics(url string) (map[string]float64, error) {
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return metrics.ParseText(resp.Body)
}

// putStream stores blockData(seed, 0, size) under key with a multipart upload of 16 MiB parts, so that the
// test process never holds a whole object.
func putStream(c s3client.Client, key string, seed uint64, size int64) error {
	ctx := context.Background()
	const part = 16 << 20
	if size <= part {
		body, _ := io.ReadAll(blockData(seed, 0, size))
		_, err := c.PutObject(ctx, key, body, s3client.PutOptions{})
		return err
	}
	id, err := c.CreateMultipartUpload(ctx, key, s3client.PutOptions{})
	if err != nil {
		return err
	}
	src := blockData(seed, 0, size)
	buf := make([]byte, part)
	var parts []s3client.Part
	for num := int32(1); ; num++ {
		k, _ := io.ReadFull(src, buf)
		if k == 0 {
			break
		}
		etag, err := c.UploadPart(ctx, key, id, num, buf[:k])
		if err != nil {
			if aerr := c.AbortMultipartUpload(ctx, key, id); aerr != nil {
				err = errors.Join(err, fmt.Errorf("abort: %w", aerr))
			}
			return fmt.Errorf("part %d: %w", num, err)
		}
		parts = append(parts, s3client.Part{Number: num, ETag: etag})
	}
	_, err = c.CompleteMultipartUpload(ctx, key, id, parts, false)
	return err
}

// TestBlockDataFromAnyOffset: blockData started at any offset, aligned to a block or not, gives the same bytes
// as the stream from 0; blocks of one seed and the same block of two seeds differ.
func TestBlockDataFromAnyOffset(t *testing.T) {
	const size = 3*dataBlock + 12345
	all, _ := io.ReadAll(blockData(7, 0, size))
	if len(all) != size {
		t.Fatalf("blockData(7, 0, %d) gave %d bytes", size, len(all))
	}
	for _, off := range []int64{0, 1, dataBlock - 1, dataBlock, dataBlock + 4097, 3 * dataBlock, size - 1} {
		for _, n := range []int64{1, 4096, size - off} {
			n = min(n, size-off)
			got, _ := io.ReadAll(blockData(7, off, n))
			if i := firstDiff(got, all[off:off+n]); len(got) != int(n) || i >= 0 {
				t.Errorf("blockData(7, %d, %d): %d bytes, first difference at %d", off, n, len(got), i)
			}
		}
	}
	if bytes.Equal(all[:dataBlock], all[dataBlock:2*dataBlock]) {
		t.Error("blocks 0 and 1 of seed 7 are equal")
	}
	other, _ := io.ReadAll(blockData(8, dataBlock, dataBlock))
	if bytes.Equal(other, all[dataBlock:2*dataBlock]) {
		t.Error("block 1 of seeds 7 and 8 are equal")
	}
	if err := sameStream(bytes.NewReader(all), blockData(7, 0, size), 0, size, nil); err != nil {
		t.Errorf("sameStream of identical streams: %v", err)
	}
	bad := bytes.Clone(all)
	bad[dataBlock+5] ^= 1
	if err := sameStream(bytes.NewReader(bad), blockData(7, 0, size), 0, size, nil); err == nil ||
		!strings.Contains(err.Error(), fmt.Sprintf("byte %d differs", dataBlock+5)) {
		t.Errorf("sameStream with byte %d flipped: %v", dataBlock+5, err)
	}
	if err := sameStream(bytes.NewReader(all[:size-1]), blockData(7, 0, size), 0, size, nil); err == nil {
		t.Error("sameStream of a stream one byte short: no error")
	}
}

// TestParseCountSize: the S3FTP_LOAD parts.
func TestParseCountSize(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		size int64
		ok   bool
	}{
		{"50x1GiB", 50, 1 << 30, true},
		{" 8x32MiB", 8, 32 << 20, true},
		{"3x4096", 3, 4096, true},
		{"2x7KiB", 2, 7 << 10, true},
		{"50x1G", 0, 0, false},
		{"x1GiB", 0, 0, false},
		{"5x0MiB", 0, 0, false},
		{"5x99999999999GiB", 0, 0, false},
	} {
		n, size, err := parseCountSize(c.in)
		if (err == nil) != c.ok || n != c.n || size != c.size {
			t.Errorf("parseCountSize(%q) = %d, %d, %v; want %d, %d, ok %v", c.in, n, size, err, c.n, c.size, c.ok)
		}
	}
}
