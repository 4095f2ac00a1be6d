// Package store keeps PunchConnect's data in SQLite (the embedded default) or
// PostgreSQL, behind one API. Queries are hand-written with '?' placeholders
// and rebound for PostgreSQL; instants are integer Unix microseconds (UTC) in
// both dialects; IDs are prefixed TypeIDs stored as text.
package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/punchconnect/punchconnect/internal/attendance"
	"github.com/punchconnect/punchconnect/internal/periodic"
)

// Dialect is the SQL database behind a Store.
type Dialect int

// The supported dialects.
const (
	SQLite Dialect = iota
	Postgres
)

func (d Dialect) String() string {
	if d == Postgres {
		return "postgres"
	}
	return "sqlite"
}

// DefaultURL is where serve keeps its data when nothing is configured.
const DefaultURL = "sqlite://./data/punchconnect.db"

// Options tune a Store. The zero value is valid.
type Options struct {
	// Now is the clock; tests replace it. Defaults to time.Now.
	Now func() time.Time
	// MaxConns bounds the PostgreSQL pool (and the SQLite reader pool).
	MaxConns int
}

// Store is the database. It is safe for concurrent use.
type Store struct {
	dialect Dialect
	// write runs transactions. On SQLite it has a single connection whose
	// transactions begin IMMEDIATE, so writers queue instead of failing with
	// SQLITE_BUSY; on PostgreSQL it is the same pool as read.
	write *sql.DB
	read  *sql.DB
	now   func() time.Time
	// path is the SQLite database file ("" on PostgreSQL); url is the
	// PostgreSQL URL ("" on SQLite).
	path, url string
	// schema is the PostgreSQL schema the store works in, once read
	// (schemaName).
	schemaMu sync.Mutex
	schema   *string
	// committer gathers concurrent device requests' transactions into
	// groups that commit together (batch.go).
	committer *committer
	// Prepared statements of the SQLite read and write pools (nil on
	// PostgreSQL).
	readStmts, writeStmts *stmtCache
	// signals are this node's in-process notices of committed work.
	signals *signals
	// beginMu orders beginWrite's choice of sub-journal and its BEGIN;
	// subjournalInMemory is the writer connection's temp_store (SQLite).
	beginMu            sync.Mutex
	subjournalInMemory bool
	// checkpointer is SQLite's connection for WAL checkpoints, run beside
	// the writer (see checkpoints); stopCheckpoints ends them.
	checkpointer    *sql.DB
	stopCheckpoints context.CancelFunc
	checkpointsDone chan struct{}
	// devices holds the writer's device images (see devcache.go).
	devices *deviceCache
	// background is the Store of background work (delivery, e-mail,
	// replays) on a pool of its own, so that a flood of device and API
	// transactions cannot starve it of connections (PostgreSQL); nil: this
	// Store is used (SQLite, whose writes queue for one connection anyway).
	background *Store
}

// backgroundConns is the size of the PostgreSQL pool of background work.
const backgroundConns = 8

// Background is the Store that background work uses: on PostgreSQL the same
// database through a pool of its own.
func (s *Store) Background() *Store {
	if s.background != nil {
		return s.background
	}
	return s
}

// Open connects to the database at rawURL: sqlite://PATH (PATH relative to the
// working directory, or sqlite:///absolute/path) or postgres://…. It does not
// migrate; call Migrate.
func Open(ctx context.Context, rawURL string, opts Options) (*Store, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = 20
	}
	s := &Store{now: opts.Now, signals: newSignals(), devices: newDeviceCache()}
	var err error
	switch {
	case strings.HasPrefix(rawURL, "postgres://"), strings.HasPrefix(rawURL, "postgresql://"):
		s.dialect = Postgres
		s.url = rawURL
		s.write, err = sql.Open("pgx", rawURL)
		if err != nil {
			return nil, fmt.Errorf("open postgres: %w", err)
		}
		s.write.SetMaxOpenConns(opts.MaxConns)
		s.write.SetMaxIdleConns(opts.MaxConns)
		s.write.SetConnMaxIdleTime(5 * time.Minute)
		s.read = s.write
		bg, err := sql.Open("pgx", rawURL)
		if err != nil {
			s.write.Close()
			return nil, fmt.Errorf("open postgres: %w", err)
		}
		bg.SetMaxOpenConns(backgroundConns)
		bg.SetMaxIdleConns(backgroundConns)
		bg.SetConnMaxIdleTime(5 * time.Minute)
		s.background = &Store{dialect: Postgres, write: bg, read: bg, now: s.now, signals: s.signals, devices: newDeviceCache()}
		s.background.committer = newCommitter(s.background, backgroundConns)
	case strings.HasPrefix(rawURL, "sqlite:"):
		s.dialect = SQLite
		path, err := sqlitePath(rawURL)
		if err != nil {
			return nil, err
		}
		s.path = path
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("create database directory: %w", err)
		}
		// WAL lets readers run beside the writer; synchronous=FULL fsyncs the
		// WAL on every commit, so a committed write survives kill -9 and power
		// loss (NORMAL would survive only a process crash).
		// Creating the file and switching it to WAL needs an exclusive lock
		// that SQLite does not wait for; processes opening a new database at
		// once (serve beside accounts create) take turns instead.
		unlock, err := lockFile(path + ".lock")
		if err != nil {
			return nil, err
		}
		defer unlock()
		// A 64 MiB page cache for the writer keeps the indexes it updates in
		// memory; readers get 16 MiB each. (Where the writer's sub-journals
		// go: beginWrite.)
		common := "_busy_timeout=10000&_journal_mode=WAL&_synchronous=FULL&_foreign_keys=1"
		dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?"
		s.write, err = sql.Open("sqlite", dsn+common+"&_txlock=immediate&_pragma=cache_size(-65536)&_pragma=wal_autocheckpoint(10000)")
		if err != nil {
			return nil, fmt.Errorf("open sqlite: %w", err)
		}
		s.write.SetMaxOpenConns(1)
		s.write.SetMaxIdleConns(1)
		s.write.SetConnMaxIdleTime(0)
		s.write.SetConnMaxLifetime(0)
		s.read, err = sql.Open("sqlite", dsn+common+"&_query_only=1&_pragma=cache_size(-16384)")
		if err != nil {
			s.write.Close()
			return nil, fmt.Errorf("open sqlite: %w", err)
		}
		s.checkpointer, err = sql.Open("sqlite", dsn+common)
		if err != nil {
			s.write.Close()
			s.read.Close()
			return nil, fmt.Errorf("open sqlite: %w", err)
		}
		s.checkpointer.SetMaxOpenConns(1)
		s.checkpointer.SetMaxIdleConns(1)
		s.checkpointsDone = make(chan struct{})
		cctx, stop := context.WithCancel(context.Background())
		s.stopCheckpoints = stop
		go s.checkpoints(cctx)
		readers := max(4, 2*runtime.GOMAXPROCS(0))
		s.read.SetMaxOpenConns(readers)
		s.read.SetMaxIdleConns(readers)
		s.readStmts = newStmtCache(s.read)
		s.writeStmts = newStmtCache(s.write)
	default:
		return nil, fmt.Errorf("database URL %q: want sqlite://PATH or postgres://…", redactURL(rawURL))
	}
	s.committer = newCommitter(s, opts.MaxConns)
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("connect to %s database: %w", s.dialect, err)
	}
	return s, nil
}

// sqlitePath extracts the file path of sqlite://PATH, sqlite:///ABS or sqlite:PATH.
func sqlitePath(rawURL string) (string, error) {
	rest := strings.TrimPrefix(rawURL, "sqlite:")
	rest = strings.TrimPrefix(rest, "//")
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		rest = rest[:i]
	}
	if rest == "" {
		return "", fmt.Errorf("database URL %q has no file path; use sqlite://./data/punchconnect.db", rawURL)
	}
	return filepath.Clean(rest), nil
}

// redactURL hides a password in a database URL for error messages and logs.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// Dialect reports which database this is.
func (s *Store) Dialect() Dialect { return s.dialect }

// Pools returns the connection pools by name, for metrics.
func (s *Store) Pools() map[string]*sql.DB {
	if s.background != nil {
		return map[string]*sql.DB{"main": s.write, "background": s.background.write}
	}
	if s.read == s.write {
		return map[string]*sql.DB{"main": s.write}
	}
	return map[string]*sql.DB{"write": s.write, "read": s.read}
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.write.PingContext(ctx); err != nil {
		return err
	}
	var one int
	return s.read.QueryRowContext(ctx, "SELECT 1").Scan(&one)
}

// Close closes the connection pools.
func (s *Store) Close() error {
	if s.stopCheckpoints != nil {
		s.stopCheckpoints()
		<-s.checkpointsDone
		s.checkpointer.Close()
	}
	s.readStmts.close()
	s.writeStmts.close()
	var errs []error
	if s.read != nil && s.read != s.write {
		errs = append(errs, s.read.Close())
	}
	if s.write != nil {
		errs = append(errs, s.write.Close())
	}
	if s.background != nil {
		errs = append(errs, s.background.Close())
	}
	return errors.Join(errs...)
}

// checkpointEvery is how often the WAL's new frames are copied into the
// database file beside the writer.
const checkpointEvery = 200 * time.Millisecond

// checkpoints copies committed WAL frames into the database file on a
// connection of its own, so that the writer, which otherwise does it after
// the commit that crosses wal_autocheckpoint, is not stopped for it
// (measured: backlog ingest +6%, real-time p99 43 → 35 ms). A
// PASSIVE checkpoint waits for nobody: it copies what no reader still needs,
// and the writer starts the WAL over once all of it is copied.
func (s *Store) checkpoints(ctx context.Context) {
	defer close(s.checkpointsDone)
	periodic.Every(ctx, checkpointEvery, func() bool {
		// A failed checkpoint loses nothing: the frames stay in the WAL, and
		// the writer's own (wal_autocheckpoint) still copies them if these
		// keep failing.
		_, _ = s.checkpointer.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)")
		return true
	})
}

// Optimize refreshes the statistics the query planner uses on SQLite, which
// gathers them only when asked (PRAGMA optimize is cheap when nothing
// changed). On PostgreSQL autovacuum does it within a minute or so, and
// RefreshStatistics, which the server runs every few seconds, sooner.
func (s *Store) Optimize(ctx context.Context) error {
	if s.dialect != SQLite {
		return nil
	}
	_, err := s.write.ExecContext(ctx, "PRAGMA optimize")
	return err
}

// statisticsTables are the tables whose look-ups device and API requests
// make; their plans depend on their statistics.
var statisticsTables = []string{"punches", "employees", "devices", "events", "deliveries", "commands", "command_lines", "device_users", "webhooks"}

// RefreshStatistics analyzes, on PostgreSQL, the busy tables that changed
// by more than half their rows (and at least 500) since their last
// analysis, and returns them. PostgreSQL keeps a prepared statement's
// generic plan until the table's statistics change; a plan made while a
// table was empty (a new deployment, a first import) scans where it should
// look up, so the statistics must follow the growth within seconds, faster
// than autovacuum's default of a minute. Half, not autovacuum's tenth: a
// plan goes wrong between an empty table and a full one, not between N and
// 1.5 N rows, and at a tenth a large import analyzed punches every second
// or two (ANALYZE samples 30,000 rows: seven of punches took 5.4 s of a
// 15 s ingest benchmark in which PostgreSQL had ~21 s of CPU). Nothing on
// SQLite (see Optimize).
func (s *Store) RefreshStatistics(ctx context.Context) ([]string, error) {
	if s.dialect != Postgres {
		return nil, nil
	}
	stale, err := queryAll(ctx, s.writer(), scanValue[string], `SELECT relname FROM pg_stat_user_tables
		WHERE schemaname = current_schema() AND relname = ANY(?) AND n_mod_since_analyze > greatest(500, n_live_tup / 2)`, statisticsTables)
	if err != nil {
		return nil, err
	}
	for _, t := range stale {
		if _, err := s.write.ExecContext(ctx, "ANALYZE "+t); err != nil {
			return nil, fmt.Errorf("analyze %s: %w", t, err)
		}
	}
	return stale, nil
}

// Now returns the store's clock reading, truncated to the microsecond that
// is stored.
func (s *Store) Now() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// conn runs '?'-placeholder queries in either dialect. On SQLite it reuses
// prepared statements (parsing is a real share of a write's cost there):
// the read pool's for the life of the store, a transaction's for the life of
// the transaction — which group commit shares between many requests. pgx
// caches PostgreSQL's statements itself.
type conn struct {
	q       querier
	dialect Dialect
	stmts   *stmtCache
	// watch, when set, sees every statement before it runs (SQLite's
	// write transactions: see deviceCache.watch).
	watch func(query string)
}

func (c conn) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if c.watch != nil {
		c.watch(query)
	}
	if st := c.stmts.get(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return c.q.ExecContext(ctx, c.dialect.rebind(query), args...)
}

func (c conn) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if c.watch != nil {
		c.watch(query)
	}
	if st := c.stmts.get(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return c.q.QueryContext(ctx, c.dialect.rebind(query), args...)
}

func (c conn) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	if c.watch != nil {
		c.watch(query)
	}
	if st := c.stmts.get(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return c.q.QueryRowContext(ctx, c.dialect.rebind(query), args...)
}

// preparer is a pool or a transaction that prepares statements.
type preparer interface {
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

// stmtCache holds prepared statements of one pool or transaction. The set
// of statement texts is bounded by the code; maxCachedStmts guards against a
// mistake making it unbounded. A nil cache prepares nothing.
//
// The cache of a transaction on SQLite's writer draws on its pool's (shared):
// that pool has one connection, so a statement the pool prepared once is
// used by every later transaction without being parsed again. The pool can
// only prepare while no transaction holds the connection, so a transaction
// prepares what the pool lacks for itself and notes it (missed); inTx has
// the pool prepare those once the transaction has ended.
type stmtCache struct {
	p  preparer
	mu sync.Mutex
	m  map[string]*sql.Stmt

	tx     *sql.Tx
	shared *stmtCache
	missed []string
}

const maxCachedStmts = 2000

func newStmtCache(p preparer) *stmtCache { return &stmtCache{p: p, m: map[string]*sql.Stmt{}} }

// newTxStmtCache is the cache of a transaction on the pool whose cache is
// shared.
func newTxStmtCache(tx *sql.Tx, shared *stmtCache) *stmtCache {
	return &stmtCache{p: tx, m: map[string]*sql.Stmt{}, tx: tx, shared: shared}
}

func (sc *stmtCache) get(ctx context.Context, query string) *sql.Stmt {
	if sc == nil {
		return nil
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if st, ok := sc.m[query]; ok {
		return st
	}
	if len(sc.m) >= maxCachedStmts {
		return nil
	}
	if sc.shared != nil {
		sc.shared.mu.Lock()
		ps := sc.shared.m[query]
		sc.shared.mu.Unlock()
		if ps != nil {
			st := sc.tx.StmtContext(ctx, ps)
			sc.m[query] = st
			return st
		}
		sc.missed = append(sc.missed, query)
	}
	st, err := sc.p.PrepareContext(ctx, query)
	if err != nil {
		return nil // run it unprepared: the error, if real, surfaces there
	}
	sc.m[query] = st
	return st
}

// prepare adds the statements of queries that it lacks; the pool must be
// free to prepare them (no transaction of this goroutine open on it).
func (sc *stmtCache) prepare(ctx context.Context, queries []string) {
	for _, q := range queries {
		sc.mu.Lock()
		_, ok := sc.m[q]
		full := len(sc.m) >= maxCachedStmts
		sc.mu.Unlock()
		if ok || full {
			continue
		}
		st, err := sc.p.PrepareContext(ctx, q)
		if err != nil {
			continue // prepared again by the next transaction that needs it
		}
		sc.mu.Lock()
		if _, ok := sc.m[q]; ok {
			st.Close()
		} else {
			sc.m[q] = st
		}
		sc.mu.Unlock()
	}
}

func (sc *stmtCache) close() {
	if sc == nil {
		return
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for _, st := range sc.m {
		st.Close()
	}
	sc.m = map[string]*sql.Stmt{}
}

// rebind turns '?' placeholders into PostgreSQL's $1, $2, …. Queries in this
// package never contain '?' inside string literals.
func (d Dialect) rebind(query string) string {
	if d != Postgres || !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

func (s *Store) reader() conn { return conn{q: s.read, dialect: s.dialect, stmts: s.readStmts} }

// writer runs statements outside a transaction on the write pool. They are
// not prepared ahead: on SQLite that pool's one connection may be inside a
// transaction.
func (s *Store) writer() conn { return conn{q: s.write, dialect: s.dialect} }

// in is a condition "column is one of values" with a single parameter, so
// the statement text is the same whatever the number of values (and its
// prepared statement is reused): a JSON array on SQLite, an array on
// PostgreSQL. A single value is compared as it is — a real-time device
// request makes three such look-ups, each of one value. On SQLite that
// spares parsing JSON and building a temporary index for it. On PostgreSQL
// it spares planning the statement at every call: for "= ANY" of a
// parameter the planner expects ten values, finds its plan for the actual
// one cheaper and so never settles on a generic plan (measured with
// pg_stat_statements: the three look-ups were planned at nearly every call,
// 0.4 ms of PostgreSQL's CPU a request); with "=" it keeps one.
func (c conn) in(column string, values []string) (string, any) {
	if len(values) == 1 {
		return column + " = ?", values[0]
	}
	if c.dialect == Postgres {
		if values == nil {
			values = []string{}
		}
		return column + " = ANY(?)", values
	}
	b, _ := json.Marshal(values)
	if values == nil {
		b = []byte("[]")
	}
	return column + " IN (SELECT value FROM json_each(?))", string(b)
}

// valuesRows is row, a VALUES tuple of placeholders, n times over.
func valuesRows(row string, n int) string { return strings.Repeat(row+", ", n-1) + row }

// indexedBy pins SQLite's choice of index for a hot query whose best plan
// its planner cannot know without statistics; PostgreSQL plans from its own.
func (c conn) indexedBy(index string) string {
	if c.dialect == SQLite {
		return " INDEXED BY " + index
	}
	return ""
}

// Tx is a write transaction. Now is fixed when it begins, so every row it
// writes carries the same instant.
type Tx struct {
	conn
	store *Store
	Now   time.Time
	// webhooks caches the accounts' webhooks for the event fan-out.
	webhooks map[string][]attendance.Webhook
	// afterCommit runs once the transaction has committed.
	afterCommit []func()
	// pendingEvents are written just before COMMIT (PostgreSQL), and
	// heldPunches, a PostgreSQL group's, just before them (InsertPunches).
	pendingEvents []attendance.Event
	heldPunches   []attendance.Punch
	// devices are the device images this transaction read or wrote, and
	// group the transaction of its group commit (see devcache.go).
	devices map[string]*deviceImage
	group   *Tx
}

// AfterCommit arranges for fn to run once the transaction commits (never if
// it rolls back).
func (tx *Tx) AfterCommit(fn func()) { tx.afterCommit = append(tx.afterCommit, fn) }

// ErrRetry marks a transaction that lost a race with another writer and may
// simply be run again. InTx does so, a few times.
var ErrRetry = errors.New("transaction conflict")

// txAttempts bounds how often InTx runs a transaction that keeps conflicting.
const txAttempts = 3

// InTx runs fn in a write transaction and commits it when fn returns nil.
// Nothing fn wrote survives an error, a panic or a cancelled context. When
// the transaction conflicts with another (ErrRetry, a PostgreSQL
// serialization failure or deadlock), fn runs again from the start, so fn
// must not keep state across calls.
func (s *Store) InTx(ctx context.Context, fn func(tx *Tx) error) error {
	var err error
	for attempt := 1; attempt <= txAttempts; attempt++ {
		err = s.inTx(ctx, false, fn)
		if err == nil || !retryable(err) || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// beginWrite begins a write transaction. On SQLite it first chooses where
// the transaction's sub-journal goes — the copies of pages a savepoint or a
// statement first changes, kept to roll it back alone. Group commit
// (shared) runs each device request in a savepoint of a few dozen pages:
// in a temporary file that was a pwrite per page, 17% of the server's CPU
// under real-time load, so it stays in memory and is emptied at each
// savepoint's release. Any other transaction keeps SQLite's default (memory
// up to 64 KiB, then a file), since one large statement, an API import or a
// fan-out to many webhooks, would otherwise hold a copy of every page it
// changes in memory (measured: fan-out peak RSS 205 → 243–256 MB).
func (s *Store) beginWrite(ctx context.Context, shared bool) (*sql.Tx, error) {
	if s.dialect != SQLite {
		return s.write.BeginTx(ctx, nil)
	}
	s.beginMu.Lock()
	defer s.beginMu.Unlock()
	if s.subjournalInMemory != shared {
		// Outside a transaction; the writer has a single connection, and
		// a connection reopened by the pool starts at the default (file).
		mode := "DEFAULT"
		if shared {
			mode = "MEMORY"
		}
		if _, err := s.write.ExecContext(ctx, "PRAGMA temp_store = "+mode); err != nil {
			return nil, fmt.Errorf("set temp_store: %w", err)
		}
		s.subjournalInMemory = shared
	}
	return s.write.BeginTx(ctx, nil)
}

// inTx runs fn once in a write transaction, shared by group commit or not
// (see beginWrite).
func (s *Store) inTx(ctx context.Context, shared bool, fn func(tx *Tx) error) error {
	sqlTx, err := s.beginWrite(ctx, shared)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	tx := &Tx{conn: conn{q: sqlTx, dialect: s.dialect}, store: s, Now: s.Now()}
	if s.dialect == SQLite {
		tx.stmts = newTxStmtCache(sqlTx, s.writeStmts) // its statements close with the transaction
		tx.watch = s.devices.watch
	}
	committed := false
	defer func() {
		if !committed { // an error or a panic in fn
			_ = sqlTx.Rollback()
		}
		if tx.stmts != nil && len(tx.stmts.missed) > 0 {
			// The connection is free again: the pool prepares what this
			// transaction had to prepare for itself.
			s.writeStmts.prepare(context.WithoutCancel(ctx), tx.stmts.missed)
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.flushPunches(ctx); err != nil {
		return err
	}
	if err := tx.flushEvents(ctx); err != nil {
		return err
	}
	committed = true
	if s.dialect == SQLite {
		// Before the writer is free for the next transaction, which must
		// find this one's images; withdrawn if the commit fails.
		s.devices.install(tx.devices)
	}
	if err := sqlTx.Commit(); err != nil {
		if s.dialect == SQLite {
			s.devices.invalidate()
		}
		return fmt.Errorf("commit: %w", err)
	}
	for _, fn := range tx.afterCommit {
		fn()
	}
	return nil
}

func retryable(err error) bool {
	if errors.Is(err, ErrRetry) {
		return true
	}
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
}

// micros converts an instant to the stored integer; the zero time is 0.
func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// fromMicros converts a stored integer back; 0 is the zero time.
func fromMicros(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

// uniqueViolation reports whether err is a unique-constraint failure, with a
// description naming the constraint (PostgreSQL) or its columns (SQLite).
func uniqueViolation(err error) (string, bool) {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return pgErr.ConstraintName, true
	}
	var sqliteErr *sqlite.Error
	if errors.As(err, &sqliteErr) {
		switch sqliteErr.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return sqliteErr.Error(), true
		}
	}
	return "", false
}

// nullString maps "" to NULL and back through *string.
func nullString(p *string) any {
	if p == nil {
		return nil
	}
	return *p
}

func stringPtr(ns sql.NullString) *string {
	if !ns.Valid {
		return nil
	}
	v := ns.String
	return &v
}

// IsUnavailable reports whether err comes from the database being out of
// reach, full, read-only, busy beyond the timeout, or too slow, rather than
// from the request: the client should retry later.
func IsUnavailable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) {
		return true
	}
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) || pgconn.SafeToRetry(err) || pgconn.Timeout(err) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:2] {
		case "08", "53", "57": // connection exception, insufficient resources, operator intervention
			return true
		}
		// read_only_sql_transaction: a primary demoted to a standby, or
		// default_transaction_read_only turned on, until the fail-over ends.
		if pgErr.Code == "25006" {
			return true
		}
	}
	var sqliteErr *sqlite.Error
	if errors.As(err, &sqliteErr) {
		switch sqliteErr.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN:
			return true
		}
	}
	var netErr net.Error
	return errors.As(err, &netErr)
}
