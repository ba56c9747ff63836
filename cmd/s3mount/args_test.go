package main

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/s3ftp/s3ftp/s3client"
	"github.com/s3ftp/s3ftp/s3mount"
)

// TestApplyMountOptions is the table of the -o parser: each case applies one -o list to the defaults and
// compares the fields it must change; every other field must keep its default.
func TestApplyMountOptions(t *testing.T) {
	tests := []struct {
		name    string
		list    string
		change  func(c *config) // the expected changes, applied to a fresh default config
		ignored []string
		wantErr string // substring of the error; "" means success
	}{
		{name: "empty", list: "", change: func(*config) {}},
		{name: "allow_other", list: "allow_other", change: func(c *config) { c.Opts.AllowOther = true }},
		{name: "dash spelling", list: "allow-other", change: func(c *config) { c.Opts.AllowOther = true }},
		{name: "ro", list: "ro", change: func(c *config) { c.Opts.ReadOnly = true }},
		{name: "ro then rw", list: "ro,rw", change: func(*config) {}},
		{name: "ro=false", list: "ro=false", change: func(*config) {}},
		{name: "ids and modes", list: "uid=1000,gid=100,umask=0027,dir_mode=0750,file_mode=0640",
			change: func(c *config) {
				c.Opts.UID, c.Opts.GID, c.Opts.Umask, c.Opts.DirMode, c.Opts.FileMode = 1000, 100, 0o027, 0o750, 0o640
			}},
		{name: "sizes and durations",
			list: "memory_budget=64M,part-size=8MiB,cache_size=1G,max_readahead=16M,stat_ttl=5s,negative_ttl=250ms",
			change: func(c *config) {
				c.Opts.MemoryBudget, c.Opts.PartSize, c.Opts.CacheSize, c.Opts.MaxReadahead = 64<<20, 8<<20, 1<<30, 16<<20
				c.Opts.StatTTL, c.Opts.NegativeTTL = 5*time.Second, 250*time.Millisecond
			}},
		{name: "upload concurrency", list: "upload_concurrency=3", change: func(c *config) { c.Opts.UploadConcurrency = 3 }},
		{name: "max write", list: "max_write=256k", change: func(c *config) { c.Opts.MaxWrite = 256 << 10 }},
		{name: "max write above 1MiB", list: "max_write=2M", wantErr: "at most 1MiB"},
		{name: "s3 settings", list: "endpoint=http://127.0.0.1:9000,region=eu-west-1,profile=backup,sse=AES256,storage_class=STANDARD_IA,acl=private",
			change: func(c *config) {
				c.S3.Endpoint, c.S3.Region, c.S3.Profile = "http://127.0.0.1:9000", "eu-west-1", "backup"
				c.S3.SSE, c.S3.StorageClass, c.S3.ACL = "AES256", "STANDARD_IA", "private"
			}},
		{name: "path_style", list: "path_style", change: func(c *config) { c.S3.PathStyle = true }},
		{name: "s3 timeouts and attempts", list: "s3_idle_timeout=2s,s3-timeout=1.5,s3_max_attempts=2",
			change: func(c *config) {
				c.S3.IdleTimeout, c.S3.ResponseHeaderTimeout, c.S3.MaxAttempts = 2*time.Second, 1500*time.Millisecond, 2
			}},
		{name: "s3 timeout 0 is the default", list: "s3_idle_timeout=0,s3_timeout=0",
			change: func(c *config) { c.S3.IdleTimeout, c.S3.ResponseHeaderTimeout = 0, 0 }},
		{name: "bad idle timeout", list: "s3_idle_timeout=-1s", wantErr: "-o s3_idle_timeout"},
		{name: "bad s3 timeout", list: "s3_timeout=soon", wantErr: "-o s3_timeout"},
		{name: "zero attempts", list: "s3_max_attempts=0", wantErr: "want a whole number of at least 1"},
		{name: "bad attempts", list: "s3_max_attempts=many", wantErr: "-o s3_max_attempts"},
		{name: "logging", list: "log_format=json,log_level=warn,log_file=/var/log/s3mount.log",
			change: func(c *config) { c.LogFormat, c.LogLevel, c.LogFile = "json", slog.LevelWarn, "/var/log/s3mount.log" }},
		{name: "debug", list: "debug", change: func(c *config) { c.Opts.Debug, c.LogLevel = true, slog.LevelDebug }},
		{name: "cache dir", list: "cache_dir=/var/cache/s3,cache_dir_size=10G",
			change: func(c *config) { c.Opts.CacheDir, c.Opts.CacheDirSize = "/var/cache/s3", 10<<30 }},
		{name: "fstab noise ignored",
			list:    "_netdev,auto,noauto,nofail,user,users,defaults,dev,nodev,suid,nosuid,exec,noexec,noatime,x-systemd.automount,fsname=s3,subtype=s3mount",
			change:  func(*config) {},
			ignored: []string{"_netdev", "auto", "noauto", "nofail", "user", "users", "defaults", "dev", "nodev", "suid", "nosuid", "exec", "noexec", "noatime", "x-systemd.automount", "fsname=s3", "subtype=s3mount"}},
		{name: "spaces and empty items", list: " ro ,, allow_other ", change: func(c *config) { c.Opts.ReadOnly, c.Opts.AllowOther = true, true }},
		{name: "unknown option", list: "ro,frobnicate", wantErr: `unknown mount option "frobnicate"`},
		{name: "value missing", list: "uid", wantErr: `mount option "uid" needs a value`},
		{name: "bad size", list: "cache_size=lots", wantErr: "-o cache_size"},
		{name: "empty size is unset", list: "cache_dir_size=", change: func(c *config) { c.Opts.CacheDirSize = 0 }},
		{name: "bad mode", list: "umask=999", wantErr: "-o umask"},
		{name: "bad bool", list: "ro=maybe", wantErr: "-o ro"},
		{name: "bad endpoint", list: "endpoint=localhost:9000", wantErr: "want an http:// or https:// URL"},
		{name: "bad sse", list: "sse=rot13", wantErr: "sse \"rot13\""},
		{name: "bad log format", list: "log_format=xml", wantErr: "log-format"},
		{name: "auto_unmount is the default", list: "auto_unmount", change: func(*config) {}},
		{name: "noauto_unmount", list: "noauto_unmount", change: func(c *config) { c.AutoUnmount = false }},
		{name: "auto_unmount=false", list: "auto_unmount=false", change: func(c *config) { c.AutoUnmount = false }},
		{name: "noauto_unmount then auto_unmount", list: "noauto_unmount,auto_unmount", change: func(*config) {}},
		{name: "state dir", list: "state_dir=/var/lib/s3mount-a", change: func(c *config) { c.StateDir = "/var/lib/s3mount-a" }},
		{name: "ignored word with value is unknown", list: "nofail=1", wantErr: `unknown mount option "nofail"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := newConfig()
			err := applyMountOptions(got, tt.list)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("applyMountOptions(%q) error = %v, want one containing %q", tt.list, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("applyMountOptions(%q): %v", tt.list, err)
			}
			want := newConfig()
			tt.change(want)
			want.Ignored = tt.ignored
			got.given, want.given = nil, nil // what the command line set is checked in TestLayeredSettings
			if !reflect.DeepEqual(got, want) {
				t.Errorf("applyMountOptions(%q):\n got %+v\nwant %+v", tt.list, *got, *want)
			}
		})
	}
}

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		check   func(t *testing.T, c *config)
		wantErr string
	}{
		{name: "minimal", args: []string{"bucket", "/mnt/s3"}, check: func(t *testing.T, c *config) {
			def := s3mount.DefaultOptions()
			if c.S3.Bucket != "bucket" || c.Opts.Prefix != "" || c.Mountpoint != "/mnt/s3" || c.Foreground {
				t.Errorf("got bucket %q prefix %q mountpoint %q foreground %v", c.S3.Bucket, c.Opts.Prefix, c.Mountpoint, c.Foreground)
			}
			if !reflect.DeepEqual(c.Opts, def) {
				t.Errorf("options changed without flags:\n got %+v\nwant %+v", c.Opts, def)
			}
			if want := s3client.DefaultConfig("bucket"); !reflect.DeepEqual(c.S3, want) {
				t.Errorf("S3 config changed without flags:\n got %+v\nwant %+v", c.S3, want)
			}
		}},
		{name: "prefix", args: []string{"bucket:in/box", "/mnt"}, check: func(t *testing.T, c *config) {
			if c.S3.Bucket != "bucket" || c.Opts.Prefix != "in/box/" {
				t.Errorf("bucket %q prefix %q, want bucket in/box/", c.S3.Bucket, c.Opts.Prefix)
			}
		}},
		{name: "s3 url", args: []string{"s3://bucket/in/", "/mnt"}, check: func(t *testing.T, c *config) {
			if c.S3.Bucket != "bucket" || c.Opts.Prefix != "in/" {
				t.Errorf("bucket %q prefix %q, want bucket in/", c.S3.Bucket, c.Opts.Prefix)
			}
		}},
		{name: "relative mountpoint made absolute", args: []string{"b", "mnt"}, check: func(t *testing.T, c *config) {
			wd, _ := os.Getwd()
			if c.Mountpoint != wd+"/mnt" {
				t.Errorf("mountpoint %q, want %q", c.Mountpoint, wd+"/mnt")
			}
		}},
		{name: "long flags both forms", args: []string{"--memory-budget", "64M", "--cache-size=32MiB", "--max-readahead", "8M",
			"-f", "--ro", "--uid=7", "b", "/m"}, check: func(t *testing.T, c *config) {
			if c.Opts.MemoryBudget != 64<<20 || c.Opts.CacheSize != 32<<20 || c.Opts.MaxReadahead != 8<<20 ||
				!c.Foreground || !c.Opts.ReadOnly || c.Opts.UID != 7 {
				t.Errorf("flags not applied: %+v foreground %v", c.Opts, c.Foreground)
			}
		}},
		{name: "operands before flags (mount helper order)", args: []string{"b", "/m", "-o", "ro,allow_other", "--foreground"},
			check: func(t *testing.T, c *config) {
				if !c.Opts.ReadOnly || !c.Opts.AllowOther || !c.Foreground {
					t.Errorf("ro %v allow_other %v foreground %v", c.Opts.ReadOnly, c.Opts.AllowOther, c.Foreground)
				}
			}},
		{name: "joined -o", args: []string{"-oro", "b", "/m"}, check: func(t *testing.T, c *config) {
			if !c.Opts.ReadOnly {
				t.Error("-oro not applied")
			}
		}},
		{name: "later wins", args: []string{"--ro", "-o", "rw", "--cache-size", "1G", "-o", "cache_size=2G", "b", "/m"},
			check: func(t *testing.T, c *config) {
				if c.Opts.ReadOnly || c.Opts.CacheSize != 2<<30 {
					t.Errorf("ro %v cache %d, want false and 2GiB", c.Opts.ReadOnly, c.Opts.CacheSize)
				}
			}},
		{name: "endpoint", args: []string{"--endpoint", "http://127.0.0.1:9000", "--path-style", "b", "/m"},
			check: func(t *testing.T, c *config) {
				if c.S3.Endpoint != "http://127.0.0.1:9000" || !c.S3.PathStyle {
					t.Errorf("endpoint %q path style %v", c.S3.Endpoint, c.S3.PathStyle)
				}
			}},
		{name: "s3 timeouts as flags", args: []string{"--s3-idle-timeout", "2s", "--s3-timeout=3s", "--s3-max-attempts", "4", "b", "/m"},
			check: func(t *testing.T, c *config) {
				if c.S3.IdleTimeout != 2*time.Second || c.S3.ResponseHeaderTimeout != 3*time.Second || c.S3.MaxAttempts != 4 {
					t.Errorf("idle %v, header timeout %v, attempts %d; want 2s, 3s, 4", c.S3.IdleTimeout, c.S3.ResponseHeaderTimeout, c.S3.MaxAttempts)
				}
			}},
		{name: "kms key implies aws:kms", args: []string{"--sse-kms-key-id", "arn:aws:kms:k", "b", "/m"},
			check: func(t *testing.T, c *config) {
				if c.S3.SSE != "aws:kms" {
					t.Errorf("sse %q", c.S3.SSE)
				}
			}},
		{name: "-d is debug", args: []string{"-d", "b", "/m"}, check: func(t *testing.T, c *config) {
			if !c.Opts.Debug || c.LogLevel != slog.LevelDebug {
				t.Errorf("debug %v level %v", c.Opts.Debug, c.LogLevel)
			}
		}},
		{name: "double dash ends flags", args: []string{"--", "b", "-odd-dir"}, check: func(t *testing.T, c *config) {
			if !strings.HasSuffix(c.Mountpoint, "/-odd-dir") || c.Opts.ReadOnly {
				t.Errorf("mountpoint %q", c.Mountpoint)
			}
		}},
		{name: "relative paths made absolute", args: []string{"--cache-dir", "cache", "--cache-dir-size", "1G",
			"--log-file", "s3.log", "b", "/m"}, check: func(t *testing.T, c *config) {
			wd, _ := os.Getwd()
			if c.Opts.CacheDir != wd+"/cache" || c.LogFile != wd+"/s3.log" {
				t.Errorf("cache dir %q, log file %q: not absolute under %s", c.Opts.CacheDir, c.LogFile, wd)
			}
		}},
		{name: "auto-unmount on by default, state dir for root", args: []string{"b", "/m"}, check: func(t *testing.T, c *config) {
			if !c.AutoUnmount {
				t.Error("auto-unmount is off without flags")
			}
			if os.Geteuid() == 0 && c.StateDir != "/var/lib/s3mount" {
				t.Errorf("state dir %q as root, want /var/lib/s3mount", c.StateDir)
			}
		}},
		{name: "--auto-unmount=false and a relative state dir", args: []string{"--auto-unmount=false", "--state-dir", "st", "b", "/m"},
			check: func(t *testing.T, c *config) {
				wd, _ := os.Getwd()
				if c.AutoUnmount || c.StateDir != wd+"/st" {
					t.Errorf("auto-unmount %v state dir %q; want false and %s/st", c.AutoUnmount, c.StateDir, wd)
				}
			}},
		{name: "help", args: []string{"b", "--help"}, wantErr: errHelp.Error()},
		{name: "no operands", args: nil, wantErr: "got 0 operand(s)"},
		{name: "three operands", args: []string{"a", "b", "c"}, wantErr: "got 3 operand(s)"},
		{name: "unknown long flag", args: []string{"--turbo", "b", "/m"}, wantErr: "unknown flag --turbo"},
		{name: "single dash long flag", args: []string{"-ro", "b", "/m"}, wantErr: "long flags take two dashes"},
		{name: "unknown short flag", args: []string{"-x", "b", "/m"}, wantErr: "unknown flag -x"},
		{name: "missing value", args: []string{"b", "/m", "--cache-size"}, wantErr: "--cache-size needs a value"},
		{name: "-o without list", args: []string{"b", "/m", "-o"}, wantErr: "-o needs a list"},
		{name: "empty bucket", args: []string{":prefix", "/m"}, wantErr: "want BUCKET[:PREFIX]"},
		{name: "validate: budget below two parts", args: []string{"--memory-budget", "8M", "--part-size", "8M", "b", "/m"},
			wantErr: "memory-budget"},
		{name: "validate: readahead above cache", args: []string{"--cache-size", "8M", "--max-readahead", "16M", "b", "/m"},
			wantErr: "max-readahead"},
		{name: "validate: max-write below 128KiB", args: []string{"--max-write", "64KiB", "b", "/m"}, wantErr: "max-write"},
		{name: "validate: max-write not in pages", args: []string{"--max-write", "200000", "b", "/m"}, wantErr: "max-write"},
		{name: "validate: part size too small", args: []string{"--part-size", "1M", "b", "/m"}, wantErr: "part-size"},
		{name: "kms key with AES256", args: []string{"--sse", "AES256", "--sse-kms-key-id", "k", "b", "/m"},
			wantErr: "sse-kms-key-id needs --sse aws:kms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseArgs(tt.args)
			if tt.check == nil {
				if err == nil {
					t.Fatalf("parseArgs(%q) succeeded, want an error", tt.args)
				}
				if tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseArgs(%q) error = %v, want one containing %q", tt.args, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseArgs(%q): %v", tt.args, err)
			}
			tt.check(t, c)
		})
	}
}

// TestDefaultStateDir: root's journal goes to /var/lib/s3mount, another user's under $XDG_STATE_HOME, else
// ~/.local/state.
func TestDefaultStateDir(t *testing.T) {
	if d, err := defaultStateDir(0); err != nil || d != "/var/lib/s3mount" {
		t.Errorf("defaultStateDir(root) = %q, %v; want /var/lib/s3mount", d, err)
	}
	t.Setenv("XDG_STATE_HOME", "/x/state")
	if d, err := defaultStateDir(1000); err != nil || d != "/x/state/s3mount" {
		t.Errorf("defaultStateDir with XDG_STATE_HOME = %q, %v", d, err)
	}
	t.Setenv("XDG_STATE_HOME", "relative") // not absolute: ignored, as the XDG specification says
	t.Setenv("HOME", "/home/u")
	if d, err := defaultStateDir(1000); err != nil || d != "/home/u/.local/state/s3mount" {
		t.Errorf("defaultStateDir with HOME = %q, %v", d, err)
	}
}

func TestHelpIsNotAnError(t *testing.T) {
	if _, err := parseArgs([]string{"--help"}); !errors.Is(err, errHelp) {
		t.Fatalf("--help: %v", err)
	}
	u := usage()
	for _, o := range options {
		if !strings.Contains(u, "--"+o.name) {
			t.Errorf("usage does not mention --%s", o.name)
		}
	}
}

func TestParseSource(t *testing.T) {
	tests := []struct{ in, bucket, prefix string }{
		{"b", "b", ""},
		{"b:", "b", ""},
		{"b:p", "b", "p"},
		{"b:/p/q", "b", "/p/q"},
		{"s3://b", "b", ""},
		{"s3://b/p/", "b", "p/"},
	}
	for _, tt := range tests {
		b, p, err := parseSource(tt.in)
		if err != nil || b != tt.bucket || p != tt.prefix {
			t.Errorf("parseSource(%q) = %q, %q, %v; want %q, %q", tt.in, b, p, err, tt.bucket, tt.prefix)
		}
	}
	for _, bad := range []string{"", ":p", "a/b", "s3://", "s3:///p", "my bucket"} {
		if _, _, err := parseSource(bad); err == nil {
			t.Errorf("parseSource(%q) succeeded", bad)
		}
	}
}

// TestLayeredSettings: the S3MOUNT_CONFIG file, then S3MOUNT_* variables, then the command line, each winning
// over the one before; only settings not overridden on the command line are reported as layered.
func TestLayeredSettings(t *testing.T) {
	file := filepath.Join(t.TempDir(), "s3mount.conf")
	conf := "memory-budget = 128MiB\ncache-size = 16MiB\nmax-readahead = 8MiB\nallow-other\nlog-format: json\n"
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("S3MOUNT_CONFIG", file)
	t.Setenv("S3MOUNT_CACHE_SIZE", "32MiB")
	t.Setenv("S3MOUNT_LOG_FORMAT", "text")

	c, err := parseArgs([]string{"--memory-budget", "96M", "-o", "log_format=json", "b", "/m"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Opts.MemoryBudget != 96<<20 || c.Opts.CacheSize != 32<<20 || !c.Opts.AllowOther || c.LogFormat != "json" {
		t.Errorf("budget %d (want 96MiB from the flag), cache %d (want 32MiB from the environment), allow-other %v "+
			"(want true from the file), log format %q (want json from -o)",
			c.Opts.MemoryBudget, c.Opts.CacheSize, c.Opts.AllowOther, c.LogFormat)
	}
	var layered []string
	for _, e := range c.Layered {
		layered = append(layered, e.Name+"="+e.Value+"@"+e.Source.String())
	}
	got := strings.Join(layered, " ")
	for _, want := range []string{"cache-size=32MiB", "S3MOUNT_CACHE_SIZE", "allow-other="} {
		if !strings.Contains(got, want) {
			t.Errorf("layered settings %q lack %q", got, want)
		}
	}
	for _, overridden := range []string{"memory-budget", "log-format"} {
		if strings.Contains(got, overridden) {
			t.Errorf("layered settings %q list %s, which the command line set", got, overridden)
		}
	}

	t.Setenv("S3MOUNT_CACHE_SIZE", "lots")
	if _, err := parseArgs([]string{"b", "/m"}); err == nil || !strings.Contains(err.Error(), "S3MOUNT_CACHE_SIZE") {
		t.Errorf("bad value in the environment: %v, want an error naming the variable", err)
	}
	t.Setenv("S3MOUNT_CACHE_SIZE", "")
	os.Unsetenv("S3MOUNT_CACHE_SIZE")
	if err := os.WriteFile(file, []byte("\nturbo = yes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := parseArgs([]string{"b", "/m"}); err == nil || !strings.Contains(err.Error(), file+":2") {
		t.Errorf("unknown key in the file: %v, want an error naming %s:2", err, file)
	}
}

// FuzzParseArgs: any command line either parses into options that pass Validate or fails with an error; it
// never panics, and a parsed mount point is absolute.
func FuzzParseArgs(f *testing.F) {
	for _, s := range []string{"b /m", "-o ro,uid=1 b /m", "--cache-size=1G --max-readahead 2G b /m", "-oallow_other,, b:p /m",
		"-- b -x", "--ro=maybe b /m", "s3://b/p/ m -f -d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		c, err := parseArgs(strings.Fields(line))
		if err != nil {
			return
		}
		if !filepath.IsAbs(c.Mountpoint) {
			t.Fatalf("parseArgs(%q): mount point %q is not absolute", line, c.Mountpoint)
		}
		if err := c.Opts.Validate(); err != nil {
			t.Fatalf("parseArgs(%q) returned options that fail Validate: %v", line, err)
		}
	})
}
