package main

import (
	"log/slog"
	"testing"
	"time"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/state"
	"github.com/secretsync/secretsync/sync"
)

// testSync is a sync of a generation built by testGen.
type testSync struct {
	name     string
	auto     bool
	mode     sync.Mode
	src      destination.Reader
	dst      destination.Destination
	interval time.Duration // auto-sync reconcile; 0 means 20 ms
}

// testGen builds a generation of in-memory syncs on one in-memory store,
// their rounds counted by m; lock, when not nil, is the store's lock.
func testGen(t *testing.T, m *metrics, syncs ...testSync) *generation {
	t.Helper()
	return testGenLock(t, m, nil, syncs...)
}

func testGenLock(t *testing.T, m *metrics, lock state.Lock, syncs ...testSync) *generation {
	t.Helper()
	g := &generation{syncs: map[string]*managed{}, store: state.NewMemory()}
	if lock != nil {
		g.lock = newTrackedLock(lock)
	}
	for _, ts := range syncs {
		interval := ts.interval
		if interval == 0 {
			interval = 20 * time.Millisecond
		}
		s, err := sync.New(sync.Config{
			Name: ts.name, Source: ts.src, Destination: ts.dst, Mode: ts.mode,
			Store: g.store, Lock: g.stateLock(),
			AutoSync: sync.AutoSync{Disabled: !ts.auto, Interval: interval, Debounce: time.Millisecond,
				MinBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, StopGrace: time.Second},
			OnRound: func(rep *sync.Report, err error) { m.observe(ts.name, rep, err) },
		})
		if err != nil {
			t.Fatal(err)
		}
		g.syncs[ts.name] = &managed{cfg: &SyncConfig{Name: ts.name}, syncer: s, auto: ts.auto}
		g.names = append(g.names, ts.name)
	}
	return g
}

// testDaemon returns a daemon whose running generation is g, not started:
// its syncs have their metrics, and no Watch runs.
func testDaemon(g *generation, m *metrics) *daemon {
	if m == nil {
		m = newMetrics()
	}
	d := &daemon{log: slog.New(slog.DiscardHandler), metrics: m, gen: g}
	m.configure(g.names)
	return d
}

// startTestDaemon is testDaemon with g started; the test stops it.
func startTestDaemon(t *testing.T, g *generation, m *metrics) *daemon {
	t.Helper()
	d := testDaemon(g, m)
	d.start(g)
	t.Cleanup(func() { d.current().stop(nil) })
	return d
}
