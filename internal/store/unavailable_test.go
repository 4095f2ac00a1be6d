package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/punchconnect/punchconnect/internal/store"
)

// TestIsUnavailable: the database errors a client should retry (503) are
// told from the ones that are a request's or a bug (500).
func TestIsUnavailable(t *testing.T) {
	pg := func(code string) error { return fmt.Errorf("insert: %w", &pgconn.PgError{Code: code}) }
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"deadline", fmt.Errorf("query: %w", context.DeadlineExceeded), true},
		{"connection failure", pg("08006"), true},
		{"disk full", pg("53100"), true},
		{"admin shutdown", pg("57P01"), true},
		{"read-only transaction (fail-over)", pg("25006"), true},
		{"other invalid transaction state", pg("25001"), false},
		{"unique violation", pg("23505"), false},
		{"syntax error", pg("42601"), false},
		{"plain error", errors.New("boom"), false},
	} {
		if got := store.IsUnavailable(c.err); got != c.want {
			t.Errorf("%s: IsUnavailable = %v, want %v", c.name, got, c.want)
		}
	}
}
