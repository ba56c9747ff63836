package upload

import (
	"context"
	"fmt"
	"sync"

	"github.com/s3ftp/s3ftp/s3client"
)

// Budget is the global memory budget of all part buffers of all writers sharing it.
//
// A buffer is acquired before it is filled and released after its part's upload finished (or the writer gave
// it up). InUse counts the full capacity of every buffer handed out. Released buffers are kept on a free list
// for reuse as long as InUse plus the free list stays within Max, so the heap stays near the budget instead of
// growing with garbage-collector lag; a free buffer of the wrong size is dropped when a new one must be made.
//
// Waiters are served in arrival order, so a large request is not starved by a stream of small ones.
type Budget struct {
	max int64

	mu      sync.Mutex // guards the fields below
	inUse   int64
	peak    int64              // largest inUse so far
	idle    int64              // bytes on the free list
	free    map[int64][][]byte // free buffers by capacity
	waiters []*budgetWaiter    // FIFO
}

type budgetWaiter struct {
	n       int64
	granted chan struct{} // closed when the bytes were added to inUse on the waiter's behalf
}

// NewBudget returns a budget of max bytes. max must hold two minimum-size parts (2 × 5 MiB): the part size
// schedule caps a part at max/2 and S3 needs parts of at least 5 MiB. Smaller values panic; s3mount's option
// validation rejects them first.
func NewBudget(max int64) *Budget {
	if max < 2*s3client.MinPartSize {
		panic(fmt.Sprintf("upload.NewBudget(%d): the budget must hold two parts of %d bytes", max, s3client.MinPartSize))
	}
	return &Budget{max: max, free: make(map[int64][][]byte)}
}

// InUse returns the bytes currently held by buffers handed out (not counting the free list).
func (b *Budget) InUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.inUse
}

// Peak returns the largest InUse so far; it never exceeds Max.
func (b *Budget) Peak() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.peak
}

// Max returns the budget's size in bytes.
func (b *Budget) Max() int64 { return b.max }

// acquire returns a buffer of length and capacity n, waiting while the budget cannot hold it. It returns ctx's
// error, or errStopped when stop is closed, if either happens first; nothing is held then.
func (b *Budget) acquire(ctx context.Context, stop <-chan struct{}, n int64) ([]byte, error) {
	if n > b.max {
		return nil, fmt.Errorf("upload: buffer of %d bytes exceeds the memory budget of %d", n, b.max)
	}
	b.mu.Lock()
	if len(b.waiters) == 0 && b.inUse+n <= b.max {
		b.inUse += n
		b.peak = max(b.peak, b.inUse)
		buf := b.takeLocked(n)
		b.mu.Unlock()
		return b.materialise(buf, n), nil
	}
	w := &budgetWaiter{n: n, granted: make(chan struct{})}
	b.waiters = append(b.waiters, w)
	b.mu.Unlock()

	var err error
	select {
	case <-w.granted:
	case <-ctx.Done():
		err = ctx.Err()
	case <-stop:
		err = errStopped
	}
	b.mu.Lock()
	if err != nil {
		select {
		case <-w.granted:
			// Granted while giving up: hand the bytes back.
			b.inUse -= n
		default:
			b.removeWaiterLocked(w)
		}
		b.grantLocked()
		b.mu.Unlock()
		return nil, err
	}
	buf := b.takeLocked(n)
	b.mu.Unlock()
	return b.materialise(buf, n), nil
}

// materialise allocates a buffer outside the lock when the free list had none.
func (b *Budget) materialise(buf []byte, n int64) []byte {
	if buf == nil {
		buf = make([]byte, n)
	}
	return buf
}

// takeLocked returns a free buffer of capacity n, or nil when a new one must be allocated; in that case it first
// drops free buffers until inUse + idle stays within max (n is already counted in inUse).
func (b *Budget) takeLocked(n int64) []byte {
	if l := b.free[n]; len(l) > 0 {
		buf := l[len(l)-1]
		l[len(l)-1] = nil
		b.free[n] = l[:len(l)-1]
		b.idle -= n
		return buf[:n]
	}
	for size, l := range b.free {
		for len(l) > 0 && b.inUse+b.idle > b.max {
			l[len(l)-1] = nil
			l = l[:len(l)-1]
			b.idle -= size
		}
		b.free[size] = l
		if b.inUse+b.idle <= b.max {
			break
		}
	}
	return nil
}

// release returns buf (acquired from b) to the budget and wakes waiters that now fit.
func (b *Budget) release(buf []byte) {
	n := int64(cap(buf))
	b.mu.Lock()
	defer b.mu.Unlock()
	b.inUse -= n
	if b.inUse < 0 {
		panic("upload: budget released more than it handed out")
	}
	if b.inUse+b.idle+n <= b.max {
		b.free[n] = append(b.free[n], buf[:n])
		b.idle += n
	}
	b.grantLocked()
}

// grantLocked grants waiters in arrival order while the head fits.
func (b *Budget) grantLocked() {
	for len(b.waiters) > 0 {
		w := b.waiters[0]
		if b.inUse+w.n > b.max {
			return
		}
		b.inUse += w.n
		b.peak = max(b.peak, b.inUse)
		b.waiters[0] = nil
		b.waiters = b.waiters[1:]
		close(w.granted)
	}
}

func (b *Budget) removeWaiterLocked(w *budgetWaiter) {
	for i, x := range b.waiters {
		if x == w {
			b.waiters = append(b.waiters[:i], b.waiters[i+1:]...)
			return
		}
	}
}
