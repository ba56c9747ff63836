package upload

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"hash/crc32"
	"maps"

	"github.com/s3ftp/s3ftp/s3client"
)

// Checksums of an object's content, hex-encoded, as a writer computed them while the bytes streamed through.
// MD5 is "" unless asked for (Config.MD5): it costs twice SHA-256's CPU.
type Checksums struct {
	SHA256, MD5, CRC32 string
}

// The object tags that carry Checksums. Tags change without rewriting the object (one PutObjectTagging after a
// multipart upload completes; sent with the PutObject of a small one), which object metadata cannot: it is
// fixed when a multipart upload is created, before its bytes are known.
const (
	TagSHA256 = "s3ftp-sha256"
	TagMD5    = "s3ftp-md5"
	TagCRC32  = "s3ftp-crc32"
)

// Tags returns c as object tags (MD5 only when computed).
func (c Checksums) Tags() map[string]string {
	t := map[string]string{TagSHA256: c.SHA256, TagCRC32: c.CRC32}
	if c.MD5 != "" {
		t[TagMD5] = c.MD5
	}
	return t
}

// ChecksumsFromTags reads Checksums from an object's tags; false without SHA-256 and CRC32.
func ChecksumsFromTags(tags map[string]string) (Checksums, bool) {
	c := Checksums{SHA256: tags[TagSHA256], MD5: tags[TagMD5], CRC32: tags[TagCRC32]}
	return c, c.SHA256 != "" && c.CRC32 != ""
}

// hashes runs the sums over the bytes of an object in order.
type hashes struct {
	sha hash.Hash
	md  hash.Hash // nil unless MD5 was asked for
	crc hash.Hash32
}

func newHashes(withMD5 bool) *hashes {
	h := &hashes{sha: sha256.New(), crc: crc32.NewIEEE()}
	if withMD5 {
		h.md = md5.New()
	}
	return h
}

func (h *hashes) write(p []byte) {
	h.sha.Write(p)
	h.crc.Write(p)
	if h.md != nil {
		h.md.Write(p)
	}
}

func (h *hashes) sums() Checksums {
	c := Checksums{SHA256: hex.EncodeToString(h.sha.Sum(nil)), CRC32: hex.EncodeToString(h.crc.Sum(nil))}
	if h.md != nil {
		c.MD5 = hex.EncodeToString(h.md.Sum(nil))
	}
	return c
}

// hashJob is one handed-off part for the writer's hasher; done is closed once it is hashed, and the part's
// buffer goes back to the budget only after that.
type hashJob struct {
	body []byte
	done chan struct{}
}

// hasher hashes the parts of one writer in their order on its own goroutine, beside the writes that fill
// the next parts. Closing jobs ends it; finished is closed when it has hashed every job.
type hasher struct {
	h        *hashes
	jobs     chan hashJob
	finished chan struct{}
}

func startHasher(h *hashes, depth int) *hasher {
	hs := &hasher{h: h, jobs: make(chan hashJob, depth), finished: make(chan struct{})}
	go func() {
		defer close(hs.finished)
		for j := range hs.jobs {
			hs.h.write(j.body)
			close(j.done)
		}
	}()
	return hs
}

// tagger is what a writer needs to tag a completed multipart object.
type tagger interface {
	PutObjectTagging(ctx context.Context, key string, tags map[string]string) error
}

// withTags returns opts with the checksum tags added.
func withTags(opts s3client.PutOptions, c Checksums) s3client.PutOptions {
	opts.Tags = maps.Clone(opts.Tags)
	if opts.Tags == nil {
		opts.Tags = map[string]string{}
	}
	maps.Copy(opts.Tags, c.Tags())
	return opts
}
