package main

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestParseLink(t *testing.T) {
	for in, want := range map[string]link{
		"":                 {},
		"100MiB/s,2ms":     {Rate: 100 << 20, Latency: 2 * time.Millisecond},
		" 100MiB/s , 2ms ": {Rate: 100 << 20, Latency: 2 * time.Millisecond},
		"100MiB/s":         {Rate: 100 << 20},
		"100":              {Rate: 100 << 20},
		"1GiB/s,0ms":       {Rate: 1 << 30},
		"500KiB/s,1s":      {Rate: 500 << 10, Latency: time.Second},
		"250M/s,20ms":      {Rate: 250 << 20, Latency: 20 * time.Millisecond},
	} {
		got, err := parseLink(in)
		if err != nil || got != want {
			t.Errorf("parseLink(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"fast", "100MiB/s,", "100MiB/s,2", "100MiB/s,1500us", "100MiB/s,-2ms", "500B/s",
		"0", "100MiB/h", ",2ms"} {
		if got, err := parseLink(in); err == nil {
			t.Errorf("parseLink(%q) = %+v, want an error", in, got)
		}
	}
}

func TestLinkToxicsAndHeading(t *testing.T) {
	l := link{Rate: 100 << 20, Latency: 2 * time.Millisecond}
	tx := l.toxics()
	if len(tx) != 4 {
		t.Fatalf("toxics = %v, want bandwidth and latency on both streams", tx)
	}
	seen := map[string]bool{}
	for _, x := range tx {
		seen[x["type"].(string)+"/"+x["stream"].(string)] = true
		if x["type"] == "bandwidth" && x["attributes"].(map[string]any)["rate"] != int64(104857) {
			t.Errorf("bandwidth rate = %v KB/s, want 104857 (100 MiB/s in toxiproxy's 1000-byte KB)", x["attributes"])
		}
	}
	for _, k := range []string{"bandwidth/downstream", "bandwidth/upstream", "latency/downstream", "latency/upstream"} {
		if !seen[k] {
			t.Errorf("no %s toxic in %v", k, tx)
		}
	}
	if got := len(link{Rate: 1 << 20}.toxics()); got != 2 {
		t.Errorf("a link without latency has %d toxics, want 2", got)
	}
	if s := l.String(); !strings.Contains(s, "100MiB/s") || !strings.Contains(s, "2ms") {
		t.Errorf("heading %q does not state the link", s)
	}
	if s := (link{}).String(); !strings.Contains(s, "no link") {
		t.Errorf("heading of no link = %q", s)
	}
	o, err := parseOptions([]string{"--link", "100MiB/s,2ms"})
	if err != nil || o.Link != l {
		t.Errorf("parseOptions --link = %+v, %v", o.Link, err)
	}
	if _, err := parseOptions([]string{"--link", "fast"}); err == nil {
		t.Error("parseOptions accepted --link fast")
	}
}

// TestLinkProxyForwards checks that the shaped proxy carries a request and a 1 MiB response intact in both
// directions with every toxic installed (no speed is asserted).
func TestLinkProxyForwards(t *testing.T) {
	body := strings.Repeat("0123456789abcdef", 1<<16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, _ := io.ReadAll(r.Body)
		io.WriteString(w, string(in)+body)
	}))
	defer srv.Close()
	lp, err := startLinkProxy(srv.URL, link{Rate: 64 << 20, Latency: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer lp.stop()
	if _, _, err := net.SplitHostPort(strings.TrimPrefix(lp.endpoint, "http://")); err != nil {
		t.Fatalf("proxy endpoint %q: %v", lp.endpoint, err)
	}
	resp, err := http.Post(lp.endpoint, "text/plain", strings.NewReader("ping"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil || string(got) != "ping"+body {
		t.Fatalf("through the proxy: %d bytes, %v; want %d bytes echoed", len(got), err, len("ping"+body))
	}
	if _, err := startLinkProxy("https://127.0.0.1:1", link{Rate: 1 << 20}); err == nil {
		t.Error("startLinkProxy accepted an https endpoint")
	}
}
