package vaultkv_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	gosync "sync"
	"testing"
	"time"

	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/sync"
	"github.com/secretsync/secretsync/vaultkv"
	"github.com/secretsync/secretsync/vaultkv/vaulttest"
)

// BenchmarkReplicaShare runs the same N watched syncs on 3 replicas that
// share the Vault state store and its locks, replica 0 first and the
// others once it runs every sync (as after a rolling deploy or a
// restart), and measures how the syncs are shared two lock TTLs later and how long the syncs of a replica that dies take to
// run elsewhere.
//
// Settings (environment): SECRETSYNC_REPLICA_N syncs (default 30),
// SECRETSYNC_REPLICA_TTL lock TTL (default 15s, the Lock's default). Run
// it once: -run '^$' -bench ReplicaShare -benchtime 1x.
//
// Metrics: share-max and share-min, the largest and smallest fraction of
// the syncs one replica runs (a third each is the aim); takeover-s, from
// the death of the replica that ran the most (its link to Vault cut, its
// process gone) until every one of its syncs has run a round on another
// replica; takeover/ttl, the same in lock TTLs.
func BenchmarkReplicaShare(b *testing.B) {
	n := scaleEnv(b, "SECRETSYNC_REPLICA_N", 30, strconv.Atoi)
	ttl := scaleEnv(b, "SECRETSYNC_REPLICA_TTL", 15*time.Second, time.ParseDuration)
	srv := vaulttest.Get(b)
	for range b.N {
		replicaShare(b, srv, n, ttl)
	}
}

func replicaShare(b *testing.B, srv *vaulttest.Server, n int, ttl time.Duration) {
	const replicas = 3
	mount := srv.NewMount(b)
	hosts := make([]*memory.Destination, n)
	for i := range hosts {
		hosts[i] = memory.New(map[string]string{"A": "a" + strconv.Itoa(i)})
	}
	// ran[i] is the replica that ran sync i's last round, and when.
	type run struct {
		replica int
		at      time.Time
	}
	var mu gosync.Mutex
	ran := make([]run, n)
	for i := range ran {
		ran[i].replica = -1
	}
	links := make([]*vaulttest.RequestProxy, replicas)
	stops := make([]context.CancelFunc, replicas)
	var watching gosync.WaitGroup
	start := func(r int) {
		links[r] = srv.RequestProxy(b)
		conn := connThrough(b, links[r], srv.Token, 1, 5*time.Second)
		store := newStore(b, srv, conn, mount)
		lock, err := store.NewLock(&vaultkv.LockOptions{TTL: ttl, Holder: fmt.Sprint("replica-", r)})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		stops[r] = cancel
		for i := range n {
			kv, err := vaultkv.New(ctx, conn, &vaultkv.Options{Mount: mount, Path: fmt.Sprintf("app/%d", i), PollInterval: 10 * time.Second})
			if err != nil {
				b.Fatal(err)
			}
			s, err := sync.New(sync.Config{Name: "s" + strconv.Itoa(i), Source: hosts[i], Destination: kv, Store: store, Lock: lock,
				AutoSync: sync.AutoSync{Interval: 2 * time.Second},
				OnRound: func(*sync.Report, error) {
					mu.Lock()
					ran[i] = run{r, time.Now()}
					mu.Unlock()
				}})
			if err != nil {
				b.Fatal(err)
			}
			watching.Go(func() { _ = s.Watch(ctx) })
		}
	}
	defer func() {
		for _, stop := range stops {
			if stop != nil {
				stop()
			}
		}
		watching.Wait()
	}()
	shares := func() []int {
		mu.Lock()
		defer mu.Unlock()
		counts := make([]int, replicas)
		for _, r := range ran {
			if r.replica >= 0 {
				counts[r.replica]++
			}
		}
		return counts
	}
	allRan := func() {
		deadline := time.Now().Add(5 * time.Minute)
		for c := shares(); c[0]+c[1]+c[2] < n; c = shares() {
			if time.Now().After(deadline) {
				b.Fatalf("after 5 minutes, rounds ran for %v of %d syncs", c, n)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	start(0)
	allRan()
	start(1)
	start(2)
	// Let the share settle for two TTLs: a fair scheme hands locks on to
	// the replicas that joined.
	time.Sleep(2 * ttl)
	counts := shares()
	b.Logf("syncs run by each replica: %v", counts)

	dead := 0
	for r, c := range counts {
		if c > counts[dead] {
			dead = r
		}
	}
	mu.Lock()
	var orphans []int
	for i, r := range ran {
		if r.replica == dead {
			orphans = append(orphans, i)
		}
	}
	mu.Unlock()
	links[dead].Intercept(func(*http.Request) vaulttest.Verdict { return vaulttest.Drop })
	stops[dead]()
	died := time.Now()
	var takeover time.Duration
	for takeover == 0 {
		if time.Since(died) > 5*time.Minute {
			b.Fatal("the dead replica's syncs did not all run elsewhere within 5 minutes")
		}
		mu.Lock()
		left := slices.ContainsFunc(orphans, func(i int) bool { return ran[i].replica == dead || ran[i].at.Before(died) })
		mu.Unlock()
		if !left {
			takeover = time.Since(died)
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.ReportMetric(float64(slices.Max(counts))/float64(n), "share-max")
	b.ReportMetric(float64(slices.Min(counts))/float64(n), "share-min")
	b.ReportMetric(takeover.Seconds(), "takeover-s")
	b.ReportMetric(float64(takeover)/float64(ttl), "takeover/ttl")
}
