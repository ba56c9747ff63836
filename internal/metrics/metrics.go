package metrics

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// MaxLabels is the most labels a vector may have.
const MaxLabels = 4

// MaxSeries bounds the label combinations of one vector; see the package doc.
const MaxSeries = 1000

// overflowValue replaces every label value of combinations beyond MaxSeries.
const overflowValue = "other"

// Registry holds metric families and writes them in the exposition format.
type Registry struct {
	mu       sync.Mutex
	families map[string]family
}

// family is one named metric with its series.
type family interface {
	// write appends the family's HELP, TYPE and sample lines.
	write(b *bytes.Buffer)
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{families: map[string]family{}}
}

// register adds f under name; it panics on an invalid or duplicate name.
func (r *Registry) register(name string, f family) {
	if !validName(name) {
		panic(fmt.Sprintf("metrics: invalid metric name %q", name))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.families[name]; dup {
		panic(fmt.Sprintf("metrics: metric %q registered twice", name))
	}
	r.families[name] = f
}

// Counter registers and returns a counter.
func (r *Registry) Counter(name, help string) *Counter {
	c := &Counter{}
	r.register(name, &scalar{name: name, help: help, typ: "counter", read: c.Value})
	return c
}

// Gauge registers and returns a gauge.
func (r *Registry) Gauge(name, help string) *Gauge {
	g := &Gauge{}
	r.register(name, &scalar{name: name, help: help, typ: "gauge", read: func() uint64 { return uint64(g.Value()) }, signed: true})
	return g
}

// CounterFunc registers a counter whose value f returns at scrape time. f must be fast, safe for concurrent use,
// and never decrease.
func (r *Registry) CounterFunc(name, help string, f func() uint64) {
	r.register(name, &scalar{name: name, help: help, typ: "counter", read: f})
}

// GaugeFunc registers a gauge whose value f returns at scrape time. f must be fast and safe for concurrent use.
func (r *Registry) GaugeFunc(name, help string, f func() int64) {
	r.register(name, &scalar{name: name, help: help, typ: "gauge", read: func() uint64 { return uint64(f()) }, signed: true})
}

// CounterVec registers a counter vector with the given label names (1 to MaxLabels).
func (r *Registry) CounterVec(name, help string, labels ...string) *CounterVec {
	if len(labels) == 0 || len(labels) > MaxLabels {
		panic(fmt.Sprintf("metrics: %s: want 1 to %d labels, got %d", name, MaxLabels, len(labels)))
	}
	for _, l := range labels {
		if !validLabel(l) {
			panic(fmt.Sprintf("metrics: %s: invalid label name %q", name, l))
		}
	}
	v := &CounterVec{name: name, help: help, labels: append([]string(nil), labels...)}
	empty := map[labelKey]*Counter{}
	v.children.Store(&empty)
	r.register(name, v)
	return v
}

// WriteTo writes every family in the exposition format 0.0.4, sorted by name.
func (r *Registry) WriteTo(w io.Writer) (int64, error) {
	r.mu.Lock()
	names := make([]string, 0, len(r.families))
	for n := range r.families {
		names = append(names, n)
	}
	fams := make([]family, len(names))
	sort.Strings(names)
	for i, n := range names {
		fams[i] = r.families[n]
	}
	r.mu.Unlock()
	var b bytes.Buffer
	for _, f := range fams {
		f.write(&b)
	}
	return b.WriteTo(w)
}

// Counter is a monotonically increasing count.
type Counter struct {
	v atomic.Uint64
}

// Add adds n.
func (c *Counter) Add(n uint64) { c.v.Add(n) }

// Inc adds 1.
func (c *Counter) Inc() { c.v.Add(1) }

// Value returns the current count.
func (c *Counter) Value() uint64 { return c.v.Load() }

// Gauge is a value that goes up and down.
type Gauge struct {
	v atomic.Int64
}

// Set sets the value.
func (g *Gauge) Set(n int64) { g.v.Store(n) }

// Add adds n (which may be negative).
func (g *Gauge) Add(n int64) { g.v.Add(n) }

// Inc adds 1.
func (g *Gauge) Inc() { g.v.Add(1) }

// Dec subtracts 1.
func (g *Gauge) Dec() { g.v.Add(-1) }

// Value returns the current value.
func (g *Gauge) Value() int64 { return g.v.Load() }

// labelKey is a label-value combination; unused trailing entries are empty.
type labelKey [MaxLabels]string

// CounterVec is a family of counters told apart by label values.
type CounterVec struct {
	name, help string
	labels     []string

	// children is replaced, never modified, once published: readers load it without a lock.
	children atomic.Pointer[map[labelKey]*Counter]
	mu       sync.Mutex // serializes additions to children
}

// With returns the counter for the label values, one per label name in registration order; it panics on a
// wrong number of values. Values beyond MaxSeries combinations share the counter labelled "other".
func (v *CounterVec) With(values ...string) *Counter {
	if len(values) != len(v.labels) {
		panic(fmt.Sprintf("metrics: %s: want %d label values, got %d", v.name, len(v.labels), len(values)))
	}
	var k labelKey
	copy(k[:], values)
	if c := (*v.children.Load())[k]; c != nil {
		return c
	}
	return v.add(k)
}

// add publishes a new child for k (or the overflow child).
func (v *CounterVec) add(k labelKey) *Counter {
	v.mu.Lock()
	defer v.mu.Unlock()
	old := *v.children.Load()
	if c := old[k]; c != nil {
		return c
	}
	if len(old) >= MaxSeries {
		for i := range v.labels {
			k[i] = overflowValue
		}
		if c := old[k]; c != nil {
			return c
		}
	}
	next := make(map[labelKey]*Counter, len(old)+1)
	for kk, c := range old {
		next[kk] = c
	}
	c := &Counter{}
	next[k] = c
	v.children.Store(&next)
	return c
}

func (v *CounterVec) write(b *bytes.Buffer) {
	writeHeader(b, v.name, v.help, "counter")
	m := *v.children.Load()
	keys := make([]labelKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		for n := range v.labels {
			if keys[i][n] != keys[j][n] {
				return keys[i][n] < keys[j][n]
			}
		}
		return false
	})
	for _, k := range keys {
		b.WriteString(v.name)
		b.WriteByte('{')
		for i, l := range v.labels {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(l)
			b.WriteString(`="`)
			b.WriteString(escapeLabel(k[i]))
			b.WriteByte('"')
		}
		b.WriteString("} ")
		b.WriteString(strconv.FormatUint(m[k].Value(), 10))
		b.WriteByte('\n')
	}
}

// scalar is a family of one unlabelled series.
type scalar struct {
	name, help, typ string
	read            func() uint64
	signed          bool // read returns an int64 bit pattern
}

func (s *scalar) write(b *bytes.Buffer) {
	writeHeader(b, s.name, s.help, s.typ)
	b.WriteString(s.name)
	b.WriteByte(' ')
	if s.signed {
		b.WriteString(strconv.FormatInt(int64(s.read()), 10))
	} else {
		b.WriteString(strconv.FormatUint(s.read(), 10))
	}
	b.WriteByte('\n')
}

func writeHeader(b *bytes.Buffer, name, help, typ string) {
	fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s %s\n", name, escapeHelp(help), name, typ)
}

// escapeHelp escapes a HELP text: backslash and line feed.
func escapeHelp(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(s)
}

// escapeLabel escapes a label value: backslash, double quote and line feed; invalid UTF-8 becomes U+FFFD, which
// the format requires.
func escapeLabel(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if !strings.ContainsAny(s, "\\\"\n") {
		return s
	}
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}

// validName reports whether s matches [a-zA-Z_:][a-zA-Z0-9_:]*.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		ok := c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9'
		if !ok {
			return false
		}
	}
	return true
}

// validLabel reports whether s matches [a-zA-Z_][a-zA-Z0-9_]* and does not start with "__" (reserved).
func validLabel(s string) bool {
	return validName(s) && !strings.Contains(s, ":") && !strings.HasPrefix(s, "__")
}
