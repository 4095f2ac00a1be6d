package id

import (
	"strings"
	"testing"
)

func TestNewAndValid(t *testing.T) {
	for _, p := range []Prefix{Account, Device, Employee, Punch, Event, Webhook, Delivery, Command, Batch, Request} {
		a, b := New(p), New(p)
		if a == b || !strings.HasPrefix(a, string(p)+"_") || len(a) != len(p)+27 {
			t.Fatalf("New(%s) = %q, %q", p, a, b)
		}
		if !Valid(p, a) {
			t.Fatalf("Valid(%s, %q) = false", p, a)
		}
	}
	dev := New(Device)
	for _, bad := range []string{"", "dev_", "dev", "emp" + dev[3:], "dev_" + strings.Repeat("z", 26), dev + "0", strings.ToUpper(dev), "dev_8zzzzzzzzzzzzzzzzzzzzzzzzz"} {
		if Valid(Device, bad) {
			t.Errorf("Valid(dev, %q) = true", bad)
		}
	}
}
