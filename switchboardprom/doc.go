// Package switchboardprom exports a Switchboard Manager's telemetry as
// Prometheus metrics, on github.com/prometheus/client_golang.
//
// An Observer is both a switchboard.Observer (give it to the Manager with
// switchboard.WithObserver) and a prometheus.Collector (register it with
// your own prometheus.Registerer; this package never touches the default
// registry):
//
//	obs := switchboardprom.New(switchboardprom.Options{ConstLabels: prometheus.Labels{"instance": "support_bot"}})
//	reg.MustRegister(obs)
//	m, err := switchboard.New(cfg, switchboard.WithObserver(obs))
//
// Metrics (every name starts with switchboard_):
//
//	switchboard_sets_total                                          routes stored by Set
//	switchboard_resolutions_total{outcome,source,reason,stale}      Resolve answers (outcome hit|fallback|miss)
//	switchboard_fallbacks_total{source,reason}                      Resolve answers from a fallback
//	switchboard_stale_total                                         expired records read (and deleted)
//	switchboard_evictions_total{reason}                             records evicted (reason capacity)
//	switchboard_pruned_total                                        expired records deleted by pruning
//	switchboard_deletes_total                                       records removed by Delete or DeleteMatching
//	switchboard_confirmed_total                                     records confirmed by Confirm (delivery worked)
//	switchboard_invalidated_total                                   records invalidated by Invalidate (tombstones made)
//	switchboard_superseded_total                                    Sets refused for a fresh record of higher priority
//	switchboard_conflicts_total{op}                                 conditional Sets, Confirms, Invalidates refused (op set|confirm|invalidate)
//	switchboard_partition_entries{partition}                        records per partition, as of the last event that reported it
//
// The fallback rate is
//
//	sum(rate(switchboard_fallbacks_total[5m])) / sum(rate(switchboard_resolutions_total[5m]))
//
// and the share of stored guesses served as state (a state hit whose record
// came from a fallback) is visible to callers in Resolution.Origin; the
// invalidation rate, sum(rate(switchboard_invalidated_total[5m])), tells
// how often platforms refuse the routes Switchboard hands out.
//
// The partition gauge follows the sizes that sets, resolves, deletes and
// prunes report; reads that delete an expired record do not report one, so
// the gauge may run ahead of the truth by those until the next event in
// that partition (at the latest the next background prune).
package switchboardprom
