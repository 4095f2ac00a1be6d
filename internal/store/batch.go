package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// Group commit. SQLite has one writer and every commit is an fsync, so many
// small transactions (one per device request) spend their time waiting for
// the disk. InTxShared gathers the transactions that arrive while the
// writer is busy into one: each runs inside a savepoint, so one that fails
// rolls back alone, and a single fsync then commits all of them. No caller
// hears of its commit before the data is on disk. PostgreSQL runs each in
// its own transaction, as InTx does: it groups commits itself, and a shared
// transaction there would hold each device's row lock until the whole group
// commits (measured: deadlocks between groups, p99 over 2 s).

// maxShared bounds the transactions gathered into one commit.
const maxShared = 64

type sharedJob struct {
	ctx  context.Context
	fn   func(*Tx) error
	done chan error
}

type committer struct {
	s       *Store
	mu      sync.Mutex
	queue   []*sharedJob
	running bool
}

// InTxShared runs fn in a write transaction that may be shared with other
// callers' (see above). fn must not keep state across calls and must do all
// its work through tx; its error, or the commit's, is returned — a panic in
// fn too, as an error, since fn may run on another goroutine.
func (s *Store) InTxShared(ctx context.Context, fn func(tx *Tx) error) error {
	if s.dialect != SQLite {
		return s.InTx(ctx, func(tx *Tx) error { return runJob(&sharedJob{fn: fn}, tx) })
	}
	j := &sharedJob{ctx: ctx, fn: fn, done: make(chan error, 1)}
	c := s.committer
	c.mu.Lock()
	c.queue = append(c.queue, j)
	if !c.running {
		c.running = true
		go c.loop()
	}
	c.mu.Unlock()
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

// loop commits queued jobs until the queue is empty.
func (c *committer) loop() {
	for {
		c.mu.Lock()
		if len(c.queue) == 0 {
			c.running = false
			c.mu.Unlock()
			return
		}
		n := min(len(c.queue), maxShared)
		jobs := c.queue[:n:n]
		c.queue = c.queue[n:]
		c.mu.Unlock()
		c.commit(jobs)
	}
}

// commit runs jobs in one transaction, each in a savepoint.
func (c *committer) commit(jobs []*sharedJob) {
	errs := make([]error, len(jobs))
	// The transaction outlives any one caller; each job's statements still
	// run under its own context.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var after []func()
	err := c.s.inTx(ctx, true, func(tx *Tx) error {
		after = nil
		for i, j := range jobs {
			if err := j.ctx.Err(); err != nil {
				errs[i] = err
				continue
			}
			name := "job" + strconv.Itoa(i)
			if _, err := tx.exec(ctx, "SAVEPOINT "+name); err != nil {
				return err
			}
			jobTx := &Tx{conn: tx.conn, store: tx.store, Now: c.s.Now(), group: tx}
			if errs[i] = runJob(j, jobTx); errs[i] != nil {
				if _, err := tx.exec(ctx, "ROLLBACK TO "+name); err != nil {
					return fmt.Errorf("roll back %s: %w", name, err)
				}
			} else {
				after = append(after, jobTx.afterCommit...)
				tx.pendingEvents = append(tx.pendingEvents, jobTx.pendingEvents...)
				for serial, img := range jobTx.devices {
					tx.keepDeviceImage(serial, img)
				}
			}
			if _, err := tx.exec(ctx, "RELEASE "+name); err != nil {
				return err
			}
		}
		return nil
	})
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
