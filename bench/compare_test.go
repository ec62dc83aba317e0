package bench

import "testing"

// BenchmarkCompare runs every Case once; cmd/compare runs them in
// interleaved rounds and reports medians.
func BenchmarkCompare(b *testing.B) {
	for _, c := range Cases() {
		b.Run(c.Workload+"/"+c.Target, c.Run)
	}
}
