package httpapi

import (
	"encoding/json"
	"testing"

	"github.com/punchconnect/punchconnect/internal/attendance"
)

func errorCodeOf(err error) attendance.Code { return attendance.ErrorCode(err) }

// FuzzDecodeRequests: no request body crashes the decoders; every failure is
// a documented error, and every accepted input is valid.
func FuzzDecodeRequests(f *testing.F) {
	for _, s := range []string{
		`{"serial_number":"BKRK233600045","name":"Main","site":"HQ","timezone":"Europe/Paris","direction_mode":null}`,
		`{"badge_number":"016","name":"Sarah","external_id":null,"metadata":{"a":"b"},"active":false}`,
		`{"employees":[{"badge_number":"1"},{"badge_number":2},"x",null]}`,
		`{"dedup_window_seconds":60,"day_start":"04:00","timezone":"UTC","direction_mode":"alternating"}`,
		`{"url":"https://your-app.com/webhooks/attendance","events":["attendance.punch","device.status"],"secret":"whsec_your_signing_secret"}`,
		`{"url":"ftp://x","events":[],"enabled":"yes","secret":"a b"}`, `{"events":["*",null]}`,
		``, `null`, `[]`, `{"a":`, `{"name":"\u0000"}`, `{"metadata":{"k":null}}`, `{"badge_number":"` + "\xff" + `"}`,
	} {
		f.Add([]byte(s))
	}
	documented := func(t *testing.T, err error) {
		t.Helper()
		if _, ok := errorClasses[attendance.ErrorCode(err)]; !ok {
			t.Fatalf("undocumented error: %v", err)
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if in, err := decodeDevice(body, true); err != nil {
			documented(t, err)
		} else if in.Validate(true) != nil || !in.SerialNumber.Set {
			t.Fatalf("accepted an invalid device: %+v", in)
		}
		if _, err := decodeDevice(body, false); err != nil {
			documented(t, err)
		}
		for _, create := range []bool{true, false} {
			if in, err := decodeWebhook(body, create); err != nil {
				documented(t, err)
			} else if in.Validate(create) != nil || (create && !in.URL.Set) || (!create && in.Secret.Set) {
				t.Fatalf("accepted an invalid webhook: %+v", in)
			}
		}
		if in, err := decodeEmployee(body, true); err != nil {
			documented(t, err)
		} else if in.Validate(true) != nil {
			t.Fatalf("accepted an invalid employee: %+v", in)
		}
		if o, err := parseBody(body); err != nil {
			documented(t, err)
		} else if items, ok := o.array("employees"); ok {
			for i, raw := range items {
				if _, err := decodeBatchItem(raw, i); err != nil {
					documented(t, err)
				}
			}
		}
		var generic any
		if json.Unmarshal(body, &generic) == nil {
			_ = canonicalJSON(body)
		}
	})
}
