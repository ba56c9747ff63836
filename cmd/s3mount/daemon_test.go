package main

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func TestParseErrorLine(t *testing.T) {
	tests := []struct {
		line string
		code int
		msg  string
		ok   bool
	}{
		{"error 4 bucket \"b\" does not exist at http://x", 4, `bucket "b" does not exist at http://x`, true},
		{"error 3 mount point /m does not exist", 3, "mount point /m does not exist", true},
		{"error 2", 2, "", true},
		{"ready", 0, "", false},
		{"error x msg", 0, "", false},
		{"error 0 msg", 0, "", false},
		{"error 300 msg", 0, "", false},
		{"", 0, "", false},
	}
	for _, tt := range tests {
		code, msg, ok := parseErrorLine(tt.line)
		if code != tt.code || msg != tt.msg || ok != tt.ok {
			t.Errorf("parseErrorLine(%q) = %d, %q, %v; want %d, %q, %v", tt.line, code, msg, ok, tt.code, tt.msg, tt.ok)
		}
	}
}

// TestNotifierRoundTrip checks that what the child writes is what the parent parses, with the message on one line.
func TestNotifierRoundTrip(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	n := &notifier{f: w}
	n.fail(ExitS3, errors.New("bucket \"b\"\ndoes not exist"))
	n.ready() // after fail the pipe is closed: a second status must not be written
	line, err := readStatusLine(r)
	if err != nil {
		t.Fatal(err)
	}
	code, msg, ok := parseErrorLine(line)
	if !ok || code != ExitS3 || msg != `bucket "b" does not exist` {
		t.Fatalf("status line %q parsed as %d, %q, %v", line, code, msg, ok)
	}

	r2, w2, _ := os.Pipe()
	defer r2.Close()
	(&notifier{f: w2}).ready()
	if line, _ := readStatusLine(r2); line != "ready" {
		t.Fatalf("ready line = %q", line)
	}

	var none *notifier // foreground: no pipe, calls are no-ops
	none.ready()
	none.fail(1, errors.New("x"))
}

func TestChildNotifierFromEnv(t *testing.T) {
	t.Setenv(readyFDEnv, "")
	if childNotifier() != nil {
		t.Error("notifier without the environment variable")
	}
	t.Setenv(readyFDEnv, "not-a-number")
	if childNotifier() != nil {
		t.Error("notifier from a malformed fd")
	}
	if v, ok := os.LookupEnv(readyFDEnv); ok && v != "" {
		t.Errorf("%s still set to %q: started programs would inherit it", readyFDEnv, v)
	}
}

func TestOneLine(t *testing.T) {
	if got := oneLine("a\n  b\tc\n"); got != "a b c" || strings.Contains(got, "\n") {
		t.Errorf("oneLine = %q", got)
	}
}
