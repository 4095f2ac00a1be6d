package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// IdempotencyOutcome says what to do with a request carrying an Idempotency-Key.
type IdempotencyOutcome int

// The outcomes of BeginIdempotent.
const (
	// IdempotencyAcquired: this request owns the key and runs.
	IdempotencyAcquired IdempotencyOutcome = iota
	// IdempotencyReplay: the key finished before; answer with its response.
	IdempotencyReplay
	// IdempotencyInProgress: a request with this key is running now.
	IdempotencyInProgress
	// IdempotencyMismatch: the key was used for a different request.
	IdempotencyMismatch
)

// IdempotencyClaim identifies one request's hold on a key.
type IdempotencyClaim struct {
	AccountID string
	Key       string
	Token     string
}

// IdempotencyResult is the answer of BeginIdempotent.
type IdempotencyResult struct {
	Outcome IdempotencyOutcome
	Claim   IdempotencyClaim // when Acquired
	Status  int              // when Replay
	Body    []byte           // when Replay
}

// Idempotency timing. A key is remembered for IdempotencyTTL; a claim whose
// request died without finishing is taken over after IdempotencyLockTimeout,
// which is longer than any request may run.
const (
	IdempotencyTTL         = 24 * time.Hour
	IdempotencyLockTimeout = 2 * time.Minute
)

// ErrIdempotencyClaimLost means the claim was taken over (its request ran
// longer than IdempotencyLockTimeout); the work must not commit.
var ErrIdempotencyClaimLost = errors.New("idempotency claim lost")

// BeginIdempotent claims key for the request with fingerprint, or reports
// why it cannot: the stored response to replay, a request still running, or
// a different request under the same key. Keys older than IdempotencyTTL are
// forgotten and claimed afresh.
func (s *Store) BeginIdempotent(ctx context.Context, accountID, key, fingerprint string) (IdempotencyResult, error) {
	now := s.Now()
	var tok [16]byte
	_, _ = rand.Read(tok[:])
	claim := IdempotencyClaim{AccountID: accountID, Key: key, Token: hex.EncodeToString(tok[:])}
	c := s.writer()
	for range 3 {
		var got string
		err := c.queryRow(ctx, `INSERT INTO idempotency_keys
			(account_id, idem_key, fingerprint, claim, state, response_status, response_body, created_at, locked_at)
			VALUES (?, ?, ?, ?, 'running', 0, NULL, ?, ?)
			ON CONFLICT (account_id, idem_key) DO UPDATE SET
				fingerprint = excluded.fingerprint, claim = excluded.claim, state = 'running',
				response_status = 0, response_body = NULL, created_at = excluded.created_at, locked_at = excluded.locked_at
			WHERE idempotency_keys.created_at < ?
				OR (idempotency_keys.state = 'running' AND idempotency_keys.locked_at < ?
					AND idempotency_keys.fingerprint = excluded.fingerprint)
			RETURNING claim`,
			accountID, key, fingerprint, claim.Token, micros(now), micros(now),
			micros(now.Add(-IdempotencyTTL)), micros(now.Add(-IdempotencyLockTimeout))).Scan(&got)
		if err == nil && got == claim.Token {
			return IdempotencyResult{Outcome: IdempotencyAcquired, Claim: claim}, nil
		}
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return IdempotencyResult{}, fmt.Errorf("claim idempotency key: %w", err)
		}
		var storedFP, state string
		var status int
		var body []byte
		err = c.queryRow(ctx, `SELECT fingerprint, state, response_status, response_body FROM idempotency_keys
			WHERE account_id = ? AND idem_key = ?`, accountID, key).Scan(&storedFP, &state, &status, &body)
		if errors.Is(err, sql.ErrNoRows) {
			continue // released or swept between the two statements: claim again
		}
		if err != nil {
			return IdempotencyResult{}, fmt.Errorf("read idempotency key: %w", err)
		}
		switch {
		case storedFP != fingerprint:
			return IdempotencyResult{Outcome: IdempotencyMismatch}, nil
		case state == "running":
			return IdempotencyResult{Outcome: IdempotencyInProgress}, nil
		default:
			return IdempotencyResult{Outcome: IdempotencyReplay, Status: status, Body: body}, nil
		}
	}
	return IdempotencyResult{Outcome: IdempotencyInProgress}, nil
}

// CompleteIdempotent stores the response of a claimed request. Called inside
// the transaction that did the request's work, the response and the work
// commit together.
func (tx *Tx) CompleteIdempotent(ctx context.Context, c IdempotencyClaim, status int, body []byte) error {
	return completeIdempotent(ctx, tx.conn, c, status, body)
}

// CompleteIdempotent stores the response of a claimed request that wrote
// nothing (an error, a read).
func (s *Store) CompleteIdempotent(ctx context.Context, c IdempotencyClaim, status int, body []byte) error {
	return completeIdempotent(ctx, s.writer(), c, status, body)
}

func completeIdempotent(ctx context.Context, cn conn, c IdempotencyClaim, status int, body []byte) error {
	res, err := cn.exec(ctx, `UPDATE idempotency_keys SET state = 'done', response_status = ?, response_body = ?
		WHERE account_id = ? AND idem_key = ? AND claim = ?`, status, body, c.AccountID, c.Key, c.Token)
	if err != nil {
		return fmt.Errorf("store idempotent response: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrIdempotencyClaimLost
	}
	return nil
}

// ReleaseIdempotent forgets a claim whose request failed without effect, so
// the client may retry with the same key.
func (s *Store) ReleaseIdempotent(ctx context.Context, c IdempotencyClaim) error {
	_, err := s.writer().exec(ctx,
		`DELETE FROM idempotency_keys WHERE account_id = ? AND idem_key = ? AND claim = ?`, c.AccountID, c.Key, c.Token)
	return err
}

// sweepBatch bounds each cleanup statement so it never holds locks for long.
const sweepBatch = 1000

// SweepIdempotencyKeys deletes keys older than IdempotencyTTL, a batch at a
// time, and returns how many it deleted.
func (s *Store) SweepIdempotencyKeys(ctx context.Context) (int, error) {
	cutoff := micros(s.Now().Add(-IdempotencyTTL))
	return s.sweep(ctx, `DELETE FROM idempotency_keys WHERE (account_id, idem_key) IN
		(SELECT account_id, idem_key FROM idempotency_keys WHERE created_at < ? LIMIT ?)`, cutoff)
}

// sweep runs a batched DELETE (whose last two parameters are a cutoff and a
// batch size) until it deletes less than a full batch.
func (s *Store) sweep(ctx context.Context, query string, cutoff int64) (int, error) {
	c := s.writer()
	total := 0
	for {
		res, err := c.exec(ctx, query, cutoff, sweepBatch)
		if err != nil {
			return total, err
		}
		n, _ := res.RowsAffected()
		total += int(n)
		if n < sweepBatch {
			return total, nil
		}
	}
}
