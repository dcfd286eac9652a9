package vaultkv_test

import (
	"context"
	"fmt"
	"slices"
	gosync "sync"
	"testing"
	"time"

	"github.com/secretsync/secretsync/internal/rendezvous"
	"github.com/secretsync/secretsync/state"
	"github.com/secretsync/secretsync/vaultkv"
	"github.com/secretsync/secretsync/vaultkv/vaulttest"
)

// holders runs, for each replica and each name, what sync.Syncer.Watch
// does with a lock: Acquire, hold until the lock is lost or HandOff asks
// for it, release, again. It records who holds each name, and fails the
// test if two replicas ever hold one name at once.
type holders struct {
	t     *testing.T
	srv   *vaulttest.Server
	mount string
	names []string
	ttl   time.Duration

	mu    gosync.Mutex
	owner map[string]string   // name -> replica holding it
	moves map[string][]string // name -> the replicas that held it, in order

	wg    gosync.WaitGroup
	links map[string]*vaulttest.RequestProxy
	stops map[string]context.CancelFunc
}

func newHolders(t *testing.T, n int, ttl time.Duration) *holders {
	srv := vaulttest.Get(t)
	h := &holders{t: t, srv: srv, mount: srv.NewMount(t), ttl: ttl, owner: map[string]string{}, moves: map[string][]string{},
		links: map[string]*vaulttest.RequestProxy{}, stops: map[string]context.CancelFunc{}}
	for i := range n {
		h.names = append(h.names, fmt.Sprint("sync-", i))
	}
	t.Cleanup(func() {
		for _, stop := range h.stops {
			stop()
		}
		h.wg.Wait()
	})
	return h
}

// start starts the replica named r.
func (h *holders) start(r string) {
	link := h.srv.RequestProxy(h.t)
	store := newStore(h.t, h.srv, linkConn(h.t, h.srv, link), h.mount)
	lock, err := store.NewLock(&vaultkv.LockOptions{TTL: h.ttl, Holder: r})
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.links[r], h.stops[r] = link, cancel
	for _, name := range h.names {
		h.wg.Go(func() {
			for ctx.Err() == nil {
				held, release, err := lock.Acquire(ctx, name)
				if err != nil {
					time.Sleep(h.ttl / 4)
					continue
				}
				h.mu.Lock()
				if o := h.owner[name]; o != "" {
					h.mu.Unlock()
					release()
					h.t.Errorf("%s took %s while %s held it", r, name, o)
					return
				}
				h.owner[name] = r
				h.moves[name] = append(h.moves[name], r)
				h.mu.Unlock()
				select {
				case <-ctx.Done():
				case <-held.Done():
				case <-lock.HandOff(name):
				}
				h.mu.Lock()
				delete(h.owner, name)
				h.mu.Unlock()
				release()
			}
		})
	}
}

// settle waits until every name is held by its preferred holder among
// members, and returns how many names each member holds.
func (h *holders) settle(members ...string) map[string]int {
	h.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		h.mu.Lock()
		counts := map[string]int{}
		wrong := 0
		for _, name := range h.names {
			o := h.owner[name]
			counts[o]++
			if o != rendezvous.Pick(name, members) {
				wrong++
			}
		}
		h.mu.Unlock()
		if wrong == 0 {
			return counts
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%d of %d names not held by their preferred holder among %v; held: %v", wrong, len(h.names), members, counts)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// shareOK checks that each member holds about its share of the names.
func (h *holders) shareOK(counts map[string]int, members ...string) {
	h.t.Helper()
	share := float64(len(h.names)) / float64(len(members))
	for _, m := range members {
		if c := float64(counts[m]); c < share/2 || c > share*3/2 {
			h.t.Fatalf("%s holds %v of %d names, want about %.0f: %v", m, c, len(h.names), share, counts)
		}
	}
}

func (h *holders) snapshot() map[string]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]string{}
	for _, name := range h.names {
		out[name] = h.owner[name]
	}
	return out
}

// Three replicas started together end up each holding the syncs that
// rendezvous hashing gives it, about a third each.
func TestLockSpreadTogether(t *testing.T) {
	h := newHolders(t, 60, 2*time.Second)
	all := []string{"replica-0", "replica-1", "replica-2"}
	for _, r := range all {
		h.start(r)
	}
	counts := h.settle(all...)
	t.Logf("held: %v", counts)
	h.shareOK(counts, all...)
}

// A replica that joins gets its share, handed over between "rounds" by the
// others; the names that move go only to it. A replica that stops
// renewing (its link to Vault cut) loses its share to the others, and
// only its names move.
func TestLockSpreadJoinAndDeath(t *testing.T) {
	h := newHolders(t, 60, 2*time.Second)
	two := []string{"replica-0", "replica-1"}
	all := append(slices.Clone(two), "replica-2")
	h.start(all[0])
	h.start(all[1])
	h.settle(two...)
	before := h.snapshot()

	h.start(all[2])
	counts := h.settle(all...)
	t.Logf("after replica-2 joined: %v", counts)
	h.shareOK(counts, all...)
	after := h.snapshot()
	for _, name := range h.names {
		if before[name] != after[name] && after[name] != "replica-2" {
			t.Fatalf("%s moved from %s to %s when replica-2 joined", name, before[name], after[name])
		}
	}

	cut(h.links["replica-0"])
	rest := all[1:]
	counts = h.settle(rest...)
	t.Logf("after replica-0 died: %v", counts)
	h.shareOK(counts, rest...)
	final := h.snapshot()
	for _, name := range h.names {
		if after[name] != "replica-0" && after[name] != final[name] {
			t.Fatalf("%s moved from %s to %s when replica-0 died", name, after[name], final[name])
		}
	}
}

var _ state.Spreader = (*vaultkv.Lock)(nil)
