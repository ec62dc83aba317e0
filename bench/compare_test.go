package bench

import "testing"

// BenchmarkCompare runs every Case once; cmd/compare runs them in
// interleaved rounds, reports medians and writes a results file.
func BenchmarkCompare(b *testing.B) {
	for _, c := range Cases() {
		b.Run(c.Workload+"/"+c.Target, c.Run)
	}
}
