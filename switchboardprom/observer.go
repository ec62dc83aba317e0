package switchboardprom

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-go/switchboard"
)

// Options configures an Observer. The zero value is usable.
type Options struct {
	// ConstLabels are added to every metric, e.g. {"instance": "support_bot"}
	// when one process serves several Managers. Default: none.
	ConstLabels prometheus.Labels
}

// Observer counts a Manager's events in Prometheus metrics. It implements
// switchboard.Observer and prometheus.Collector and is safe for concurrent
// use. Create it with New.
type Observer struct {
	sets        prometheus.Counter
	resolutions *prometheus.CounterVec
	fallbacks   *prometheus.CounterVec
	stale       prometheus.Counter
	evictions   *prometheus.CounterVec
	pruned      prometheus.Counter
	deletes     prometheus.Counter
	confirmed   prometheus.Counter
	invalidated prometheus.Counter
	superseded  prometheus.Counter
	conflicts   *prometheus.CounterVec
	entries     *prometheus.GaugeVec

	gauges sync.Map // partition index (int) -> prometheus.Gauge, so events need no label formatting
}

var (
	_ switchboard.Observer = (*Observer)(nil)
	_ prometheus.Collector = (*Observer)(nil)
)

// New returns an Observer with the metrics described in the package
// documentation. Register it with a prometheus.Registerer to export them.
func New(opts Options) *Observer {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: opts.ConstLabels})
	}
	counterVec := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: opts.ConstLabels}, labels)
	}
	return &Observer{
		sets: counter("switchboard_sets_total", "Routes stored by Set."),
		resolutions: counterVec("switchboard_resolutions_total",
			"Resolve answers by outcome (hit, fallback, miss), source, fallback reason and staleness.",
			"outcome", "source", "reason", "stale"),
		fallbacks: counterVec("switchboard_fallbacks_total", "Resolve answers taken from a fallback, by source and reason.",
			"source", "reason"),
		stale:     counter("switchboard_stale_total", "Expired records read (and deleted)."),
		evictions: counterVec("switchboard_evictions_total", "Records evicted, by reason.", "reason"),
		pruned:    counter("switchboard_pruned_total", "Expired records deleted by pruning."),
		deletes:   counter("switchboard_deletes_total", "Records removed by Delete."),
		confirmed: counter("switchboard_confirmed_total", "Records confirmed by delivery feedback (Confirm)."),
		invalidated: counter("switchboard_invalidated_total",
			"Records invalidated by delivery feedback (Invalidate): tombstones made."),
		superseded: counter("switchboard_superseded_total", "Sets refused because a fresh record of higher priority stands."),
		conflicts: counterVec("switchboard_conflicts_total",
			"Conditional Sets, Confirms and Invalidates that found another record than they required, by operation.", "op"),
		entries: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "switchboard_partition_entries", Help: "Records held per partition.", ConstLabels: opts.ConstLabels,
		}, []string{"partition"}),
	}
}

// Observe implements switchboard.Observer.
func (o *Observer) Observe(e switchboard.Event) {
	switch e.Kind {
	case switchboard.EventSet:
		o.sets.Inc()
	case switchboard.EventResolved:
		o.resolutions.WithLabelValues(string(e.Outcome), string(e.Source), string(e.FallbackReason), strconv.FormatBool(e.Stale)).Inc()
	case switchboard.EventFallback:
		o.fallbacks.WithLabelValues(string(e.Source), string(e.FallbackReason)).Inc()
	case switchboard.EventStale:
		o.stale.Inc()
	case switchboard.EventEvicted:
		o.evictions.WithLabelValues(string(e.EvictionReason)).Add(float64(e.Count))
	case switchboard.EventPruned:
		o.pruned.Add(float64(e.Count))
	case switchboard.EventDeleted:
		o.deletes.Inc()
	case switchboard.EventConfirmed:
		o.confirmed.Inc()
	case switchboard.EventInvalidated:
		o.invalidated.Inc()
	case switchboard.EventSuperseded:
		o.superseded.Inc()
	case switchboard.EventConflict:
		o.conflicts.WithLabelValues(e.Op).Inc()
	}
	if e.Size >= 0 && e.Kind != switchboard.EventStale && e.Kind != switchboard.EventFallback {
		o.gauge(e.Partition).Set(float64(e.Size))
	}
}

func (o *Observer) gauge(p int) prometheus.Gauge {
	if g, ok := o.gauges.Load(p); ok {
		return g.(prometheus.Gauge)
	}
	g, _ := o.gauges.LoadOrStore(p, o.entries.WithLabelValues(strconv.Itoa(p)))
	return g.(prometheus.Gauge)
}

// Describe implements prometheus.Collector.
func (o *Observer) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range o.collectors() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (o *Observer) Collect(ch chan<- prometheus.Metric) {
	for _, c := range o.collectors() {
		c.Collect(ch)
	}
}

func (o *Observer) collectors() []prometheus.Collector {
	return []prometheus.Collector{o.sets, o.resolutions, o.fallbacks, o.stale, o.evictions, o.pruned, o.deletes,
		o.confirmed, o.invalidated, o.superseded, o.conflicts, o.entries}
}
