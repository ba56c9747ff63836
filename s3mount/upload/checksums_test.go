package upload

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"hash/crc32"
	"testing"

	"github.com/s3ftp/s3ftp/s3client"
	"github.com/s3ftp/s3ftp/s3client/s3fake"
)

func wantSums(data []byte) Checksums {
	s, m := sha256.Sum256(data), md5.Sum(data)
	c := crc32.ChecksumIEEE(data)
	return Checksums{SHA256: hex.EncodeToString(s[:]), MD5: hex.EncodeToString(m[:]),
		CRC32: hex.EncodeToString([]byte{byte(c >> 24), byte(c >> 16), byte(c >> 8), byte(c)})}
}

// With Config.Checksums a writer stores SHA-256, MD5 and CRC32 of what it stored as the object's tags: with the
// PutObject of a small object, with one PutObjectTagging after a multipart one, and after a prefix fetched
// into its first part; a prefix copied server-side never passes through it, so that object gets none.
func TestWriterChecksums(t *testing.T) {
	ctx := context.Background()
	f := s3fake.New()
	cfg, _ := testConfig(t, NewBudget(40*mib), 2)
	cfg.Checksums, cfg.MD5 = true, true
	write := func(w *Writer, data []byte, off int64) {
		t.Helper()
		for i := 0; i < len(data); i += 1 << 20 {
			end := min(i+1<<20, len(data))
			if _, err := w.WriteAt(ctx, data[i:end], off+int64(i)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	check := func(key string, w *Writer, data []byte) {
		t.Helper()
		want := wantSums(data)
		got, ok := w.Checksums()
		tags, err := f.GetObjectTagging(ctx, key)
		stored, tagged := ChecksumsFromTags(tags)
		if !ok || got != want || err != nil || !tagged || stored != want {
			t.Errorf("%s: Checksums() = %+v, %v; tags %v, %v; want %+v", key, got, ok, tags, err, want)
		}
	}
	small := testData(1, 1000)
	w := New(f, "small", s3client.PutOptions{}, cfg)
	write(w, small, 0)
	check("small", w, small)
	if n := f.Calls("PutObjectTagging"); n != 0 {
		t.Errorf("a small object cost %d PutObjectTagging calls, want 0 (tags go with its PutObject)", n)
	}

	big := testData(2, 12*mib+5)
	w = New(f, "big", s3client.PutOptions{}, cfg)
	write(w, big, 0)
	check("big", w, big)

	// Appending to a small object: its bytes are fetched into the first part and hashed.
	more := testData(3, 7*mib)
	src, _ := f.Info("small")
	w = NewFromExisting(f, "small", src, src.Size, s3client.PutOptions{}, cfg)
	write(w, more, src.Size)
	check("small", w, append(append([]byte{}, small...), more...))

	// Appending to a large one: the prefix is copied server-side, so no checksum (and no tags) is stored.
	src, _ = f.Info("big")
	w = NewFromExisting(f, "big", src, src.Size, s3client.PutOptions{}, cfg)
	write(w, []byte("tail"), src.Size)
	if _, ok := w.Checksums(); ok {
		t.Errorf("checksums of an object whose prefix was copied server-side")
	}
	if tags, _ := f.GetObjectTagging(ctx, "big"); len(tags) != 0 {
		t.Errorf("tags of the appended big object = %v, want none (the old checksums would be wrong)", tags)
	}
}
