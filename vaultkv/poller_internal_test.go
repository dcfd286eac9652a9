package vaultkv

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/secretsync/secretsync/connection"
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

// While every poll slot of a connection is taken, the polls that fall due
// wait in the schedule, not on goroutines of their own: at thousands of
// watchers behind a busy connection, each waiting poll held a goroutine.
// Once a slot is free, the waiting polls run.
func TestDuePollsWaitWithoutGoroutines(t *testing.T) {
	srv := vaulttest.Get(t)
	proxy := srv.RequestProxy(t)
	conn, err := connection.New(context.Background(), connection.Config{
		Address: proxy.URL(), Token: &connection.Token{Token: connection.Credential{Value: srv.Token}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	mount := srv.NewMount(t)
	const n, interval = 200, time.Second
	kvs := make([]*KV, n)
	for i := range kvs {
		kv, err := New(context.Background(), conn, &Options{Mount: mount, Path: fmt.Sprintf("app/%d", i), PollInterval: interval})
		if err != nil {
			t.Fatal(err)
		}
		kvs[i] = kv
	}
	// The connection's poller, with every slot taken.
	p := &poller{conn: conn, epoch: time.Now(), wake: make(chan struct{}, 1), slots: make(chan struct{}, maxPollsInFlight)}
	for range maxPollsInFlight {
		p.slots <- struct{}{}
	}
	pollers.Lock()
	pollers.m[conn] = p
	pollers.Unlock()

	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, kv := range kvs {
		kv.Notify(ctx)
	}
	time.Sleep(interval + interval/2) // every watcher's first poll falls due
	if added := runtime.NumGoroutine() - before; added > 5 {
		t.Errorf("%d due polls waiting for a slot added %d goroutines, want at most a few", n, added)
	}
	if got := polls(proxy, mount); got != 0 {
		t.Errorf("%d polls while every slot was taken, want none", got)
	}
	for range maxPollsInFlight {
		<-p.slots
	}
	// Polls that became too late meanwhile were skipped; the next ones
	// run.
	deadline := time.Now().Add(30 * time.Second)
	for polls(proxy, mount) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d due polls ran once slots were free", polls(proxy, mount), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// polls counts the metadata reads under mount that proxy passed.
func polls(proxy *vaulttest.RequestProxy, mount string) int {
	n := 0
	for _, r := range proxy.Log() {
		if strings.HasPrefix(r.Path, mount+"/metadata/") {
			n++
		}
	}
	return n
}
