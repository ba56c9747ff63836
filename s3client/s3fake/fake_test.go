package s3fake

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/s3ftp/s3ftp/s3client"
)

func md5hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

func TestPutGetHeadMetadata(t *testing.T) {
	ctx := context.Background()
	f := New()
	data := []byte("hello, world")
	etag, err := f.PutObject(ctx, "a/b.txt", data, s3client.PutOptions{ContentType: "text/plain", Metadata: map[string]string{"Mode": "0644"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := `"` + md5hex(data) + `"`; etag != want {
		t.Fatalf("etag %s, want %s", etag, want)
	}
	info, err := f.HeadObject(ctx, "a/b.txt")
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != int64(len(data)) || info.ETag != etag || info.ContentType != "text/plain" ||
		info.Metadata["mode"] != "0644" || info.LastModified.IsZero() {
		t.Fatalf("head: %+v", info)
	}
	rc, ginfo, err := f.GetObject(ctx, "a/b.txt", 7, 3, etag)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(got) != "wor" || ginfo.Size != int64(len(data)) {
		t.Fatalf("range read %q %v %+v", got, err, ginfo)
	}
	if f.BytesDownloaded() != 3 || f.BytesUploaded() != int64(len(data)) {
		t.Fatalf("bytes down %d up %d", f.BytesDownloaded(), f.BytesUploaded())
	}
	if f.Calls("GetObject") != 1 || f.Calls("HeadObject") != 1 || f.Calls("PutObject") != 1 {
		t.Fatalf("calls: %d %d %d", f.Calls("GetObject"), f.Calls("HeadObject"), f.Calls("PutObject"))
	}
}

func TestErrorKinds(t *testing.T) {
	ctx := context.Background()
	f := New()
	f.Put("k", []byte("0123456789"))
	_, err := f.HeadObject(ctx, "missing")
	assertKind(t, err, s3client.ErrNotFound)
	_, _, err = f.GetObject(ctx, "k", 0, -1, `"nope"`)
	assertKind(t, err, s3client.ErrPrecondition)
	_, _, err = f.GetObject(ctx, "k", 10, 1, "")
	assertKind(t, err, s3client.ErrInvalidRange)
	_, err = f.UploadPart(ctx, "k", "no-such-id", 1, []byte("x"))
	assertKind(t, err, s3client.ErrNoSuchUpload)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = f.HeadObject(cctx, "k")
	assertKind(t, err, s3client.ErrCanceled)
	if err := f.DeleteObject(ctx, "missing"); err != nil {
		t.Fatalf("delete missing: %v", err)
	}
	// The whole of an empty object is readable; a range of it is not.
	f.Put("empty", nil)
	rc, _, err := f.GetObject(ctx, "empty", 0, -1, "")
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	_, _, err = f.GetObject(ctx, "empty", 0, 1, "")
	assertKind(t, err, s3client.ErrInvalidRange)
}

func assertKind(t *testing.T, err, kind error) {
	t.Helper()
	var se *s3client.Error
	if !errors.As(err, &se) || !errors.Is(err, kind) {
		t.Fatalf("got %v, want *s3client.Error of kind %v", err, kind)
	}
}

func TestFaults(t *testing.T) {
	ctx := context.Background()
	f := New()
	f.FailNext("PutObject", 2, s3client.ErrUnavailable)
	for i := range 2 {
		_, err := f.PutObject(ctx, "k", []byte("x"), s3client.PutOptions{})
		assertKind(t, err, s3client.ErrUnavailable)
		if se := err.(*s3client.Error); se.Status != 503 || se.Op != "PutObject" || se.Key != "k" {
			t.Fatalf("put %d: %+v", i, se)
		}
	}
	if _, err := f.PutObject(ctx, "k", []byte("x"), s3client.PutOptions{}); err != nil {
		t.Fatalf("third put: %v", err)
	}
	if f.Calls("PutObject") != 3 || f.BytesUploaded() != 1 {
		t.Fatalf("calls %d bytes %d", f.Calls("PutObject"), f.BytesUploaded())
	}

	f.SetFault(func(op, key string, call int) error {
		if op == "UploadPart" && call == 3 {
			return fmt.Errorf("boom: %w", s3client.ErrAccessDenied)
		}
		return nil
	})
	id, err := f.CreateMultipartUpload(ctx, "m", s3client.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for n := int32(1); n <= 4; n++ {
		_, err := f.UploadPart(ctx, "m", id, n, []byte("p"))
		if (n == 3) != (err != nil) {
			t.Fatalf("part %d: %v", n, err)
		}
		if n == 3 {
			assertKind(t, err, s3client.ErrAccessDenied)
		}
	}
	f.SetFault(nil)

	// A body that breaks after 4 bytes.
	f.Put("big", bytes.Repeat([]byte("z"), 100))
	f.FailNextBody(1, 4, nil)
	rc, _, err := f.GetObject(ctx, "big", 0, -1, "")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if len(got) != 4 || !errors.Is(err, io.ErrUnexpectedEOF) || !errors.Is(err, s3client.ErrUnavailable) {
		t.Fatalf("truncated body: %d bytes, %v", len(got), err)
	}
	// The next GET is whole again.
	rc, _, _ = f.GetObject(ctx, "big", 0, -1, "")
	got, err = io.ReadAll(rc)
	if len(got) != 100 || err != nil {
		t.Fatalf("second body: %d %v", len(got), err)
	}
	// A body can fail with another kind, given as a kind or as an *s3client.Error.
	f.FailNextBody(1, 4, s3client.ErrOther)
	f.FailNextBody(1, 6, &s3client.Error{Kind: s3client.ErrAccessDenied, Status: 403})
	for _, want := range []struct {
		n    int
		kind error
	}{{4, s3client.ErrOther}, {6, s3client.ErrAccessDenied}} {
		rc, _, _ = f.GetObject(ctx, "big", 0, -1, "")
		got, err = io.ReadAll(rc)
		rc.Close()
		assertKind(t, err, want.kind)
		if len(got) != want.n || errors.Is(err, s3client.ErrUnavailable) {
			t.Fatalf("body failing with %v: %d bytes, %v", want.kind, len(got), err)
		}
	}
	// A body dies with its GetObject context.
	cctx, cancel := context.WithCancel(ctx)
	rc, _, _ = f.GetObject(cctx, "big", 0, -1, "")
	cancel()
	_, err = rc.Read(make([]byte, 10))
	assertKind(t, err, s3client.ErrCanceled)
}

func TestMultipart(t *testing.T) {
	ctx := context.Background()
	f := New()
	f.SetMinPartSize(4)
	f.Put("src", []byte("abcdefghij"))
	id, err := f.CreateMultipartUpload(ctx, "dst", s3client.PutOptions{ContentType: "x/y", Metadata: map[string]string{"a": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	if ups := f.Uploads(); len(ups) != 1 || ups[0].Key != "dst" || ups[0].UploadID != id {
		t.Fatalf("uploads: %+v", ups)
	}
	e1, err := f.UploadPartCopy(ctx, "dst", id, 1, "src", `"`+md5hex([]byte("abcdefghij"))+`"`, 2, 5)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.UploadPartCopy(ctx, "dst", id, 1, "src", `"stale"`, 2, 5)
	assertKind(t, err, s3client.ErrPrecondition)
	e2, err := f.UploadPart(ctx, "dst", id, 2, []byte("XY"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(f.String(), "upload dst parts=[1 2]") {
		t.Fatalf("state:\n%s", f)
	}
	_, err = f.CompleteMultipartUpload(ctx, "dst", id, []s3client.Part{{Number: 2, ETag: e2}, {Number: 1, ETag: `"bad"`}}, false)
	assertKind(t, err, s3client.ErrTooLarge)
	etag, err := f.CompleteMultipartUpload(ctx, "dst", id, []s3client.Part{{Number: 2, ETag: e2}, {Number: 1, ETag: e1}}, false)
	if err != nil {
		t.Fatal(err)
	}
	s1, s2 := md5.Sum([]byte("cdefg")), md5.Sum([]byte("XY"))
	if want := `"` + md5hex(append(s1[:], s2[:]...)) + `-2"`; etag != want {
		t.Fatalf("etag %s want %s", etag, want)
	}
	got, _ := f.Object("dst")
	info, _ := f.Info("dst")
	if string(got) != "cdefgXY" || info.ContentType != "x/y" || info.Metadata["a"] != "1" || len(f.Uploads()) != 0 {
		t.Fatalf("object %q info %+v uploads %v", got, info, f.Uploads())
	}

	// Parts below the minimum size are refused, except the last.
	id, _ = f.CreateMultipartUpload(ctx, "small", s3client.PutOptions{})
	p1, _ := f.UploadPart(ctx, "small", id, 1, []byte("abc"))
	p2, _ := f.UploadPart(ctx, "small", id, 2, []byte("abcd"))
	_, err = f.CompleteMultipartUpload(ctx, "small", id, []s3client.Part{{Number: 1, ETag: p1}, {Number: 2, ETag: p2}}, false)
	assertKind(t, err, s3client.ErrTooLarge)
	if err := f.AbortMultipartUpload(ctx, "small", id); err != nil {
		t.Fatal(err)
	}
	assertKind(t, f.AbortMultipartUpload(ctx, "small", id), s3client.ErrNoSuchUpload)
}

func TestCopyObject(t *testing.T) {
	ctx := context.Background()
	f := New()
	f.PutWith("a", []byte("data"), s3client.PutOptions{ContentType: "t/1", Metadata: map[string]string{"m": "1"}})
	if _, err := f.CopyObject(ctx, "a", "b", s3client.PutOptions{ContentType: "ignored"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.CopyObject(ctx, "a", "c", s3client.PutOptions{ContentType: "t/2", ReplaceMetadata: true}); err != nil {
		t.Fatal(err)
	}
	b, _ := f.Info("b")
	c, _ := f.Info("c")
	if b.ContentType != "t/1" || b.Metadata["m"] != "1" || c.ContentType != "t/2" || c.Metadata != nil {
		t.Fatalf("b %+v c %+v", b, c)
	}
	_, err := f.CopyObject(ctx, "missing", "d", s3client.PutOptions{})
	assertKind(t, err, s3client.ErrNotFound)
}

func TestListPaging(t *testing.T) {
	ctx := context.Background()
	f := New()
	for _, k := range []string{"d/a", "d/b/1", "d/b/2", "d/c", "d/e/x", "d/f", "other"} {
		f.Put(k, []byte(k))
	}
	var objs, prefixes []string
	token := ""
	pages := 0
	for {
		p, err := f.List(ctx, "d/", "/", token, 2)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(p.Objects)+len(p.CommonPrefixes) > 2 {
			t.Fatalf("page too big: %+v", p)
		}
		for _, o := range p.Objects {
			objs = append(objs, o.Key)
		}
		prefixes = append(prefixes, p.CommonPrefixes...)
		if p.NextToken == "" {
			break
		}
		token = p.NextToken
	}
	if fmt.Sprint(objs) != "[d/a d/c d/f]" || fmt.Sprint(prefixes) != "[d/b/ d/e/]" || pages != 3 {
		t.Fatalf("objs %v prefixes %v pages %d", objs, prefixes, pages)
	}
	p, err := f.List(ctx, "", "", "", 0)
	if err != nil || len(p.Objects) != 7 || p.NextToken != "" {
		t.Fatalf("flat list: %+v %v", p, err)
	}
	if fmt.Sprint(f.Keys()) != "[d/a d/b/1 d/b/2 d/c d/e/x d/f other]" {
		t.Fatalf("keys %v", f.Keys())
	}
}

func TestConcurrent(t *testing.T) {
	ctx := context.Background()
	f := New()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprintf("k%d", i)
			for range 50 {
				if _, err := f.PutObject(ctx, key, []byte(key), s3client.PutOptions{}); err != nil {
					t.Error(err)
				}
				rc, _, err := f.GetObject(ctx, key, 0, -1, "")
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.ReadAll(rc)
				rc.Close()
				_, _ = f.List(ctx, "", "", "", 0)
			}
		}()
	}
	wg.Wait()
	if f.Calls("PutObject") != 400 || f.BytesDownloaded() != 400*2 {
		t.Fatalf("calls %d down %d", f.Calls("PutObject"), f.BytesDownloaded())
	}
}
