package httpapi

import (
	"time"

	"github.com/punchconnect/punchconnect/internal/attendance"
)

// The JSON shapes of API objects. Field names are the contract; times are
// RFC 3339 in UTC; absent values are null, never omitted.

type deviceView struct {
	ID                 string  `json:"id"`
	Object             string  `json:"object"`
	SerialNumber       string  `json:"serial_number"`
	Name               string  `json:"name"`
	Site               string  `json:"site"`
	Timezone           string  `json:"timezone"`
	DirectionMode      *string `json:"direction_mode"`
	Status             string  `json:"status"`
	LastSeenAt         *string `json:"last_seen_at"`
	ClockOffsetSeconds *int    `json:"clock_offset_seconds"`
	Firmware           *string `json:"firmware"`
	CreatedAt          string  `json:"created_at"`
	UpdatedAt          string  `json:"updated_at"`
}

func viewDevice(d attendance.Device) deviceView {
	v := deviceView{
		ID: d.ID, Object: "device", SerialNumber: d.SerialNumber, Name: d.Name, Site: d.Site, Timezone: d.Timezone,
		Status: string(d.Status), LastSeenAt: optTime(d.LastSeenAt), ClockOffsetSeconds: d.ClockOffsetSeconds,
		CreatedAt: formatTime(d.CreatedAt), UpdatedAt: formatTime(d.UpdatedAt),
	}
	if d.DirectionMode != nil {
		m := string(*d.DirectionMode)
		v.DirectionMode = &m
	}
	if d.Firmware != "" {
		v.Firmware = &d.Firmware
	}
	return v
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
	Object             string `json:"object"`
	Timezone           string `json:"timezone"`
	DirectionMode      string `json:"direction_mode"`
	DayStart           string `json:"day_start"`
	DedupWindowSeconds int    `json:"dedup_window_seconds"`
}

func viewSettings(s attendance.Settings) settingsView {
	return settingsView{
		Object: "settings", Timezone: s.Timezone, DirectionMode: string(s.DirectionMode),
		DayStart: attendance.FormatDayStart(s.DayStartMinutes), DedupWindowSeconds: s.DedupWindowSeconds,
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
