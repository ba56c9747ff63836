package main

import (
	"os"
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"0", 0, false},
		{"1048576", 1 << 20, false},
		{"512k", 512 << 10, false},
		{"512K", 512 << 10, false},
		{"64M", 64 << 20, false},
		{"64MiB", 64 << 20, false},
		{"64mib", 64 << 20, false},
		{"64 MiB", 64 << 20, false},
		{"2G", 2 << 30, false},
		{"2GiB", 2 << 30, false},
		{"1T", 1 << 40, false},
		{"1.5GiB", 3 << 29, false},
		{"0.5K", 512, false},
		{"10MB", 10_000_000, false},
		{"1KB", 1000, false},
		{"1GB", 1_000_000_000, false},
		{"100B", 100, false},
		{"", 0, true},
		{"M", 0, true},
		{"12Q", 0, true},
		{"-5M", 0, true},
		{"1.1", 0, true},  // not a whole number of bytes
		{"0.3K", 0, true}, // 307.2 bytes
		{"9999999999T", 0, true},
		{"1.2.3M", 0, true},
	}
	for _, tt := range tests {
		got, err := parseSize(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("parseSize(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && got != tt.want {
			t.Errorf("parseSize(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"64M", "1.5GiB", "10MB", "0", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseSize(s)
		if err == nil && n < 0 {
			t.Fatalf("parseSize(%q) = %d: negative size accepted", s, n)
		}
		if err != nil {
			return
		}
		// formatSize output parses back to the same number.
		back, err := parseSize(formatSize(n))
		if err != nil || back != n {
			t.Fatalf("parseSize(formatSize(%d) = %q) = %d, %v", n, formatSize(n), back, err)
		}
	})
}

func TestFormatSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0B", 100: "100B", 1 << 10: "1KiB", 3 << 19: "1536KiB",
		64 << 20: "64MiB", 5 << 40: "5TiB"} {
		if got := formatSize(n); got != want {
			t.Errorf("formatSize(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestApproxSize(t *testing.T) {
	for n, want := range map[int64]string{100: "100B", 1 << 10: "1.0KiB", 1536 << 20: "1.5GiB",
		927200 << 20: "905.5GiB", 5 << 40: "5.0TiB"} {
		if got := approxSize(n); got != want {
			t.Errorf("approxSize(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestParseMode(t *testing.T) {
	tests := []struct {
		in      string
		want    os.FileMode
		wantErr bool
	}{
		{"0644", 0o644, false},
		{"644", 0o644, false},
		{"0o755", 0o755, false},
		{"022", 0o022, false},
		{"0", 0, false},
		{"0777", 0o777, false},
		{"1777", 0, true}, // sticky bit is not a permission bit
		{"0888", 0, true},
		{"rw-r--r--", 0, true},
		{"", 0, true},
		{"0o", 0, true},
	}
	for _, tt := range tests {
		got, err := parseMode(tt.in)
		if (err != nil) != tt.wantErr || (!tt.wantErr && got != tt.want) {
			t.Errorf("parseMode(%q) = %o, %v; want %o, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"1s", time.Second, false},
		{"500ms", 500 * time.Millisecond, false},
		{"2m", 2 * time.Minute, false},
		{"5", 5 * time.Second, false},
		{"0.5", 500 * time.Millisecond, false},
		{"0", 0, false},
		{"-1s", 0, true},
		{"-1", 0, true},
		{"soon", 0, true},
	}
	for _, tt := range tests {
		got, err := parseDuration(tt.in)
		if (err != nil) != tt.wantErr || (!tt.wantErr && got != tt.want) {
			t.Errorf("parseDuration(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseID(t *testing.T) {
	if n, err := parseID("1000", false); err != nil || n != 1000 {
		t.Errorf("parseID(1000) = %d, %v", n, err)
	}
	if n, err := parseID("root", false); err != nil || n != 0 {
		t.Errorf("parseID(root) = %d, %v; want 0 (from /etc/passwd)", n, err)
	}
	if n, err := parseID("root", true); err != nil || n != 0 {
		t.Errorf("parseID(root, group) = %d, %v; want 0 (from /etc/group)", n, err)
	}
	if _, err := parseID("no-such-user-s3mount", false); err == nil {
		t.Error("parseID of an unknown user name succeeded")
	}
	if _, err := parseID("-1", false); err == nil {
		t.Error("parseID(-1) succeeded")
	}
}

func TestParseBool(t *testing.T) {
	for in, want := range map[string]bool{"": true, "true": true, "1": true, "yes": true, "on": true,
		"false": false, "0": false, "no": false, "off": false, "FALSE": false} {
		if got, err := parseBool(in); err != nil || got != want {
			t.Errorf("parseBool(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := parseBool("maybe"); err == nil {
		t.Error("parseBool(maybe) succeeded")
	}
}
