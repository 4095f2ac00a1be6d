package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/parser"
	"sigs.k8s.io/yaml"

	"github.com/punchconnect/punchconnect/api"
	"github.com/punchconnect/punchconnect/docs"
)

// openapiJSON converts the embedded OpenAPI document to JSON, with this
// server's public URL as its server.
func openapiJSON(publicURL string) ([]byte, error) {
	j, err := yaml.YAMLToJSON(api.OpenAPIYAML)
	if err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	var doc map[string]any
	if err := json.Unmarshal(j, &doc); err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	doc["servers"] = []map[string]string{{"url": publicURL, "description": "This server"}}
	return json.MarshalIndent(doc, "", "  ")
}

func (s *Server) openapi(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	_, _ = w.Write(s.openapiJSON)
}

// errorsHTML renders docs/errors.md. Headings carry {#code} anchors, which
// are the fragments of every doc_url.
func errorsHTML() ([]byte, error) {
	return docPage("PunchConnect API errors", "errors.md", docs.ErrorsMarkdown)
}

// commandsHTML renders docs/commands.md, the guide to commands and batches.
func commandsHTML() ([]byte, error) {
	return docPage("PunchConnect commands and batches", "commands.md", docs.CommandsMarkdown)
}

// webhooksHTML renders docs/webhooks.md, the webhook guide.
func webhooksHTML() ([]byte, error) {
	return docPage("PunchConnect webhooks", "webhooks.md", docs.WebhooksMarkdown)
}

// docPage renders a Markdown document of docs/ as a standalone HTML page.
func docPage(title, name string, markdown []byte) ([]byte, error) {
	md := goldmark.New(
		goldmark.WithExtensions(extension.Table),
		goldmark.WithParserOptions(parser.WithAttribute(), parser.WithAutoHeadingID()),
	)
	var body bytes.Buffer
	if err := md.Convert(markdown, &body); err != nil {
		return nil, fmt.Errorf("render %s: %w", name, err)
	}
	var page bytes.Buffer
	page.WriteString(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>` + title + `</title>
<style>
body{font:16px/1.55 system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#1f2933}
code,pre{font:14px ui-monospace,monospace;background:#f3f4f6;border-radius:4px}
code{padding:.1em .3em}pre{padding:.8em;overflow:auto}
h3{margin-top:2.2rem;border-top:1px solid #e5e7eb;padding-top:1rem}
h3:target{background:#fff7d6}
table{border-collapse:collapse}td,th{border:1px solid #d1d5db;padding:.3em .6em;text-align:left}
</style></head><body>
`)
	page.Write(body.Bytes())
	page.WriteString("</body></html>\n")
	return page.Bytes(), nil
}

func (s *Server) errorDocs(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(s.errorsHTML)
}

func (s *Server) webhookDocs(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(s.webhooksHTML)
}

func (s *Server) commandDocs(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(s.commandsHTML)
}
