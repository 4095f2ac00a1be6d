package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/punchconnect/punchconnect/internal/store"
)

// httpMetrics are the request counters and latency histograms at /metrics.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) (*httpMetrics, error) {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "punchconnect_http_requests_total",
			Help: "HTTP requests served, by method, route pattern and status code.",
		}, []string{"method", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "punchconnect_http_request_duration_seconds",
			Help:    "Time to serve an HTTP request, by method and route pattern.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"method", "route"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *httpMetrics) observe(method, route string, status int, d time.Duration) {
	m.requests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(method, route).Observe(d.Seconds())
}

func metricsHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}

// backlogCollector reports the queues of the whole cluster (every node
// reads the same database, so every node reports the same values: alert on
// their max). A read is reused for backlogMaxAge, so frequent scrapes by
// several scrapers cost the database one read.
type backlogCollector struct {
	store *store.Store
	log   *slog.Logger
	now   func() time.Time

	mu   sync.Mutex
	at   time.Time
	last store.Backlog
}

const backlogMaxAge = 5 * time.Second

var (
	descDeliveriesPending = prometheus.NewDesc("punchconnect_deliveries_pending",
		"Webhook deliveries waiting to be delivered (not yet delivered nor given up), across the cluster.", nil, nil)
	descOldestPending = prometheus.NewDesc("punchconnect_deliveries_oldest_pending_seconds",
		"Age of the oldest delivery still waiting; 0 when none waits.", nil, nil)
	descEndpoints = prometheus.NewDesc("punchconnect_webhook_endpoints",
		"Webhook endpoints by delivery state (healthy, failing, disabled).", []string{"state"}, nil)
	descDevices = prometheus.NewDesc("punchconnect_devices",
		"Registered devices by status (pending: never seen; online; offline).", []string{"status"}, nil)
	descCommandsOpen = prometheus.NewDesc("punchconnect_commands_open",
		"Device commands not yet finished, by status (queued, sent).", []string{"status"}, nil)
	descNotificationsPending = prometheus.NewDesc("punchconnect_notifications_pending",
		"Failure e-mails waiting to be sent.", nil, nil)
	descReplaysRunning = prometheus.NewDesc("punchconnect_replays_running",
		"Webhook replay jobs in progress.", nil, nil)
)

func (c *backlogCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDeliveriesPending, descOldestPending, descEndpoints, descDevices,
		descCommandsOpen, descNotificationsPending, descReplaysRunning} {
		ch <- d
	}
}

func (c *backlogCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := c.now(); c.at.IsZero() || now.Sub(c.at) >= backlogMaxAge || now.Before(c.at) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		b, err := c.store.Backlog(ctx)
		cancel()
		if err != nil {
			// The scrape still carries the other metrics; /healthz and
			// the absence of these series tell the database is unwell.
			c.log.Warn("metrics: read the backlog", "err", err)
			return
		}
		c.at, c.last = now, b
	}
	b := c.last
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(descDeliveriesPending, float64(b.DeliveriesPending))
	gauge(descOldestPending, b.OldestPending.Seconds())
	for _, m := range []struct {
		d *prometheus.Desc
		v map[string]int64
	}{{descEndpoints, b.Endpoints}, {descDevices, b.Devices}, {descCommandsOpen, b.CommandsOpen}} {
		for label, n := range m.v {
			gauge(m.d, float64(n), label)
		}
	}
	gauge(descNotificationsPending, float64(b.NotificationsPending))
	gauge(descReplaysRunning, float64(b.ReplaysRunning))
}
