package s3client_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3ftp/s3ftp/internal/miniotest"
	"github.com/s3ftp/s3ftp/s3client"
	"github.com/s3ftp/s3ftp/s3client/s3fake"
)

func TestMain(m *testing.M) { miniotest.Main(m) }

func assertKind(t *testing.T, err, kind error) {
	t.Helper()
	var se *s3client.Error
	if !errors.As(err, &se) || !errors.Is(err, kind) {
		t.Fatalf("got %v, want *s3client.Error of kind %v", err, kind)
	}
}

func quotedMD5(b []byte) string {
	s := md5.Sum(b)
	return `"` + hex.EncodeToString(s[:]) + `"`
}

func read(t *testing.T, c s3client.Client, key string, off, n int64, ifMatch string) ([]byte, s3client.ObjectInfo) {
	t.Helper()
	rc, info, err := c.GetObject(context.Background(), key, off, n, ifMatch)
	if err != nil {
		t.Fatalf("get %s [%d,+%d): %v", key, off, n, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return b, info
}

func TestSDKObjects(t *testing.T) {
	srv := miniotest.Shared(t)
	c := srv.Client(t, srv.NewBucket(t))
	ctx := context.Background()
	if err := c.HeadBucket(ctx); err != nil {
		t.Fatal(err)
	}
	data := []byte("0123456789abcdef")
	key := "dir/a b+c ü?x#y"
	etag, err := c.PutObject(ctx, key, data, s3client.PutOptions{ContentType: "text/x-test", Metadata: map[string]string{"mode": "0640"}})
	if err != nil {
		t.Fatal(err)
	}
	if etag != quotedMD5(data) {
		t.Fatalf("etag %s, want %s", etag, quotedMD5(data))
	}
	info, err := c.HeadObject(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != 16 || info.ETag != etag || info.ContentType != "text/x-test" || info.Metadata["mode"] != "0640" ||
		time.Since(info.LastModified) > time.Hour {
		t.Fatalf("head: %+v", info)
	}

	if b, info := read(t, c, key, 0, -1, ""); !bytes.Equal(b, data) || info.Size != 16 {
		t.Fatalf("whole: %q %+v", b, info)
	}
	if b, info := read(t, c, key, 4, 3, etag); string(b) != "456" || info.Size != 16 || info.ETag != etag {
		t.Fatalf("range: %q %+v", b, info)
	}
	if b, _ := read(t, c, key, 10, -1, ""); string(b) != "abcdef" {
		t.Fatalf("tail: %q", b)
	}
	if b, _ := read(t, c, key, 12, 100, ""); string(b) != "cdef" {
		t.Fatalf("clipped: %q", b)
	}
	if b, info := read(t, c, key, 3, 0, etag); len(b) != 0 || info.Size != 16 {
		t.Fatalf("empty range: %q %+v", b, info)
	}
	_, _, err = c.GetObject(ctx, key, 0, -1, `"0000"`)
	assertKind(t, err, s3client.ErrPrecondition)
	_, _, err = c.GetObject(ctx, key, 16, 1, "")
	assertKind(t, err, s3client.ErrInvalidRange)
	_, _, err = c.GetObject(ctx, "missing", 0, -1, "")
	assertKind(t, err, s3client.ErrNotFound)
	_, err = c.HeadObject(ctx, "missing")
	assertKind(t, err, s3client.ErrNotFound)

	if _, err := c.PutObject(ctx, "empty", nil, s3client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if b, info := read(t, c, "empty", 0, -1, ""); len(b) != 0 || info.Size != 0 {
		t.Fatalf("empty object: %q %+v", b, info)
	}

	// Copies keep or replace the metadata; keys with reserved characters survive the copy source encoding.
	if _, err := c.CopyObject(ctx, key, "copy/keep", s3client.PutOptions{ContentType: "ignored/x"}); err != nil {
		t.Fatal(err)
	}
	cetag, err := c.CopyObject(ctx, key, "copy/replace", s3client.PutOptions{ContentType: "new/x", Metadata: map[string]string{"k": "v"}, ReplaceMetadata: true})
	if err != nil {
		t.Fatal(err)
	}
	keep, _ := c.HeadObject(ctx, "copy/keep")
	repl, _ := c.HeadObject(ctx, "copy/replace")
	if keep.ContentType != "text/x-test" || keep.Metadata["mode"] != "0640" || keep.Size != 16 {
		t.Fatalf("copy keep: %+v", keep)
	}
	if repl.ContentType != "new/x" || repl.Metadata["k"] != "v" || repl.Metadata["mode"] != "" || repl.ETag != cetag {
		t.Fatalf("copy replace: %+v (etag %s)", repl, cetag)
	}
	_, err = c.CopyObject(ctx, "missing", "x", s3client.PutOptions{})
	assertKind(t, err, s3client.ErrNotFound)

	if err := c.DeleteObject(ctx, "copy/keep"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteObject(ctx, "copy/keep"); err != nil {
		t.Fatalf("deleting a missing key: %v", err)
	}
	_, err = c.HeadObject(ctx, "copy/keep")
	assertKind(t, err, s3client.ErrNotFound)
}

// TestSDKListMatchesFake pages through the same keys on MinIO and on the fake and expects identical results.
func TestSDKListMatchesFake(t *testing.T) {
	srv := miniotest.Shared(t)
	c := srv.Client(t, srv.NewBucket(t))
	f := s3fake.New()
	ctx := context.Background()
	keys := []string{"d/a", "d/b/1", "d/b/2", "d/c", "d/e/x", "d/e/y/z", "d/f", "d0", "other/q"}
	for _, k := range keys {
		if _, err := c.PutObject(ctx, k, []byte(k), s3client.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		f.Put(k, []byte(k))
	}
	walk := func(cl s3client.Client, prefix, delim string, max int32) string {
		var out []string
		token := ""
		for {
			p, err := cl.List(ctx, prefix, delim, token, max)
			if err != nil {
				t.Fatal(err)
			}
			if max > 0 && int32(len(p.Objects)+len(p.CommonPrefixes)) > max {
				t.Fatalf("page of %d entries exceeds %d", len(p.Objects)+len(p.CommonPrefixes), max)
			}
			for _, o := range p.Objects {
				if o.ETag != quotedMD5([]byte(o.Key)) || o.Size != int64(len(o.Key)) || o.LastModified.IsZero() {
					t.Fatalf("listed object %+v", o)
				}
				out = append(out, o.Key)
			}
			for _, cp := range p.CommonPrefixes {
				out = append(out, cp+"(prefix)")
			}
			if p.NextToken == "" {
				break
			}
			token = p.NextToken
		}
		slices.Sort(out)
		return strings.Join(out, " ")
	}
	for _, tc := range []struct {
		prefix, delim string
		max           int32
	}{{"d/", "/", 2}, {"d/", "/", 1}, {"", "/", 0}, {"d", "/", 3}, {"d/", "", 2}, {"d/e/", "/", 1}, {"nothing", "/", 0}} {
		real, fake := walk(c, tc.prefix, tc.delim, tc.max), walk(f, tc.prefix, tc.delim, tc.max)
		if real != fake {
			t.Errorf("List(%q, %q, max %d):\nminio %s\nfake  %s", tc.prefix, tc.delim, tc.max, real, fake)
		}
	}
}

func TestSDKMultipart(t *testing.T) {
	srv := miniotest.Shared(t)
	c := srv.Client(t, srv.NewBucket(t))
	ctx := context.Background()
	src := bytes.Repeat([]byte("0123456789"), 1<<20) // 10 MiB
	srcETag, err := c.PutObject(ctx, "src", src, s3client.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	id, err := c.CreateMultipartUpload(ctx, "dst", s3client.PutOptions{ContentType: "app/x", Metadata: map[string]string{"m": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	ups, err := c.ListMultipartUploads(ctx, "d")
	if err != nil || len(ups) != 1 || ups[0].Key != "dst" || ups[0].UploadID != id {
		t.Fatalf("uploads %+v %v", ups, err)
	}
	p1, err := c.UploadPartCopy(ctx, "dst", id, 1, "src", srcETag, 1, s3client.MinPartSize)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.UploadPartCopy(ctx, "dst", id, 1, "src", `"00000000000000000000000000000000"`, 0, s3client.MinPartSize)
	assertKind(t, err, s3client.ErrPrecondition)
	tail := []byte("tail")
	p2, err := c.UploadPart(ctx, "dst", id, 2, tail)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CompleteMultipartUpload(ctx, "dst", id, []s3client.Part{{Number: 1, ETag: p1}, {Number: 2, ETag: `"ffffffffffffffffffffffffffffffff"`}}, false)
	assertKind(t, err, s3client.ErrTooLarge)
	etag, err := c.CompleteMultipartUpload(ctx, "dst", id, []s3client.Part{{Number: 2, ETag: p2}, {Number: 1, ETag: p1}}, false)
	if err != nil {
		t.Fatal(err)
	}
	want := append(bytes.Clone(src[1:1+s3client.MinPartSize]), tail...)
	s1, s2 := md5.Sum(want[:s3client.MinPartSize]), md5.Sum(tail)
	sum := md5.Sum(append(s1[:], s2[:]...))
	if wantETag := fmt.Sprintf(`"%s-2"`, hex.EncodeToString(sum[:])); etag != wantETag {
		t.Fatalf("multipart etag %s, want %s", etag, wantETag)
	}
	got, info := read(t, c, "dst", 0, -1, etag)
	if !bytes.Equal(got, want) || info.ContentType != "app/x" {
		t.Fatalf("assembled object: %d bytes, info %+v", len(got), info)
	}
	if ups, _ := c.ListMultipartUploads(ctx, ""); len(ups) != 0 {
		t.Fatalf("uploads left: %+v", ups)
	}

	// A part below the minimum size that is not the last one is refused.
	id, _ = c.CreateMultipartUpload(ctx, "small", s3client.PutOptions{})
	a, _ := c.UploadPart(ctx, "small", id, 1, []byte("abc"))
	b, _ := c.UploadPart(ctx, "small", id, 2, []byte("def"))
	_, err = c.CompleteMultipartUpload(ctx, "small", id, []s3client.Part{{Number: 1, ETag: a}, {Number: 2, ETag: b}}, false)
	assertKind(t, err, s3client.ErrTooLarge)
	if err := c.AbortMultipartUpload(ctx, "small", id); err != nil {
		t.Fatal(err)
	}
	_, err = c.UploadPart(ctx, "small", id, 3, []byte("x"))
	assertKind(t, err, s3client.ErrNoSuchUpload)
	_, err = c.UploadPart(ctx, "small", "bm8tc3VjaC11cGxvYWQ", 1, []byte("x"))
	assertKind(t, err, s3client.ErrNoSuchUpload)
}

func TestSDKAuthAndBucketErrors(t *testing.T) {
	srv := miniotest.Shared(t)
	bucket := srv.NewBucket(t)
	ctx := context.Background()

	cfg := srv.Config(bucket)
	cfg.SecretKey = "wrong-secret-key"
	bad, err := s3client.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.HeadObject(ctx, "x")
	assertKind(t, err, s3client.ErrAccessDenied)
	_, err = bad.PutObject(ctx, "x", []byte("x"), s3client.PutOptions{})
	assertKind(t, err, s3client.ErrAccessDenied)

	missing := srv.Client(t, "no-such-bucket-s3ftp")
	assertKind(t, missing.HeadBucket(ctx), s3client.ErrNotFound)
	_, err = missing.List(ctx, "", "/", "", 0)
	assertKind(t, err, s3client.ErrNotFound)

	c := srv.Client(t, bucket)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = c.HeadObject(cctx, "x")
	assertKind(t, err, s3client.ErrCanceled)

	// The observer sees every call once, with its final status.
	var mu sync.Mutex
	var seen []string
	cfg = srv.Config(bucket)
	cfg.Observer = func(op string, status int, n int64, err error) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, fmt.Sprintf("%s %d %d %v", op, status, n, s3client.KindOf(err)))
	}
	obs, err := s3client.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = obs.PutObject(ctx, "o", []byte("12345"), s3client.PutOptions{})
	_, _ = obs.HeadObject(ctx, "nope")
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(seen, "; "); got != "PutObject 200 5 <nil>; HeadObject 404 0 not found" {
		t.Fatalf("observer saw %q", got)
	}
}

func TestSDKServerDown(t *testing.T) {
	srv := miniotest.Start(t)
	bucket := srv.NewBucket(t)
	ctx := context.Background()
	cfg := srv.Config(bucket)
	cfg.MaxAttempts = 2
	cfg.MaxBackoff = 10 * time.Millisecond
	c, err := s3client.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("x"), 64<<20)
	if _, err := c.PutObject(ctx, "big", big, s3client.PutOptions{}); err != nil {
		t.Fatal(err)
	}

	// A GET cut off mid-stream fails with ErrUnavailable, not a silent short read.
	rc, _, err := c.GetObject(ctx, "big", 0, -1, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(rc, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, rc)
	rc.Close()
	if int64(n)+1 >= int64(len(big)) {
		t.Fatalf("the whole body arrived (%d bytes) although the server was killed", n+1)
	}
	assertKind(t, err, s3client.ErrUnavailable)

	// With the server gone, requests fail with ErrUnavailable after the bounded retries.
	_, err = c.HeadObject(ctx, "big")
	assertKind(t, err, s3client.ErrUnavailable)
	_, err = c.PutObject(ctx, "y", []byte("y"), s3client.PutOptions{})
	assertKind(t, err, s3client.ErrUnavailable)

	// Restart keeps the endpoint and the data.
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	info, err := c.HeadObject(ctx, "big")
	if err != nil || info.Size != int64(len(big)) {
		t.Fatalf("after restart: %+v %v", info, err)
	}
}

func TestNewValidates(t *testing.T) {
	ctx := context.Background()
	for _, cfg := range []s3client.Config{
		{},
		{Bucket: "b", Endpoint: "ftp://x"},
		{Bucket: "b", SSE: "rot13"},
		{Bucket: "b", SSEKMSKeyID: "k"},
		{Bucket: "b", AccessKey: "a"},
	} {
		if _, err := s3client.New(ctx, cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}

// TestSDKListMultipartUploadsPrefix checks the prefix contract, which MinIO alone does not honour.
func TestSDKListMultipartUploadsPrefix(t *testing.T) {
	srv := miniotest.Shared(t)
	c := srv.Client(t, srv.NewBucket(t))
	ctx := context.Background()
	for _, k := range []string{"dir/obj", "dir/sub/x", "other"} {
		if _, err := c.CreateMultipartUpload(ctx, k, s3client.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for prefix, want := range map[string]string{"": "dir/obj dir/sub/x other", "dir/": "dir/obj dir/sub/x", "d": "dir/obj dir/sub/x",
		"dir/obj": "dir/obj", "o": "other", "x": ""} {
		ups, err := c.ListMultipartUploads(ctx, prefix)
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, u := range ups {
			keys = append(keys, u.Key)
		}
		slices.Sort(keys)
		if got := strings.Join(keys, " "); got != want {
			t.Errorf("prefix %q: %q, want %q", prefix, got, want)
		}
	}
}

// TestSDKRangesMatchFake reads the same ranges from MinIO and from the fake and expects the same bytes or the
// same error kind.
func TestSDKRangesMatchFake(t *testing.T) {
	srv := miniotest.Shared(t)
	c := srv.Client(t, srv.NewBucket(t))
	f := s3fake.New()
	ctx := context.Background()
	for key, data := range map[string][]byte{"ten": []byte("0123456789"), "empty": nil} {
		if _, err := c.PutObject(ctx, key, data, s3client.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		f.Put(key, data)
	}
	get := func(cl s3client.Client, key string, off, n int64) string {
		rc, info, err := cl.GetObject(ctx, key, off, n, "")
		if err != nil {
			return "error " + s3client.KindOf(err).Error()
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			return "read error " + s3client.KindOf(err).Error()
		}
		return fmt.Sprintf("%q size=%d", b, info.Size)
	}
	for _, tc := range []struct {
		key    string
		off, n int64
	}{
		{"ten", 0, -1}, {"ten", 0, 0}, {"ten", 0, 5}, {"ten", 5, -1}, {"ten", 9, 100}, {"ten", 10, -1},
		{"ten", 10, 1}, {"ten", 10, 0}, {"ten", 11, 0}, {"ten", -1, 2},
		{"empty", 0, -1}, {"empty", 0, 0}, {"empty", 0, 1}, {"empty", 1, -1},
		{"missing", 0, -1}, {"missing", 0, 0},
	} {
		real, fake := get(c, tc.key, tc.off, tc.n), get(f, tc.key, tc.off, tc.n)
		if real != fake {
			t.Errorf("GetObject(%s, %d, %d): minio %s, fake %s", tc.key, tc.off, tc.n, real, fake)
		}
	}
}

// TestSDKWriteDefaults checks that the configured storage class and canned ACL reach every kind of write.
func TestSDKWriteDefaults(t *testing.T) {
	srv := miniotest.Shared(t)
	bucket := srv.NewBucket(t)
	ctx := context.Background()
	cfg := srv.Config(bucket)
	cfg.StorageClass = "REDUCED_REDUNDANCY"
	cfg.ACL = "private"
	c, err := s3client.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(ctx, "put", []byte("p"), s3client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CopyObject(ctx, "put", "copy", s3client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	id, err := c.CreateMultipartUpload(ctx, "multi", s3client.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.UploadPart(ctx, "multi", id, 1, []byte("m"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CompleteMultipartUpload(ctx, "multi", id, []s3client.Part{{Number: 1, ETag: p}}, false); err != nil {
		t.Fatal(err)
	}
	raw := s3.New(s3.Options{
		BaseEndpoint: aws.String(srv.Endpoint), Region: "us-east-1", UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, ""),
	})
	for _, key := range []string{"put", "copy", "multi"} {
		out, err := raw.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		if out.StorageClass != types.StorageClassReducedRedundancy {
			t.Errorf("%s: storage class %q", key, out.StorageClass)
		}
	}
}

// resetPUTs listens on loopback and forwards connections to target, except those whose first request is a
// PUT: those are reset once their headers arrived, as S3 does to a conditional PUT it refuses before reading
// the body.
func resetPUTs(t *testing.T, target string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				first, err := br.Peek(4)
				if err != nil {
					return
				}
				if string(first) == "PUT " {
					if _, err := http.ReadRequest(br); err == nil {
						c.(*net.TCPConn).SetLinger(0)
					}
					return
				}
				up, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer up.Close()
				go io.Copy(up, br)
				io.Copy(c, up)
			}()
		}
	}()
	return l.Addr().String()
}

// A conditional PUT whose answer is lost (the connection reset on every attempt) is settled by one HEAD: an
// object another writer stored makes it ErrPrecondition; our own object makes it a success; no object leaves
// the error as it was.
func TestSDKConditionalPutAnswerLost(t *testing.T) {
	srv := miniotest.Shared(t)
	bucket := srv.NewBucket(t)
	direct := srv.Client(t, bucket)
	ctx := context.Background()
	cfg := srv.Config(bucket)
	u, err := url.Parse(cfg.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Endpoint = "http://" + resetPUTs(t, u.Host)
	cfg.MaxAttempts = 2
	cfg.MaxBackoff = time.Millisecond
	// A new client per case: its PUT is the first request of a connection, which the proxy resets.
	put := func(key string, body []byte) (string, error) {
		c, err := s3client.New(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return c.PutObject(ctx, key, body, s3client.PutOptions{IfNoneMatch: true})
	}
	mine := []byte("mine")
	_, err = put("none", mine)
	assertKind(t, err, s3client.ErrUnavailable)

	if _, err := direct.PutObject(ctx, "theirs", []byte("theirs"), s3client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = put("theirs", mine)
	assertKind(t, err, s3client.ErrPrecondition)

	etag, err := direct.PutObject(ctx, "ours", mine, s3client.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := put("ours", mine)
	if err != nil || got != etag {
		t.Errorf("conditional PUT of the bytes already stored = %q, %v; want success with %q", got, err, etag)
	}
}

// Object tags through the SDK adapter against MinIO: sent with PutObject, replaced by PutObjectTagging, read by
// GetObjectTagging; a missing object is ErrNotFound; the fake answers the same.
func TestSDKObjectTagging(t *testing.T) {
	srv := miniotest.Shared(t)
	ctx := context.Background()
	for name, c := range map[string]s3client.Client{"sdk": srv.Client(t, srv.NewBucket(t)), "fake": s3fake.New()} {
		tg := c.(s3client.Tagger)
		if _, err := c.PutObject(ctx, "t", []byte("x"), s3client.PutOptions{Tags: map[string]string{"s3ftp-sha256": "abc", "k": "v w"}}); err != nil {
			t.Fatal(err)
		}
		if tags, err := tg.GetObjectTagging(ctx, "t"); err != nil || tags["s3ftp-sha256"] != "abc" || tags["k"] != "v w" || len(tags) != 2 {
			t.Errorf("%s: tags after PutObject = %v, %v", name, tags, err)
		}
		if err := tg.PutObjectTagging(ctx, "t", map[string]string{"only": "this"}); err != nil {
			t.Fatalf("%s: PutObjectTagging: %v", name, err)
		}
		if tags, err := tg.GetObjectTagging(ctx, "t"); err != nil || len(tags) != 1 || tags["only"] != "this" {
			t.Errorf("%s: tags after PutObjectTagging = %v, %v", name, tags, err)
		}
		_, err := tg.GetObjectTagging(ctx, "missing")
		assertKind(t, err, s3client.ErrNotFound)
	}
}
