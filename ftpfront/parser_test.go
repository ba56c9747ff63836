package ftpfront

import (
	"bytes"
	"errors"
	"regexp"
	"strings"
	"testing"
)

func TestParseCommand(t *testing.T) {
	cases := []struct {
		in        string
		verb, arg string
		err       bool
	}{
		{"USER alice\r\n", "USER", "alice", false},
		{"user alice\n", "USER", "alice", false},
		{"PWD\r\n", "PWD", "", false},
		{"STOR name with spaces \r\n", "STOR", "name with spaces ", false},
		{"RETR  lead\r\n", "RETR", " lead", false},
		{"\xff\xf4\xff\xf2ABOR\r\n", "ABOR", "", false},
		{"\xf2ABOR\r\n", "ABOR", "", false},
		{"MKD a\rb\r\n", "", "", true},
		{"MKD a\x00b\r\n", "", "", true},
		{"AB\r\n", "", "", true},
		{"ABCDE x\r\n", "", "", true},
		{"US3R x\r\n", "", "", true},
		{"xsha256 f\r\n", "XSHA256", "f", false},
		{"XSHA2561 f\r\n", "", "", true},
		{"XS256 f\r\n", "", "", true},
		{"\r\n", "", "", true},
		{" USER x\r\n", "", "", true},
	}
	for _, c := range cases {
		got, err := ParseCommand([]byte(c.in))
		if (err != nil) != c.err {
			t.Errorf("ParseCommand(%q) error = %v, want error %v", c.in, err, c.err)
			continue
		}
		if !c.err && (got.Verb != c.verb || got.Arg != c.arg) {
			t.Errorf("ParseCommand(%q) = %q %q, want %q %q", c.in, got.Verb, got.Arg, c.verb, c.arg)
		}
	}
}

// verbShape is what ParseCommand accepts as a verb.
var verbShape = regexp.MustCompile(`^[A-Z]{3,4}[0-9]{0,3}$`)

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"USER a\r\n", "\xff\xf4\xff\xf2ABOR\r\n", "MFMT 20200101000000 f\r\n", "x", "", "LIST -la /\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		cmd, err := ParseCommand(line)
		if err != nil {
			return
		}
		if !verbShape.MatchString(cmd.Verb) {
			t.Fatalf("verb %q is not 3-4 upper-case letters and up to 3 digits", cmd.Verb)
		}
		if strings.ContainsAny(cmd.Arg, "\r\n\x00") {
			t.Fatalf("arg %q contains CR, LF or NUL", cmd.Arg)
		}
		if !bytes.Contains(line, []byte(cmd.Arg)) {
			t.Fatalf("arg %q is not part of the line", cmd.Arg)
		}
	})
}

// The line reader never keeps more than MaxLineLength bytes of a line, reports over-long lines once, and keeps
// reading the lines that follow.
func TestLineReaderBounded(t *testing.T) {
	in := strings.Repeat("A", 1<<20) + "\r\nNOOP\r\n" + strings.Repeat("B", MaxLineLength) + "\r\n"
	lr := newLineReader(strings.NewReader(in))
	if _, err := lr.readLine(); !errors.Is(err, errLineTooLong) {
		t.Fatalf("first line: %v", err)
	}
	if cap(lr.buf) > 2*MaxLineLength+8 {
		t.Fatalf("buffer grew to %d bytes", cap(lr.buf))
	}
	if l, err := lr.readLine(); err != nil || string(l) != "NOOP\r\n" {
		t.Fatalf("second line %q, %v", l, err)
	}
	if l, err := lr.readLine(); err != nil || len(l) != MaxLineLength+2 {
		t.Fatalf("a line of exactly MaxLineLength: %d bytes, %v", len(l), err)
	}
}

func TestCleanVirtual(t *testing.T) {
	for in, want := range map[string]string{
		"/":          "/",
		"/../..":     "/",
		"/a/../../b": "/b",
		"/a//b/./c/": "/a/b/c",
		"/a/b/..":    "/a",
	} {
		if got := cleanVirtual(in); got != want {
			t.Errorf("cleanVirtual(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseOptionsHelpers(t *testing.T) {
	if lo, hi, err := ParsePortRange("40000-40099"); err != nil || lo != 40000 || hi != 40099 {
		t.Fatalf("ParsePortRange = %d %d %v", lo, hi, err)
	}
	if lo, hi, err := ParsePortRange("0"); err != nil || lo != 0 || hi != 0 {
		t.Fatalf("ParsePortRange(0) = %d %d %v", lo, hi, err)
	}
	for _, bad := range []string{"5-1", "x", "0-70000", "-"} {
		if _, _, err := ParsePortRange(bad); err == nil {
			t.Errorf("ParsePortRange(%q) accepted", bad)
		}
	}
	m, err := ParseHostMap("10.0.0.0/8=10.1.2.3, 0.0.0.0/0=ftp.example.com")
	if err != nil || len(m) != 2 || m[0].Host != "10.1.2.3" || m[1].Prefix.Bits() != 0 {
		t.Fatalf("ParseHostMap = %+v, %v", m, err)
	}
	if _, err := ParseHostMap("10.0.0.0/8"); err == nil {
		t.Fatal("ParseHostMap accepted an entry without host")
	}
	c, err := ParseCIDRList("10.0.0.0/8,192.168.1.1")
	if err != nil || len(c) != 2 || c[1].Bits() != 32 {
		t.Fatalf("ParseCIDRList = %v, %v", c, err)
	}
	o := DefaultOptions()
	o.PassivePortMin = 10
	if err := o.Validate(); err == nil {
		t.Fatal("Validate accepted a half-set port range")
	}
}

func TestHostResolverLongestPrefix(t *testing.T) {
	maps, _ := ParseHostMap("0.0.0.0/0=198.51.100.1,10.0.0.0/8=10.1.2.3,10.9.0.0/16=10.9.9.9")
	h, err := newHostResolver("", maps, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	for client, want := range map[string]string{"10.9.1.1": "10.9.9.9", "10.1.1.1": "10.1.2.3", "8.8.8.8": "198.51.100.1"} {
		got, err := h.pasvIP(t.Context(), mustAddr(client), mustAddr("127.0.0.1"))
		if err != nil || got.String() != want {
			t.Errorf("pasvIP(%s) = %v, %v; want %s", client, got, err, want)
		}
	}
	byName, _ := ParseHostMap("127.0.0.0/8=localhost")
	h3, _ := newHostResolver("", byName, testLogger(t))
	if got, err := h3.pasvIP(t.Context(), mustAddr("127.0.0.9"), mustAddr("127.0.0.5")); err != nil || got.String() != "127.0.0.1" {
		t.Errorf("host name in the map resolved to %v, %v", got, err)
	}
	h2, _ := newHostResolver("", nil, testLogger(t))
	if got, _ := h2.pasvIP(t.Context(), mustAddr("10.0.0.1"), mustAddr("127.0.0.5")); got.String() != "127.0.0.5" {
		t.Errorf("default PASV address = %v", got)
	}
}
