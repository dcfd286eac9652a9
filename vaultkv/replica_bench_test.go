package vaultkv_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/internal/rendezvous"
	"github.com/secretsync/secretsync/sync"
	"github.com/secretsync/secretsync/vaultkv"
	"github.com/secretsync/secretsync/vaultkv/vaulttest"
)

// BenchmarkReplicaShare runs the same N watched syncs on 3 replicas that
// share the Vault state store and its locks, in two orders: the replicas
// started together, and replica 0 first with the others once it runs every
// sync (as after a rolling deploy or a restart). It waits (up to 5 minutes)
// until every sync runs on its preferred replica, reports how the syncs
// are shared, how many lock reads the replicas standing by make, and, in
// the second order, how long the syncs of a replica that dies take to run
// elsewhere.
//
// Settings (environment): SECRETSYNC_REPLICA_N syncs (default 30),
// SECRETSYNC_REPLICA_TTL lock TTL (default 15s, the Lock's default). Run
// it once: -run '^$' -bench ReplicaShare -benchtime 1x.
//
// Metrics: together-max and together-min, the largest and smallest
// fraction of the syncs one replica runs when started together (a third
// each is the aim); late-max and late-min, the same with late joiners;
// settle-s, from the late joiners' start until every sync runs on its
// preferred replica; standby-req/s, the lock reads of all replicas per
// second once settled (started together), which are all standby polls,
// since a holder only renews; takeover-s, from the death of the replica
// that ran the most (its link to Vault cut, its process gone) until every
// one of its syncs has run a round on another replica; takeover/ttl, the
// same in lock TTLs.
func BenchmarkReplicaShare(b *testing.B) {
	n := scaleEnv(b, "SECRETSYNC_REPLICA_N", 30, strconv.Atoi)
	ttl := scaleEnv(b, "SECRETSYNC_REPLICA_TTL", 15*time.Second, time.ParseDuration)
	srv := vaulttest.Get(b)
	for range b.N {
		together := newReplicaRun(b, srv, n, ttl)
		for r := range benchReplicas {
			together.start(r)
		}
		together.settle()
		counts := together.shares()
		b.Logf("started together, syncs run by each replica: %v", counts)
		b.ReportMetric(float64(slices.Max(counts))/float64(n), "together-max")
		b.ReportMetric(float64(slices.Min(counts))/float64(n), "together-min")
		reads := together.lockReads.Load()
		window := 2 * ttl
		time.Sleep(window)
		b.ReportMetric(float64(together.lockReads.Load()-reads)/window.Seconds(), "standby-req/s")
		together.stop()

		late := newReplicaRun(b, srv, n, ttl)
		late.start(0)
		late.allRan()
		joined := time.Now()
		late.start(1)
		late.start(2)
		late.settle()
		b.ReportMetric(time.Since(joined).Seconds(), "settle-s")
		counts = late.shares()
		b.Logf("with late joiners, syncs run by each replica: %v", counts)
		b.ReportMetric(float64(slices.Max(counts))/float64(n), "late-max")
		b.ReportMetric(float64(slices.Min(counts))/float64(n), "late-min")
		takeover := late.kill(slices.Index(counts, slices.Max(counts)))
		b.ReportMetric(takeover.Seconds(), "takeover-s")
		b.ReportMetric(float64(takeover)/float64(ttl), "takeover/ttl")
		late.stop()
	}
}

const benchReplicas = 3 // in BenchmarkReplicaShare

// replicaRun is N watched syncs on up to 3 replicas over one mount.
type replicaRun struct {
	b     *testing.B
	srv   *vaulttest.Server
	n     int
	ttl   time.Duration
	mount string
	hosts []*memory.Destination

	mu  gosync.Mutex
	ran []replicaRound // the replica that ran sync i's last round, and when

	lockReads atomic.Int64
	links     [benchReplicas]*vaulttest.RequestProxy
	stops     [benchReplicas]context.CancelFunc
	watching  gosync.WaitGroup
}

type replicaRound struct {
	replica int
	at      time.Time
}

func newReplicaRun(b *testing.B, srv *vaulttest.Server, n int, ttl time.Duration) *replicaRun {
	x := &replicaRun{b: b, srv: srv, n: n, ttl: ttl, mount: srv.NewMount(b), hosts: make([]*memory.Destination, n), ran: make([]replicaRound, n)}
	for i := range x.hosts {
		x.hosts[i] = memory.New(map[string]string{"A": "a" + strconv.Itoa(i)})
		x.ran[i].replica = -1
	}
	b.Cleanup(x.stop)
	return x
}

func (x *replicaRun) start(r int) {
	b := x.b
	x.links[r] = x.srv.RequestProxy(b)
	x.links[r].OnAnswered(func(req *http.Request) {
		if req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/data/secretsync/lock/") {
			x.lockReads.Add(1)
		}
	})
	conn := connThrough(b, x.links[r], x.srv.Token, 1, 5*time.Second)
	store := newStore(b, x.srv, conn, x.mount)
	lock, err := store.NewLock(&vaultkv.LockOptions{TTL: x.ttl, Holder: fmt.Sprint("replica-", r)})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	x.stops[r] = cancel
	for i := range x.n {
		kv, err := vaultkv.New(ctx, conn, &vaultkv.Options{Mount: x.mount, Path: fmt.Sprintf("app/%d", i), PollInterval: 10 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		s, err := sync.New(sync.Config{Name: "s" + strconv.Itoa(i), Source: x.hosts[i], Destination: kv, Store: store, Lock: lock,
			AutoSync: sync.AutoSync{Interval: 2 * time.Second},
			OnRound: func(*sync.Report, error) {
				x.mu.Lock()
				x.ran[i] = replicaRound{r, time.Now()}
				x.mu.Unlock()
			}})
		if err != nil {
			b.Fatal(err)
		}
		x.watching.Go(func() { _ = s.Watch(ctx) })
	}
}

func (x *replicaRun) stop() {
	for _, stop := range x.stops {
		if stop != nil {
			stop()
		}
	}
	x.watching.Wait()
}

func (x *replicaRun) shares() []int {
	x.mu.Lock()
	defer x.mu.Unlock()
	counts := make([]int, benchReplicas)
	for _, r := range x.ran {
		if r.replica >= 0 {
			counts[r.replica]++
		}
	}
	return counts
}

// waitFor waits until cond, for up to 5 minutes.
func (x *replicaRun) waitFor(what string, cond func() bool) {
	deadline := time.Now().Add(5 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			x.b.Fatalf("after 5 minutes, not yet %s (syncs run by each replica: %v)", what, x.shares())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// allRan waits until every sync has run a round.
func (x *replicaRun) allRan() {
	x.waitFor("a round of every sync", func() bool {
		c := x.shares()
		return c[0]+c[1]+c[2] == x.n
	})
}

// settle waits until every sync's last round ran on its preferred replica
// among the 3 (see vaultkv.Lock).
func (x *replicaRun) settle() {
	members := []string{"replica-0", "replica-1", "replica-2"}
	x.waitFor("every sync on its preferred replica", func() bool {
		x.mu.Lock()
		defer x.mu.Unlock()
		for i, r := range x.ran {
			if r.replica < 0 || members[r.replica] != rendezvous.Pick("s"+strconv.Itoa(i), members) {
				return false
			}
		}
		return true
	})
}

// kill cuts replica dead's link to Vault and stops it, and returns how long
// until every sync it ran has run a round elsewhere.
func (x *replicaRun) kill(dead int) time.Duration {
	x.mu.Lock()
	var orphans []int
	for i, r := range x.ran {
		if r.replica == dead {
			orphans = append(orphans, i)
		}
	}
	x.mu.Unlock()
	x.links[dead].Intercept(func(*http.Request) vaulttest.Verdict { return vaulttest.Drop })
	x.stops[dead]()
	died := time.Now()
	x.waitFor("the dead replica's syncs run elsewhere", func() bool {
		x.mu.Lock()
		defer x.mu.Unlock()
		return !slices.ContainsFunc(orphans, func(i int) bool { return x.ran[i].replica == dead || x.ran[i].at.Before(died) })
	})
	return time.Since(died)
}
