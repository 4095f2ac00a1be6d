package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"os"
	"syscall"

	"github.com/pressly/goose/v3"
)

//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrations embed.FS

// Migrate brings the schema up to date and returns a line per migration it
// applied. On PostgreSQL it holds an advisory lock (scoped to the schema) for
// the duration, so nodes that start together migrate once, one after another.
func (s *Store) Migrate(ctx context.Context) ([]string, error) {
	dir, dialect := "migrations/sqlite", goose.DialectSQLite3
	var opts []goose.ProviderOption
	if s.dialect == Postgres {
		dir, dialect = "migrations/postgres", goose.DialectPostgres
		opts = append(opts, goose.WithSessionLocker(advisoryLocker{}))
	}
	if s.dialect == SQLite {
		unlock, err := lockFile(s.path + ".lock")
		if err != nil {
			return nil, err
		}
		defer unlock()
	}
	sub, err := fs.Sub(migrations, dir)
	if err != nil {
		return nil, err
	}
	opts = append(opts, goose.WithDisableGlobalRegistry(true))
	p, err := goose.NewProvider(dialect, s.write, sub, opts...)
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	lines := make([]string, 0, len(results))
	for _, r := range results {
		lines = append(lines, r.String())
	}
	return lines, nil
}

// lockFile takes an exclusive flock on path, waiting for other processes
// (a serve and a migrate started together) that hold it.
func lockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("migration lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("migration lock: %w", err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// advisoryLocker serializes migrations with a blocking PostgreSQL advisory
// lock keyed by the current schema: no polling delay, and separate schemas
// (as the tests use) do not wait for one another.
type advisoryLocker struct{}

const migrationLockKey = "hashtext('punchconnect.migrate.' || current_schema())"

func (advisoryLocker) SessionLock(ctx context.Context, c *sql.Conn) error {
	_, err := c.ExecContext(ctx, "SELECT pg_advisory_lock("+migrationLockKey+")")
	return err
}

func (advisoryLocker) SessionUnlock(ctx context.Context, c *sql.Conn) error {
	_, err := c.ExecContext(ctx, "SELECT pg_advisory_unlock("+migrationLockKey+")")
	return err
}
