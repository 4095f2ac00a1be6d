package attendance

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// DeviceInput is a create or update of a device. Only Set fields change.
type DeviceInput struct {
	SerialNumber       Field[string]
	Name               Field[string]
	Site               Field[string]
	Timezone           Field[string]
	DirectionMode      Field[*DirectionMode] // Set with nil: follow the account setting
	VerifyCodes        Field[string]
	TimezoneFormat     Field[string]
	DedupWindowSeconds Field[*int] // Set with nil: follow the account setting
	AllowedCIDRs       Field[[]string]
	CommKey            Field[*string] // Set with nil: no key
}

// Limits of the device access settings.
const (
	MaxAllowedCIDRs  = 50
	MaxCommKeyLength = 64
)

// Validate checks and normalizes the input. On create, serial_number is required.
func (in *DeviceInput) Validate(create bool) error {
	if create && !in.SerialNumber.Set {
		return Errorf(CodeMissingParameter, "serial_number", "serial_number is required: it is printed on the device and sent as SN= by its firmware.")
	}
	if in.SerialNumber.Set {
		s, err := NormalizeSerial("serial_number", in.SerialNumber.Value)
		if err != nil {
			return err
		}
		in.SerialNumber.Value = s
	}
	if in.Name.Set {
		if err := ValidateText("name", in.Name.Value, MaxNameLength); err != nil {
			return err
		}
	}
	if in.Site.Set {
		if err := ValidateText("site", in.Site.Value, MaxSiteLength); err != nil {
			return err
		}
	}
	if in.Timezone.Set {
		if _, err := LoadTimezone("timezone", in.Timezone.Value); err != nil {
			return err
		}
	}
	if in.DirectionMode.Set && in.DirectionMode.Value != nil {
		if _, err := ParseDirectionMode("direction_mode", string(*in.DirectionMode.Value)); err != nil {
			return err
		}
	}
	if in.VerifyCodes.Set && in.VerifyCodes.Value != string(VerifyStandard) && in.VerifyCodes.Value != string(VerifyLegacy) {
		return Errorf(CodeInvalidParameter, "verify_codes", "verify_codes must be \"standard\" (newer ZKTeco firmware: 1 fingerprint, 4 card, 15 face) or \"legacy\" (older and USA firmware: 0 password, 1 fingerprint, 2 card).")
	}
	if in.TimezoneFormat.Set && in.TimezoneFormat.Value != string(TimezoneHours) && in.TimezoneFormat.Value != string(TimezoneHHMM) {
		return Errorf(CodeInvalidParameter, "timezone_format", "timezone_format must be \"hours\" (TimeZone=8, or minutes such as 330 for +05:30) or \"hh:mm\" (TimeZone=+05:30, ZKTeco USA firmware).")
	}
	if in.DedupWindowSeconds.Set && in.DedupWindowSeconds.Value != nil {
		if v := *in.DedupWindowSeconds.Value; v < 0 || v > MaxDedupWindowSeconds {
			return Errorf(CodeInvalidParameter, "dedup_window_seconds", "dedup_window_seconds must be between 0 (off) and %d, or null to follow the account setting.", MaxDedupWindowSeconds)
		}
	}
	if in.AllowedCIDRs.Set {
		cidrs, err := NormalizeCIDRs("allowed_source_cidrs", in.AllowedCIDRs.Value)
		if err != nil {
			return err
		}
		in.AllowedCIDRs.Value = cidrs
	}
	if in.CommKey.Set && in.CommKey.Value != nil {
		k := *in.CommKey.Value
		if k == "" || len(k) > MaxCommKeyLength || strings.IndexFunc(k, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0 {
			return Errorf(CodeInvalidParameter, "comm_key", "comm_key must be 1 to %d printable characters without spaces, as set on the device (PushComKey); null removes it.", MaxCommKeyLength)
		}
	}
	return nil
}

// NormalizeCIDRs validates source-address ranges ("10.0.0.0/8", or a single
// address) and returns them in canonical form.
func NormalizeCIDRs(param string, in []string) ([]string, error) {
	if len(in) > MaxAllowedCIDRs {
		return nil, Errorf(CodeInvalidParameter, param, "%s holds at most %d ranges.", param, MaxAllowedCIDRs)
	}
	out := make([]string, 0, len(in))
	for _, s := range in {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked().String())
			continue
		}
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, netip.PrefixFrom(a, a.BitLen()).String())
			continue
		}
		return nil, Errorf(CodeInvalidParameter, param, "%q is not an address range such as \"203.0.113.0/24\" or an address such as \"203.0.113.7\".", s)
	}
	return out, nil
}

// Apply copies the set fields onto d.
func (in *DeviceInput) Apply(d *Device) {
	if in.SerialNumber.Set {
		d.SerialNumber = in.SerialNumber.Value
	}
	if in.Name.Set {
		d.Name = in.Name.Value
	}
	if in.Site.Set {
		d.Site = in.Site.Value
	}
	if in.Timezone.Set {
		d.Timezone = in.Timezone.Value
	}
	if in.DirectionMode.Set {
		d.DirectionMode = in.DirectionMode.Value
	}
	if in.VerifyCodes.Set {
		d.VerifyCodes = VerifyCodes(in.VerifyCodes.Value)
	}
	if in.TimezoneFormat.Set {
		d.TimezoneFormat = TimezoneFormat(in.TimezoneFormat.Value)
	}
	if in.DedupWindowSeconds.Set {
		d.DedupWindowSeconds = in.DedupWindowSeconds.Value
	}
	if in.AllowedCIDRs.Set {
		d.AllowedCIDRs = in.AllowedCIDRs.Value
	}
	if in.CommKey.Set {
		d.CommKey = ""
		if in.CommKey.Value != nil {
			d.CommKey = *in.CommKey.Value
		}
	}
}

// EmployeeInput is a create, update or upsert of an employee.
type EmployeeInput struct {
	BadgeNumber Field[string]
	Name        Field[string]
	ExternalID  Field[*string]
	Email       Field[*string]
	Department  Field[*string]
	CardNumber  Field[*string]
	Active      Field[bool]
	Metadata    Field[map[string]string]
}

// Validate checks the input. On create, badge_number is required.
func (in *EmployeeInput) Validate(create bool) error {
	if create && !in.BadgeNumber.Set {
		return Errorf(CodeMissingParameter, "badge_number", "badge_number is required: it is the PIN the employee is enrolled under on the devices.")
	}
	if in.BadgeNumber.Set {
		if err := ValidateBadge("badge_number", in.BadgeNumber.Value); err != nil {
			return err
		}
	}
	if in.Name.Set {
		if err := ValidateText("name", in.Name.Value, MaxNameLength); err != nil {
			return err
		}
	}
	for _, f := range []struct {
		param string
		field Field[*string]
		max   int
	}{
		{"external_id", in.ExternalID, MaxExternalIDLength},
		{"department", in.Department, MaxDepartmentLength},
		{"card_number", in.CardNumber, MaxCardNumberLength},
	} {
		if f.field.Set && f.field.Value != nil {
			if *f.field.Value == "" {
				return Errorf(CodeInvalidParameter, f.param, "%s must not be empty; send null to clear it.", f.param)
			}
			if err := ValidateText(f.param, *f.field.Value, f.max); err != nil {
				return err
			}
		}
	}
	if in.Email.Set && in.Email.Value != nil {
		if err := ValidateEmail("email", *in.Email.Value); err != nil {
			return err
		}
	}
	if in.Metadata.Set {
		if err := ValidateMetadata("metadata", in.Metadata.Value); err != nil {
			return err
		}
	}
	return nil
}

// Apply copies the set fields onto e.
func (in *EmployeeInput) Apply(e *Employee) {
	if in.BadgeNumber.Set {
		e.BadgeNumber = in.BadgeNumber.Value
	}
	if in.Name.Set {
		e.Name = in.Name.Value
	}
	if in.ExternalID.Set {
		e.ExternalID = in.ExternalID.Value
	}
	if in.Email.Set {
		e.Email = in.Email.Value
	}
	if in.Department.Set {
		e.Department = in.Department.Value
	}
	if in.CardNumber.Set {
		e.CardNumber = in.CardNumber.Value
	}
	if in.Active.Set {
		e.Active = in.Active.Value
	}
	if in.Metadata.Set {
		e.Metadata = in.Metadata.Value
	}
}

// SettingsInput is an update of the account settings.
type SettingsInput struct {
	Timezone            Field[string]
	DirectionMode       Field[string]
	DayStart            Field[string]
	DedupWindowSeconds  Field[int]
	EarliestPunchDate   Field[string]
	MaxPunchAgeDays     Field[int]
	MaxPunchFutureHours Field[int]
	AutoSyncEmployees   Field[bool]
}

// ApplyTo validates the input and applies it to s.
func (in *SettingsInput) ApplyTo(s *Settings) error {
	if in.Timezone.Set {
		if _, err := LoadTimezone("timezone", in.Timezone.Value); err != nil {
			return err
		}
		s.Timezone = in.Timezone.Value
	}
	if in.DirectionMode.Set {
		m, err := ParseDirectionMode("direction_mode", in.DirectionMode.Value)
		if err != nil {
			return err
		}
		s.DirectionMode = m
	}
	if in.DayStart.Set {
		m, err := ParseDayStart("day_start", in.DayStart.Value)
		if err != nil {
			return err
		}
		s.DayStartMinutes = m
	}
	if in.DedupWindowSeconds.Set {
		v := in.DedupWindowSeconds.Value
		if v < 0 || v > MaxDedupWindowSeconds {
			return Errorf(CodeInvalidParameter, "dedup_window_seconds", "dedup_window_seconds must be between 0 (off) and %d.", MaxDedupWindowSeconds)
		}
		s.DedupWindowSeconds = v
	}
	if in.EarliestPunchDate.Set {
		d, err := time.Parse(time.DateOnly, in.EarliestPunchDate.Value)
		if err != nil || d.Year() < 1970 {
			return Errorf(CodeInvalidParameter, "earliest_punch_date", "earliest_punch_date must be a date such as \"2000-01-02\", after 1970.")
		}
		s.EarliestPunchDate = DateInt(d)
	}
	if in.MaxPunchAgeDays.Set {
		if v := in.MaxPunchAgeDays.Value; v < 1 || v > 3650 {
			return Errorf(CodeInvalidParameter, "max_punch_age_days", "max_punch_age_days must be between 1 and 3650.")
		}
		s.MaxPunchAgeDays = in.MaxPunchAgeDays.Value
	}
	if in.MaxPunchFutureHours.Set {
		if v := in.MaxPunchFutureHours.Value; v < 1 || v > 8760 {
			return Errorf(CodeInvalidParameter, "max_punch_future_hours", "max_punch_future_hours must be between 1 and 8760.")
		}
		s.MaxPunchFutureHours = in.MaxPunchFutureHours.Value
	}
	if in.AutoSyncEmployees.Set {
		s.AutoSyncEmployees = in.AutoSyncEmployees.Value
	}
	return nil
}

// FormatDateInt renders a YYYYMMDD date as "YYYY-MM-DD".
func FormatDateInt(d int) string {
	return fmt.Sprintf("%04d-%02d-%02d", d/10000, d/100%100, d%100)
}
