package httpapi

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/punchconnect/punchconnect/internal/adms"
	"github.com/punchconnect/punchconnect/internal/apitest"
	"github.com/punchconnect/punchconnect/internal/attendance"
	"github.com/punchconnect/punchconnect/internal/store"
	"github.com/punchconnect/punchconnect/internal/store/storetest"
)

// testEnv is a real server on loopback over a real store, with one account.
type testEnv struct {
	t      testing.TB
	store  *store.Store
	server *Server
	clock  *storetest.Clock
	url    string
	acct   attendance.Account
	key    string
	api    *apitest.Client
}

type envOption func(*Config)

func withRateLimit(n int) envOption { return func(c *Config) { c.RateLimitPerDevice = n } }

// newEnv starts a server over a fresh store of backend b.
func newEnv(t testing.TB, b storetest.Backend, opts ...envOption) *testEnv {
	t.Helper()
	clock := storetest.NewClock(storetest.Epoch)
	s := b.Open(t, store.Options{Now: clock.Now})
	e := startServer(t, s, clock, opts...)
	e.acct, e.key = storetest.NewAccount(t, s, "Acme")
	e.api = apitest.New(t, e.url, e.key)
	return e
}

// startServer serves s on a loopback port until t ends.
func startServer(t testing.TB, s *store.Store, clock *storetest.Clock, opts ...envOption) *testEnv {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	gw, err := adms.New(adms.Config{Store: s, Logger: logger, Now: clock.Now, PollInterval: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Store: s, PublicURL: url, Version: "test", Now: clock.Now, Logger: logger, Devices: gw, Held: gw, Records: gw.RecordsCounter()}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := &httptest.Server{Listener: l, Config: &http.Server{Handler: srv}}
	hs.Start()
	t.Cleanup(hs.Close)
	return &testEnv{t: t, store: s, server: srv, clock: clock, url: url}
}

// otherAccount makes a second account and a client for it.
func (e *testEnv) otherAccount(name string) (attendance.Account, *apitest.Client) {
	a, key := storetest.NewAccount(e.t, e.store, name)
	return a, e.api.WithKey(key)
}

func (e *testEnv) countDevices(accountID string) int {
	n, err := e.store.CountDevices(context.Background(), accountID)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// eachBackend runs fn as a subtest per store backend.
func eachBackend(t *testing.T, fn func(t *testing.T, b storetest.Backend)) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			fn(t, b)
		})
	}
}
