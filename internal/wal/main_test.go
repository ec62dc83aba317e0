package wal

import (
	"testing"

	"go.uber.org/goleak"
)

// Every Writer's goroutine ends with Close (or its first error).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
