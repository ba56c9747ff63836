package flagenv

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Line is one setting of a configuration file.
type Line struct {
	// Number is the 1-based line number.
	Number int
	// Key is the setting's name and Value its value, unquoted, without a trailing comment.
	Key, Value string
	// Bare is set when the line holds only a key (a boolean flag meaning true).
	Bare bool
}

// maxLine bounds one line of a configuration file; a longer line is an error, not a truncation.
const maxLine = 64 << 10

// ParseFile reads the configuration file at path (format in the package doc). Errors name path:line.
func ParseFile(path string) ([]Line, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("flagenv: %w", err)
	}
	defer f.Close()
	return Parse(f, path)
}

// Parse reads a configuration from r; name is used in error messages (name:line). It checks the syntax only;
// whether a key exists is the caller's business.
func Parse(r io.Reader, name string) ([]Line, error) {
	var out []Line
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	n := 0
	for sc.Scan() {
		n++
		l, ok, err := parseLine(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("flagenv: %s:%d: %v", name, n, err)
		}
		if ok {
			l.Number = n
			out = append(out, l)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("flagenv: %s:%d: %w", name, n+1, err)
	}
	return out, nil
}

// parseLine parses one line; ok is false for blank and comment lines.
func parseLine(s string) (l Line, ok bool, err error) {
	s = strings.TrimSpace(strings.TrimPrefix(s, "\ufeff"))
	if s == "" || s[0] == '#' {
		return Line{}, false, nil
	}
	i := strings.IndexAny(s, "=:")
	if i < 0 {
		key := stripComment(s)
		if err := checkKey(key); err != nil {
			return Line{}, false, err
		}
		return Line{Key: key, Bare: true}, true, nil
	}
	key := strings.TrimSpace(s[:i])
	if err := checkKey(key); err != nil {
		return Line{}, false, err
	}
	val, err := parseValue(strings.TrimSpace(s[i+1:]))
	if err != nil {
		return Line{}, false, fmt.Errorf("key %q: %v", key, err)
	}
	return Line{Key: key, Value: val}, true, nil
}

// checkKey accepts flag-like names: letters, digits, '-', '_' and '.', not starting with '-'.
func checkKey(k string) error {
	if k == "" {
		return fmt.Errorf("missing key before '=' or ':'")
	}
	if k[0] == '-' {
		return fmt.Errorf("key %q: write the flag name without dashes", k)
	}
	for _, c := range k {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("key %q: unexpected character %q", k, c)
		}
	}
	return nil
}

// parseValue unquotes v or strips its trailing comment.
func parseValue(v string) (string, error) {
	if v == "" || v[0] == '#' {
		return "", nil // "key =   # comment": an empty value
	}
	switch v[0] {
	case '"':
		end := closingQuote(v)
		if end < 0 {
			return "", fmt.Errorf("unterminated quoted value")
		}
		if rest := strings.TrimSpace(v[end+1:]); rest != "" && rest[0] != '#' {
			return "", fmt.Errorf("text after the closing quote: %q", rest)
		}
		u, err := strconv.Unquote(v[:end+1])
		if err != nil {
			return "", fmt.Errorf("bad quoted value: %v", err)
		}
		return u, nil
	case '\'':
		end := strings.IndexByte(v[1:], '\'')
		if end < 0 {
			return "", fmt.Errorf("unterminated quoted value")
		}
		if rest := strings.TrimSpace(v[end+2:]); rest != "" && rest[0] != '#' {
			return "", fmt.Errorf("text after the closing quote: %q", rest)
		}
		return v[1 : end+1], nil
	}
	return stripComment(v), nil
}

// closingQuote returns the index of the '"' that closes the double-quoted string at the start of v, or -1.
func closingQuote(v string) int {
	for i := 1; i < len(v); i++ {
		switch v[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return -1
}

// stripComment cuts an unquoted value at the first '#' preceded by a blank.
func stripComment(v string) string {
	for i := 1; i < len(v); i++ {
		if v[i] == '#' && (v[i-1] == ' ' || v[i-1] == '\t') {
			return strings.TrimSpace(v[:i])
		}
	}
	return v
}
