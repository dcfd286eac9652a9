package sync_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	gosync "sync"
	"testing"

	"github.com/secretsync/secretsync/conflict"
	"github.com/secretsync/secretsync/state"
	"github.com/secretsync/secretsync/sync"
)

// notes records OnConflict calls.
type notes struct {
	mu  gosync.Mutex
	got []sync.FlaggedConflict
}

func (n *notes) add(_ context.Context, c sync.FlaggedConflict) {
	n.mu.Lock()
	n.got = append(n.got, c)
	n.mu.Unlock()
}

// take returns the keys notified since the last take.
func (n *notes) take() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var keys []string
	for _, c := range n.got {
		keys = append(keys, c.Key)
	}
	n.got = nil
	return keys
}

// TestOnConflict checks that a conflict is notified once as it is flagged,
// not again while it stays flagged, and again after it was resolved and
// conflicts anew; that Plan never notifies; and that the value notified is
// what Status shows, without a secret value.
func TestOnConflict(t *testing.T) {
	ctx := context.Background()
	var n notes
	f := newFixture(t, map[string]string{"A": "1", "B": "1"}, nil, func(c *sync.Config) {
		c.Mode = sync.Bidirectional
		c.KeySchema = "app/{{secretKey}}"
		c.OnConflict = n.add
	})
	f.run()
	if got := n.take(); got != nil {
		t.Fatalf("first round notified %v, want nothing", got)
	}

	const canary = "canary-5be0c2"
	f.src.Set("A", canary+"-src")
	f.dst.Set("app/A", canary+"-dst")
	f.src.Set("B", "2")
	f.dst.Set("app/B", "3")
	if _, err := f.s.Plan(ctx); err != nil {
		t.Fatal(err)
	}
	if got := n.take(); got != nil {
		t.Fatalf("Plan notified %v, want nothing", got)
	}

	rep := f.run()
	wantAction(t, rep, "A", sync.Conflict)
	n.mu.Lock()
	got := append([]sync.FlaggedConflict(nil), n.got...)
	n.mu.Unlock()
	st, err := f.s.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(st.Conflicts) || len(got) != 2 {
		t.Fatalf("notified %+v, want what Status shows: %+v", got, st.Conflicts)
	}
	if c := got[0]; c.Key != "A" || c.DestinationKey != "app/A" || c.Class != conflict.BothChanged || c.RunID != rep.RunID {
		t.Fatalf("notified %+v, want key A, destination key app/A, both changed, run %s", c, rep.RunID)
	}
	if s := fmt.Sprintf("%+v %#v", got, got); strings.Contains(s, canary) {
		t.Fatalf("a notified conflict holds a value: %s", s)
	}
	n.take()

	f.run()
	if got := n.take(); got != nil {
		t.Fatalf("a round with the same conflicts still flagged notified %v, want nothing", got)
	}

	if err := f.s.Resolve(ctx, "A", conflict.KeepSource); err != nil {
		t.Fatal(err)
	}
	f.run()
	if got := n.take(); got != nil {
		t.Fatalf("Resolve and the round after notified %v, want nothing", got)
	}
	f.src.Set("A", "again-src")
	f.dst.Set("app/A", "again-dst")
	f.run()
	if got := n.take(); fmt.Sprint(got) != "[A]" {
		t.Fatalf("a resolved key that conflicts again notified %v, want [A]", got)
	}
}

// TestOnConflictMayResolve checks that the callback runs once the round's
// locks are released: it may read Status and call Resolve.
func TestOnConflictMayResolve(t *testing.T) {
	ctx := context.Background()
	var seen []string
	var f *fixture
	f = newFixture(t, map[string]string{"A": "1"}, nil, func(c *sync.Config) {
		c.Mode = sync.Bidirectional
		c.Lock = state.NewMemoryLock()
		c.OnConflict = func(ctx context.Context, fc sync.FlaggedConflict) {
			st, err := f.s.Status(ctx)
			if err != nil || len(st.Conflicts) != 1 {
				t.Errorf("Status in OnConflict = %+v, %v; want the conflict recorded", st, err)
			}
			seen = append(seen, fc.Key)
			if err := f.s.Resolve(ctx, fc.Key, conflict.KeepDestination); err != nil {
				t.Errorf("Resolve in OnConflict: %v", err)
			}
		}
	})
	f.run()
	f.src.Set("A", "src")
	f.dst.Set("A", "dst")
	f.run()
	if fmt.Sprint(seen) != "[A]" {
		t.Fatalf("notified %v, want [A]", seen)
	}
	st, err := f.s.Status(ctx)
	if err != nil || len(st.Conflicts) != 0 {
		t.Fatalf("after Resolve in OnConflict: %+v, %v; want no conflict", st, err)
	}
	wantSnapshot(t, "source", f.src, map[string]string{"A": "dst"})
}

// commitFailer fails the final save of a round while fail is set (the
// save of a state whose sync record is not "running").
type commitFailer struct {
	state.Store
	fail bool
}

func (s *commitFailer) Save(ctx context.Context, name string, st *state.State) error {
	if s.fail && st.Sync != nil && st.Sync.Status != state.Running {
		return errors.New("disk full")
	}
	return s.Store.Save(ctx, name, st)
}

// TestOnConflictUnsaved checks that a conflict whose round could not save
// its state is not notified then, and is notified by the round that
// records it.
func TestOnConflictUnsaved(t *testing.T) {
	var n notes
	store := &commitFailer{Store: state.NewMemory()}
	f := newFixture(t, map[string]string{"A": "1"}, nil, func(c *sync.Config) {
		c.Mode = sync.Bidirectional
		c.Store = store
		c.OnConflict = n.add
	})
	f.run()
	f.src.Set("A", "src")
	f.dst.Set("A", "dst")
	store.fail = true
	if _, err := f.s.Run(context.Background()); err == nil {
		t.Fatal("Run with a failing final save succeeded")
	}
	if got := n.take(); got != nil {
		t.Fatalf("a round that could not save notified %v, want nothing", got)
	}
	store.fail = false
	f.run()
	if got := n.take(); fmt.Sprint(got) != "[A]" {
		t.Fatalf("the round that recorded the conflict notified %v, want [A]", got)
	}
}
