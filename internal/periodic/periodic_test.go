package periodic

import (
	"context"
	"testing"
	"time"
)

func TestEveryStopsWhenFnSaysSo(t *testing.T) {
	calls := 0
	Every(context.Background(), time.Millisecond, func() bool {
		calls++
		return calls < 3
	})
	if calls != 3 {
		t.Fatalf("fn ran %d times, want 3", calls)
	}
}

func TestEveryStopsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	Every(ctx, time.Millisecond, func() bool {
		calls++
		if calls == 2 {
			cancel()
		}
		return true
	})
	if calls != 2 {
		t.Fatalf("fn ran %d times after its context ended, want 2 in all", calls)
	}
}
