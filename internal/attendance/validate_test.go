package attendance

import (
	"strings"
	"testing"
	"time"
)

func TestNormalizeSerial(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"BKRK233600045", "BKRK233600045", true},
		{" bkrk233600045\t", "BKRK233600045", true},
		{"CQZ-7232_26.0011", "CQZ-7232_26.0011", true},
		{"", "", false},
		{"   ", "", false},
		{"AB CD", "", false},
		{"AB\nCD", "", false},
		{"ÄBC", "", false},
		{strings.Repeat("A", MaxSerialLength), strings.Repeat("A", MaxSerialLength), true},
		{strings.Repeat("A", MaxSerialLength+1), "", false},
	} {
		got, err := NormalizeSerial("serial_number", tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("NormalizeSerial(%q) = %q, %v; want %q ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && ErrorCode(err) != CodeInvalidParameter {
			t.Errorf("NormalizeSerial(%q) code %s", tc.in, ErrorCode(err))
		}
	}
}

func TestValidateBadge(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"016", true}, {"1042", true}, {"A7", true}, {strings.Repeat("9", 24), true},
		{"", false}, {"10 42", false}, {"10-42", false}, {"1042\t", false}, {strings.Repeat("9", 25), false}, {"١٢", false},
	} {
		if err := ValidateBadge("badge_number", tc.in); (err == nil) != tc.ok {
			t.Errorf("ValidateBadge(%q) = %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}

func TestLoadTimezone(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"Europe/Paris", true}, {"Asia/Kolkata", true}, {"UTC", true}, {"America/Argentina/Buenos_Aires", true},
		{"", false}, {"Local", false}, {"Mars/Olympus", false}, {"+05:30", false}, {" Europe/Paris", false}, {"../../etc/passwd", false},
	} {
		_, err := LoadTimezone("timezone", tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("LoadTimezone(%q) = %v, want ok=%v", tc.in, err, tc.ok)
		}
		if err != nil && ErrorCode(err) != CodeInvalidTimezone {
			t.Errorf("LoadTimezone(%q) code %s", tc.in, ErrorCode(err))
		}
	}
}

func TestValidateText(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"Sarah Chen", true}, {"José Ñúñez", true}, {"王小明", true}, {strings.Repeat("é", 100), true},
		{strings.Repeat("é", 101), false}, {"a\tb", false}, {"a\nb", false}, {"a\x00b", false}, {"\xff", false},
	} {
		if err := ValidateText("name", tc.in, MaxNameLength); (err == nil) != tc.ok {
			t.Errorf("ValidateText(%q) = %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}

func TestValidateEmail(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"hr@example.com", true}, {"a.b+c@sub.example.co", true},
		{"", false}, {"hr", false}, {"Sarah <s@example.com>", false}, {" hr@example.com", false}, {"hr@", false},
	} {
		if err := ValidateEmail("email", tc.in); (err == nil) != tc.ok {
			t.Errorf("ValidateEmail(%q) = %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}

func TestDayStart(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
		ok   bool
	}{
		{"00:00", 0, true}, {"04:00", 240, true}, {"23:59", 1439, true},
		{"24:00", 0, false}, {"4:00", 0, false}, {"04:60", 0, false}, {"0400", 0, false}, {"", 0, false},
	} {
		got, err := ParseDayStart("day_start", tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseDayStart(%q) = %d, %v", tc.in, got, err)
		}
		if tc.ok && FormatDayStart(got) != tc.in {
			t.Errorf("FormatDayStart(%d) = %q, want %q", got, FormatDayStart(got), tc.in)
		}
	}
}

func TestSettingsApply(t *testing.T) {
	s := DefaultSettings()
	in := SettingsInput{DedupWindowSeconds: Some(0), DirectionMode: Some("device")}
	if err := in.ApplyTo(&s); err != nil || s.DedupWindowSeconds != 0 || s.DirectionMode != DirectionDevice || s.Timezone != "UTC" {
		t.Fatalf("ApplyTo = %+v, %v", s, err)
	}
	bad := SettingsInput{DedupWindowSeconds: Some(-1)}
	if err := bad.ApplyTo(&s); ErrorCode(err) != CodeInvalidParameter {
		t.Fatalf("negative window: %v", err)
	}
}

func TestEmployeeInput(t *testing.T) {
	empty := ""
	for _, tc := range []struct {
		name   string
		in     EmployeeInput
		create bool
		code   Code
	}{
		{"create needs a badge", EmployeeInput{Name: Some("x")}, true, CodeMissingParameter},
		{"update needs nothing", EmployeeInput{}, false, ""},
		{"empty external id", EmployeeInput{BadgeNumber: Some("1"), ExternalID: Some(&empty)}, true, CodeInvalidParameter},
		{"null external id", EmployeeInput{BadgeNumber: Some("1"), ExternalID: Some[*string](nil)}, true, ""},
		{"too much metadata", EmployeeInput{BadgeNumber: Some("1"), Metadata: Some(bigMap(51))}, true, CodeInvalidParameter},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ErrorCode(tc.in.Validate(tc.create)); got != tc.code {
				t.Fatalf("code %q, want %q", got, tc.code)
			}
		})
	}
}

func bigMap(n int) map[string]string {
	m := map[string]string{}
	for i := range n {
		m[strings.Repeat("k", i%40+1)+string(rune('a'+i%26))+string(rune('a'+i/26))] = "v"
	}
	return m
}

func TestAPIKey(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		k := NewAPIKey()
		if !strings.HasPrefix(k, APIKeyPrefix) || len(k) != len(APIKeyPrefix)+43 || seen[k] {
			t.Fatalf("bad or repeated key %q", k)
		}
		seen[k] = true
		if h := HashAPIKey(k); len(h) != 64 || strings.Contains(h, k[len(APIKeyPrefix):]) {
			t.Fatalf("hash %q", h)
		}
	}
	if HashAPIKey("a") == HashAPIKey("b") {
		t.Fatal("hash collision")
	}
}

// Location loads a zone once and hands out the same one after; names that
// are not zones fail every time and are not kept.
func TestLocationCached(t *testing.T) {
	a, err := Location("Asia/Kolkata")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Location("Asia/Kolkata")
	if err != nil || a != b {
		t.Fatalf("second load: %p, %v; want the cached %p", b, err, a)
	}
	if at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).In(a); at.Hour() != 5 || at.Minute() != 30 {
		t.Fatalf("Asia/Kolkata puts midnight UTC at %s", at.Format("15:04"))
	}
	for range 2 {
		if _, err := Location("Mars/Olympus_Mons"); err == nil {
			t.Fatal("an unknown zone loaded")
		}
	}
	if _, ok := locations.Load("Mars/Olympus_Mons"); ok {
		t.Fatal("an unknown zone was cached")
	}
}
