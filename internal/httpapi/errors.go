package httpapi

import (
	"net/http"

	"github.com/punchconnect/punchconnect/internal/attendance"
	"github.com/punchconnect/punchconnect/internal/store"
)

// Error types group codes the way clients usually branch.
const (
	typeInvalidRequest = "invalid_request_error"
	typeAuthentication = "authentication_error"
	typeRateLimit      = "rate_limit_error"
	typeIdempotency    = "idempotency_error"
	typeAPI            = "api_error"
)

type errorClass struct {
	status int
	typ    string
}

// errorClasses maps every error code to its HTTP status and type: the one
// place where domain codes meet HTTP.
var errorClasses = map[attendance.Code]errorClass{
	attendance.CodeInvalidJSON:              {http.StatusBadRequest, typeInvalidRequest},
	attendance.CodeUnknownParameter:         {http.StatusBadRequest, typeInvalidRequest},
	attendance.CodeInvalidParameter:         {http.StatusBadRequest, typeInvalidRequest},
	attendance.CodeMissingParameter:         {http.StatusBadRequest, typeInvalidRequest},
	attendance.CodeReadOnlyParameter:        {http.StatusBadRequest, typeInvalidRequest},
	attendance.CodeBodyTooLarge:             {http.StatusRequestEntityTooLarge, typeInvalidRequest},
	attendance.CodeInvalidTimezone:          {http.StatusBadRequest, typeInvalidRequest},
	attendance.CodeInvalidCursor:            {http.StatusBadRequest, typeInvalidRequest},
	attendance.CodeInvalidSort:              {http.StatusBadRequest, typeInvalidRequest},
	attendance.CodeBatchTooLarge:            {http.StatusBadRequest, typeInvalidRequest},
	attendance.CodeDuplicateInBatch:         {http.StatusBadRequest, typeInvalidRequest},
	attendance.CodeSerialNumberTaken:        {http.StatusConflict, typeInvalidRequest},
	attendance.CodeBadgeNumberTaken:         {http.StatusConflict, typeInvalidRequest},
	attendance.CodeExternalIDTaken:          {http.StatusConflict, typeInvalidRequest},
	attendance.CodeResourceNotFound:         {http.StatusNotFound, typeInvalidRequest},
	attendance.CodeRouteNotFound:            {http.StatusNotFound, typeInvalidRequest},
	attendance.CodeMethodNotAllowed:         {http.StatusMethodNotAllowed, typeInvalidRequest},
	attendance.CodeMissingAPIKey:            {http.StatusUnauthorized, typeAuthentication},
	attendance.CodeInvalidAPIKey:            {http.StatusUnauthorized, typeAuthentication},
	attendance.CodeRateLimited:              {http.StatusTooManyRequests, typeRateLimit},
	attendance.CodeIdempotencyKeyReused:     {http.StatusUnprocessableEntity, typeIdempotency},
	attendance.CodeIdempotencyKeyInProgress: {http.StatusConflict, typeIdempotency},
	attendance.CodeInvalidIdempotencyKey:    {http.StatusBadRequest, typeIdempotency},
	attendance.CodeNotReleasable:            {http.StatusConflict, typeInvalidRequest},
	attendance.CodeBadgeNotRegistered:       {http.StatusConflict, typeInvalidRequest},
	attendance.CodeInvalidWebhookURL:        {http.StatusBadRequest, typeInvalidRequest},
	attendance.CodeWebhookURLNotAllowed:     {http.StatusBadRequest, typeInvalidRequest},
	attendance.CodeUnknownEventType:         {http.StatusBadRequest, typeInvalidRequest},
	attendance.CodeTooManyWebhooks:          {http.StatusConflict, typeInvalidRequest},
	attendance.CodeUnknownCommand:           {http.StatusBadRequest, typeInvalidRequest},
	attendance.CodeInternalError:            {http.StatusInternalServerError, typeAPI},
	attendance.CodeServiceUnavailable:       {http.StatusServiceUnavailable, typeAPI},
}

// errorBody is the error object of PRODUCT.md §3.
type errorBody struct {
	Type      string  `json:"type"`
	Code      string  `json:"code"`
	Message   string  `json:"message"`
	Param     *string `json:"param"`
	DocURL    string  `json:"doc_url"`
	RequestID string  `json:"request_id,omitempty"`
}

// errorObject renders e as the API's error object.
func (s *Server) errorObject(e *attendance.Error, requestID string) (int, errorBody) {
	class, ok := errorClasses[e.Code]
	if !ok {
		class = errorClasses[attendance.CodeInternalError]
	}
	var param *string
	if e.Param != "" {
		param = &e.Param
	}
	return class.status, errorBody{
		Type: class.typ, Code: string(e.Code), Message: e.Message, Param: param,
		DocURL: s.docURL(e.Code), RequestID: requestID,
	}
}

func (s *Server) docURL(code attendance.Code) string {
	return s.publicURL + "/docs/errors#" + string(code)
}

// writeError answers with err. Errors that are not *attendance.Error are
// outages (503, retry) or bugs (500): logged in full, answered without their text.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	reqID := requestID(r.Context())
	e, ok := attendance.AsError(err)
	switch {
	case ok:
	case store.IsUnavailable(err):
		s.log.WarnContext(r.Context(), "database unavailable", "request_id", reqID, "err", err)
		w.Header().Set("Retry-After", "1")
		e = attendance.Errorf(attendance.CodeServiceUnavailable, "",
			"The database is temporarily unavailable and nothing was changed. Retry shortly with the same Idempotency-Key.")
	default:
		s.log.ErrorContext(r.Context(), "request failed", "request_id", reqID, "err", err)
		e = attendance.Errorf(attendance.CodeInternalError, "",
			"Something went wrong on our side and nothing was changed. Retry with the same Idempotency-Key, and quote request %s if it persists.", reqID)
	}
	status, body := s.errorObject(e, reqID)
	writeJSON(w, status, map[string]any{"error": body})
}
