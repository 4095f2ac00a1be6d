package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// signals wake this node's background work when a transaction commits: its
// own transactions' at once, and on PostgreSQL the other nodes' through
// LISTEN/NOTIFY (RunSignals). A signal is only a hint — the dispatcher and
// event streams also poll — so a lost one delays work, never loses it.
type signals struct {
	// deliveriesQueued is signalled when a transaction that queued
	// deliveries commits, to wake the dispatcher.
	deliveriesQueued chan struct{}
	// eventsRecorded is closed, and replaced, whenever a transaction that
	// recorded events commits (event streams wait on it).
	mu             sync.Mutex
	eventsRecorded chan struct{}
	// othersQueued is signalled when another node has committed events or
	// deliveries (RunSignals), to wake the dispatcher's workers.
	othersQueued chan struct{}
	// listening is true while this node's listening connection is up.
	listening atomic.Bool
	// publish asks RunSignals to tell the other nodes that a transaction of
	// this node committed events or deliveries (coalesced: requests made
	// while a notification is on its way, or within notifySpacing of the
	// last one, are answered by the next one).
	publish chan struct{}
}

func newSignals() *signals {
	return &signals{deliveriesQueued: make(chan struct{}, 1), othersQueued: make(chan struct{}, 1),
		eventsRecorded: make(chan struct{}), publish: make(chan struct{}, 1)}
}

// fromOthers wakes this node on another node's commit.
func (g *signals) fromOthers() {
	g.announceEvents()
	poke(g.othersQueued)
}

func (g *signals) wakeDeliveries() { poke(g.deliveriesQueued) }

func (g *signals) announceEvents() {
	g.mu.Lock()
	defer g.mu.Unlock()
	close(g.eventsRecorded)
	g.eventsRecorded = make(chan struct{})
}

// poke signals ch without waiting: a signal already pending stands for this one.
func poke(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// EventsRecorded returns a channel closed when a transaction of this node —
// or, while RunSignals runs, of another node on the same PostgreSQL database —
// next commits events.
func (s *Store) EventsRecorded() <-chan struct{} {
	s.signals.mu.Lock()
	defer s.signals.mu.Unlock()
	return s.signals.eventsRecorded
}

// DeliveriesQueued is signalled (coalesced) whenever a transaction of this
// node that queued deliveries has committed.
func (s *Store) DeliveriesQueued() <-chan struct{} { return s.signals.deliveriesQueued }

// OthersQueued is signalled (coalesced) while RunSignals runs, when another
// node on the same PostgreSQL database has committed events or deliveries:
// endpoints this node holds may have new deliveries. (Endpoints nobody holds
// are claimed by the node that queued them.)
func (s *Store) OthersQueued() <-chan struct{} { return s.signals.othersQueued }

// SignalsListening reports whether this node hears the other nodes' commits
// now: RunSignals runs and its listening connection is up (PostgreSQL).
func (s *Store) SignalsListening() bool { return s.signals.listening.Load() }

// announceEvents and wakeDeliveries run after a commit of this node.
func (s *Store) announceEvents() {
	s.signals.announceEvents()
	poke(s.signals.publish)
}

func (s *Store) wakeDeliveries() {
	s.signals.wakeDeliveries()
	poke(s.signals.publish)
}

// Retry waits of the signal connections after a failure: doubling from the
// first to the last.
const (
	signalRetryFirst = 100 * time.Millisecond
	signalRetryLast  = 5 * time.Second
	// notifySpacing is the least time between two notifications of a node.
	// The first commit after a quiet spell is announced at once; under load
	// commits are announced together, so that notifying — a transaction,
	// and a wake-up of every listening node — stays cheap (at 500
	// punches/s on three nodes, a notification per commit made delivery
	// latency worse, not better: both cores were already busy).
	notifySpacing = 20 * time.Millisecond
)

// listenCheck is how long the listening connection may stay quiet before it
// is checked with a ping (a peer gone without a word is otherwise noticed
// only by TCP keep-alive, minutes later). A variable for tests.
var listenCheck = 30 * time.Second

// RunSignals shares commit signals with the other nodes on the same
// PostgreSQL database (and schema) until ctx ends: after this node commits
// events or deliveries it sends a NOTIFY, and on another node's it wakes this
// node's dispatcher and event streams, so an event recorded on one node is
// sent at once by the node that holds its endpoint, not at that node's next
// poll. It keeps two connections of its own (one listening, one notifying;
// the notifying one commits with synchronous_commit off: a notification is
// not data) and reconnects after failures; meanwhile the nodes poll. On
// SQLite (one node) it returns at once.
func (s *Store) RunSignals(ctx context.Context, log *slog.Logger) {
	if s.dialect != Postgres {
		return
	}
	cfg, err := pgx.ParseConfig(s.url)
	if err != nil { // Open parsed the same URL
		log.Error("cross-node signals", "err", err)
		return
	}
	schema, ok := s.currentSchema(ctx, log)
	if !ok {
		return
	}
	// One channel per schema, so that deployments sharing a database in
	// schemas of their own do not wake each other.
	channel := "punchconnect " + schema
	if len(channel) > 63 { // PostgreSQL's identifier limit
		sum := sha256.Sum256([]byte(schema))
		channel = "punchconnect " + hex.EncodeToString(sum[:16])
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	node := hex.EncodeToString(b[:])
	var wg sync.WaitGroup
	// A connection of its own, named for pg_stat_activity.
	named := func(application string) *pgx.ConnConfig {
		c := cfg.Copy()
		if c.RuntimeParams == nil {
			c.RuntimeParams = map[string]string{}
		}
		c.RuntimeParams["application_name"] = application + " " + schema
		return c
	}
	listenCfg, notifyCfg := named("punchconnect listen"), named("punchconnect notify")
	notifyCfg.RuntimeParams["synchronous_commit"] = "off"
	wg.Go(func() {
		retrySignals(ctx, log, "listen for other nodes' commits", func(connected func()) error {
			return s.listen(ctx, listenCfg, channel, node, connected)
		})
	})
	wg.Go(func() {
		retrySignals(ctx, log, "tell other nodes of commits", func(connected func()) error {
			return s.notify(ctx, notifyCfg, channel, node, connected)
		})
	})
	wg.Wait()
}

// currentSchema reads the schema this store works in, retrying until the
// database answers or ctx ends.
func (s *Store) currentSchema(ctx context.Context, log *slog.Logger) (string, bool) {
	var schema string
	ok := retrySignals(ctx, log, "read the current schema", func(func()) (err error) {
		schema, err = s.schemaName(ctx)
		return err
	})
	return schema, ok
}

// schemaName is the schema this store works in (PostgreSQL: the first of
// the URL's search_path that exists), read once.
func (s *Store) schemaName(ctx context.Context) (string, error) {
	s.schemaMu.Lock()
	defer s.schemaMu.Unlock()
	if s.schema != nil {
		return *s.schema, nil
	}
	var name sql.NullString
	if err := s.read.QueryRowContext(ctx, "SELECT current_schema()").Scan(&name); err != nil {
		return "", err
	}
	s.schema = &name.String
	return name.String, nil
}

// retrySignals runs step until it succeeds or ctx ends, waiting between
// failures (from signalRetryFirst; a step that calls connected starts the
// waits over). It reports whether step succeeded.
func retrySignals(ctx context.Context, log *slog.Logger, what string, step func(connected func()) error) bool {
	wait := signalRetryFirst
	for {
		err := step(func() { wait = signalRetryFirst })
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		log.Warn("cross-node signals: "+what+"; other nodes' work is found by polling meanwhile", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
		wait = min(2*wait, signalRetryLast)
	}
}

// listen wakes this node on the other nodes' notifications until its
// connection fails or ctx ends.
func (s *Store) listen(ctx context.Context, cfg *pgx.ConnConfig, channel, node string, connected func()) error {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeSignalConn(conn)
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		return err
	}
	connected()
	s.signals.listening.Store(true)
	defer s.signals.listening.Store(false)
	// Whatever other nodes committed while this one was not listening.
	s.signals.fromOthers()
	for {
		wctx, cancel := context.WithTimeout(ctx, listenCheck)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			if n.Payload != node {
				s.signals.fromOthers()
			}
		case ctx.Err() != nil:
			return ctx.Err()
		case wctx.Err() != nil:
			pctx, cancel := context.WithTimeout(ctx, listenCheck)
			err := conn.Ping(pctx)
			cancel()
			if err != nil {
				return err
			}
		default:
			return err
		}
	}
}

// notify sends a notification for each (coalesced) publish request until its
// connection fails or ctx ends. A request whose notification failed is sent
// again on the next connection.
func (s *Store) notify(ctx context.Context, cfg *pgx.ConnConfig, channel, node string, connected func()) error {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeSignalConn(conn)
	connected()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.signals.publish:
		}
		if _, err := conn.Exec(ctx, "SELECT pg_notify($1, $2)", channel, node); err != nil {
			poke(s.signals.publish)
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(notifySpacing):
		}
	}
}

func closeSignalConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = conn.Close(ctx)
}
