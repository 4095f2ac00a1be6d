package attendance

import "time"

// DirectionMode says how a punch's in/out direction is decided (PRODUCT.md §4).
type DirectionMode string

// The direction modes. FirstInLastOut is the account default.
const (
	DirectionDevice         DirectionMode = "device"
	DirectionFirstInLastOut DirectionMode = "first_in_last_out"
	DirectionAlternating    DirectionMode = "alternating"
)

// DirectionModes lists the valid modes in documentation order.
var DirectionModes = []DirectionMode{DirectionDevice, DirectionFirstInLastOut, DirectionAlternating}

// DeviceStatus is what we know of a device's connection.
type DeviceStatus string

// Device statuses. A device is pending until its first contact.
const (
	DeviceStatusPending DeviceStatus = "pending"
	DeviceStatusOnline  DeviceStatus = "online"
	DeviceStatusOffline DeviceStatus = "offline"
)

// DeviceStatuses lists the valid statuses.
var DeviceStatuses = []DeviceStatus{DeviceStatusPending, DeviceStatusOnline, DeviceStatusOffline}

// Account is one customer: everything else belongs to exactly one account.
type Account struct {
	ID        string
	Name      string
	Email     string
	Settings  Settings
	CreatedAt time.Time
}

// Settings are the account-wide normalization rules (PRODUCT.md §4, §8).
type Settings struct {
	Timezone           string
	DirectionMode      DirectionMode
	DayStartMinutes    int // minutes after local midnight at which the attendance day starts
	DedupWindowSeconds int
}

// Defaults for new accounts.
const (
	DefaultTimezone           = "UTC"
	DefaultDirectionMode      = DirectionFirstInLastOut
	DefaultDedupWindowSeconds = 60
	MaxDedupWindowSeconds     = 3600
)

// DefaultSettings are the settings of a new account.
func DefaultSettings() Settings {
	return Settings{
		Timezone:           DefaultTimezone,
		DirectionMode:      DefaultDirectionMode,
		DedupWindowSeconds: DefaultDedupWindowSeconds,
	}
}

// Device is a registered time clock. SerialNumber is unique across all accounts.
type Device struct {
	ID            string
	AccountID     string
	SerialNumber  string
	Name          string
	Site          string
	Timezone      string
	DirectionMode *DirectionMode // nil: the account's setting applies
	Status        DeviceStatus
	LastSeenAt    time.Time // zero: never seen
	// ClockOffsetSeconds is device clock minus true time; nil until estimated.
	ClockOffsetSeconds *int
	Firmware           string
	CreatedAt          time.Time
	UpdatedAt          time.Time
}

// Employee is a person who punches. BadgeNumber is the PIN the devices know,
// unique per account and kept exactly as given ("016" is not "16").
type Employee struct {
	ID          string
	AccountID   string
	BadgeNumber string
	Name        string
	ExternalID  *string
	Email       *string
	Department  *string
	CardNumber  *string
	Active      bool
	Metadata    map[string]string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Field is an input value that may be absent: PATCH changes only the fields
// that are Set.
type Field[T any] struct {
	Set   bool
	Value T
}

// Some returns a set Field.
func Some[T any](v T) Field[T] { return Field[T]{Set: true, Value: v} }
