// Package apitest is an HTTP client for tests that checks every request it
// sends and every response it receives against api/openapi.yaml, so the
// document cannot drift from the server.
package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/punchconnect/punchconnect/api"
)

var (
	specOnce sync.Once
	specData []byte
	specErr  error
)

// LoadSpec parses and validates the OpenAPI document, with baseURL as its server.
func LoadSpec(baseURL string) (*openapi3.T, error) {
	specOnce.Do(func() {
		loader := openapi3.NewLoader()
		doc, err := loader.LoadFromData(api.OpenAPIYAML)
		if err != nil {
			specErr = err
			return
		}
		if err := doc.Validate(loader.Context); err != nil {
			specErr = err
			return
		}
		specData = api.OpenAPIYAML
	})
	if specErr != nil {
		return nil, specErr
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(specData)
	if err != nil {
		return nil, err
	}
	doc.Servers = openapi3.Servers{{URL: baseURL}}
	return doc, nil
}

// Client sends requests to a PunchConnect server and validates them.
type Client struct {
	t       testing.TB
	BaseURL string
	Key     string
	HTTP    *http.Client
	doc     *openapi3.T
	router  routers.Router
}

// New returns a client for the server at baseURL using key.
func New(t testing.TB, baseURL, key string) *Client {
	t.Helper()
	doc, err := LoadSpec(baseURL)
	if err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatalf("openapi router: %v", err)
	}
	return &Client{t: t, BaseURL: baseURL, Key: key, HTTP: &http.Client{}, doc: doc, router: router}
}

// WithKey returns a copy of c that authenticates with key.
func (c *Client) WithKey(key string) *Client {
	cp := *c
	cp.Key = key
	return &cp
}

// Response is a received response, its body read.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Option changes one request.
type Option func(*request)

type request struct {
	header      http.Header
	raw         []byte
	rawSet      bool
	skipRequest bool
	noAuth      bool
}

// Header sets a request header.
func Header(k, v string) Option { return func(r *request) { r.header.Set(k, v) } }

// IdempotencyKey sets the Idempotency-Key header.
func IdempotencyKey(k string) Option { return Header("Idempotency-Key", k) }

// Raw sends body as is, and (being deliberately malformed) skips request validation.
func Raw(body string) Option {
	return func(r *request) { r.raw, r.rawSet, r.skipRequest = []byte(body), true, true }
}

// Invalid marks a request that breaks the document on purpose: only its
// response is validated.
func Invalid() Option { return func(r *request) { r.skipRequest = true } }

// NoAuth sends no Authorization header.
func NoAuth() Option { return func(r *request) { r.noAuth = true } }

// Do sends a request and validates it and its response. body, if not nil,
// is encoded as JSON. A transport failure fails the test.
func (c *Client) Do(method, path string, body any, opts ...Option) *Response {
	c.t.Helper()
	r, err := c.Try(method, path, body, opts...)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// Try is Do for requests that may meet no server (one shutting down): a
// transport failure is returned; whatever does answer is validated.
func (c *Client) Try(method, path string, body any, opts ...Option) (*Response, error) {
	c.t.Helper()
	rq := &request{header: http.Header{}}
	for _, o := range opts {
		o(rq)
	}
	var payload []byte
	switch {
	case rq.rawSet:
		payload = rq.raw
	case body != nil:
		var err error
		if payload, err = json.Marshal(body); err != nil {
			c.t.Fatalf("encode request: %v", err)
		}
	}
	req, err := http.NewRequest(method, c.BaseURL+path, bytes.NewReader(payload))
	if err != nil {
		c.t.Fatalf("new request: %v", err)
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if !rq.noAuth && c.Key != "" {
		req.Header.Set("Authorization", "Bearer "+c.Key)
	}
	for k, v := range rq.header {
		req.Header[k] = v
	}

	route, params, routeErr := c.router.FindRoute(req)
	if !rq.skipRequest {
		if routeErr != nil {
			c.t.Fatalf("%s %s is not in openapi.yaml: %v", method, path, routeErr)
		}
		in := &openapi3filter.RequestValidationInput{
			Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, SkipSettingDefaults: true},
		}
		if payload != nil {
			req.Body = io.NopCloser(bytes.NewReader(payload))
		}
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			c.t.Fatalf("%s %s: request does not match openapi.yaml: %v", method, path, err)
		}
		req.Body = io.NopCloser(bytes.NewReader(payload))
		req.ContentLength = int64(len(payload))
	}

	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	out := &Response{Status: resp.StatusCode, Header: resp.Header, Body: data}
	c.validateResponse(req, route, params, routeErr, out)
	return out, nil
}

// validateResponse checks a response against its operation, or, for a path
// the document does not have, against the error schema.
func (c *Client) validateResponse(req *http.Request, route *routers.Route, params map[string]string, routeErr error, r *Response) {
	c.t.Helper()
	if routeErr != nil || route == nil {
		if r.Status < 400 && !strings.HasPrefix(req.URL.Path, "/v1/") {
			return // /healthz, /docs, /metrics: outside the document
		}
		schema := c.doc.Components.Schemas["ErrorResponse"].Value
		var v any
		if err := json.Unmarshal(r.Body, &v); err != nil {
			c.t.Fatalf("%s %s: response is not JSON: %s", req.Method, req.URL.Path, r.Body)
		}
		if err := schema.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
			c.t.Fatalf("%s %s: error response does not match openapi.yaml: %v\n%s", req.Method, req.URL.Path, err, r.Body)
		}
		return
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 r.Status,
		Header:                 r.Header,
		Body:                   io.NopCloser(bytes.NewReader(r.Body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		c.t.Fatalf("%s %s: response %d does not match openapi.yaml: %v\n%s", req.Method, req.URL.Path, r.Status, err, r.Body)
	}
}

// JSON decodes the body into v.
func (r *Response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// Data returns the "data" object of the body.
func (r *Response) Data(t testing.TB) map[string]any {
	t.Helper()
	var v struct {
		Data map[string]any `json:"data"`
	}
	r.JSON(t, &v)
	return v.Data
}

// APIError is the error object of a response.
type APIError struct {
	Type      string  `json:"type"`
	Code      string  `json:"code"`
	Message   string  `json:"message"`
	Param     *string `json:"param"`
	DocURL    string  `json:"doc_url"`
	RequestID string  `json:"request_id"`
}

// Error returns the error object of the body.
func (r *Response) Error(t testing.TB) APIError {
	t.Helper()
	var v struct {
		Error APIError `json:"error"`
	}
	r.JSON(t, &v)
	return v.Error
}

// Expect fails the test unless the response has status.
func (r *Response) Expect(t testing.TB, status int) *Response {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	return r
}

// ExpectError fails the test unless the response is an error with status and code.
func (r *Response) ExpectError(t testing.TB, status int, code string) APIError {
	t.Helper()
	r.Expect(t, status)
	e := r.Error(t)
	if e.Code != code {
		t.Fatalf("error code %q, want %q: %s", e.Code, code, r.Body)
	}
	return e
}
