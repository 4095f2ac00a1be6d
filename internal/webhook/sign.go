// Package webhook is what PunchConnect's webhook requests are made of: their
// signatures (the seed's X-PunchConnect-Signature and the Standard Webhooks
// headers) and the address checks that keep them off private networks.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names.
const (
	HeaderSignature     = "X-PunchConnect-Signature"
	HeaderSignatureNext = "X-PunchConnect-Signature-Next"
	HeaderID            = "webhook-id"
	HeaderTimestamp     = "webhook-timestamp"
	HeaderSignatures    = "webhook-signature"
)

// SeedSignature is the X-PunchConnect-Signature value: "sha256=" and the hex
// HMAC-SHA256 of the raw body, keyed with the secret string's bytes.
func SeedSignature(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// StandardKey is the HMAC key Standard Webhooks derive from a secret: the
// base64 decoding of what follows "whsec_" when that is valid base64,
// otherwise the UTF-8 bytes of the whole secret (PRODUCT.md §8).
func StandardKey(secret string) []byte {
	if rest, ok := strings.CutPrefix(secret, "whsec_"); ok {
		if key, err := base64.StdEncoding.DecodeString(rest); err == nil && len(key) > 0 {
			return key
		}
	}
	return []byte(secret)
}

// StandardSignature is one webhook-signature entry: "v1," and the base64
// HMAC-SHA256 of "<id>.<timestamp>.<body>".
func StandardSignature(secret, msgID string, timestamp int64, body []byte) string {
	m := hmac.New(sha256.New, StandardKey(secret))
	m.Write([]byte(msgID + "." + strconv.FormatInt(timestamp, 10) + "."))
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Sign sets the signature headers of a request carrying body, for event
// eventID at time at. secrets holds the current secret and, during a
// rotation's grace period, the previous one: the seed header is then signed
// with the previous secret (receivers keep working unchanged until they
// switch), X-PunchConnect-Signature-Next with the new one, and
// webhook-signature carries both entries.
func Sign(h http.Header, secrets []string, eventID string, at time.Time, body []byte) {
	ts := at.Unix()
	h.Set(HeaderID, eventID)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	sigs := make([]string, len(secrets))
	for i, s := range secrets {
		sigs[i] = StandardSignature(s, eventID, ts, body)
	}
	h.Set(HeaderSignatures, strings.Join(sigs, " "))
	if len(secrets) > 1 {
		h.Set(HeaderSignature, SeedSignature(secrets[1], body))
		h.Set(HeaderSignatureNext, SeedSignature(secrets[0], body))
		return
	}
	h.Set(HeaderSignature, SeedSignature(secrets[0], body))
}
