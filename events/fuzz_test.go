package events

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// ParseFilter never panics, and what it accepts passes Validate.
func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{"", "kinds=upload_completed", "kinds=upload_completed;users=a,b;paths=/in/*.csv", "paths=[", "x=y", ";;", "users="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		flt, err := ParseFilter(s)
		if err == nil && flt.Validate() != nil {
			t.Fatalf("ParseFilter(%q) accepted an invalid filter %+v", s, flt)
		}
	})
}

// readJournal on any bytes: the valid prefix is within the file and ends at a line end, and every record it
// returns decodes and has an ID.
func FuzzReadJournal(f *testing.F) {
	f.Add([]byte(`{"version":1,"id":"ab","kind":"upload_completed"}` + "\n"))
	f.Add([]byte(`{"version":1,"id":"ab"}` + "\n" + `{"version":1,"id":"c`))
	f.Add([]byte("\n\n{}\nnot json\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), journalName)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		lines, valid, _, err := readJournal(p)
		if err != nil {
			t.Fatal(err)
		}
		if valid < 0 || valid > int64(len(data)) || (valid > 0 && data[valid-1] != '\n') {
			t.Fatalf("valid prefix %d of %q", valid, data)
		}
		for _, l := range lines {
			var r Record
			if json.Unmarshal(l.line, &r) != nil || r.ID == "" || r.ID != l.rec.ID {
				t.Fatalf("returned line %q", l.line)
			}
		}
	})
}
