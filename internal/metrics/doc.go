// Package metrics is a small Prometheus registry without dependencies: counters, gauges, counter vectors with up
// to four labels, and values read from a function at scrape time, served in the text exposition format 0.0.4.
//
// # Cost and concurrency
//
// Everything is safe for concurrent use. Counter.Add and Gauge.Add/Set are one atomic operation. CounterVec.With
// is an atomic pointer load and a map lookup with no lock and no allocation once the label values have been
// seen; a new label combination copies the map under a mutex. A caller on a hot path keeps the *Counter that
// With returns. A vector holds at most MaxSeries label combinations; later new combinations are counted under
// the label values "other", so a buggy caller cannot grow memory without bound.
//
// Registration (Registry.Counter, ...) happens at start-up and panics on an invalid or duplicate name: that is a
// programming error, as in the Prometheus client. Scrapes take the registry's mutex only to list the families;
// values are read atomically, so a scrape never blocks an increment.
//
// # Output
//
// Families are written sorted by name, each with its # HELP and # TYPE lines, and the series of a vector sorted
// by label values, so the output is stable and diffable. Handler serves it at /metrics with Content-Type
// "text/plain; version=0.0.4; charset=utf-8"; WithHealth adds a /healthz handler on the same listener.
// ParseText reads such a scrape back into samples keyed by series; the daemons' tests use it on /metrics.
//
// # Metric names
//
// s3mount (NewS3Mount):
//
//	s3mount_s3_requests_total{op,status}  counter  S3 API calls after retries; op is the API name (GetObject,
//	                                               UploadPart, ...), status the final HTTP status, 0 when no
//	                                               response arrived
//	s3mount_s3_retries_total              counter  extra attempts the SDK made beyond the first
//	s3mount_bytes_uploaded_total          counter  payload bytes of successful PutObject and UploadPart calls
//	s3mount_bytes_downloaded_total        counter  bytes announced by successful GetObject calls
//	s3mount_parts_in_flight               gauge    UploadPart calls running now
//	s3mount_write_budget_bytes_in_use     gauge    bytes of upload part buffers held (upload.Budget.InUse)
//	s3mount_write_budget_bytes_max        gauge    the memory budget (upload.Budget.Max)
//	s3mount_cache_hits_total              counter  block lookups served from the read cache
//	s3mount_cache_misses_total            counter  blocks fetched from S3 (by a read or by prefetch)
//	s3mount_cache_bytes                   gauge    bytes of read cache buffers held
//	s3mount_cache_get_resumes_total       counter  GETs issued to resume a cache GET whose body broke mid-block
//	s3mount_panics_total                  counter  panics recovered in requests and background goroutines
//	                                               (Mounted.Panics); each failed one operation
//
// ftpfront (NewFTPFront):
//
//	ftpfront_sessions_active                  gauge    control connections being served
//	ftpfront_logins_total{result}             counter  logins by result: ok, failed
//	ftpfront_bans_total                       counter  addresses banned after failed logins
//	ftpfront_transfers_total{dir,result}      counter  finished transfers; dir upload or download, result ok,
//	                                                   aborted or error
//	ftpfront_transfer_bytes_total{dir}        counter  bytes moved by transfers, whatever their result
//	ftpfront_panics_total                     counter  panics recovered by the server (Server.Panics)
//
// ftpfront event delivery (ftpmetrics.Events, with --events-dir), each by sink:
//
//	ftpfront_events_queued_total{sink}                        counter  records queued for the sink
//	ftpfront_events_delivered_total{sink}                     counter  records the sink acknowledged
//	ftpfront_event_delivery_failures_total{sink}              counter  failed attempts
//	ftpfront_events_dead_lettered_total{sink}                 counter  records moved to the dead-letter file
//	ftpfront_event_delivery_latency_seconds_bucket{sink,le}   counter  delivered records by journal-to-ack time,
//	                                                                   cumulative (le 0.1 ... 1800, +Inf)
//	ftpfront_event_journal_errors_total                       counter  records the journal could not take (cmd)
//
// The gauges and counters a daemon cannot update itself (budget, cache, bans, panics) are read from functions given to
// the Watch methods; until then they read 0.
//
// # Wiring
//
// The subpackages hold the adapters, so this package imports nothing of the project:
//
//	reg := metrics.NewRegistry()
//	m := s3metrics.Wire(reg, &s3cfg)            // s3mount: S3 requests and bytes, through s3client.Config.Observer
//	client = s3metrics.Client(client, m)        // s3mount: s3mount_parts_in_flight
//	m.WatchBudget(budget)                       // s3mount: *upload.Budget
//	deps.Audit, fm = ftpmetrics.Wire(reg, access, deps.Audit) // ftpfront: sessions, logins, transfers, bans
//	fm.WatchPanics(srv.Panics)                  // ftpfront, once the Server exists
//	mux.Handle("/metrics", reg.Handler())       // next to an existing /healthz; or metrics.Serve(addr, reg.Handler(), log)
package metrics
