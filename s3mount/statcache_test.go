package s3mount

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/s3ftp/s3ftp/s3client"
)

// cacheString prints the cache's fresh entries sorted, one per line: "key file size", "key dir" or "key -".
func cacheString(c *statCache) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	var lines []string
	for k, e := range c.entries {
		if !now.Before(e.expires) {
			continue
		}
		if e.dir {
			lines = append(lines, k+" dir")
		} else {
			lines = append(lines, fmt.Sprintf("%s file %d", k, e.info.Size))
		}
	}
	for k, exp := range c.negative {
		if now.Before(exp) {
			lines = append(lines, k+" -")
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func TestStatCacheTTLs(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newStatCache(time.Second, 500*time.Millisecond)
	c.now = func() time.Time { return now }
	c.put("a", statEntry{info: s3client.ObjectInfo{Size: 3}})
	c.put("d", statEntry{dir: true})
	c.putNegative("gone")
	if got, want := cacheString(c), "a file 3\nd dir\ngone -"; got != want {
		t.Fatalf("cache =\n%s\nwant\n%s", got, want)
	}
	if _, hit, neg := c.get("gone"); hit || !neg {
		t.Errorf("get(gone) hit=%v neg=%v, want a negative hit", hit, neg)
	}
	now = now.Add(600 * time.Millisecond)
	if got, want := cacheString(c), "a file 3\nd dir"; got != want {
		t.Errorf("after the negative TTL:\n%s\nwant\n%s", got, want)
	}
	if _, hit, neg := c.get("gone"); hit || neg {
		t.Errorf("expired negative entry still answers: hit=%v neg=%v", hit, neg)
	}
	c.put("gone", statEntry{info: s3client.ObjectInfo{Size: 1}})
	c.putNegative("a")
	if got, want := cacheString(c), "a -\nd dir\ngone file 1"; got != want {
		t.Errorf("after replacing entries:\n%s\nwant\n%s", got, want)
	}
	now = now.Add(time.Second)
	if got := cacheString(c); got != "" {
		t.Errorf("after every TTL: %q, want empty", got)
	}
	c.forget("gone")
	if _, hit, _ := c.get("gone"); hit {
		t.Errorf("forgotten entry still answers")
	}
}

func TestStatCacheZeroTTLCachesNothing(t *testing.T) {
	c := newStatCache(0, 0)
	c.put("a", statEntry{})
	c.putNegative("b")
	if got := cacheString(c); got != "" {
		t.Errorf("cache with zero TTLs = %q, want empty", got)
	}
}

func TestStatCacheSweepBoundsTheMap(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newStatCache(time.Second, time.Second)
	c.now = func() time.Time { return now }
	for i := 0; i < sweepEvery; i++ {
		c.put(fmt.Sprint("old", i), statEntry{})
	}
	now = now.Add(2 * time.Second)
	for i := 0; i < sweepEvery; i++ {
		c.putNegative(fmt.Sprint("new", i))
	}
	c.mu.Lock()
	n := len(c.entries) + len(c.negative)
	c.mu.Unlock()
	if n != sweepEvery {
		t.Errorf("%d entries held after the old ones expired, want %d", n, sweepEvery)
	}
}

// A directory marked complete answers the names it did not list as naming nothing, until the mark (counted
// from the listing's start) expires; a forget below it, during or after the listing, drops the mark.
func TestStatCacheCompleteDirectory(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newStatCache(time.Second, 2*time.Second)
	c.now = func() time.Time { return now }
	neg := func(key string) bool { _, _, n := c.get(key); return n }

	s := c.snapshot()
	c.put("d/a", statEntry{info: s3client.ObjectInfo{Size: 1}})
	now = now.Add(100 * time.Millisecond)
	c.markComplete("d/", s, true)
	if !neg("d/new") || neg("d/a") {
		t.Errorf("after the listing: d/new negative %v (want true), d/a negative %v (want false)", neg("d/new"), neg("d/a"))
	}
	if neg("e/new") || neg("d/sub/x") {
		t.Errorf("the mark reached beyond d/'s own children")
	}
	now = now.Add(950 * time.Millisecond) // 1.05 s after the listing's start: d/a has expired, so must the mark
	if neg("d/new") || neg("d/a") {
		t.Errorf("the mark outlived the listing's entries")
	}
	if !c.relistable("d/") {
		t.Errorf("a small directory complete a moment ago is not relistable")
	}
	now = now.Add(relistKeep)
	if c.relistable("d/") {
		t.Errorf("relistable %v after the mark expired", relistKeep)
	}
	c.markComplete("big/", c.snapshot(), false)
	now = now.Add(time.Second)
	if c.relistable("big/") {
		t.Errorf("a directory of several listing pages is relistable")
	}

	s = c.snapshot()
	c.markComplete("d/", s, true)
	c.forget("d/renamed-here")
	if neg("d/renamed-here") || neg("d/other") {
		t.Errorf("a forget below d/ left its mark")
	}

	s = c.snapshot()
	c.forget("d/x") // during the listing
	c.markComplete("d/", s, true)
	if neg("d/y") {
		t.Errorf("a listing with a forget during it marked d/ complete")
	}

	c.markComplete("d/sub/", c.snapshot(), true)
	c.forget("d/sub")
	if neg("d/sub/x") {
		t.Errorf("forgetting d/sub left the mark of d/sub/")
	}

	zero := newStatCache(time.Second, 0)
	zero.markComplete("d/", zero.snapshot(), true)
	if _, _, n := zero.get("d/x"); n {
		t.Errorf("a mark with NegativeTTL 0")
	}
}
