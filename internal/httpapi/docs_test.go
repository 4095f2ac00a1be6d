package httpapi

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/punchconnect/punchconnect/docs"
	"github.com/punchconnect/punchconnect/internal/apitest"
	"github.com/punchconnect/punchconnect/internal/attendance"
	"github.com/punchconnect/punchconnect/internal/store/storetest"
)

// TestErrorCodesDocumented keeps the codes, their HTTP mapping, docs/errors.md
// and the OpenAPI enum equal.
func TestErrorCodesDocumented(t *testing.T) {
	anchors := regexp.MustCompile(`(?m)^### `+"`"+`([a-z_]+)`+"`"+` \{#([a-z_]+)\}$`).FindAllStringSubmatch(string(docs.ErrorsMarkdown), -1)
	var documented []string
	for _, m := range anchors {
		if m[1] != m[2] {
			t.Errorf("heading %s has anchor %s", m[1], m[2])
		}
		documented = append(documented, m[1])
	}
	var codes []string
	for _, c := range attendance.Codes {
		codes = append(codes, string(c))
		if _, ok := errorClasses[c]; !ok {
			t.Errorf("code %s has no HTTP status", c)
		}
	}
	if len(errorClasses) != len(attendance.Codes) {
		t.Errorf("%d codes mapped to HTTP, %d codes exist", len(errorClasses), len(attendance.Codes))
	}
	slices.Sort(codes)
	slices.Sort(documented)
	if !slices.Equal(codes, documented) {
		t.Errorf("docs/errors.md documents %v\nthe code has %v", documented, codes)
	}
	doc, err := apitest.LoadSpec("http://localhost")
	if err != nil {
		t.Fatal(err)
	}
	var enum []string
	for _, v := range doc.Components.Schemas["Error"].Value.Properties["code"].Value.Enum {
		enum = append(enum, v.(string))
	}
	slices.Sort(enum)
	if !slices.Equal(enum, codes) {
		t.Errorf("openapi.yaml Error.code enum %v\nthe code has %v", enum, codes)
	}
}

// TestErrorDocsServed: every doc_url resolves to an anchor on the page the
// server serves.
func TestErrorDocsServed(t *testing.T) {
	e := newEnv(t, storetest.SQLiteBackend())
	resp, err := http.Get(e.url + "/docs/errors")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	page, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /docs/errors = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, c := range attendance.Codes {
		if !strings.Contains(string(page), `id="`+string(c)+`"`) {
			t.Errorf("no anchor for %s on /docs/errors", c)
		}
	}
	er := e.api.Do("GET", "/v1/devices?sort=nope", nil, apitest.Invalid()).ExpectError(t, 400, "invalid_sort")
	if er.DocURL != e.url+"/docs/errors#invalid_sort" {
		t.Fatalf("doc_url = %s", er.DocURL)
	}
}

// TestOpenAPICoversRoutes: every /v1 route is in the document and every
// operation of the document is served.
func TestOpenAPICoversRoutes(t *testing.T) {
	e := newEnv(t, storetest.SQLiteBackend())
	doc, err := apitest.LoadSpec(e.url)
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			if path == "/v1/openapi.json" {
				continue
			}
			documented = append(documented, method+" "+path)
		}
	}
	served := e.server.Routes()
	slices.Sort(documented)
	slices.Sort(served)
	if !slices.Equal(documented, served) {
		t.Fatalf("openapi.yaml has %v\nthe server has %v", documented, served)
	}

	// List parameters: sort values and filters match what the server accepts.
	for path, spec := range map[string]listSpec{"/v1/devices": deviceList, "/v1/employees": employeeList} {
		op := doc.Paths.Find(path).Get
		var wantSorts, wantParams []string
		for _, c := range spec.sorts {
			wantSorts = append(wantSorts, c.Name, "-"+c.Name)
		}
		wantParams = []string{"page", "per_page", "cursor", "sort"}
		for _, c := range spec.filters {
			wantParams = append(wantParams, c.Name)
		}
		var gotSorts, gotParams []string
		for _, p := range op.Parameters {
			gotParams = append(gotParams, p.Value.Name)
			if p.Value.Name == "sort" {
				for _, v := range p.Value.Schema.Value.Enum {
					gotSorts = append(gotSorts, v.(string))
				}
			}
		}
		slices.Sort(wantSorts)
		slices.Sort(gotSorts)
		slices.Sort(wantParams)
		slices.Sort(gotParams)
		if !slices.Equal(wantSorts, gotSorts) || !slices.Equal(wantParams, gotParams) {
			t.Errorf("GET %s: document has sorts %v params %v; server has sorts %v params %v", path, gotSorts, gotParams, wantSorts, wantParams)
		}
	}

	// The served document is the YAML, as JSON, with this server as its server.
	r := e.api.Do("GET", "/v1/openapi.json", nil, apitest.NoAuth()).Expect(t, 200)
	var served31 struct {
		OpenAPI string `json:"openapi"`
		Servers []struct {
			URL string `json:"url"`
		} `json:"servers"`
		Paths map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(r.Body, &served31); err != nil {
		t.Fatal(err)
	}
	if served31.OpenAPI != "3.1.0" || len(served31.Servers) != 1 || served31.Servers[0].URL != e.url || len(served31.Paths) != len(doc.Paths.Map()) {
		t.Fatalf("served document: %s %v, %d paths", served31.OpenAPI, served31.Servers, len(served31.Paths))
	}
}

func TestOperationalEndpoints(t *testing.T) {
	e := newEnv(t, storetest.SQLiteBackend())
	e.api.Do("GET", "/v1/devices", nil).Expect(t, 200)
	resp, err := http.Get(e.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	var health map[string]string
	json.NewDecoder(resp.Body).Decode(&health)
	resp.Body.Close()
	if resp.StatusCode != 200 || health["status"] != "ok" || health["database"] != "sqlite" {
		t.Fatalf("healthz = %d %v", resp.StatusCode, health)
	}
	resp, err = http.Get(e.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`punchconnect_http_requests_total{method="GET",route="GET /v1/devices",status="200"} 1`,
		`punchconnect_http_request_duration_seconds_bucket{method="GET",route="GET /v1/devices"`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// The store going away turns /healthz red.
	e.store.Close()
	resp, err = http.Get(e.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("healthz with a closed store = %d", resp.StatusCode)
	}
}

func TestPanicBecomes500(t *testing.T) {
	e := newEnv(t, storetest.SQLiteBackend())
	e.server.mux.HandleFunc("GET /v1/boom", func(http.ResponseWriter, *http.Request) { panic("handler bug") })
	r := e.api.Do("GET", "/v1/boom", nil, apitest.Invalid())
	er := r.ExpectError(t, http.StatusInternalServerError, "internal_error")
	if strings.Contains(er.Message, "handler bug") || !strings.Contains(er.Message, er.RequestID) {
		t.Fatalf("500 message %q", er.Message)
	}
	// The server keeps serving.
	e.api.Do("GET", "/v1/devices", nil).Expect(t, 200)
}

// TestWebhookGuideServed: the webhook guide is served, with its sections
// linkable.
func TestWebhookGuideServed(t *testing.T) {
	e := newEnv(t, storetest.SQLiteBackend())
	for path, wants := range map[string][]string{
		"/docs/webhooks": {`id="verify-the-signature"`, `id="order-retries-and-recovery"`, "X-PunchConnect-Signature", "rotate_secret"},
		"/docs/commands": {`id="batches-one-operation-many-devices"`, "DATA UPDATE USERINFO", "retry_failed", "auto_sync_employees"},
	} {
		resp, err := http.Get(e.url + path)
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, want := range wants {
			if resp.StatusCode != 200 || !strings.Contains(string(page), want) {
				t.Fatalf("GET %s = %d, lacks %s", path, resp.StatusCode, want)
			}
		}
	}
}
