// Package api carries the OpenAPI 3 document of Switchboard's HTTP API,
// openapi.yaml beside this file, which the server serves at
// GET /v1/openapi.yaml.
package api

import (
	_ "embed"
	"slices"
)

//go:embed openapi.yaml
var openAPI []byte

// OpenAPI returns a copy of the OpenAPI document (YAML).
func OpenAPI() []byte { return slices.Clone(openAPI) }
