package delivery

import (
	"net/http"
	"testing"
	"time"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 28, 8, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"":            0,
		"120":         2 * time.Minute,
		"0":           0,
		"-5":          0,
		"soon":        0,
		"99999999999": maxRetryAfter,
		now.Add(time.Hour).Format(http.TimeFormat):  time.Hour,
		now.Add(-time.Hour).Format(http.TimeFormat): 0,
	} {
		if got := retryAfter(in, now); got != want {
			t.Errorf("Retry-After %q = %v, want %v", in, got, want)
		}
	}
}

func TestParseSchedule(t *testing.T) {
	slots, err := ParseSchedule(DefaultSchedule)
	if err != nil || len(slots) != 7 || slots[0] != 0 || slots[6] != 72*time.Hour {
		t.Fatalf("default schedule: %v %v", slots, err)
	}
	for _, bad := range []string{"", "1m,1m", "5m,1m", "1m,-1s", "1m,x", "0s"} {
		if _, err := ParseSchedule(bad); err == nil {
			t.Errorf("schedule %q accepted", bad)
		}
	}
}

func TestResultClasses(t *testing.T) {
	for code, rejection := range map[int]bool{400: true, 401: true, 404: true, 422: true, 408: false, 410: false, 429: false, 500: false, 301: false} {
		if got := (Result{StatusCode: code}).Rejection(); got != rejection {
			t.Errorf("%d: rejection %v", code, got)
		}
	}
	if !(Result{StatusCode: 204}).OK() || (Result{StatusCode: 302}).OK() || !(Result{StatusCode: 410}).Gone() {
		t.Error("classes")
	}
}

func TestPrintable(t *testing.T) {
	if got := printable("ok\x00\xff\r\n\tend\x7f"); got != "ok\uFFFD\uFFFD\uFFFD\n\tend\uFFFD" {
		t.Fatalf("printable = %q", got)
	}
}
