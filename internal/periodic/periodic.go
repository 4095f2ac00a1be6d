// Package periodic runs a piece of work on a ticker, the loop that the
// server's background duties, SQLite's checkpoints and delivery leases
// share.
package periodic

import (
	"context"
	"time"
)

// Every calls fn each interval, the first time one interval from now, until
// ctx ends or fn returns false.
func Every(ctx context.Context, interval time.Duration, fn func() bool) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !fn() {
			return
		}
	}
}
