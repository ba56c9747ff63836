package upload

import (
	"testing"

	"github.com/s3ftp/s3ftp/s3client"
)

func TestPartSizeExamples(t *testing.T) {
	for _, c := range []struct {
		n           int
		base, limit int64
		want        int64
	}{
		{1, 8 * mib, 128 * mib, 8 * mib},
		{900, 8 * mib, 128 * mib, 8 * mib},
		{901, 8 * mib, 128 * mib, 16 * mib},
		{3601, 8 * mib, 128 * mib, 128 * mib},
		{10000, 8 * mib, 128 * mib, 128 * mib},
		{1, 1, 1, 5 * mib},                              // clamped up to S3's minimum
		{1, 64 * mib, 10 * mib, 10 * mib},               // the budget caps even the first part
		{10000, 5 * mib, 1 << 40, s3client.MaxPartSize}, // never above 5 GiB
		{0, 8 * mib, 128 * mib, 8 * mib},                // number clamped to 1
	} {
		if got := PartSize(c.n, c.base, c.limit); got != c.want {
			t.Errorf("PartSize(%d, %d, %d) = %d, want %d", c.n, c.base, c.limit, got, c.want)
		}
	}
	if got := MaxObjectSize(5*mib, s3client.MaxPartSize); got < 5<<40 {
		t.Errorf("MaxObjectSize(5 MiB, 5 GiB) = %d, below 5 TiB", got)
	}
	// The figure doc.go quotes for s3mount's defaults.
	if got := MaxObjectSize(8*mib, 128*mib); got>>30 != 905 {
		t.Errorf("MaxObjectSize(8 MiB, 128 MiB) = %d GiB, doc.go says 905", got>>30)
	}
}

// FuzzPartSize checks the schedule's contract for any inputs: sizes within S3's limits and the cap, never
// shrinking, at least the first part size, summing to MaxObjectSize, and reaching 5 TiB when uncapped.
func FuzzPartSize(f *testing.F) {
	f.Add(1, int64(8*mib), int64(128*mib))
	f.Add(901, int64(5*mib), int64(s3client.MaxPartSize))
	f.Add(10000, int64(0), int64(-1))
	f.Add(-5, int64(1<<40), int64(7*mib))
	f.Fuzz(func(t *testing.T, n int, base, limit int64) {
		b := clamp(base, s3client.MinPartSize, s3client.MaxPartSize)
		l := clamp(limit, s3client.MinPartSize, s3client.MaxPartSize)
		s := PartSize(n, base, limit)
		if s < s3client.MinPartSize || s > s3client.MaxPartSize || s > l {
			t.Fatalf("PartSize(%d, %d, %d) = %d: outside [5 MiB, min(limit, 5 GiB)]", n, base, limit, s)
		}
		if s < min(b, l) {
			t.Fatalf("PartSize(%d, %d, %d) = %d: below the first part size", n, base, limit, s)
		}
		if next := PartSize(n+1, base, limit); n < s3client.MaxParts && n >= 1 && next < s {
			t.Fatalf("PartSize shrinks from part %d (%d) to %d", n, s, next)
		}
		if s != l && s%b != 0 {
			t.Fatalf("PartSize(%d, %d, %d) = %d: neither the cap nor a multiple of the first part size", n, base, limit, s)
		}
		var sum int64
		for i := 1; i <= s3client.MaxParts; i++ {
			sum += PartSize(i, base, limit)
		}
		if got := MaxObjectSize(base, limit); got != sum {
			t.Fatalf("MaxObjectSize(%d, %d) = %d, sum of parts %d", base, limit, got, sum)
		}
		if got := MaxObjectSize(base, s3client.MaxPartSize); got < 5<<40 {
			t.Fatalf("MaxObjectSize(%d, 5 GiB) = %d: 10,000 parts do not reach 5 TiB", base, got)
		}
	})
}
