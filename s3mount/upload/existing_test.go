package upload

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/s3ftp/s3ftp/s3client"
	"github.com/s3ftp/s3ftp/s3client/s3fake"
)

// TestAppendCopiesServerSide appends 1 MiB to a 64 MiB object: the 64 MiB become one UploadPartCopy part and
// less than 2 MiB cross the network either way.
func TestAppendCopiesServerSide(t *testing.T) {
	f := s3fake.New()
	orig := testData(30, 64*mib)
	f.Put("log", orig)
	src, _ := f.Info("log")
	f.ResetCounters()
	cfg, logs := testConfig(t, NewBudget(20*mib), 2)
	w := NewFromExisting(f, "log", src, src.Size, s3client.PutOptions{}, cfg)
	if w.Size() != src.Size {
		t.Fatalf("Size = %d, want %d", w.Size(), src.Size)
	}
	more := testData(31, mib)
	if _, err := w.WriteAt(context.Background(), more, 0); !errors.Is(err, ErrNotSequential) {
		t.Fatalf("write into the kept (copied) prefix = %v, want ErrNotSequential", err)
	}
	n, err := w.WriteAt(context.Background(), more, src.Size)
	if err != nil || n != len(more) {
		t.Fatalf("append = %d, %v", n, err)
	}
	info, err := w.Close(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checkStored(t, f, "log", append(bytes.Clone(orig), more...), info)
	if down, up := f.BytesDownloaded(), f.BytesUploaded(); down+up >= 2*mib {
		t.Errorf("downloaded %d and uploaded %d bytes to append 1 MiB", down, up)
	}
	if f.Calls("UploadPartCopy") != 1 || f.Calls("UploadPart") != 1 || f.Calls("GetObject") != 0 {
		t.Errorf("calls: UploadPartCopy %d, UploadPart %d, GetObject %d; want 1, 1, 0",
			f.Calls("UploadPartCopy"), f.Calls("UploadPart"), f.Calls("GetObject"))
	}
	if l := logs.Lines(); len(l) != 0 {
		t.Errorf("unexpected log lines %q", l)
	}
}

// TestRestartShortPrefix keeps 600 KiB of a 1 MiB object (REST 614400 + STOR): the prefix is fetched with one
// ranged GET into the first part and the result is one PutObject.
func TestRestartShortPrefix(t *testing.T) {
	f := s3fake.New()
	orig := testData(32, mib)
	f.Put("k", orig)
	src, _ := f.Info("k")
	f.ResetCounters()
	cfg, _ := testConfig(t, NewBudget(20*mib), 2)
	const keep = 600 << 10
	w := NewFromExisting(f, "k", src, keep, s3client.PutOptions{}, cfg)
	more := testData(33, 100<<10)
	if _, err := w.WriteAt(context.Background(), more, keep); err != nil {
		t.Fatal(err)
	}
	info, err := w.Close(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checkStored(t, f, "k", append(bytes.Clone(orig[:keep]), more...), info)
	if f.BytesDownloaded() != keep || f.Calls("GetObject") != 1 || f.Calls("PutObject") != 1 {
		t.Errorf("downloaded %d bytes in %d GETs, %d PUTs; want %d, 1, 1",
			f.BytesDownloaded(), f.Calls("GetObject"), f.Calls("PutObject"), keep)
	}
}

// TestRestartNothingWritten: keeping a prefix and closing without writing stores exactly the prefix, through
// both paths (copy and GET).
func TestRestartNothingWritten(t *testing.T) {
	for _, keep := range []int64{3 * mib, 7 * mib} {
		f := s3fake.New()
		orig := testData(34, 9*mib)
		f.Put("k", orig)
		src, _ := f.Info("k")
		cfg, _ := testConfig(t, NewBudget(20*mib), 2)
		info, err := NewFromExisting(f, "k", src, keep, s3client.PutOptions{}, cfg).Close(context.Background())
		if err != nil {
			t.Fatalf("keep %d: %v", keep, err)
		}
		checkStored(t, f, "k", orig[:keep], info)
	}
}

// TestExistingChangedFails: when the source changed after it was looked at, the conditional copy or GET fails
// with ErrPrecondition, and neither the new object nor an upload is left.
func TestExistingChangedFails(t *testing.T) {
	for _, keep := range []int64{mib, 6 * mib} {
		f := s3fake.New()
		f.Put("k", testData(35, 8*mib))
		src, _ := f.Info("k")
		changed := testData(36, 8*mib)
		f.Put("k", changed)
		cfg, logs := testConfig(t, NewBudget(20*mib), 2)
		w := NewFromExisting(f, "k", src, keep, s3client.PutOptions{}, cfg)
		_, werr := w.WriteAt(context.Background(), []byte("more"), keep)
		_, cerr := w.Close(context.Background())
		if !errors.Is(cerr, s3client.ErrPrecondition) {
			t.Fatalf("keep %d: Close = %v (WriteAt %v), want ErrPrecondition", keep, cerr, werr)
		}
		settle(t, w)
		if got, _ := f.Object("k"); !bytes.Equal(got, changed) {
			t.Errorf("keep %d: the object was modified", keep)
		}
		if u := f.Uploads(); len(u) != 0 {
			t.Errorf("keep %d: uploads left %v", keep, u)
		}
		if l := logs.Lines(); len(l) != 1 {
			t.Errorf("keep %d: want one log line, got %q", keep, l)
		}
	}
}

// CopyPlan covers the range in order with parts S3 accepts before another part (5 MiB to 5 GiB), at least
// half of CopyPartSize each when the size allows, and at most MaxParts.
func TestCopyPlan(t *testing.T) {
	for _, size := range []int64{5 * mib, CopyPartSize + 1*mib, 5<<30 - 1, 5 << 30, 5<<30 + 1, 12 << 30, 5 << 40} {
		rs := CopyPlan(size)
		if len(rs) > s3client.MaxParts {
			t.Errorf("CopyPlan(%d): %d parts", size, len(rs))
		}
		next := int64(0)
		for _, r := range rs {
			if r.Off != next || r.Len < s3client.MinPartSize || r.Len > s3client.MaxPartSize ||
				(size >= CopyPartSize && r.Len < CopyPartSize/2) {
				t.Fatalf("CopyPlan(%d): part %+v after %d", size, r, next)
			}
			next += r.Len
		}
		if next != size {
			t.Errorf("CopyPlan(%d) covers %d bytes", size, next)
		}
	}
}
