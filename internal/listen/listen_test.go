package listen

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func payload(n int) string {
	return fmt.Sprintf(`{"event_id":"evt_%d","event_type":"attendance.punch","metadata":{"deduplicated":false,"delivery_attempt":0}}`, n)
}

// TestForwardsAndResumes: events are forwarded signed, in order; after the
// stream drops, the listener resumes after the last event it got.
func TestForwardsAndResumes(t *testing.T) {
	var mu sync.Mutex
	var resumes []string
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer pcsk_test" {
			w.WriteHeader(401)
			fmt.Fprint(w, `{"error":{"message":"The API key is not valid."}}`)
			return
		}
		if r.URL.Query().Get("types") != "attendance.punch,device.status" {
			t.Errorf("types %q", r.URL.Query().Get("types"))
		}
		last, _ := strconv.Atoi(r.Header.Get("Last-Event-ID"))
		mu.Lock()
		resumes = append(resumes, r.Header.Get("Last-Event-ID"))
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, ": hello\n\n")
		// Three events per connection, then the connection drops.
		for n := last + 1; n <= last+3 && n <= 7; n++ {
			fmt.Fprintf(w, "id: %d\nevent: attendance.punch\ndata: %s\n\n", n, payload(n))
		}
		w.(http.Flusher).Flush()
		if last+3 >= 7 {
			<-r.Context().Done()
		}
	}))
	defer server.Close()

	got := make(chan string, 20)
	local := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		m := hmac.New(sha256.New, []byte("whsec_your_signing_secret"))
		m.Write(body)
		if r.Header.Get("X-PunchConnect-Signature") != "sha256="+hex.EncodeToString(m.Sum(nil)) {
			w.WriteHeader(401)
			return
		}
		var ev struct {
			EventID  string `json:"event_id"`
			Metadata struct {
				DeliveryAttempt int `json:"delivery_attempt"`
			} `json:"metadata"`
		}
		_ = json.Unmarshal(body, &ev)
		if ev.Metadata.DeliveryAttempt != 1 || r.Header.Get("webhook-id") != ev.EventID {
			w.WriteHeader(400)
			return
		}
		got <- ev.EventID
	}))
	defer local.Close()

	var out strings.Builder
	var outMu sync.Mutex
	l := &Listener{Server: server.URL, APIKey: "pcsk_test", ForwardTo: local.URL, Types: []string{"attendance.punch", "device.status"},
		Secret: "whsec_your_signing_secret", Out: writerFunc(func(p []byte) (int, error) {
			outMu.Lock()
			defer outMu.Unlock()
			return out.Write(p)
		}), MaxBackoff: 50 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- l.Run(ctx) }()
	for n := 1; n <= 7; n++ {
		select {
		case id := <-got:
			if id != fmt.Sprintf("evt_%d", n) {
				t.Fatalf("forwarded %s, want evt_%d", id, n)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("event %d not forwarded", n)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(resumes, ",") != ",3,6" {
		t.Fatalf("connections resumed after %q, want \"\", 3, 6", resumes)
	}
	outMu.Lock()
	defer outMu.Unlock()
	if !strings.Contains(out.String(), "--> attendance.punch evt_1  <-- [200] POST "+local.URL) {
		t.Fatalf("output:\n%s", out.String())
	}

	// A refused key ends the listener with the server's explanation.
	bad := &Listener{Server: server.URL, APIKey: "nope", ForwardTo: local.URL}
	if err := bad.Run(context.Background()); !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "not valid") {
		t.Fatalf("bad key: %v", err)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestReadEvent(t *testing.T) {
	r := bufio.NewReader(strings.NewReader(": comment\r\n\r\nid: 7\r\nevent: x\r\ndata: a\r\ndata:b\r\nretry: 10\r\n\r\nid: 8\ndata: c\n\n"))
	ev, err := ReadEvent(r)
	if err != nil || ev != (Event{ID: "7", Type: "x", Data: "a\nb"}) {
		t.Fatalf("%+v %v", ev, err)
	}
	ev, err = ReadEvent(r)
	if err != nil || ev != (Event{ID: "8", Data: "c"}) {
		t.Fatalf("%+v %v", ev, err)
	}
	if _, err := ReadEvent(r); !errors.Is(err, io.EOF) {
		t.Fatalf("end: %v", err)
	}
	if _, err := ReadEvent(bufio.NewReader(strings.NewReader("data: cut"))); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("cut event: %v", err)
	}
	huge := "data: " + strings.Repeat("x", maxEventBytes) + "\n\n"
	if _, err := ReadEvent(bufio.NewReader(strings.NewReader(huge))); !errors.Is(err, ErrEventTooLarge) {
		t.Fatalf("huge event: %v", err)
	}
}

// FuzzReadEvent: whatever a server sends, the reader returns events or an
// error, within its size bound, and never panics.
func FuzzReadEvent(f *testing.F) {
	for _, s := range []string{"id: 1\nevent: attendance.punch\ndata: {}\n\n", ": keep-alive\n\n", "data\n\n", "id\x00: 1\r\rdata: x\r\r", "data: a\ndata: b\n\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r := bufio.NewReader(strings.NewReader(s))
		for range len(s) + 1 {
			ev, err := ReadEvent(r)
			if err != nil {
				return
			}
			if len(ev.Data) > maxEventBytes {
				t.Fatalf("event of %d bytes", len(ev.Data))
			}
		}
	})
}
