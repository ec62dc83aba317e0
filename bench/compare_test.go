package bench

import "testing"

// BenchmarkCompare runs every Case once, on one Suite; cmd/compare runs
// them in interleaved rounds, reports medians and writes a results file.
func BenchmarkCompare(b *testing.B) {
	s := NewSuite()
	defer s.Close()
	for _, c := range s.Cases() {
		b.Run(c.Workload+"/"+c.Target, c.Run)
		if c.Done != nil {
			c.Done()
		}
	}
}
