package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/punchconnect/punchconnect/internal/attendance"
)

// object reads the fields of one JSON object strictly: every field must be
// known, of the right type, and read-only fields may not be sent. The first
// problem found is kept and reported by done, naming its parameter.
type object struct {
	fields map[string]json.RawMessage
	known  map[string]bool
	prefix string // "employees[3]." inside a batch
	err    error
}

// parseBody parses a request body as a JSON object. An empty body is an empty object.
func parseBody(body []byte) (*object, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return &object{fields: map[string]json.RawMessage{}, known: map[string]bool{}}, nil
	}
	if !json.Valid(body) {
		return nil, invalidJSON(body)
	}
	return parseObject(body, "")
}

// parseObject parses raw, which is valid JSON, as an object.
func parseObject(raw json.RawMessage, prefix string) (*object, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		param := ""
		if prefix != "" {
			param = prefix[:len(prefix)-1]
		}
		return nil, attendance.Errorf(attendance.CodeInvalidJSON, param,
			"%s must be a JSON object, such as {\"name\": \"Main Entrance\"}.", describe(param, "The request body"))
	}
	return &object{fields: fields, known: map[string]bool{}, prefix: prefix}, nil
}

func describe(param, fallback string) string {
	if param == "" {
		return fallback
	}
	return param
}

// invalidJSON explains where body stops being JSON.
func invalidJSON(body []byte) error {
	var v any
	err := json.Unmarshal(body, &v)
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return attendance.Errorf(attendance.CodeInvalidJSON, "",
			"The request body is not valid JSON: %s (at byte %d).", syn.Error(), syn.Offset)
	}
	return attendance.Errorf(attendance.CodeInvalidJSON, "", "The request body is not valid JSON.")
}

func (o *object) fail(err error) {
	if o.err == nil {
		o.err = err
	}
}

// take marks name as known and returns its raw value when present.
func (o *object) take(name string) (json.RawMessage, bool) {
	o.known[name] = true
	raw, ok := o.fields[name]
	return raw, ok
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

func (o *object) typeError(name, want, hint string) {
	o.fail(attendance.Errorf(attendance.CodeInvalidParameter, o.prefix+name, "%s must be %s.%s", o.prefix+name, want, hint))
}

// str reads a string field that may not be null.
func (o *object) str(name string, f *attendance.Field[string]) {
	raw, ok := o.take(name)
	if !ok {
		return
	}
	var v string
	if isNull(raw) {
		o.typeError(name, "a string", ` Send "" to clear it.`)
		return
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		hint := ""
		if name == "badge_number" && len(raw) > 0 && raw[0] >= '0' && raw[0] <= '9' {
			hint = fmt.Sprintf(` Send it quoted, as "%s": as a number, leading zeros would be lost.`, raw)
		}
		o.typeError(name, "a string", hint)
		return
	}
	*f = attendance.Some(v)
}

// nullableStr reads a string field where null clears the value.
func (o *object) nullableStr(name string, f *attendance.Field[*string]) {
	raw, ok := o.take(name)
	if !ok {
		return
	}
	if isNull(raw) {
		*f = attendance.Some[*string](nil)
		return
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		o.typeError(name, "a string or null", "")
		return
	}
	*f = attendance.Some(&v)
}

// boolean reads a true/false field.
func (o *object) boolean(name string, f *attendance.Field[bool]) {
	raw, ok := o.take(name)
	if !ok {
		return
	}
	var v bool
	if isNull(raw) || json.Unmarshal(raw, &v) != nil {
		o.typeError(name, "true or false", "")
		return
	}
	*f = attendance.Some(v)
}

// integer reads a whole-number field.
func (o *object) integer(name string, f *attendance.Field[int]) {
	raw, ok := o.take(name)
	if !ok {
		return
	}
	n, err := strconv.ParseInt(string(bytes.TrimSpace(raw)), 10, 32)
	if err != nil {
		o.typeError(name, "a whole number", "")
		return
	}
	*f = attendance.Some(int(n))
}

// nullableInt reads a whole-number field where null clears the value.
func (o *object) nullableInt(name string, f *attendance.Field[*int]) {
	raw, ok := o.take(name)
	if !ok {
		return
	}
	if isNull(raw) {
		*f = attendance.Some[*int](nil)
		return
	}
	n, err := strconv.ParseInt(string(bytes.TrimSpace(raw)), 10, 32)
	if err != nil {
		o.typeError(name, "a whole number or null", "")
		return
	}
	v := int(n)
	*f = attendance.Some(&v)
}

// stringList reads an array of strings; null is the empty list.
func (o *object) stringList(name string, f *attendance.Field[[]string]) {
	raw, ok := o.take(name)
	if !ok {
		return
	}
	var v []string
	if !isNull(raw) {
		if err := json.Unmarshal(raw, &v); err != nil {
			o.typeError(name, `an array of strings, such as ["203.0.113.0/24"]`, "")
			return
		}
	}
	if v == nil {
		v = []string{}
	}
	*f = attendance.Some(v)
}

// nullableFloat reads a number field where null clears the value.
func (o *object) nullableFloat(name string, f *attendance.Field[*float64]) {
	raw, ok := o.take(name)
	if !ok {
		return
	}
	if isNull(raw) {
		*f = attendance.Some[*float64](nil)
		return
	}
	var v float64
	if err := json.Unmarshal(raw, &v); err != nil {
		o.typeError(name, "a number or null", "")
		return
	}
	*f = attendance.Some(&v)
}

// stringMap reads an object of string values (metadata).
func (o *object) stringMap(name string, f *attendance.Field[map[string]string]) {
	raw, ok := o.take(name)
	if !ok {
		return
	}
	var v map[string]string
	if isNull(raw) {
		*f = attendance.Some(map[string]string{})
		return
	}
	if err := json.Unmarshal(raw, &v); err != nil || v == nil {
		o.typeError(name, `an object of string values, such as {"cost_center": "42"}`, "")
		return
	}
	*f = attendance.Some(v)
}

// array reads an array field as raw elements.
func (o *object) array(name string) ([]json.RawMessage, bool) {
	raw, ok := o.take(name)
	if !ok {
		return nil, false
	}
	var v []json.RawMessage
	if isNull(raw) || json.Unmarshal(raw, &v) != nil {
		o.typeError(name, "an array", "")
		return nil, false
	}
	return v, true
}

// readOnly rejects fields the server sets.
func (o *object) readOnly(names ...string) {
	for _, name := range names {
		if _, ok := o.take(name); ok {
			o.fail(attendance.Errorf(attendance.CodeReadOnlyParameter, o.prefix+name,
				"%s is set by PunchConnect and cannot be changed through the API; leave it out.", o.prefix+name))
		}
	}
}

// done reports the first problem: a bad field, or else an unknown one.
func (o *object) done() error {
	if o.err != nil {
		return o.err
	}
	var unknown []string
	for name := range o.fields {
		if !o.known[name] {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	name := unknown[0]
	msg := fmt.Sprintf("Unknown parameter %q.", o.prefix+name)
	if s := closest(name, o.known); s != "" {
		msg += fmt.Sprintf(" Did you mean %q?", s)
	}
	return attendance.Errorf(attendance.CodeUnknownParameter, o.prefix+name, "%s", msg)
}

// closest returns the known name within two edits of name, if any.
func closest(name string, known map[string]bool) string {
	best, bestDist := "", 3
	for k := range known {
		if d := editDistance(name, k); d < bestDist || d == bestDist && k < best {
			best, bestDist = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
