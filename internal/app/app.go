// Package app wires the store, the HTTP API and the background duties into
// one running server. The binary and the end-to-end tests boot it the same way.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/punchconnect/punchconnect/internal/adms"
	"github.com/punchconnect/punchconnect/internal/commands"
	"github.com/punchconnect/punchconnect/internal/config"
	"github.com/punchconnect/punchconnect/internal/delivery"
	"github.com/punchconnect/punchconnect/internal/httpapi"
	"github.com/punchconnect/punchconnect/internal/mail"
	"github.com/punchconnect/punchconnect/internal/periodic"
	"github.com/punchconnect/punchconnect/internal/store"
)

// Version is set at build time with -ldflags "-X github.com/punchconnect/punchconnect/internal/app.Version=…".
var Version = ""

// VersionString is the running version: the build-time one, else the
// module version or VCS revision Go recorded, else "dev".
func VersionString() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			return v
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "dev-" + s.Value[:12]
			}
		}
	}
	return "dev"
}

// sweepInterval is how often housekeeping runs: expired idempotency keys,
// old rate-limit counters, retention.
const sweepInterval = time.Hour

// Main is one running PunchConnect server.
type Main struct {
	Config config.Config
	// Stdout receives the first account's API key when serve makes it.
	Stdout io.Writer
	Logger *slog.Logger
	// Now is the clock; tests replace it.
	Now func() time.Time

	Store *store.Store
	// URL is the base URL the server answers on, once Run returns.
	URL string
	// DeviceURL is the base URL of the device listener (--device-addr), if any.
	DeviceURL string

	server       *http.Server
	deviceServer *http.Server
	pprofServer  *http.Server
	listener     net.Listener
	serveDone    chan struct{}
	serveResult  error
	stop         context.CancelFunc
	wg           sync.WaitGroup
	sender       *delivery.Sender
}

// NewLogger builds the process logger from the config.
func NewLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Run opens and migrates the store, makes the first account on an empty
// store, and starts serving. It returns once the server listens.
func (m *Main) Run(ctx context.Context) error {
	if err := m.Config.Validate(); err != nil {
		return err
	}
	if m.Now == nil {
		m.Now = time.Now
	}
	if m.Logger == nil {
		m.Logger = NewLogger(m.Config, os.Stderr)
	}
	if m.Stdout == nil {
		m.Stdout = os.Stdout
	}
	s, err := store.Open(ctx, m.Config.DatabaseURL, store.Options{Now: m.Now, MaxConns: m.Config.DatabaseMaxConns})
	if err != nil {
		return err
	}
	m.Store = s
	applied, err := s.Migrate(ctx)
	if err != nil {
		return err
	}
	for _, line := range applied {
		m.Logger.Info("migrated", "migration", line)
	}
	if err := m.bootstrap(ctx); err != nil {
		return err
	}

	m.listener, err = net.Listen("tcp", m.Config.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", m.Config.Addr, err)
	}
	m.URL = config.DefaultPublicURL(m.listener.Addr())
	publicURL := m.Config.PublicURL
	if publicURL == "" {
		publicURL = m.URL
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for name, db := range s.Pools() {
		reg.MustRegister(collectors.NewDBStatsCollector(db, name))
	}
	if s.Dialect() == store.Postgres {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "punchconnect_cluster_signals_up",
			Help: "1 while this node hears the other nodes' commits (its LISTEN connection is up); 0: it finds their events by polling.",
		}, func() float64 {
			if s.SignalsListening() {
				return 1
			}
			return 0
		}))
	}
	proxies, err := m.Config.Proxies()
	if err != nil {
		return err
	}
	gateway, err := adms.New(adms.Config{
		Store: s, Logger: m.Logger, Now: m.Now, PollInterval: m.Config.DevicePollInterval,
		TrustedProxies: proxies, HeldTotal: m.Config.HeldUploadsMax, Registry: reg,
	})
	if err != nil {
		return err
	}
	slots, err := m.Config.RetrySlots()
	if err != nil {
		return err
	}
	var mailer mail.Sender
	if m.Config.SMTPURL != "" {
		if mailer, err = mail.NewSMTP(m.Config.SMTPURL, m.Config.SMTPFrom); err != nil {
			return err
		}
	} else {
		m.Logger.Warn("no --smtp-url: failure e-mails are kept in the outbox but not sent")
	}
	// Delivery, e-mail and replays run on the store's background pool, so
	// device and API traffic cannot starve them of connections.
	notifier := delivery.NewNotifier(s.Background(), mailer, m.Logger, m.Now)
	m.sender = delivery.NewSender(m.Config.WebhookTimeout, m.Config.AllowPrivateWebhookURLs, VersionString(), m.Now)
	dispatcher, err := delivery.NewDispatcher(delivery.Config{
		Store: s.Background(), Sender: m.sender, Logger: m.Logger, Now: m.Now, Slots: slots, PublicURL: publicURL,
		Notify: notifier.Kick,
	})
	if err != nil {
		return err
	}
	api, err := httpapi.New(httpapi.Config{
		Store: s, Logger: m.Logger, PublicURL: publicURL, Version: VersionString(), Now: m.Now,
		RateLimitPerDevice: m.Config.RateLimitPerDevice, RequestTimeout: m.Config.RequestTimeout, Registry: reg,
		Devices: gateway, Held: gateway, Records: gateway.RecordsCounter(),
		Sender: m.sender, Deliveries: dispatcher, AllowPrivateWebhookURLs: m.Config.AllowPrivateWebhookURLs,
	})
	if err != nil {
		return err
	}
	m.server = m.newServer(api)
	m.server.RegisterOnShutdown(api.CloseStreams)
	m.serveDone = make(chan struct{})
	go func() {
		m.serveResult = m.server.Serve(m.listener)
		close(m.serveDone)
	}()
	if m.Config.DeviceAddr != "" {
		l, err := net.Listen("tcp", m.Config.DeviceAddr)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", m.Config.DeviceAddr, err)
		}
		m.DeviceURL = config.DefaultPublicURL(l.Addr())
		m.deviceServer = m.newServer(api.DeviceHandler())
		go func() {
			if err := m.deviceServer.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				m.Logger.Error("device listener stopped", "err", err)
			}
		}()
	}

	if m.Config.PprofAddr != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		l, err := net.Listen("tcp", m.Config.PprofAddr)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", m.Config.PprofAddr, err)
		}
		m.pprofServer = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = m.pprofServer.Serve(l) }()
	}

	bg, stop := context.WithCancel(context.WithoutCancel(ctx))
	m.stop = stop
	m.wg.Go(func() { m.sweep(bg) })
	if s.Dialect() == store.Postgres {
		m.wg.Go(func() { m.refreshStatistics(bg) })
	}
	m.wg.Go(func() { m.watchOffline(bg) })
	m.wg.Go(func() { m.expireCommands(bg) })
	m.wg.Go(func() { s.RunSignals(bg, m.Logger) })
	m.wg.Go(func() { dispatcher.Run(bg) })
	m.wg.Go(func() { dispatcher.RunReplays(bg) })
	m.wg.Go(func() { notifier.Run(bg) })

	m.Logger.Info("serving", "url", m.URL, "public_url", publicURL, "device_url", m.DeviceURL,
		"database", s.Dialect().String(), "version", VersionString())
	return nil
}

// newServer is an HTTP server with the timeouts every listener uses. Device
// uploads of large backlogs over slow links get minutes to arrive.
func (m *Main) newServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(m.Logger.Handler(), slog.LevelWarn),
	}
}

// offlineCheckEvery is how often devices silent for too long are marked offline.
const offlineCheckEvery = 5 * time.Second

// watchOffline marks devices offline after --device-offline-after without
// contact, each with its device.status event. The change happens once per
// device however many nodes watch.
func (m *Main) watchOffline(ctx context.Context) {
	every(ctx, offlineCheckEvery, func() {
		if n, err := adms.MarkOffline(ctx, m.Store, m.Now().Add(-m.Config.OfflineAfter())); err != nil {
			m.Logger.Warn("offline check", "err", err)
		} else if n > 0 {
			m.Logger.Info("devices went offline", "count", n)
		}
	})
}

// commandExpiryEvery is at most how often commands past their deadline
// are ended (more often with a shorter device poll interval).
const commandExpiryEvery = 15 * time.Second

// expireCommands ends commands whose deadline has passed (with their
// command.failed events), whichever node notices first.
func (m *Main) expireCommands(ctx context.Context) {
	every(ctx, min(commandExpiryEvery, m.Config.DevicePollInterval), func() {
		for ctx.Err() == nil {
			n, err := commands.Expire(ctx, m.Store.Background(), 200)
			if err != nil {
				m.Logger.Warn("expire commands", "err", err)
				return
			}
			if n > 0 {
				m.Logger.Info("commands expired", "count", n)
			}
			if n < 200 {
				return
			}
		}
	})
}

// every runs fn each interval until ctx ends.
func every(ctx context.Context, interval time.Duration, fn func()) {
	periodic.Every(ctx, interval, func() bool { fn(); return true })
}

// bootstrap makes the first account of an empty store and prints its key once.
func (m *Main) bootstrap(ctx context.Context) error {
	a, key, created, err := m.Store.CreateFirstAccount(ctx, m.Config.BootstrapName, m.Config.BootstrapEmail)
	if err != nil {
		return fmt.Errorf("create first account: %w", err)
	}
	if !created {
		return nil
	}
	rule := strings.Repeat("─", 72)
	fmt.Fprintf(m.Stdout, "%s\nPunchConnect made the first account of this empty store.\n\n  account: %s\n  API key: %s\n\n"+
		"The key is shown only this once; store it now. Use it as\n  Authorization: Bearer %s\n%s\n",
		rule, a.ID, key, key, rule)
	return nil
}

// sweep runs housekeeping hourly.
func (m *Main) sweep(ctx context.Context) {
	every(ctx, sweepInterval, func() { m.housekeeping(ctx) })
}

// statisticsEvery is how often PostgreSQL's statistics of busy tables are
// checked for growth (see store.RefreshStatistics).
const statisticsEvery = 2 * time.Second

// refreshStatistics keeps the planner's statistics of fast-growing tables
// current, on one node of the cluster at a time.
func (m *Main) refreshStatistics(ctx context.Context) {
	every(ctx, statisticsEvery, func() {
		err := m.Store.Duty(ctx, "statistics", func(ctx context.Context) error {
			tables, err := m.Store.Background().RefreshStatistics(ctx)
			if len(tables) > 0 {
				m.Logger.Debug("refreshed planner statistics", "tables", tables)
			}
			return err
		})
		if err != nil && !errors.Is(err, store.ErrDutyTaken) && ctx.Err() == nil {
			m.Logger.Warn("refresh planner statistics", "err", err)
		}
	})
}

// housekeeping deletes expired idempotency keys, old rate-limit counters
// and whatever the retention settings let go, and refreshes SQLite's
// planner statistics (PostgreSQL's: refreshStatistics) — on one node of the
// cluster at a time.
func (m *Main) housekeeping(ctx context.Context) {
	err := m.Store.Duty(ctx, "housekeeping", func(ctx context.Context) error {
		if n, err := m.Store.SweepIdempotencyKeys(ctx); err != nil {
			m.Logger.Warn("sweep idempotency keys", "err", err)
		} else if n > 0 {
			m.Logger.Info("swept expired idempotency keys", "count", n)
		}
		if _, err := m.Store.SweepRateLimitCounters(ctx, m.Now().Add(-48*time.Hour)); err != nil {
			m.Logger.Warn("sweep rate-limit counters", "err", err)
		}
		if r, err := m.Store.ApplyRetention(ctx, m.Config.Retention); err != nil {
			m.Logger.Warn("retention", "err", err)
		} else if r != (store.RetentionResult{}) {
			m.Logger.Info("retention", "events", r.Events, "attempts", r.Attempts, "uploads", r.Uploads,
				"commands", r.Commands, "notifications", r.Notifications)
		}
		if err := m.Store.Optimize(ctx); err != nil {
			m.Logger.Warn("refresh planner statistics", "err", err)
		}
		return nil
	})
	if err != nil && !errors.Is(err, store.ErrDutyTaken) && ctx.Err() == nil {
		m.Logger.Warn("housekeeping", "err", err)
	}
}

// Done is closed when the server stops serving: after Close, or on its own
// when its listener fails.
func (m *Main) Done() <-chan struct{} { return m.serveDone }

// Close stops accepting requests, lets in-flight ones finish (until ctx
// ends), stops background work and closes the store. Every write is a
// transaction, so whatever is cut short is rolled back, never half-written.
func (m *Main) Close(ctx context.Context) error {
	var errs []error
	if m.pprofServer != nil {
		_ = m.pprofServer.Close()
	}
	if m.deviceServer != nil {
		if err := m.deviceServer.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("shutdown device listener: %w", err))
		}
	}
	if m.server != nil {
		if err := m.server.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("shutdown: %w", err))
			_ = m.server.Close()
		}
		<-m.serveDone
		if err := m.serveResult; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	if m.stop != nil {
		// Delivery workers finish the request in flight and commit what
		// they sent; anything cut short is sent again after a restart.
		m.stop()
		m.wg.Wait()
	}
	if m.sender != nil {
		m.sender.Close()
	}
	if m.Store != nil {
		errs = append(errs, m.Store.Close())
	}
	return errors.Join(errs...)
}
