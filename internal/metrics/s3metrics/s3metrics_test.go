package s3metrics

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/s3ftp/s3ftp/internal/metrics"
	"github.com/s3ftp/s3ftp/s3client"
	"github.com/s3ftp/s3ftp/s3client/s3fake"
)

func scrape(r *metrics.Registry) string {
	var b bytes.Buffer
	r.WriteTo(&b)
	return b.String()
}

func TestWireChainsObserver(t *testing.T) {
	reg := metrics.NewRegistry()
	var seen []string
	cfg := s3client.DefaultConfig("b")
	cfg.Observer = func(op string, status int, bytes int64, err error) { seen = append(seen, op) }
	var retried []string
	cfg.RetryObserver = func(op string) { retried = append(retried, op) }
	Wire(reg, &cfg)
	cfg.Observer("PutObject", 200, 10, nil)
	cfg.Observer("GetObject", 503, 0, errors.New("slow down"))
	cfg.RetryObserver("GetObject")
	out := scrape(reg)
	for _, want := range []string{`s3mount_s3_requests_total{op="PutObject",status="200"} 1`,
		`s3mount_s3_requests_total{op="GetObject",status="503"} 1`, "s3mount_bytes_uploaded_total 10",
		"s3mount_s3_retries_total 1"} {
		if !strings.Contains(out, "\n"+want+"\n") {
			t.Errorf("scrape lacks %q:\n%s", want, out)
		}
	}
	if strings.Join(seen, ",") != "PutObject,GetObject" || strings.Join(retried, ",") != "GetObject" {
		t.Fatalf("the earlier observers saw %v and retries %v", seen, retried)
	}

	// Without an earlier observer the metrics' own is installed.
	cfg2 := s3client.DefaultConfig("b")
	Wire(metrics.NewRegistry(), &cfg2)
	if cfg2.Observer == nil || cfg2.RetryObserver == nil {
		t.Fatal("no observer installed")
	}
}

func TestClientCountsPartsInFlight(t *testing.T) {
	reg := metrics.NewRegistry()
	m := metrics.NewS3Mount(reg)
	fake := s3fake.New()
	fake.SetMinPartSize(1)
	entered := make(chan struct{})
	release := make(chan struct{})
	fake.SetFault(func(op, key string, call int) error {
		if op == "UploadPart" && call == 1 {
			close(entered)
			<-release
		}
		return nil
	})
	c := Client(fake, m)
	ctx := context.Background()
	id, err := c.CreateMultipartUpload(ctx, "k", s3client.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.UploadPart(ctx, "k", id, 1, []byte("part"))
		done <- err
	}()
	<-entered
	if v := m.PartsInFlight.Value(); v != 1 {
		t.Fatalf("parts in flight during UploadPart = %d, want 1", v)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if v := m.PartsInFlight.Value(); v != 0 {
		t.Fatalf("parts in flight after UploadPart = %d, want 0", v)
	}
	// A failing part is released too.
	fake.FailNext("UploadPart", 1, errors.New("boom"))
	if _, err := c.UploadPart(ctx, "k", id, 2, []byte("x")); err == nil {
		t.Fatal("injected failure not returned")
	}
	if v := m.PartsInFlight.Value(); v != 0 {
		t.Fatalf("parts in flight after a failed UploadPart = %d, want 0", v)
	}
	// Other methods reach the wrapped client.
	if fake.Calls("CreateMultipartUpload") != 1 || fake.Calls("UploadPart") != 2 {
		t.Fatalf("calls: %s", fake)
	}
}
