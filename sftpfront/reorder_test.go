package sftpfront

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
)

// seqFile is a WriterAt that accepts only sequential writes, as the mount does, and counts them.
type seqFile struct {
	buf    bytes.Buffer
	writes int
	failAt int // the failAt-th write fails (1-based); 0: never
}

func (f *seqFile) WriteAt(p []byte, off int64) (int, error) {
	f.writes++
	if f.failAt > 0 && f.writes == f.failAt {
		return 0, errors.New("injected write failure")
	}
	if off != int64(f.buf.Len()) {
		return 0, fmt.Errorf("non-sequential write at %d, file has %d bytes", off, f.buf.Len())
	}
	return f.buf.Write(p)
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

func TestReorderShuffledWritesWithinTheWindowArriveInOrder(t *testing.T) {
	const chunk, n = 32 << 10, 64
	data := pattern(chunk * n)
	f := &seqFile{}
	r := newReorderWriter(f, 0, DefaultReorderWindow)
	order := rand.Perm(n)
	var wg sync.WaitGroup
	for _, i := range order {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := r.WriteAt(data[i*chunk:(i+1)*chunk], int64(i*chunk)); err != nil {
				t.Errorf("chunk %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	written, err := r.finish()
	if err != nil || written != int64(len(data)) {
		t.Fatalf("finish = %d, %v; want %d, nil", written, err, len(data))
	}
	if !bytes.Equal(f.buf.Bytes(), data) {
		t.Fatal("file content differs from what was sent")
	}
	if r.heldBytes() != 0 {
		t.Fatalf("%d bytes still held", r.heldBytes())
	}
}

func TestReorderAWriteBeyondTheWindowFailsAndEveryLaterWriteToo(t *testing.T) {
	f := &seqFile{}
	r := newReorderWriter(f, 0, 1<<20)
	if _, err := r.WriteAt(make([]byte, 10), 1<<20); err == nil {
		t.Fatal("write ending past the window accepted")
	} else {
		var we *WriteOrderError
		if !errors.As(err, &we) || we.Reason != "beyond the reorder window" {
			t.Fatalf("err = %v, want a WriteOrderError beyond the window", err)
		}
	}
	if _, err := r.WriteAt(make([]byte, 10), 0); err == nil {
		t.Fatal("a failed writer accepted a sequential write")
	}
	if _, err := r.finish(); err == nil {
		t.Fatal("finish of a failed writer returned nil")
	}
	if f.writes != 0 {
		t.Fatalf("the file saw %d writes, want 0", f.writes)
	}
}

func TestReorderARewriteOfWrittenBytesIsRefused(t *testing.T) {
	r := newReorderWriter(&seqFile{}, 0, 1<<20)
	if _, err := r.WriteAt([]byte("hello"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := r.WriteAt([]byte("l"), 3); err == nil {
		t.Fatal("rewrite at offset 3 accepted")
	}
}

func TestReorderOverlappingHeldWritesAreRefused(t *testing.T) {
	r := newReorderWriter(&seqFile{}, 0, 1<<20)
	if _, err := r.WriteAt(make([]byte, 100), 100); err != nil {
		t.Fatal(err)
	}
	if _, err := r.WriteAt(make([]byte, 100), 150); err == nil {
		t.Fatal("overlapping held write accepted")
	}
}

func TestReorderFinishWithAGapReportsIncomplete(t *testing.T) {
	f := &seqFile{}
	r := newReorderWriter(f, 0, 1<<20)
	r.WriteAt([]byte("abc"), 0)
	r.WriteAt([]byte("xyz"), 10)
	_, err := r.finish()
	if !errors.Is(err, errIncomplete) {
		t.Fatalf("finish = %v, want errIncomplete", err)
	}
	if f.buf.String() != "abc" {
		t.Fatalf("file = %q, want %q", f.buf.String(), "abc")
	}
}

func TestReorderAFileWriteErrorFailsTheWriter(t *testing.T) {
	f := &seqFile{failAt: 2}
	r := newReorderWriter(f, 0, 1<<20)
	r.WriteAt([]byte("b"), 1) // held
	// "a" is written, then the held "b" fails: the request that drained it gets the error.
	if _, err := r.WriteAt([]byte("a"), 0); err == nil {
		t.Fatal("write that drained a failing chunk returned nil")
	}
	if _, err := r.finish(); err == nil || err.Error() != "injected write failure" {
		t.Fatalf("finish = %v, want the injected failure", err)
	}
}

func TestReorderAResumeStartsAtTheGivenOffset(t *testing.T) {
	f := &seqFile{}
	f.buf.WriteString("12345")
	r := newReorderWriter(f, 5, 1<<20)
	if _, err := r.WriteAt([]byte("678"), 5); err != nil {
		t.Fatal(err)
	}
	if f.buf.String() != "12345678" {
		t.Fatalf("file = %q", f.buf.String())
	}
}

func TestReorderHeldChunksAreBoundedInCount(t *testing.T) {
	r := newReorderWriter(&seqFile{}, 0, 1<<30)
	var err error
	for i := 1; i <= maxHeldChunks+1 && err == nil; i++ {
		_, err = r.WriteAt([]byte{1}, int64(2*i))
	}
	if err == nil {
		t.Fatalf("%d held chunks accepted", maxHeldChunks+1)
	}
}

// A writer continuing an existing file that may rewind, whose first write lands before the start, truncates
// the file once and takes the writes from offset 0, held ones included; after bytes were written a write
// before the position is refused as ever.
func TestReorderAWriteBeforeTheStartRewindsOnceBeforeAnyByteIsWritten(t *testing.T) {
	f := &seqFile{}
	f.buf.WriteString("old contents")
	rewinds := 0
	w := newReorderWriter(f, int64(f.buf.Len()), 1<<20)
	w.allowRewind(func() error { rewinds++; f.buf.Reset(); return nil })
	data := pattern(100)
	if _, err := w.WriteAt(data[50:], 50); err != nil { // held: beyond the start, nothing written yet
		t.Fatal(err)
	}
	if _, err := w.WriteAt(data[:50], 0); err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteAt(data[:10], 0); err == nil {
		t.Fatal("a rewrite after the rewind was accepted")
	}
	if rewinds != 1 || !bytes.Equal(f.buf.Bytes(), data) {
		t.Fatalf("rewinds %d, file %q; want 1 and the new data", rewinds, f.buf.Bytes())
	}

	f = &seqFile{}
	f.buf.WriteString("old")
	w = newReorderWriter(f, 3, 1<<20) // no rewind allowed: a resume only
	if _, err := w.WriteAt([]byte("x"), 0); err == nil {
		t.Fatal("a write before the start of a resume was accepted")
	}
}
