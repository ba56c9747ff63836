package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/s3ftp/s3ftp/cache"
	"github.com/s3ftp/s3ftp/internal/metrics"
	"github.com/s3ftp/s3ftp/s3mount/upload"
)

// reportingMount has the accessors watchMount looks for.
type reportingMount struct {
	b  *upload.Budget
	st cache.Stats
}

func (m reportingMount) Budget() *upload.Budget  { return m.b }
func (m reportingMount) CacheStats() cache.Stats { return m.st }

func exposition(t *testing.T, r *metrics.Registry) string {
	t.Helper()
	var b bytes.Buffer
	if _, err := r.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestWatchMount: a mount exposing Budget and CacheStats feeds the budget and cache series; one without them
// leaves those series at 0.
func TestWatchMount(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	reg := metrics.NewRegistry()
	watchMount(metrics.NewS3Mount(reg), reportingMount{b: upload.NewBudget(64 << 20),
		st: cache.Stats{Hits: 5, DiskHits: 100, Misses: 3, MemBytes: 4096}}, log)
	out := exposition(t, reg)
	for _, want := range []string{"s3mount_write_budget_bytes_max 67108864\n", "s3mount_write_budget_bytes_in_use 0\n",
		"s3mount_cache_hits_total 5\n", "s3mount_cache_misses_total 3\n", "s3mount_cache_bytes 4096\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("exposition lacks %q:\n%s", want, out)
		}
	}

	reg = metrics.NewRegistry()
	watchMount(metrics.NewS3Mount(reg), struct{}{}, log)
	out = exposition(t, reg)
	for _, want := range []string{"s3mount_write_budget_bytes_max 0\n", "s3mount_cache_misses_total 0\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("without accessors, exposition lacks %q:\n%s", want, out)
		}
	}
}
