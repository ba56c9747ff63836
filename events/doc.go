// Package events turns the fronts' finished operations into event records and delivers them, at least once, to
// any number of sinks: HTTP webhooks (Webhook) and commands (Command). Import jobs use them to start when a
// customer's file has arrived instead of polling the mount.
//
// Events is an ftpfront.Auditor: ftpfront and sftpfront feed it through the audit calls they already make, which
// come before the client's answer (226, SSH_FX_OK). FromAudit maps the audit events to kinds:
//
//	upload, result ok        upload_completed
//	upload, any other result upload_failed (reason: "aborted", "no data connection", the error text)
//	download                 download (result ok or failed)
//	delete, rename, mkdir    the same name (result ok or failed)
//
// Logins, connects, rmdir and disconnects are not events. Record documents the fields; SHA256 is a completed
// upload's checksum as s3mount stored it (with --checksums and --xattr; empty otherwise),
// and the bucket key is not part of a record (the fronts know only virtual paths).
//
// # Invariants
//
//   - At least once. Record appends the record to the journal and fsyncs it before it returns, so an operation
//     the client was told succeeded has its record on disk. A sink's record leaves its queue only when the sink
//     took it (Webhook: a 2xx answer; Command: exit status 0) or when it was dead-lettered, and that is written
//     (fsynced) to the sink's ack file before the queue forgets it. After a crash or a restart, Open queues again
//     every journaled record a sink has not acknowledged, so a receiver may see a record twice (after a crash
//     between its answer and the ack) but never zero times; it deduplicates on Record.ID, which is fixed when
//     the record is journaled and is the same in every attempt.
//   - Exactly the journaled bytes. Every sink receives the record's journal line, byte for byte, in every
//     attempt and after a restart; the webhook's HMAC covers exactly those bytes.
//   - Bounded retries. A failed attempt is retried after Options.Backoff, doubling up to Options.MaxBackoff
//     (plus up to 10% jitter). After Options.MaxAttempts failed attempts the record goes to dead-letter.jsonl
//     (one JSON line: time, sink, attempts, last error, the event as journaled), with one ERROR log line
//     "events: record dead-lettered", and counts as acknowledged for that sink. Attempt counts live in memory: a
//     restart starts them again at zero.
//   - Filters. Each sink has a Filter (kinds, users, path.Match globs on the virtual path). A record is queued
//     only for the sinks it matches; at Open, records still in the journal are matched against the filters
//     given then.
//   - Compaction. Once every sink acknowledged Options.CompactEvery records, or all records, the journal is
//     rewritten with only the records some sink still owes (temporary file, fsync, rename, fsync of the
//     directory), and so are the ack files. A crash at any point of it loses no pending record.
//   - A torn last journal line (a crash during Record's append) belonged to a Record call that never returned,
//     so no client got an answer for it; Open cuts it off with a WARN line.
//
// # What is fsynced, and when
//
//	journal.jsonl        each record, in Record, before it returns
//	acked-NAME.ids       each acknowledged ID, before the sink's queue drops the record
//	dead-letter.jsonl    each dead letter, before the record is acknowledged
//	compaction           the new file, then the directory after the rename
//
// Record holds the journal lock across its write and fsync, so concurrent uploads finishing at once wait for
// each other's fsync, one per record; that is the price of answering 226 only with the event on disk. Put
// Options.Dir on a local disk, never on the mount.
//
// # Concurrency and locks
//
// Lock order: Events.jmu (journal and entry list), then sinkState.mu (one sink's queue and ack file, taken in
// the order of Options.Sinks), then Events.dlmu (the dead-letter file). No lock is held while a sink delivers.
// Each sink has SinkConfig.Concurrency worker goroutines; with one, records go out in journal order except
// when an attempt fails and a later record is ready before the retry. A compaction goroutine rewrites the
// journal. Close cancels the deliveries in progress (their records stay pending) and waits for the workers.
//
// # Memory
//
// Each record not yet acknowledged by every sink is held once in memory (its decoded form and its JSON line,
// well under 1 KiB with ordinary paths); each sink's queue holds at most Options.MaxQueue of them. When a queue
// is full, its oldest waiting record is dead-lettered with the reason "queue full", so a sink down for days
// cannot exhaust memory and still loses nothing silently. A Command keeps at most 1 KiB of its child's output.
//
// # Limits
//
//   - Record cannot fail the operation: if the journal write fails (full disk), the record is logged as an
//     ERROR, counted in JournalErrors and delivered from memory only; it does not survive a restart.
//   - Ordering is not guaranteed across retries, concurrent workers or sinks; Record.Time and the ID's time
//     prefix tell the order of the operations.
package events
