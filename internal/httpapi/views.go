package httpapi

import (
	"encoding/json"
	"time"

	"github.com/punchconnect/punchconnect/internal/attendance"
	"github.com/punchconnect/punchconnect/internal/delivery"
	"github.com/punchconnect/punchconnect/internal/event"
	"github.com/punchconnect/punchconnect/internal/store"
)

// The JSON shapes of API objects. Field names are the contract; times are
// RFC 3339 in UTC; absent values are null, never omitted.

type deviceView struct {
	ID                 string     `json:"id"`
	Object             string     `json:"object"`
	SerialNumber       string     `json:"serial_number"`
	Name               string     `json:"name"`
	Site               string     `json:"site"`
	Timezone           string     `json:"timezone"`
	DirectionMode      *string    `json:"direction_mode"`
	Status             string     `json:"status"`
	LastSeenAt         *string    `json:"last_seen_at"`
	ClockOffsetSeconds *int       `json:"clock_offset_seconds"`
	Firmware           *string    `json:"firmware"`
	CompleteThrough    *string    `json:"complete_through"`
	Protocol           *string    `json:"protocol"`
	PushVersion        *string    `json:"push_version"`
	IPAddress          *string    `json:"ip_address"`
	Counts             countsView `json:"counts"`
	VerifyCodes        string     `json:"verify_codes"`
	TimezoneFormat     string     `json:"timezone_format"`
	DedupWindowSeconds *int       `json:"dedup_window_seconds"`
	AllowedSourceCIDRs []string   `json:"allowed_source_cidrs"`
	CommKeySet         bool       `json:"comm_key_set"`
	CreatedAt          string     `json:"created_at"`
	UpdatedAt          string     `json:"updated_at"`
}

type countsView struct {
	Users        *int `json:"users"`
	Fingerprints *int `json:"fingerprints"`
	Faces        *int `json:"faces"`
	Logs         *int `json:"logs"`
	LogCapacity  *int `json:"log_capacity"`
}

func viewDevice(d attendance.Device) deviceView {
	v := deviceView{
		ID: d.ID, Object: "device", SerialNumber: d.SerialNumber, Name: d.Name, Site: d.Site, Timezone: d.Timezone,
		Status: string(d.Status), LastSeenAt: optTime(d.LastSeenAt), ClockOffsetSeconds: d.ClockOffsetSeconds,
		Firmware: optString(d.Firmware), CompleteThrough: optTime(d.CompleteThrough), Protocol: optString(d.Protocol),
		PushVersion: optString(d.PushVersion), IPAddress: optString(d.IPAddress),
		Counts:      countsView{Users: d.Counts.Users, Fingerprints: d.Counts.Fingerprints, Faces: d.Counts.Faces, Logs: d.Counts.Logs, LogCapacity: d.Counts.LogCapacity},
		VerifyCodes: string(d.VerifyCodes), TimezoneFormat: string(d.TimezoneFormat), DedupWindowSeconds: d.DedupWindowSeconds,
		AllowedSourceCIDRs: d.AllowedCIDRs, CommKeySet: d.CommKey != "",
		CreatedAt: formatTime(d.CreatedAt), UpdatedAt: formatTime(d.UpdatedAt),
	}
	if v.AllowedSourceCIDRs == nil {
		v.AllowedSourceCIDRs = []string{}
	}
	if d.DirectionMode != nil {
		m := string(*d.DirectionMode)
		v.DirectionMode = &m
	}
	return v
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

type employeeView struct {
	ID          string            `json:"id"`
	Object      string            `json:"object"`
	BadgeNumber string            `json:"badge_number"`
	Name        string            `json:"name"`
	ExternalID  *string           `json:"external_id"`
	Email       *string           `json:"email"`
	Department  *string           `json:"department"`
	CardNumber  *string           `json:"card_number"`
	Active      bool              `json:"active"`
	Metadata    map[string]string `json:"metadata"`
	CreatedAt   string            `json:"created_at"`
	UpdatedAt   string            `json:"updated_at"`
}

func viewEmployee(e attendance.Employee) employeeView {
	meta := e.Metadata
	if meta == nil {
		meta = map[string]string{}
	}
	return employeeView{
		ID: e.ID, Object: "employee", BadgeNumber: e.BadgeNumber, Name: e.Name, ExternalID: e.ExternalID,
		Email: e.Email, Department: e.Department, CardNumber: e.CardNumber, Active: e.Active, Metadata: meta,
		CreatedAt: formatTime(e.CreatedAt), UpdatedAt: formatTime(e.UpdatedAt),
	}
}

type settingsView struct {
	Object              string `json:"object"`
	Timezone            string `json:"timezone"`
	DirectionMode       string `json:"direction_mode"`
	DayStart            string `json:"day_start"`
	DedupWindowSeconds  int    `json:"dedup_window_seconds"`
	EarliestPunchDate   string `json:"earliest_punch_date"`
	MaxPunchAgeDays     int    `json:"max_punch_age_days"`
	MaxPunchFutureHours int    `json:"max_punch_future_hours"`
	AutoSyncEmployees   bool   `json:"auto_sync_employees"`
}

func viewSettings(s attendance.Settings) settingsView {
	return settingsView{
		Object: "settings", Timezone: s.Timezone, DirectionMode: string(s.DirectionMode),
		DayStart: attendance.FormatDayStart(s.DayStartMinutes), DedupWindowSeconds: s.DedupWindowSeconds,
		EarliestPunchDate: attendance.FormatDateInt(s.EarliestPunchDate), MaxPunchAgeDays: s.MaxPunchAgeDays,
		MaxPunchFutureHours: s.MaxPunchFutureHours, AutoSyncEmployees: s.AutoSyncEmployees,
	}
}

// punchView is an accepted punch, as /v1/attendance shows it.
type punchView struct {
	ID                 string                  `json:"id"`
	Object             string                  `json:"object"`
	Timestamp          string                  `json:"timestamp"`
	LocalTime          string                  `json:"local_time"`
	ReceivedAt         string                  `json:"received_at"`
	Device             attendance.DeviceRef    `json:"device"`
	Employee           *attendance.EmployeeRef `json:"employee"`
	BadgeNumber        string                  `json:"badge_number"`
	Direction          string                  `json:"direction"`
	DirectionSource    string                  `json:"direction_source"`
	Method             string                  `json:"method"`
	Confidence         *float64                `json:"confidence"`
	State              *int                    `json:"state"`
	Verify             *string                 `json:"verify"`
	WorkCode           *string                 `json:"work_code"`
	DeviceTime         *string                 `json:"device_time"`
	ClockOffsetSeconds int                     `json:"clock_offset_seconds"`
	Source             string                  `json:"source"`
	ExternalID         *string                 `json:"external_id"`
	Raw                string                  `json:"raw"`
	Deduplicated       bool                    `json:"deduplicated"`
	EventID            *string                 `json:"event_id"`
	ReleasedAt         *string                 `json:"released_at"`
}

func viewPunch(p attendance.Punch) punchView {
	return punchView{
		ID: p.ID, Object: "punch", Timestamp: event.FormatTime(p.Time), LocalTime: p.LocalTime,
		ReceivedAt: event.FormatTime(p.ReceivedAt), Device: p.Device, Employee: p.Employee, BadgeNumber: p.BadgeNumber,
		Direction: string(p.Direction), DirectionSource: string(p.DirectionSource), Method: string(p.Method),
		Confidence: p.Confidence, State: p.State, Verify: optString(p.Verify), WorkCode: optString(p.WorkCode),
		DeviceTime: optString(p.DeviceTime), ClockOffsetSeconds: p.ClockOffsetSeconds, Source: p.Source,
		ExternalID: p.ExternalID, Raw: p.Raw, Deduplicated: p.Folded, EventID: p.EventID, ReleasedAt: optTime(p.ReleasedAt),
	}
}

// rejectedView is a punch record held back, as /v1/attendance/rejected shows it.
type rejectedView struct {
	ID          string                  `json:"id"`
	Object      string                  `json:"object"`
	Reason      string                  `json:"reason"`
	Message     string                  `json:"message"`
	Releasable  bool                    `json:"releasable"`
	Timestamp   *string                 `json:"timestamp"`
	LocalTime   *string                 `json:"local_time"`
	ReceivedAt  string                  `json:"received_at"`
	Device      attendance.DeviceRef    `json:"device"`
	Employee    *attendance.EmployeeRef `json:"employee"`
	BadgeNumber string                  `json:"badge_number"`
	State       *int                    `json:"state"`
	Verify      *string                 `json:"verify"`
	Method      string                  `json:"method"`
	DeviceTime  *string                 `json:"device_time"`
	Source      string                  `json:"source"`
	ExternalID  *string                 `json:"external_id"`
	Raw         string                  `json:"raw"`
}

func viewRejected(p attendance.Punch) rejectedView {
	v := rejectedView{
		ID: p.ID, Object: "rejected_punch", Reason: string(p.Reason), Message: p.Detail, Releasable: p.Reason.Releasable(),
		ReceivedAt: event.FormatTime(p.ReceivedAt), Device: p.Device, Employee: p.Employee, BadgeNumber: p.BadgeNumber,
		State: p.State, Verify: optString(p.Verify), Method: string(p.Method), DeviceTime: optString(p.DeviceTime),
		Source: p.Source, ExternalID: p.ExternalID, Raw: p.Raw, LocalTime: optString(p.LocalTime),
	}
	if !p.Time.IsZero() {
		t := event.FormatTime(p.Time)
		v.Timestamp = &t
	}
	return v
}

// punchRecordView renders a punch record under the view of its status.
func punchRecordView(p attendance.Punch) any {
	if p.Status == attendance.PunchRejected {
		return viewRejected(p)
	}
	return viewPunch(p)
}

type deviceUserView struct {
	Object      string  `json:"object"`
	PIN         string  `json:"pin"`
	Name        string  `json:"name"`
	Privilege   *int    `json:"privilege"`
	Card        *string `json:"card"`
	HasPassword bool    `json:"has_password"`
	Group       *string `json:"group"`
	Templates   int     `json:"templates"`
	EmployeeID  *string `json:"employee_id"`
	UpdatedAt   string  `json:"updated_at"`
}

func viewDeviceUser(u attendance.DeviceUser) deviceUserView {
	return deviceUserView{
		Object: "device_user", PIN: u.PIN, Name: u.Name, Privilege: u.Privilege, Card: optString(u.Card),
		HasPassword: u.HasPassword, Group: optString(u.Group), Templates: u.Templates, EmployeeID: u.EmployeeID,
		UpdatedAt: formatTime(u.UpdatedAt),
	}
}

type deletedView struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Deleted bool   `json:"deleted"`
}

// one wraps a single object in the "data" envelope.
type one[T any] struct {
	Data T `json:"data"`
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func optTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := formatTime(t)
	return &s
}

// webhookView is a webhook endpoint. secret is null except when the
// webhook is created, its secret rotated, or revealed explicitly.
type webhookView struct {
	ID                      string              `json:"id"`
	Object                  string              `json:"object"`
	URL                     string              `json:"url"`
	Events                  []string            `json:"events"`
	Description             string              `json:"description"`
	Enabled                 bool                `json:"enabled"`
	DisabledReason          *string             `json:"disabled_reason"`
	Secret                  *string             `json:"secret"`
	PreviousSecretExpiresAt *string             `json:"previous_secret_expires_at"`
	Delivery                webhookDeliveryView `json:"delivery"`
	CreatedAt               string              `json:"created_at"`
	UpdatedAt               string              `json:"updated_at"`
}

// webhookDeliveryView is how delivery to an endpoint is going.
type webhookDeliveryView struct {
	State             string  `json:"state"` // healthy, failing or disabled
	FailingSince      *string `json:"failing_since"`
	LastDeliveredAt   *string `json:"last_delivered_at"`
	PendingDeliveries int     `json:"pending_deliveries"`
	NextAttemptAt     *string `json:"next_attempt_at"`
	RetryAfter        *string `json:"retry_after"`
}

func viewWebhook(w attendance.Webhook, st store.WebhookStats, withSecret bool) webhookView {
	v := webhookView{
		ID: w.ID, Object: "webhook", URL: w.URL, Events: w.Events, Description: w.Description, Enabled: w.Enabled,
		DisabledReason: optString(w.DisabledReason), PreviousSecretExpiresAt: optTime(w.PreviousSecretUntil),
		Delivery: webhookDeliveryView{
			State: w.State, FailingSince: optTime(w.FailingSince), LastDeliveredAt: optTime(w.LastDeliveredAt),
			PendingDeliveries: st.Pending, NextAttemptAt: optTime(st.NextAttemptAt), RetryAfter: optTime(w.NotBefore),
		},
		CreatedAt: formatTime(w.CreatedAt), UpdatedAt: formatTime(w.UpdatedAt),
	}
	if !w.Enabled {
		v.Delivery.State = "disabled"
	}
	if w.PreviousSecret == "" {
		v.PreviousSecretExpiresAt = nil
	}
	if withSecret {
		v.Secret = &w.Secret
	}
	if v.Events == nil {
		v.Events = []string{}
	}
	return v
}

// deliveryView is one event on its way to one endpoint, with its attempts.
type deliveryView struct {
	ID             string        `json:"id"`
	Object         string        `json:"object"`
	EventID        string        `json:"event_id"`
	EventType      string        `json:"event_type"`
	WebhookID      string        `json:"webhook_id"`
	Status         string        `json:"status"`
	Isolated       bool          `json:"isolated"`
	Source         string        `json:"source"`
	AttemptCount   int           `json:"attempt_count"`
	NextAttemptAt  *string       `json:"next_attempt_at"`
	LastAttemptAt  *string       `json:"last_attempt_at"`
	LastStatusCode *int          `json:"last_status_code"`
	LastError      *string       `json:"last_error"`
	DeliveredAt    *string       `json:"delivered_at"`
	FailedAt       *string       `json:"failed_at"`
	Attempts       []attemptView `json:"attempts"`
	CreatedAt      string        `json:"created_at"`
}

// attemptView is one try at sending a delivery.
type attemptView struct {
	Attempt         int     `json:"attempt"`
	StartedAt       string  `json:"started_at"`
	DurationMS      float64 `json:"duration_ms"`
	StatusCode      *int    `json:"status_code"`
	ResponseExcerpt string  `json:"response_excerpt"`
	Error           *string `json:"error"`
	NextAttemptAt   *string `json:"next_attempt_at"`
}

func optInt(n int) *int {
	if n == 0 {
		return nil
	}
	return &n
}

func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func viewDelivery(d attendance.Delivery) deliveryView {
	v := deliveryView{
		ID: d.ID, Object: "delivery", EventID: d.EventID, EventType: d.EventType, WebhookID: d.WebhookID, Status: d.Status,
		Isolated: d.Isolated, Source: d.Source, AttemptCount: d.Attempts, NextAttemptAt: optTime(d.NextAttemptAt),
		LastAttemptAt: optTime(d.LastAttemptAt), LastStatusCode: optInt(d.LastStatusCode), LastError: optString(d.LastError),
		DeliveredAt: optTime(d.DeliveredAt), FailedAt: optTime(d.FailedAt), Attempts: make([]attemptView, 0, len(d.AttemptLog)), CreatedAt: formatTime(d.CreatedAt),
	}
	for _, a := range d.AttemptLog {
		v.Attempts = append(v.Attempts, attemptView{
			Attempt: a.Attempt, StartedAt: event.FormatTime(a.StartedAt), DurationMS: millis(a.Duration), StatusCode: optInt(a.StatusCode),
			ResponseExcerpt: a.ResponseExcerpt, Error: optString(a.Error), NextAttemptAt: optTime(a.NextAttemptAt),
		})
	}
	return v
}

// testView is what POST /v1/webhooks/{id}/test saw.
type testView struct {
	Object          string  `json:"object"`
	WebhookID       string  `json:"webhook_id"`
	EventID         string  `json:"event_id"`
	Delivered       bool    `json:"delivered"`
	StatusCode      *int    `json:"status_code"`
	DurationMS      float64 `json:"duration_ms"`
	ResponseExcerpt string  `json:"response_excerpt"`
	Error           *string `json:"error"`
}

func viewTest(w attendance.Webhook, eventID string, r delivery.Result) testView {
	return testView{
		Object: "webhook_test", WebhookID: w.ID, EventID: eventID, Delivered: r.OK(), StatusCode: optInt(r.StatusCode),
		DurationMS: millis(r.Duration), ResponseExcerpt: r.Excerpt, Error: optString(r.Err),
	}
}

type retryView struct {
	Object    string `json:"object"`
	WebhookID string `json:"webhook_id"`
	Requeued  int    `json:"requeued"`
	Since     string `json:"since"`
}

// replayView is a replay job and its progress.
type replayView struct {
	ID         string             `json:"id"`
	Object     string             `json:"object"`
	WebhookID  string             `json:"webhook_id"`
	Start      string             `json:"start"`
	End        string             `json:"end"`
	EventTypes []string           `json:"event_types"`
	Status     string             `json:"status"`
	Progress   replayProgressView `json:"progress"`
	CreatedAt  string             `json:"created_at"`
	FinishedAt *string            `json:"finished_at"`
}

type replayProgressView struct {
	Total    int `json:"total"`
	Enqueued int `json:"enqueued"`
}

func viewReplay(r attendance.Replay) replayView {
	v := replayView{
		ID: r.ID, Object: "replay", WebhookID: r.WebhookID, Start: event.FormatTime(r.Start), End: event.FormatTime(r.End),
		EventTypes: r.EventTypes, Status: r.Status, Progress: replayProgressView{Total: r.Total, Enqueued: r.Enqueued},
		CreatedAt: formatTime(r.CreatedAt), FinishedAt: optTime(r.FinishedAt),
	}
	if v.EventTypes == nil {
		v.EventTypes = []string{}
	}
	return v
}

// eventView is a recorded event; data is the body webhooks receive (its
// metadata.delivery_attempt is set per attempt when sent).
type eventView struct {
	ID         string          `json:"id"`
	Object     string          `json:"object"`
	Type       string          `json:"type"`
	CreatedAt  string          `json:"created_at"`
	DeviceID   *string         `json:"device_id"`
	EmployeeID *string         `json:"employee_id"`
	PunchID    *string         `json:"punch_id"`
	Data       json.RawMessage `json:"data"`
}

func viewEvent(e attendance.Event) eventView {
	return eventView{
		ID: e.ID, Object: "event", Type: e.Type, CreatedAt: event.FormatTime(e.CreatedAt), DeviceID: optString(e.DeviceID),
		EmployeeID: optString(e.EmployeeID), PunchID: optString(e.PunchID), Data: json.RawMessage(e.Payload),
	}
}
