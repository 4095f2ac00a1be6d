package store

import (
	"fmt"
	"runtime"
	"testing"
)

func TestPGLanes(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, c := range []struct{ procs, maxConns, shared, all int }{
		{1, 20, 2, 4},   // at least two: one group gathers while the other commits
		{2, 20, 2, 4},   // one a core; twice as many for bulk requests
		{6, 20, 6, 10},  // at most half the pool
		{32, 40, 8, 16}, // at most eight shared
		{4, 2, 1, 1},    // a pool of two still commits
		{4, 0, 4, 8},    // no pool size given
	} {
		runtime.GOMAXPROCS(c.procs)
		if shared, all := pgLanes(c.maxConns); shared != c.shared || all != c.all {
			t.Errorf("GOMAXPROCS %d, pool %d: %d shared lanes of %d, want %d of %d", c.procs, c.maxConns, shared, all, c.shared, c.all)
		}
	}
}

// TestLaneChoice: a key always takes the same lane of its kind; requests
// that are not bulk keep to the shared lanes; bulk ones spread over all.
func TestLaneChoice(t *testing.T) {
	c := &committer{shared: 2}
	for range 4 {
		c.lanes = append(c.lanes, &lane{c: c})
	}
	index := map[*lane]int{}
	for i, l := range c.lanes {
		index[l] = i
	}
	used := map[bool]map[int]bool{false: {}, true: {}}
	for i := range 200 {
		key := fmt.Sprintf("SN%04d", i)
		for _, bulk := range []bool{false, true} {
			l := c.lane(key, bulk)
			if c.lane(key, bulk) != l {
				t.Fatalf("%s (bulk %v) took two lanes", key, bulk)
			}
			used[bulk][index[l]] = true
		}
	}
	if len(used[false]) != 2 || !used[false][0] || !used[false][1] {
		t.Errorf("requests that are not bulk used lanes %v, want 0 and 1", used[false])
	}
	if len(used[true]) != 4 {
		t.Errorf("bulk requests used lanes %v, want all four", used[true])
	}
	one := &committer{shared: 1}
	one.lanes = []*lane{{c: one}}
	if one.lane("SN1", true) != one.lanes[0] {
		t.Error("SQLite's one lane not taken")
	}
}
