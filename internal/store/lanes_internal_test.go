package store

import (
	"runtime"
	"testing"
)

func TestPGLanes(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, c := range []struct{ procs, maxConns, want int }{
		{1, 20, 2}, // at least two: one group gathers while the other commits
		{2, 20, 2}, // one a core
		{6, 20, 6},
		{32, 20, 8}, // at most eight
		{32, 8, 4},  // at most half the pool
		{4, 2, 1},   // a pool of two still commits
		{4, 0, 4},   // no pool size given
	} {
		runtime.GOMAXPROCS(c.procs)
		if got := pgLanes(c.maxConns); got != c.want {
			t.Errorf("GOMAXPROCS %d, pool %d: %d lanes, want %d", c.procs, c.maxConns, got, c.want)
		}
	}
}
