package wire

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/switchboard-go/switchboard"
)

func TestCodes(t *testing.T) {
	tests := []struct {
		code     string
		status   int
		sentinel error
	}{
		{CodeNotFound, 404, switchboard.ErrNotFound},
		{CodeExpired, 410, switchboard.ErrExpired},
		{CodeNoRoute, 404, switchboard.ErrNoRoute},
		{CodeInvalidSessionKey, 400, switchboard.ErrInvalidSessionKey},
		{CodeInvalidRoute, 400, switchboard.ErrInvalidRoute},
		{CodeInvalidTTL, 400, switchboard.ErrInvalidTTL},
		{CodePartitionUnavailable, 503, switchboard.ErrPartitionUnavailable},
		{CodeStorageUnavailable, 503, switchboard.ErrStorageUnavailable},
		{CodeUnavailable, 503, switchboard.ErrClosed},
		{CodeInvalidJSON, 400, nil},
		{CodeUnauthorized, 401, nil},
		{CodeForbidden, 403, nil},
		{CodeUnknownInstance, 404, nil},
		{CodeBodyTooLarge, 413, nil},
		{CodeMethodNotAllowed, 405, nil},
		{CodeInternal, 500, nil},
		{"no_such_code", 500, nil},
	}
	for _, tt := range tests {
		if got := Status(tt.code); got != tt.status {
			t.Errorf("Status(%s) = %d, want %d", tt.code, got, tt.status)
		}
		if got := Sentinel(tt.code); got != tt.sentinel {
			t.Errorf("Sentinel(%s) = %v, want %v", tt.code, got, tt.sentinel)
		}
		if tt.sentinel != nil {
			if got := CodeOf(fmt.Errorf("op: %w", tt.sentinel)); got != tt.code {
				t.Errorf("CodeOf(wrapped %v) = %s, want %s", tt.sentinel, got, tt.code)
			}
		}
	}
	if got := CodeOf(errors.New("boom")); got != CodeInternal || Status(got) != http.StatusInternalServerError {
		t.Errorf("CodeOf(other) = %s", got)
	}
}
