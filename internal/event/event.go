// Package event builds the events PunchConnect records and delivers: their
// types and their JSON bodies, exactly as webhook receivers get them.
package event

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/punchconnect/punchconnect/internal/attendance"
	"github.com/punchconnect/punchconnect/internal/id"
)

// Types lists every event type, for validation of webhook subscriptions.
var Types = attendance.SubscribableEvents

// FormatTime renders an instant as events and the API do: RFC 3339 in UTC,
// with a fraction only when there is one.
func FormatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// metadata is filled per delivery attempt; the stored payload carries
// deduplicated, and delivery_attempt is set when sending.
type metadata struct {
	Deduplicated    bool `json:"deduplicated"`
	DeliveryAttempt int  `json:"delivery_attempt"`
}

type punchDetail struct {
	ID         string   `json:"id"`
	Direction  string   `json:"direction"`
	Method     string   `json:"method"`
	Confidence *float64 `json:"confidence"`
	LocalTime  string   `json:"local_time"`
	ReceivedAt string   `json:"received_at"`
	Source     string   `json:"source"`
}

// punchBody is the attendance.punch payload: the seed's shape, with fields
// added (punch.id, punch.received_at, punch.source), none renamed.
type punchBody struct {
	EventID   string                 `json:"event_id"`
	EventType string                 `json:"event_type"`
	Timestamp string                 `json:"timestamp"`
	Device    attendance.DeviceRef   `json:"device"`
	Employee  attendance.EmployeeRef `json:"employee"`
	Punch     punchDetail            `json:"punch"`
	Metadata  metadata               `json:"metadata"`
}

// Punch builds the attendance.punch event of an accepted punch, recorded at now.
func Punch(p attendance.Punch, dev attendance.DeviceRef, emp attendance.EmployeeRef, now time.Time) attendance.Event {
	evID := id.New(id.Event)
	body := punchBody{
		EventID: evID, EventType: attendance.EventAttendancePunch, Timestamp: FormatTime(p.Time),
		Device: dev, Employee: emp,
		Punch: punchDetail{
			ID: p.ID, Direction: string(p.Direction), Method: string(p.Method), Confidence: p.Confidence,
			LocalTime: p.LocalTime, ReceivedAt: FormatTime(p.ReceivedAt), Source: p.Source,
		},
		Metadata: metadata{Deduplicated: p.Folded},
	}
	return attendance.Event{
		ID: evID, AccountID: p.AccountID, Type: attendance.EventAttendancePunch, CreatedAt: now,
		DeviceID: p.DeviceID, EmployeeID: emp.ID, PunchID: p.ID, Payload: mustJSON(body),
	}
}

type statusDetail struct {
	State         string  `json:"state"`
	PreviousState string  `json:"previous_state"`
	LastSeenAt    *string `json:"last_seen_at"`
}

type statusBody struct {
	EventID   string               `json:"event_id"`
	EventType string               `json:"event_type"`
	Timestamp string               `json:"timestamp"`
	Device    attendance.DeviceRef `json:"device"`
	Status    statusDetail         `json:"status"`
	Metadata  metadata             `json:"metadata"`
}

// DeviceStatus builds the device.status event of d changing from previous to
// d.Status at now (PRODUCT.md §8).
func DeviceStatus(d attendance.Device, previous attendance.DeviceStatus, now time.Time) attendance.Event {
	evID := id.New(id.Event)
	body := statusBody{
		EventID: evID, EventType: attendance.EventDeviceStatus, Timestamp: FormatTime(now), Device: Ref(d),
		Status: statusDetail{State: string(d.Status), PreviousState: string(previous)},
	}
	if !d.LastSeenAt.IsZero() {
		s := FormatTime(d.LastSeenAt)
		body.Status.LastSeenAt = &s
	}
	return attendance.Event{ID: evID, AccountID: d.AccountID, Type: attendance.EventDeviceStatus, CreatedAt: now, DeviceID: d.ID, Payload: mustJSON(body)}
}

type logBody struct {
	EventID   string               `json:"event_id"`
	EventType string               `json:"event_type"`
	Timestamp string               `json:"timestamp"`
	Device    attendance.DeviceRef `json:"device"`
	Log       struct {
		Records  int `json:"records"`
		Capacity int `json:"capacity"`
		Percent  int `json:"percent"`
	} `json:"log"`
	Metadata metadata `json:"metadata"`
}

// LogNearlyFull builds the warning that d's attendance log is nearly full:
// devices delete their oldest records when it is.
func LogNearlyFull(d attendance.Device, records, capacity int, now time.Time) attendance.Event {
	evID := id.New(id.Event)
	body := logBody{EventID: evID, EventType: attendance.EventDeviceLogNearlyFull, Timestamp: FormatTime(now), Device: Ref(d)}
	body.Log.Records, body.Log.Capacity = records, capacity
	if capacity > 0 {
		body.Log.Percent = records * 100 / capacity
	}
	return attendance.Event{ID: evID, AccountID: d.AccountID, Type: attendance.EventDeviceLogNearlyFull, CreatedAt: now, DeviceID: d.ID, Payload: mustJSON(body)}
}

type testBody struct {
	EventID   string `json:"event_id"`
	EventType string `json:"event_type"`
	Timestamp string `json:"timestamp"`
	Webhook   struct {
		ID  string `json:"id"`
		URL string `json:"url"`
	} `json:"webhook"`
	Message  string   `json:"message"`
	Metadata metadata `json:"metadata"`
}

// Test builds the webhook.test event POST /v1/webhooks/{id}/test sends: it
// is signed and shaped like every other event, and never stored.
func Test(w attendance.Webhook, now time.Time) attendance.Event {
	evID := id.New(id.Event)
	body := testBody{EventID: evID, EventType: attendance.EventWebhookTest, Timestamp: FormatTime(now),
		Message: "A test event from PunchConnect. Your endpoint verified its signature if it answered 2xx."}
	body.Webhook.ID, body.Webhook.URL = w.ID, w.URL
	return attendance.Event{ID: evID, AccountID: w.AccountID, Type: attendance.EventWebhookTest, CreatedAt: now, Payload: mustJSON(body)}
}

// Ref is what events say of a device.
func Ref(d attendance.Device) attendance.DeviceRef {
	return attendance.DeviceRef{ID: d.ID, SerialNumber: d.SerialNumber, Name: d.Name, Site: d.Site}
}

// WithAttempt returns the payload with metadata.delivery_attempt set: the
// body of one delivery attempt. Stored payloads end with metadata, whose
// delivery_attempt is 0, so the rest of the body keeps its bytes and order.
func WithAttempt(payload []byte, attempt int) ([]byte, error) {
	const placeholder = `"delivery_attempt":0}}`
	i := bytes.LastIndex(payload, []byte(placeholder))
	if i < 0 || i+len(placeholder) != len(payload) {
		return nil, fmt.Errorf("event payload does not end with metadata")
	}
	out := make([]byte, 0, len(payload)+8)
	out = append(out, payload[:i]...)
	out = append(out, `"delivery_attempt":`...)
	out = strconv.AppendInt(out, int64(attempt), 10)
	return append(out, "}}"...), nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("event: encode: %v", err))
	}
	return b
}

// Progress counts a command's items or a batch's devices by outcome.
type Progress struct {
	Total     int `json:"total"`
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
	Pending   int `json:"pending"`
}

type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type commandDetail struct {
	ID          string     `json:"id"`
	Command     string     `json:"command"`
	Status      string     `json:"status"`
	BatchID     *string    `json:"batch_id"`
	Source      string     `json:"source"`
	Progress    Progress   `json:"progress"`
	ReturnCode  *int       `json:"return_code"`
	Error       *errorBody `json:"error"`
	CreatedAt   string     `json:"created_at"`
	CompletedAt string     `json:"completed_at"`
}

type commandBody struct {
	EventID   string               `json:"event_id"`
	EventType string               `json:"event_type"`
	Timestamp string               `json:"timestamp"`
	Device    attendance.DeviceRef `json:"device"`
	Command   commandDetail        `json:"command"`
	Metadata  metadata             `json:"metadata"`
}

// Command builds command.succeeded or command.failed (failed and expired
// commands) for a command that reached its final status at now.
func Command(c attendance.Command, d attendance.Device, now time.Time) attendance.Event {
	evID := id.New(id.Event)
	typ := attendance.EventCommandSucceeded
	if c.Status != attendance.CommandSucceeded {
		typ = attendance.EventCommandFailed
	}
	detail := commandDetail{
		ID: c.ID, Command: string(c.Kind), Status: string(c.Status), Source: c.Source, ReturnCode: c.ReturnCode,
		Progress:  Progress{Total: c.Total, Succeeded: c.Succeeded, Failed: c.Failed, Pending: c.Pending()},
		CreatedAt: FormatTime(c.CreatedAt), CompletedAt: FormatTime(c.CompletedAt),
	}
	if c.BatchID != "" {
		detail.BatchID = &c.BatchID
	}
	if c.ErrorCode != "" {
		detail.Error = &errorBody{Code: c.ErrorCode, Message: c.ErrorMessage}
	}
	body := commandBody{EventID: evID, EventType: typ, Timestamp: FormatTime(now), Device: Ref(d), Command: detail}
	return attendance.Event{ID: evID, AccountID: c.AccountID, Type: typ, CreatedAt: now, DeviceID: d.ID, Payload: mustJSON(body)}
}

type batchDetail struct {
	ID          string   `json:"id"`
	Command     string   `json:"command"`
	Devices     Progress `json:"devices"`
	Items       Progress `json:"items"`
	CreatedAt   string   `json:"created_at"`
	CompletedAt string   `json:"completed_at"`
}

type batchBody struct {
	EventID   string      `json:"event_id"`
	EventType string      `json:"event_type"`
	Timestamp string      `json:"timestamp"`
	Batch     batchDetail `json:"batch"`
	Metadata  metadata    `json:"metadata"`
}

// BatchProgress counts a batch's devices by the status of their commands,
// and its items across them.
func BatchProgress(b attendance.Batch) (devices, items Progress) {
	devices.Total = len(b.Commands)
	for _, c := range b.Commands {
		switch {
		case c.Status == attendance.CommandSucceeded:
			devices.Succeeded++
		case c.Status.Terminal():
			devices.Failed++
		default:
			devices.Pending++
		}
		items.Total += c.Total
		items.Succeeded += c.Succeeded
		items.Failed += c.Failed
		items.Pending += c.Pending()
	}
	return devices, items
}

// BatchCompleted builds batch.completed for a batch whose commands all
// reached their final status at now.
func BatchCompleted(b attendance.Batch, now time.Time) attendance.Event {
	evID := id.New(id.Event)
	devices, items := BatchProgress(b)
	body := batchBody{EventID: evID, EventType: attendance.EventBatchCompleted, Timestamp: FormatTime(now), Batch: batchDetail{
		ID: b.ID, Command: string(b.Kind), Devices: devices, Items: items, CreatedAt: FormatTime(b.CreatedAt), CompletedAt: FormatTime(now),
	}}
	return attendance.Event{ID: evID, AccountID: b.AccountID, Type: attendance.EventBatchCompleted, CreatedAt: now, Payload: mustJSON(body)}
}
