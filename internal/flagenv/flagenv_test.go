package flagenv

import (
	"errors"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testFlags mirrors the kinds of flags the daemons have.
type testFlags struct {
	fs       *flag.FlagSet
	budget   *string
	ports    *string
	plain    *bool
	timeout  *time.Duration
	conns    *int
	password *string
	list     *listFlag
}

// listFlag accumulates every Set, so a test can see how many sources reached it.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func newTestFlags() *testFlags {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	t := &testFlags{fs: fs, list: &listFlag{}}
	t.budget = fs.String("memory-budget", "256MiB", "")
	t.ports = fs.String("passive-ports", "40000-40099", "")
	t.plain = fs.Bool("allow-plain", false, "")
	t.timeout = fs.Duration("idle-timeout", 5*time.Minute, "")
	t.conns = fs.Int("max-conns", 200, "")
	t.password = fs.String("admin-password", "", "")
	fs.Var(t.list, "refuse", "")
	return t
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "test.conf")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPrecedence(t *testing.T) {
	const file = `# comment
memory-budget = 1GiB
passive-ports: 41000-41009
max-conns = 7
idle-timeout = 1m
refuse = file
`
	tests := []struct {
		name    string
		args    []string
		env     []string
		want    map[string]string // flag -> effective value
		sources map[string]string // flag -> Source.String()
	}{
		{
			name: "file over defaults",
			want: map[string]string{"memory-budget": "1GiB", "passive-ports": "41000-41009", "max-conns": "7",
				"idle-timeout": "1m0s", "allow-plain": "false", "refuse": "file"},
			sources: map[string]string{"memory-budget": "FILE:2", "passive-ports": "FILE:3", "allow-plain": "default"},
		},
		{
			name: "environment over file",
			env:  []string{"S3MOUNT_MEMORY_BUDGET=2GiB", "S3MOUNT_ALLOW_PLAIN=true", "OTHER_MAX_CONNS=9", "S3MOUNT_REFUSE=env"},
			want: map[string]string{"memory-budget": "2GiB", "allow-plain": "true", "max-conns": "7", "refuse": "env"},
			sources: map[string]string{"memory-budget": "environment S3MOUNT_MEMORY_BUDGET",
				"allow-plain": "environment S3MOUNT_ALLOW_PLAIN", "max-conns": "FILE:4"},
		},
		{
			name: "command line over environment and file",
			args: []string{"--memory-budget=3GiB", "--max-conns", "1", "--refuse", "cli"},
			env:  []string{"S3MOUNT_MEMORY_BUDGET=2GiB", "S3MOUNT_MAX_CONNS=9"},
			want: map[string]string{"memory-budget": "3GiB", "max-conns": "1", "passive-ports": "41000-41009",
				"refuse": "cli"},
			sources: map[string]string{"memory-budget": "command line", "max-conns": "command line",
				"passive-ports": "FILE:3"},
		},
		{
			name: "an empty variable is a value",
			env:  []string{"S3MOUNT_PASSIVE_PORTS="},
			want: map[string]string{"passive-ports": ""},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, file)
			f := newTestFlags()
			if err := f.fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			eff, err := load(flagSetTarget(f.fs), "S3MOUNT", path, tc.env)
			if err != nil {
				t.Fatal(err)
			}
			for name, want := range tc.want {
				if got := f.fs.Lookup(name).Value.String(); got != want {
					t.Errorf("flag %s = %q, want %q", name, got, want)
				}
				en, ok := eff.Lookup(name)
				if !ok || en.Value != want {
					t.Errorf("effective %s = %+v (found %v), want value %q", name, en, ok, want)
				}
			}
			for name, want := range tc.sources {
				want = strings.ReplaceAll(want, "FILE", path)
				en, _ := eff.Lookup(name)
				if got := en.Source.String(); got != want {
					t.Errorf("source of %s = %q, want %q", name, got, want)
				}
			}
			if n := len(*f.list); n != 1 {
				t.Errorf("accumulating flag was set %d times (%q), want once", n, *f.list)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name    string
		file    string // "" = no file
		env     []string
		wantErr []string // substrings of the error
	}{
		{name: "unknown key", file: "max-conns = 1\n\nmax-cons = 2\n", wantErr: []string{"FILE:3", `unknown key "max-cons"`}},
		{name: "duplicate key", file: "max-conns = 1\nmax-conns = 2\n", wantErr: []string{"FILE:2", "line 1"}},
		{name: "bad value in file", file: "# x\nmax-conns = lots\n",
			wantErr: []string{"max-conns", `"lots"`, "FILE:2"}},
		{name: "bad value in environment", env: []string{"FTP_IDLE_TIMEOUT=soon"},
			wantErr: []string{"idle-timeout", `"soon"`, "environment FTP_IDLE_TIMEOUT"}},
		{name: "bad bool in environment", env: []string{"FTP_ALLOW_PLAIN=yes please"},
			wantErr: []string{"allow-plain", "environment FTP_ALLOW_PLAIN"}},
		{name: "bare key of a non-bool flag", file: "max-conns\n", wantErr: []string{"FILE:1", `"max-conns" needs a value`}},
		{name: "dashes", file: "--max-conns=1\n", wantErr: []string{"FILE:1", "without dashes"}},
		{name: "missing key", file: "= 1\n", wantErr: []string{"FILE:1", "missing key"}},
		{name: "unterminated quote", file: "passive-ports = \"1-2\n", wantErr: []string{"FILE:1", "unterminated"}},
		{name: "text after quote", file: "passive-ports = '1-2' x\n", wantErr: []string{"FILE:1", "after the closing quote"}},
		{name: "secret not echoed", file: "admin-password = hunter2\nmax-conns = -\n", wantErr: []string{"max-conns"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := ""
			if tc.file != "" {
				path = writeFile(t, tc.file)
			}
			f := newTestFlags()
			f.fs.Parse(nil)
			_, err := load(flagSetTarget(f.fs), "FTP", path, tc.env)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.wantErr {
				w = strings.ReplaceAll(w, "FILE", path)
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q shows a secret", err)
			}
		})
	}
}

func TestBadSecretValueIsRedactedInError(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.Func("db-password", "", func(string) error { return errors.New("too short") })
	fs.Parse(nil)
	_, err := load(flagSetTarget(fs), "X", "", []string{"X_DB_PASSWORD=hunter2"})
	if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "too short") {
		t.Fatalf("err = %v, want the cause without the secret", err)
	}
}

func TestMissingFile(t *testing.T) {
	f := newTestFlags()
	f.fs.Parse(nil)
	missing := filepath.Join(t.TempDir(), "nope.conf")
	_, err := load(flagSetTarget(f.fs), "FTP", missing, nil)
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Fatalf("err = %v, want not-exist naming the file", err)
	}
}

func TestConfigFileFromEnvironment(t *testing.T) {
	path := writeFile(t, "max-conns = 3\n")
	f := newTestFlags()
	f.fs.Parse(nil)
	if _, err := load(flagSetTarget(f.fs), "FTPFRONT", "", []string{"FTPFRONT_CONFIG=" + path}); err != nil {
		t.Fatal(err)
	}
	if *f.conns != 3 {
		t.Fatalf("max-conns = %d, want 3 from the file named by FTPFRONT_CONFIG", *f.conns)
	}
	// An explicit file wins over the variable.
	other := writeFile(t, "max-conns = 4\n")
	f = newTestFlags()
	f.fs.Parse(nil)
	if _, err := load(flagSetTarget(f.fs), "FTPFRONT", other, []string{"FTPFRONT_CONFIG=" + path}); err != nil {
		t.Fatal(err)
	}
	if *f.conns != 4 {
		t.Fatalf("max-conns = %d, want 4 from the explicit file", *f.conns)
	}
}

func TestApplyUsesProcessEnvironment(t *testing.T) {
	t.Setenv("S3FTPTEST_MAX_CONNS", "11")
	f := newTestFlags()
	f.fs.Parse([]string{"--allow-plain"})
	if err := Apply(f.fs, "S3FTPTEST_", ""); err != nil {
		t.Fatal(err)
	}
	if *f.conns != 11 || !*f.plain {
		t.Fatalf("max-conns=%d allow-plain=%v, want 11 from the environment and true from the command line", *f.conns, *f.plain)
	}
}

func TestFileSyntax(t *testing.T) {
	const file = "\ufeff  # leading comment\n" +
		"\n" +
		"a = plain value\n" +
		"b: 127.0.0.1:2121\n" +
		"c = x#y # trailing comment\n" +
		"d = \"  spaced # kept \\t\"\n" +
		"e = ' single \\n '   # comment\n" +
		"f\n" +
		"g = 10.0.0.0/8=1.2.3.4\n" +
		"h =\n" +
		"i\t=\tv\t\n" +
		"j =    # only a comment\n" +
		"k = '#x'\n"
	lines, err := Parse(strings.NewReader(file), "x.conf")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range lines {
		got = append(got, strings.Join([]string{strconv.Itoa(l.Number), l.Key, "[" + l.Value + "]", strconv.FormatBool(l.Bare)}, " "))
	}
	want := []string{
		"3 a [plain value] false",
		"4 b [127.0.0.1:2121] false",
		"5 c [x#y] false",
		"6 d [  spaced # kept \t] false",
		"7 e [ single \\n ] false",
		"8 f [] true",
		"9 g [10.0.0.0/8=1.2.3.4] false",
		"10 h [] false",
		"11 i [v] false",
		"12 j [] false",
		"13 k [#x] false",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("parsed:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestLineTooLong(t *testing.T) {
	_, err := Parse(strings.NewReader("a = 1\nb = "+strings.Repeat("x", maxLine)+"\n"), "long.conf")
	if err == nil || !strings.Contains(err.Error(), "long.conf:2") {
		t.Fatalf("err = %v, want one naming long.conf:2", err)
	}
}

func TestBareBoolInFile(t *testing.T) {
	path := writeFile(t, "allow-plain   # for the lab only\n")
	f := newTestFlags()
	f.fs.Parse(nil)
	if _, err := load(flagSetTarget(f.fs), "FTP", path, nil); err != nil {
		t.Fatal(err)
	}
	if !*f.plain {
		t.Fatal("bare bool key did not set the flag")
	}
}

func TestTarget(t *testing.T) {
	path := writeFile(t, "memory-budget = 1G\nro\n")
	set := map[string]string{}
	calls := 0
	tg := Target{
		Names:  []string{"ro", "memory-budget", "cache-size"},
		IsBool: func(n string) bool { return n == "ro" },
		Set: func(n, v string) error {
			calls++
			if v == "bad" {
				return errors.New("want a size")
			}
			set[n] = v
			return nil
		},
	}
	t.Setenv("S3MOUNT_CACHE_SIZE", "64M")
	eff, err := ApplyTarget(tg, "S3MOUNT", path)
	if err != nil {
		t.Fatal(err)
	}
	if calls != 3 || set["memory-budget"] != "1G" || set["ro"] != "true" || set["cache-size"] != "64M" {
		t.Fatalf("set %v in %d calls", set, calls)
	}
	if got := len(eff.Entries); got != 3 {
		t.Fatalf("effective has %d entries, want the 3 layered ones:\n%s", got, eff)
	}

	t.Setenv("S3MOUNT_CACHE_SIZE", "bad")
	_, err = ApplyTarget(tg, "S3MOUNT", path)
	if err == nil || !strings.Contains(err.Error(), "cache-size") || !strings.Contains(err.Error(), "S3MOUNT_CACHE_SIZE") {
		t.Fatalf("err = %v, want one naming the key and the variable", err)
	}

	tg.Given = func(n string) bool { return n == "cache-size" }
	calls = 0
	if _, err := ApplyTarget(tg, "S3MOUNT", path); err != nil {
		t.Fatalf("a setting given on the command line must not be read from the environment: %v", err)
	}
	if calls != 2 {
		t.Fatalf("%d Set calls, want 2", calls)
	}
}

func TestEffectivePrint(t *testing.T) {
	path := writeFile(t, "admin-password = hunter2\npassive-ports = ' 1-2'\n")
	f := newTestFlags()
	f.fs.Parse([]string{"--memory-budget", "http://u:pw@host/"})
	eff, err := load(flagSetTarget(f.fs), "FTP", path, []string{"FTP_MAX_CONNS=5"})
	if err != nil {
		t.Fatal(err)
	}
	got := eff.String()
	want := `admin-password = <redacted>  # PATH:1
allow-plain    = false  # default
idle-timeout   = 5m0s  # default
max-conns      = 5  # environment FTP_MAX_CONNS
memory-budget  = http://u:xxxxx@host/  # command line
passive-ports  = " 1-2"  # PATH:2
refuse         = ""  # default
`
	want = strings.ReplaceAll(want, "PATH", path)
	if got != want {
		t.Fatalf("printed:\n%s\nwant:\n%s", got, want)
	}
	// The printed form reads back (secrets aside) to the same values.
	lines, err := Parse(strings.NewReader(got), "printed")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lines {
		en, _ := eff.Lookup(l.Key)
		if l.Value != Redact(en.Name, en.Value) {
			t.Errorf("%s reads back as %q, want %q", l.Key, l.Value, Redact(en.Name, en.Value))
		}
	}
}

func TestEnvName(t *testing.T) {
	for _, tc := range [][3]string{
		{"S3MOUNT", "memory-budget", "S3MOUNT_MEMORY_BUDGET"},
		{"FTPFRONT_", "passive-ports", "FTPFRONT_PASSIVE_PORTS"},
		{"ftpfront", "tls.cert", "FTPFRONT_TLS_CERT"},
	} {
		if got := EnvName(tc[0], tc[1]); got != tc[2] {
			t.Errorf("EnvName(%q, %q) = %q, want %q", tc[0], tc[1], got, tc[2])
		}
	}
}

func TestSecret(t *testing.T) {
	for name, want := range map[string]bool{
		"admin-password": true, "secret-key": true, "session-token": true, "aws-credentials": true,
		"tls-key": false, "sse-kms-key-id": false, "users": false, "PASSWD": true,
	} {
		if Secret(name) != want {
			t.Errorf("Secret(%q) = %v, want %v", name, !want, want)
		}
	}
}

func TestUnknownVariablesAreReported(t *testing.T) {
	f := newTestFlags()
	f.fs.Parse(nil)
	eff, err := load(flagSetTarget(f.fs), "FTP", "", []string{"FTP_MAX_CONNZ=1", "FTP_CONFIG=", "FTPX=1", "FTP_A=2", "FTP_MAX_CONNS=3"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(eff.UnknownEnv, " "); got != "FTP_A FTP_MAX_CONNZ" {
		t.Fatalf("UnknownEnv = %q, want FTP_A FTP_MAX_CONNZ", got)
	}
	if *f.conns != 3 {
		t.Fatalf("max-conns = %d, want 3", *f.conns)
	}
}

func TestLogValue(t *testing.T) {
	path := writeFile(t, "admin-password = hunter2\n")
	f := newTestFlags()
	f.fs.Parse([]string{"--max-conns", "9"})
	eff, err := load(flagSetTarget(f.fs), "FTP", path, []string{"FTP_IDLE_TIMEOUT=1m"})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("configuration", "settings", eff)
	line := b.String()
	for _, want := range []string{`settings.admin-password="<redacted> (` + path + `:1)"`,
		`settings.idle-timeout="1m0s (environment FTP_IDLE_TIMEOUT)"`, `settings.max-conns="9 (command line)"`} {
		if !strings.Contains(line, want) {
			t.Errorf("log line lacks %s:\n%s", want, line)
		}
	}
	if strings.Contains(line, "hunter2") || strings.Contains(line, "passive-ports") {
		t.Errorf("log line shows a secret or a default:\n%s", line)
	}
}
