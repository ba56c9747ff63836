package flagenv

import (
	"strings"
	"testing"
)

// FuzzParse checks that any input parses or fails without panicking, that every key it accepts is a valid
// key, and that a printed value reads back unchanged.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"a = b", "a: 'x # y'", "a = \"\\t\" # c", "# c\nflag", "a = b # c", "=", "a = \"x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		lines, err := Parse(strings.NewReader(s), "fuzz")
		if err != nil {
			return
		}
		for _, l := range lines {
			if checkKey(l.Key) != nil {
				t.Fatalf("accepted bad key %q", l.Key)
			}
			q := quoteIfNeeded(l.Value)
			back, err := parseValue(q)
			if err != nil || back != l.Value {
				t.Fatalf("value %q printed as %q reads back as %q, %v", l.Value, q, back, err)
			}
		}
	})
}
