package metrics

import (
	"runtime"
	rtmetrics "runtime/metrics"
	"strconv"
	"sync/atomic"
)

// S3Mount holds the s3mount metrics (names in the package doc).
type S3Mount struct {
	// Requests counts S3 calls by op and final status; ObserveS3 feeds it.
	Requests *CounterVec
	// Retries counts attempts beyond the first; ObserveRetry feeds it.
	Retries *Counter
	// BytesUploaded and BytesDownloaded count payload bytes of successful calls; ObserveS3 feeds them.
	BytesUploaded, BytesDownloaded *Counter
	// PartsInFlight is incremented when an UploadPart call starts and decremented when it returns.
	PartsInFlight *Gauge

	budget atomic.Pointer[Budget]
	cache  atomic.Pointer[func() CacheStats]
	panics atomic.Pointer[func() int64]
}

// Budget is the upload memory budget as the metrics read it; *upload.Budget satisfies it.
type Budget interface {
	InUse() int64
	Max() int64
}

// CacheStats are the read cache numbers the metrics export.
type CacheStats struct {
	// Hits and Misses count block lookups served from memory and blocks fetched from S3 on a miss.
	Hits, Misses int64
	// Bytes is the memory held by cache buffers.
	Bytes int64
	// GetResumes counts GETs issued to resume a body that broke mid-block (cache.Stats.Resumes).
	GetResumes int64
}

// NewS3Mount registers the s3mount metrics in r.
func NewS3Mount(r *Registry) *S3Mount {
	m := &S3Mount{
		Requests: r.CounterVec("s3mount_s3_requests_total", "S3 API calls after retries, by operation and final HTTP status (0: no response).",
			"op", "status"),
		Retries:         r.Counter("s3mount_s3_retries_total", "Attempts of S3 calls beyond the first."),
		BytesUploaded:   r.Counter("s3mount_bytes_uploaded_total", "Payload bytes of successful PutObject and UploadPart calls."),
		BytesDownloaded: r.Counter("s3mount_bytes_downloaded_total", "Bytes announced by successful GetObject calls."),
		PartsInFlight:   r.Gauge("s3mount_parts_in_flight", "UploadPart calls running now."),
	}
	r.GaugeFunc("s3mount_write_budget_bytes_in_use", "Bytes of upload part buffers held.", func() int64 {
		if b := m.budget.Load(); b != nil {
			return (*b).InUse()
		}
		return 0
	})
	r.GaugeFunc("s3mount_write_budget_bytes_max", "Memory budget of upload part buffers.", func() int64 {
		if b := m.budget.Load(); b != nil {
			return (*b).Max()
		}
		return 0
	})
	cache := func(pick func(CacheStats) int64) func() int64 {
		return func() int64 {
			if f := m.cache.Load(); f != nil {
				return pick((*f)())
			}
			return 0
		}
	}
	r.CounterFunc("s3mount_cache_hits_total", "Block lookups served from the read cache.",
		func() uint64 { return uint64(max(0, cache(func(s CacheStats) int64 { return s.Hits })())) })
	r.CounterFunc("s3mount_cache_misses_total", "Blocks fetched from S3 into the read cache (by a read or by prefetch).",
		func() uint64 { return uint64(max(0, cache(func(s CacheStats) int64 { return s.Misses })())) })
	r.CounterFunc("s3mount_cache_get_resumes_total", "GETs issued to resume a read cache GET whose body broke mid-block.",
		func() uint64 { return uint64(max(0, cache(func(s CacheStats) int64 { return s.GetResumes })())) })
	r.GaugeFunc("s3mount_cache_bytes", "Bytes of read cache buffers held.", cache(func(s CacheStats) int64 { return s.Bytes }))
	r.CounterFunc("s3mount_panics_total", "Panics recovered in file system requests and background goroutines; each "+
		"failed its request, upload, block or rename and was logged with its stack.", func() uint64 {
		if f := m.panics.Load(); f != nil {
			return uint64(max(0, (*f)()))
		}
		return 0
	})
	return m
}

// ObserveS3 records one S3 call; its signature is s3client.Config.Observer's, so wiring is
// cfg.Observer = m.ObserveS3.
func (m *S3Mount) ObserveS3(op string, status int, bytes int64, err error) {
	m.Requests.With(op, statusLabel(status)).Inc()
	if err != nil || bytes <= 0 {
		return
	}
	switch op {
	case "GetObject":
		m.BytesDownloaded.Add(uint64(bytes))
	case "PutObject", "UploadPart":
		m.BytesUploaded.Add(uint64(bytes))
	}
}

// ObserveRetry records one retry of an S3 call; its signature is s3client.Config.RetryObserver's.
func (m *S3Mount) ObserveRetry(op string) { m.Retries.Inc() }

// WatchBudget makes the write budget gauges read b.
func (m *S3Mount) WatchBudget(b Budget) {
	m.budget.Store(&b)
}

// WatchCache makes the cache metrics read f at scrape time.
func (m *S3Mount) WatchCache(f func() CacheStats) {
	m.cache.Store(&f)
}

// WatchPanics makes s3mount_panics_total read f (the mount's Panics) at scrape time.
func (m *S3Mount) WatchPanics(f func() int64) {
	m.panics.Store(&f)
}

// statusLabels holds the label text of every status below 600, so recording a call does not allocate.
var statusLabels = func() []string {
	s := make([]string, 600)
	for i := range s {
		s[i] = strconv.Itoa(i)
	}
	return s
}()

func statusLabel(status int) string {
	if status >= 0 && status < len(statusLabels) {
		return statusLabels[status]
	}
	return overflowValue
}

// FTPFront holds the ftpfront metrics (names in the package doc).
type FTPFront struct {
	// SessionsActive counts control connections being served.
	SessionsActive *Gauge
	// Logins counts logins by result (ok, failed).
	Logins *CounterVec
	// Transfers counts finished transfers by dir (upload, download) and result (ok, aborted, error).
	Transfers *CounterVec
	// TransferBytes counts bytes moved by dir.
	TransferBytes *CounterVec

	bans   atomic.Pointer[func() uint64]
	panics atomic.Pointer[func() int64]
}

// NewFTPFront registers the ftpfront metrics in r.
func NewFTPFront(r *Registry) *FTPFront {
	f := &FTPFront{
		SessionsActive: r.Gauge("ftpfront_sessions_active", "Control connections being served."),
		Logins:         r.CounterVec("ftpfront_logins_total", "Logins by result.", "result"),
		Transfers:      r.CounterVec("ftpfront_transfers_total", "Finished transfers by direction and result.", "dir", "result"),
		TransferBytes:  r.CounterVec("ftpfront_transfer_bytes_total", "Bytes moved by transfers, by direction.", "dir"),
	}
	r.CounterFunc("ftpfront_bans_total", "Addresses banned after failed logins.", func() uint64 {
		if b := f.bans.Load(); b != nil {
			return (*b)()
		}
		return 0
	})
	r.CounterFunc("ftpfront_panics_total", "Panics recovered in sessions, commands, transfers and connection set-up; "+
		"each was logged with its stack.", func() uint64 {
		if p := f.panics.Load(); p != nil {
			return uint64(max(0, (*p)()))
		}
		return 0
	})
	// Publish the expected series at 0, so rates work from the first scrape.
	for _, res := range []string{"ok", "failed"} {
		f.Logins.With(res)
	}
	for _, dir := range []string{"upload", "download"} {
		f.TransferBytes.With(dir)
		for _, res := range []string{"ok", "aborted", "error"} {
			f.Transfers.With(dir, res)
		}
	}
	return f
}

// WatchBans makes ftpfront_bans_total read f (e.g. the Access's Stats().Bans) at scrape time.
func (f *FTPFront) WatchBans(fn func() uint64) {
	f.bans.Store(&fn)
}

// WatchPanics makes ftpfront_panics_total read fn (the Server's Panics) at scrape time.
func (f *FTPFront) WatchPanics(fn func() int64) {
	f.panics.Store(&fn)
}

// ObserveEvent records one audit event: its name (connect, disconnect, login_ok, login_failed, upload, download;
// others are ignored), its result ("ok", "aborted" or an error text) and its bytes.
func (f *FTPFront) ObserveEvent(event, result string, bytes int64) {
	switch event {
	case "connect":
		f.SessionsActive.Inc()
	case "disconnect":
		f.SessionsActive.Dec()
	case "login_ok":
		f.Logins.With("ok").Inc()
	case "login_failed":
		f.Logins.With("failed").Inc()
	case "upload", "download":
		res := result
		if res != "ok" && res != "aborted" {
			res = "error"
		}
		f.Transfers.With(event, res).Inc()
		if bytes > 0 {
			f.TransferBytes.With(event).Add(uint64(bytes))
		}
	}
}

// RegisterRuntime registers go_goroutines and go_heap_bytes (bytes of live and not yet swept heap objects), to
// check the daemons' memory against their budgets.
func RegisterRuntime(r *Registry) {
	r.GaugeFunc("go_goroutines", "Goroutines that currently exist.", func() int64 { return int64(runtime.NumGoroutine()) })
	r.GaugeFunc("go_heap_bytes", "Bytes of heap objects, live or not yet swept.", func() int64 {
		s := []rtmetrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		rtmetrics.Read(s)
		if s[0].Value.Kind() != rtmetrics.KindUint64 {
			return 0
		}
		return int64(s[0].Value.Uint64())
	})
}
