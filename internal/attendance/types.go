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
	// Bad-time rules: punches before EarliestPunchDate (YYYYMMDD), more than
	// MaxPunchAgeDays before receipt, or more than MaxPunchFutureHours after
	// it are held back.
	EarliestPunchDate   int
	MaxPunchAgeDays     int
	MaxPunchFutureHours int
	// AutoSyncEmployees: employee changes made through the API are sent to
	// every device of the account.
	AutoSyncEmployees bool
}

// Defaults for new accounts.
const (
	DefaultTimezone            = "UTC"
	DefaultDirectionMode       = DirectionFirstInLastOut
	DefaultDedupWindowSeconds  = 60
	MaxDedupWindowSeconds      = 3600
	DefaultEarliestPunchDate   = 20000102
	DefaultMaxPunchAgeDays     = 400
	DefaultMaxPunchFutureHours = 24
)

// DefaultSettings are the settings of a new account.
func DefaultSettings() Settings {
	return Settings{
		Timezone:            DefaultTimezone,
		DirectionMode:       DefaultDirectionMode,
		DedupWindowSeconds:  DefaultDedupWindowSeconds,
		EarliestPunchDate:   DefaultEarliestPunchDate,
		MaxPunchAgeDays:     DefaultMaxPunchAgeDays,
		MaxPunchFutureHours: DefaultMaxPunchFutureHours,
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

	// Settings of ingest for this device.
	VerifyCodes        VerifyCodes
	TimezoneFormat     TimezoneFormat
	DedupWindowSeconds *int     // nil: the account's setting applies
	AllowedCIDRs       []string // empty: any source address
	CommKey            string   // "": no key required

	// What the gateway has learned.
	Protocol        string // "", "attendance" or "security" (ZKTeco PUSH 2.x / 3.x)
	PushVersion     string
	Language        string
	IPAddress       string
	CompleteThrough time.Time // records up to here are known to be uploaded
	Counts          DeviceCounts

	// Gateway bookkeeping, not shown.
	RegistryCode    string
	TZOffsetSent    *int // minutes east of UTC last sent as TimeZone
	TZCheckAt       time.Time
	ClockSamples    []float64
	LastHeartbeatAt time.Time
	OnlineSince     time.Time // start of the current stretch online
	LastBacklogAt   time.Time
	LogWarned       bool
	Stamps          map[string]string
}

// DeviceCounts are what a device reports of its memory; nil until reported.
type DeviceCounts struct {
	Users        *int
	Fingerprints *int
	Faces        *int
	Logs         *int
	LogCapacity  *int
}

// DedupWindow is the duplicate window that applies to punches of d.
func (d *Device) DedupWindow(s Settings) time.Duration {
	if d.DedupWindowSeconds != nil {
		return time.Duration(*d.DedupWindowSeconds) * time.Second
	}
	return time.Duration(s.DedupWindowSeconds) * time.Second
}

// Direction is the direction mode that applies to punches of d.
func (d *Device) Direction(s Settings) DirectionMode {
	if d.DirectionMode != nil {
		return *d.DirectionMode
	}
	return s.DirectionMode
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
