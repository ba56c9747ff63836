package events

import (
	"fmt"
	"path"
	"slices"
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
