package metrics

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// exposition is a parsed scrape: help and type per family, and samples keyed by their series text
// (`name{a="x",b="y"}`, labels as written).
type exposition struct {
	help, typ map[string]string
	samples   map[string]float64
	order     []string // family names in output order
}

// parse parses the text format strictly enough to catch what Prometheus would reject: every sample belongs to a
// family announced by # TYPE just before it, label values are quoted and escaped, values are numbers.
func parse(t *testing.T, text string) exposition {
	t.Helper()
	e := exposition{help: map[string]string{}, typ: map[string]string{}, samples: map[string]float64{}}
	current := ""
	for n, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		fail := func(msg string) { t.Fatalf("line %d %q: %s\nfull output:\n%s", n+1, line, msg, text) }
		switch {
		case strings.HasPrefix(line, "# HELP "):
			name, help, _ := strings.Cut(line[len("# HELP "):], " ")
			e.help[name] = help
		case strings.HasPrefix(line, "# TYPE "):
			name, typ, _ := strings.Cut(line[len("# TYPE "):], " ")
			if typ != "counter" && typ != "gauge" {
				fail("bad type")
			}
			if _, dup := e.typ[name]; dup {
				fail("family announced twice")
			}
			if _, ok := e.help[name]; !ok {
				fail("TYPE without HELP")
			}
			e.typ[name] = typ
			e.order = append(e.order, name)
			current = name
		case strings.HasPrefix(line, "#") || line == "":
			fail("unexpected comment or blank line")
		default:
			sp := strings.LastIndexByte(line, ' ')
			if sp < 0 {
				fail("no value")
			}
			series, val := line[:sp], line[sp+1:]
			v, err := strconv.ParseFloat(val, 64)
			if err != nil {
				fail("bad value")
			}
			name := series
			if i := strings.IndexByte(series, '{'); i >= 0 {
				name = series[:i]
				if !strings.HasSuffix(series, "}") {
					fail("unterminated labels")
				}
				checkLabels(t, series[i+1:len(series)-1], fail)
			}
			if name != current {
				fail("sample outside its family")
			}
			if _, dup := e.samples[series]; dup {
				fail("duplicate series")
			}
			e.samples[series] = v
		}
	}
	return e
}

// checkLabels walks a{...} content: name="value" pairs separated by commas, values with only \\ \" \n escapes.
func checkLabels(t *testing.T, s string, fail func(string)) {
	t.Helper()
	for s != "" {
		eq := strings.IndexByte(s, '=')
		if eq <= 0 || !validLabel(s[:eq]) || len(s) < eq+2 || s[eq+1] != '"' {
			fail("bad label name")
			return
		}
		i := eq + 2
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\n' {
				fail("raw newline in label value")
			}
			if s[i] == '\\' {
				i++
				if i >= len(s) || !strings.ContainsRune(`\"n`, rune(s[i])) {
					fail("bad escape")
					return
				}
			}
		}
		if i >= len(s) {
			fail("unterminated label value")
			return
		}
		s = s[i+1:]
		if s != "" {
			if s[0] != ',' {
				fail("missing comma")
				return
			}
			s = s[1:]
		}
	}
}

func scrape(t *testing.T, r *Registry) exposition {
	t.Helper()
	var b strings.Builder
	if _, err := r.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	return parse(t, b.String())
}

func TestOutputFormat(t *testing.T) {
	r := NewRegistry()
	c := r.Counter("b_total", "A counter.\nSecond line with \\ backslash.")
	g := r.Gauge("a_gauge", "A gauge.")
	v := r.CounterVec("c_total", "A vector.", "op", "status")
	r.GaugeFunc("d_func", "From a function.", func() int64 { return -7 })
	r.CounterFunc("e_total", "Counter from a function.", func() uint64 { return 1 << 63 })
	c.Add(3)
	c.Inc()
	g.Set(10)
	g.Dec()
	g.Add(-20)
	v.With("Put", "200").Add(2)
	v.With("Get", "404").Inc()
	v.With("Get", "200").Inc()
	v.With(`we"ird\`+"\n", "0").Inc()

	var b strings.Builder
	r.WriteTo(&b)
	want := `# HELP a_gauge A gauge.
# TYPE a_gauge gauge
a_gauge -11
# HELP b_total A counter.\nSecond line with \\ backslash.
# TYPE b_total counter
b_total 4
# HELP c_total A vector.
# TYPE c_total counter
c_total{op="Get",status="200"} 1
c_total{op="Get",status="404"} 1
c_total{op="Put",status="200"} 2
c_total{op="we\"ird\\\n",status="0"} 1
# HELP d_func From a function.
# TYPE d_func gauge
d_func -7
# HELP e_total Counter from a function.
# TYPE e_total counter
e_total 9223372036854775808
`
	if b.String() != want {
		t.Fatalf("output:\n%s\nwant:\n%s", b.String(), want)
	}
	e := parse(t, b.String())
	if got := e.samples[`c_total{op="Put",status="200"}`]; got != 2 {
		t.Fatalf("parsed Put/200 = %v, want 2", got)
	}
}

func TestInvalidUTF8LabelValue(t *testing.T) {
	r := NewRegistry()
	r.CounterVec("x_total", "x", "op").With("a\xffb").Inc()
	e := scrape(t, r)
	if _, ok := e.samples["x_total{op=\"a\uFFFDb\"}"]; !ok {
		t.Fatalf("invalid UTF-8 not replaced: %v", e.samples)
	}
}

func TestRegistrationPanics(t *testing.T) {
	for name, f := range map[string]func(r *Registry){
		"duplicate":        func(r *Registry) { r.Counter("x", ""); r.Gauge("x", "") },
		"bad name":         func(r *Registry) { r.Counter("1x", "") },
		"dash in name":     func(r *Registry) { r.Counter("a-b", "") },
		"no labels":        func(r *Registry) { r.CounterVec("v", "") },
		"too many labels":  func(r *Registry) { r.CounterVec("v", "", "a", "b", "c", "d", "e") },
		"reserved label":   func(r *Registry) { r.CounterVec("v", "", "__name") },
		"wrong arity":      func(r *Registry) { r.CounterVec("v", "", "a", "b").With("x") },
		"colon in label":   func(r *Registry) { r.CounterVec("v", "", "a:b") },
		"empty name":       func(r *Registry) { r.Gauge("", "") },
		"duplicate vector": func(r *Registry) { r.CounterVec("v", "", "a"); r.CounterVec("v", "", "a") },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			f(NewRegistry())
		})
	}
}

func TestSeriesBound(t *testing.T) {
	r := NewRegistry()
	v := r.CounterVec("v_total", "v", "k", "j")
	for i := 0; i < MaxSeries+50; i++ {
		v.With(strconv.Itoa(i), "x").Inc()
	}
	v.With("0", "x").Inc() // an existing series keeps counting on its own
	e := scrape(t, r)
	if n := len(e.samples); n != MaxSeries+1 {
		t.Fatalf("%d series, want %d plus the overflow one", n, MaxSeries)
	}
	if got := e.samples[`v_total{k="other",j="other"}`]; got != 50 {
		t.Fatalf("overflow series = %v, want 50", got)
	}
	if got := e.samples[`v_total{k="0",j="x"}`]; got != 2 {
		t.Fatalf("series 0 = %v, want 2", got)
	}
}

// TestConcurrent increments from many goroutines while scraping; run with -race. The totals must be exact.
func TestConcurrent(t *testing.T) {
	r := NewRegistry()
	c := r.Counter("c_total", "c")
	g := r.Gauge("g", "g")
	v := r.CounterVec("v_total", "v", "worker", "op")
	const workers, n = 8, 2000
	var wg sync.WaitGroup
	stop := make(chan struct{})
	scraped := make(chan error, 1)
	go func() {
		var err error
		for {
			select {
			case <-stop:
				scraped <- err
				return
			default:
			}
			if _, werr := r.WriteTo(io.Discard); werr != nil {
				err = werr
			}
		}
	}()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n; i++ {
				c.Inc()
				g.Inc()
				g.Dec()
				v.With(strconv.Itoa(w), []string{"get", "put", "list"}[i%3]).Inc()
			}
		}()
	}
	wg.Wait()
	close(stop)
	if err := <-scraped; err != nil {
		t.Fatal(err)
	}
	e := scrape(t, r)
	if e.samples["c_total"] != workers*n || e.samples["g"] != 0 {
		t.Fatalf("c_total=%v g=%v, want %d and 0", e.samples["c_total"], e.samples["g"], workers*n)
	}
	var sum float64
	for k, val := range e.samples {
		if strings.HasPrefix(k, "v_total{") {
			sum += val
		}
	}
	if sum != workers*n || len(e.samples) != 2+workers*3 {
		t.Fatalf("vector sum %v over %d samples, want %d over %d", sum, len(e.samples)-2, workers*n, workers*3)
	}
}

func TestHotPathDoesNotAllocate(t *testing.T) {
	r := NewRegistry()
	m := NewS3Mount(r)
	m.ObserveS3("UploadPart", 200, 1, nil)
	f := NewFTPFront(r)
	allocs := testing.AllocsPerRun(100, func() {
		m.ObserveS3("UploadPart", 200, 8<<20, nil)
		m.PartsInFlight.Inc()
		m.PartsInFlight.Dec()
		f.ObserveEvent("upload", "ok", 10)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per observation, want 0", allocs)
	}
}

func TestHandler(t *testing.T) {
	r := NewRegistry()
	r.Counter("x_total", "x").Add(5)
	health := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	srv := httptest.NewServer(r.Handler(WithHealth(health)))
	defer srv.Close()

	res, body := get(t, srv.URL+"/metrics")
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != ContentType {
		t.Fatalf("GET /metrics: %d %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if e := parse(t, body); e.samples["x_total"] != 5 {
		t.Fatalf("x_total = %v, want 5", e.samples["x_total"])
	}
	if res, body := get(t, srv.URL+"/healthz"); res.StatusCode != 200 || body != "ok" {
		t.Fatalf("GET /healthz: %d %q", res.StatusCode, body)
	}
	if res, _ := get(t, srv.URL+"/other"); res.StatusCode != 404 {
		t.Fatalf("GET /other: %d, want 404", res.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/metrics", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST /metrics: %d, want 405", res.StatusCode)
	}
	// Without WithHealth there is no /healthz.
	plain := httptest.NewServer(r.Handler())
	defer plain.Close()
	if res, _ := get(t, plain.URL+"/healthz"); res.StatusCode != 404 {
		t.Fatalf("GET /healthz without WithHealth: %d, want 404", res.StatusCode)
	}
}

func TestServe(t *testing.T) {
	r := NewRegistry()
	r.Gauge("up", "up").Set(1)
	s, err := Serve("127.0.0.1:0", r.Handler(), nil)
	if err != nil {
		t.Fatal(err)
	}
	res, body := get(t, "http://"+s.Addr.String()+"/metrics")
	if res.StatusCode != 200 || parse(t, body).samples["up"] != 1 {
		t.Fatalf("%d %q", res.StatusCode, body)
	}
	if _, err := Serve(s.Addr.String(), r.Handler(), nil); err == nil {
		t.Fatal("second Serve on a taken address succeeded")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get("http://" + s.Addr.String() + "/metrics"); err == nil {
		t.Fatal("server answers after Close")
	}
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(b)
}

type fakeBudget struct{ in, max int64 }

func (b fakeBudget) InUse() int64 { return b.in }
func (b fakeBudget) Max() int64   { return b.max }

func TestS3Mount(t *testing.T) {
	r := NewRegistry()
	m := NewS3Mount(r)
	before := scrape(t, r)
	for _, name := range []string{"s3mount_s3_requests_total", "s3mount_s3_retries_total", "s3mount_bytes_uploaded_total",
		"s3mount_bytes_downloaded_total", "s3mount_parts_in_flight", "s3mount_write_budget_bytes_in_use",
		"s3mount_write_budget_bytes_max", "s3mount_cache_hits_total", "s3mount_cache_misses_total", "s3mount_cache_bytes",
		"s3mount_cache_get_resumes_total", "s3mount_panics_total"} {
		if _, ok := before.typ[name]; !ok {
			t.Errorf("family %s missing", name)
		}
	}
	if before.samples["s3mount_write_budget_bytes_max"] != 0 || before.samples["s3mount_cache_bytes"] != 0 {
		t.Fatal("unwatched gauges are not 0")
	}

	m.ObserveS3("UploadPart", 200, 8<<20, nil)
	m.ObserveS3("UploadPart", 500, 8<<20, errors.New("internal error")) // failed: not uploaded
	m.ObserveS3("PutObject", 200, 100, nil)
	m.ObserveS3("GetObject", 206, 4096, nil)
	m.ObserveS3("GetObject", 0, 0, errors.New("connection refused"))
	m.ObserveS3("CopyObject", 200, 123, nil) // server-side: neither direction
	m.ObserveS3("HeadObject", 404, 0, errors.New("not found"))
	m.ObserveS3("HeadObject", 9999, 0, errors.New("odd"))
	m.ObserveRetry("UploadPart")
	m.ObserveRetry("UploadPart")
	m.PartsInFlight.Inc()
	m.WatchBudget(fakeBudget{in: 16 << 20, max: 256 << 20})
	var hits atomic.Int64
	m.WatchCache(func() CacheStats { return CacheStats{Hits: hits.Load(), Misses: 2, Bytes: 3 << 20, GetResumes: 4} })
	hits.Store(1)
	m.WatchPanics(func() int64 { return 3 })

	e := scrape(t, r)
	want := map[string]float64{
		`s3mount_s3_requests_total{op="UploadPart",status="200"}`:   1,
		`s3mount_s3_requests_total{op="UploadPart",status="500"}`:   1,
		`s3mount_s3_requests_total{op="GetObject",status="0"}`:      1,
		`s3mount_s3_requests_total{op="HeadObject",status="other"}`: 1,
		"s3mount_bytes_uploaded_total":                              8<<20 + 100,
		"s3mount_bytes_downloaded_total":                            4096,
		"s3mount_s3_retries_total":                                  2,
		"s3mount_parts_in_flight":                                   1,
		"s3mount_write_budget_bytes_in_use":                         16 << 20,
		"s3mount_write_budget_bytes_max":                            256 << 20,
		"s3mount_cache_hits_total":                                  1,
		"s3mount_cache_misses_total":                                2,
		"s3mount_cache_bytes":                                       3 << 20,
		"s3mount_cache_get_resumes_total":                           4,
		"s3mount_panics_total":                                      3,
	}
	checkSamples(t, e, want)
	hits.Store(5)
	checkSamples(t, scrape(t, r), map[string]float64{"s3mount_cache_hits_total": 5})
}

func TestFTPFront(t *testing.T) {
	r := NewRegistry()
	f := NewFTPFront(r)
	e := scrape(t, r)
	for _, s := range []string{`ftpfront_logins_total{result="failed"}`, `ftpfront_transfers_total{dir="upload",result="error"}`,
		`ftpfront_transfer_bytes_total{dir="download"}`, "ftpfront_bans_total", "ftpfront_sessions_active",
		"ftpfront_panics_total"} {
		if v, ok := e.samples[s]; !ok || v != 0 {
			t.Errorf("series %s = %v (present %v), want 0 from the start", s, v, ok)
		}
	}
	for _, ev := range []struct {
		event, result string
		bytes         int64
	}{
		{"connect", "ok", 0}, {"connect", "ok", 0}, {"login_failed", "bad password", 0}, {"login_ok", "ok", 0},
		{"upload", "ok", 1000}, {"upload", "disk full", 10}, {"download", "aborted", 5}, {"download", "ok", 7},
		{"mkdir", "ok", 0}, {"disconnect", "ok", 0},
	} {
		f.ObserveEvent(ev.event, ev.result, ev.bytes)
	}
	f.WatchBans(func() uint64 { return 2 })
	f.WatchPanics(func() int64 { return 4 })
	checkSamples(t, scrape(t, r), map[string]float64{
		"ftpfront_sessions_active":                                  1,
		`ftpfront_logins_total{result="ok"}`:                        1,
		`ftpfront_logins_total{result="failed"}`:                    1,
		`ftpfront_transfers_total{dir="upload",result="ok"}`:        1,
		`ftpfront_transfers_total{dir="upload",result="error"}`:     1,
		`ftpfront_transfers_total{dir="download",result="aborted"}`: 1,
		`ftpfront_transfers_total{dir="download",result="ok"}`:      1,
		`ftpfront_transfer_bytes_total{dir="upload"}`:               1010,
		`ftpfront_transfer_bytes_total{dir="download"}`:             12,
		"ftpfront_bans_total":                                       2,
		"ftpfront_panics_total":                                     4,
	})
}

func TestRuntime(t *testing.T) {
	r := NewRegistry()
	RegisterRuntime(r)
	e := scrape(t, r)
	if e.samples["go_goroutines"] < 1 || e.samples["go_heap_bytes"] <= 0 {
		t.Fatalf("runtime metrics: %v", e.samples)
	}
}

func checkSamples(t *testing.T, e exposition, want map[string]float64) {
	t.Helper()
	var bad []string
	for k, w := range want {
		if got, ok := e.samples[k]; !ok || got != w {
			bad = append(bad, fmt.Sprintf("%s = %v (present %v), want %v", k, got, ok, w))
		}
	}
	sort.Strings(bad)
	if len(bad) > 0 {
		t.Fatal(strings.Join(bad, "\n"))
	}
	// Families come out sorted.
	if !sort.StringsAreSorted(e.order) {
		t.Fatalf("families not sorted: %v", e.order)
	}
}

func BenchmarkCounterInc(b *testing.B) {
	c := NewRegistry().Counter("c", "c")
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Inc()
		}
	})
}

func BenchmarkObserveS3(b *testing.B) {
	m := NewS3Mount(NewRegistry())
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.ObserveS3("UploadPart", 200, 8<<20, nil)
		}
	})
}
