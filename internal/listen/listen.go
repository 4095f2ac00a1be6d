// Package listen is `punchconnect listen`: it streams an account's events
// from a PunchConnect server (GET /v1/events/stream) and forwards each to a
// local URL, signed as webhooks are, so a handler under development gets
// real events without a public URL or a tunnel.
package listen

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/punchconnect/punchconnect/internal/event"
	"github.com/punchconnect/punchconnect/internal/webhook"
)

// Listener forwards an account's events to a local URL.
type Listener struct {
	Server    string   // PunchConnect base URL
	APIKey    string   // the account's API key
	ForwardTo string   // local URL receiving the events
	Types     []string // event types; all when empty
	Secret    string   // signs forwarded requests
	UserAgent string
	Out       io.Writer // one line per event and per connection change
	// Timeout bounds one forwarded request (default 10s).
	Timeout time.Duration
	// MaxBackoff bounds the wait between reconnections (default 10s).
	MaxBackoff time.Duration

	lastID string // the last event received: where a reconnection resumes
}

// ErrUnauthorized means the server refused the API key: retrying cannot help.
var ErrUnauthorized = errors.New("the server refused the API key")

// Run streams and forwards until ctx ends, reconnecting after failures and
// resuming after the last event received, so none is missed.
func (l *Listener) Run(ctx context.Context) error {
	if l.Timeout <= 0 {
		l.Timeout = 10 * time.Second
	}
	if l.MaxBackoff <= 0 {
		l.MaxBackoff = 10 * time.Second
	}
	if l.Out == nil {
		l.Out = io.Discard
	}
	fwd := &http.Client{Timeout: l.Timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	backoff := 500 * time.Millisecond
	for {
		connected, err := l.stream(ctx, fwd)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, ErrUnauthorized) {
			return err
		}
		if connected {
			backoff = 500 * time.Millisecond
		}
		l.logf("stream interrupted (%v); reconnecting in %s", err, backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, l.MaxBackoff)
	}
}

func (l *Listener) logf(format string, a ...any) {
	fmt.Fprintf(l.Out, time.Now().Format("2006-01-02 15:04:05")+"  "+format+"\n", a...)
}

// stream reads one connection of the event stream; connected reports
// whether it got as far as the server's acceptance.
func (l *Listener) stream(ctx context.Context, fwd *http.Client) (connected bool, err error) {
	u := strings.TrimRight(l.Server, "/") + "/v1/events/stream"
	if len(l.Types) > 0 {
		u += "?types=" + url.QueryEscape(strings.Join(l.Types, ","))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Authorization", "Bearer "+l.APIKey)
	req.Header.Set("Accept", "text/event-stream")
	if l.lastID != "" {
		req.Header.Set("Last-Event-ID", l.lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		var e struct {
			Error struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		msg := string(body)
		if json.Unmarshal(body, &e) == nil && e.Error.Message != "" {
			msg = e.Error.Message
		}
		if resp.StatusCode == http.StatusUnauthorized {
			return false, fmt.Errorf("%w: %s", ErrUnauthorized, msg)
		}
		return false, fmt.Errorf("the server answered %d: %s", resp.StatusCode, msg)
	}
	if l.lastID == "" {
		l.logf("connected to %s; forwarding new events to %s", l.Server, l.ForwardTo)
	} else {
		l.logf("reconnected; resuming after event #%s", l.lastID)
	}
	r := bufio.NewReaderSize(resp.Body, 64<<10)
	for {
		ev, err := ReadEvent(r)
		if err != nil {
			return true, err
		}
		if ev.Data == "" {
			continue
		}
		l.forward(ctx, fwd, ev)
		if ev.ID != "" {
			l.lastID = ev.ID
		}
	}
}

// forward posts one event to the local URL and prints the outcome.
func (l *Listener) forward(ctx context.Context, fwd *http.Client, ev Event) {
	var head struct {
		EventID   string `json:"event_id"`
		EventType string `json:"event_type"`
	}
	_ = json.Unmarshal([]byte(ev.Data), &head)
	body, err := event.WithAttempt([]byte(ev.Data), 1)
	if err != nil {
		body = []byte(ev.Data)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.ForwardTo, bytes.NewReader(body))
	if err != nil {
		l.logf("--> %s %s  could not forward: %v", head.EventType, head.EventID, err)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	if l.UserAgent != "" {
		req.Header.Set("User-Agent", l.UserAgent)
	}
	webhook.Sign(req.Header, []string{l.Secret}, head.EventID, time.Now(), body)
	start := time.Now()
	resp, err := fwd.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		l.logf("--> %s %s  [error] POST %s: %v", head.EventType, head.EventID, l.ForwardTo, err)
		return
	}
	excerpt, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	line := fmt.Sprintf("--> %s %s  <-- [%d] POST %s (%d ms)", head.EventType, head.EventID, resp.StatusCode, l.ForwardTo, time.Since(start).Milliseconds())
	if resp.StatusCode >= 300 && len(excerpt) > 0 {
		line += "  " + strings.Join(strings.Fields(string(excerpt)), " ")
	}
	l.logf("%s", line)
}

// Event is one server-sent event.
type Event struct {
	ID   string
	Type string
	Data string
}

// maxEventBytes bounds one event of the stream.
const maxEventBytes = 1 << 20

// ErrEventTooLarge is returned for an event longer than the reader accepts.
var ErrEventTooLarge = errors.New("server-sent event too large")

// ReadEvent reads the next event of a text/event-stream (the WHATWG
// format): fields up to a blank line; comments and unknown fields are
// skipped, data lines joined with newlines. An event without data is
// returned with empty Data (the caller skips it).
func ReadEvent(r *bufio.Reader) (Event, error) {
	var ev Event
	var data []string
	size := 0
	seen := false
	for {
		line, err := readLine(r, maxEventBytes-size)
		if err != nil {
			if errors.Is(err, io.EOF) && (seen || line != "") {
				return Event{}, io.ErrUnexpectedEOF
			}
			return Event{}, err
		}
		size += len(line) + 1
		if line == "" {
			if !seen {
				continue
			}
			ev.Data = strings.Join(data, "\n")
			return ev, nil
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		seen = true
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			if !strings.ContainsRune(value, 0) {
				ev.ID = value
			}
		case "event":
			ev.Type = value
		case "data":
			data = append(data, value)
		}
	}
}

// readLine reads one line (ending in \n, \r\n or \r) of at most limit
// bytes. At the end of the stream it returns what it read with the error.
func readLine(r *bufio.Reader, limit int) (string, error) {
	var b strings.Builder
	for {
		c, err := r.ReadByte()
		if err != nil {
			return b.String(), err
		}
		switch c {
		case '\n':
			return b.String(), nil
		case '\r':
			if next, err := r.Peek(1); err == nil && next[0] == '\n' {
				_, _ = r.ReadByte()
			}
			return b.String(), nil
		}
		if b.Len() >= limit {
			return "", ErrEventTooLarge
		}
		b.WriteByte(c)
	}
}
