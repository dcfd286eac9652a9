package sync_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/secretsync/secretsync/audit"
	"github.com/secretsync/secretsync/conflict"
	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/state"
	"github.com/secretsync/secretsync/sync"
)

// fixture is a sync between two in-memory sides.
type fixture struct {
	t     *testing.T
	src   *memory.Destination
	dst   *memory.Destination
	store *state.Memory
	rec   *audit.Recorder
	s     *sync.Syncer
}

func newFixture(t *testing.T, src, dst map[string]string, mod func(*sync.Config)) *fixture {
	t.Helper()
	f := &fixture{t: t, src: memory.New(src), dst: memory.New(dst), store: state.NewMemory(), rec: audit.NewRecorder()}
	cfg := sync.Config{Name: "app", Source: f.src, Destination: f.dst, Store: f.store, Auditor: f.rec}
	if mod != nil {
		mod(&cfg)
	}
	s, err := sync.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	f.s = s
	return f
}

func (f *fixture) run(opts ...sync.Option) *sync.Report {
	f.t.Helper()
	rep, err := f.s.Run(context.Background(), opts...)
	if err != nil {
		f.t.Fatalf("Run: %v", err)
	}
	return rep
}

func wantSnapshot(t *testing.T, what string, d *memory.Destination, want map[string]string) {
	t.Helper()
	got := d.Snapshot()
	if len(got) != len(want) {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("%s = %v, want %v", what, got, want)
		}
	}
}

func wantAction(t *testing.T, rep *sync.Report, key string, want sync.Action) sync.KeyResult {
	t.Helper()
	r, ok := rep.Result(key)
	if !ok {
		t.Fatalf("no result for %q in %v", key, rep.Keys)
	}
	if r.Action != want {
		t.Fatalf("%q: action %v (%s), want %v", key, r.Action, r.Reason, want)
	}
	return r
}

func TestNewRejectsBadConfig(t *testing.T) {
	rw := memory.New(nil)
	ro := rw.Reader()
	base := func() sync.Config { return sync.Config{Name: "ok", Source: rw, Destination: memory.New(nil)} }
	tests := []struct {
		name  string
		mod   func(*sync.Config)
		field string
	}{
		{"empty name", func(c *sync.Config) { c.Name = "" }, "Name"},
		{"upper-case name", func(c *sync.Config) { c.Name = "App" }, "Name"},
		{"name with space", func(c *sync.Config) { c.Name = "my app" }, "Name"},
		{"long name", func(c *sync.Config) { c.Name = strings.Repeat("a", 65) }, "Name"},
		{"no source", func(c *sync.Config) { c.Source = nil }, "Source"},
		{"no destination", func(c *sync.Config) { c.Destination = nil }, "Destination"},
		{"unknown mode", func(c *sync.Config) { c.Mode = 9 }, "Mode"},
		{"pull read-only", func(c *sync.Config) { c.Mode, c.Source = sync.Pull, ro }, "Source"},
		{"bidirectional read-only", func(c *sync.Config) { c.Mode, c.Source = sync.Bidirectional, ro }, "Source"},
		{"import read-only", func(c *sync.Config) { c.InitialSync, c.Source = sync.ImportPreferSource, ro }, "InitialSync"},
		{"pull overwrite", func(c *sync.Config) { c.Mode, c.InitialSync = sync.Pull, sync.OverwriteDestination }, "InitialSync"},
		{"pull import", func(c *sync.Config) { c.Mode, c.InitialSync = sync.Pull, sync.ImportPreferDestination }, "InitialSync"},
		{"unknown initial", func(c *sync.Config) { c.InitialSync = 9 }, "InitialSync"},
		{"bad schema", func(c *sync.Config) { c.KeySchema = "APP_{{key}}" }, "KeySchema"},
		{"schema without key", func(c *sync.Config) { c.KeySchema = "APP" }, "KeySchema"},
		{"bad environment", func(c *sync.Config) { c.KeySchema, c.Environment = "{{environment}}/{{secretKey}}", "pr od" }, "Environment"},
		{"fraction negative", func(c *sync.Config) { c.MaxDeleteFraction = -0.1 }, "MaxDeleteFraction"},
		{"fraction above one", func(c *sync.Config) { c.MaxDeleteFraction = 1.5 }, "MaxDeleteFraction"},
		{"fraction NaN", func(c *sync.Config) { c.MaxDeleteFraction = math.NaN() }, "MaxDeleteFraction"},
		{"negative concurrency", func(c *sync.Config) { c.Concurrency = -1 }, "Concurrency"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base()
			tt.mod(&cfg)
			s, err := sync.New(cfg)
			if err == nil {
				t.Fatalf("New accepted the config (%v)", s.Name())
			}
			if !errors.Is(err, sync.ErrInvalidConfig) {
				t.Fatalf("err = %v, want ErrInvalidConfig", err)
			}
			var ce *sync.ConfigError
			if !errors.As(err, &ce) || ce.Field != tt.field {
				t.Fatalf("err = %v, want a ConfigError for field %s", err, tt.field)
			}
		})
	}
	if _, err := sync.New(base()); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
}

func TestPushCreatesUpdatesDeletes(t *testing.T) {
	f := newFixture(t, map[string]string{"A": "1", "B": "2", "C": "3"}, map[string]string{"OTHER": "x"},
		func(c *sync.Config) { c.KeySchema = "APP_{{secretKey}}" })
	rep := f.run()
	if rep.Totals.Created != 3 || rep.Totals.Unmanaged != 1 || !rep.Initial {
		t.Fatalf("first round: %v", rep)
	}
	wantSnapshot(t, "dst", f.dst, map[string]string{"APP_A": "1", "APP_B": "2", "APP_C": "3", "OTHER": "x"})

	f.src.Set("A", "1b")
	f.src.Delete("B")
	f.src.Set("D", "4")
	rep = f.run()
	wantAction(t, rep, "A", sync.Updated)
	wantAction(t, rep, "B", sync.Deleted)
	wantAction(t, rep, "D", sync.Created)
	wantAction(t, rep, "C", sync.Unchanged)
	if rep.Initial {
		t.Fatal("second round reported as initial")
	}
	wantSnapshot(t, "dst", f.dst, map[string]string{"APP_A": "1b", "APP_C": "3", "APP_D": "4", "OTHER": "x"})
	if n := f.rec.Count(audit.SecretSynced); n != 5 {
		t.Fatalf("SECRET_SYNCED events = %d, want 5", n)
	}
	if n := f.rec.Count(audit.SecretDeleted); n != 1 {
		t.Fatalf("SECRET_DELETED events = %d, want 1", n)
	}
}

func TestIdleRoundWritesNothing(t *testing.T) {
	f := newFixture(t, map[string]string{"A": "1", "B": "2"}, nil, func(c *sync.Config) { c.Mode = sync.Bidirectional })
	f.run()
	before, events := f.dst.Stats(), len(f.rec.Events())
	srcBefore := f.src.Stats()
	for i := 0; i < 5; i++ {
		rep := f.run()
		if rep.Totals.Changed() != 0 || rep.Totals.Unchanged != 2 {
			t.Fatalf("idle round %d: %v", i, rep)
		}
	}
	after, srcAfter := f.dst.Stats(), f.src.Stats()
	if after.Puts != before.Puts || after.Deletes != before.Deletes || after.Applies != before.Applies {
		t.Fatalf("idle rounds wrote the destination: %+v -> %+v", before, after)
	}
	if srcAfter.Puts != srcBefore.Puts || srcAfter.Applies != srcBefore.Applies {
		t.Fatalf("idle rounds wrote the source: %+v -> %+v", srcBefore, srcAfter)
	}
	if n := len(f.rec.Events()); n != events {
		t.Fatalf("idle rounds emitted %d events", n-events)
	}
}

func TestInitialSyncBehaviours(t *testing.T) {
	src := map[string]string{"A": "src-a", "S": "only-src"}
	dst := map[string]string{"APP_A": "dst-a", "APP_D": "only-dst", "KEEP": "unmanaged"}
	tests := []struct {
		initial sync.InitialSync
		mode    sync.Mode
		wantSrc map[string]string
		wantDst map[string]string
	}{
		{sync.OverwriteDestination, sync.Push, src,
			map[string]string{"APP_A": "src-a", "APP_S": "only-src", "KEEP": "unmanaged"}},
		{sync.InitialSyncAuto, sync.Push, src,
			map[string]string{"APP_A": "src-a", "APP_S": "only-src", "KEEP": "unmanaged"}},
		{sync.ImportPreferSource, sync.Push,
			map[string]string{"A": "src-a", "S": "only-src", "D": "only-dst"},
			map[string]string{"APP_A": "src-a", "APP_S": "only-src", "APP_D": "only-dst", "KEEP": "unmanaged"}},
		{sync.ImportPreferDestination, sync.Push,
			map[string]string{"A": "dst-a", "S": "only-src", "D": "only-dst"},
			map[string]string{"APP_A": "dst-a", "APP_S": "only-src", "APP_D": "only-dst", "KEEP": "unmanaged"}},
		{sync.InitialSyncAuto, sync.Bidirectional,
			map[string]string{"A": "src-a", "S": "only-src", "D": "only-dst"},
			map[string]string{"APP_A": "src-a", "APP_S": "only-src", "APP_D": "only-dst", "KEEP": "unmanaged"}},
		{sync.InitialSyncAuto, sync.Pull,
			map[string]string{"A": "dst-a", "D": "only-dst"}, dst},
	}
	for _, tt := range tests {
		t.Run(tt.mode.String()+"/"+tt.initial.String(), func(t *testing.T) {
			f := newFixture(t, src, dst, func(c *sync.Config) {
				c.KeySchema, c.InitialSync, c.Mode = "APP_{{secretKey}}", tt.initial, tt.mode
			})
			rep := f.run()
			if !rep.Initial {
				t.Fatal("first round not initial")
			}
			wantSnapshot(t, "src", f.src, tt.wantSrc)
			wantSnapshot(t, "dst", f.dst, tt.wantDst)
			if rep := f.run(); rep.Totals.Changed() != 0 || rep.Totals.Conflicts != 0 {
				t.Fatalf("second round not idle: %v", rep)
			}
		})
	}
}

func TestBidirectionalConflictFlaggedAndResolved(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, map[string]string{"DB_URL": "v1", "OTHER": "o"}, nil, func(c *sync.Config) { c.Mode = sync.Bidirectional })
	f.run()

	f.dst.Set("OTHER", "o-dst")
	rep := f.run()
	r := wantAction(t, rep, "OTHER", sync.Updated)
	if r.Direction != audit.ToSource {
		t.Fatalf("direction = %v", r.Direction)
	}
	if v, _ := f.src.Get("OTHER"); v.Value != "o-dst" {
		t.Fatalf("source OTHER = %v", v)
	}

	f.src.Set("DB_URL", "from-src")
	f.dst.Set("DB_URL", "from-dst")
	srcWrites, dstWrites := f.src.Stats().Puts, f.dst.Stats().Puts
	for i := 0; i < 2; i++ {
		rep = f.run()
		r = wantAction(t, rep, "DB_URL", sync.Conflict)
		if r.Class != conflict.BothChanged {
			t.Fatalf("class = %v", r.Class)
		}
	}
	if f.src.Stats().Puts != srcWrites || f.dst.Stats().Puts != dstWrites {
		t.Fatal("a side was written during a conflict")
	}
	if n := f.rec.Count(audit.ConflictDetected); n != 1 {
		t.Fatalf("CONFLICT_DETECTED = %d, want 1 (no repeat for an unchanged conflict)", n)
	}
	st, err := f.s.Status(ctx)
	if err != nil || len(st.Conflicts) != 1 || st.Conflicts[0].Key != "DB_URL" || st.Conflicts[0].Class != conflict.BothChanged {
		t.Fatalf("Status = %+v, %v", st, err)
	}

	if err := f.s.Resolve(ctx, "OTHER", conflict.KeepSource); !errors.Is(err, sync.ErrNoConflict) {
		t.Fatalf("Resolve of an unflagged key: %v", err)
	}
	if err := f.s.Resolve(ctx, "DB_URL", conflict.KeepDestination); err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	if v, _ := f.src.Get("DB_URL"); v.Value != "from-dst" {
		t.Fatalf("source after resolve = %v", v)
	}
	if f.rec.Count(audit.ConflictResolved) != 1 {
		t.Fatal("no CONFLICT_RESOLVED event")
	}
	if st, _ := f.s.Status(ctx); len(st.Conflicts) != 0 {
		t.Fatalf("conflict still flagged: %+v", st.Conflicts)
	}
	if rep := f.run(); rep.Totals.Changed() != 0 || rep.Totals.Conflicts != 0 {
		t.Fatalf("round after resolve: %v", rep)
	}
}

func TestResolveUseValue(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, map[string]string{"K": "v1"}, nil, func(c *sync.Config) { c.Mode = sync.Bidirectional })
	f.run()
	f.src.Delete("K")
	f.dst.Set("K", "changed")
	wantAction(t, f.run(), "K", sync.Conflict)
	if err := f.s.Resolve(ctx, "K", conflict.UseValue("merged")); err != nil {
		t.Fatal(err)
	}
	wantSnapshot(t, "src", f.src, map[string]string{"K": "merged"})
	wantSnapshot(t, "dst", f.dst, map[string]string{"K": "merged"})
	if rep := f.run(); rep.Totals.Changed() != 0 || rep.Totals.Conflicts != 0 {
		t.Fatalf("round after resolve: %v", rep)
	}
}

func TestConflictPolicies(t *testing.T) {
	for _, tt := range []struct {
		name   string
		policy conflict.Policy
		want   string
	}{
		{"prefer source", conflict.PreferSource, "s"},
		{"prefer destination", conflict.PreferDestination, "d"},
		{"user", func(c conflict.Conflict) conflict.Resolution {
			if c.Key == "K" && c.Class == conflict.BothChanged {
				return conflict.UseValue("u")
			}
			return conflict.Flag
		}, "u"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, map[string]string{"K": "0"}, nil, func(c *sync.Config) {
				c.Mode, c.ConflictPolicy = sync.Bidirectional, tt.policy
			})
			f.run()
			f.src.Set("K", "s")
			f.dst.Set("K", "d")
			rep := f.run()
			if rep.Totals.Conflicts != 0 {
				t.Fatalf("conflict flagged despite policy: %v", rep)
			}
			wantSnapshot(t, "src", f.src, map[string]string{"K": tt.want})
			wantSnapshot(t, "dst", f.dst, map[string]string{"K": tt.want})
		})
	}
}

func TestPushDriftIsFlaggedNotOverwritten(t *testing.T) {
	f := newFixture(t, map[string]string{"K": "1"}, nil, nil)
	f.run()
	f.dst.Set("K", "out-of-band")
	rep := f.run()
	r := wantAction(t, rep, "K", sync.Conflict)
	if !strings.Contains(r.Reason, "drift") {
		t.Fatalf("reason = %q", r.Reason)
	}
	wantSnapshot(t, "dst", f.dst, map[string]string{"K": "out-of-band"})
	if err := f.s.Resolve(context.Background(), "K", conflict.KeepDestination); !errors.Is(err, sync.ErrReadOnlySource) {
		// The memory source is writable, so keep-destination works here.
		if err != nil {
			t.Fatalf("Resolve: %v", err)
		}
	}

	// With a read-only source, keep-destination cannot be applied.
	ro := newFixture(t, nil, nil, func(c *sync.Config) { c.Source = memory.New(map[string]string{"K": "1"}).Reader() })
	ro.run()
	ro.dst.Set("K", "x")
	wantAction(t, ro.run(), "K", sync.Conflict)
	if err := ro.s.Resolve(context.Background(), "K", conflict.KeepDestination); !errors.Is(err, sync.ErrReadOnlySource) {
		t.Fatalf("Resolve keep-destination on a read-only source: %v", err)
	}
	if err := ro.s.Resolve(context.Background(), "K", conflict.KeepSource); err != nil {
		t.Fatalf("Resolve keep-source: %v", err)
	}
	wantSnapshot(t, "dst", ro.dst, map[string]string{"K": "1"})

	// A policy that prefers the source overwrites drift.
	p := newFixture(t, map[string]string{"K": "1"}, nil, func(c *sync.Config) { c.ConflictPolicy = conflict.PreferSource })
	p.run()
	p.dst.Set("K", "drift")
	wantAction(t, p.run(), "K", sync.Updated)
	wantSnapshot(t, "dst", p.dst, map[string]string{"K": "1"})
}

func TestDisableDeletion(t *testing.T) {
	f := newFixture(t, map[string]string{"A": "1", "B": "2"}, map[string]string{"X": "x"}, func(c *sync.Config) { c.DisableDeletion = true })
	rep := f.run()
	wantAction(t, rep, "X", sync.Skipped)
	f.src.Delete("A")
	for i := 0; i < 3; i++ {
		rep = f.run()
		wantAction(t, rep, "A", sync.Skipped)
		wantAction(t, rep, "X", sync.Skipped)
		if rep.Totals.Conflicts != 0 {
			t.Fatalf("round %d: %v", i, rep)
		}
	}
	wantSnapshot(t, "dst", f.dst, map[string]string{"A": "1", "B": "2", "X": "x"})
	if f.rec.Count(audit.SecretDeleted) != 0 {
		t.Fatal("deletion audited")
	}
	// The report shows the skipped deletions as what they are: no side
	// is written, so there is no direction, in a round as in a plan.
	plan, err := f.s.Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []*sync.Report{rep, plan} {
		var table strings.Builder
		if err := r.WriteTable(&table); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"A", "X"} {
			if kr, _ := r.Result(k); kr.Direction != "" {
				t.Errorf("skipped deletion of %s reported with direction %q", k, kr.Direction)
			}
		}
		if lines := strings.Split(table.String(), "\n"); len(lines) < 2 || strings.Join(strings.Fields(lines[1]), " ") != "A A skipped - deletion disabled" {
			t.Errorf("table:\n%s", table.String())
		}
	}
	if _, err := f.s.Remove(context.Background()); !errors.Is(err, sync.ErrDeletionDisabled) {
		t.Fatalf("Remove = %v, want ErrDeletionDisabled", err)
	}
}

func TestMassDeletionGuard(t *testing.T) {
	ctx := context.Background()
	src := map[string]string{}
	for i := 0; i < 10; i++ {
		src[fmt.Sprintf("K%d", i)] = "v"
	}
	f := newFixture(t, src, nil, nil)
	f.run()
	for i := 0; i < 6; i++ {
		f.src.Delete(fmt.Sprintf("K%d", i))
	}
	puts := f.dst.Stats()
	rep, err := f.s.Run(ctx)
	var me *sync.MassDeletionError
	if !errors.Is(err, sync.ErrMassDeletion) || !errors.As(err, &me) || me.Deletes != 6 || me.Managed != 10 {
		t.Fatalf("Run = %v, want a mass deletion error for 6 of 10", err)
	}
	// The report shows the refused deletions as skipped, never as done.
	if rep == nil || rep.Totals.Deleted != 0 || rep.Totals.Skipped != 6 || rep.Totals.Changed() != 0 {
		t.Fatalf("report of a refused round: %v", rep)
	}
	if r := wantAction(t, rep, "K0", sync.Skipped); !strings.Contains(r.Reason, "guard") || r.Direction != "" {
		t.Fatalf("K0: %+v", r)
	}
	if f.dst.Len() != 10 || f.dst.Stats().Deletes != puts.Deletes {
		t.Fatal("refused round changed the destination")
	}
	st, _ := f.s.Status(ctx)
	if st.Sync == nil || st.Sync.Status != state.Failed || !strings.Contains(st.Sync.Message, "refused") {
		t.Fatalf("status = %+v", st.Sync)
	}
	if f.rec.Count(audit.SyncFailed) != 1 {
		t.Fatal("no SYNC_FAILED event")
	}
	f.run(sync.Force())
	if f.dst.Len() != 4 {
		t.Fatalf("forced round left %d keys", f.dst.Len())
	}

	// An empty source facing a non-empty destination is refused even when
	// any fraction is allowed.
	g := newFixture(t, map[string]string{"A": "1"}, nil, func(c *sync.Config) { c.MaxDeleteFraction = 1 })
	g.run()
	g.src.Delete("A")
	if _, err := g.s.Run(ctx); !errors.As(err, &me) || !me.Empty {
		t.Fatalf("Run with an empty source = %v", err)
	}
	if g.dst.Len() != 1 {
		t.Fatal("destination emptied")
	}
	// Plan shows the same refusal without recording anything.
	if _, err := g.s.Plan(ctx); !errors.Is(err, sync.ErrMassDeletion) {
		t.Fatalf("Plan = %v", err)
	}
}

func TestPreconditionFailureIsRetriedNotOverwritten(t *testing.T) {
	var dst *memory.Destination
	race := false
	dst = memory.NewWithOptions(nil, &memory.Options{BeforeApply: func(_ context.Context, c destination.Change) error {
		if c.Key == "B" && race {
			race = false
			dst.Set("B", "concurrent") // another writer wins the race
		}
		return nil
	}})
	src := memory.New(map[string]string{"A": "1", "B": "2"})
	s, err := sync.New(sync.Config{Name: "race", Source: src, Destination: dst, Mode: sync.Bidirectional, Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	mustRun(t, s)
	src.Set("A", "1b")
	src.Set("B", "2b")
	race = true
	rep, err := s.Run(context.Background())
	if err != nil {
		t.Fatalf("a precondition failure failed the round: %v", err)
	}
	wantAction(t, rep, "A", sync.Updated)
	r := wantAction(t, rep, "B", sync.Retry)
	if !errors.Is(r.Err, destination.ErrConflict) {
		t.Fatalf("Retry err = %v", r.Err)
	}
	if v, _ := dst.Get("B"); v.Value != "concurrent" {
		t.Fatalf("concurrent write lost: %v", v)
	}
	// Next round: B changed on both sides since the baseline: a conflict,
	// never a blind overwrite.
	rep, err = s.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r := wantAction(t, rep, "B", sync.Conflict); r.Class != conflict.BothChanged {
		t.Fatalf("class = %v", r.Class)
	}
	if v, _ := dst.Get("B"); v.Value != "concurrent" {
		t.Fatalf("concurrent write lost: %v", v)
	}
	if v, _ := src.Get("B"); v.Value != "2b" {
		t.Fatalf("source overwritten: %v", v)
	}
}

func TestPerKeyFailureDoesNotAdvanceBaseline(t *testing.T) {
	failing := true
	dst := memory.NewWithOptions(nil, &memory.Options{BeforeApply: func(_ context.Context, c destination.Change) error {
		if c.Key == "BAD" && failing {
			return errors.New("backend unavailable")
		}
		return nil
	}})
	src := memory.New(map[string]string{"BAD": "1", "GOOD": "2"})
	rec := audit.NewRecorder()
	s, err := sync.New(sync.Config{Name: "fail", Source: src, Destination: dst, Auditor: rec})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := s.Run(context.Background())
	var ke *sync.KeyError
	if !errors.As(err, &ke) || ke.Key != "BAD" {
		t.Fatalf("Run = %v, want a KeyError for BAD", err)
	}
	wantAction(t, rep, "BAD", sync.Failed)
	wantAction(t, rep, "GOOD", sync.Created)
	st, _ := s.Status(context.Background())
	if st.Sync.Status != state.Failed {
		t.Fatalf("status = %+v", st.Sync)
	}
	if rec.Count(audit.SyncFailed) == 0 {
		t.Fatal("no SYNC_FAILED event for the key")
	}
	failing = false
	rep, err = s.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	wantAction(t, rep, "BAD", sync.Created)
	wantAction(t, rep, "GOOD", sync.Unchanged)
	if !rep.Initial {
		t.Fatal("a first round with a failed key must stay initial")
	}
	if rep := mustRun(t, s); rep.Initial || rep.Totals.Changed() != 0 {
		t.Fatalf("third round: %v", rep)
	}
}

func mustRun(t *testing.T, s *sync.Syncer) *sync.Report {
	t.Helper()
	rep, err := s.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestPlanWritesNothing(t *testing.T) {
	f := newFixture(t, map[string]string{"A": "1", "B": "2"}, map[string]string{"B": "old", "C": "3"}, nil)
	plan, err := f.s.Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !plan.DryRun {
		t.Fatal("plan not marked dry run")
	}
	if f.dst.Stats().Applies != 0 || len(f.rec.Events()) != 0 {
		t.Fatal("plan wrote something")
	}
	if st, _ := f.s.Status(context.Background()); st.Sync != nil {
		t.Fatalf("plan recorded a status: %+v", st.Sync)
	}
	rep := f.run()
	for _, k := range []string{"A", "B", "C"} {
		p, _ := plan.Result(k)
		r, _ := rep.Result(k)
		if p.Action != r.Action {
			t.Fatalf("%s: plan %v, run %v", k, p.Action, r.Action)
		}
	}
}

func TestImport(t *testing.T) {
	f := newFixture(t, map[string]string{"A": "1"}, nil, nil)
	f.run()
	f.dst.Set("NEW", "n")
	f.dst.Set("A", "changed-at-dst")
	f.src.Set("S", "s")
	rep, err := f.s.Import(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	wantAction(t, rep, "NEW", sync.Imported)
	wantAction(t, rep, "A", sync.Imported)
	wantAction(t, rep, "S", sync.Skipped)
	wantSnapshot(t, "src", f.src, map[string]string{"A": "changed-at-dst", "NEW": "n", "S": "s"})
	wantSnapshot(t, "dst", f.dst, map[string]string{"A": "changed-at-dst", "NEW": "n"})
	if f.rec.Count(audit.SecretImported) != 2 {
		t.Fatalf("SECRET_IMPORTED = %d", f.rec.Count(audit.SecretImported))
	}
	st, _ := f.s.Status(context.Background())
	if st.Import == nil || st.Import.Status != state.Succeeded || st.Import.RunID != rep.RunID {
		t.Fatalf("import status = %+v", st.Import)
	}
	// After the import, a push round only creates S.
	rep = f.run()
	if rep.Totals.Created != 1 || rep.Totals.Changed() != 1 {
		t.Fatalf("round after import: %v", rep)
	}

	ro := newFixture(t, nil, nil, func(c *sync.Config) { c.Source = memory.New(nil).Reader() })
	if _, err := ro.s.Import(context.Background()); !errors.Is(err, sync.ErrReadOnlySource) {
		t.Fatalf("Import with a read-only source = %v", err)
	}
}

func TestRemove(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, map[string]string{"A": "1", "B": "2"}, map[string]string{"APP_X": "not ours", "OTHER": "o"},
		func(c *sync.Config) {
			c.KeySchema = "APP_{{secretKey}}"
			c.InitialSync = sync.OverwriteDestination
			c.DisableDeletion = false
		})
	f.run(sync.Force())
	f.dst.Set("APP_Y", "created by someone else")
	f.dst.Delete("APP_B")
	rep, err := f.s.Remove(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantAction(t, rep, "A", sync.Deleted)
	wantAction(t, rep, "B", sync.Unchanged)
	wantAction(t, rep, "Y", sync.Skipped)
	wantSnapshot(t, "dst", f.dst, map[string]string{"APP_Y": "created by someone else", "OTHER": "o"})
	wantSnapshot(t, "src", f.src, map[string]string{"A": "1", "B": "2"})
	// Removing again succeeds: everything is already gone.
	rep, err = f.s.Remove(ctx)
	if err != nil || rep.Totals.Deleted != 0 {
		t.Fatalf("second Remove: %v, %v", rep, err)
	}
	st, _ := f.s.Status(ctx)
	if st.Remove == nil || st.Remove.Status != state.Succeeded {
		t.Fatalf("remove status = %+v", st.Remove)
	}
	// The next round is a first round again: overwrite-destination would
	// delete APP_Y, which matches the schema.
	// That is its only managed key, so the guard objects, and Plan says so.
	plan, err := f.s.Plan(ctx)
	var me *sync.MassDeletionError
	if !errors.As(err, &me) || !plan.Initial {
		t.Fatalf("Plan after Remove: initial=%v, %v", plan.Initial, err)
	}
	wantAction(t, plan, "Y", sync.Deleted)
}

func TestStatusRecords(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, map[string]string{"A": "1"}, nil, nil)
	st, err := f.s.Status(ctx)
	if err != nil || st.Sync != nil {
		t.Fatalf("Status before any run = %+v, %v", st, err)
	}
	rep := f.run()
	st, _ = f.s.Status(ctx)
	if st.Sync.Status != state.Succeeded || st.Sync.RunID != rep.RunID || st.Sync.Time.IsZero() {
		t.Fatalf("status = %+v", st.Sync)
	}
}

func TestStatusRunningDuringRound(t *testing.T) {
	var s *sync.Syncer
	var seen state.Status
	store := state.NewMemory()
	dst := memory.NewWithOptions(nil, &memory.Options{BeforeApply: func(ctx context.Context, c destination.Change) error {
		st, err := store.Load(ctx, "app")
		if err == nil && st.Sync != nil {
			seen = st.Sync.Status
		}
		return nil
	}})
	s, err := sync.New(sync.Config{Name: "app", Source: memory.New(map[string]string{"A": "1"}), Destination: dst, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	mustRun(t, s)
	if seen != state.Running {
		t.Fatalf("status during the round = %q, want running", seen)
	}
}

func TestCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	dst := memory.NewWithOptions(nil, &memory.Options{BeforeApply: func(context.Context, destination.Change) error {
		n++
		if n == 3 {
			cancel()
		}
		return nil
	}})
	src := map[string]string{}
	for i := 0; i < 1000; i++ {
		src[fmt.Sprintf("K%04d", i)] = "v"
	}
	store := state.NewMemory()
	s, err := sync.New(sync.Config{Name: "c", Source: memory.New(src), Destination: dst, Store: store, Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Run(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	applied := dst.Len()
	if applied == 0 || applied == 1000 {
		t.Fatalf("applied %d keys", applied)
	}
	st, _ := store.Load(context.Background(), "c")
	if len(st.Baseline) != applied {
		t.Fatalf("baseline has %d keys, destination %d: applied writes were forgotten", len(st.Baseline), applied)
	}
	// The next round converges.
	rep := mustRun(t, s)
	if dst.Len() != 1000 || rep.Totals.Created != 1000-applied {
		t.Fatalf("next round: %v (dst %d)", rep, dst.Len())
	}

	done, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if _, err := s.Run(done); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run with a cancelled context = %v", err)
	}
}

func TestAuditFailClosed(t *testing.T) {
	failing := audit.AuditorFunc(func(context.Context, audit.Event) error { return errors.New("audit sink down") })
	src := map[string]string{}
	for i := 0; i < 100; i++ {
		src[fmt.Sprintf("K%03d", i)] = "v"
	}
	dst := memory.New(nil)
	s, err := sync.New(sync.Config{Name: "a", Source: memory.New(src), Destination: dst, Auditor: failing, AuditFailClosed: true, Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Run(context.Background()); !errors.Is(err, sync.ErrAudit) {
		t.Fatalf("Run = %v, want ErrAudit", err)
	}
	if n := dst.Len(); n >= 100 {
		t.Fatalf("fail-closed round kept writing: %d keys", n)
	}

	open, err := sync.New(sync.Config{Name: "b", Source: memory.New(src), Destination: memory.New(nil), Auditor: failing})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := open.Run(context.Background()); err != nil {
		t.Fatalf("fail-open round failed: %v", err)
	}
}

func TestListFailureFailsRound(t *testing.T) {
	dst := memory.NewWithOptions(nil, &memory.Options{BeforeList: func(context.Context) error { return errors.New("unreachable") }})
	rec := audit.NewRecorder()
	s, err := sync.New(sync.Config{Name: "l", Source: memory.New(map[string]string{"A": "1"}), Destination: dst, Auditor: rec})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "list destination") {
		t.Fatalf("Run = %v", err)
	}
	st, _ := s.Status(context.Background())
	if st.Sync.Status != state.Failed {
		t.Fatalf("status = %+v", st.Sync)
	}
	if rec.Count(audit.SyncFailed) != 1 {
		t.Fatal("no SYNC_FAILED")
	}
}

func TestEnvironmentSchema(t *testing.T) {
	f := newFixture(t, map[string]string{"DB": "1"}, map[string]string{"staging/DB": "s"}, func(c *sync.Config) {
		c.KeySchema, c.Environment = "{{environment}}/{{secretKey}}", "prod"
	})
	rep := f.run()
	if rep.Totals.Unmanaged != 1 {
		t.Fatalf("staging key not unmanaged: %v", rep)
	}
	wantSnapshot(t, "dst", f.dst, map[string]string{"prod/DB": "1", "staging/DB": "s"})
}

// failingFinalSave is a store whose saves after a round's writes fail, as
// when a process dies between its writes and its last save.
type failingFinalSave struct {
	*state.Memory
	fail bool
}

func (s *failingFinalSave) Save(ctx context.Context, name string, st *state.State) error {
	if s.fail && st.Sync != nil && st.Sync.Status != state.Running {
		return errors.New("store unreachable")
	}
	return s.Memory.Save(ctx, name, st)
}

// TestRoundCutShortBetweenWritesAndSave: writes that landed before the
// final save failed are recognized next round, so a later change is not
// taken for a conflict.
func TestRoundCutShortBetweenWritesAndSave(t *testing.T) {
	store := &failingFinalSave{Memory: state.NewMemory()}
	src, dst := memory.New(map[string]string{"A": "1", "B": "1"}), memory.New(nil)
	s, err := sync.New(sync.Config{Name: "cut", Source: src, Destination: dst, Mode: sync.Bidirectional, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	mustRun(t, s)
	src.Set("A", "2")
	src.Set("B", "2")
	store.fail = true
	if _, err := s.Run(context.Background()); err == nil {
		t.Fatal("the round did not report the failed save")
	}
	if v, _ := dst.Get("A"); v.Value != "2" {
		t.Fatalf("the write did not land: %v", v)
	}
	store.fail = false
	src.Set("A", "3") // a later change at the source
	// B at the destination now holds neither the old value nor the one
	// written: whether the write landed is unknown, so it is a conflict.
	dst.Set("B", "3d")
	rep := mustRun(t, s)
	if r := wantAction(t, rep, "A", sync.Updated); r.Direction != "to-destination" {
		t.Fatalf("A: %+v", r)
	}
	wantAction(t, rep, "B", sync.Conflict)
	st, _ := store.Load(context.Background(), "cut")
	if _, ok := st.Pending["A"]; ok || len(st.Pending) > 1 {
		t.Fatalf("pending intents left for keys whose writes are settled: %v", st.Pending)
	}
	// B's write of round 2 is still unconfirmed until B is settled.
	if err := s.Resolve(context.Background(), "B", conflict.KeepDestination); err != nil {
		t.Fatal(err)
	}
	st, _ = store.Load(context.Background(), "cut")
	if len(st.Pending) != 0 {
		t.Fatalf("pending intents left after every key was settled: %v", st.Pending)
	}
}

// TestReportKeysSortedAndMatched checks that a round over many keys, seen
// in map order, reports them in key order, each with its own destination
// key and the value written under it.
func TestReportKeysSortedAndMatched(t *testing.T) {
	src := map[string]string{}
	dstInit := map[string]string{"OTHER_9": "u", "OTHER_1": "u"}
	for i := range 500 {
		src[fmt.Sprintf("K%03d", (i*7919)%1000)] = fmt.Sprintf("v%d", i)
	}
	dst := memory.New(dstInit)
	s, err := sync.New(sync.Config{Name: "order", Source: memory.New(src), Destination: dst, KeySchema: "APP_{{secretKey}}"})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := s.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Keys) != len(src)+2 {
		t.Fatalf("%d results, want %d", len(rep.Keys), len(src)+2)
	}
	if rep.Keys[0].DestinationKey != "OTHER_1" || rep.Keys[1].DestinationKey != "OTHER_9" {
		t.Fatalf("unmanaged keys first, in order: got %+v, %+v", rep.Keys[0], rep.Keys[1])
	}
	got, _ := dst.List(context.Background())
	managed := rep.Keys[2:]
	for i, k := range managed {
		if i > 0 && managed[i-1].Key >= k.Key {
			t.Fatalf("keys out of order at %d: %q then %q", i, managed[i-1].Key, k.Key)
		}
		if k.DestinationKey != "APP_"+k.Key || k.Action != sync.Created {
			t.Fatalf("result %+v", k)
		}
		if got[k.DestinationKey].Value != src[k.Key] {
			t.Fatalf("%s holds the value of another key", k.DestinationKey)
		}
	}
}
