package main

import (
	"fmt"
	"net/http"
	"slices"
	gosync "sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/secretsync/secretsync/sync"
)

// Label values that every configured sync has from the start.
var (
	// operations are the operations the daemon runs: rounds, and the
	// rounds that resolve a conflict through the API.
	operations = []string{sync.OpSync, sync.OpResolve}
	// changeActions are the actions that write a key (Totals.Changed).
	changeActions = []string{sync.Created.String(), sync.Updated.String(), sync.Deleted.String(), sync.Imported.String()}
)

// metrics are the daemon's Prometheus metrics, on a registry of its own,
// and the outcome of each sync's latest round, which /readyz reads. Every
// sync of the running configuration has its series from the start, at 0.
// It is safe for concurrent use; it outlives reloads.
type metrics struct {
	reg         *prometheus.Registry
	duration    *prometheus.HistogramVec // sync, operation
	rounds      *prometheus.CounterVec   // sync
	failures    *prometheus.CounterVec   // sync
	changed     *prometheus.CounterVec   // sync, action
	keyFailures *prometheus.CounterVec   // sync
	conflicts   *prometheus.GaugeVec     // sync
	lastSuccess *prometheus.GaugeVec     // sync

	mu     gosync.Mutex
	syncs  []string // configured
	latest map[string]roundOutcome
}

// roundOutcome is what a sync's latest round (operation "sync") came to.
type roundOutcome struct {
	ok  bool      // no error and no key failed
	at  time.Time // when it finished
	msg string    // one line, for a failed round
	// failingSince is when the first of the failed rounds in a row
	// finished; zero after a success.
	failingSince time.Time
}

func newMetrics() *metrics {
	bi := readBuildInfo()
	m := &metrics{
		reg: prometheus.NewRegistry(),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "secretsync_round_duration_seconds",
			Help:    "Duration of rounds, by sync and operation (sync, or resolve for a conflict resolved through the API).",
			Buckets: []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}, []string{"sync", "operation"}),
		rounds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "secretsync_rounds_total",
			Help: "Rounds run (resolutions included), by sync.",
		}, []string{"sync"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "secretsync_round_failures_total",
			Help: "Rounds that failed or in which a key failed, by sync.",
		}, []string{"sync"}),
		changed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "secretsync_keys_changed_total",
			Help: "Keys written, by sync and action (created, updated, deleted, imported).",
		}, []string{"sync", "action"}),
		keyFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "secretsync_key_failures_total",
			Help: "Keys whose write failed, by sync.",
		}, []string{"sync"}),
		conflicts: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "secretsync_flagged_conflicts",
			Help: "Conflicts flagged and waiting for a resolution, by sync, as of its latest round that could read its state.",
		}, []string{"sync"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "secretsync_last_success_timestamp_seconds",
			Help: "When the latest successful round of the sync finished, in Unix seconds; 0 before the first.",
		}, []string{"sync"}),
		latest: map[string]roundOutcome{},
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "secretsync_build_info",
		Help:        "Always 1; its labels say which syncd this is.",
		ConstLabels: prometheus.Labels{"version": bi.Version, "revision": bi.Revision, "goversion": bi.GoVersion},
	})
	build.Set(1)
	m.reg.MustRegister(m.duration, m.rounds, m.failures, m.changed, m.keyFailures, m.conflicts, m.lastSuccess, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// handler serves the registry in the Prometheus exposition formats.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// configure gives every sync in names its series, at 0 until it runs, and
// removes the series (and the latest outcome) of the syncs no longer
// configured. It is called with each configuration that starts running.
func (m *metrics) configure(names []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, n := range m.syncs {
		if slices.Contains(names, n) {
			continue
		}
		gone := prometheus.Labels{"sync": n}
		for _, v := range []interface {
			DeletePartialMatch(prometheus.Labels) int
		}{m.duration, m.rounds, m.failures, m.changed, m.keyFailures, m.conflicts, m.lastSuccess} {
			v.DeletePartialMatch(gone)
		}
		delete(m.latest, n)
	}
	for _, n := range names {
		for _, op := range operations {
			m.duration.WithLabelValues(n, op)
		}
		for _, a := range changeActions {
			m.changed.WithLabelValues(n, a)
		}
		m.rounds.WithLabelValues(n)
		m.failures.WithLabelValues(n)
		m.keyFailures.WithLabelValues(n)
		m.conflicts.WithLabelValues(n)
		m.lastSuccess.WithLabelValues(n)
	}
	m.syncs = slices.Clone(names)
}

// failed reports whether a round failed: it returned an error, or a key
// failed in it (a timeout on one key does not always fail the round).
func failed(rep *sync.Report, err error) bool {
	return err != nil || (rep != nil && rep.Totals.Failed > 0)
}

// observe counts a round of the named sync; it is the Syncer's OnRound,
// which gives every round a report.
func (m *metrics) observe(name string, rep *sync.Report, err error) {
	if rep == nil {
		now := time.Now()
		rep = &sync.Report{Operation: sync.OpSync, Flagged: -1, Started: now, Finished: now}
	}
	finished := rep.Finished
	if finished.IsZero() {
		finished = time.Now()
	}
	op := rep.Operation
	if op == "" {
		op = sync.OpSync
	}
	bad := failed(rep, err)
	m.duration.WithLabelValues(name, op).Observe(max(rep.Finished.Sub(rep.Started).Seconds(), 0))
	m.rounds.WithLabelValues(name).Inc()
	m.failures.WithLabelValues(name).Add(b2f(bad))
	t := rep.Totals
	for a, n := range map[sync.Action]int{sync.Created: t.Created, sync.Updated: t.Updated, sync.Deleted: t.Deleted, sync.Imported: t.Imported} {
		m.changed.WithLabelValues(name, a.String()).Add(float64(n))
	}
	m.keyFailures.WithLabelValues(name).Add(float64(t.Failed))
	// Flagged counts every conflict flagged in the store when the round
	// ended, earlier rounds' included; it is -1 when the round could not
	// read the store, and then the gauge keeps its value: a round that
	// failed resolved nothing. The round's own conflicts are flagged too,
	// so they are a floor.
	if rep.Flagged >= 0 {
		m.conflicts.WithLabelValues(name).Set(float64(max(rep.Flagged, t.Conflicts)))
	}
	if op != sync.OpSync {
		return
	}
	if !bad {
		m.lastSuccess.WithLabelValues(name).Set(float64(finished.UnixNano()) / 1e9)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := roundOutcome{ok: !bad, at: finished}
	if bad {
		out.failingSince = finished
		if prev, ok := m.latest[name]; ok && !prev.ok {
			out.failingSince = prev.failingSince
		}
		out.msg = roundMessage(rep, err)
	}
	m.latest[name] = out
}

// roundMessage says in one line why a round failed.
func roundMessage(rep *sync.Report, err error) string {
	if err != nil {
		return sync.OneLine(err)
	}
	return fmt.Sprintf("%d keys failed", rep.Totals.Failed)
}

// outcome returns the latest round of the named sync, and whether it ran.
func (m *metrics) outcome(name string) (roundOutcome, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.latest[name]
	return o, ok
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
