package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/punchconnect/punchconnect/internal/attendance"
	"github.com/punchconnect/punchconnect/internal/store"
)

// call is one authenticated /v1 request on its way through a handler.
type call struct {
	w    http.ResponseWriter
	r    *http.Request
	acct attendance.Account
	body []byte
	// claim is set when the request carries an Idempotency-Key it now owns.
	claim *store.IdempotencyClaim
	// storedWithWork: the response was saved in the work's own transaction.
	storedWithWork bool
}

func (c *call) ctx() context.Context { return c.r.Context() }

// apiHandler serves one /v1 route. A returned error is rendered as the
// error object; success responses are written by the handler.
type apiHandler func(c *call) error

type routeOptions struct {
	bodyLimit int64
	// unmetered routes carry device traffic: they are not rate limited and
	// do not count, but still show the account's usage.
	unmetered bool
	// streaming routes answer for as long as the client listens: no
	// request timeout.
	streaming bool
}

type routeOption func(*routeOptions)

func bodyLimit(n int64) routeOption { return func(o *routeOptions) { o.bodyLimit = n } }

func unmetered() routeOption { return func(o *routeOptions) { o.unmetered = true } }

func streaming() routeOption { return func(o *routeOptions) { o.streaming = true } }

// api registers an authenticated, rate-limited, idempotent /v1 route.
func (s *Server) api(pattern string, h apiHandler, opts ...routeOption) {
	ro := routeOptions{bodyLimit: defaultBodyLimit}
	for _, o := range opts {
		o(&ro)
	}
	s.apiRoutes = append(s.apiRoutes, pattern)
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if !ro.streaming {
			ctx, cancel := context.WithTimeout(r.Context(), s.requestTimeout)
			defer cancel()
			r = r.WithContext(ctx)
		}
		acct, err := s.admit(w, r, !ro.unmetered)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		body, err := readBody(w, r, ro.bodyLimit)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		c := &call{w: w, r: r, acct: acct, body: body}
		if r.Method == http.MethodGet || r.Method == http.MethodHead || len(r.Header.Values("Idempotency-Key")) == 0 {
			if err := h(c); err != nil {
				s.writeError(w, r, err)
			}
			return
		}
		s.idempotent(c, h)
	})
}

// readBody reads the whole body, up to limit bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, attendance.Errorf(attendance.CodeBodyTooLarge, "",
			"The request body is larger than this endpoint's limit of %d bytes. Split the work into several requests.", limit)
	}
	if err != nil {
		return nil, attendance.Errorf(attendance.CodeInvalidJSON, "", "The request body could not be read: the connection ended early.")
	}
	return body, nil
}

// admit authenticates a /v1 call and counts it against the account's rate
// limit, setting the X-RateLimit-* headers.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, metered bool) (attendance.Account, error) {
	acct, err := s.authenticate(r)
	if err != nil {
		return acct, err
	}
	infoOf(r.Context()).accountID = acct.ID
	return acct, s.rateLimit(w, r, acct, metered)
}

// authenticate finds the account of the request's bearer key.
func (s *Server) authenticate(r *http.Request) (attendance.Account, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return attendance.Account{}, attendance.Errorf(attendance.CodeMissingAPIKey, "",
			"No API key was sent. Send it as \"Authorization: Bearer <key>\"; `punchconnect accounts create` makes one.")
	}
	scheme, key, ok := strings.Cut(h, " ")
	key = strings.TrimSpace(key)
	if !ok || !strings.EqualFold(scheme, "Bearer") || key == "" {
		return attendance.Account{}, attendance.Errorf(attendance.CodeMissingAPIKey, "",
			"The Authorization header must read \"Bearer <key>\".")
	}
	acct, err := s.store.AccountByAPIKey(r.Context(), key)
	if errors.Is(err, store.ErrNoAccount) {
		return acct, attendance.Errorf(attendance.CodeInvalidAPIKey, "",
			"The API key is not valid. Check that it was copied whole (it starts with %q); keys are shown once, when they are made.", attendance.APIKeyPrefix)
	}
	return acct, err
}

// rateLimit counts the call against the account's daily allowance (PRODUCT.md
// §3, §8): per-device allowance × registered devices, at least the
// allowance, per UTC day. Every authenticated call counts, whatever its
// status — except device traffic (metered false), which only reads the count.
func (s *Server) rateLimit(w http.ResponseWriter, r *http.Request, acct attendance.Account, metered bool) error {
	now := s.now().UTC()
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	reset := day.AddDate(0, 0, 1)
	devices, err := s.store.CountDevices(r.Context(), acct.ID)
	if err != nil {
		return err
	}
	limit := max(s.perDevice, s.perDevice*devices)
	var count int
	if metered {
		count, err = s.store.CountRequest(r.Context(), acct.ID, day)
	} else {
		count, err = s.store.RequestCount(r.Context(), acct.ID, day)
	}
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(max(0, limit-count)))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
	if count <= limit || !metered {
		return nil
	}
	wait := int(math.Ceil(reset.Sub(now).Seconds()))
	h.Set("Retry-After", strconv.Itoa(wait))
	return attendance.Errorf(attendance.CodeRateLimited, "",
		"This account has made its %d API calls for today (%d per registered device, at least %d). The allowance renews at %s, in %d seconds. Device traffic is never limited.",
		limit, s.perDevice, s.perDevice, reset.Format(time.RFC3339), wait)
}

// Idempotency-Key limits.
const maxIdempotencyKeyLength = 255

// idempotent runs a mutating request under its Idempotency-Key (PRODUCT.md
// §3): the first request runs and its response is kept for 24 h — in the
// same transaction as its work when it has any; a repeat gets that response
// back; a different request under the key is refused, as is a repeat while
// the first still runs.
func (s *Server) idempotent(c *call, h apiHandler) {
	ctx := c.ctx()
	key := c.r.Header.Get("Idempotency-Key")
	if key == "" || len(key) > maxIdempotencyKeyLength || strings.IndexFunc(key, func(r rune) bool { return r < 0x20 || r > 0x7e }) >= 0 {
		s.writeError(c.w, c.r, attendance.Errorf(attendance.CodeInvalidIdempotencyKey, "",
			"The Idempotency-Key header must be 1 to %d printable ASCII characters; a UUID is a good choice.", maxIdempotencyKeyLength))
		return
	}
	res, err := s.store.BeginIdempotent(ctx, c.acct.ID, key, fingerprint(c.r, c.body))
	if err != nil {
		s.writeError(c.w, c.r, err)
		return
	}
	switch res.Outcome {
	case store.IdempotencyReplay:
		c.w.Header().Set("Idempotent-Replayed", "true")
		writeBody(c.w, res.Status, res.Body)
		return
	case store.IdempotencyInProgress:
		s.writeError(c.w, c.r, attendance.Errorf(attendance.CodeIdempotencyKeyInProgress, "",
			"A request with this Idempotency-Key is still being processed. Retry in a moment to get its result."))
		return
	case store.IdempotencyMismatch:
		s.writeError(c.w, c.r, attendance.Errorf(attendance.CodeIdempotencyKeyReused, "",
			"This Idempotency-Key was already used for a different request (another method, path or body) in the last 24 hours. Use a new key for a new request."))
		return
	}

	c.claim = &res.Claim
	capture := &captureWriter{ResponseWriter: c.w}
	c.w = capture
	// Whatever happens below, the key must not stay claimed by a request
	// that is no longer running: its response is kept, or the key released.
	finish := func() {
		if c.storedWithWork {
			return
		}
		bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		var err error
		if capture.status == 0 || capture.status >= 500 {
			err = s.store.ReleaseIdempotent(bg, res.Claim) // nothing was done: the client may retry
		} else {
			err = s.store.CompleteIdempotent(bg, res.Claim, capture.status, capture.body)
		}
		if err != nil {
			s.log.WarnContext(ctx, "idempotency record not saved", "request_id", requestID(ctx), "err", err)
		}
	}
	defer func() {
		if p := recover(); p != nil {
			capture.status = http.StatusInternalServerError
			finish()
			panic(p)
		}
	}()
	if err := h(c); err != nil {
		s.writeError(capture, c.r, err)
	}
	finish()
}

// fingerprint identifies a request for Idempotency-Key comparison: method,
// path, query and body (JSON bodies compared by content, not formatting).
func fingerprint(r *http.Request, body []byte) string {
	h := sha256.New()
	h.Write([]byte(r.Method + " " + r.URL.Path + "?" + r.URL.RawQuery + "\n"))
	h.Write(canonicalJSON(body))
	return hex.EncodeToString(h.Sum(nil))
}

// canonicalJSON re-encodes a JSON body with sorted keys and no spacing, so
// that two encodings of the same request compare equal. Bodies that are not
// JSON are compared as bytes.
func canonicalJSON(body []byte) []byte {
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return body
	}
	out, err := json.Marshal(v)
	if err != nil {
		return body
	}
	return out
}

// captureWriter keeps a copy of the response for the idempotency record.
type captureWriter struct {
	http.ResponseWriter
	status int
	body   []byte
}

func (w *captureWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *captureWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.body = append(w.body, b...)
	return w.ResponseWriter.Write(b)
}

// mutate runs work in a write transaction and answers with status and the
// body work returns. For an idempotent request the response is stored in the
// same transaction, so the work and the record of its answer commit together
// or not at all.
func (s *Server) mutate(c *call, status int, work func(tx *store.Tx) (any, error)) error {
	var body []byte
	err := s.store.InTx(c.ctx(), func(tx *store.Tx) error {
		c.storedWithWork = false
		v, err := work(tx)
		if err != nil {
			return err
		}
		body = encodeJSON(v)
		if c.claim == nil {
			return nil
		}
		err = tx.CompleteIdempotent(c.ctx(), *c.claim, status, body)
		if errors.Is(err, store.ErrIdempotencyClaimLost) {
			return attendance.Errorf(attendance.CodeIdempotencyKeyInProgress, "",
				"This request ran so long that a retry with the same Idempotency-Key took over; nothing was changed by this one. Fetch the retry's result.")
		}
		c.storedWithWork = err == nil
		return err
	})
	if err != nil {
		c.storedWithWork = false
		return err
	}
	writeBody(c.w, status, body)
	return nil
}

// json writes a response that no transaction produced (reads).
func (c *call) json(status int, v any) error {
	writeJSON(c.w, status, v)
	return nil
}
