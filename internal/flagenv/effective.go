package flagenv

import (
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
)

// Kind says which layer a setting's value came from.
type Kind int

// The layers, lowest precedence first.
const (
	Default Kind = iota
	File
	Environment
	CommandLine
)

// Source is where a setting's value came from.
type Source struct {
	Kind Kind
	// Where is "path:line" for File, the variable's name for Environment, empty otherwise.
	Where string
}

// String describes the source for messages: "default", "command line", "environment S3MOUNT_X", "path:line".
func (s Source) String() string {
	switch s.Kind {
	case File:
		return s.Where
	case Environment:
		return "environment " + s.Where
	case CommandLine:
		return "command line"
	default:
		return "default"
	}
}

// Entry is one setting's effective value.
type Entry struct {
	Name   string
	Value  string // as the flag prints it (flag.Value.String), not redacted
	Source Source
}

// Effective is the configuration in force after Load: one Entry per setting, sorted by name.
type Effective struct {
	Entries []Entry
	// UnknownEnv lists the PREFIX_* variables that matched no setting (PREFIX_CONFIG aside); they were ignored
	// with a warning.
	UnknownEnv []string
}

// redacted replaces secret values in printed configurations and error messages.
const redacted = "<redacted>"

// secretWords mark a setting's name as holding a secret. File names (tls-key, users) and key ids are not secrets.
var secretWords = []string{"password", "passwd", "secret", "token", "credential"}

// Secret reports whether the setting name holds a secret whose value must never be printed: its name contains
// password, passwd, secret, token or credential.
func Secret(name string) bool {
	n := strings.ToLower(name)
	for _, w := range secretWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// Redact returns value as safe to print for the setting name: "<redacted>" for a non-empty secret, and a URL's
// password replaced by "xxxxx" for anything else.
func Redact(name, value string) string {
	if value != "" && Secret(name) {
		return redacted
	}
	if strings.Contains(value, "://") && strings.Contains(value, "@") {
		if u, err := url.Parse(value); err == nil && u.User != nil {
			if _, has := u.User.Password(); has {
				return u.Redacted()
			}
		}
	}
	return value
}

// WriteTo prints the configuration in the file format, one "name = value  # source" line per setting, secrets
// redacted. Values that would not read back as themselves are quoted.
func (e *Effective) WriteTo(w io.Writer) (int64, error) {
	var b strings.Builder
	width := 0
	for _, en := range e.Entries {
		width = max(width, len(en.Name))
	}
	for _, en := range e.Entries {
		fmt.Fprintf(&b, "%-*s = %s  # %s\n", width, en.Name, quoteIfNeeded(Redact(en.Name, en.Value)), en.Source)
	}
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

// String is the WriteTo text.
func (e *Effective) String() string {
	var b strings.Builder
	e.WriteTo(&b)
	return b.String()
}

// Lookup returns the entry of name.
func (e *Effective) Lookup(name string) (Entry, bool) {
	for _, en := range e.Entries {
		if en.Name == name {
			return en, true
		}
	}
	return Entry{}, false
}

// quoteIfNeeded quotes v when parseValue would not give it back unchanged.
func quoteIfNeeded(v string) string {
	if v == "" {
		return `""`
	}
	if got, err := parseValue(v); err == nil && got == v && strings.TrimSpace(v) == v {
		return v
	}
	return strconv.Quote(v)
}

// LogValue makes an Effective loggable in one line: log.Info("configuration", "settings", eff) logs a group of
// the settings that are not defaults, each "name=value (source)", secrets redacted.
func (e *Effective) LogValue() slog.Value {
	var attrs []slog.Attr
	for _, en := range e.Entries {
		if en.Source.Kind == Default {
			continue
		}
		attrs = append(attrs, slog.String(en.Name, Redact(en.Name, en.Value)+" ("+en.Source.String()+")"))
	}
	return slog.GroupValue(attrs...)
}
