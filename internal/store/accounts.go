package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/punchconnect/punchconnect/internal/attendance"
	"github.com/punchconnect/punchconnect/internal/id"
)

// ErrNoAccount is returned when an API key matches no account.
var ErrNoAccount = errors.New("no account for this API key")

const accountCols = "id, name, email, timezone, direction_mode, day_start_minutes, dedup_window_seconds, earliest_punch_date, max_punch_age_days, max_punch_future_hours, auto_sync_employees, created_at"

func scanAccount(r scanner) (attendance.Account, error) {
	var a attendance.Account
	dest, finish := accountDest(&a)
	err := r.Scan(dest...)
	finish()
	return a, err
}

// accountDest is where a row of accountCols scans into a, and what turns
// the scanned values into a's fields once it has.
func accountDest(a *attendance.Account) ([]any, func()) {
	var created int64
	var mode string
	return []any{&a.ID, &a.Name, &a.Email, &a.Settings.Timezone, &mode,
			&a.Settings.DayStartMinutes, &a.Settings.DedupWindowSeconds, &a.Settings.EarliestPunchDate,
			&a.Settings.MaxPunchAgeDays, &a.Settings.MaxPunchFutureHours, &a.Settings.AutoSyncEmployees, &created},
		func() {
			a.Settings.DirectionMode = attendance.DirectionMode(mode)
			a.CreatedAt = fromMicros(created)
		}
}

// CreateAccount makes an account and its first API key. The key is returned
// once, here; only its hash is stored.
func (tx *Tx) CreateAccount(ctx context.Context, name, email string) (attendance.Account, string, error) {
	s := attendance.DefaultSettings()
	a := attendance.Account{ID: id.New(id.Account), Name: name, Email: email, Settings: s, CreatedAt: tx.Now}
	_, err := tx.exec(ctx, `INSERT INTO accounts (id, name, email, timezone, direction_mode, day_start_minutes, dedup_window_seconds,
		earliest_punch_date, max_punch_age_days, max_punch_future_hours, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		a.ID, a.Name, a.Email, s.Timezone, string(s.DirectionMode), s.DayStartMinutes, s.DedupWindowSeconds,
		s.EarliestPunchDate, s.MaxPunchAgeDays, s.MaxPunchFutureHours, micros(tx.Now), micros(tx.Now))
	if err != nil {
		return a, "", fmt.Errorf("insert account: %w", err)
	}
	key, err := tx.CreateAPIKey(ctx, a.ID)
	return a, key, err
}

// CreateAPIKey adds a key to an account and returns it; only its hash is kept.
func (tx *Tx) CreateAPIKey(ctx context.Context, accountID string) (string, error) {
	key := attendance.NewAPIKey()
	_, err := tx.exec(ctx, `INSERT INTO api_keys (id, account_id, key_hash, key_prefix, created_at) VALUES (?, ?, ?, ?, ?)`,
		id.New(id.APIKey), accountID, attendance.HashAPIKey(key), attendance.APIKeyDisplayPrefix(key), micros(tx.Now))
	if err != nil {
		return "", fmt.Errorf("insert api key: %w", err)
	}
	return key, nil
}

// CreateFirstAccount makes an account when the store has none and no node
// has made one before; created is false otherwise. Safe when several nodes
// start at once: exactly one of them creates it.
func (s *Store) CreateFirstAccount(ctx context.Context, name, email string) (a attendance.Account, key string, created bool, err error) {
	err = s.InTx(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `INSERT INTO bootstrap (id, created_at) VALUES (1, ?) ON CONFLICT (id) DO NOTHING`, micros(tx.Now))
		if err != nil {
			return fmt.Errorf("mark bootstrap: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		var exists bool
		if err := tx.queryRow(ctx, `SELECT EXISTS (SELECT 1 FROM accounts)`).Scan(&exists); err != nil {
			return err
		}
		if exists {
			return nil
		}
		a, key, err = tx.CreateAccount(ctx, name, email)
		created = err == nil
		return err
	})
	return a, key, created, err
}

// AccountByAPIKey finds the account a live key belongs to.
func (s *Store) AccountByAPIKey(ctx context.Context, key string) (attendance.Account, error) {
	a, err := scanAccount(s.reader().queryRow(ctx, `SELECT a.id, a.name, a.email, a.timezone, a.direction_mode, a.day_start_minutes, a.dedup_window_seconds,
		a.earliest_punch_date, a.max_punch_age_days, a.max_punch_future_hours, a.auto_sync_employees, a.created_at
		FROM api_keys k JOIN accounts a ON a.id = k.account_id
		WHERE k.key_hash = ? AND k.revoked_at = 0`, attendance.HashAPIKey(key)))
	if errors.Is(err, sql.ErrNoRows) {
		return a, ErrNoAccount
	}
	return a, err
}

// Account reads an account by ID.
func (s *Store) Account(ctx context.Context, accountID string) (attendance.Account, error) {
	return account(ctx, s.reader(), accountID)
}

// Account reads an account by ID inside the transaction.
func (tx *Tx) Account(ctx context.Context, accountID string) (attendance.Account, error) {
	return account(ctx, tx.conn, accountID)
}

func account(ctx context.Context, c conn, accountID string) (attendance.Account, error) {
	a, err := scanAccount(c.queryRow(ctx, `SELECT `+accountCols+` FROM accounts WHERE id = ?`, accountID))
	if errors.Is(err, sql.ErrNoRows) {
		return a, attendance.NotFound("account", accountID)
	}
	return a, err
}

// UpdateSettings applies in to the account's settings and returns the result.
func (tx *Tx) UpdateSettings(ctx context.Context, accountID string, in attendance.SettingsInput) (attendance.Settings, error) {
	a, err := tx.Account(ctx, accountID)
	if err != nil {
		return attendance.Settings{}, fmt.Errorf("read account: %w", err)
	}
	st := a.Settings
	if err := in.ApplyTo(&st); err != nil {
		return st, err
	}
	_, err = tx.exec(ctx, `UPDATE accounts SET timezone = ?, direction_mode = ?, day_start_minutes = ?, dedup_window_seconds = ?,
		earliest_punch_date = ?, max_punch_age_days = ?, max_punch_future_hours = ?, auto_sync_employees = ?, updated_at = ? WHERE id = ?`,
		st.Timezone, string(st.DirectionMode), st.DayStartMinutes, st.DedupWindowSeconds,
		st.EarliestPunchDate, st.MaxPunchAgeDays, st.MaxPunchFutureHours, st.AutoSyncEmployees, micros(tx.Now), accountID)
	if err != nil {
		return st, fmt.Errorf("update settings: %w", err)
	}
	return st, nil
}
