package sftpfront

import (
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// heapAndGoroutines returns the live heap after a collection and the goroutine count.
func heapAndGoroutines() (uint64, int) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc, runtime.NumGoroutine()
}

// A client opening 1,000 session channels on one connection, 500 of them at once, gets MaxChannels (10) and
// "too many channels" for the rest: the server neither crashes nor grows (goroutines and heap stay bounded
// while the channels are held), the connection still serves SFTP on a free slot once channels close, and
// nothing is left running after the connection ends.
func TestThousandChannelsOnOneConnectionAreBounded(t *testing.T) {
	s := newTestServer(t)
	sc, _ := s.dial(alice) // one channel: the SFTP session of the dial
	heap0, g0 := heapAndGoroutines()

	var mu sync.Mutex
	var open []ssh.Channel
	refused, other := 0, 0
	try := func() {
		ch, reqs, err := sc.OpenChannel("session", nil)
		mu.Lock()
		defer mu.Unlock()
		var oce *ssh.OpenChannelError
		switch {
		case err == nil:
			go ssh.DiscardRequests(reqs)
			open = append(open, ch)
		case errors.As(err, &oce) && oce.Reason == ssh.ResourceShortage:
			refused++
		default:
			other++
			t.Errorf("open channel: %v", err)
		}
	}
	var wg sync.WaitGroup
	for i := 0; i < 500; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); try() }()
	}
	wg.Wait()
	for i := 0; i < 500; i++ {
		try()
	}
	if len(open) != 9 || refused != 991 || other != 0 {
		t.Fatalf("of 1,000 channels %d opened, %d refused, %d failed otherwise; want 9 (10 with the dial's), 991, 0",
			len(open), refused, other)
	}
	heap1, g1 := heapAndGoroutines()
	t.Logf("heap %d → %d bytes, goroutines %d → %d with the channels held", heap0, heap1, g0, g1)
	if g1-g0 > 9*6 {
		t.Errorf("goroutines grew from %d to %d for 9 open channels", g0, g1)
	}
	if heap1 > heap0+16<<20 {
		t.Errorf("heap grew from %d to %d bytes", heap0, heap1)
	}

	for _, ch := range open {
		ch.Close()
	}
	var c *sftp.Client
	deadline := time.Now().Add(10 * time.Second)
	for {
		var err error
		if c, err = sftp.NewClient(sc); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no SFTP session after the channels closed: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := c.Getwd(); err != nil {
		t.Fatalf("SFTP on the connection after the flood: %v", err)
	}
	c.Close()
	sc.Close()
	deadline = time.Now().Add(10 * time.Second)
	for {
		_, g := heapAndGoroutines()
		if g <= g0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutines: %d before the flood, %d after the connection ended", g0, g)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := s.srv.Panics(); n != 0 {
		t.Fatalf("%d panics", n)
	}
}
