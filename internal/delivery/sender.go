// Package delivery sends recorded events to the customers' webhook
// endpoints: the dispatcher that works the outbox (ordered per endpoint,
// retried on the schedule, with fast recovery and poison isolation), the
// e-mail notifier, and the replay jobs. See docs/ARCHITECTURE.md.
package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/punchconnect/punchconnect/internal/attendance"
	"github.com/punchconnect/punchconnect/internal/event"
	"github.com/punchconnect/punchconnect/internal/webhook"
)

// Defaults of the delivery settings (PRODUCT.md §2).
const (
	DefaultTimeout  = 10 * time.Second
	DefaultSchedule = "1m,5m,30m,2h,12h,72h"
)

// ParseSchedule reads a retry schedule: comma-separated offsets from the
// first attempt, increasing, the last being the final attempt. It returns
// every slot's offset, the first attempt's 0 included.
func ParseSchedule(s string) ([]time.Duration, error) {
	slots := []time.Duration{0}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		d, err := time.ParseDuration(part)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("--webhook-retry-schedule: %q is not a positive duration such as 30s, 5m or 12h", part)
		}
		if d <= slots[len(slots)-1] {
			return nil, fmt.Errorf("--webhook-retry-schedule: offsets count from the first attempt and must increase (%s after %s)", d, slots[len(slots)-1])
		}
		slots = append(slots, d)
	}
	if len(slots) > 50 {
		return nil, errors.New("--webhook-retry-schedule: at most 50 offsets")
	}
	return slots, nil
}

// excerptBytes is how much of a response body an attempt keeps.
const excerptBytes = 1024

// drainBytes is how much more of a response body is read so the connection
// can carry the next request.
const drainBytes = 64 << 10

// maxRetryAfter bounds how long a Retry-After header may hold an endpoint.
const maxRetryAfter = 24 * time.Hour

// Result is the outcome of one request to an endpoint.
type Result struct {
	StartedAt  time.Time
	Duration   time.Duration
	StatusCode int // 0: no response
	Excerpt    string
	Err        string        // why it failed; empty when delivered
	RetryAfter time.Duration // from a 429 or 503
	aborted    bool          // cut short by this node stopping: not an attempt
}

// OK reports whether the endpoint took the event (2xx).
func (r Result) OK() bool { return r.StatusCode >= 200 && r.StatusCode < 300 }

// Gone reports a 410: the endpoint asked to be disabled.
func (r Result) Gone() bool { return r.StatusCode == http.StatusGone }

// Rejection reports an answer that blames the event rather than the
// endpoint's health: a 4xx other than 408, 410, 425 and 429.
func (r Result) Rejection() bool {
	switch r.StatusCode {
	case http.StatusRequestTimeout, http.StatusGone, http.StatusTooEarly, http.StatusTooManyRequests:
		return false
	}
	return r.StatusCode >= 400 && r.StatusCode < 500
}

// Sender makes the signed requests of deliveries.
type Sender struct {
	client    *http.Client
	userAgent string
	now       func() time.Time
}

// NewSender returns a Sender whose requests time out after timeout and
// that refuses, at connect time, addresses webhooks must not reach unless
// allowPrivate is set. Redirects are not followed: a 3xx is a failed attempt.
func NewSender(timeout time.Duration, allowPrivate bool, version string, now func() time.Time) *Sender {
	dialer := webhook.Dialer(timeout, allowPrivate)
	tr := &http.Transport{
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   timeout,
		ExpectContinueTimeout: time.Second,
	}
	return &Sender{
		client: &http.Client{
			Transport: tr,
			Timeout:   timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		userAgent: "PunchConnect-Webhooks/" + version,
		now:       now,
	}
}

// Close drops idle connections.
func (s *Sender) Close() { s.client.CloseIdleConnections() }

// Send posts one attempt of an event to the webhook: the stored payload with
// metadata.delivery_attempt set to attempt, signed with the webhook's
// secrets.
func (s *Sender) Send(ctx context.Context, w *attendance.Webhook, eventID string, payload []byte, attempt int) Result {
	started := s.now()
	body, err := event.WithAttempt(payload, attempt)
	if err != nil {
		return Result{StartedAt: started, Err: err.Error()}
	}
	return s.post(ctx, w, eventID, body, started)
}

func (s *Sender) post(ctx context.Context, w *attendance.Webhook, eventID string, body []byte, started time.Time) Result {
	r := Result{StartedAt: started}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		r.Err = "bad webhook URL: " + err.Error()
		return r
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", s.userAgent)
	webhook.Sign(req.Header, w.Secrets(started), eventID, started, body)
	t0 := time.Now()
	resp, err := s.client.Do(req)
	if err != nil {
		r.Duration = time.Since(t0)
		r.Err = printable(describe(err))
		return r
	}
	excerpt, _ := io.ReadAll(io.LimitReader(resp.Body, excerptBytes))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainBytes))
	_ = resp.Body.Close()
	r.Duration = time.Since(t0)
	r.StatusCode = resp.StatusCode
	r.Excerpt = printable(string(excerpt))
	if !r.OK() {
		r.Err = fmt.Sprintf("the endpoint answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			r.Err += " (redirects are not followed: register the final URL)"
		}
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
			r.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), started)
		}
	}
	return r
}

// printable makes text from an endpoint safe to store and show: valid
// UTF-8 without NUL or other control characters but tab and newline
// (PostgreSQL text cannot hold NUL).
func printable(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		if r < ' ' && r != '\n' && r != '\t' || r == 0x7f {
			return '\uFFFD'
		}
		return r
	}, s)
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		d = time.Duration(min(n, int64(maxRetryAfter/time.Second))) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}

// describe turns a transport error into what a customer can act on.
func describe(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // drop the "Post \"URL\":" prefix
	}
	var ne net.Error
	switch {
	case errors.Is(err, webhook.ErrPrivateAddress):
		return err.Error()
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return "timed out waiting for the endpoint: " + err.Error()
	default:
		return "could not reach the endpoint: " + err.Error()
	}
}
