// Package httpapi serves the REST API (/v1), its documentation and the
// operational endpoints. It turns HTTP into calls on the store and domain
// errors into the error object of PRODUCT.md §3; it is the only place where
// domain codes meet HTTP statuses.
package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/punchconnect/punchconnect/internal/attendance"
	"github.com/punchconnect/punchconnect/internal/delivery"
	"github.com/punchconnect/punchconnect/internal/id"
	"github.com/punchconnect/punchconnect/internal/store"
)

// Defaults of Config.
const (
	DefaultRateLimitPerDevice = 1000
	DefaultRequestTimeout     = 60 * time.Second
	defaultBodyLimit          = 1 << 20  // 1 MiB: any single object
	batchBodyLimit            = 16 << 20 // 16 MiB: 5,000 employees with room to spare
	punchesBodyLimit          = 4 << 20  // 4 MiB: 1,000 punches with room to spare
)

// Config wires a Server.
type Config struct {
	Store     *store.Store
	Logger    *slog.Logger
	PublicURL string // base of doc_url and links, without a trailing slash
	Version   string
	// Now is the clock; defaults to time.Now.
	Now func() time.Time
	// RateLimitPerDevice is the daily REST call allowance per registered
	// device, and the minimum per account.
	RateLimitPerDevice int
	// RequestTimeout bounds the work of one /v1 request.
	RequestTimeout time.Duration
	// Registry receives the HTTP metrics and is served at /metrics.
	Registry *prometheus.Registry
	// Devices serves /iclock/* (the ZKTeco PUSH gateway); nil: no device routes.
	Devices http.Handler
	// Held processes the uploads held for a serial when a device registers it.
	Held HeldReplayer
	// Records counts punch records by outcome; shared with the gateway.
	Records *prometheus.CounterVec
	// Sender sends webhook test events (default: one with the default
	// timeout and AllowPrivateWebhookURLs).
	Sender *delivery.Sender
	// Deliveries is woken when the API makes deliveries due; nil: nobody
	// to wake (the dispatcher polls).
	Deliveries Deliverer
	// AllowPrivateWebhookURLs lets webhooks point at loopback and private
	// addresses (--allow-private-webhook-urls).
	AllowPrivateWebhookURLs bool
}

// HeldReplayer processes the uploads of a serial received before any
// account registered it.
type HeldReplayer interface {
	ReplayHeld(ctx context.Context, tx *store.Tx, d attendance.Device) (int, error)
}

// Server is the HTTP handler of the whole API.
type Server struct {
	store          *store.Store
	log            *slog.Logger
	publicURL      string
	version        string
	now            func() time.Time
	perDevice      int
	requestTimeout time.Duration
	mux            *http.ServeMux
	metrics        *httpMetrics
	openapiJSON    []byte
	errorsHTML     []byte
	webhooksHTML   []byte
	commandsHTML   []byte
	apiRoutes      []string
	held           HeldReplayer
	records        *prometheus.CounterVec

	sender               *delivery.Sender
	dispatcher           Deliverer
	allowPrivateWebhooks bool
	// streams is cancelled by CloseStreams: event streams end so a
	// graceful shutdown need not wait for them.
	streams      context.Context
	closeStreams context.CancelFunc
}

// CloseStreams ends every open event stream (clients resume after
// reconnecting). Register it with http.Server.RegisterOnShutdown.
func (s *Server) CloseStreams() { s.closeStreams() }

// New builds a Server and its routes.
func New(cfg Config) (*Server, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.RateLimitPerDevice <= 0 {
		cfg.RateLimitPerDevice = DefaultRateLimitPerDevice
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	s := &Server{
		store: cfg.Store, log: cfg.Logger, publicURL: strings.TrimRight(cfg.PublicURL, "/"), version: cfg.Version,
		now: cfg.Now, perDevice: cfg.RateLimitPerDevice, requestTimeout: cfg.RequestTimeout,
		mux: http.NewServeMux(), held: cfg.Held, records: cfg.Records,
		sender: cfg.Sender, dispatcher: cfg.Deliveries, allowPrivateWebhooks: cfg.AllowPrivateWebhookURLs,
	}
	s.streams, s.closeStreams = context.WithCancel(context.Background())
	if s.sender == nil {
		s.sender = delivery.NewSender(delivery.DefaultTimeout, cfg.AllowPrivateWebhookURLs, cfg.Version, cfg.Now)
	}
	var err error
	if s.metrics, err = newHTTPMetrics(cfg.Registry); err != nil {
		return nil, err
	}
	if err := cfg.Registry.Register(&backlogCollector{store: cfg.Store, log: cfg.Logger, now: cfg.Now}); err != nil {
		return nil, err
	}
	if s.openapiJSON, err = openapiJSON(s.publicURL); err != nil {
		return nil, err
	}
	if s.errorsHTML, err = errorsHTML(); err != nil {
		return nil, err
	}
	if s.webhooksHTML, err = webhooksHTML(); err != nil {
		return nil, err
	}
	if s.commandsHTML, err = commandsHTML(); err != nil {
		return nil, err
	}
	s.routes(cfg.Registry)
	if cfg.Devices != nil {
		s.mux.Handle("/iclock/", cfg.Devices)
	}
	return s, nil
}

func (s *Server) routes(reg *prometheus.Registry) {
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.Handle("GET /metrics", metricsHandler(reg))
	s.mux.HandleFunc("GET /docs/errors", s.errorDocs)
	s.mux.HandleFunc("GET /docs/webhooks", s.webhookDocs)
	s.mux.HandleFunc("GET /docs/commands", s.commandDocs)
	s.mux.HandleFunc("GET /v1/openapi.json", s.openapi)

	s.api("GET /v1/devices", s.listDevices)
	s.api("POST /v1/devices", s.createDevice)
	s.api("GET /v1/devices/{id}", s.getDevice)
	s.api("PATCH /v1/devices/{id}", s.updateDevice)
	s.api("DELETE /v1/devices/{id}", s.deleteDevice)

	s.api("GET /v1/employees", s.listEmployees)
	s.api("POST /v1/employees", s.createEmployee)
	s.api("POST /v1/employees/batch", s.batchEmployees, bodyLimit(batchBodyLimit))
	s.api("GET /v1/employees/{id}", s.getEmployee)
	s.api("PATCH /v1/employees/{id}", s.updateEmployee)
	s.api("DELETE /v1/employees/{id}", s.deleteEmployee)

	s.api("GET /v1/devices/{id}/users", s.listDeviceUsers)
	s.api("POST /v1/devices/{id}/commands", s.createCommand, bodyLimit(batchBodyLimit))
	s.api("GET /v1/devices/{id}/commands", s.listDeviceCommands)
	s.api("GET /v1/commands/{id}", s.getCommand)
	s.api("GET /v1/batches", s.listBatches)
	s.api("POST /v1/batches", s.createBatch, bodyLimit(batchBodyLimit))
	s.api("GET /v1/batches/{id}", s.getBatch)
	s.api("POST /v1/batches/{id}/retry_failed", s.retryFailed)

	s.api("GET /v1/settings", s.getSettings)
	s.api("PATCH /v1/settings", s.updateSettings)

	s.api("GET /v1/attendance", s.listAttendance)
	s.api("GET /v1/attendance/rejected", s.listRejected)
	s.api("GET /v1/attendance/rejected/{id}", s.getRejected)
	s.api("POST /v1/attendance/rejected/{id}/release", s.releaseRejected)
	s.api("GET /v1/attendance/{id}", s.getAttendance)
	s.api("POST /v1/punches", s.postPunches, bodyLimit(punchesBodyLimit), unmetered())

	s.api("GET /v1/webhooks", s.listWebhooks)
	s.api("POST /v1/webhooks", s.createWebhook)
	s.api("GET /v1/webhooks/{id}", s.getWebhook)
	s.api("PATCH /v1/webhooks/{id}", s.updateWebhook)
	s.api("DELETE /v1/webhooks/{id}", s.deleteWebhook)
	s.api("GET /v1/webhooks/{id}/secret", s.revealSecret)
	s.api("POST /v1/webhooks/{id}/rotate_secret", s.rotateSecret)
	s.api("POST /v1/webhooks/{id}/test", s.testWebhook)
	s.api("POST /v1/webhooks/{id}/retry", s.retryWebhook)
	s.api("POST /v1/webhooks/{id}/replay", s.replayWebhook)
	s.api("GET /v1/webhooks/{id}/replays/{replay_id}", s.getReplay)
	s.api("GET /v1/webhooks/{id}/deliveries", s.listWebhookDeliveries)

	s.api("GET /v1/events", s.listEvents)
	s.api("GET /v1/events/stream", s.streamEvents, streaming())
	s.api("GET /v1/events/{id}", s.getEvent)
	s.api("GET /v1/events/{id}/deliveries", s.listEventDeliveries)
	s.api("POST /v1/events/{id}/redeliver", s.redeliverEvent)
}

// Routes lists the "METHOD /path" patterns of the /v1 API, for the check
// that the OpenAPI document describes every one.
func (s *Server) Routes() []string { return append([]string(nil), s.apiRoutes...) }

type ctxKey int

const (
	requestIDKey ctxKey = iota
	requestInfoKey
)

// requestInfo collects what the access log reports about a request.
type requestInfo struct {
	accountID string
}

func requestID(ctx context.Context) string {
	v, _ := ctx.Value(requestIDKey).(string)
	return v
}

func infoOf(ctx context.Context) *requestInfo {
	if v, ok := ctx.Value(requestInfoKey).(*requestInfo); ok {
		return v
	}
	return &requestInfo{}
}

// ServeHTTP gives every response a request ID, turns panics into 500s,
// answers unknown routes in JSON, and records metrics and the access log.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	reqID := id.New(id.Request)
	info := &requestInfo{}
	ctx := context.WithValue(context.WithValue(r.Context(), requestIDKey, reqID), requestInfoKey, info)
	r = r.WithContext(ctx)
	w.Header().Set("X-Request-Id", reqID)
	sw := &statusWriter{ResponseWriter: w}
	route := "unmatched"
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.ErrorContext(ctx, "panic serving request", "request_id", reqID, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			if !sw.wroteHeader {
				s.writeError(sw, r, fmt.Errorf("panic: %v", p))
			}
		}
		elapsed := time.Since(start)
		s.metrics.observe(r.Method, route, sw.code(), elapsed)
		attrs := []slog.Attr{
			slog.String("request_id", reqID), slog.String("method", r.Method), slog.String("route", route),
			slog.String("path", r.URL.Path), slog.Int("status", sw.code()),
			slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000), slog.String("remote", r.RemoteAddr),
		}
		if info.accountID != "" {
			attrs = append(attrs, slog.String("account_id", info.accountID))
		}
		s.log.LogAttrs(ctx, logLevelFor(route, sw.code()), "request", attrs...)
	}()

	h, pattern := s.mux.Handler(r)
	if pattern == "" {
		s.unmatched(sw, r, h)
		return
	}
	route = pattern
	s.mux.ServeHTTP(sw, r)
}

// unmatched answers a request no route takes: 405 with Allow when the path
// exists for other methods, redirects as the mux gives them, 404 otherwise.
func (s *Server) unmatched(w http.ResponseWriter, r *http.Request, h http.Handler) {
	probe := &headerRecorder{header: http.Header{}}
	h.ServeHTTP(probe, r)
	if strings.HasPrefix(r.URL.Path, "/v1/") && probe.status != http.StatusMovedPermanently {
		// Every /v1 path needs a key and every authenticated /v1 call counts,
		// whatever it answers.
		if _, err := s.admit(w, r, true); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	switch probe.status {
	case http.StatusMethodNotAllowed:
		allow := probe.header.Get("Allow")
		w.Header().Set("Allow", allow)
		s.writeError(w, r, attendance.Errorf(attendance.CodeMethodNotAllowed, "",
			"%s is not allowed on %s; this path accepts %s.", r.Method, r.URL.Path, allow))
	case http.StatusMovedPermanently, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		w.Header().Set("Location", probe.header.Get("Location"))
		w.WriteHeader(probe.status)
	default:
		s.writeError(w, r, attendance.Errorf(attendance.CodeRouteNotFound, "",
			"There is no route %s %s. The API reference is at %s/v1/openapi.json.", r.Method, r.URL.Path, s.publicURL))
	}
}

// headerRecorder captures the status and headers a handler writes, and drops the body.
type headerRecorder struct {
	header http.Header
	status int
}

func (h *headerRecorder) Header() http.Header         { return h.header }
func (h *headerRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (h *headerRecorder) WriteHeader(code int)        { h.status = code }

// statusWriter remembers the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) code() int {
	if !w.wroteHeader {
		return http.StatusOK
	}
	return w.status
}

// encodeJSON renders a response body. Encoding our own view types cannot fail.
func encodeJSON(v any) []byte {
	body, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("encode response: %v", err))
	}
	return append(body, '\n')
}

// writeJSON writes v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	writeBody(w, status, encodeJSON(v))
}

// writeBody writes an encoded JSON body with status.
func writeBody(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// healthz reports whether the database answers.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.log.WarnContext(ctx, "health check failed", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "database": s.store.Dialect().String()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "database": s.store.Dialect().String(), "version": s.version})
}

// logLevelFor logs server failures louder than ordinary requests, and the
// steady heartbeat of devices quieter.
func logLevelFor(route string, status int) slog.Level {
	switch {
	case status >= 500:
		return slog.LevelError
	case route == "/iclock/" && status < 400:
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

// DeviceHandler serves only the device gateway, for a listener of its own
// (--device-addr); other paths answer 404.
func (s *Server) DeviceHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/iclock/") {
			http.NotFound(w, r)
			return
		}
		s.ServeHTTP(w, r)
	})
}
