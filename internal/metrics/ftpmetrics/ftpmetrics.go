// Package ftpmetrics connects ftpfront to the metrics package: the audit events feed the session, login and
// transfer metrics, and the Access's counters feed ftpfront_bans_total. It is separate from metrics so that
// metrics depends on nothing and ftpfront never depends on metrics.
package ftpmetrics

import (
	"github.com/s3ftp/s3ftp/ftpfront"
	"github.com/s3ftp/s3ftp/internal/metrics"
)

// Wire registers the ftpfront metrics in r, reads bans from access (may be nil) and returns the Auditor to give
// the server: it records each event in the metrics, then passes it to next (may be nil). It also returns the
// metrics, so that ftpfront_panics_total can read the server once it exists.
//
//	deps.Audit, m = ftpmetrics.Wire(reg, access, deps.Audit)
//	srv, err := ftpfront.NewServer(opts, deps)
//	m.WatchPanics(srv.Panics)
func Wire(r *metrics.Registry, access *ftpfront.Access, next ftpfront.Auditor) (ftpfront.Auditor, *metrics.FTPFront) {
	m := metrics.NewFTPFront(r)
	if access != nil {
		m.WatchBans(func() uint64 { return access.Stats().Bans })
	}
	return Auditor(m, next), m
}

// Auditor returns an Auditor that records events in m and then passes them to next (nil: to no one).
func Auditor(m *metrics.FTPFront, next ftpfront.Auditor) ftpfront.Auditor {
	return auditor{m: m, next: next}
}

type auditor struct {
	m    *metrics.FTPFront
	next ftpfront.Auditor
}

// Record implements ftpfront.Auditor.
func (a auditor) Record(e ftpfront.Event) {
	a.m.ObserveEvent(e.Event, e.Result, e.Bytes)
	if a.next != nil {
		a.next.Record(e)
	}
}
