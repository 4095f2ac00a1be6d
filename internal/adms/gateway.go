package adms

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/punchconnect/punchconnect/internal/attendance"
	"github.com/punchconnect/punchconnect/internal/store"
)

// Defaults of the gateway.
const (
	DefaultPollInterval   = 10 * time.Second
	DefaultErrorDelay     = 30 * time.Second
	DefaultMaxBody        = 16 << 20 // photos and template packs can reach megabytes
	DefaultHeldPerSerial  = 64 << 20 // uploads kept for one unregistered serial
	DefaultHeldTotal      = 1 << 30  // uploads kept for all unregistered serials
	unclaimedTouchEvery   = time.Minute
	requestTimeout        = 60 * time.Second
	maxTagsInErrorMessage = 3
	// bulkLines: a body of this many lines or more (a backlog upload) is a
	// bulk request to the group commit (store.InTxSharedBulk).
	bulkLines = 16
)

// Config wires a Gateway.
type Config struct {
	Store  *store.Store
	Logger *slog.Logger
	Now    func() time.Time
	// PollInterval is the Delay devices are told: how often they poll for
	// commands, and so the heartbeat.
	PollInterval time.Duration
	ErrorDelay   time.Duration
	// CommandResend is how long a command line sent without an answer waits
	// before it is sent again (default: 3 poll intervals, at least a minute).
	CommandResend time.Duration
	// TrustedProxies are the peers whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	MaxBody        int64
	HeldPerSerial  int64
	HeldTotal      int64
	Registry       prometheus.Registerer
}

// Gateway serves /iclock/*: the ZKTeco PUSH endpoints, with and without the
// .aspx suffix eSSL firmware uses. Device traffic is never rate limited.
type Gateway struct {
	cfg      Config
	log      *slog.Logger
	requests *prometheus.CounterVec
	records  *prometheus.CounterVec
}

// resendAfter is how long an unanswered command line waits to be resent.
func (g *Gateway) resendAfter() time.Duration {
	if g.cfg.CommandResend > 0 {
		return g.cfg.CommandResend
	}
	return max(3*g.cfg.PollInterval, time.Minute)
}

// New builds a gateway.
func New(cfg Config) (*Gateway, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.ErrorDelay <= 0 {
		cfg.ErrorDelay = DefaultErrorDelay
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.HeldPerSerial <= 0 {
		cfg.HeldPerSerial = DefaultHeldPerSerial
	}
	if cfg.HeldTotal <= 0 {
		cfg.HeldTotal = DefaultHeldTotal
	}
	g := &Gateway{
		cfg: cfg, log: cfg.Logger,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "punchconnect_device_requests_total",
			Help: "Requests from devices, by endpoint, table and outcome (ok, unclaimed, forbidden, error).",
		}, []string{"endpoint", "table", "outcome"}),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "punchconnect_punch_records_total",
			Help: "Punch records received from devices and the API, by outcome (accepted, duplicate, rejected) and reason.",
		}, []string{"outcome", "reason"}),
	}
	if cfg.Registry != nil {
		for _, c := range []prometheus.Collector{g.requests, g.records} {
			if err := cfg.Registry.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return g, nil
}

// RecordsCounter is the counter of punch records by outcome, shared with the
// JSON ingestion endpoint.
func (g *Gateway) RecordsCounter() *prometheus.CounterVec { return g.records }

// endpoints the gateway answers (after .aspx and a trailing slash are removed).
var endpoints = map[string]bool{
	"cdata": true, "getrequest": true, "devicecmd": true, "ping": true, "registry": true,
	"push": true, "rtdata": true, "querydata": true, "fdata": true,
}

// endpointOf names the endpoint of a path: /iclock/cdata, /iclock/cdata.aspx
// and /iclock/cdata/ are all "cdata".
func endpointOf(path string) string {
	p := strings.TrimPrefix(path, "/iclock/")
	p = strings.TrimSuffix(p, "/")
	p = strings.TrimSuffix(strings.ToLower(p), ".aspx")
	return p
}

// request is one device request as the gateway handles it.
type request struct {
	endpoint string
	method   string
	query    Query
	rawQuery string
	body     []byte
	serial   string
	ip       string
	at       time.Time
	kind     string // set when replaying a held upload: what it carried
}

// reply is what the device gets back.
type reply struct {
	status int
	body   string
}

func ok(body string) reply { return reply{status: http.StatusOK, body: body} }

var errForbidden = errors.New("forbidden")

// ServeHTTP answers a device. Every path under /iclock/ answers 200 unless
// the request cannot be identified or stored: a 404 would make firmware
// retry the same thing forever.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
	defer cancel()
	req := request{
		endpoint: endpointOf(r.URL.Path), method: r.Method, rawQuery: r.URL.RawQuery,
		query: ParseQuery(r.URL.RawQuery), ip: g.remoteIP(r), at: g.cfg.Now().UTC(),
	}
	table := strings.ToUpper(req.query.Get("table"))
	if t := req.query.Get("table"); t != "" && t == strings.ToLower(t) {
		table = t // Security PUSH tables are lower case
	}
	outcome := "ok"
	defer func() { g.requests.WithLabelValues(metricLabel(req.endpoint), metricLabel(table), outcome).Inc() }()

	serial, err := attendance.NormalizeSerial("SN", req.query.Get("SN"))
	if err != nil {
		outcome = "error"
		writeReply(w, reply{status: http.StatusBadRequest, body: "missing or invalid SN parameter\n"})
		return
	}
	req.serial = serial
	if r.Body != nil {
		req.body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, g.cfg.MaxBody))
		if err != nil {
			outcome = "error"
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				writeReply(w, reply{status: http.StatusRequestEntityTooLarge, body: "body too large\n"})
				return
			}
			writeReply(w, reply{status: http.StatusBadRequest, body: "body not read\n"})
			return
		}
	}
	if !endpoints[req.endpoint] {
		g.log.WarnContext(ctx, "unknown device endpoint", "path", r.URL.Path, "serial", serial, "ip", req.ip)
		writeReply(w, ok("OK"))
		return
	}

	var rep reply
	var unclaimed bool
	share := g.cfg.Store.InTxShared
	if bytes.Count(req.body, []byte{'\n'}) >= bulkLines {
		share = g.cfg.Store.InTxSharedBulk
	}
	err = share(ctx, serial, func(tx *store.Tx) error {
		dev, acct, found, err := tx.DeviceAndAccount(ctx, serial)
		if err != nil {
			return err
		}
		unclaimed = !found
		if !found {
			rep, err = g.serveUnclaimed(ctx, tx, req)
			return err
		}
		if err := checkAccess(dev, req); err != nil {
			return err
		}
		v := g.newVisit(tx, dev, acct, req)
		rep, err = v.serve(ctx)
		if err != nil {
			return err
		}
		return v.finish(ctx)
	})
	switch {
	case errors.Is(err, errForbidden):
		outcome = "forbidden"
		g.log.WarnContext(ctx, "device refused", "serial", serial, "ip", req.ip, "endpoint", req.endpoint)
		writeReply(w, reply{status: http.StatusForbidden, body: "forbidden\n"})
	case errors.Is(err, store.ErrHeldFull):
		outcome = "unclaimed"
		g.log.WarnContext(ctx, "upload of an unregistered serial refused: held uploads are full", "serial", serial, "ip", req.ip)
		writeReply(w, reply{status: http.StatusServiceUnavailable, body: "storage full, retry later\n"})
	case err != nil:
		// Nothing was stored: the device must send it again. An outage of
		// the database is a warning, as on the API; anything else a bug.
		outcome = "error"
		level := slog.LevelError
		if store.IsUnavailable(err) {
			level = slog.LevelWarn
		}
		g.log.Log(ctx, level, "device request failed", "serial", serial, "endpoint", req.endpoint, "table", table, "err", err)
		writeReply(w, reply{status: http.StatusServiceUnavailable, body: "temporarily unavailable, retry\n"})
	default:
		if unclaimed {
			outcome = "unclaimed"
		}
		writeReply(w, rep)
	}
}

// metricLabel bounds label values to what the protocol defines.
func metricLabel(s string) string {
	if len(s) > 24 || strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_')
	}) {
		return "other"
	}
	return s
}

func writeReply(w http.ResponseWriter, r reply) {
	h := w.Header()
	h.Set("Content-Type", "text/plain")
	h.Set("Content-Length", strconv.Itoa(len(r.body)))
	h.Set("Pragma", "no-cache")
	h.Set("Cache-Control", "no-store")
	// net/http adds the Date header devices set their clocks from.
	w.WriteHeader(r.status)
	_, _ = io.WriteString(w, r.body)
}

// remoteIP is the device's address: the peer, or, behind a trusted proxy,
// the last address the proxies did not add themselves.
func (g *Gateway) remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	peer = peer.Unmap()
	if !g.trusted(peer) {
		return peer.String()
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		a = a.Unmap()
		if !g.trusted(a) {
			return a.String()
		}
	}
	return peer.String()
}

func (g *Gateway) trusted(a netip.Addr) bool {
	for _, p := range g.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// checkAccess applies a device's optional source-address allow-list and
// communication key (ComKey, or pushcommkey in the handshake).
func checkAccess(d attendance.Device, req request) error {
	if len(d.AllowedCIDRs) > 0 {
		a, err := netip.ParseAddr(req.ip)
		allowed := false
		for _, s := range d.AllowedCIDRs {
			if p, perr := netip.ParsePrefix(s); perr == nil && err == nil && p.Contains(a) {
				allowed = true
				break
			}
		}
		if !allowed {
			return errForbidden
		}
	}
	if d.CommKey != "" {
		key := req.query.Get("ComKey")
		if key == "" {
			key = req.query.Get("pushcommkey")
		}
		if key != d.CommKey {
			return errForbidden
		}
	}
	return nil
}

// serveUnclaimed answers a serial no account has registered. Its uploads
// are held — acknowledged and kept for the account that registers it — but
// nothing is created in any account.
func (g *Gateway) serveUnclaimed(ctx context.Context, tx *store.Tx, req request) (reply, error) {
	deviceType := ""
	if strings.EqualFold(req.query.Get("DeviceType"), "acc") {
		deviceType = "acc"
	}
	if err := tx.SeeUnclaimed(ctx, req.serial, req.ip, req.query.Get("pushver"), deviceType, unclaimedTouchEvery); err != nil {
		return reply{}, err
	}
	switch {
	case req.endpoint == "cdata" && req.method == http.MethodGet && req.query.Has("options"):
		if deviceType == "acc" {
			return ok("OK"), nil // the device registers next (POST /iclock/registry)
		}
		// No TimeZone: we do not know the device's zone yet, and a wrong one
		// would move its clock. It is asked to re-read its options once
		// registered.
		return ok(AttendanceOptions(req.serial, g.options(nil))), nil
	case req.endpoint == "registry":
		return ok("RegistryCode=" + newRegistryCode() + "\n"), nil
	case req.endpoint == "push":
		return ok(SecurityOptions(newRegistryCode(), newRegistryCode(), g.options(nil))), nil
	case isUpload(req):
		err := tx.HoldUpload(ctx, attendance.HeldUpload{
			SerialNumber: req.serial, Kind: uploadKind(req), Query: req.rawQuery, Body: req.body, RemoteIP: req.ip,
		}, g.cfg.HeldPerSerial, g.cfg.HeldTotal)
		if err != nil {
			return reply{}, err
		}
		return ok(ackFor(req)), nil
	}
	return ok("OK"), nil
}

// isUpload reports whether a request carries data to keep.
func isUpload(req request) bool {
	switch req.endpoint {
	case "cdata", "querydata", "fdata":
		return req.method == http.MethodPost
	}
	return false
}

// uploadKind names what an upload carries: its table (ATTLOG, rtlog,
// tabledata:user, …).
func uploadKind(req request) string {
	if req.kind != "" {
		return req.kind
	}
	t := req.query.Get("table")
	if strings.EqualFold(t, "tabledata") || req.endpoint == "querydata" {
		name := req.query.Get("tablename")
		if name == "" {
			name = req.query.Get("type")
		}
		return "tabledata:" + strings.ToLower(name)
	}
	if req.endpoint == "fdata" && t == "" {
		return "ATTPHOTO"
	}
	if t == strings.ToLower(t) {
		return t
	}
	return strings.ToUpper(t)
}

// ackFor is the acknowledgement of an upload held for an unclaimed serial:
// the same a processed one would get.
func ackFor(req request) string {
	kind := uploadKind(req)
	switch {
	case kind == "ATTLOG" || kind == "OPERLOG":
		return OKCount(len(lines(req.body)))
	case strings.HasPrefix(kind, "tabledata:"):
		return tableAck(req, len(lines(req.body)))
	}
	return "OK"
}

// tableAck is the reply a tabledata upload must get, <tablename>=<count>,
// or the device retries it indefinitely.
func tableAck(req request, n int) string {
	name := req.query.Get("tablename")
	if name == "" {
		return "OK"
	}
	if c := req.query.Get("count"); c != "" {
		if v, err := strconv.Atoi(c); err == nil && v >= 0 {
			n = v
		}
	}
	return fmt.Sprintf("%s=%d", name, n)
}

// options is the option block of a device (nil: unregistered).
func (g *Gateway) options(d *attendance.Device) OptionsConfig {
	c := OptionsConfig{Delay: g.cfg.PollInterval, ErrorDelay: g.cfg.ErrorDelay}
	if d != nil {
		c.Stamps = d.Stamps
	}
	return c
}
