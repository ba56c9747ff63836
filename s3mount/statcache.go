package s3mount

import (
	"strings"
	"sync"
	"time"

	"github.com/s3ftp/s3ftp/s3client"
	"github.com/s3ftp/s3ftp/s3mount/upload"
)

// statEntry is what the mount believes a key (without a trailing "/") names.
type statEntry struct {
	dir  bool
	info s3client.ObjectInfo // files only: as listed or as HEAD returned it
}

// statCache remembers what keys named for a short time, so `ls -l` and the lookups around it cost no HEAD per
// entry: listings and HEADs fill it, changes made through the mount update it. Positive entries live ttl,
// negative ones (the key names nothing) negTTL. A zero TTL disables that half. Expired entries are swept every
// sweepEvery puts, which bounds the map by the entries inserted within one TTL.
//
// A directory prefix known complete (complete: listed in full by Readdir, or created empty by Mkdir) answers,
// for min(ttl, negTTL), a key below it that has no entry as naming nothing: creating files one after another
// in a directory just listed or made costs no HEAD and no LIST per name. Every change through the mount that
// leaves a key below it existing without an entry goes through forget, which drops the marks of the key's
// parent and of the key as a directory; so does a put with a zero ttl.
//
// The checksums of versions this mount committed are remembered by ETag (sums), so the read-only checksum
// attributes of a file just written cost no GetObjectTagging.
//
// Listings carry no user metadata, so the cache also remembers, beyond the TTL, the attribute headers
// (x-amz-meta-mode, -uid, -gid, -mtime) last seen for a key with a HEAD or written through the mount, with the
// ETag and size they belong to: a listed object with the same ETag and size shows them (putListed). At most
// maxKnownAttrs keys are remembered; beyond that an arbitrary one is forgotten.
type statCache struct {
	ttl, negTTL time.Duration
	now         func() time.Time

	mu       sync.Mutex // guards the fields below; a leaf lock
	entries  map[string]timedStat
	negative map[string]time.Time // key → expiry
	puts     int
	known    map[string]knownAttrs   // key → headers last seen, kept beyond the TTL
	complete map[string]completeMark // directory prefix ("" or ending in "/") → its complete mark
	sums     map[string]knownSums    // key → the checksums this mount stored with a version it committed
	forgets  uint64                  // forget calls so far
}

// knownAttrs are the user metadata of one version of an object.
type knownAttrs struct {
	etag string
	size int64
	meta map[string]string
}

// maxKnownAttrs bounds statCache.known (about 200 bytes per entry).
const maxKnownAttrs = 1 << 16

// knownSums are the checksums a version was stored with (have false: none), for that ETag only.
type knownSums struct {
	etag string
	sums upload.Checksums
	have bool
}

// putSums records what the version etag of key, committed by this mount, was stored with. At most
// maxKnownAttrs keys are remembered; beyond that an arbitrary one is forgotten.
func (c *statCache) putSums(key, etag string, sums upload.Checksums, have bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.sums[key]; !ok && len(c.sums) >= maxKnownAttrs {
		for k := range c.sums {
			delete(c.sums, k)
			break
		}
	}
	c.sums[key] = knownSums{etag: etag, sums: sums, have: have}
}

// getSums returns the checksums recorded for key at etag; known false when none were recorded for it.
func (c *statCache) getSums(key, etag string) (sums upload.Checksums, have, known bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k, ok := c.sums[key]
	if !ok || k.etag != etag || etag == "" {
		return upload.Checksums{}, false, false
	}
	return k.sums, k.have, true
}

// completeMark says a directory was complete until expires; small, that it fits one listing page, so
// listing it again answers a lookup below it in one request (statCache.relistable).
type completeMark struct {
	expires time.Time
	small   bool
}

// relistKeep is how long an expired complete mark is kept to tell that its directory is worth listing again.
const relistKeep = time.Minute

type timedStat struct {
	statEntry
	expires time.Time
}

const sweepEvery = 4096

func newStatCache(ttl, negTTL time.Duration) *statCache {
	return &statCache{ttl: ttl, negTTL: negTTL, now: time.Now,
		entries: make(map[string]timedStat), negative: make(map[string]time.Time), known: make(map[string]knownAttrs),
		complete: make(map[string]completeMark), sums: make(map[string]knownSums)}
}

// get returns the entry of key while it is fresh. negative reports a fresh "names nothing" entry.
func (c *statCache) get(key string) (e statEntry, hit, negative bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if t, ok := c.entries[key]; ok {
		if now.Before(t.expires) {
			return t.statEntry, true, false
		}
		delete(c.entries, key)
	}
	if exp, ok := c.negative[key]; ok {
		if now.Before(exp) {
			return statEntry{}, false, true
		}
		delete(c.negative, key)
	}
	if m, ok := c.complete[parentPrefix(key)]; ok && now.Before(m.expires) {
		return statEntry{}, false, true
	}
	return statEntry{}, false, false
}

// relistable reports whether the directory prefix was complete within relistKeep and fits one listing page:
// a lookup below it is then better answered by listing it again (one request, and the following lookups cost
// none) than by a HEAD and a listing of the key as a directory.
func (c *statCache) relistable(prefix string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.complete[prefix]
	return ok && m.small && c.now().Before(m.expires.Add(relistKeep))
}

// parentPrefix returns the prefix of key's directory: "" for a key at the top, else up to its last "/".
func parentPrefix(key string) string { return key[:strings.LastIndexByte(key, '/')+1] }

// snapshot is the moment a listing (or a Mkdir) started: the time its entries' TTLs count from, and how many
// forgets had happened.
type snapshot struct {
	at      time.Time
	forgets uint64
}

// snapshot returns the current moment, for markComplete.
func (c *statCache) snapshot() snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	return snapshot{at: c.now(), forgets: c.forgets}
}

// markComplete records that every key directly below prefix ("" or ending in "/") got an entry since s: the
// directory was listed in full, or created empty; small when it fits one listing page. The mark lasts min(ttl, negTTL) from s, so it never outlives
// the entries the listing made; nothing is marked when a forget happened since s (it may have been for a key
// below prefix, after the listing saw it).
func (c *statCache) markComplete(prefix string, s snapshot, small bool) {
	d := min(c.ttl, c.negTTL)
	if d <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.forgets != s.forgets {
		return
	}
	c.complete[prefix] = completeMark{expires: s.at.Add(d), small: small}
}

// put records that key names e. A file's non-nil Metadata (from a HEAD or a write: empty when the object has
// no headers) is remembered for listings.
func (c *statCache) put(key string, e statEntry) {
	if !e.dir && e.info.Metadata != nil {
		c.mu.Lock()
		if _, ok := c.known[key]; !ok && len(c.known) >= maxKnownAttrs {
			for k := range c.known {
				delete(c.known, k)
				break
			}
		}
		c.known[key] = knownAttrs{etag: e.info.ETag, size: e.info.Size, meta: e.info.Metadata}
		c.mu.Unlock()
	}
	if c.ttl <= 0 {
		c.forget(key)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.negative, key)
	c.entries[key] = timedStat{statEntry: e, expires: c.now().Add(c.ttl)}
	c.sweepLocked()
}

// putListed records a file seen in a listing, with the attribute headers remembered for the same ETag and
// size (listings carry none).
func (c *statCache) putListed(key string, info s3client.ObjectInfo) {
	c.mu.Lock()
	if k, ok := c.known[key]; ok && k.etag == info.ETag && k.size == info.Size && info.ETag != "" {
		info.Metadata = k.meta
	}
	c.mu.Unlock()
	c.put(key, statEntry{info: info})
}

// putListedDir records that key names a directory, seen in a listing: its marker's headers stay as known
// when a fresh entry has them, otherwise they are unknown (nil Metadata) until asked for.
func (c *statCache) putListedDir(key string) {
	e := statEntry{dir: true}
	c.mu.Lock()
	if t, ok := c.entries[key]; ok && t.dir && c.now().Before(t.expires) {
		e.info = t.info
	}
	c.mu.Unlock()
	c.put(key, e)
}

// putNegative records that key names nothing.
func (c *statCache) putNegative(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, key)
	delete(c.known, key)
	if c.negTTL <= 0 {
		delete(c.negative, key)
		return
	}
	c.negative[key] = c.now().Add(c.negTTL)
	c.sweepLocked()
}

// forget drops whatever is known about key, and the complete marks of its directory and of the key as a
// directory (and below).
func (c *statCache) forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.forgets++
	delete(c.entries, key)
	delete(c.negative, key)
	delete(c.complete, parentPrefix(key))
	for p := range c.complete {
		if strings.HasPrefix(p, key+"/") {
			delete(c.complete, p)
		}
	}
}

func (c *statCache) sweepLocked() {
	c.puts++
	if c.puts%sweepEvery != 0 {
		return
	}
	now := c.now()
	for k, t := range c.entries {
		if !now.Before(t.expires) {
			delete(c.entries, k)
		}
	}
	for k, exp := range c.negative {
		if !now.Before(exp) {
			delete(c.negative, k)
		}
	}
	for k, m := range c.complete {
		if !now.Before(m.expires.Add(relistKeep)) {
			delete(c.complete, k)
		}
	}
}
