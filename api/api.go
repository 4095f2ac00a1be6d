// Package api embeds the hand-written OpenAPI 3.1 document of the REST API.
package api

import _ "embed"

// OpenAPIYAML is api/openapi.yaml, served as JSON at /v1/openapi.json.
//
//go:embed openapi.yaml
var OpenAPIYAML []byte
