package upload

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/s3ftp/s3ftp/internal/logbuf"
	"github.com/s3ftp/s3ftp/s3client"
	"github.com/s3ftp/s3ftp/s3client/s3fake"
)

const mib = 1 << 20

// testData returns n pseudo-random bytes, reproducible per seed. It is built from 4 KiB blocks copied from a
// random pool at varying offsets and stamped with their index, so that a misplaced block is detected; copying
// (rather than generating byte by byte) keeps it fast under the race detector.
func testData(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	pool := make([]byte, 256<<10)
	for i := 0; i < len(pool); i += 8 {
		binary.LittleEndian.PutUint64(pool[i:], r.Uint64())
	}
	b := make([]byte, n)
	for off, i := 0, uint64(0); off < n; off, i = off+4096, i+1 {
		start := r.IntN(len(pool) - 4096)
		k := copy(b[off:], pool[start:start+4096])
		if k >= 8 {
			binary.LittleEndian.PutUint64(b[off:], i^seed<<32)
		}
	}
	return b
}

// testConfig returns a writer Config over budget with concurrency part uploads, logging at Info and up into
// the returned Buffer.
func testConfig(t *testing.T, budget *Budget, concurrency int) (Config, *logbuf.Buffer) {
	t.Helper()
	log, logs := logbuf.New(nil)
	return Config{
		PartSize:    5 * mib,
		Concurrency: concurrency,
		Budget:      budget,
		Log:         log,
		Aborts:      &Aborts{},
	}, logs
}

// settle waits until the background aborts of w ended, so that the fake's state is final.
func settle(t *testing.T, w *Writer) {
	t.Helper()
	if err := w.aborts.Wait(t.Context()); err != nil {
		t.Fatalf("waiting for the aborts: %v", err)
	}
}

// writeAll writes data sequentially in chunks of chunk bytes.
func writeAll(t *testing.T, w *Writer, data []byte, chunk int) {
	t.Helper()
	for off := 0; off < len(data); off += chunk {
		end := min(off+chunk, len(data))
		n, err := w.WriteAt(context.Background(), data[off:end], int64(off))
		if err != nil || n != end-off {
			t.Fatalf("WriteAt(off %d, %d bytes) = %d, %v", off, end-off, n, err)
		}
	}
}

// checkStored asserts that key holds want, matching info, and that no upload is left behind.
func checkStored(t *testing.T, f *s3fake.Fake, key string, want []byte, info s3client.ObjectInfo) {
	t.Helper()
	got, ok := f.Object(key)
	if !ok {
		t.Fatalf("object %q missing; bucket:\n%s", key, f)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("object %q: %d bytes differ from the %d written", key, len(got), len(want))
	}
	stored, _ := f.Info(key)
	if info.Key != key || info.Size != int64(len(want)) || info.ETag != stored.ETag {
		t.Fatalf("Close info = %+v, stored %+v, want size %d", info, stored, len(want))
	}
	if u := f.Uploads(); len(u) != 0 {
		t.Fatalf("uploads left behind: %v", u)
	}
}

func TestSmallFileIsOnePutObject(t *testing.T) {
	f := s3fake.New()
	cfg, _ := testConfig(t, NewBudget(20*mib), 2)
	opts := s3client.PutOptions{ContentType: "text/plain", Metadata: map[string]string{"mtime": "1"}}
	w := New(f, "dir/small", opts, cfg)
	data := testData(1, 3*mib+17)
	writeAll(t, w, data, 128<<10)
	if w.Size() != int64(len(data)) {
		t.Fatalf("Size = %d, want %d", w.Size(), len(data))
	}
	info, err := w.Close(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checkStored(t, f, "dir/small", data, info)
	if n := f.Calls("PutObject"); n != 1 {
		t.Errorf("PutObject calls = %d, want 1", n)
	}
	if n := f.Calls("CreateMultipartUpload") + f.Calls("UploadPart"); n != 0 {
		t.Errorf("multipart calls = %d, want 0", n)
	}
	if stored, _ := f.Info("dir/small"); stored.ContentType != "text/plain" || stored.Metadata["mtime"] != "1" {
		t.Errorf("stored options = %q %v", stored.ContentType, stored.Metadata)
	}
	if cfg.Budget.InUse() != 0 {
		t.Errorf("InUse after Close = %d, want 0", cfg.Budget.InUse())
	}
}

func TestEmptyFile(t *testing.T) {
	f := s3fake.New()
	cfg, _ := testConfig(t, nil, 1)
	w := New(f, "empty", s3client.PutOptions{}, cfg)
	info, err := w.Close(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checkStored(t, f, "empty", []byte{}, info)
	if f.Calls("PutObject") != 1 {
		t.Errorf("PutObject calls = %d, want 1", f.Calls("PutObject"))
	}
}

func TestExactlyOnePartIsOnePutObject(t *testing.T) {
	f := s3fake.New()
	cfg, _ := testConfig(t, NewBudget(20*mib), 2)
	w := New(f, "one", s3client.PutOptions{}, cfg)
	data := testData(2, 5*mib)
	writeAll(t, w, data, mib)
	info, err := w.Close(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checkStored(t, f, "one", data, info)
	if f.Calls("PutObject") != 1 || f.Calls("UploadPart") != 0 {
		t.Errorf("PutObject %d, UploadPart %d calls; want 1, 0", f.Calls("PutObject"), f.Calls("UploadPart"))
	}
}

func TestLargeFileIsMultipart(t *testing.T) {
	for _, size := range []int{5*mib + 1, 23*mib + 12345, 25 * mib} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			f := s3fake.New()
			budget := NewBudget(20 * mib)
			cfg, logs := testConfig(t, budget, 2)
			w := New(f, "big", s3client.PutOptions{}, cfg)
			data := testData(3, size)
			writeAll(t, w, data, 100_000) // not aligned with parts
			info, err := w.Close(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			checkStored(t, f, "big", data, info)
			parts := (size + 5*mib - 1) / (5 * mib)
			if f.Calls("UploadPart") != parts || f.Calls("CompleteMultipartUpload") != 1 ||
				f.Calls("CreateMultipartUpload") != 1 || f.Calls("PutObject") != 0 {
				t.Errorf("calls: Create %d, UploadPart %d (want %d), Complete %d, Put %d",
					f.Calls("CreateMultipartUpload"), f.Calls("UploadPart"), parts,
					f.Calls("CompleteMultipartUpload"), f.Calls("PutObject"))
			}
			if !strings.HasSuffix(info.ETag, fmt.Sprintf(`-%d"`, parts)) {
				t.Errorf("ETag %s is not a %d-part ETag", info.ETag, parts)
			}
			if budget.InUse() != 0 || budget.Peak() > budget.Max() {
				t.Errorf("budget InUse %d, Peak %d, Max %d", budget.InUse(), budget.Peak(), budget.Max())
			}
			if l := logs.Lines(); len(l) != 0 {
				t.Errorf("unexpected log lines: %q", l)
			}
		})
	}
}

// TestThirdPartFails: a part that fails makes the writer fail. The next WriteAt and Close return the error,
// the upload is aborted once, nothing is stored and one line naming the key is logged.
func TestThirdPartFails(t *testing.T) {
	f := s3fake.New()
	f.SetFault(func(op, key string, call int) error {
		if op == "UploadPart" && call == 3 {
			return s3client.ErrUnavailable
		}
		return nil
	})
	budget := NewBudget(20 * mib)
	cfg, logs := testConfig(t, budget, 1)
	w := New(f, "fails", s3client.PutOptions{}, cfg)
	data := testData(4, 40*mib)
	// With one upload slot, handing off part 4 waits for part 3, whose failure is recorded before its slot
	// is given back: some WriteAt up to the one that hands off part 4 (at 20 MiB + 1) must fail.
	var werr error
	for off := 0; off <= 20*mib && werr == nil; off += mib {
		_, werr = w.WriteAt(context.Background(), data[off:off+mib], int64(off))
	}
	if !errors.Is(werr, s3client.ErrUnavailable) {
		t.Fatalf("WriteAt after the 3rd part failed = %v, want ErrUnavailable", werr)
	}
	if _, err := w.WriteAt(context.Background(), []byte("x"), w.Size()); !errors.Is(err, s3client.ErrUnavailable) {
		t.Fatalf("next WriteAt = %v, want the sticky ErrUnavailable", err)
	}
	if _, err := w.Close(context.Background()); !errors.Is(err, s3client.ErrUnavailable) {
		t.Fatalf("Close = %v, want ErrUnavailable", err)
	}
	if _, err := w.Close(context.Background()); !errors.Is(err, s3client.ErrUnavailable) {
		t.Fatalf("second Close = %v, want ErrUnavailable", err)
	}
	settle(t, w)
	if n := f.Calls("AbortMultipartUpload"); n != 1 {
		t.Errorf("AbortMultipartUpload calls = %d, want 1", n)
	}
	if f.Calls("CompleteMultipartUpload") != 0 {
		t.Errorf("CompleteMultipartUpload was called")
	}
	if s := f.String(); s != "" {
		t.Errorf("bucket not empty:\n%s", s)
	}
	if budget.InUse() != 0 {
		t.Errorf("InUse = %d after the failed Close", budget.InUse())
	}
	l := logs.Lines()
	if len(l) != 1 || !strings.Contains(l[0], "key=fails") || !strings.Contains(l[0], "service unavailable") {
		t.Errorf("want one log line naming the key and cause, got %q", l)
	}
}

func TestFailuresAbortAndLeaveNothing(t *testing.T) {
	for _, op := range []string{"CreateMultipartUpload", "CompleteMultipartUpload", "PutObject"} {
		t.Run(op, func(t *testing.T) {
			f := s3fake.New()
			f.FailNext(op, 1, s3client.ErrAccessDenied)
			cfg, logs := testConfig(t, NewBudget(20*mib), 2)
			w := New(f, "k", s3client.PutOptions{}, cfg)
			size := 12 * mib
			if op == "PutObject" {
				size = mib
			}
			data := testData(5, size)
			var err error
			for off := 0; off < size && err == nil; off += mib {
				_, err = w.WriteAt(context.Background(), data[off:off+mib], int64(off))
			}
			if op == "CreateMultipartUpload" && !errors.Is(err, s3client.ErrAccessDenied) {
				t.Fatalf("WriteAt = %v, want ErrAccessDenied", err)
			}
			if _, err := w.Close(context.Background()); !errors.Is(err, s3client.ErrAccessDenied) {
				t.Fatalf("Close = %v, want ErrAccessDenied", err)
			}
			settle(t, w)
			if s := f.String(); s != "" {
				t.Errorf("bucket not empty:\n%s", s)
			}
			wantAborts := 1
			if op != "CompleteMultipartUpload" {
				wantAborts = 0 // no upload was created
			}
			if n := f.Calls("AbortMultipartUpload"); n != wantAborts {
				t.Errorf("AbortMultipartUpload calls = %d, want %d", n, wantAborts)
			}
			if l := logs.Lines(); len(l) != 1 || !strings.Contains(l[0], op) {
				t.Errorf("want one log line naming %s, got %q", op, l)
			}
		})
	}
}

// TestBudgetNeverExceeded runs many writers on a budget of four parts.
func TestBudgetNeverExceeded(t *testing.T) {
	f := s3fake.New()
	var maxSeen sync.Map
	budget := NewBudget(20 * mib)
	f.SetFault(func(op, key string, call int) error {
		if op == "UploadPart" {
			maxSeen.Store(call, budget.InUse())
		}
		return nil
	})
	const writers = 8
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	datas := make([][]byte, writers)
	for i := range writers {
		datas[i] = testData(uint64(10+i), 11*mib+i*1000)
		wg.Go(func() {
			cfg, _ := testConfig(t, budget, 3)
			w := New(f, fmt.Sprintf("w%d", i), s3client.PutOptions{}, cfg)
			d := datas[i]
			for off := 0; off < len(d); off += 64 << 10 {
				end := min(off+64<<10, len(d))
				if _, err := w.WriteAt(context.Background(), d[off:end], int64(off)); err != nil {
					errs <- err
					return
				}
			}
			_, err := w.Close(context.Background())
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range writers {
		got, _ := f.Object(fmt.Sprintf("w%d", i))
		if !bytes.Equal(got, datas[i]) {
			t.Errorf("w%d: content differs", i)
		}
	}
	maxSeen.Range(func(_, v any) bool {
		if v.(int64) > budget.Max() {
			t.Errorf("InUse %d seen during an upload exceeds Max %d", v, budget.Max())
		}
		return true
	})
	if budget.Peak() > budget.Max() || budget.Peak() < 10*mib || budget.InUse() != 0 {
		t.Errorf("Peak %d (Max %d, want at least two parts in use at once), InUse %d",
			budget.Peak(), budget.Max(), budget.InUse())
	}
	if u := f.Uploads(); len(u) != 0 {
		t.Errorf("uploads left: %v", u)
	}
}

// waitForWaiters polls until the budget has n waiters (no timing assumption: it waits as long as needed).
func waitForWaiters(t *testing.T, b *Budget, n int) {
	t.Helper()
	for {
		b.mu.Lock()
		got := len(b.waiters)
		b.mu.Unlock()
		if got == n {
			return
		}
		pollPause()
	}
}

// blockUploads makes UploadPart calls wait until the returned release function is called.
func blockUploads(f *s3fake.Fake) (release func()) {
	gate := make(chan struct{})
	f.SetFault(func(op, key string, call int) error {
		if op == "UploadPart" {
			<-gate
		}
		return nil
	})
	var once sync.Once
	return func() { once.Do(func() { close(gate) }) }
}

// fillBudget makes writer a hold the whole 10 MiB budget: part 1 uploading (blocked), part 2 being filled.
func fillBudget(t *testing.T, f *s3fake.Fake, budget *Budget) *Writer {
	t.Helper()
	cfg, _ := testConfig(t, budget, 1)
	a := New(f, "a", s3client.PutOptions{}, cfg)
	writeAll(t, a, testData(6, 5*mib+1), mib)
	if budget.InUse() != budget.Max() {
		t.Fatalf("InUse = %d, want the full budget %d", budget.InUse(), budget.Max())
	}
	return a
}

func TestBlockedWriterReleasedByCancel(t *testing.T) {
	f := s3fake.New()
	release := blockUploads(f)
	defer release()
	budget := NewBudget(10 * mib)
	a := fillBudget(t, f, budget)

	cfg, _ := testConfig(t, budget, 1)
	b := New(f, "b", s3client.PutOptions{}, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := b.WriteAt(ctx, []byte("hello"), 0)
		done <- err
	}()
	waitForWaiters(t, budget, 1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("blocked WriteAt = %v, want context.Canceled", err)
	}
	if b.Size() != 0 || budget.InUse() != budget.Max() {
		t.Fatalf("after cancel: Size %d, InUse %d", b.Size(), budget.InUse())
	}
	// The cancelled write is not sticky: once the budget frees up, b writes and closes normally.
	release()
	if _, err := a.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.WriteAt(context.Background(), []byte("hello"), 0); err != nil {
		t.Fatal(err)
	}
	info, err := b.Close(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checkStored(t, f, "b", []byte("hello"), info)
}

func TestBlockedWriterReleasedByAbort(t *testing.T) {
	f := s3fake.New()
	release := blockUploads(f)
	defer release()
	budget := NewBudget(10 * mib)
	a := fillBudget(t, f, budget)

	cfg, _ := testConfig(t, budget, 1)
	b := New(f, "b", s3client.PutOptions{}, cfg)
	done := make(chan error)
	go func() {
		_, err := b.WriteAt(context.Background(), []byte("hello"), 0)
		done <- err
	}()
	waitForWaiters(t, budget, 1)
	if err := b.Abort(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrAborted) {
		t.Fatalf("blocked WriteAt after Abort = %v, want ErrAborted", err)
	}
	if _, err := b.Close(context.Background()); !errors.Is(err, ErrAborted) {
		t.Fatalf("Close after Abort = %v, want ErrAborted", err)
	}
	// Aborting a, which holds a buffer and has a part uploaded, aborts its multipart upload and frees the budget.
	release()
	if err := a.Abort(context.Background()); err != nil {
		t.Fatal(err)
	}
	settle(t, a)
	settle(t, b)
	if s := f.String(); s != "" {
		t.Errorf("bucket not empty:\n%s", s)
	}
	if budget.InUse() != 0 {
		t.Errorf("InUse = %d after both writers aborted", budget.InUse())
	}
}

func TestOutOfOrderWindow(t *testing.T) {
	f := s3fake.New()
	cfg, _ := testConfig(t, NewBudget(20*mib), 2)
	w := New(f, "ooo", s3client.PutOptions{}, cfg)
	data := testData(7, 12*mib)
	ctx := context.Background()
	const c = 128 << 10
	// Writeback order 0, 2, 1, 3, 5, 4, ... (pairs swapped), crossing part boundaries.
	for i := 0; i*c < len(data); i += 2 {
		for _, j := range []int{i + 1, i} {
			if j*c >= len(data) {
				continue
			}
			if _, err := w.WriteAt(ctx, data[j*c:(j+1)*c], int64(j*c)); err != nil {
				t.Fatalf("chunk %d: %v", j, err)
			}
		}
	}
	// A write into a part already handed off is refused.
	if _, err := w.WriteAt(ctx, []byte("old"), 10); !errors.Is(err, ErrNotSequential) {
		t.Fatalf("write into an uploaded part = %v, want ErrNotSequential", err)
	}
	// Rewriting bytes of the part being filled is allowed.
	copy(data[len(data)-100:], "rewritten")
	if _, err := w.WriteAt(ctx, []byte("rewritten"), int64(len(data)-100)); err != nil {
		t.Fatal(err)
	}
	// A gap left at Close reads as zeros.
	tail := []byte("tail")
	if _, err := w.WriteAt(ctx, tail, int64(len(data))+1000); err != nil {
		t.Fatal(err)
	}
	if w.Size() != int64(len(data))+1000+4 {
		t.Fatalf("Size = %d", w.Size())
	}
	want := append(append(bytes.Clone(data), make([]byte, 1000)...), tail...)
	info, err := w.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	checkStored(t, f, "ooo", want, info)
}

func TestCloseIdempotent(t *testing.T) {
	f := s3fake.New()
	cfg, _ := testConfig(t, nil, 1)
	w := New(f, "k", s3client.PutOptions{}, cfg)
	writeAll(t, w, []byte("data"), 4)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// A cancelled Close only stops waiting; the completion goes on.
	if _, err := w.Close(ctx); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("Close with a cancelled context = %v", err)
	}
	i1, err1 := w.Close(context.Background())
	i2, err2 := w.Close(context.Background())
	if err1 != nil || err2 != nil || i1.ETag != i2.ETag || i1.Size != 4 {
		t.Fatalf("Close results differ: %+v %v / %+v %v", i1, err1, i2, err2)
	}
	if f.Calls("PutObject") != 1 {
		t.Errorf("PutObject calls = %d, want 1", f.Calls("PutObject"))
	}
	if _, err := w.WriteAt(context.Background(), []byte("x"), 4); !errors.Is(err, ErrClosed) {
		t.Errorf("WriteAt after Close = %v, want ErrClosed", err)
	}
	if err := w.Abort(context.Background()); err != nil {
		t.Errorf("Abort after Close = %v", err)
	}
	if _, ok := f.Object("k"); !ok {
		t.Errorf("Abort after a successful Close removed the object")
	}
}

func TestSetOptionsWhileWriting(t *testing.T) {
	f := s3fake.New()
	cfg, _ := testConfig(t, NewBudget(20*mib), 2)
	w := New(f, "k", s3client.PutOptions{Metadata: map[string]string{"mtime": "1"}}, cfg)
	data := testData(8, 6*mib)
	writeAll(t, w, data, mib) // part 1 handed off: the upload was created with mtime=1
	w.SetOptions(s3client.PutOptions{Metadata: map[string]string{"mtime": "2"}})
	info, err := w.Close(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checkStored(t, f, "k", data, info)
	stored, _ := f.Info("k")
	if stored.Metadata["mtime"] != "2" || info.Metadata["mtime"] != "2" {
		t.Errorf("metadata stored %v, returned %v; want mtime=2", stored.Metadata, info.Metadata)
	}
	if f.Calls("CopyObject") != 1 {
		t.Errorf("CopyObject calls = %d, want 1", f.Calls("CopyObject"))
	}
}

func TestBudgetReusesBuffers(t *testing.T) {
	b := NewBudget(10 * mib)
	ctx := context.Background()
	x, err := b.acquire(ctx, nil, 5*mib)
	if err != nil {
		t.Fatal(err)
	}
	b.release(x)
	y, err := b.acquire(ctx, nil, 5*mib)
	if err != nil {
		t.Fatal(err)
	}
	if &x[0] != &y[0] {
		t.Errorf("a released buffer of the same size was not reused")
	}
	// A buffer of another size displaces free ones so that InUse + free stays within Max.
	b.release(y)
	z, err := b.acquire(ctx, nil, 10*mib)
	if err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	idle := b.idle
	b.mu.Unlock()
	if idle != 0 || b.InUse() != 10*mib || len(z) != 10*mib {
		t.Errorf("idle %d, InUse %d, len %d", idle, b.InUse(), len(z))
	}
	if _, err := b.acquire(ctx, nil, 11*mib); err == nil {
		t.Errorf("acquiring more than Max succeeded")
	}
}

func TestBudgetServesWaitersInOrder(t *testing.T) {
	b := NewBudget(10 * mib)
	ctx := context.Background()
	full, _ := b.acquire(ctx, nil, 10*mib)
	big := make(chan []byte)
	go func() { buf, _ := b.acquire(ctx, nil, 8*mib); big <- buf }()
	waitForWaiters(t, b, 1)
	small := make(chan []byte)
	go func() { buf, _ := b.acquire(ctx, nil, 1*mib); small <- buf }()
	waitForWaiters(t, b, 2)
	b.release(full)
	bb := <-big // the first waiter is served first although the second is smaller
	sb := <-small
	if b.InUse() != 9*mib {
		t.Errorf("InUse = %d, want 9 MiB", b.InUse())
	}
	b.release(bb)
	b.release(sb)
	if b.InUse() != 0 || b.Peak() != 10*mib {
		t.Errorf("InUse %d, Peak %d", b.InUse(), b.Peak())
	}
}

// TestPartsUploadConcurrently: a writer keeps exactly Concurrency parts in flight while it goes on writing.
func TestPartsUploadConcurrently(t *testing.T) {
	f := s3fake.New()
	var mu sync.Mutex
	inFlight, maxInFlight := 0, 0
	gate := make(chan struct{})
	f.SetFault(func(op, key string, call int) error {
		if op != "UploadPart" {
			return nil
		}
		mu.Lock()
		inFlight++
		maxInFlight = max(maxInFlight, inFlight)
		mu.Unlock()
		<-gate
		mu.Lock()
		inFlight--
		mu.Unlock()
		return nil
	})
	cfg, _ := testConfig(t, NewBudget(40*mib), 3)
	w := New(f, "k", s3client.PutOptions{}, cfg)
	data := testData(9, 21*mib)
	done := make(chan error)
	go func() {
		for off := 0; off < len(data); off += mib {
			if _, err := w.WriteAt(context.Background(), data[off:off+mib], int64(off)); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for {
		mu.Lock()
		n := inFlight
		mu.Unlock()
		if n == 3 {
			break
		}
		pollPause()
	}
	close(gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	info, err := w.Close(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checkStored(t, f, "k", data, info)
	if maxInFlight != 3 {
		t.Errorf("at most %d parts were in flight at once, want Concurrency = 3", maxInFlight)
	}
}

// TestFailedWriterAbortsWithoutClose: a caller that never closes a failed writer still leaves no upload behind.
func TestFailedWriterAbortsWithoutClose(t *testing.T) {
	f := s3fake.New()
	f.FailNext("UploadPart", 1, s3client.ErrUnavailable)
	cfg, _ := testConfig(t, NewBudget(20*mib), 1)
	w := New(f, "k", s3client.PutOptions{}, cfg)
	data := testData(10, 11*mib)
	var err error
	for off := 0; off < len(data) && err == nil; off += mib {
		_, err = w.WriteAt(context.Background(), data[off:min(off+mib, len(data))], int64(off))
	}
	if !errors.Is(err, s3client.ErrUnavailable) {
		t.Fatalf("WriteAt = %v, want ErrUnavailable", err)
	}
	for f.Calls("AbortMultipartUpload") == 0 || len(f.Uploads()) != 0 {
		pollPause()
	}
}

// A write past the end of everything written, beyond the reorder window, grows the object: the gap is
// zeros. Extend grows it the same way; a size at or below Size() changes nothing.
func TestWritePastEndAndExtend(t *testing.T) {
	f := s3fake.New()
	cfg, _ := testConfig(t, NewBudget(20*mib), 2)
	ctx := context.Background()
	w := New(f, "sparse", s3client.PutOptions{}, cfg)
	if _, err := w.WriteAt(ctx, []byte("head"), 0); err != nil {
		t.Fatal(err)
	}
	far := int64(11 * mib)
	if _, err := w.WriteAt(ctx, []byte("x"), far); err != nil {
		t.Fatalf("write %d bytes past the end: %v", far, err)
	}
	if err := w.Extend(ctx, far+1+3*mib); err != nil {
		t.Fatal(err)
	}
	if err := w.Extend(ctx, 5); err != nil || w.Size() != far+1+3*mib {
		t.Fatalf("Extend below the size = %v, size %d; want no change", err, w.Size())
	}
	if _, err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	want := make([]byte, far+1+3*mib)
	copy(want, "head")
	want[far] = 'x'
	if got, _ := f.Object("sparse"); !bytes.Equal(got, want) {
		t.Errorf("object of %d bytes differs from head, zeros, x, zeros (%d bytes)", len(got), len(want))
	}
	if _, err := w.WriteAt(ctx, []byte("late"), 0); !errors.Is(err, ErrClosed) {
		t.Errorf("write after Close = %v, want ErrClosed", err)
	}
}
