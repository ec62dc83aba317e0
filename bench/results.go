package bench

// Results is what cmd/compare writes and cmd/charts reads.
type Results struct {
	Go         string   `json:"go"`
	GOMAXPROCS int      `json:"gomaxprocs"`
	Arch       string   `json:"arch"`
	Rounds     int      `json:"rounds"`
	Benchtime  string   `json:"benchtime"`
	LiveKeys   int      `json:"live_keys"`
	Rows       []Result `json:"rows"`
}

// Result is one workload on one target.
type Result struct {
	Workload  string    `json:"workload"` // e.g. "get_hit/parallel"
	Target    string    `json:"target"`
	MedianNs  float64   `json:"median_ns_per_op"`
	OpsPerSec float64   `json:"ops_per_sec"`
	Rounds    []float64 `json:"rounds_ns_per_op"`
	MissPct   float64   `json:"miss_pct"`
}
