package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/Shopify/toxiproxy/v2"
	"github.com/Shopify/toxiproxy/v2/collectors"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// link is the network the --link mode emulates between every tool and MinIO: each TCP connection is limited to
// Rate bytes per second in each direction, and every chunk of data is delayed by Latency in each direction (so a
// request–response round trip gains 2×Latency). The zero link means no shaping.
type link struct {
	Rate    int64 // bytes per second per connection and direction
	Latency time.Duration
}

// on reports whether the run is shaped.
func (l link) on() bool { return l.Rate > 0 }

// String describes the link for the table heading, e.g. "100MiB/s per connection each way, +2ms each way".
func (l link) String() string {
	if !l.on() {
		return "loopback, no link emulation"
	}
	s := formatSize(l.Rate) + "/s per connection each way"
	if l.Latency > 0 {
		s += ", +" + l.Latency.String() + " latency each way"
	}
	return s
}

// parseLink reads --link RATE[,LATENCY]: RATE is a size per second as parseSize reads it ("100MiB/s"; the "/s"
// is optional, a plain number is MiB/s), LATENCY a Go duration in whole milliseconds ("2ms"; toxiproxy delays in
// milliseconds). The empty string is no link.
func parseLink(s string) (link, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return link{}, nil
	}
	rateS, latS, hasLat := strings.Cut(s, ",")
	rateS = strings.TrimSuffix(strings.TrimSpace(rateS), "/s")
	rate, err := parseSize(rateS)
	if err != nil {
		return link{}, fmt.Errorf("rate: %w", err)
	}
	// toxiproxy's bandwidth toxic counts in KB/s (1000 bytes): a slower rate cannot be expressed.
	if rate < 1000 {
		return link{}, fmt.Errorf("rate %q: at least 1000 bytes/s", rateS)
	}
	l := link{Rate: rate}
	if hasLat {
		latS = strings.TrimSpace(latS)
		if l.Latency, err = time.ParseDuration(latS); err != nil {
			return link{}, fmt.Errorf("latency: %w", err)
		}
		if l.Latency < 0 || l.Latency%time.Millisecond != 0 {
			return link{}, fmt.Errorf("latency %q: a non-negative whole number of milliseconds", latS)
		}
	}
	return l, nil
}

// toxics are the toxiproxy toxics that realise the link: a bandwidth limit on each direction and, when asked,
// a latency on each direction. toxiproxy gives every proxied connection its own instance of each toxic, so the
// rate is per connection, like the per-stream limit of a real S3 path.
func (l link) toxics() []map[string]any {
	var out []map[string]any
	for _, stream := range []string{"downstream", "upstream"} {
		out = append(out, map[string]any{"name": "bandwidth-" + stream, "type": "bandwidth", "stream": stream,
			"toxicity": 1.0, "attributes": map[string]any{"rate": l.Rate / 1000}})
		if l.Latency > 0 {
			out = append(out, map[string]any{"name": "latency-" + stream, "type": "latency", "stream": stream,
				"toxicity": 1.0, "attributes": map[string]any{"latency": l.Latency.Milliseconds(), "jitter": 0}})
		}
	}
	return out
}

// linkProxy is the in-process toxiproxy every tool reaches MinIO through in --link mode.
type linkProxy struct {
	p        *toxiproxy.Proxy
	endpoint string // http://127.0.0.1:PORT
}

// startLinkProxy listens on a free loopback port, forwards to the MinIO at endpoint (http://HOST:PORT) and
// shapes every connection as l says.
func startLinkProxy(endpoint string, l link) (*linkProxy, error) {
	api := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	api.Metrics.ProxyMetrics = collectors.NewProxyMetricCollectors()
	upstream := strings.TrimPrefix(endpoint, "http://")
	if upstream == endpoint {
		return nil, errors.New("link emulation needs an http:// MinIO endpoint")
	}
	p := toxiproxy.NewProxy(api, "minio", "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		return nil, fmt.Errorf("toxiproxy in front of %s: %w", upstream, err)
	}
	for _, tx := range l.toxics() {
		b, err := json.Marshal(tx)
		if err != nil {
			p.Stop()
			return nil, err
		}
		if _, err := p.Toxics.AddToxicJson(bytes.NewReader(b)); err != nil {
			p.Stop()
			return nil, fmt.Errorf("toxiproxy toxic %s: %w", b, err)
		}
	}
	return &linkProxy{p: p, endpoint: "http://" + p.Listen}, nil
}

// stop closes the listener and every proxied connection.
func (lp *linkProxy) stop() { lp.p.Stop() }
