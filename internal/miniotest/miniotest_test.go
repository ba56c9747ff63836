package miniotest

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/s3ftp/s3ftp/s3client"
)

func TestMain(m *testing.M) { Main(m) }

func TestHermeticClearsAmbientAWS(t *testing.T) {
	t.Setenv("AWS_CA_BUNDLE", "/nonexistent/ca.pem")
	t.Setenv("AWS_PROFILE", "someone-else")
	Hermetic()
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(k, "AWS_") {
			continue
		}
		switch k {
		case "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE":
			if v != os.DevNull {
				t.Errorf("%s=%s", k, v)
			}
		case "AWS_EC2_METADATA_DISABLED":
		default:
			t.Errorf("ambient %s survived Hermetic", k)
		}
	}
}

var validBucket = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$`)

func TestSharedBucketsAreUniqueAndUsable(t *testing.T) {
	srv := Shared(t)
	if Shared(t) != srv {
		t.Fatal("Shared started a second server")
	}
	t.Run("a very long sub-test name that would not fit into a bucket name of at most sixty-three characters", func(t *testing.T) {
		b1, b2 := srv.NewBucket(t), srv.NewBucket(t)
		if b1 == b2 || !validBucket.MatchString(b1) || !validBucket.MatchString(b2) {
			t.Fatalf("buckets %q %q", b1, b2)
		}
		c := srv.Client(t, b1)
		ctx := context.Background()
		if _, err := c.PutObject(ctx, "k", []byte("v"), s3client.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		if p, err := srv.Client(t, b2).List(ctx, "", "", "", 0); err != nil || len(p.Objects) != 0 {
			t.Fatalf("second bucket sees %+v, %v", p, err)
		}
	})
}
