package sync_test

import (
	"context"
	"maps"
	"strconv"
	gosync "sync"
	"testing"
	"time"

	"github.com/secretsync/secretsync/conflict"
	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/state"
	"github.com/secretsync/secretsync/sync"
	"github.com/secretsync/secretsync/sync/clocktest"
)

// countingStore counts the saves that reach its store.
type countingStore struct {
	state.Store
	mu    gosync.Mutex
	saves int
}

func (c *countingStore) Save(ctx context.Context, name string, st *state.State) error {
	c.mu.Lock()
	c.saves++
	c.mu.Unlock()
	return c.Store.Save(ctx, name, st)
}

// take returns the saves counted since the last call.
func (c *countingStore) take() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.saves
	c.saves = 0
	return n
}

// TestIdleRoundSavesNothing: a round with nothing to do makes no store
// write, and Status still shows it; a round that writes saves twice (its
// intents, then its outcome); a round that only has something new to
// record saves once; an unchanged record is saved again once it is an
// hour old.
func TestIdleRoundSavesNothing(t *testing.T) {
	ctx := context.Background()
	clock := clocktest.New(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC))
	store := &countingStore{Store: state.NewMemory()}
	src, dst := memory.New(map[string]string{"A": "1", "B": "1"}), memory.New(nil)
	s, err := sync.New(sync.Config{Name: "idle", Source: src, Destination: dst, Store: store, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	step := func(what string, wantSaves int) *sync.Report {
		t.Helper()
		clock.Advance(time.Minute)
		rep := mustRun(t, s)
		if n := store.take(); n != wantSaves {
			t.Fatalf("%s: %d saves, want %d (%v)", what, n, wantSaves, rep)
		}
		st, err := s.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Sync == nil || st.Sync.RunID != rep.RunID || !st.Sync.Time.Equal(clock.Now()) {
			t.Fatalf("%s: Status shows %+v, want the round %s at %v", what, st.Sync, rep.RunID, clock.Now())
		}
		return rep
	}

	step("first round", 2)
	for i := range 20 {
		step("idle round "+strconv.Itoa(i), 0)
	}
	if st, _ := s.Status(ctx); st.Sync.Status != state.Succeeded {
		t.Fatalf("idle status %+v", st.Sync)
	}
	// Another process reading the store sees the last saved record.
	other, err := sync.New(sync.Config{Name: "idle", Source: src, Destination: dst, Store: store.Store})
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := other.Status(ctx); st.Sync.Status != state.Succeeded || clock.Now().Sub(st.Sync.Time) != 20*time.Minute {
		t.Fatalf("stored record %+v, want the first round's", st.Sync)
	}

	src.Set("A", "2")
	step("round with a change", 2)
	step("idle round after it", 0)

	// Drift in Push is flagged: nothing written, a new status to record.
	dst.Set("B", "drift")
	if rep := step("round flagging a conflict", 1); rep.Totals.Conflicts != 1 {
		t.Fatalf("report %v", rep)
	}
	step("round with the conflict still flagged", 0)

	// An hour after the last save, the unchanged record is saved once.
	for i := range 58 {
		step("idle round "+strconv.Itoa(i), 0)
	}
	step("idle round an hour after the last save", 1)
	if st, _ := other.Status(ctx); !st.Sync.Time.Equal(clock.Now()) {
		t.Fatalf("stored record %+v, want it refreshed at %v", st.Sync, clock.Now())
	}
	step("idle round after the refresh", 0)
}

// TestIdleStatusYieldsToLaterSaves: the record that an idle round keeps in
// memory shows in Status only while the store holds the state that round
// left; a later save (another replica's round) takes precedence.
func TestIdleStatusYieldsToLaterSaves(t *testing.T) {
	ctx := context.Background()
	store := state.NewMemory()
	src, dst := memory.New(map[string]string{"A": "1"}), memory.New(nil)
	cfg := sync.Config{Name: "replicas", Source: src, Destination: dst, Store: store}
	a, err := sync.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := sync.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mustRun(t, a)
	idle := mustRun(t, a)
	if st, _ := a.Status(ctx); st.Sync.RunID != idle.RunID {
		t.Fatalf("Status %+v, want the idle round %s", st.Sync, idle.RunID)
	}
	src.Set("A", "2")
	later := mustRun(t, b)
	for _, s := range []*sync.Syncer{a, b} {
		if st, _ := s.Status(ctx); st.Sync.RunID != later.RunID {
			t.Fatalf("Status %+v, want the later round %s", st.Sync, later.RunID)
		}
	}
}

// wholeSecret is a destination kept as one secret written with one
// check-and-set, as a Vault secret in the SecretPath layout: every key has
// the secret's version, and a write of any key fails for all when the
// secret changed. Before each of its first busy Apply calls, another
// writer changes the secret.
type wholeSecret struct {
	mu      gosync.Mutex
	data    map[string]string
	version int
	busy    int                     // Apply calls before which another writer writes
	writer  func(map[string]string) // what the other writer does
	applies int
}

func (w *wholeSecret) Capabilities() destination.Capabilities {
	return destination.Capabilities{Atomic: true}
}

func (w *wholeSecret) List(ctx context.Context) (map[string]destination.Secret, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]destination.Secret, len(w.data))
	for k, v := range w.data {
		out[k] = destination.Secret{Value: v, Version: strconv.Itoa(w.version)}
	}
	return out, nil
}

func (w *wholeSecret) Apply(ctx context.Context, changes []destination.Change) ([]error, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.applies++
	if w.busy > 0 {
		w.busy--
		w.writer(w.data)
		w.version++
	}
	errs := make([]error, len(changes))
	cur := strconv.Itoa(w.version)
	for _, c := range changes {
		if _, ok := w.data[c.Key]; (c.Expect == "" && ok) || (c.Expect != "" && c.Expect != cur) {
			for j := range errs {
				errs[j] = &destination.KeyError{Op: "put", Key: changes[j].Key, Err: destination.ErrConflict}
			}
			return errs, nil
		}
	}
	for _, c := range changes {
		if c.Delete {
			delete(w.data, c.Key)
		} else {
			w.data[c.Key] = c.Value
		}
	}
	w.version++
	return errs, nil
}

// TestWholeSecretConflictIsReplanned: when another writer changes a field
// of the secret that the sync does not manage, the round reads again and
// plans anew, up to three times, instead of leaving every key to the next
// round.
func TestWholeSecretConflictIsReplanned(t *testing.T) {
	ctx := context.Background()
	otherKey := func(n int) func(map[string]string) {
		return func(d map[string]string) { d["OTHER"] = strconv.Itoa(n) }
	}
	for _, tc := range []struct {
		busy      int
		wantRetry bool
	}{{0, false}, {1, false}, {3, false}, {4, true}} {
		dst := &wholeSecret{data: map[string]string{"OTHER": "0"}, version: 1}
		src := memory.New(map[string]string{"A": "1", "B": "1"})
		store := &countingStore{Store: state.NewMemory()}
		s, err := sync.New(sync.Config{Name: "secret", Source: src, Destination: dst, KeySchema: "APP_{{secretKey}}", Store: store})
		if err != nil {
			t.Fatal(err)
		}
		mustRun(t, s)
		src.Set("A", "2")
		dst.busy, dst.writer, dst.applies = tc.busy, otherKey(tc.busy), 0
		store.take()
		rep, err := s.Run(ctx)
		if err != nil {
			t.Fatalf("busy %d: %v", tc.busy, err)
		}
		// The same intents are saved once, whatever the attempts.
		if n := store.take(); n != 2 {
			t.Fatalf("busy %d: %d saves, want 2", tc.busy, n)
		}
		r, _ := rep.Result("A")
		st, _ := s.Status(ctx)
		switch {
		case tc.wantRetry && (r.Action != sync.Retry || st.Sync.Status != state.Pending || dst.applies != 4):
			t.Fatalf("busy %d: A %v after %d attempts, status %s; want Retry after 4", tc.busy, r.Action, dst.applies, st.Sync.Status)
		case !tc.wantRetry && (r.Action != sync.Updated || st.Sync.Status != state.Succeeded || dst.applies != tc.busy+1):
			t.Fatalf("busy %d: A %v (%s) after %d attempts, status %s; want Updated after %d", tc.busy, r.Action, r.Reason, dst.applies, st.Sync.Status, tc.busy+1)
		}
		if !tc.wantRetry && dst.data["APP_A"] != "2" {
			t.Fatalf("busy %d: destination %v", tc.busy, dst.data)
		}
		if dst.data["OTHER"] != strconv.Itoa(tc.busy) && tc.busy > 0 {
			t.Fatalf("busy %d: the other writer's field was overwritten: %v", tc.busy, dst.data)
		}
	}
}

// TestReplanKeepsConflicts: a managed key changed at the destination while
// the round ran, and changed at the source too since the baseline, is
// flagged by the replanned round, never overwritten.
func TestReplanKeepsConflicts(t *testing.T) {
	ctx := context.Background()
	dst := &wholeSecret{data: map[string]string{}, version: 1}
	src := memory.New(map[string]string{"A": "1", "B": "1"})
	s, err := sync.New(sync.Config{Name: "secret", Source: src, Destination: dst, Mode: sync.Bidirectional})
	if err != nil {
		t.Fatal(err)
	}
	mustRun(t, s)
	src.Set("A", "source")
	src.Set("B", "2")
	dst.busy, dst.writer = 1, func(d map[string]string) { d["A"] = "destination" }
	rep, err := s.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r := wantAction(t, rep, "A", sync.Conflict); r.Class != conflict.BothChanged {
		t.Fatalf("class %v", r.Class)
	}
	wantAction(t, rep, "B", sync.Updated)
	if want := map[string]string{"A": "destination", "B": "2"}; !maps.Equal(dst.data, want) {
		t.Fatalf("destination %v, want %v", dst.data, want)
	}
	if v, _ := src.Get("A"); v.Value != "source" {
		t.Fatalf("source A = %q", v.Value)
	}
	if st, _ := s.Status(ctx); len(st.Conflicts) != 1 || st.Sync.Status != state.Conflicted {
		t.Fatalf("status %+v", st)
	}
}

// TestAnnouncedChangeSavesNothing: a round announced (Trigger, a side's
// notification) that finds nothing to do makes no store write, and the
// announcement itself makes none either; Status shows it as pending until
// the round runs.
func TestAnnouncedChangeSavesNothing(t *testing.T) {
	ctx := context.Background()
	store := &countingStore{Store: state.NewMemory()}
	src, dst := memory.New(map[string]string{"A": "1"}), memory.New(nil)
	rounds := make(chan struct{}, 16)
	s, err := sync.New(sync.Config{Name: "announced", Source: src, Destination: dst, Store: store,
		AutoSync: sync.AutoSync{Interval: time.Hour, Debounce: time.Millisecond},
		OnRound:  func(*sync.Report, error) { rounds <- struct{}{} }})
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Watch(wctx) }()
	defer func() {
		cancel()
		<-done
	}()
	<-rounds // the first round: it writes A
	if n := store.take(); n != 2 {
		t.Fatalf("first round: %d saves, want 2", n)
	}
	for i := range 3 {
		s.Trigger()
		<-rounds
		if n := store.take(); n != 0 {
			t.Fatalf("announced round %d with nothing to do: %d saves, want 0", i, n)
		}
	}
}
