package upload

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/s3ftp/s3ftp/internal/miniotest"
	"github.com/s3ftp/s3ftp/s3client"
)

func TestMain(m *testing.M) { miniotest.Main(m) }

// readObject returns key's content from the real server.
func readObject(t *testing.T, c s3client.Client, key string) ([]byte, s3client.ObjectInfo) {
	t.Helper()
	body, info, err := c.GetObject(context.Background(), key, 0, -1, "")
	if err != nil {
		t.Fatalf("GetObject %s: %v", key, err)
	}
	defer body.Close()
	data, err := io.ReadAll(body)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return data, info
}

func noUploadsLeft(t *testing.T, c s3client.Client) {
	t.Helper()
	ups, err := c.ListMultipartUploads(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(ups) != 0 {
		t.Fatalf("unfinished uploads left: %v", ups)
	}
}

// TestMinIOStreamsParts writes a small and a multipart object through the real SDK adapter and MinIO and
// reads them back: content, size, ETag and metadata as S3 stores them.
func TestMinIOStreamsParts(t *testing.T) {
	srv := miniotest.Shared(t)
	c := srv.Client(t, srv.NewBucket(t))
	budget := NewBudget(20 * mib)
	for _, tc := range []struct {
		key  string
		size int
	}{{"small.txt", 1000}, {"dir/big.bin", 11*mib + 333}} {
		cfg, logs := testConfig(t, budget, 2)
		w := New(c, tc.key, s3client.PutOptions{ContentType: "application/x-test", Metadata: map[string]string{"mtime": "7"}}, cfg)
		data := testData(20, tc.size)
		writeAll(t, w, data, 256<<10)
		info, err := w.Close(context.Background())
		if err != nil {
			t.Fatalf("%s: Close: %v", tc.key, err)
		}
		got, stored := readObject(t, c, tc.key)
		if !bytes.Equal(got, data) {
			t.Fatalf("%s: content differs (%d bytes read, %d written)", tc.key, len(got), len(data))
		}
		if stored.ETag != info.ETag || stored.Size != int64(tc.size) || info.Size != int64(tc.size) {
			t.Errorf("%s: Close info %+v, stored %+v", tc.key, info, stored)
		}
		if stored.ContentType != "application/x-test" || stored.Metadata["mtime"] != "7" {
			t.Errorf("%s: stored content type %q, metadata %v", tc.key, stored.ContentType, stored.Metadata)
		}
		if l := logs.Lines(); len(l) != 0 {
			t.Errorf("%s: unexpected log lines %q", tc.key, l)
		}
	}
	noUploadsLeft(t, c)
	if budget.InUse() != 0 || budget.Peak() > budget.Max() {
		t.Errorf("budget InUse %d, Peak %d, Max %d", budget.InUse(), budget.Peak(), budget.Max())
	}
}

// TestMinIOAbortLeavesNothing: an upload aborted after parts reached the server leaves no object and no
// unfinished upload on the real server.
func TestMinIOAbortLeavesNothing(t *testing.T) {
	srv := miniotest.Shared(t)
	c := srv.Client(t, srv.NewBucket(t))
	cfg, _ := testConfig(t, NewBudget(20*mib), 2)
	w := New(c, "aborted", s3client.PutOptions{}, cfg)
	writeAll(t, w, testData(21, 11*mib), mib)
	if err := w.Abort(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Close(context.Background()); !errors.Is(err, ErrAborted) {
		t.Fatalf("Close after Abort = %v, want ErrAborted", err)
	}
	if _, err := c.HeadObject(context.Background(), "aborted"); !errors.Is(err, s3client.ErrNotFound) {
		t.Fatalf("HeadObject after Abort = %v, want ErrNotFound", err)
	}
	settle(t, w)
	noUploadsLeft(t, c)
}

// TestMinIOAppend extends an existing 12 MiB object by 1 MiB with a server-side copy of the kept bytes on the
// real server, and restarts a short prefix with a ranged GET.
func TestMinIOAppend(t *testing.T) {
	srv := miniotest.Shared(t)
	c := srv.Client(t, srv.NewBucket(t))
	ctx := context.Background()
	for _, tc := range []struct {
		name       string
		size, keep int64
	}{{"append", 12 * mib, 12 * mib}, {"restart", 3 * mib, 2*mib + 5}} {
		orig := testData(40, int(tc.size))
		if _, err := c.PutObject(ctx, tc.name, orig, s3client.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		src, err := c.HeadObject(ctx, tc.name)
		if err != nil {
			t.Fatal(err)
		}
		cfg, _ := testConfig(t, NewBudget(20*mib), 2)
		w := NewFromExisting(c, tc.name, src, tc.keep, s3client.PutOptions{}, cfg)
		more := testData(41, mib)
		if _, err := w.WriteAt(ctx, more, tc.keep); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		info, err := w.Close(ctx)
		if err != nil {
			t.Fatalf("%s: Close: %v", tc.name, err)
		}
		got, stored := readObject(t, c, tc.name)
		want := append(bytes.Clone(orig[:tc.keep]), more...)
		if !bytes.Equal(got, want) || stored.ETag != info.ETag {
			t.Fatalf("%s: %d bytes stored (ETag %s), want %d (ETag %s)", tc.name, len(got), stored.ETag, len(want), info.ETag)
		}
	}
	noUploadsLeft(t, c)
}
