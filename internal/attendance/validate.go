package attendance

import (
	"fmt"
	"net/mail"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // IANA zones even on machines without /usr/share/zoneinfo
	"unicode"
	"unicode/utf8"
)

// Limits on stored strings. They are generous for humans and small enough
// that no request can make a row huge.
const (
	MaxNameLength        = 100
	MaxSiteLength        = 100
	MaxSerialLength      = 64
	MaxBadgeLength       = 24
	MaxExternalIDLength  = 255
	MaxEmailLength       = 254
	MaxDepartmentLength  = 100
	MaxCardNumberLength  = 32
	MaxMetadataKeys      = 50
	MaxMetadataKeyLength = 40
	MaxMetadataValLength = 500
)

// LoadTimezone validates an IANA zone name such as "Europe/Paris".
func LoadTimezone(param, name string) (*time.Location, error) {
	if name == "" || name == "Local" || strings.TrimSpace(name) != name {
		return nil, Errorf(CodeInvalidTimezone, param,
			"%q is not an IANA time zone name; use a name such as \"Europe/Paris\", \"Asia/Kolkata\" or \"UTC\".", name)
	}
	loc, err := Location(name)
	if err != nil {
		return nil, Errorf(CodeInvalidTimezone, param,
			"%q is not an IANA time zone name; use a name such as \"Europe/Paris\", \"Asia/Kolkata\" or \"UTC\".", name)
	}
	return loc, nil
}

// locations caches the zones Location loaded: time.LoadLocation reads and
// parses the zone's file on every call, and every device request needs its
// device's zone. Only valid names are kept, so the cache is bounded by the
// zone database (some 600 names).
var locations sync.Map // name → *time.Location

// Location is time.LoadLocation, cached.
func Location(name string) (*time.Location, error) {
	if loc, ok := locations.Load(name); ok {
		return loc.(*time.Location), nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	locations.Store(name, loc)
	return loc, nil
}

// NormalizeSerial returns the canonical form of a device serial number:
// trimmed and upper-case, as ZKTeco devices print and send it.
func NormalizeSerial(param, s string) (string, error) {
	s = strings.ToUpper(strings.TrimSpace(s))
	if s == "" {
		return "", Errorf(CodeInvalidParameter, param, "serial_number must not be empty.")
	}
	if len(s) > MaxSerialLength {
		return "", Errorf(CodeInvalidParameter, param, "serial_number must be at most %d characters.", MaxSerialLength)
	}
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return "", Errorf(CodeInvalidParameter, param,
				"serial_number may contain only letters, digits, '-', '_' and '.'; found %q.", r)
		}
	}
	return s, nil
}

// ValidateBadge checks a badge number (the device PIN). It is kept exactly as
// given: leading zeros matter.
func ValidateBadge(param, s string) error {
	if s == "" {
		return Errorf(CodeInvalidParameter, param, "badge_number must not be empty.")
	}
	if len(s) > MaxBadgeLength {
		return Errorf(CodeInvalidParameter, param, "badge_number must be at most %d characters.", MaxBadgeLength)
	}
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return Errorf(CodeInvalidParameter, param,
				"badge_number may contain only letters and digits, as device PINs do; found %q.", r)
		}
	}
	return nil
}

// ValidateText checks a free-text field: valid UTF-8, no control characters
// (they break device protocols and CSV exports), at most max characters.
func ValidateText(param, s string, max int) error {
	if !utf8.ValidString(s) {
		return Errorf(CodeInvalidParameter, param, "%s must be valid UTF-8.", param)
	}
	if n := utf8.RuneCountInString(s); n > max {
		return Errorf(CodeInvalidParameter, param, "%s must be at most %d characters; it has %d.", param, max, n)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return Errorf(CodeInvalidParameter, param, "%s must not contain control characters such as tabs or line breaks.", param)
		}
	}
	return nil
}

// ValidateEmail checks a bare e-mail address such as "hr@example.com".
func ValidateEmail(param, s string) error {
	if len(s) > MaxEmailLength {
		return Errorf(CodeInvalidParameter, param, "%s must be at most %d characters.", param, MaxEmailLength)
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return Errorf(CodeInvalidParameter, param, "%q is not an e-mail address such as \"hr@example.com\".", s)
	}
	return nil
}

// ParseDirectionMode validates a direction mode name.
func ParseDirectionMode(param, s string) (DirectionMode, error) {
	for _, m := range DirectionModes {
		if string(m) == s {
			return m, nil
		}
	}
	return "", Errorf(CodeInvalidParameter, param,
		"%q is not a direction mode; use one of \"device\", \"first_in_last_out\" or \"alternating\".", s)
}

// ParseDayStart parses "HH:MM" into minutes after midnight.
func ParseDayStart(param, s string) (int, error) {
	t, err := time.Parse("15:04", s)
	if err != nil || len(s) != 5 {
		return 0, Errorf(CodeInvalidParameter, param, "%q is not a time of day in the form \"HH:MM\", such as \"04:00\".", s)
	}
	return t.Hour()*60 + t.Minute(), nil
}

// FormatDayStart formats minutes after midnight as "HH:MM".
func FormatDayStart(minutes int) string {
	return fmt.Sprintf("%02d:%02d", minutes/60, minutes%60)
}

// ValidateMetadata checks a set of key-value pairs attached to an object.
func ValidateMetadata(param string, m map[string]string) error {
	if len(m) > MaxMetadataKeys {
		return Errorf(CodeInvalidParameter, param, "metadata may hold at most %d keys; it has %d.", MaxMetadataKeys, len(m))
	}
	for k, v := range m {
		if k == "" {
			return Errorf(CodeInvalidParameter, param, "metadata keys must not be empty.")
		}
		if err := ValidateText(param+"."+k, k, MaxMetadataKeyLength); err != nil {
			return Errorf(CodeInvalidParameter, param, "metadata key %q: keys are at most %d characters without control characters.", k, MaxMetadataKeyLength)
		}
		if err := ValidateText(param+"."+k, v, MaxMetadataValLength); err != nil {
			return err
		}
	}
	return nil
}
