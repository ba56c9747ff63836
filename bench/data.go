package main

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
)

// patternLen is the period of the generated content. It is a prime number of bytes, so no block or part size
// aligns with it and a tool that returned the wrong range would be caught by verification.
const patternLen = 16<<20 + 43

// pattern is incompressible content shared read-only by every writer and verifier: the byte at offset o of every
// file the bench writes is pattern[o%patternLen].
var pattern = func() []byte {
	b := make([]byte, patternLen)
	r := rand.NewChaCha8([32]byte{'s', '3', 'f', 't', 'p'})
	r.Read(b)
	return b
}()

// content is an io.Reader of size bytes of the pattern starting at offset 0.
type content struct {
	off, size int64
}

// newContent returns the first size bytes of a pattern file.
func newContent(size int64) *content { return &content{size: size} }

// Read copies the next pattern bytes into p.
func (c *content) Read(p []byte) (int, error) {
	if c.off >= c.size {
		return 0, io.EOF
	}
	if rem := c.size - c.off; int64(len(p)) > rem {
		p = p[:rem]
	}
	n := 0
	for n < len(p) {
		i := (c.off + int64(n)) % patternLen
		n += copy(p[n:], pattern[i:])
	}
	c.off += int64(n)
	return n, nil
}

// verifier checks that what is written to it is the pattern from offset 0, and counts the bytes.
type verifier struct {
	off int64
}

// Write checks p against the pattern at the current offset and advances it; on a mismatch it names the
// first differing offset.
func (v *verifier) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		i := (v.off + int64(n)) % patternLen
		m := min(len(p)-n, int(patternLen-i))
		if got, want := p[n:n+m], pattern[i:i+int64(m)]; !bytes.Equal(got, want) {
			j := 0
			for got[j] == want[j] {
				j++
			}
			return n, fmt.Errorf("content differs from what was written at offset %d", v.off+int64(n+j))
		}
		n += m
	}
	v.off += int64(n)
	return n, nil
}

// checkAt verifies p as the bytes at offset off of a pattern file.
func checkAt(p []byte, off int64) error {
	v := verifier{off: off}
	_, err := v.Write(p)
	return err
}

// patternSlice returns the size bytes at offset off of a pattern file, copied when they wrap around the period.
func patternSlice(off, size int64) []byte {
	i := off % patternLen
	if i+size <= patternLen {
		return pattern[i : i+size : i+size]
	}
	b := make([]byte, size)
	c := content{off: off, size: off + size}
	io.ReadFull(&c, b)
	return b
}
