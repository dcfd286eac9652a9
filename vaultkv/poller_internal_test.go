package vaultkv

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/secretsync/secretsync/vaultkv/vaulttest"
)

// The phases given to the watchers of a connection spread them evenly
// over the interval, whatever their number: no tenth of the interval holds
// more than twice its share (from two watchers per tenth on).
func TestPhasesSpreadEvenly(t *testing.T) {
	const buckets = 10
	var counts [buckets]int
	for n := 1; n <= 20000; n++ {
		f := phase(uint64(n - 1))
		if f < 0 || f >= 1 {
			t.Fatalf("phase(%d) = %v, outside [0, 1)", n-1, f)
		}
		counts[int(f*buckets)]++
		if n < 2*buckets {
			continue
		}
		mean := float64(n) / buckets
		for b, c := range counts {
			if float64(c) > 2*mean {
				t.Fatalf("%d watchers: tenth %d holds %d, more than twice the mean %.1f", n, b, c, mean)
			}
		}
	}
}

// Watching many KVs of one connection costs one goroutine (the
// connection's poller) between polls, not one or more per KV; the poller
// ends with the last watcher.
func TestNotifySharesOnePoller(t *testing.T) {
	srv := vaulttest.Get(t)
	conn := srv.Conn(t)
	mount := srv.NewMount(t)
	const n = 200
	kvs := make([]*KV, n)
	for i := range kvs {
		kv, err := New(context.Background(), conn, &Options{Mount: mount, Path: "app", PollInterval: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		kvs[i] = kv
	}
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, kv := range kvs {
		kv.Notify(ctx)
	}
	// Slack for the first poll, due at once, and its HTTP connection.
	if added := runtime.NumGoroutine() - before; added > 10 {
		t.Errorf("%d watchers added %d goroutines, want at most a few", n, added)
	}
	pollers.Lock()
	p := pollers.m[conn]
	pollers.Unlock()
	if p == nil {
		t.Fatal("no poller for the connection")
	}
	p.mu.Lock()
	queued := len(p.queue)
	p.mu.Unlock()
	if queued != n {
		t.Errorf("the poller holds %d watchers, want %d", queued, n)
	}
	cancel()
	deadline := time.Now().Add(30 * time.Second)
	for {
		pollers.Lock()
		_, left := pollers.m[conn]
		pollers.Unlock()
		if !left {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the poller outlived its watchers")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
