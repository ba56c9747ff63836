package s3mount

// Unlink of a file open for reading: the name goes at once (lookups answer ENOENT, listings leave the object
// out, a new file may take the name), the handles already open keep reading the version they opened, and the
// object is deleted at the last of their releases, if it is still that version. The mount hides the key at
// that ETag meanwhile (fsys.hidden). A journaling client (deferredDeleter) records the pending delete, so a
// daemon killed before the last release leaves it to the next start of the mount (journal.Recover).

import (
	"context"
	"errors"
	"time"

	"github.com/s3ftp/s3ftp/s3client"
)

// deferredDeleter is a client that can record a delete to do later: journal.Client.
type deferredDeleter interface {
	DeferDelete(key, etag string) string
	DeleteDone(id string)
}

// releaseWait bounds how long an unlink waits for the RELEASE of read handles already closed.
const releaseWait = 200 * time.Millisecond

// pendingDelete is the delete of an unlinked file still open for reading.
type pendingDelete struct {
	key, etag string
	record    string // the journal's record, "" when not journaled
}

// hide makes key at etag invisible to lookups and listings until unhide.
func (f *fsys) hide(key, etag string) {
	f.hiddenMu.Lock()
	defer f.hiddenMu.Unlock()
	f.hidden[key] = etag
}

func (f *fsys) unhide(key, etag string) {
	f.hiddenMu.Lock()
	defer f.hiddenMu.Unlock()
	if f.hidden[key] == etag {
		delete(f.hidden, key)
	}
}

// isHidden reports whether the object key at etag was unlinked and waits for its readers.
func (f *fsys) isHidden(key, etag string) bool {
	f.hiddenMu.Lock()
	defer f.hiddenMu.Unlock()
	e, ok := f.hidden[key]
	return ok && e == etag
}

// deferUnlink defers the delete of n's object key when n has readers: it reports false (nothing deferred)
// when it has none or its version is unknown.
func (f *fsys) deferUnlink(n *fileNode, key string) bool {
	// The kernel sends RELEASE after close(2) returned: a file read and closed just before its unlink (read,
	// then delete) may still count a reader for a moment. Wait a little for such releases.
	for deadline := time.Now().Add(releaseWait); ; time.Sleep(time.Millisecond) {
		n.mu.Lock()
		if n.readers == 0 || time.Now().After(deadline) {
			break
		}
		n.mu.Unlock()
	}
	defer n.mu.Unlock()
	if n.readers == 0 || n.etag == "" || n.pending != nil {
		return n.pending != nil
	}
	p := &pendingDelete{key: key, etag: n.etag}
	if dd, ok := f.client.(deferredDeleter); ok {
		p.record = dd.DeferDelete(key, n.etag)
	}
	n.pending = p
	f.hide(key, n.etag)
	f.log.Info("unlinked while open for reading: the object is deleted at the last close", "key", key,
		"readers", n.readers)
	return true
}

// openedForReading counts a read handle of n.
func (n *fileNode) openedForReading() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.readers++
}

// readerReleased uncounts a read handle of n and does n's deferred delete after the last one.
func (n *fileNode) readerReleased() {
	n.mu.Lock()
	n.readers--
	var p *pendingDelete
	if n.readers == 0 {
		p, n.pending = n.pending, nil
	}
	n.mu.Unlock()
	if p != nil {
		n.f.finishDelete(p)
	}
}

// finishDelete deletes p's object if it is still p's version (another writer may have taken the name since),
// then forgets the pending delete. A failed delete is logged and stays journaled for the next start.
func (f *fsys) finishDelete(p *pendingDelete) {
	defer f.unhide(p.key, p.etag)
	ctx := context.Background()
	info, err := f.client.HeadObject(ctx, p.key)
	switch {
	case errors.Is(err, s3client.ErrNotFound) || (err == nil && info.ETag != p.etag):
		// gone, or replaced: nothing of the unlinked version is left to delete
	case err != nil:
		f.log.Error("deleting a file unlinked while open failed; the object stays", "key", p.key, "err", err)
		return
	default:
		if err := f.client.DeleteObject(ctx, p.key); err != nil && !errors.Is(err, s3client.ErrNotFound) {
			f.log.Error("deleting a file unlinked while open failed; the object stays", "key", p.key, "err", err)
			return
		}
		f.cache.Invalidate(p.key)
	}
	if dd, ok := f.client.(deferredDeleter); ok && p.record != "" {
		dd.DeleteDone(p.record)
	}
}
