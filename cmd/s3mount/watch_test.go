package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/s3ftp/s3ftp/cache"
	"github.com/s3ftp/s3ftp/internal/metrics"
	"github.com/s3ftp/s3ftp/s3mount/upload"
)

// reportingMount is a mountStats with fixed figures.
type reportingMount struct {
	b  *upload.Budget
	st cache.Stats
}

func (m reportingMount) Budget() *upload.Budget  { return m.b }
func (m reportingMount) CacheStats() cache.Stats { return m.st }
func (m reportingMount) Panics() int64           { return 2 }

func exposition(t *testing.T, r *metrics.Registry) string {
	t.Helper()
	var b bytes.Buffer
	if _, err := r.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestWatchMount: the mount's budget, cache statistics and panic count feed the budget, cache and panic series.
func TestWatchMount(t *testing.T) {
	reg := metrics.NewRegistry()
	watchMount(metrics.NewS3Mount(reg), reportingMount{b: upload.NewBudget(64 << 20),
		st: cache.Stats{Hits: 5, DiskHits: 100, Misses: 3, MemBytes: 4096, Resumes: 7}})
	out := exposition(t, reg)
	for _, want := range []string{"s3mount_write_budget_bytes_max 67108864\n", "s3mount_write_budget_bytes_in_use 0\n",
		"s3mount_cache_hits_total 5\n", "s3mount_cache_misses_total 3\n", "s3mount_cache_bytes 4096\n",
		"s3mount_cache_get_resumes_total 7\n", "s3mount_panics_total 2\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("exposition lacks %q:\n%s", want, out)
		}
	}

}
