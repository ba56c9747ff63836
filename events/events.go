package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/s3ftp/s3ftp/ftpfront"
)

// Lock order: Events.jmu, then sinkState.mu (in the order of Events.sinks), then Events.dlmu. No lock is held
// while a sink delivers.

// Sink delivers one record. Deliver returns nil once the receiver has taken the record (it is then never sent to
// this sink again), or the reason of a failed attempt (it is retried). body is the record's journal line, byte
// for byte; r is the same record decoded. ctx ends when the Events is closed; Deliver must then return soon,
// and the record stays pending. Deliver may be called from several goroutines at once (SinkConfig.Concurrency).
type Sink interface {
	Deliver(ctx context.Context, body []byte, r *Record) error
}

// Observer is told about each record's way through a sink (metrics). Its methods must be fast and safe for
// concurrent use. Without one nothing is counted.
type Observer interface {
	// Queued: a record was put in the sink's queue (by Record, or at Open for a record still pending).
	Queued(sink string)
	// Delivered: the sink took a record, latency after it was journaled.
	Delivered(sink string, latency time.Duration)
	// Failed: one attempt failed.
	Failed(sink string)
	// DeadLettered: the record was moved to the dead-letter file.
	DeadLettered(sink string)
}

// SinkConfig is one sink with its name, filter and concurrency.
type SinkConfig struct {
	// Name identifies the sink in the ack file name, logs, metrics and dead letters: 1 to 64 of [A-Za-z0-9_-],
	// unique. Keep it across restarts: records a sink of that name has not acknowledged are delivered after
	// the restart.
	Name string
	// Sink delivers.
	Sink Sink
	// Filter selects the records of this sink.
	Filter Filter
	// Concurrency is how many deliveries run at once (default 1, which also keeps records in journal order
	// unless an attempt fails).
	Concurrency int
}

// Options configures Open.
type Options struct {
	// Dir holds the journal, the ack files and the dead-letter file; created if missing.
	Dir string
	// Sinks receive the records; none is allowed (records are journaled and compacted away).
	Sinks []SinkConfig
	// MaxAttempts is how many failed attempts move a record to the dead-letter file (default 10).
	MaxAttempts int
	// Backoff is the wait after the first failed attempt; it doubles per further failure up to MaxBackoff, with
	// up to 10% jitter (defaults 1s and 5m).
	Backoff, MaxBackoff time.Duration
	// MaxQueue bounds the records waiting per sink (default 100000); beyond it the oldest waiting record is
	// dead-lettered with the reason "queue full".
	MaxQueue int
	// CompactEvery is how many records acknowledged by every sink trigger a compaction of the journal (default
	// 1024); a journal whose records are all acknowledged is compacted at once.
	CompactEvery int
	// Log receives the process log lines (default slog.Default()).
	Log *slog.Logger
	// Observer counts (optional).
	Observer Observer
}

func (o *Options) setDefaults() {
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 10
	}
	if o.Backoff <= 0 {
		o.Backoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Minute
	}
	if o.MaxBackoff < o.Backoff {
		o.MaxBackoff = o.Backoff
	}
	if o.MaxQueue <= 0 {
		o.MaxQueue = 100000
	}
	if o.CompactEvery <= 0 {
		o.CompactEvery = 1024
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Observer == nil {
		o.Observer = nopObserver{}
	}
}

type nopObserver struct{}

func (nopObserver) Queued(string)                   {}
func (nopObserver) Delivered(string, time.Duration) {}
func (nopObserver) Failed(string)                   {}
func (nopObserver) DeadLettered(string)             {}

var sinkNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Events is an ftpfront.Auditor that journals the finished operations as Records and delivers them to its sinks.
// Create it with Open; Close it to stop delivering.
type Events struct {
	opts  Options
	log   *slog.Logger
	obs   Observer
	sinks []*sinkState

	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	compact chan struct{} // a compaction is wanted (cap 1)

	// jmu guards the journal and the records in it.
	jmu     sync.Mutex
	journal *os.File
	entries []*entry // journal order; those with pending 0 go at the next compaction
	closed  bool
	retired atomic.Int64 // entries with pending 0 still in the journal

	// dlmu guards the dead-letter file.
	dlmu       sync.Mutex
	deadLetter *os.File

	journalErrors atomic.Uint64
}

// entry is one journaled record.
type entry struct {
	rec      Record
	line     []byte
	journal  time.Time    // when it was journaled (or loaded): delivery latency starts here
	pending  atomic.Int32 // sinks that have not acknowledged it
	inMemory bool         // the journal write failed: the record lives only in memory
}

// sinkState is one sink's queue and ack file.
type sinkState struct {
	SinkConfig
	ev   *Events
	wake chan struct{} // a record was queued (cap Concurrency)

	// mu guards queue and ack.
	mu    sync.Mutex
	queue []*task // journal order
	ack   *os.File
}

// task is one record waiting in one sink's queue.
type task struct {
	e         *entry
	attempts  int
	notBefore time.Time
	busy      bool // a worker is delivering it
}

// Open loads the journal in opts.Dir, queues every record a sink has not acknowledged, and starts delivering.
func Open(opts Options) (*Events, error) {
	opts.setDefaults()
	if opts.Dir == "" {
		return nil, errors.New("events: no directory")
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	ev := &Events{opts: opts, log: opts.Log, obs: opts.Observer, compact: make(chan struct{}, 1)}
	seen := map[string]bool{}
	for _, sc := range opts.Sinks {
		if !sinkNameRE.MatchString(sc.Name) || seen[sc.Name] {
			return nil, fmt.Errorf("events: sink name %q: want 1 to 64 of A-Z a-z 0-9 _ -, unique", sc.Name)
		}
		seen[sc.Name] = true
		if sc.Sink == nil {
			return nil, fmt.Errorf("events: sink %s: no sink", sc.Name)
		}
		if err := sc.Filter.Validate(); err != nil {
			return nil, fmt.Errorf("events: sink %s: %w", sc.Name, err)
		}
		if sc.Concurrency <= 0 {
			sc.Concurrency = 1
		}
		ev.sinks = append(ev.sinks, &sinkState{SinkConfig: sc, ev: ev, wake: make(chan struct{}, sc.Concurrency)})
	}
	if err := ev.load(); err != nil {
		ev.closeFiles()
		return nil, err
	}
	ev.ctx, ev.cancel = context.WithCancel(context.Background())
	for _, s := range ev.sinks {
		for range s.Concurrency {
			ev.wg.Add(1)
			go func() {
				defer ev.wg.Done()
				ev.work(s)
			}()
		}
	}
	ev.wg.Add(1)
	go func() {
		defer ev.wg.Done()
		ev.compactLoop()
	}()
	ev.wantCompaction()
	return ev, nil
}

// load reads the journal and the ack files and queues what is pending.
func (ev *Events) load() error {
	jp := filepath.Join(ev.opts.Dir, journalName)
	lines, valid, bad, err := readJournal(jp)
	if err != nil {
		return fmt.Errorf("events: reading the journal: %w", err)
	}
	if bad > 0 {
		ev.log.Warn("events: journal lines that do not decode skipped", "file", jp, "lines", bad)
	}
	if fi, err := os.Stat(jp); err == nil && fi.Size() > valid {
		// A torn last line: its Record call never returned, so no client was told the operation succeeded.
		ev.log.Warn("events: journal ends in a partial line, cut", "file", jp, "bytes", fi.Size()-valid)
		if err := os.Truncate(jp, valid); err != nil {
			return fmt.Errorf("events: %w", err)
		}
	}
	if ev.journal, err = openAppend(jp); err != nil {
		return fmt.Errorf("events: %w", err)
	}
	if ev.deadLetter, err = openAppend(filepath.Join(ev.opts.Dir, deadLetterName)); err != nil {
		return fmt.Errorf("events: %w", err)
	}
	for _, l := range lines {
		// Latency counts from the operation's time: the downtime before this start is part of it.
		e := &entry{rec: l.rec, line: l.line, journal: l.rec.Time}
		ev.entries = append(ev.entries, e)
	}
	for _, s := range ev.sinks {
		ap := filepath.Join(ev.opts.Dir, ackName(s.Name))
		acks, err := readAcks(ap)
		if err != nil {
			return fmt.Errorf("events: sink %s: %w", s.Name, err)
		}
		if s.ack, err = openAppend(ap); err != nil {
			return fmt.Errorf("events: %w", err)
		}
		n := 0
		for _, e := range ev.entries {
			if !acks[e.rec.ID] && s.Filter.Match(&e.rec) {
				e.pending.Add(1)
				s.queue = append(s.queue, &task{e: e})
				ev.obs.Queued(s.Name)
				n++
			}
		}
		if n > 0 {
			ev.log.Info("events: undelivered records queued again", "sink", s.Name, "records", n)
		}
	}
	for _, e := range ev.entries {
		if e.pending.Load() == 0 {
			ev.retired.Add(1)
		}
	}
	return nil
}

// Record implements ftpfront.Auditor. For the finished operations events cover (FromAudit) that some sink's
// filter matches, it appends the record to the journal and fsyncs it before returning, then queues it for each
// of those sinks; other audit events, and records no sink wants, are neither journaled nor kept. The fronts call it before they answer the client (226, SSH_FX_OK), so a client that
// got its answer has its event on disk. Concurrent calls are serialised on the journal: each costs one fsync.
//
// A journal write that fails is logged as an ERROR and counted (JournalErrors); the record is still delivered
// from memory but does not survive a restart. After Close, records are dropped with a WARN line.
func (ev *Events) Record(a ftpfront.Event) {
	r, ok := FromAudit(a)
	if !ok {
		return
	}
	now := time.Now()
	r.ID = newID(now)
	line, err := json.Marshal(r)
	if err != nil {
		ev.log.Error("events: record not encodable, dropped", "kind", r.Kind, "path", r.Path, "err", err)
		return
	}
	var to []*sinkState
	for _, s := range ev.sinks {
		if s.Filter.Match(&r) {
			to = append(to, s)
		}
	}
	if len(to) == 0 {
		return // no sink wants it: nothing to journal
	}
	ev.jmu.Lock()
	defer ev.jmu.Unlock()
	if ev.closed {
		ev.log.Warn("events: record after close dropped", "id", r.ID, "kind", r.Kind, "path", r.Path)
		return
	}
	e := &entry{rec: r, line: line, journal: now}
	if err := appendSync(ev.journal, line); err != nil {
		ev.journalErrors.Add(1)
		e.inMemory = true
		ev.log.Error("events: journal write failed; the record is kept in memory only", "id", r.ID, "kind", r.Kind,
			"path", r.Path, "err", err)
	}
	ev.entries = append(ev.entries, e)
	e.pending.Store(int32(len(to)))
	for _, s := range to {
		s.enqueue(e)
	}
}

// JournalErrors returns how many records could not be written to the journal.
func (ev *Events) JournalErrors() uint64 { return ev.journalErrors.Load() }

// Pending returns how many records sink still has to deliver (-1 for an unknown sink).
func (ev *Events) Pending(sink string) int {
	for _, s := range ev.sinks {
		if s.Name == sink {
			s.mu.Lock()
			defer s.mu.Unlock()
			return len(s.queue)
		}
	}
	return -1
}

// Close stops the deliveries (an attempt in progress is cancelled and its record stays pending), compacts the
// journal and closes the files. Records that were not delivered are delivered after the next Open. Close is
// idempotent.
func (ev *Events) Close() error {
	ev.jmu.Lock()
	if ev.closed {
		ev.jmu.Unlock()
		return nil
	}
	ev.closed = true
	ev.jmu.Unlock()
	ev.cancel()
	ev.wg.Wait()
	err := ev.compactNow()
	ev.closeFiles()
	return err
}

func (ev *Events) closeFiles() {
	for _, f := range []*os.File{ev.journal, ev.deadLetter} {
		if f != nil {
			f.Close()
		}
	}
	for _, s := range ev.sinks {
		if s.ack != nil {
			s.ack.Close()
		}
	}
}

// enqueue adds e to the queue (the caller holds Events.jmu). A full queue dead-letters its oldest waiting task.
func (s *sinkState) enqueue(e *entry) {
	s.mu.Lock()
	var evicted *task
	if len(s.queue) >= s.ev.opts.MaxQueue {
		for i, t := range s.queue {
			if !t.busy {
				evicted = t
				s.queue = append(s.queue[:i], s.queue[i+1:]...)
				break
			}
		}
	}
	s.queue = append(s.queue, &task{e: e})
	s.mu.Unlock()
	s.ev.obs.Queued(s.Name)
	if evicted != nil {
		s.ev.deadLetterTask(s, evicted, errors.New("queue full"))
		s.finish(evicted, false)
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// next returns a task ready for delivery, marked busy, or how long to wait for one.
func (s *sinkState) next(now time.Time) (*task, time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	wait := time.Second
	for _, t := range s.queue {
		if t.busy {
			continue
		}
		if !t.notBefore.After(now) {
			t.busy = true
			return t, 0
		}
		wait = min(wait, t.notBefore.Sub(now))
	}
	return nil, wait
}

// work delivers s's records until Close.
func (ev *Events) work(s *sinkState) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		t, wait := s.next(time.Now())
		if t == nil {
			timer.Reset(wait)
			select {
			case <-ev.ctx.Done():
				return
			case <-s.wake:
			case <-timer.C:
			}
			continue
		}
		err := s.Sink.Deliver(ev.ctx, t.e.line, &t.e.rec)
		if ev.ctx.Err() != nil {
			// Closing: the attempt does not count, the record stays pending.
			s.mu.Lock()
			t.busy = false
			s.mu.Unlock()
			return
		}
		if err == nil {
			ev.obs.Delivered(s.Name, time.Since(t.e.journal))
			s.finish(t, true)
			continue
		}
		ev.obs.Failed(s.Name)
		s.mu.Lock()
		t.attempts++
		attempts := t.attempts
		s.mu.Unlock()
		if attempts >= ev.opts.MaxAttempts {
			ev.deadLetterTask(s, t, err)
			s.finish(t, true)
			continue
		}
		d := ev.backoff(attempts)
		ev.log.Warn("events: delivery failed, retrying", "sink", s.Name, "id", t.e.rec.ID, "kind", t.e.rec.Kind,
			"attempt", attempts, "retry_in", d, "err", err)
		s.mu.Lock()
		t.busy = false
		t.notBefore = time.Now().Add(d)
		s.mu.Unlock()
	}
}

// backoff is the wait after the given number of failed attempts.
func (ev *Events) backoff(attempts int) time.Duration {
	d := ev.opts.Backoff
	for i := 1; i < attempts && d < ev.opts.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, ev.opts.MaxBackoff)
	return d + time.Duration(rand.Int64N(int64(d)/10+1))
}

// finish acknowledges t for s: the ID goes to the ack file (fsynced) and the task leaves the queue. inQueue says
// whether t is still in the queue.
func (s *sinkState) finish(t *task, inQueue bool) {
	s.mu.Lock()
	if !t.e.inMemory {
		if err := appendSync(s.ack, []byte(t.e.rec.ID)); err != nil {
			// The record will be delivered again after a restart: at least once still holds.
			s.ev.log.Error("events: ack write failed", "sink", s.Name, "id", t.e.rec.ID, "err", err)
		}
	}
	if inQueue {
		for i, q := range s.queue {
			if q == t {
				s.queue = append(s.queue[:i], s.queue[i+1:]...)
				break
			}
		}
	}
	s.mu.Unlock()
	if t.e.pending.Add(-1) == 0 {
		if n := s.ev.retired.Add(1); n >= int64(s.ev.opts.CompactEvery) || s.ev.allDelivered() {
			s.ev.wantCompaction()
		}
	}
}

// allDelivered reports whether no sink has a record waiting.
func (ev *Events) allDelivered() bool {
	for _, s := range ev.sinks {
		s.mu.Lock()
		n := len(s.queue)
		s.mu.Unlock()
		if n > 0 {
			return false
		}
	}
	return true
}

// deadLetter is one line of the dead-letter file.
type deadLetter struct {
	Time     time.Time       `json:"time"`
	Sink     string          `json:"sink"`
	Attempts int             `json:"attempts"`
	Error    string          `json:"error"`
	Event    json.RawMessage `json:"event"` // the journal line, as it was sent
}

// deadLetterTask appends t's record to the dead-letter file and logs one ERROR line.
func (ev *Events) deadLetterTask(s *sinkState, t *task, cause error) {
	s.mu.Lock()
	attempts := t.attempts
	s.mu.Unlock()
	line, _ := json.Marshal(deadLetter{Time: time.Now().UTC(), Sink: s.Name, Attempts: attempts, Error: cause.Error(), Event: t.e.line})
	ev.dlmu.Lock()
	err := appendSync(ev.deadLetter, line)
	ev.dlmu.Unlock()
	ev.obs.DeadLettered(s.Name)
	ev.log.Error("events: record dead-lettered", "sink", s.Name, "id", t.e.rec.ID, "kind", t.e.rec.Kind,
		"user", t.e.rec.User, "path", t.e.rec.Path, "attempts", attempts, "err", cause,
		"file", filepath.Join(ev.opts.Dir, deadLetterName), "write_err", err)
}

func (ev *Events) wantCompaction() {
	select {
	case ev.compact <- struct{}{}:
	default:
	}
}

func (ev *Events) compactLoop() {
	for {
		select {
		case <-ev.ctx.Done():
			return
		case <-ev.compact:
			if err := ev.compactNow(); err != nil {
				ev.log.Error("events: journal compaction failed", "err", err)
			}
		}
	}
}

// compactNow rewrites the journal without the records every sink acknowledged, then the ack files without the
// IDs no longer in the journal (see journal.go).
func (ev *Events) compactNow() error {
	ev.jmu.Lock()
	defer ev.jmu.Unlock()
	if ev.retired.Load() == 0 {
		return nil
	}
	for _, s := range ev.sinks {
		s.mu.Lock()
		defer s.mu.Unlock()
	}
	var keep []*entry
	var lines [][]byte
	for _, e := range ev.entries {
		if e.pending.Load() > 0 {
			keep = append(keep, e)
			if !e.inMemory {
				lines = append(lines, e.line)
			}
		}
	}
	f, err := replaceFile(filepath.Join(ev.opts.Dir, journalName), lines)
	if err != nil {
		return err
	}
	ev.journal.Close()
	ev.journal = f
	ev.retired.Add(-int64(len(ev.entries) - len(keep)))
	ev.entries = keep
	for _, s := range ev.sinks {
		queued := map[*entry]bool{}
		for _, t := range s.queue {
			queued[t.e] = true
		}
		var acked [][]byte
		for _, e := range keep {
			if !queued[e] && s.Filter.Match(&e.rec) && !e.inMemory {
				acked = append(acked, []byte(e.rec.ID))
			}
		}
		f, err := replaceFile(filepath.Join(ev.opts.Dir, ackName(s.Name)), acked)
		if err != nil {
			return err
		}
		s.ack.Close()
		s.ack = f
	}
	return nil
}

// The interfaces the package's types implement.
var (
	_ ftpfront.Auditor = (*Events)(nil)
	_ Sink             = (*Webhook)(nil)
	_ Sink             = (*Command)(nil)
)
