package s3mount

import (
	"maps"
	"strconv"
	"testing"
	"time"

	"github.com/s3ftp/s3ftp/s3client"
)

// Listings carry no user metadata: a listed object shows the attribute headers last seen (HEAD or a write
// through the mount) for the same ETag and size, beyond the stat TTL; a changed object or a deleted key loses
// them.
func TestStatCacheKnownAttrsForListings(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newStatCache(time.Second, time.Second)
	c.now = func() time.Time { return now }
	meta := map[string]string{"mtime": "1600000000", "mode": "33184"}
	c.put("k", statEntry{info: s3client.ObjectInfo{Key: "k", ETag: `"e1"`, Size: 3, Metadata: meta}})
	now = now.Add(time.Hour)
	c.putListed("k", s3client.ObjectInfo{Key: "k", ETag: `"e1"`, Size: 3})
	if e, hit, _ := c.get("k"); !hit || !maps.Equal(e.info.Metadata, meta) {
		t.Errorf("listed with the same ETag and size: hit=%v metadata %v, want %v", hit, e.info.Metadata, meta)
	}
	c.putListed("k", s3client.ObjectInfo{Key: "k", ETag: `"e2"`, Size: 3})
	if e, _, _ := c.get("k"); e.info.Metadata != nil {
		t.Errorf("listed with another ETag: metadata %v, want none", e.info.Metadata)
	}
	c.putNegative("k")
	c.putListed("k", s3client.ObjectInfo{Key: "k", ETag: `"e1"`, Size: 3})
	if e, _, _ := c.get("k"); e.info.Metadata != nil {
		t.Errorf("after a delete: metadata %v, want none", e.info.Metadata)
	}
	for i := 0; i < maxKnownAttrs+10; i++ {
		c.put(strconv.Itoa(i), statEntry{info: s3client.ObjectInfo{Metadata: map[string]string{}}})
	}
	if n := len(c.known); n != maxKnownAttrs {
		t.Errorf("%d known attribute sets, want %d (the bound)", n, maxKnownAttrs)
	}
}

// s3fs's mtime header: seconds, with nanoseconds only when there are any; both forms parse back.
func TestMtimeHeaderFormat(t *testing.T) {
	for _, c := range []struct {
		t time.Time
		s string
	}{
		{time.Unix(1600000000, 0), "1600000000"},
		{time.Unix(1600000000, 5), "1600000000.000000005"},
		{time.Unix(1, 250000000), "1.250000000"},
	} {
		if got := formatMtime(c.t); got != c.s {
			t.Errorf("formatMtime(%v) = %q, want %q", c.t, got, c.s)
		}
		if got, ok := parseMtime(c.s); !ok || !got.Equal(c.t) {
			t.Errorf("parseMtime(%q) = %v, %v", c.s, got, ok)
		}
	}
	if got, ok := parseMtime("1700000000.5"); !ok || got.Nanosecond() != 500000000 {
		t.Errorf("parseMtime(1700000000.5) = %v, %v", got, ok)
	}
	for _, bad := range []string{"", "x", "-5", "0", "1.", "1.1234567890", "1.x"} {
		if _, ok := parseMtime(bad); ok {
			t.Errorf("parseMtime(%q) accepted", bad)
		}
	}
}
