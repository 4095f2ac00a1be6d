package store

import (
	"context"
	"fmt"
	"time"
)

// CountRequest adds one call to the account's counter for the window that
// starts at windowStart and returns the count including this call. The
// counter lives in the database, so every node sees the same number.
func (s *Store) CountRequest(ctx context.Context, accountID string, windowStart time.Time) (int, error) {
	var n int
	err := s.writer().queryRow(ctx, `INSERT INTO rate_limit_counters (account_id, window_start, count)
		VALUES (?, ?, 1)
		ON CONFLICT (account_id, window_start) DO UPDATE SET count = rate_limit_counters.count + 1
		RETURNING count`, accountID, micros(windowStart)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count request: %w", err)
	}
	return n, nil
}

// SweepRateLimitCounters deletes counters of windows that started before cutoff.
func (s *Store) SweepRateLimitCounters(ctx context.Context, cutoff time.Time) (int, error) {
	return s.sweep(ctx, `DELETE FROM rate_limit_counters WHERE (account_id, window_start) IN
		(SELECT account_id, window_start FROM rate_limit_counters WHERE window_start < ? LIMIT ?)`, micros(cutoff))
}

// RequestCount reads the account's counter for the window without adding to it.
func (s *Store) RequestCount(ctx context.Context, accountID string, windowStart time.Time) (int, error) {
	var n int
	err := s.reader().queryRow(ctx, `SELECT COALESCE(MAX(count), 0) FROM rate_limit_counters WHERE account_id = ? AND window_start = ?`,
		accountID, micros(windowStart)).Scan(&n)
	return n, err
}
