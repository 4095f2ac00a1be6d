package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestStandardKey(t *testing.T) {
	raw := []byte("0123456789abcdef0123456789abcdef")
	generated := "whsec_" + base64.StdEncoding.EncodeToString(raw)
	for secret, want := range map[string]string{
		generated:                   string(raw),                 // base64 after whsec_: decoded
		"whsec_your_signing_secret": "whsec_your_signing_secret", // not base64: the whole string
		"plain-secret":              "plain-secret",
		"whsec_":                    "whsec_",
	} {
		if got := string(StandardKey(secret)); got != want {
			t.Errorf("StandardKey(%q) = %q, want %q", secret, got, want)
		}
	}
}

// TestSignDuringRotation: with two secrets, webhook-signature carries both
// entries, the seed header keeps the old secret and -Next has the new one.
func TestSignDuringRotation(t *testing.T) {
	body := []byte(`{"event_id":"evt_1"}`)
	at := time.Unix(1774688483, 0)
	h := http.Header{}
	Sign(h, []string{"whsec_new_secret", "whsec_old_secret"}, "evt_1", at, body)
	if h.Get(HeaderID) != "evt_1" || h.Get(HeaderTimestamp) != "1774688483" {
		t.Fatalf("headers %v", h)
	}
	if h.Get(HeaderSignature) != SeedSignature("whsec_old_secret", body) || h.Get(HeaderSignatureNext) != SeedSignature("whsec_new_secret", body) {
		t.Fatalf("seed headers %v", h)
	}
	sigs := strings.Fields(h.Get(HeaderSignatures))
	if len(sigs) != 2 {
		t.Fatalf("webhook-signature %q", h.Get(HeaderSignatures))
	}
	for i, secret := range []string{"whsec_new_secret", "whsec_old_secret"} {
		m := hmac.New(sha256.New, []byte(secret))
		m.Write([]byte("evt_1.1774688483."))
		m.Write(body)
		if sigs[i] != "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil)) {
			t.Errorf("entry %d does not verify with %s", i, secret)
		}
	}
	one := http.Header{}
	Sign(one, []string{"whsec_new_secret"}, "evt_1", at, body)
	if one.Get(HeaderSignatureNext) != "" || one.Get(HeaderSignature) != SeedSignature("whsec_new_secret", body) || strings.Contains(one.Get(HeaderSignatures), " ") {
		t.Fatalf("one secret: %v", one)
	}
}

func TestPrivate(t *testing.T) {
	for addr, private := range map[string]bool{
		"127.0.0.1": true, "10.1.2.3": true, "172.16.0.1": true, "192.168.1.1": true, "169.254.169.254": true,
		"100.64.0.1": true, "0.0.0.0": true, "::1": true, "fe80::1": true, "fd00::1": true, "::ffff:127.0.0.1": true,
		"224.0.0.1": true, "8.8.8.8": false, "93.184.216.34": false, "2606:4700::1111": false,
	} {
		if got := Private(netip.MustParseAddr(addr)); got != private {
			t.Errorf("Private(%s) = %v", addr, got)
		}
	}
}
