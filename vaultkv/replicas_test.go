package vaultkv_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/state"
	"github.com/secretsync/secretsync/sync"
	"github.com/secretsync/secretsync/vaultkv"
	"github.com/secretsync/secretsync/vaultkv/vaulttest"
)

// rounds records when each replica's rounds start and end, from the status
// records they save.
type rounds struct {
	mu   gosync.Mutex
	list []round
}

type round struct {
	replica    int
	start, end time.Time // end is zero while running
}

type trackedStore struct {
	state.Store
	replica int
	r       *rounds
}

func (s trackedStore) Save(ctx context.Context, name string, st *state.State) error {
	err := s.Store.Save(ctx, name, st)
	if err != nil || st.Sync == nil {
		return err
	}
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	switch st.Sync.Status {
	case state.Running:
		s.r.list = append(s.r.list, round{replica: s.replica, start: time.Now()})
	default: // succeeded, failed, or ended with conflicts
		for i := len(s.r.list) - 1; i >= 0; i-- {
			if s.r.list[i].replica == s.replica && s.r.list[i].end.IsZero() {
				s.r.list[i].end = time.Now()
				break
			}
		}
	}
	return nil
}

func (r *rounds) snapshot() []round {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]round(nil), r.list...)
}

// TestThreeReplicas runs three replicas of one sync with the Vault store and
// lock, stops the one running rounds in the middle, and checks that rounds
// never overlapped, that no concurrent write in Vault was overwritten, that
// a survivor took over within about the lease TTL, and that the sync
// converges.
func TestThreeReplicas(t *testing.T) {
	srv := vaulttest.Get(t)
	mount := srv.NewMount(t, vaulttest.MountOptions{MaxVersions: 100000})
	const ttl = 2 * time.Second
	initial := map[string]string{}
	for i := range 20 {
		initial[fmt.Sprintf("K%02d", i)] = "src-0"
	}
	for i := range 3 {
		initial[fmt.Sprintf("W%d", i)] = "src-0"
	}
	host := memory.New(initial)
	rec := &rounds{}
	type replica struct {
		link   *vaulttest.RequestProxy
		stop   context.CancelFunc
		done   chan error
		syncer *sync.Syncer
	}
	replicas := make([]*replica, 3)
	for i := range replicas {
		l := srv.RequestProxy(t)
		conn := linkConn(t, srv, l)
		store := newStore(t, srv, conn, mount)
		lock, err := store.NewLock(&vaultkv.LockOptions{TTL: ttl, Holder: fmt.Sprint("replica-", i)})
		if err != nil {
			t.Fatal(err)
		}
		kv, err := vaultkv.New(context.Background(), conn, &vaultkv.Options{Mount: mount, Path: "app", Layout: vaultkv.SecretKey,
			Owner: "shared", PollInterval: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		s, err := sync.New(sync.Config{Name: "shared", Source: host, Destination: kv,
			Store: trackedStore{Store: store, replica: i, r: rec}, Lock: lock,
			AutoSync: sync.AutoSync{Debounce: 20 * time.Millisecond, Interval: 200 * time.Millisecond,
				MinBackoff: 100 * time.Millisecond, MaxBackoff: 400 * time.Millisecond}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		r := &replica{link: l, stop: cancel, done: make(chan error, 1), syncer: s}
		go func() { r.done <- s.Watch(ctx) }()
		replicas[i] = r
	}
	defer func() {
		for _, r := range replicas {
			r.stop()
			<-r.done
		}
	}()

	v := &vaultSide{t: t, srv: srv, c: srv.Client(t), mount: mount, path: "app", layout: vaultkv.SecretKey}
	eventually(t, "the first round", func() bool { return len(v.snapshot()) == len(initial) })

	// Writers: the host changes every key; someone edits the W keys in
	// Vault directly (drift: flagged, never overwritten).
	wctx, stopWriters := context.WithCancel(context.Background())
	var wg gosync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for n := 1; wctx.Err() == nil; n++ {
			host.Set(fmt.Sprintf("K%02d", n%20), fmt.Sprint("src-", n))
			host.Set(fmt.Sprintf("W%d", n%3), fmt.Sprint("src-", n))
			time.Sleep(10 * time.Millisecond)
		}
	}()
	go func() {
		defer wg.Done()
		for n := 1; wctx.Err() == nil; n++ {
			v.raw(fmt.Sprintf("W%d", n%3), fmt.Sprint("writer-", n))
			time.Sleep(25 * time.Millisecond)
		}
	}()

	time.Sleep(time.Second)
	rs := rec.snapshot()
	leader := rs[len(rs)-1].replica
	killedAt := time.Now()
	cut(replicas[leader].link) // it can no longer reach Vault...
	replicas[leader].stop()    // ...and stops, mid-run
	time.Sleep(4 * ttl)
	stopWriters()
	wg.Wait()

	// Converge: the host's final values reach Vault for every key that is
	// not in conflict.
	final := map[string]string{}
	for i := range 20 {
		k := fmt.Sprintf("K%02d", i)
		final[k] = "final"
		host.Set(k, "final")
	}
	eventually(t, "convergence after the takeover", func() bool {
		snap := v.snapshot()
		for k, want := range final {
			if snap[k] != want {
				return false
			}
		}
		return true
	})

	// Rounds never overlapped; the survivors took over.
	rs = rec.snapshot()
	sort.Slice(rs, func(i, j int) bool { return rs[i].start.Before(rs[j].start) })
	var takeover time.Duration
	for i, r := range rs {
		end := r.end
		if end.IsZero() {
			if r.replica != leader {
				end = time.Now()
			} else {
				end = killedAt
			}
		}
		if i+1 < len(rs) && rs[i+1].replica != r.replica && rs[i+1].start.Before(end) {
			t.Fatalf("replica %d started a round at %v while replica %d's round ran until %v",
				rs[i+1].replica, rs[i+1].start.Format("15:04:05.000"), r.replica, end.Format("15:04:05.000"))
		}
		if takeover == 0 && r.replica != leader && r.start.After(killedAt) {
			takeover = r.start.Sub(killedAt)
		}
	}
	by := map[int]int{}
	for _, r := range rs {
		by[r.replica]++
	}
	t.Logf("rounds per replica %v; replica %d stopped; a survivor took over after %v (lease TTL %v)", by, leader, takeover.Round(time.Millisecond), ttl)
	if takeover == 0 || takeover > 2*ttl {
		t.Fatalf("takeover after %v, want within about the lease TTL %v", takeover, ttl)
	}

	// No lost update: no write of the sync directly follows a writer value.
	for i := range 3 {
		k := fmt.Sprintf("W%d", i)
		hist := v.history(k)
		for j := 1; j < len(hist); j++ {
			if strings.HasPrefix(hist[j], "src-") && strings.HasPrefix(hist[j-1], "writer-") {
				t.Fatalf("%s: version %d (%s) overwrote the writer's %s", k, j+1, hist[j], hist[j-1])
			}
		}
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
