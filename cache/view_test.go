package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/s3ftp/s3ftp/s3client/s3fake"
)

// A view holds the requested bytes of one block, shorter only at the end of the object; a range over two blocks
// is refused without side effects so that the caller falls back to ReadAt.
func TestReadViewRanges(t *testing.T) {
	const bs = 16
	f := s3fake.New()
	data, info := putObject(t, f, "a", 3*bs+5, 21)
	c := newCache(t, Config{MaxBytes: 8 * bs, BlockSize: bs})
	r := newReader(t, c, f, info, ReaderConfig{})
	ctx := context.Background()

	v, ok, err := r.ReadView(ctx, bs+3, 10)
	if !ok || err != nil || !bytes.Equal(v.Bytes(), data[bs+3:bs+13]) {
		t.Fatalf("inside block 1: ok=%v err=%v", ok, err)
	}
	v.Release()
	v.Release() // a second Release does nothing

	if v, ok, err := r.ReadView(ctx, bs-2, 4); ok || v != nil || err != nil {
		t.Fatalf("range over blocks 0 and 1: ok=%v err=%v, want refused", ok, err)
	}

	v, ok, err = r.ReadView(ctx, 3*bs, bs)
	if !ok || !errors.Is(err, io.EOF) || !bytes.Equal(v.Bytes(), data[3*bs:]) {
		t.Fatalf("last block: ok=%v err=%v len=%d, want the 5 last bytes and io.EOF", ok, err, len(v.Bytes()))
	}
	v.Release()

	v, ok, err = r.ReadView(ctx, int64(len(data)), 4)
	if !ok || !errors.Is(err, io.EOF) || len(v.Bytes()) != 0 {
		t.Fatalf("at the end: ok=%v err=%v len=%d, want empty and io.EOF", ok, err, len(v.Bytes()))
	}
	v.Release()

	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := r.ReadView(ctx, 0, 4); !ok || err == nil {
		t.Fatalf("after Close: ok=%v err=%v, want an error", ok, err)
	}
}

// A lent block is neither evicted nor reused while its view is held, even when other reads need its memory;
// after Release it becomes the most recently used block.
func TestReadViewPinsBlock(t *testing.T) {
	const bs = 16
	f := s3fake.New()
	data, info := putObject(t, f, "a", 30*bs, 22)
	c := newCache(t, Config{MaxBytes: 2 * bs, BlockSize: bs})
	r := newReader(t, c, f, info, ReaderConfig{})
	ctx := context.Background()
	lru := func() string { return strings.ReplaceAll(c.lruString(), "@"+info.ETag, "") }

	v, ok, err := r.ReadView(ctx, 20*bs+1, 4)
	if !ok || err != nil {
		t.Fatalf("view: ok=%v err=%v", ok, err)
	}
	// Far apart, one block each: with two blocks of budget and one lent, every read must evict the other.
	for _, blk := range []int64{2, 10, 25, 5} {
		p := make([]byte, 3)
		if _, err := r.ReadAt(ctx, p, blk*bs); err != nil || !bytes.Equal(p, data[blk*bs:blk*bs+3]) {
			t.Fatalf("block %d: %v", blk, err)
		}
	}
	if !bytes.Equal(v.Bytes(), data[20*bs+1:20*bs+5]) {
		t.Fatalf("lent bytes changed while the view was held")
	}
	if got, want := lru(), "a#5"; got != want {
		t.Fatalf("lru while lent %q, want %q (the lent block is not evictable)", got, want)
	}
	v.Release()
	if got, want := lru(), "a#20 a#5"; got != want {
		t.Fatalf("lru after Release %q, want %q", got, want)
	}
	if s := c.Stats(); s.Evictions != 3 || s.PeakBytes != 2*bs {
		t.Errorf("stats %+v, want 3 evictions within 2 blocks", s)
	}
}

// Open Readers share half the cache for their windows: with 4 open on a 4 MiB cache each grows to 512 KiB at
// most, below its MaxWindow (a quarter of the cache); once the others close, the survivor grows to MaxWindow.
func TestWindowSharedAmongReaders(t *testing.T) {
	const bs = 64 << 10
	f := s3fake.New()
	_, info := putObject(t, f, "big", 4<<20, 3)
	c := newCache(t, Config{MaxBytes: 4 << 20, BlockSize: bs})
	rc := ReaderConfig{InitialWindow: 128 << 10, MaxWindow: 8 << 20}
	r := newReader(t, c, f, info, rc)
	var others []*Reader
	for range 3 {
		others = append(others, newReader(t, c, f, info, rc))
	}
	var windows []int64
	buf := make([]byte, bs)
	read := func(from, to int64) {
		t.Helper()
		for off := from * bs; off < to*bs; off += bs {
			if _, err := r.ReadAt(context.Background(), buf, off); err != nil {
				t.Fatal(err)
			}
			r.mu.Lock()
			windows = append(windows, r.window)
			r.mu.Unlock()
		}
	}
	read(0, 5)
	for _, o := range others {
		if err := o.Close(); err != nil {
			t.Fatal(err)
		}
	}
	read(5, 8)
	got := fmt.Sprint(windows)
	want := "[131072 262144 524288 524288 524288 1048576 1048576 1048576]"
	if got != want {
		t.Errorf("windows %s, want %s", got, want)
	}
}
