// Package attendance holds the domain of PunchConnect: accounts, devices,
// employees and their settings, the rules that make them valid, and the
// error codes the API speaks. It does no I/O.
package attendance

import (
	"errors"
	"fmt"
)

// Code is a machine-readable error code. Clients branch on it; each one is
// documented in docs/errors.md under its own anchor.
type Code string

// Every error code the API can return. docs/errors.md documents each one and a
// test keeps the two lists equal.
const (
	CodeInvalidJSON              Code = "invalid_json"
	CodeUnknownParameter         Code = "unknown_parameter"
	CodeInvalidParameter         Code = "invalid_parameter"
	CodeMissingParameter         Code = "missing_parameter"
	CodeReadOnlyParameter        Code = "read_only_parameter"
	CodeBodyTooLarge             Code = "body_too_large"
	CodeInvalidTimezone          Code = "invalid_timezone"
	CodeInvalidCursor            Code = "invalid_cursor"
	CodeInvalidSort              Code = "invalid_sort"
	CodeBatchTooLarge            Code = "batch_too_large"
	CodeDuplicateInBatch         Code = "duplicate_in_batch"
	CodeSerialNumberTaken        Code = "serial_number_taken"
	CodeBadgeNumberTaken         Code = "badge_number_taken"
	CodeExternalIDTaken          Code = "external_id_taken"
	CodeResourceNotFound         Code = "resource_not_found"
	CodeRouteNotFound            Code = "route_not_found"
	CodeMethodNotAllowed         Code = "method_not_allowed"
	CodeMissingAPIKey            Code = "missing_api_key"
	CodeInvalidAPIKey            Code = "invalid_api_key"
	CodeRateLimited              Code = "rate_limited"
	CodeIdempotencyKeyReused     Code = "idempotency_key_reused"
	CodeIdempotencyKeyInProgress Code = "idempotency_key_in_progress"
	CodeInvalidIdempotencyKey    Code = "invalid_idempotency_key"
	CodeNotReleasable            Code = "not_releasable"
	CodeBadgeNotRegistered       Code = "badge_not_registered"
	CodeInvalidWebhookURL        Code = "invalid_webhook_url"
	CodeWebhookURLNotAllowed     Code = "webhook_url_not_allowed"
	CodeUnknownEventType         Code = "unknown_event_type"
	CodeTooManyWebhooks          Code = "too_many_webhooks"
	CodeUnknownCommand           Code = "unknown_command"
	CodeInternalError            Code = "internal_error"
	CodeServiceUnavailable       Code = "service_unavailable"
)

// Codes lists every code above, for documentation checks.
var Codes = []Code{
	CodeInvalidJSON, CodeUnknownParameter, CodeInvalidParameter, CodeMissingParameter,
	CodeReadOnlyParameter, CodeBodyTooLarge, CodeInvalidTimezone, CodeInvalidCursor,
	CodeInvalidSort, CodeBatchTooLarge, CodeDuplicateInBatch, CodeSerialNumberTaken,
	CodeBadgeNumberTaken, CodeExternalIDTaken, CodeResourceNotFound, CodeRouteNotFound,
	CodeMethodNotAllowed, CodeMissingAPIKey, CodeInvalidAPIKey, CodeRateLimited,
	CodeIdempotencyKeyReused, CodeIdempotencyKeyInProgress, CodeInvalidIdempotencyKey,
	CodeNotReleasable, CodeBadgeNotRegistered, CodeInvalidWebhookURL, CodeWebhookURLNotAllowed,
	CodeUnknownEventType, CodeTooManyWebhooks, CodeUnknownCommand, CodeInternalError, CodeServiceUnavailable,
}

// Error is a failure the client can act on: a code, a sentence that says what
// went wrong and how to fix it, and the parameter at fault when there is one.
type Error struct {
	Code    Code
	Message string
	Param   string
}

func (e *Error) Error() string {
	if e.Param != "" {
		return fmt.Sprintf("%s (%s): %s", e.Code, e.Param, e.Message)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Errorf builds an *Error naming param (empty when no single parameter is at fault).
func Errorf(code Code, param, format string, args ...any) *Error {
	return &Error{Code: code, Param: param, Message: fmt.Sprintf(format, args...)}
}

// NotFound is the answer for an object that does not exist or belongs to
// another account: both read the same, so nothing leaks.
func NotFound(kind, id string) *Error {
	return Errorf(CodeResourceNotFound, "id", "No %s with id %q exists in this account.", kind, id)
}

// AsError returns the *Error inside err, if any.
func AsError(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}

// ErrorCode returns the code of err, or "" when err is not an *Error.
func ErrorCode(err error) Code {
	if e, ok := AsError(err); ok {
		return e.Code
	}
	return ""
}
