package attendance

import "time"

// DeviceUser is a user record a device reported (OPERLOG USER lines, Security
// PUSH user tables): what the device itself knows, which may differ from the
// account's employees.
type DeviceUser struct {
	DeviceID    string
	PIN         string
	Name        string
	NameRaw     []byte // the bytes the device sent, before decoding
	Privilege   *int
	Card        string
	HasPassword bool
	Group       string
	Templates   int // biometric templates reported for this user (not kept)
	UpdatedAt   time.Time
	EmployeeID  *string // the account's employee with this badge number, if any
}

// UnclaimedDevice is a serial number that reached the gateway without any
// account having registered it. Only the operator sees these.
type UnclaimedDevice struct {
	SerialNumber string
	FirstSeenAt  time.Time
	LastSeenAt   time.Time
	LastIP       string
	Requests     int // contacts recorded: at most one a minute is counted
	PushVersion  string
	DeviceType   string
	HeldUploads  int
	HeldBytes    int64
}

// HeldUpload is an upload from an unclaimed serial, kept until an account
// registers that serial.
type HeldUpload struct {
	ID           int64
	SerialNumber string
	Kind         string
	Query        string
	Body         []byte
	RemoteIP     string
	ReceivedAt   time.Time
}
