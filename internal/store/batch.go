package store

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"runtime"
	"strconv"
	"sync"
	"time"
)

// Group commit. Every commit is a flush of the log to disk, and a device
// request's transaction is small, so many of them spend their time waiting
// for the disk and, on PostgreSQL, for the account's event-order lock (see
// InsertEvents), which each holds from its events to its commit.
// InTxShared gathers the transactions that arrive while earlier ones are
// committing into one: a single flush, and on PostgreSQL a single
// event-order lock, a single BEGIN, COMMIT, webhook read and events
// statement, for all of them. No caller hears of its commit before the data
// is on disk.
//
// SQLite has one writer, so one group commits at a time, each request in a
// savepoint: one that fails rolls back alone and the others commit.
//
// PostgreSQL commits up to pgLanes groups at once, one in each lane (a
// group is one connection, whose statements run one after another); a
// request's lane is chosen by its key, the device's serial number, so
// requests of one device never wait for each other's locks in two of this
// node's groups at once (measured: with any group taking any request, groups
// deadlocked on device rows and real-time requests fell from about 900 to
// under 200 a second, with a p99 of 2 s). A group's requests run without
// savepoints, which would cost two more round trips each: when one fails,
// the whole group rolls back and each of its requests runs again alone, in
// its own transaction, as InTx runs it — one wasted pass, which a failure
// costs rarely (a refused device, a lost race with another node). Groups of
// two lanes, or of two nodes, may still lock the same employees in
// different orders; PostgreSQL then breaks the deadlock by failing one
// (after deadlock_timeout, a second by default), whose requests run again
// alone like any failed group's.

// maxShared bounds the transactions gathered into one commit.
const maxShared = 64

// pgLanes is how many groups a PostgreSQL store commits at once. Requests
// that carry a few records (real-time uploads, heartbeats, command results)
// share the first `shared` lanes: one for each core the node's Go runtime
// uses (GOMAXPROCS), at least 2 and at most 8. A lane's group runs its
// requests one after another, each using its core while it is not waiting
// for the database, so more lanes than cores buy nothing on the node's side,
// and they split the requests that arrive together into more, smaller
// groups, each with its own BEGIN, inserts, event-order lock and COMMIT.
// Bulk requests (a backlog upload of a hundred records, InTxSharedBulk)
// fill a group's time on their own and gain from more groups at once, while
// they wait for their many statements: they use twice as many lanes, the
// first ones included. Both at most half of the pool, leaving the rest to
// the API and the dispatcher.
//
// Measured on 2 cores (bench/RESULTS.md, 2026-12-01), four lanes for every
// request against two: one node ran real-time requests alike; three nodes
// on the one machine made 25% more real-time requests a second with a
// quarter less PostgreSQL time a request, and their deliveries' p99 at 500
// punches a second fell from 15–37 ms to 9–23 ms; but backlog ingest was
// 2–8% slower with two lanes, which the bulk lanes win back.
func pgLanes(maxConns int) (shared, all int) {
	shared = min(max(runtime.GOMAXPROCS(0), 2), 8)
	all = 2 * shared
	if maxConns > 0 {
		shared = min(shared, max(maxConns/2, 1))
		all = min(all, max(maxConns/2, 1))
	}
	return shared, all
}

type sharedJob struct {
	ctx  context.Context
	fn   func(*Tx) error
	done chan error
}

// committer is the group commit of one store: lanes of queued jobs, each
// committing one group at a time.
type committer struct {
	s      *Store
	lanes  []*lane
	shared int // the first lanes, which requests that are not bulk use
}

type lane struct {
	c       *committer
	mu      sync.Mutex
	queue   []*sharedJob
	running bool
}

// newCommitter is the group commit of s, whose dialect decides its lanes:
// SQLite's one writer, or pgLanes on PostgreSQL.
func newCommitter(s *Store, maxConns int) *committer {
	shared, lanes := 1, 1
	if s.dialect == Postgres {
		shared, lanes = pgLanes(maxConns)
	}
	c := &committer{s: s, shared: shared}
	for range lanes {
		c.lanes = append(c.lanes, &lane{c: c})
	}
	return c
}

// InTxShared runs fn in a write transaction that may be shared with other
// callers' (see above); key (a device's serial number) keeps one device's
// requests in one lane. fn must not keep state across calls, since it may
// run again, and must do all its work through tx; its error, or the
// commit's, is returned — a panic in fn too, as an error, since fn may run
// on another goroutine.
func (s *Store) InTxShared(ctx context.Context, key string, fn func(tx *Tx) error) error {
	return s.inTxShared(ctx, key, false, fn)
}

// InTxSharedBulk is InTxShared for a request that carries many records (a
// device's backlog upload): on PostgreSQL it may run in more groups at once
// (pgLanes). A device sends one request at a time, so its bulk and other
// requests, which may take different lanes, do not wait for each other.
func (s *Store) InTxSharedBulk(ctx context.Context, key string, fn func(tx *Tx) error) error {
	return s.inTxShared(ctx, key, true, fn)
}

func (s *Store) inTxShared(ctx context.Context, key string, bulk bool, fn func(tx *Tx) error) error {
	j := &sharedJob{ctx: ctx, fn: fn, done: make(chan error, 1)}
	l := s.committer.lane(key, bulk)
	l.mu.Lock()
	l.queue = append(l.queue, j)
	if !l.running {
		l.running = true
		go l.loop()
	}
	l.mu.Unlock()
	select {
	case err := <-j.done:
		return err
	case <-ctx.Done():
		// The job may still commit; the caller only stops waiting. Devices
		// treat a missing answer as a failure and send again, which ingest
		// recognises as a re-upload.
		return ctx.Err()
	}
}

// lane is the lane of a request with key: one of the shared lanes, or for
// a bulk request one of all.
func (c *committer) lane(key string, bulk bool) *lane {
	n := c.shared
	if bulk {
		n = len(c.lanes)
	}
	if n <= 1 {
		return c.lanes[0]
	}
	h := fnv.New32a()
	_, _ = io.WriteString(h, key)
	return c.lanes[h.Sum32()%uint32(n)]
}

// loop commits the lane's queued jobs until its queue is empty.
func (l *lane) loop() {
	c := l.c
	for {
		l.mu.Lock()
		if len(l.queue) == 0 {
			l.running = false
			l.mu.Unlock()
			return
		}
		n := min(len(l.queue), maxShared)
		jobs := l.queue[:n:n]
		l.queue = l.queue[n:]
		l.mu.Unlock()
		c.commit(jobs)
	}
}

// errJobFailed rolls a PostgreSQL group back when one of its jobs failed.
var errJobFailed = errors.New("a request of the group failed")

// commit runs jobs in one transaction (see above). On SQLite each runs in
// a savepoint and one that fails rolls back alone. On PostgreSQL they run
// without: if one fails, or the group meets a deadlock or another
// conflict, nothing of the group is kept and every job that was not
// cancelled runs again alone, concurrently, as InTx runs it.
func (c *committer) commit(jobs []*sharedJob) {
	savepoints := c.s.dialect == SQLite
	errs := make([]error, len(jobs))
	// The transaction outlives any one caller; each job's statements still
	// run under its own context.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var after []func()
	err := c.s.inTx(ctx, true, func(tx *Tx) error {
		after = nil
		for i, j := range jobs {
			if errs[i] = j.ctx.Err(); errs[i] != nil {
				continue
			}
			jobTx := newJobTx(tx)
			if !savepoints {
				if err := runJob(j, jobTx); err != nil {
					return errJobFailed
				}
				after = append(after, jobTx.join()...)
				continue
			}
			name := "job" + strconv.Itoa(i)
			if _, err := tx.exec(ctx, "SAVEPOINT "+name); err != nil {
				return err
			}
			if errs[i] = runJob(j, jobTx); errs[i] != nil {
				if _, err := tx.exec(ctx, "ROLLBACK TO "+name); err != nil {
					return fmt.Errorf("roll back %s: %w", name, err)
				}
			} else {
				after = append(after, jobTx.join()...)
			}
			if _, err := tx.exec(ctx, "RELEASE "+name); err != nil {
				return err
			}
		}
		return nil
	})
	if savepoints || !errors.Is(err, errJobFailed) && !retryable(err) {
		// Committed, or failed for every job alike (the database is down,
		// or the commit's outcome is unknown): the callers hear of it.
		finish(jobs, errs, err, after)
		return
	}
	var wg sync.WaitGroup
	for i, j := range jobs {
		if errs[i] != nil {
			j.done <- errs[i]
			continue
		}
		wg.Go(func() {
			j.done <- c.s.InTx(j.ctx, func(tx *Tx) error { return runJob(j, tx) })
		})
	}
	wg.Wait()
}

// newJobTx is the view of a group's transaction one job works through: its
// own clock reading, events and after-commit work, which join the group's
// when the job succeeds.
func newJobTx(group *Tx) *Tx {
	return &Tx{conn: group.conn, store: group.store, Now: group.store.Now(), group: group}
}

// join hands a succeeding job's events and device images to its group and
// returns what must run once the group commits.
func (tx *Tx) join() []func() {
	g := tx.group
	g.pendingEvents = append(g.pendingEvents, tx.pendingEvents...)
	for serial, img := range tx.devices {
		g.keepDeviceImage(serial, img)
	}
	return tx.afterCommit
}

// finish runs a committed group's after-commit work and answers its jobs:
// each its own error, joined with the group's.
func finish(jobs []*sharedJob, errs []error, err error, after []func()) {
	if err == nil {
		for _, fn := range after {
			fn()
		}
	}
	for i, j := range jobs {
		if err != nil {
			errs[i] = errors.Join(errs[i], err)
		}
		j.done <- errs[i]
	}
}

// runJob runs one job, turning a panic into its error so that the others
// still commit.
func runJob(j *sharedJob, tx *Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic in shared transaction: %v", p)
		}
	}()
	return j.fn(tx)
}
