package store

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"time"
)

// Retention says how long records are kept; zero keeps them forever.
type Retention struct {
	// Events that have no delivery pending, with their deliveries and
	// attempts (replays reach back this far).
	Events time.Duration
	// Attempts are the delivery attempt log.
	Attempts time.Duration
	// Uploads are device bodies kept for inspection (photos, operation
	// logs, unreadable bodies).
	Uploads time.Duration
	// Commands are finished commands and their lines.
	Commands time.Duration
	// Notifications are e-mails sent or given up.
	Notifications time.Duration
}

// RetentionResult counts what a retention pass deleted.
type RetentionResult struct {
	Events, Attempts, Uploads, Commands, Notifications int
}

// retentionBatch is how many rows one retention transaction deletes: small,
// so device and API writes never wait long behind it.
const retentionBatch = 500

// retentionPause lets other writers in between batches.
const retentionPause = 5 * time.Millisecond

// ApplyRetention deletes what is older than the retention allows, oldest
// first, in small transactions.
func (s *Store) ApplyRetention(ctx context.Context, r Retention) (RetentionResult, error) {
	var out RetentionResult
	now := s.Now()
	steps := []struct {
		keep time.Duration
		n    *int
		run  func(cutoff int64) (int, error)
	}{
		{r.Events, &out.Events, func(c int64) (int, error) { return s.retainEvents(ctx, c) }},
		{r.Attempts, &out.Attempts, func(c int64) (int, error) {
			return s.retainRows(ctx, "delivery_attempts", "seq", "started_at < ?", c, nil)
		}},
		{r.Uploads, &out.Uploads, func(c int64) (int, error) {
			return s.retainRows(ctx, "device_uploads", "id", "received_at < ?", c, nil)
		}},
		{r.Commands, &out.Commands, func(c int64) (int, error) {
			return s.retainRows(ctx, "commands", "seq", "completed_at > 0 AND completed_at < ?", c, func(tx *Tx, seqs []int64) error {
				in, list := tx.inInts("command_seq", seqs)
				_, err := tx.exec(ctx, `DELETE FROM command_lines WHERE `+in, list)
				return err
			})
		}},
		{r.Notifications, &out.Notifications, func(c int64) (int, error) {
			return s.retainRows(ctx, "notifications", "seq", "status <> 'pending' AND created_at < ?", c, nil)
		}},
	}
	for _, st := range steps {
		if st.keep <= 0 {
			continue
		}
		n, err := st.run(micros(now.Add(-st.keep)))
		*st.n = n
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// retainRows deletes, oldest first by key, the rows of table matching cond
// (whose one parameter is the cutoff), in batches; before each batch's
// rows go, also runs first on their keys (dependent rows).
func (s *Store) retainRows(ctx context.Context, table, key, cond string, cutoff int64, first func(tx *Tx, keys []int64) error) (int, error) {
	total := 0
	for ctx.Err() == nil {
		var n int
		err := s.InTx(ctx, func(tx *Tx) error {
			keys, err := queryAll(ctx, tx.conn, scanValue[int64],
				`SELECT `+key+` FROM `+table+` WHERE `+cond+` ORDER BY `+key+` LIMIT ?`, cutoff, retentionBatch)
			if err != nil || len(keys) == 0 {
				return err
			}
			if first != nil {
				if err := first(tx, keys); err != nil {
					return err
				}
			}
			in, list := tx.inInts(key, keys)
			res, err := tx.exec(ctx, `DELETE FROM `+table+` WHERE `+in, list)
			if err != nil {
				return err
			}
			rows, _ := res.RowsAffected()
			n = int(rows)
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("retention of %s: %w", table, err)
		}
		total += n
		if n < retentionBatch {
			return total, nil
		}
		pause(ctx)
	}
	return total, ctx.Err()
}

// retainEvents deletes events recorded before the cutoff that no delivery
// waits for, with their deliveries and attempts. Events are read in
// sequence order, which is recording order: the walk stops at the first
// one too young.
func (s *Store) retainEvents(ctx context.Context, cutoff int64) (int, error) {
	total := 0
	after := int64(0)
	for ctx.Err() == nil {
		var n int
		var done bool
		err := s.InTx(ctx, func(tx *Tx) error {
			type ev struct {
				seq, created int64
				id           string
			}
			evs, err := queryAll(ctx, tx.conn, func(r scanner) (ev, error) {
				var e ev
				err := r.Scan(&e.seq, &e.created, &e.id)
				return e, err
			}, `SELECT seq, created_at, id FROM events WHERE seq > ? ORDER BY seq LIMIT ?`, after, retentionBatch)
			if err != nil {
				return err
			}
			var ids []string
			for _, e := range evs {
				if e.created >= cutoff {
					done = true
					break
				}
				ids = append(ids, e.id)
				after = e.seq
			}
			if len(evs) < retentionBatch {
				done = true
			}
			if len(ids) == 0 {
				return nil
			}
			// Keep the events a delivery still waits for.
			in, list := tx.in("event_id", ids)
			waiting, err := queryAll(ctx, tx.conn, scanValue[string], `SELECT DISTINCT event_id FROM deliveries WHERE status = 'pending' AND `+in, list)
			if err != nil {
				return err
			}
			if len(waiting) > 0 {
				keep := make(map[string]bool, len(waiting))
				for _, id := range waiting {
					keep[id] = true
				}
				kept := ids[:0]
				for _, id := range ids {
					if !keep[id] {
						kept = append(kept, id)
					}
				}
				ids = kept
			}
			if len(ids) == 0 {
				return nil
			}
			in, list = tx.in("event_id", ids)
			if _, err := tx.exec(ctx, `DELETE FROM delivery_attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE `+in+`)`, list); err != nil {
				return err
			}
			if _, err := tx.exec(ctx, `DELETE FROM deliveries WHERE `+in, list); err != nil {
				return err
			}
			in, list = tx.in("id", ids)
			res, err := tx.exec(ctx, `DELETE FROM events WHERE `+in, list)
			if err != nil {
				return err
			}
			rows, _ := res.RowsAffected()
			n = int(rows)
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("retention of events: %w", err)
		}
		total += n
		if done {
			return total, nil
		}
		pause(ctx)
	}
	return total, ctx.Err()
}

func pause(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-time.After(retentionPause):
	}
}

// DutyKey is the PostgreSQL advisory lock of a duty of the deployment in a
// schema (Duty): deployments sharing a database in schemas of their own each
// run their duties. pg_locks shows it as classid (the key's high 32 bits)
// and objid (its low 32 bits).
func DutyKey(schema, name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("punchconnect.duty." + schema + "." + strings.ToLower(name)))
	return int64(h.Sum64())
}

// ErrDutyTaken means another node runs the duty now.
var ErrDutyTaken = errors.New("another node runs this duty")

// Duty runs fn as the one node of the cluster doing the named duty: on
// PostgreSQL it holds a session advisory lock for the duty while fn runs
// and returns ErrDutyTaken if another node holds it; if the node dies,
// PostgreSQL frees the lock with its session. On SQLite (one node) fn
// simply runs.
func (s *Store) Duty(ctx context.Context, name string, fn func(ctx context.Context) error) error {
	if s.dialect != Postgres {
		return fn(ctx)
	}
	schema, err := s.schemaName(ctx)
	if err != nil {
		return err
	}
	key := DutyKey(schema, name)
	conn, err := s.write.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	var got bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&got); err != nil {
		return err
	}
	if !got {
		return ErrDutyTaken
	}
	defer func() {
		unlockCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_, _ = conn.ExecContext(unlockCtx, `SELECT pg_advisory_unlock($1)`, key)
	}()
	return fn(ctx)
}
