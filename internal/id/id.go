// Package id makes and checks the prefixed, opaque identifiers the API hands
// out (dev_…, emp_…, …). They are TypeIDs: a lowercase prefix, an underscore
// and a UUIDv7 in base32, so they sort roughly by creation time.
package id

import (
	"strings"

	"go.jetify.com/typeid"
)

// Prefix names the kind of object an ID refers to.
type Prefix string

// The prefixes PRODUCT.md §3 fixes. Every object the API returns uses one.
const (
	Account  Prefix = "acct"
	APIKey   Prefix = "key"
	Device   Prefix = "dev"
	Employee Prefix = "emp"
	Punch    Prefix = "pun"
	Event    Prefix = "evt"
	Webhook  Prefix = "whk"
	Delivery Prefix = "del"
	Command  Prefix = "cmd"
	Batch    Prefix = "bat"
	Request  Prefix = "req"
	Replay   Prefix = "rpl"
)

// New returns a fresh ID with the given prefix.
func New(p Prefix) string {
	tid, err := typeid.WithPrefix(string(p))
	if err != nil {
		// Only an invalid prefix fails, and the prefixes above are constants.
		panic("id: " + err.Error())
	}
	return tid.String()
}

// Valid reports whether s is a well-formed ID with prefix p. Handlers use it
// to answer "not found" for garbage without touching the database.
func Valid(p Prefix, s string) bool {
	if !strings.HasPrefix(s, string(p)+"_") {
		return false
	}
	tid, err := typeid.FromString(s)
	return err == nil && tid.Prefix() == string(p)
}
