package ftpmetrics

import (
	"strconv"
	"time"

	"github.com/s3ftp/s3ftp/events"
	"github.com/s3ftp/s3ftp/internal/metrics"
)

// latencyBuckets are the upper bounds, in seconds, of ftpfront_event_delivery_latency_seconds_bucket.
var latencyBuckets = []float64{0.1, 0.5, 1, 5, 30, 60, 300, 1800}

// Events registers the event delivery metrics in r and returns the events.Observer that feeds them. sinks are
// the configured sink names, published at 0 from the start.
func Events(r *metrics.Registry, sinks []string) events.Observer {
	o := &eventObserver{
		queued:    r.CounterVec("ftpfront_events_queued_total", "Event records queued for a sink (journaled, or pending again at start).", "sink"),
		delivered: r.CounterVec("ftpfront_events_delivered_total", "Event records a sink acknowledged (2xx, exit 0).", "sink"),
		failed:    r.CounterVec("ftpfront_event_delivery_failures_total", "Failed delivery attempts.", "sink"),
		dead:      r.CounterVec("ftpfront_events_dead_lettered_total", "Event records moved to the dead-letter file.", "sink"),
		latency: r.CounterVec("ftpfront_event_delivery_latency_seconds_bucket", "Delivered event records by the time from "+
			"journaling to acknowledgement, cumulative per upper bound le (histogram_quantile works on it).", "sink", "le"),
	}
	for _, s := range sinks {
		o.queued.With(s)
		o.delivered.With(s)
		o.failed.With(s)
		o.dead.With(s)
		for _, b := range latencyBuckets {
			o.latency.With(s, strconv.FormatFloat(b, 'g', -1, 64))
		}
		o.latency.With(s, "+Inf")
	}
	return o
}

type eventObserver struct {
	queued, delivered, failed, dead, latency *metrics.CounterVec
}

func (o *eventObserver) Queued(sink string) { o.queued.With(sink).Inc() }

func (o *eventObserver) Delivered(sink string, latency time.Duration) {
	o.delivered.With(sink).Inc()
	s := latency.Seconds()
	for _, b := range latencyBuckets {
		if s <= b {
			o.latency.With(sink, strconv.FormatFloat(b, 'g', -1, 64)).Inc()
		}
	}
	o.latency.With(sink, "+Inf").Inc()
}

func (o *eventObserver) Failed(sink string) { o.failed.With(sink).Inc() }

func (o *eventObserver) DeadLettered(sink string) { o.dead.With(sink).Inc() }
