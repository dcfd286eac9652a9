package sync_test

import (
	"context"
	"fmt"
	"runtime"
	gosync "sync"
	"sync/atomic"
	"testing"

	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/sync"
)

// An idle watched sync costs one goroutine, its Watch's own, even when
// both sides announce changes; and a change announced by either side is
// still carried by a round.
func TestWatchIdleCostsOneGoroutine(t *testing.T) {
	const n = 50
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	var rounds atomic.Int64
	srcs := make([]*memory.Destination, n)
	dsts := make([]*memory.Destination, n)
	var wg gosync.WaitGroup
	for i := range n {
		srcs[i], dsts[i] = memory.New(map[string]string{"A": "1"}), memory.New(nil)
		s, err := sync.New(sync.Config{Name: fmt.Sprint("s", i), Source: srcs[i], Destination: dsts[i], Mode: sync.Bidirectional,
			AutoSync: sync.AutoSync{Interval: -1}, OnRound: func(*sync.Report, error) { rounds.Add(1) }})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { _ = s.Watch(ctx) })
	}
	defer func() { cancel(); wg.Wait() }()
	eventually(t, "every first round", func() bool { return rounds.Load() == n })
	if added := runtime.NumGoroutine() - before; added > n {
		t.Errorf("%d idle watched syncs run %d goroutines, want at most %d", n, added, n)
	}
	srcs[0].Set("A", "2")
	eventually(t, "the source's change carried", func() bool { s, _ := dsts[0].Get("A"); return s.Value == "2" })
	dsts[1].Set("A", "3")
	eventually(t, "the destination's change carried", func() bool { s, _ := srcs[1].Get("A"); return s.Value == "3" })
}
