package events

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// Filter selects the records a sink receives. Each non-empty list must match; an empty list matches everything.
type Filter struct {
	// Kinds are event kinds (Kinds).
	Kinds []string `yaml:"kinds"`
	// Users are login names, compared exactly.
	Users []string `yaml:"users"`
	// Paths are path.Match patterns over the virtual path ("/in/*.csv"); a rename matches on its source or its
	// target. "*" does not cross "/".
	Paths []string `yaml:"paths"`
}

// Validate reports an unknown kind or a malformed pattern.
func (f Filter) Validate() error {
	for _, k := range f.Kinds {
		if !slices.Contains(Kinds, k) {
			return fmt.Errorf("unknown event kind %q (kinds: %v)", k, Kinds)
		}
	}
	for _, p := range f.Paths {
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("path pattern %q: %w", p, err)
		}
	}
	return nil
}

// Match reports whether r passes the filter. Malformed patterns (refused by Validate) match nothing.
func (f Filter) Match(r *Record) bool {
	if len(f.Kinds) > 0 && !slices.Contains(f.Kinds, r.Kind) {
		return false
	}
	if len(f.Users) > 0 && !slices.Contains(f.Users, r.User) {
		return false
	}
	if len(f.Paths) == 0 {
		return true
	}
	for _, p := range f.Paths {
		if ok, _ := path.Match(p, r.Path); ok {
			return true
		}
		if r.To != "" {
			if ok, _ := path.Match(p, r.To); ok {
				return true
			}
		}
	}
	return false
}

// ParseFilter reads the one-line form of a Filter (ftpfront --event-filter): ";"-separated "key=v1,v2" with
// keys kinds, users and paths, e.g. "kinds=upload_completed;users=acme,globex;paths=/in/*.csv". Empty means
// no filter.
func ParseFilter(s string) (Filter, error) {
	var f Filter
	for _, part := range strings.Split(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return Filter{}, fmt.Errorf("filter %q: want key=value", part)
		}
		var vals []string
		for _, x := range strings.Split(v, ",") {
			if x = strings.TrimSpace(x); x != "" {
				vals = append(vals, x)
			}
		}
		switch strings.TrimSpace(k) {
		case "kinds":
			f.Kinds = append(f.Kinds, vals...)
		case "users":
			f.Users = append(f.Users, vals...)
		case "paths":
			f.Paths = append(f.Paths, vals...)
		default:
			return Filter{}, fmt.Errorf("filter key %q: want kinds, users or paths", k)
		}
	}
	return f, f.Validate()
}
