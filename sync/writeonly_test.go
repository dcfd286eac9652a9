package sync_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/secretsync/secretsync/conflict"
	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/state"
	"github.com/secretsync/secretsync/sync"
)

// writeOnly is a sync from a memory source to a write-only memory
// destination (as GitHub Actions secrets are).
func writeOnly(t *testing.T, src, dst map[string]string, wrap func(*memory.Destination) destination.Destination) (*fixture, *sync.Syncer) {
	t.Helper()
	f := &fixture{t: t, src: memory.New(src), dst: memory.NewWithOptions(dst, &memory.Options{WriteOnly: true}), store: state.NewMemory()}
	var d destination.Destination = f.dst
	if wrap != nil {
		d = wrap(f.dst)
	}
	s, err := sync.New(sync.Config{Name: "wo", Source: f.src, Destination: d, Store: f.store})
	if err != nil {
		t.Fatal(err)
	}
	f.s = s
	return f, s
}

func TestWriteOnlyPushConvergesAndIdles(t *testing.T) {
	f, _ := writeOnly(t, map[string]string{"A": "1", "B": "2"}, nil, nil)
	rep := f.run()
	if rep.Totals.Created != 2 {
		t.Fatalf("first round: %v", rep)
	}
	wantSnapshot(t, "destination", f.dst, map[string]string{"A": "1", "B": "2"})
	st, err := f.store.Load(context.Background(), "wo")
	if err != nil || len(st.Markers) != 2 || len(st.Pending) != 0 {
		t.Fatalf("state after the first round: markers %v, pending %v, %v", st.Markers, st.Pending, err)
	}
	puts := f.dst.Stats().Puts
	for range 3 {
		rep := f.run()
		if rep.Totals.Changed() != 0 || rep.Totals.Conflicts != 0 {
			t.Fatalf("idle round: %v", rep)
		}
	}
	if got := f.dst.Stats().Puts; got != puts {
		t.Fatalf("idle rounds wrote %d times", got-puts)
	}
	// A change at the source arrives; a deletion too, and its marker goes.
	f.src.Set("A", "1b")
	f.src.Delete("B")
	rep = f.run()
	wantAction(t, rep, "A", sync.Updated)
	wantAction(t, rep, "B", sync.Deleted)
	wantSnapshot(t, "destination", f.dst, map[string]string{"A": "1b"})
	if st, _ := f.store.Load(context.Background(), "wo"); len(st.Markers) != 1 {
		t.Fatalf("markers = %v, want A's only", st.Markers)
	}
	if rep := f.run(); rep.Totals.Changed() != 0 {
		t.Fatalf("idle round after the change: %v", rep)
	}
}

// A write made at the destination changes the marker: push reports drift
// and does not overwrite it, until the conflict is resolved.
func TestWriteOnlyDriftByMarker(t *testing.T) {
	f, s := writeOnly(t, map[string]string{"A": "1"}, nil, nil)
	f.run()
	f.dst.Set("A", "someone else's")
	rep := f.run()
	kr := wantAction(t, rep, "A", sync.Conflict)
	if !strings.Contains(kr.Reason, "drift") {
		t.Fatalf("reason = %q", kr.Reason)
	}
	if v, _ := f.dst.Get("A"); v.Value != "someone else's" {
		t.Fatal("drift was overwritten")
	}
	if err := s.Resolve(context.Background(), "A", conflict.KeepDestination); !errors.Is(err, sync.ErrWriteOnly) {
		t.Fatalf("Resolve(KeepDestination) = %v, want ErrWriteOnly", err)
	}
	if err := s.Resolve(context.Background(), "A", conflict.KeepSource); err != nil {
		t.Fatal(err)
	}
	wantSnapshot(t, "destination", f.dst, map[string]string{"A": "1"})
	if rep := f.run(); rep.Totals.Changed() != 0 || rep.Totals.Conflicts != 0 {
		t.Fatalf("round after resolving: %v", rep)
	}
}

// The first round does not take over a key that exists at the destination
// and that the sync never wrote: its value cannot be compared with the
// source, so it is flagged, until resolved.
func TestWriteOnlyInitialRoundFlagsForeignKeys(t *testing.T) {
	f, s := writeOnly(t, map[string]string{"A": "1", "B": "2"}, map[string]string{"A": "old", "OTHER": "x"}, nil)
	rep := f.run()
	wantAction(t, rep, "A", sync.Conflict)
	wantAction(t, rep, "B", sync.Created)
	wantAction(t, rep, "OTHER", sync.Conflict)
	wantSnapshot(t, "destination", f.dst, map[string]string{"A": "old", "B": "2", "OTHER": "x"})
	if rep := f.run(); rep.Totals.Changed() != 0 || rep.Totals.Conflicts != 2 {
		t.Fatalf("second round: %v", rep)
	}
	if err := s.Resolve(context.Background(), "A", conflict.KeepSource); err != nil {
		t.Fatal(err)
	}
	if v, _ := f.dst.Get("A"); v.Value != "1" {
		t.Fatal("A not taken over by resolving")
	}
	if rep := f.run(); rep.Totals.Changed() != 0 || rep.Totals.Conflicts != 1 {
		t.Fatalf("round after resolving: %v", rep)
	}
}

func TestWriteOnlyRefusesReadingModes(t *testing.T) {
	src := memory.New(nil)
	dst := memory.NewWithOptions(nil, &memory.Options{WriteOnly: true})
	for _, cfg := range []sync.Config{
		{Mode: sync.Pull},
		{Mode: sync.Bidirectional},
		{InitialSync: sync.ImportPreferSource},
		{InitialSync: sync.ImportPreferDestination},
	} {
		cfg.Name, cfg.Source, cfg.Destination = "wo", src, dst
		_, err := sync.New(cfg)
		if !errors.Is(err, sync.ErrInvalidConfig) || !errors.Is(err, sync.ErrWriteOnly) {
			t.Errorf("New(%v, %v) = %v, want a config error matching ErrWriteOnly", cfg.Mode, cfg.InitialSync, err)
		}
	}
	s, err := sync.New(sync.Config{Name: "wo", Source: src, Destination: dst})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Import(context.Background()); !errors.Is(err, sync.ErrWriteOnly) {
		t.Fatalf("Import = %v, want ErrWriteOnly", err)
	}
}

// lostAnswer applies a write and then reports that its outcome is unknown,
// as a cut connection does, for the writes it is told to.
type lostAnswer struct {
	*memory.Destination
	lose     atomic.Bool
	failList atomic.Int32 // fail the List calls after this many more
	lists    atomic.Int32
}

func (l *lostAnswer) Apply(ctx context.Context, cs []destination.Change) ([]error, error) {
	errs, err := l.Destination.Apply(ctx, cs)
	if err == nil && l.lose.Load() {
		return nil, errors.New("connection reset")
	}
	return errs, err
}

func (l *lostAnswer) List(ctx context.Context) (map[string]destination.Secret, error) {
	if n := l.failList.Load(); n > 0 && l.lists.Add(1) >= n {
		return nil, errors.New("listing failed")
	}
	return l.Destination.List(ctx)
}

// A write whose answer was lost landed: the next round takes the new
// marker as the sync's own, with no conflict and no second write.
func TestWriteOnlyLostAnswerConverges(t *testing.T) {
	var l *lostAnswer
	f, _ := writeOnly(t, map[string]string{"A": "1"}, nil, func(d *memory.Destination) destination.Destination {
		l = &lostAnswer{Destination: d}
		return l
	})
	f.run()
	f.src.Set("A", "2")
	l.lose.Store(true)
	if _, err := f.s.Run(context.Background()); err == nil {
		t.Fatal("round with a lost answer succeeded")
	}
	l.lose.Store(false)
	puts := f.dst.Stats().Puts
	rep := f.run()
	if rep.Totals.Conflicts != 0 {
		t.Fatalf("false conflict after a lost answer: %v", rep)
	}
	if got := f.dst.Stats().Puts; got != puts {
		t.Fatalf("the landed write was written again (%d puts)", got-puts)
	}
	if rep := f.run(); rep.Totals.Changed() != 0 || rep.Totals.Conflicts != 0 {
		t.Fatalf("idle round: %v", rep)
	}
	// And a later change at the destination is still seen.
	f.dst.Set("A", "other")
	if rep := f.run(); rep.Totals.Conflicts != 1 {
		t.Fatalf("drift not seen after adopting a marker: %v", rep)
	}
}

// When the listing after the writes fails, the marker is taken next round.
func TestWriteOnlyMarkerListingFails(t *testing.T) {
	var l *lostAnswer
	f, _ := writeOnly(t, map[string]string{"A": "1"}, nil, func(d *memory.Destination) destination.Destination {
		l = &lostAnswer{Destination: d}
		l.failList.Store(2) // the round's first List works, the second fails
		return l
	})
	rep := f.run()
	wantAction(t, rep, "A", sync.Created)
	st, _ := f.store.Load(context.Background(), "wo")
	if len(st.Markers) != 0 || len(st.Pending) != 1 {
		t.Fatalf("markers %v pending %v: want the intent kept and no marker", st.Markers, st.Pending)
	}
	l.failList.Store(0)
	puts := f.dst.Stats().Puts
	if rep := f.run(); rep.Totals.Changed() != 0 || rep.Totals.Conflicts != 0 {
		t.Fatalf("round after the failed listing: %v", rep)
	}
	if f.dst.Stats().Puts != puts {
		t.Fatal("written again")
	}
	st, _ = f.store.Load(context.Background(), "wo")
	if len(st.Markers) != 1 || len(st.Pending) != 0 {
		t.Fatalf("markers %v pending %v after the next round", st.Markers, st.Pending)
	}
}
