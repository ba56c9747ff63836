package metrics

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ParseText reads a scrape in the text exposition format and returns its samples keyed by the series as written
// (`name` or `name{a="x",b="y"}`, labels in output order and still escaped). Comment and blank lines are skipped.
// It is the reader tests of the daemons use to check /metrics; it does not validate families or label syntax.
// A sample line without a numeric value after its last space is an error naming the line.
func ParseText(r io.Reader) (map[string]float64, error) {
	samples := map[string]float64{}
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; s.Scan(); n++ {
		l := s.Text()
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		if i < 0 {
			return nil, fmt.Errorf("metrics line %d %q: no value", n, l)
		}
		v, err := strconv.ParseFloat(l[i+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics line %d %q: %w", n, l, err)
		}
		samples[l[:i]] = v
	}
	return samples, s.Err()
}
