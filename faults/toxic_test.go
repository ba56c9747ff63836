package faults

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/Shopify/toxiproxy/v2/toxics"

	"github.com/s3ftp/s3ftp/internal/miniotest"
)

// smallLimits are the daemon settings of the fault tests: small parts and budget, so that a write of a few
// tens of MiB has parts uploaded, in flight and buffered when the fault hits.
var smallLimits = []string{"--memory-budget", "16MiB", "--part-size", "5MiB", "--cache-size", "16MiB",
	"--max-readahead", "8MiB"}

// fault is one way of making S3 unreachable for the daemon, and of making it reachable again.
type fault struct {
	name   string
	inject func(t *testing.T)
	clear  func(t *testing.T)
	// args are added to the daemon's command line.
	args []string
	// mustFailRead: a read of a handle whose GET was open when the fault hit must fail (the fault stops the
	// stream), rather than possibly complete from data already on the way.
	mustFailRead bool
	// hangBound bounds the wait for the writer's and the mid-body reader's outcome after the fault was
	// injected, only so that a hang fails the test.
	hangBound time.Duration
}

// TestFaultDuringUpload injects each fault (connection reset, S3 silent then closing, a silent partition that
// closes nothing, MinIO stopped and restarted) while a large file is written through the mount, while a file
// written before is read and the directory is listed, and while a handle that had read the start of a large
// file (its GET open mid-body) reads on. It asserts the outcome the mount promises for an outage longer than
// the SDK's bounded retries:
//
//   - the writer gets EIO from write or close, never a silent success, within a bound;
//   - the read during the fault returns either the exact bytes or an error, the listing either the file
//     written before or an error;
//   - the handle reading mid-body gets either the exact bytes to the end or EIO, within a bound (an error is
//     required for the partition, which stops the open stream): the S3 idle timeout ends the silent stream;
//   - once the fault is removed: the failed object does not exist, every object that exists has the SHA-256
//     of its complete content, no multipart upload is left, and a new write and its read-back are identical,
//     as is a fresh read of the file the handle read mid-body.
//
// The partition ("blackhole") runs with the daemon's default S3 timeouts under S3FTP_SOAK=1 and with
// 2 s timeouts and 2 attempts in make test.
func TestFaultDuringUpload(t *testing.T) {
	kinds := []string{"reset_peer", "timeout", "blackhole", "minio_restart"}
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			srv := miniotest.Start(t)
			px := startProxy(t, srv)
			f := fault{name: kind, hangBound: pick(2*time.Minute, 5*time.Minute)}
			switch kind {
			case "reset_peer":
				// Every connection, new or open, is reset (RST) when the daemon sends data.
				f.inject = func(t *testing.T) {
					px.add(t, `{"name":"fault","type":"reset_peer","stream":"upstream","attributes":{"timeout":0}}`)
				}
				f.clear = func(t *testing.T) { px.remove(t, "fault") }
			case "timeout":
				// S3 stops answering: data are dropped and each connection is closed after 2 s of silence.
				f.inject = func(t *testing.T) {
					px.add(t, `{"name":"fault","type":"timeout","stream":"upstream","attributes":{"timeout":2000}}`)
				}
				f.clear = func(t *testing.T) { px.remove(t, "fault") }
			case "blackhole":
				// A silent partition: data are dropped both ways and no connection is ever closed, so only the
				// daemon's own timeouts (S3 idle timeout, response header timeout) end its requests and streams.
				p := newPartition(t, px)
				f.inject = func(*testing.T) { p.set(true) }
				f.clear = func(*testing.T) { p.set(false) }
				f.mustFailRead = true
				if !soak() {
					f.args = []string{"--s3-idle-timeout", "2s", "--s3-timeout", "2s", "--s3-max-attempts", "2"}
				}
			case "minio_restart":
				f.inject = func(t *testing.T) {
					if err := srv.Stop(); err != nil {
						t.Fatalf("stop minio: %v", err)
					}
				}
				f.clear = func(t *testing.T) {
					if err := srv.Restart(); err != nil {
						t.Fatalf("restart minio: %v", err)
					}
				}
			}
			faultDuringUpload(t, srv, px, f)
		})
	}
}

func faultDuringUpload(t *testing.T, srv *miniotest.Server, px *proxy, f fault) {
	bucket := srv.NewBucket(t)
	client := srv.Client(t, bucket)
	want := expected{}
	var lost, leaks int64
	transfers := 0
	// When each operation during the fault ended, counted from the injection. The read of before.bin and the
	// listing run in a goroutine that a failed test may leave behind: atomics, for the deferred summary.
	var readErrAfter, writeErrAfter time.Duration
	var beforeReadAfter, listAfter atomic.Int64 // nanoseconds
	defer func() {
		summary(t, transfers, lost, leaks, fmt.Sprintf("read_error_after_s=%.1f", readErrAfter.Seconds()),
			fmt.Sprintf("write_error_after_s=%.1f", writeErrAfter.Seconds()),
			fmt.Sprintf("before_read_after_s=%.1f", time.Duration(beforeReadAfter.Load()).Seconds()),
			fmt.Sprintf("list_after_s=%.1f", time.Duration(listAfter.Load()).Seconds()))
	}()

	// A large file put directly into the bucket, so that no page cache holds it, for the handle that reads
	// it from before the fault to after it. Larger than the daemon's read cache plus what the socket buffers
	// can hold, so the fault finds its GET open mid-body.
	const midName, midSeed, midSize, midBefore = "midread.bin", 4, 48 << 20, 1 << 20
	putObject(t, client, midName, midSeed, midSize)
	want[midName] = sum(midSeed, midSize)

	m := startMount(t, srv, px.endpoint, bucket, append(slices.Clone(smallLimits), f.args...)...)

	// A file written before the fault, read and listed while the fault is active.
	const beforeSize = 12 << 20
	before := filepath.Join(m.dir, "before.bin")
	transfers++
	if r := writeFile(before, 1, beforeSize, nil); r.failed() {
		t.Fatalf("write before the fault: write %v, close %v", r.writeErr, r.closeErr)
	}
	want["before.bin"] = sum(1, beforeSize)
	// Opened before the fault: the handle is bound to the object's ETag, so the read during the fault reaches
	// GetObject instead of failing at open.
	beforeFile, err := os.Open(before)
	if err != nil {
		t.Fatalf("open before the fault: %v", err)
	}
	defer beforeFile.Close()

	midPath := filepath.Join(m.dir, midName)
	mid, err := os.Open(midPath)
	if err != nil {
		t.Fatalf("open %s: %v", midName, err)
	}
	defer mid.Close()
	midCheck := newVerifier(mid, midSeed, midSize)
	if err := midCheck.read(midBefore); err != nil {
		t.Fatalf("read the first %d bytes of %s before the fault: %v", midBefore, midName, err)
	}
	var (
		injectedAt time.Time
		midDone    = make(chan midResult, 1)
	)

	size := pick[int64](64<<20, 200<<20)
	const faultAt = 16 << 20
	var (
		injected bool
		during   sync.WaitGroup
		readErr  error
		listErr  error
		listed   []string
	)
	transfers++
	r := writeFile(filepath.Join(m.dir, "big.bin"), 2, size, func(written int64) {
		if written != faultAt {
			return
		}
		f.inject(t)
		injectedAt = time.Now()
		injected = true
		go func() { // the handle whose GET is open mid-body reads on
			err := midCheck.read(midSize - midBefore)
			midDone <- midResult{err: err, after: time.Since(injectedAt)}
		}()
		during.Add(1)
		go func() {
			defer during.Done()
			transfers++
			readErr = sameContent(beforeFile, 1, beforeSize)
			beforeReadAfter.Store(int64(time.Since(injectedAt)))
			entries, err := os.ReadDir(m.dir)
			listErr = err
			listAfter.Store(int64(time.Since(injectedAt)))
			for _, e := range entries {
				listed = append(listed, e.Name())
			}
		}()
	})
	if injected {
		writeErrAfter = time.Since(injectedAt)
	}
	t.Logf("%s: wrote %d MiB of %d; write error %v; close error %v; %.1f s after the fault", f.name, r.written>>20,
		size>>20, r.writeErr, r.closeErr, writeErrAfter.Seconds())
	if !injected {
		t.Fatalf("the write ended after %d bytes, before the fault at %d: %v %v", r.written, faultAt, r.writeErr, r.closeErr)
	}
	if !r.failed() {
		t.Errorf("writing %d MiB while S3 was unreachable (%s) reported no error from write or close", size>>20, f.name)
	} else if err := cmp.Or(r.writeErr, r.closeErr); !errors.Is(err, syscall.EIO) {
		t.Errorf("the writer's error is %v, want EIO", err)
	}
	if writeErrAfter > f.hangBound {
		t.Errorf("the writer's error came %v after the fault, more than the %v bound", writeErrAfter, f.hangBound)
	}
	// The mid-body reader: exact bytes to the end, or EIO, within the bound; so are the read of the file
	// written before and the listing.
	duringDone := make(chan struct{})
	go func() {
		during.Wait()
		close(duringDone)
	}()
	select {
	case res := <-midDone:
		midDone <- res
	case <-time.After(time.Until(injectedAt.Add(f.hangBound))):
		t.Errorf("the read of %s from a handle open mid-body still hangs %v after the fault (%s)", midName, f.hangBound, f.name)
	}
	select {
	case <-duringDone:
	case <-time.After(time.Until(injectedAt.Add(f.hangBound))):
		t.Errorf("the read of before.bin or the listing during the fault still hangs %v after the fault (%s)", f.hangBound, f.name)
	}

	f.clear(t)
	clearedAt := time.Now()
	t.Logf("%s: fault removed %.1f s after it was injected", f.name, time.Since(injectedAt).Seconds())

	select {
	case <-duringDone:
	case <-time.After(time.Minute):
		t.Fatalf("the read of before.bin or the listing hangs a minute after the fault was removed")
	}
	t.Logf("%s: the read of before.bin ended %.1f s after the fault, the listing %.1f s after it", f.name,
		time.Duration(beforeReadAfter.Load()).Seconds(), time.Duration(listAfter.Load()).Seconds())
	// A read during the fault is either exact or an error; sameAs reports a content mismatch distinctly.
	if readErr != nil {
		t.Logf("read during the fault: %v", readErr)
		if isMismatch(readErr) {
			t.Errorf("read during the fault returned wrong data: %v", readErr)
			lost += beforeSize
		}
	}
	if listErr == nil && !slices.Contains(listed, "before.bin") {
		t.Errorf("listing during the fault succeeded without before.bin: %v", listed)
	} else if listErr != nil {
		t.Logf("listing during the fault: %v", listErr)
	}

	// With the fault removed, a read still hanging must end; then its outcome is checked.
	var midErr error
	transfers++
	select {
	case res := <-midDone:
		midErr, readErrAfter = res.err, res.after
	case <-time.After(time.Minute):
		t.Fatalf("the read of %s from a handle open mid-body hangs a minute after the fault was removed", midName)
	}
	switch {
	case midErr == nil:
		t.Logf("%s: the handle open mid-body read the exact bytes to the end (%.1f s after the fault)", f.name, readErrAfter.Seconds())
		if f.mustFailRead {
			t.Errorf("a handle open mid-body read %d bytes to the end through a partition: the bytes cannot have come from S3", midSize-midBefore)
		}
	case isMismatch(midErr):
		t.Errorf("the handle open mid-body read wrong data: %v", midErr)
		lost += midSize
	case !errors.Is(midErr, syscall.EIO):
		t.Errorf("the handle open mid-body got %v after %d bytes, want EIO", midErr, midCheck.off)
	default:
		t.Logf("%s: the handle open mid-body got EIO %.1f s after the fault, after %d exact bytes", f.name, readErrAfter.Seconds(), midCheck.off)
	}

	ups := waitNoUploads(t, client, time.Minute)
	t.Logf("%s: %d multipart uploads left %.1f s after the fault was removed", f.name, len(ups), time.Since(clearedAt).Seconds())
	idleLines := 0
	for _, line := range strings.Split(readFile(m.logFile), "\n") {
		if strings.Contains(line, "abort") {
			t.Logf("daemon: %s", line)
		}
		if strings.Contains(line, "(idle timeout)") {
			if idleLines == 0 {
				t.Logf("daemon: %s", line)
			}
			idleLines++
		}
	}
	if f.mustFailRead && idleLines == 0 {
		t.Errorf("no daemon log line names the S3 idle timeout: something else ended the stream stalled by the %s", f.name)
	}
	if len(ups) != 0 {
		t.Errorf("multipart uploads left a minute after the failure was reported and S3 came back: %+v", ups)
		leaks += int64(len(ups))
	}
	transfers++
	checkMountWorks(t, m, "after.bin", 3)
	want["after.bin"] = sum(3, 6<<20)
	transfers++
	if err := sameAs(before, 1, beforeSize); err != nil {
		t.Errorf("file written before the fault, read after it: %v", err)
		lost += beforeSize
	}
	transfers++
	if err := sameAs(midPath, midSeed, midSize); err != nil {
		t.Errorf("%s, read through the same mount after the fault: %v", midName, err)
		lost += midSize
	}
	lost += checkObjects(t, client, want)
}

// partition is a silent network partition between the daemon and MinIO: while it is on, every byte either
// way is dropped and no connection is closed, as on a network that loses packets. It is built from
// partitionToxic, installed on both streams before the daemon connects and only toggled afterwards: adding
// or removing a toxic while connections open and close can deadlock toxiproxy 2.5 (AddToxic waits for a
// link's toxic that already returned, while that link's writer waits for the collection's lock).
type partition struct {
	id      string
	mu      sync.Mutex
	on      bool
	changed chan struct{} // closed and replaced at every toggle
}

// partitions maps a partitionToxic's id to its partition.
var partitions sync.Map

func init() { toxics.Register("partition", new(partitionToxic)) }

// newPartition installs a partition, off, on both streams of px; px must have no connection yet.
func newPartition(t *testing.T, px *proxy) *partition {
	t.Helper()
	p := &partition{id: t.Name(), changed: make(chan struct{})}
	partitions.Store(p.id, p)
	t.Cleanup(func() { partitions.Delete(p.id) })
	for _, dir := range []string{"upstream", "downstream"} {
		px.add(t, fmt.Sprintf(`{"name":"partition_%s","type":"partition","stream":%q,"attributes":{"id":%q}}`, dir, dir, p.id))
	}
	return p
}

// set turns the partition on or off.
func (p *partition) set(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.on = on
	close(p.changed)
	p.changed = make(chan struct{})
}

func (p *partition) state() (bool, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.on, p.changed
}

// partitionToxic drops the data of one stream of a connection while its partition is on. When the partition
// ends, a connection it dropped data of is closed: its byte stream has a gap that a real network would have
// filled by retransmission, so passing later bytes on would corrupt it.
type partitionToxic struct {
	ID string `json:"id"`
}

// Pipe implements toxics.Toxic.
func (pt *partitionToxic) Pipe(stub *toxics.ToxicStub) {
	v, ok := partitions.Load(pt.ID)
	if !ok {
		new(toxics.NoopToxic).Pipe(stub)
		return
	}
	p := v.(*partition)
	dropped := false
	for {
		on, changed := p.state()
		if dropped && !on {
			stub.Close()
			return
		}
		select {
		case <-stub.Interrupt:
			return
		case <-changed:
		case c := <-stub.Input:
			if c == nil {
				stub.Close()
				return
			}
			if on {
				dropped = true
				continue
			}
			stub.Output <- c
		}
	}
}

// midResult is the outcome of the read of a handle open mid-body: its error and when it ended, counted from
// the fault's injection.
type midResult struct {
	err   error
	after time.Duration
}

// isMismatch reports whether err is sameAs's complaint about content or length rather than an I/O error.
func isMismatch(err error) bool {
	s := err.Error()
	return strings.Contains(s, "differs from what was written") || strings.Contains(s, "differ from what was written") ||
		strings.Contains(s, " bytes, want ")
}

// TestSlowNetworkTransfersIntact: with latency and a bandwidth limit between the daemon and S3, a write and
// its read-back through the mount still complete byte-identical, and the object in S3 has the written SHA-256.
func TestSlowNetworkTransfersIntact(t *testing.T) {
	srv := miniotest.Shared(t)
	px := startProxy(t, srv)
	bucket := srv.NewBucket(t)
	client := srv.Client(t, bucket)
	// Latency on both directions, jittered; 8 MiB/s each way.
	px.add(t, `{"name":"lat_up","type":"latency","stream":"upstream","attributes":{"latency":20,"jitter":10}}`)
	px.add(t, `{"name":"lat_down","type":"latency","stream":"downstream","attributes":{"latency":20,"jitter":10}}`)
	px.add(t, `{"name":"bw_up","type":"bandwidth","stream":"upstream","attributes":{"rate":8192}}`)
	px.add(t, `{"name":"bw_down","type":"bandwidth","stream":"downstream","attributes":{"rate":8192}}`)
	// Slicer splits the stream into small, delayed TCP writes, as a congested path would.
	px.add(t, `{"name":"slicer","type":"slicer","stream":"downstream","attributes":{"average_size":1024,"size_variation":512,"delay":10}}`)
	m := startMount(t, srv, px.endpoint, bucket, smallLimits...)
	var lost int64
	size := pick[int64](16<<20, 160<<20)
	defer func() { summary(t, 1, lost, 0) }()

	path := filepath.Join(m.dir, "slow.bin")
	if r := writeFile(path, 7, size, nil); r.failed() {
		t.Fatalf("write over a slow network: write %v, close %v", r.writeErr, r.closeErr)
	}
	if err := sameAs(path, 7, size); err != nil {
		t.Errorf("read back over a slow network: %v", err)
		lost += size
	}
	lost += checkObjects(t, client, expected{"slow.bin": sum(7, size)})
}
