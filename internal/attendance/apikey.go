package attendance

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"math/big"
	"strings"
)

// APIKeyPrefix starts every secret API key, so leaked keys are easy to spot
// (and to scan for in repositories).
const APIKeyPrefix = "pcsk_"

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// NewAPIKey returns a fresh secret key: the prefix and 256 random bits in base62.
func NewAPIKey() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	n := new(big.Int).SetBytes(b[:])
	var sb strings.Builder
	sb.WriteString(APIKeyPrefix)
	digits := make([]byte, 0, 43)
	base := big.NewInt(62)
	mod := new(big.Int)
	for i := 0; i < 43; i++ { // 62^43 > 2^256: fixed length
		n.DivMod(n, base, mod)
		digits = append(digits, base62[mod.Int64()])
	}
	sb.Write(digits)
	return sb.String()
}

// HashAPIKey is what the store keeps of a key. Keys carry 256 random bits,
// so a fast hash is safe and lets every request look its key up by index.
func HashAPIKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// APIKeyDisplayPrefix is the part of a key safe to show again later.
func APIKeyDisplayPrefix(key string) string {
	if len(key) <= len(APIKeyPrefix)+4 {
		return key
	}
	return key[:len(APIKeyPrefix)+4]
}
