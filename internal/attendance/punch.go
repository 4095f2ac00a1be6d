package attendance

import "time"

// Direction is whether a punch enters or leaves.
type Direction string

// The directions.
const (
	In  Direction = "in"
	Out Direction = "out"
)

// DirectionSource says where a punch's direction came from.
type DirectionSource string

// Direction sources: the device's punch-state key, our inference rules, or
// the client that posted the punch.
const (
	DirectionFromDevice   DirectionSource = "device"
	DirectionFromRule     DirectionSource = "inferred"
	DirectionFromClient   DirectionSource = "client"
	DirectionFromFallback DirectionSource = "inferred_no_state"
)

// Method is how the employee proved who they are.
type Method string

// The methods a punch reports.
const (
	MethodFingerprint Method = "fingerprint"
	MethodFace        Method = "face"
	MethodCard        Method = "card"
	MethodPassword    Method = "password"
	MethodPIN         Method = "pin"
	MethodPalm        Method = "palm"
	MethodFingerVein  Method = "finger_vein"
	MethodOther       Method = "other"
	MethodUnknown     Method = "unknown"
)

// Methods lists the valid methods.
var Methods = []Method{MethodFingerprint, MethodFace, MethodCard, MethodPassword, MethodPIN, MethodPalm, MethodFingerVein, MethodOther, MethodUnknown}

// PunchStatus says whether a punch record was delivered or held back.
type PunchStatus string

// Punch statuses.
const (
	PunchAccepted PunchStatus = "accepted"
	PunchRejected PunchStatus = "rejected"
)

// Reason is why a punch record was held back (PRODUCT.md §4).
type Reason string

// Rejection reasons.
const (
	ReasonMalformed         Reason = "malformed"
	ReasonTimeTooOld        Reason = "time_too_old"
	ReasonTimeInFuture      Reason = "time_in_future"
	ReasonUnregisteredBadge Reason = "unregistered_badge"
	ReasonInactiveEmployee  Reason = "inactive_employee"
	ReasonDuplicateWindow   Reason = "duplicate_window"
)

// Reasons lists the rejection reasons.
var Reasons = []Reason{ReasonMalformed, ReasonTimeTooOld, ReasonTimeInFuture, ReasonUnregisteredBadge, ReasonInactiveEmployee, ReasonDuplicateWindow}

// Releasable reports whether a record held back for reason may be released
// by hand: a malformed record has no time to release.
func (r Reason) Releasable() bool { return r != ReasonMalformed }

// VerifyCodes names the family of verify codes a device's firmware uses
// (the reference's §6.1): newer ZKTeco firmware, or older/USA firmware.
type VerifyCodes string

// The verify-code families.
const (
	VerifyStandard VerifyCodes = "standard"
	VerifyLegacy   VerifyCodes = "legacy"
)

// TimezoneFormat is how the TimeZone option is written for a device.
type TimezoneFormat string

// TimeZone option formats: whole hours, or minutes when the offset is not a
// whole hour (ZKTeco's document); or ±hh:mm (ZKTeco USA firmware).
const (
	TimezoneHours TimezoneFormat = "hours"
	TimezoneHHMM  TimezoneFormat = "hh:mm"
)

// Source says how a punch reached us.
const (
	SourcePush = "push" // a time clock speaking ZKTeco PUSH
	SourceAPI  = "api"  // POST /v1/punches
)

// Punch is one punch record: accepted (delivered as an event) or rejected
// (held back with a reason).
type Punch struct {
	ID          string
	AccountID   string
	DeviceID    string
	EmployeeID  *string
	BadgeNumber string
	Status      PunchStatus
	Reason      Reason // "" when accepted
	Detail      string // a sentence about the reason
	// Time is the true instant of the punch (UTC, clock offset applied);
	// zero for a malformed record.
	Time               time.Time
	DeviceTime         string // what the device's clock showed, as sent
	LocalTime          string // Time in the device's zone, RFC 3339 with offset
	LocalDate          int    // YYYYMMDD of LocalTime
	WorkDate           int    // YYYYMMDD of the attendance day (day_start applied)
	ClockOffsetSeconds int    // the device clock offset that was applied
	ReceivedAt         time.Time
	Direction          Direction
	DirectionSource    DirectionSource
	State              *int   // the device's punch-state key, raw
	Verify             string // the device's verify code, raw
	Method             Method
	Confidence         *float64
	WorkCode           string
	Source             string
	ExternalID         *string
	Raw                string
	DedupKey           string
	Folded             bool // raw duplicates were folded into this punch
	EventID            *string
	ReleasedAt         time.Time
	CreatedAt          time.Time

	// Read with the punch, for views.
	Device   DeviceRef
	Employee *EmployeeRef
}

// DeviceRef is what a punch or event says of its device.
type DeviceRef struct {
	ID           string `json:"id"`
	SerialNumber string `json:"serial_number"`
	Name         string `json:"name"`
	Site         string `json:"site"`
}

// EmployeeRef is what a punch or event says of its employee.
type EmployeeRef struct {
	ID          string `json:"id"`
	BadgeNumber string `json:"badge_number"`
	Name        string `json:"name"`
}

// DateInt encodes a calendar date as YYYYMMDD.
func DateInt(t time.Time) int { return t.Year()*10000 + int(t.Month())*100 + t.Day() }

// Event types.
const (
	EventAttendancePunch     = "attendance.punch"
	EventDeviceStatus        = "device.status"
	EventDeviceLogNearlyFull = "device.log_nearly_full"
)

// Event is something that happened, recorded in the same transaction as its
// cause and delivered to webhooks. Payload is the JSON body receivers get
// (without metadata.delivery_attempt, which each attempt fills in).
type Event struct {
	Seq        int64
	ID         string
	AccountID  string
	Type       string
	CreatedAt  time.Time
	DeviceID   string
	EmployeeID string
	PunchID    string
	Payload    []byte
}
