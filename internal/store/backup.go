package store

import (
	"context"
	"errors"
	"fmt"
	"os"
)

// ErrBackupPostgres: PostgreSQL is backed up with its own tools.
var ErrBackupPostgres = errors.New("backup copies a SQLite store; back up PostgreSQL with pg_dump or pg_basebackup (see docs/OPERATIONS.md)")

// Backup writes a consistent copy of a SQLite store to path (which must not
// exist) while the server keeps running: one read transaction sees a single
// instant, and writers go on meanwhile (WAL). The copy is compacted and is
// itself a store `serve` can open. (It runs on the write connection: the
// read pool is query-only, which VACUUM INTO refuses.)
func (s *Store) Backup(ctx context.Context, path string) error {
	if s.dialect != SQLite {
		return ErrBackupPostgres
	}
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("%s exists; backup never overwrites a file", path)
	}
	if _, err := s.write.ExecContext(ctx, `VACUUM INTO ?`, path); err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("back up to %s: %w", path, err)
	}
	return nil
}
