// Package apiclient is a client of Switchboard's HTTP API generated from
// api/openapi.yaml by oapi-codegen, used only to prove that the document
// generates a client that works against the server (see its test). The
// project's own Go client is package client.
package apiclient

//go:generate go run github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen@v2.8.2 -config oapi-codegen.yaml ../../api/openapi.yaml
