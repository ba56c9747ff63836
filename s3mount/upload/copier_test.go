package upload

import (
	"context"
	"maps"
	"testing"

	"github.com/s3ftp/s3ftp/s3client"
	"github.com/s3ftp/s3ftp/s3client/s3fake"
)

// The multipart copy used above 5 GiB, exercised with 5 MiB parts: byte-identical, content type and metadata
// kept, every part conditional on the source, and a failing part leaves neither an object nor an upload.
func TestCopierMultipart(t *testing.T) {
	f := s3fake.New()
	data := testData(3, 12*mib+5)
	f.PutWith("src", data, s3client.PutOptions{ContentType: "text/plain", Metadata: map[string]string{"mode": "33188"}})
	src, _ := f.Info("src")
	cfg, _ := testConfig(t, nil, 1)
	c := &Copier{C: f, Aborts: cfg.Aborts, Log: cfg.Log}
	plan := planWith(src.Size, 5*mib)
	if _, err := c.copyMultipart(context.Background(), src, "dst", s3client.PutOptions{ContentType: src.ContentType, Metadata: src.Metadata}, plan); err != nil {
		t.Fatal(err)
	}
	got, _ := f.Object("dst")
	info, _ := f.Info("dst")
	if string(got) != string(data) || info.ContentType != "text/plain" || info.Metadata["mode"] != "33188" {
		t.Errorf("copy: equal=%v, %+v", string(got) == string(data), info)
	}
	if n := f.Calls("UploadPartCopy"); n != 3 {
		t.Errorf("UploadPartCopy calls = %d, want 3", n)
	}
	if n := f.BytesCopied(); n != src.Size {
		t.Errorf("bytes copied = %d, want %d", n, src.Size)
	}
	f.FailNext("UploadPartCopy", 1, s3client.ErrUnavailable)
	if _, err := c.copyMultipart(context.Background(), src, "dst2", s3client.PutOptions{}, plan); err == nil {
		t.Fatal("copy with a failing part succeeded")
	}
	if err := c.Aborts.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.Object("dst2"); ok || len(f.Uploads()) != 0 {
		t.Errorf("failed copy left %s", f)
	}
}

// A metadata replacement of an object over 5 GiB is a multipart copy onto itself (5 MiB parts here): content
// unchanged, the new metadata, the returned ETag the object's.
func TestCopierReplacesMetadataMultipart(t *testing.T) {
	f := s3fake.New()
	data := testData(4, 11*mib+3)
	f.PutWith("big", data, s3client.PutOptions{ContentType: "video/mp4", Metadata: map[string]string{"uid": "7"}})
	src, _ := f.Info("big")
	cfg, _ := testConfig(t, nil, 1)
	c := &Copier{C: f, Aborts: cfg.Aborts, Log: cfg.Log}
	opts := s3client.PutOptions{ContentType: src.ContentType, Metadata: map[string]string{"uid": "7", "mtime": "5"}}
	etag, err := c.copyMultipart(context.Background(), src, "big", opts, planWith(src.Size, 5*mib))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := f.Object("big")
	info, _ := f.Info("big")
	if string(got) != string(data) || info.ContentType != "video/mp4" || !maps.Equal(info.Metadata, opts.Metadata) ||
		info.ETag != etag {
		t.Errorf("after the copy: equal=%v %+v (etag returned %s)", string(got) == string(data), info, etag)
	}
}

// Up to 5 GiB a copy is one CopyObject: a rename keeps the source's metadata, a replacement sets opts'.
func TestCopierSingleRequest(t *testing.T) {
	f := s3fake.New()
	f.PutWith("a", []byte("abc"), s3client.PutOptions{ContentType: "text/csv", Metadata: map[string]string{"mode": "33152"}})
	src, _ := f.Info("a")
	c := &Copier{C: f}
	if _, err := c.Copy(context.Background(), src, "b", s3client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if info, _ := f.Info("b"); info.Metadata["mode"] != "33152" || info.ContentType != "text/csv" {
		t.Errorf("renamed copy: %+v", info)
	}
	opts := s3client.PutOptions{ContentType: "text/csv", Metadata: map[string]string{"mode": "33188"}, ReplaceMetadata: true}
	if _, err := c.Copy(context.Background(), src, "a", opts); err != nil {
		t.Fatal(err)
	}
	if info, _ := f.Info("a"); info.Metadata["mode"] != "33188" {
		t.Errorf("replaced: %+v", info)
	}
	if n := f.Calls("CopyObject"); n != 2 || f.Calls("UploadPartCopy") != 0 {
		t.Errorf("CopyObject calls = %d, UploadPartCopy %d; want 2 and 0", n, f.Calls("UploadPartCopy"))
	}
}

// planWith splits [0, size) into parts of ps bytes, the last one shorter: a copy plan with small parts.
func planWith(size, ps int64) []ByteRange {
	var rs []ByteRange
	for off := int64(0); off < size; off += ps {
		rs = append(rs, ByteRange{Off: off, Len: min(ps, size-off)})
	}
	return rs
}
