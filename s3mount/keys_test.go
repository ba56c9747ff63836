package s3mount

import (
	"strings"
	"syscall"
	"testing"
)

func TestChildKey(t *testing.T) {
	long := strings.Repeat("x", 256)
	cases := []struct {
		dirKey, name string
		dir          bool
		want         string
		errno        syscall.Errno
	}{
		{"", "a", false, "a", 0},
		{"p/", "a", true, "p/a/", 0},
		{"p/", "", false, "", syscall.EINVAL},
		{"p/", ".", false, "", syscall.EINVAL},
		{"p/", "..", true, "", syscall.EINVAL},
		{"p/", "a/b", false, "", syscall.EINVAL},
		{"p/", "a\x00b", false, "", syscall.EINVAL},
		{"p/", long, false, "", syscall.ENAMETOOLONG},
		{strings.Repeat("d/", 400), strings.Repeat("y", 230), false, "", syscall.ENAMETOOLONG},
		{strings.Repeat("d/", 397), strings.Repeat("y", 229), true, strings.Repeat("d/", 397) + strings.Repeat("y", 229) + "/", 0},
	}
	for _, c := range cases {
		got, errno := childKey(c.dirKey, c.name, c.dir)
		if got != c.want || errno != c.errno {
			t.Errorf("childKey(%q, %q, %v) = %q, %v; want %q, %v", c.dirKey, c.name, c.dir, got, errno, c.want, c.errno)
		}
	}
}

func TestNameFromKey(t *testing.T) {
	cases := []struct {
		dirKey, key string
		name        string
		dir, ok     bool
	}{
		{"", "a", "a", false, true},
		{"p/", "p/a/", "a", true, true},
		{"p/", "p/", "", false, false},      // the marker itself
		{"p/", "p//", "", false, false},     // empty segment
		{"p/", "p/./", "", false, false},    // "."
		{"p/", "p/..", "", false, false},    // ".."
		{"p/", "p/a\x00", "", false, false}, // NUL
		{"p/", "q/a", "", false, false},     // outside
		{"p/", "p/" + strings.Repeat("n", 256), "", false, false},
		{"", strings.Repeat("k", 1025), "", false, false},
	}
	for _, c := range cases {
		name, dir, ok, reason := nameFromKey(c.dirKey, c.key)
		if name != c.name || dir != c.dir || ok != c.ok || (!ok && reason == "") {
			t.Errorf("nameFromKey(%q, %q) = %q, %v, %v, %q; want %q, %v, %v", c.dirKey, c.key, name, dir, ok, reason,
				c.name, c.dir, c.ok)
		}
	}
}

// FuzzKeyName checks that the mapping round-trips: every name childKey accepts comes back from nameFromKey, and
// every key nameFromKey accepts is the key childKey builds for the name.
func FuzzKeyName(f *testing.F) {
	for _, s := range [][2]string{{"", "a"}, {"p/", "b/"}, {"p/q/", ".."}, {"", "a//b"}, {"x/", "\x00"}} {
		f.Add(s[0], s[1], false)
		f.Add(s[0], s[1], true)
	}
	f.Fuzz(func(t *testing.T, dirKey, name string, dir bool) {
		if dirKey != "" && !strings.HasSuffix(dirKey, "/") {
			dirKey += "/"
		}
		if key, errno := childKey(dirKey, name, dir); errno == 0 {
			if !strings.HasPrefix(key, dirKey) || len(key) > maxKeyLen {
				t.Fatalf("childKey(%q, %q) = %q: not a valid key under the directory", dirKey, name, key)
			}
			n, d, ok, reason := nameFromKey(dirKey, key)
			if !ok || n != name || d != dir {
				t.Fatalf("round trip of %q under %q: got %q, %v, %v (%s)", name, dirKey, n, d, ok, reason)
			}
		}
		key := dirKey + name
		if n, d, ok, _ := nameFromKey(dirKey, key); ok {
			back, errno := childKey(dirKey, n, d)
			if errno != 0 || back != key {
				t.Fatalf("nameFromKey(%q, %q) = %q, %v but childKey gives %q, %v", dirKey, key, n, d, back, errno)
			}
		}
	})
}
