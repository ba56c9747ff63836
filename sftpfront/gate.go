package sftpfront

// The handle gate: READ and WRITE wait for the OPENs before them to be answered.
//
// pkg/sftp's request server runs OPEN on its command worker and READ/WRITE on a pool of other workers, and
// hands out handles in sequence ("1", "2", ...). A client that sends a READ or WRITE on the handle an OPEN
// will get, before the OPEN's answer, makes pkg/sftp read the request's state while the OPEN is still
// writing it: a data race inside pkg/sftp (found by FuzzSFTPPackets). Honest clients never do this: they need
// the handle from the answer first. gatedChannel sits between the channel and the request server: it reads the
// client's stream one packet at a time, and a READ or WRITE packet is handed on only once every OPEN and
// OPENDIR before it was answered (the server's HANDLE or STATUS reply with its id passed through Write, which
// pkg/sftp sends after the OPEN completed). For honest clients the gate never waits. At most one packet
// (maxMsgLength) is held per channel.

import (
	"encoding/binary"
	"io"
	"sync"

	"golang.org/x/crypto/ssh"
)

// SFTP packet types the gate looks at.
const (
	fxpOpen    = 3
	fxpRead    = 5
	fxpWrite   = 6
	fxpOpendir = 11
	fxpStatus  = 101
	fxpHandle  = 102
)

// gateMaxPacket is the largest packet the gate parses (pkg/sftp's limit plus its header); a longer one is
// handed on unparsed, and pkg/sftp refuses it.
const gateMaxPacket = 256<<10 + 1024

// gatedChannel is an ssh.Channel whose Read holds READ and WRITE packets until the OPENs before them were
// answered (see the section comment).
type gatedChannel struct {
	ssh.Channel

	// Read side: only pkg/sftp's reading goroutine.
	in      []byte // bytes of the current packet not yet handed on
	passing int64  // bytes to hand on unparsed (a packet longer than gateMaxPacket)

	// Write side: pkg/sftp writes under its own lock.
	hdr  []byte // the first bytes (up to 9) of the reply being written
	left int64  // bytes of the reply being written after hdr

	mu   sync.Mutex
	cond *sync.Cond
	// Guarded by mu.
	pending map[uint32]int // OPEN and OPENDIR ids not yet answered
	closed  bool
}

func newGatedChannel(ch ssh.Channel) *gatedChannel {
	g := &gatedChannel{Channel: ch, pending: make(map[uint32]int)}
	g.cond = sync.NewCond(&g.mu)
	return g
}

// Read hands on the client's stream, one packet at a time.
func (g *gatedChannel) Read(p []byte) (int, error) {
	if len(g.in) == 0 && g.passing == 0 {
		if err := g.next(); err != nil && len(g.in) == 0 {
			return 0, err
		}
	}
	if g.passing > 0 {
		if int64(len(p)) > g.passing {
			p = p[:g.passing]
		}
		n, err := g.Channel.Read(p)
		g.passing -= int64(n)
		return n, err
	}
	n := copy(p, g.in)
	g.in = g.in[n:]
	return n, nil
}

// next reads the next packet into g.in, waiting for pending OPENs first when it is a READ or WRITE. On a short
// stream g.in holds what there was and the error is returned.
func (g *gatedChannel) next() error {
	var hdr [4]byte
	n, err := io.ReadFull(g.Channel, hdr[:])
	g.in = append(g.in[:0], hdr[:n]...)
	if err != nil {
		return err
	}
	length := int64(binary.BigEndian.Uint32(hdr[:]))
	if length > gateMaxPacket || length < 5 {
		g.passing = length
		return nil
	}
	g.in = append(g.in, make([]byte, length)...)
	n, err = io.ReadFull(g.Channel, g.in[4:])
	g.in = g.in[:4+n]
	if err != nil {
		return err
	}
	typ, id := g.in[4], binary.BigEndian.Uint32(g.in[5:9])
	g.mu.Lock()
	defer g.mu.Unlock()
	switch typ {
	case fxpOpen, fxpOpendir:
		g.pending[id]++
	case fxpRead, fxpWrite:
		for len(g.pending) > 0 && !g.closed {
			g.cond.Wait()
		}
	}
	return nil
}

// Write passes the server's replies on, noting the answers to pending OPENs.
func (g *gatedChannel) Write(p []byte) (int, error) {
	g.scan(p)
	return g.Channel.Write(p)
}

// scan follows the reply stream's packet boundaries and releases the OPEN each HANDLE or STATUS answers.
func (g *gatedChannel) scan(p []byte) {
	for len(p) > 0 {
		if g.left > 0 {
			n := min(int64(len(p)), g.left)
			g.left -= n
			p = p[n:]
			continue
		}
		n := min(len(p), 9-len(g.hdr))
		g.hdr = append(g.hdr, p[:n]...)
		p = p[n:]
		if len(g.hdr) < 9 {
			return
		}
		length := int64(binary.BigEndian.Uint32(g.hdr[:4]))
		typ, id := g.hdr[4], binary.BigEndian.Uint32(g.hdr[5:9])
		g.hdr = g.hdr[:0]
		g.left = max(length-5, 0)
		if typ == fxpHandle || typ == fxpStatus {
			g.mu.Lock()
			if g.pending[id] > 0 {
				if g.pending[id]--; g.pending[id] == 0 {
					delete(g.pending, id)
				}
				g.cond.Broadcast()
			}
			g.mu.Unlock()
		}
	}
}

// Close closes the channel and releases a waiting Read.
func (g *gatedChannel) Close() error {
	g.mu.Lock()
	g.closed = true
	g.cond.Broadcast()
	g.mu.Unlock()
	return g.Channel.Close()
}
