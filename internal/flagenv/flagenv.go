package flagenv

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
)

// ConfigSuffix is the environment variable suffix that names the configuration file: S3MOUNT_CONFIG,
// FTPFRONT_CONFIG. It is not matched against the flags.
const ConfigSuffix = "CONFIG"

// Apply layers the environment and configFile under the flags fs parsed from the command line; see the package
// doc for the precedence. fs must have been parsed. envPrefix is the variable prefix without the trailing '_'
// ("S3MOUNT"). configFile may be empty: then $PREFIX_CONFIG names the file, and without it no file is read. A
// configFile that does not exist is an error.
func Apply(fs *flag.FlagSet, envPrefix, configFile string) error {
	_, err := Load(fs, envPrefix, configFile)
	return err
}

// Load is Apply returning the effective configuration of every flag in fs, for printing at start-up.
func Load(fs *flag.FlagSet, envPrefix, configFile string) (*Effective, error) {
	if !fs.Parsed() {
		return nil, errors.New("flagenv: Load before FlagSet.Parse would let the file override the command line")
	}
	return load(flagSetTarget(fs), envPrefix, configFile, os.Environ())
}

// Target is a set of named settings that is not a flag.FlagSet, for commands with their own argument parser.
type Target struct {
	// Names are the settings' long names, as they appear in the file.
	Names []string
	// IsBool reports whether a setting may be given as a bare key in the file (meaning "true"). nil: none may.
	IsBool func(name string) bool
	// Set applies a value; its error is wrapped with the key and the source.
	Set func(name, value string) error
	// Given reports settings the command line already set; they are neither read nor set here. nil: none.
	Given func(name string) bool
}

// ApplyTarget is Load for a Target. A command that parses its own arguments calls it before applying them, with
// Given nil, and lets the command line overwrite what it set; the Effective then lists only the settings taken
// from the environment or the file.
func ApplyTarget(t Target, envPrefix, configFile string) (*Effective, error) {
	names := append([]string(nil), t.Names...)
	sort.Strings(names)
	known := make(map[string]bool, len(names))
	for _, n := range names {
		known[n] = true
	}
	tg := target{
		names: names,
		known: func(n string) bool { return known[n] },
		isBool: func(n string) bool {
			return t.IsBool != nil && t.IsBool(n)
		},
		given: func(n string) bool { return t.Given != nil && t.Given(n) },
		set:   t.Set,
	}
	return load(tg, envPrefix, configFile, os.Environ())
}

// EnvName returns the environment variable for the setting name: EnvName("S3MOUNT", "memory-budget") is
// "S3MOUNT_MEMORY_BUDGET".
func EnvName(prefix, name string) string {
	prefix = strings.TrimSuffix(prefix, "_")
	r := strings.NewReplacer("-", "_", ".", "_")
	return strings.ToUpper(prefix + "_" + r.Replace(name))
}

// ConfigPath returns the configuration file to read: configFile when set, otherwise $PREFIX_CONFIG, otherwise "".
func ConfigPath(envPrefix, configFile string) string {
	if configFile != "" {
		return configFile
	}
	return os.Getenv(EnvName(envPrefix, ConfigSuffix))
}

// target is what load needs from a FlagSet or a Target.
type target struct {
	names   []string // sorted
	known   func(name string) bool
	isBool  func(name string) bool
	given   func(name string) bool
	set     func(name, value string) error
	current func(name string) string // nil: only layered settings appear in the Effective
}

func flagSetTarget(fs *flag.FlagSet) target {
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) }) // VisitAll is in lexical order
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	parsed := fs.Parsed()
	return target{
		names: names,
		known: func(n string) bool { return fs.Lookup(n) != nil },
		isBool: func(n string) bool {
			b, ok := fs.Lookup(n).Value.(interface{ IsBoolFlag() bool })
			return ok && b.IsBoolFlag()
		},
		given: func(n string) bool {
			if !parsed {
				return false
			}
			return given[n]
		},
		set:     fs.Set,
		current: func(n string) string { return fs.Lookup(n).Value.String() },
	}
}

// load resolves every setting of t from environ and the file and applies the winners.
func load(t target, envPrefix, configFile string, environ []string) (*Effective, error) {
	if t.set == nil {
		return nil, errors.New("flagenv: no setter")
	}
	configFile = configPathFrom(envPrefix, configFile, environ)

	fromFile := map[string]Line{}
	if configFile != "" {
		lines, err := ParseFile(configFile)
		if err != nil {
			return nil, err
		}
		for _, l := range lines {
			where := fmt.Sprintf("%s:%d", configFile, l.Number)
			if !t.known(l.Key) {
				return nil, fmt.Errorf("flagenv: %s: unknown key %q", where, l.Key)
			}
			if prev, dup := fromFile[l.Key]; dup {
				return nil, fmt.Errorf("flagenv: %s: key %q already set on line %d", where, l.Key, prev.Number)
			}
			if l.Bare {
				if !t.isBool(l.Key) {
					return nil, fmt.Errorf("flagenv: %s: key %q needs a value", where, l.Key)
				}
				l.Value = "true"
			}
			fromFile[l.Key] = l
		}
	}

	byEnv := make(map[string]string, len(t.names))
	for _, n := range t.names {
		byEnv[EnvName(envPrefix, n)] = n
	}
	configVar := EnvName(envPrefix, ConfigSuffix)
	envPrefixU := strings.ToUpper(strings.TrimSuffix(envPrefix, "_")) + "_"
	fromEnv := map[string]string{}
	envVar := map[string]string{}
	var unknownEnv []string
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(k, envPrefixU) {
			continue
		}
		n, known := byEnv[k]
		switch {
		case known:
			fromEnv[n], envVar[n] = v, k
		case k != configVar:
			unknownEnv = append(unknownEnv, k)
		}
	}
	eff := &Effective{}
	if len(unknownEnv) > 0 {
		// Not an error: units and wrappers set variables of their own under the same prefix (s3mount@.service
		// has S3MOUNT_SOURCE). A misspelt setting is still visible in this line and in Effective.UnknownEnv.
		sort.Strings(unknownEnv)
		eff.UnknownEnv = unknownEnv
		slog.Warn("flagenv: environment variables match no flag and are ignored", "vars", strings.Join(unknownEnv, ","))
	}
	for _, n := range t.names {
		var e Entry
		switch {
		case t.given(n):
			e = Entry{Name: n, Source: Source{Kind: CommandLine}}
		case envVar[n] != "":
			e = Entry{Name: n, Value: fromEnv[n], Source: Source{Kind: Environment, Where: envVar[n]}}
		case fromFile[n].Key != "":
			l := fromFile[n]
			e = Entry{Name: n, Value: l.Value, Source: Source{Kind: File, Where: fmt.Sprintf("%s:%d", configFile, l.Number)}}
		default:
			e = Entry{Name: n, Source: Source{Kind: Default}}
		}
		if e.Source.Kind == Environment || e.Source.Kind == File {
			if err := t.set(n, e.Value); err != nil {
				v := e.Value
				if Secret(n) {
					v = redacted
				}
				return nil, fmt.Errorf("flagenv: %s = %q from %s: %w", n, v, e.Source, err)
			}
		}
		if t.current != nil {
			e.Value = t.current(n)
		} else if e.Source.Kind != Environment && e.Source.Kind != File {
			continue
		}
		eff.Entries = append(eff.Entries, e)
	}
	return eff, nil
}

// configPathFrom is ConfigPath over an explicit environment.
func configPathFrom(envPrefix, configFile string, environ []string) string {
	if configFile != "" {
		return configFile
	}
	want := EnvName(envPrefix, ConfigSuffix) + "="
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, want); ok {
			return v
		}
	}
	return ""
}
