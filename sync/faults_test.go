package sync_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	gosync "sync"
	"testing"

	"github.com/secretsync/secretsync/audit"
	"github.com/secretsync/secretsync/conflict"
	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/state"
	"github.com/secretsync/secretsync/sync"
)

func manyKeys(n int) map[string]string {
	m := make(map[string]string, n)
	for i := range n {
		m[fmt.Sprintf("K%04d", i)] = fmt.Sprintf("v%d", i)
	}
	return m
}

// TestClientTimeoutIsAKeyFailure: a write that fails with the side's own
// timeout (context.DeadlineExceeded while the caller's context is live) is
// a failure of its key: Run returns it, the status is failed, never
// "succeeded".
func TestClientTimeoutIsAKeyFailure(t *testing.T) {
	dst := memory.NewWithOptions(nil, &memory.Options{BeforeApply: func(_ context.Context, c destination.Change) error {
		if c.Key == "SLOW" {
			return fmt.Errorf("vault: write secret/data/SLOW: %w", context.DeadlineExceeded)
		}
		return nil
	}})
	rec := audit.NewRecorder()
	s, err := sync.New(sync.Config{Name: "timeout", Source: memory.New(map[string]string{"SLOW": "1", "FAST": "2"}), Destination: dst, Auditor: rec})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := s.Run(context.Background())
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run = %v, want the timeout of SLOW", err)
	}
	wantAction(t, rep, "SLOW", sync.Failed)
	wantAction(t, rep, "FAST", sync.Created)
	st, _ := s.Status(context.Background())
	if st.Sync.Status != state.Failed {
		t.Fatalf("status %+v, want failed", st.Sync)
	}
	if rec.Count(audit.SyncFailed) == 0 {
		t.Fatal("no SYNC_FAILED for the timed-out key")
	}
}

// cutShort applies changes up to a point, then cancels the caller's
// context and, as vaultkv does, returns one result per change with the
// context's error for the call.
type cutShort struct {
	*memory.Destination
	cancel func()
	after  int

	mu gosync.Mutex
	n  int
}

func (d *cutShort) Apply(ctx context.Context, changes []destination.Change) ([]error, error) {
	errs := make([]error, len(changes))
	for i, c := range changes {
		d.mu.Lock()
		d.n++
		stop := d.n > d.after
		d.mu.Unlock()
		if stop {
			d.cancel()
		}
		if err := ctx.Err(); err != nil {
			for j := i; j < len(changes); j++ {
				errs[j] = err
			}
			return errs, err
		}
		res, err := d.Destination.Apply(ctx, []destination.Change{c})
		if err != nil {
			return nil, err
		}
		errs[i] = res[0]
	}
	return errs, nil
}

// ctxAuditor records events but, like an auditor that does I/O, refuses
// them once its context is done.
type ctxAuditor struct{ *audit.Recorder }

func (a ctxAuditor) Audit(ctx context.Context, e audit.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return a.Recorder.Audit(ctx, e)
}

// TestCutShortRoundAuditsEveryWrite: when a round is cancelled part way,
// every write that reached the destination has its event and its line in
// the report, and its baseline.
func TestCutShortRoundAuditsEveryWrite(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mem := memory.New(nil)
	dst := &cutShort{Destination: mem, cancel: cancel, after: 37}
	rec := audit.NewRecorder()
	store := state.NewMemory()
	s, err := sync.New(sync.Config{Name: "cut", Source: memory.New(manyKeys(200)), Destination: dst, Store: store,
		Auditor: ctxAuditor{rec}, Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := s.Run(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	written := mem.Len()
	if written != 37 {
		t.Fatalf("%d keys written, want 37", written)
	}
	if n := rec.Count(audit.SecretSynced); n != written {
		t.Fatalf("%d SECRET_SYNCED events for %d writes", n, written)
	}
	if rep.Totals.Created != written {
		t.Fatalf("report: %v, want %d created", rep, written)
	}
	for _, e := range rec.Filter(audit.SecretSynced) {
		if _, ok := mem.Get(e.DestinationKey); !ok {
			t.Fatalf("event for %q, which was not written", e.DestinationKey)
		}
	}
	st, _ := store.Load(context.Background(), "cut")
	if len(st.Baseline) != written || st.Sync.Status != state.Failed {
		t.Fatalf("stored: %d baselines for %d writes, status %+v", len(st.Baseline), written, st.Sync)
	}
	rep = mustRun(t, s)
	if rep.Totals.Created != 200-written || rep.Totals.Conflicts != 0 {
		t.Fatalf("next round: %v", rep)
	}
}

// TestUnsafeKeysRefused: keys that could make a write land outside the
// configured place are failed with a typed error, and the rest of the round
// goes on; nothing is written for them.
func TestUnsafeKeysRefused(t *testing.T) {
	bad := []string{"../../other-team/DB_PASSWORD", "/etc/x", "a//b", "a/./b", "a/", "..", "."}
	t.Run("source keys", func(t *testing.T) {
		src := map[string]string{"GOOD": "1", "dir/OK": "2"}
		for _, k := range bad {
			src[k] = "hostile"
		}
		f := newFixture(t, src, nil, nil)
		rep, err := f.s.Run(context.Background())
		var ke *sync.KeyError
		if !errors.As(err, &ke) || !errors.Is(err, destination.ErrInvalidKey) {
			t.Fatalf("Run = %v, want KeyErrors wrapping ErrInvalidKey", err)
		}
		for _, k := range bad {
			wantAction(t, rep, k, sync.Failed)
		}
		wantSnapshot(t, "dst", f.dst, map[string]string{"GOOD": "1", "dir/OK": "2"})
		st, _ := f.s.Status(context.Background())
		if st.Sync.Status != state.Failed || strings.Contains(st.Sync.Message, "\n") {
			t.Fatalf("status %+v: want failed, on one line", st.Sync)
		}
	})
	t.Run("rendered keys", func(t *testing.T) {
		f := newFixture(t, map[string]string{"..": "x", "OK": "y"}, nil, func(c *sync.Config) { c.KeySchema = "team/{{secretKey}}" })
		rep, err := f.s.Run(context.Background())
		if !errors.Is(err, destination.ErrInvalidKey) {
			t.Fatalf("Run = %v", err)
		}
		wantAction(t, rep, "..", sync.Failed)
		wantSnapshot(t, "dst", f.dst, map[string]string{"team/OK": "y"})
	})
	t.Run("destination keys in pull", func(t *testing.T) {
		dst := map[string]string{"APP_OK": "1", "APP_../x": "hostile", "APP_a//b": "hostile"}
		f := newFixture(t, nil, dst, func(c *sync.Config) { c.Mode, c.KeySchema = sync.Pull, "APP_{{secretKey}}" })
		_, err := f.s.Run(context.Background())
		if !errors.Is(err, destination.ErrInvalidKey) {
			t.Fatalf("Run = %v", err)
		}
		wantSnapshot(t, "src", f.src, map[string]string{"OK": "1"})
	})
}

// unavailable is a destination whose store went away: every write fails
// with destination.ErrUnavailable.
type unavailable struct {
	*memory.Destination
	mu    gosync.Mutex
	calls int
}

func (d *unavailable) Apply(_ context.Context, changes []destination.Change) ([]error, error) {
	d.mu.Lock()
	d.calls++
	d.mu.Unlock()
	errs := make([]error, len(changes))
	for i := range errs {
		errs[i] = fmt.Errorf("vault: write: server unreachable: %w", destination.ErrUnavailable)
	}
	return errs, nil
}

// TestUnavailableStopsTheRound: when the store is unreachable or sealed, the
// round stops at once with one clear error instead of trying every key.
func TestUnavailableStopsTheRound(t *testing.T) {
	dst := &unavailable{Destination: memory.New(nil)}
	rec := audit.NewRecorder()
	s, err := sync.New(sync.Config{Name: "down", Source: memory.New(manyKeys(2000)), Destination: dst, Auditor: rec})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := s.Run(context.Background())
	if !errors.Is(err, destination.ErrUnavailable) {
		t.Fatalf("Run = %v, want ErrUnavailable", err)
	}
	var me interface{ WrappedErrors() []error }
	if errors.As(err, &me) {
		t.Fatalf("Run returned %d errors, want one: %v", len(me.WrappedErrors()), err)
	}
	if dst.calls > sync.DefaultConcurrency {
		t.Fatalf("%d Apply calls after the store was found unavailable", dst.calls)
	}
	if rep.Totals.Retries+rep.Totals.Failed != 2000 || rep.Totals.Changed() != 0 {
		t.Fatalf("report: %v", rep)
	}
	if n := rec.Count(audit.SyncFailed); n != 1 {
		t.Fatalf("%d SYNC_FAILED events, want one for the round", n)
	}
	st, _ := s.Status(context.Background())
	if st.Sync.Status != state.Failed || !strings.Contains(st.Sync.Message, "unavailable") {
		t.Fatalf("status %+v", st.Sync)
	}
}

// failIntents is a store whose save of a round's intents fails.
type failIntents struct {
	*state.Memory
	fail bool
}

func (s *failIntents) Save(ctx context.Context, name string, st *state.State) error {
	if s.fail && len(st.Pending) > 0 {
		return errors.New("disk full")
	}
	return s.Memory.Save(ctx, name, st)
}

// TestIntentsSaveFailureCountsNoWrites: when the intents cannot be saved,
// nothing is written and the report says so, instead of counting the
// planned writes as done.
func TestIntentsSaveFailureCountsNoWrites(t *testing.T) {
	store := &failIntents{Memory: state.NewMemory()}
	dst := memory.New(nil)
	s, err := sync.New(sync.Config{Name: "intents", Source: memory.New(manyKeys(50)), Destination: dst, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	store.fail = true
	rep, err := s.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Run = %v", err)
	}
	if dst.Len() != 0 || rep.Totals.Changed() != 0 || rep.Totals.Retries != 50 {
		t.Fatalf("report %v with %d keys written", rep, dst.Len())
	}
	store.fail = false
	if rep := mustRun(t, s); rep.Totals.Created != 50 {
		t.Fatalf("next round: %v", rep)
	}
}

// TestStatusesSayWhatHappened: a round with flagged conflicts records
// "conflicts", one whose keys changed during the round records "pending",
// a failed round keeps the count of flagged conflicts in its report, and
// messages are one line.
func TestStatusesSayWhatHappened(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, map[string]string{"A": "1", "B": "1"}, nil, func(c *sync.Config) { c.Mode = sync.Bidirectional })
	f.run()
	f.src.Set("A", "2")
	f.dst.Set("A", "3")
	rep := f.run()
	if rep.Totals.Conflicts != 1 || rep.Flagged != 1 {
		t.Fatalf("report: %v, flagged %d", rep, rep.Flagged)
	}
	st, _ := f.s.Status(ctx)
	if st.Sync.Status != state.Conflicted {
		t.Fatalf("status %+v, want conflicts", st.Sync)
	}

	// A round that fails before reading keeps the flagged count.
	listFails := true
	g := newFixture(t, nil, nil, nil)
	src := memory.NewWithOptions(map[string]string{"A": "1"}, &memory.Options{BeforeList: func(context.Context) error {
		if listFails {
			return errors.New("source down\nsecond line")
		}
		return nil
	}})
	s, err := sync.New(sync.Config{Name: "app", Source: src, Destination: f.dst, Store: f.store, Mode: sync.Bidirectional})
	if err != nil {
		t.Fatal(err)
	}
	rep, err = s.Run(ctx)
	if err == nil || rep.Flagged != 1 {
		t.Fatalf("failed round: %v, flagged %d", err, rep.Flagged)
	}
	st, _ = s.Status(ctx)
	if st.Sync.Status != state.Failed || strings.Contains(st.Sync.Message, "\n") {
		t.Fatalf("status %+v: want failed, on one line", st.Sync)
	}
	listFails = false
	if err := s.Resolve(ctx, "A", conflict.KeepSource); err != nil {
		t.Fatal(err)
	}

	// A key that changes during the round, each time the round reads it
	// again: pending, read again next round.
	var dst *memory.Destination
	dst = memory.NewWithOptions(nil, &memory.Options{BeforeApply: func(_ context.Context, c destination.Change) error {
		dst.Set(c.Key, "concurrent")
		return nil
	}})
	h, err := sync.New(sync.Config{Name: "race", Source: memory.New(map[string]string{"A": "1"}), Destination: dst, Store: g.store, Mode: sync.Bidirectional})
	if err != nil {
		t.Fatal(err)
	}
	rep, err = h.Run(ctx)
	if err != nil || rep.Totals.Retries != 1 {
		t.Fatalf("round with a race: %v, %v", rep, err)
	}
	st, _ = h.Status(ctx)
	if st.Sync.Status != state.Pending {
		t.Fatalf("status %+v, want pending", st.Sync)
	}
}
