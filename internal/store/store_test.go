package store_test

import (
	"testing"

	"github.com/punchconnect/punchconnect/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			storetest.Run(t, b)
		})
	}
}
