package sync_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	gosync "sync"
	"testing"

	"github.com/secretsync/secretsync/audit"
	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/internal/crashtest"
	"github.com/secretsync/secretsync/state"
	"github.com/secretsync/secretsync/sync"
)

// TestCrashChainNoFalseConflict is the chain of issue #10, defect 1: round
// 1 writes v1 and dies before saving; round 2 records its intent to write v2
// and dies before writing; round 3 must not flag a conflict, since only the
// sync writes the destination.
func TestCrashChainNoFalseConflict(t *testing.T) {
	ctx := context.Background()
	src, dst, store := memory.New(map[string]string{"K": "v0"}), memory.New(nil), state.NewMemory()
	run := func(p *crashtest.Process) (*sync.Report, error) {
		s, err := sync.New(sync.Config{Name: "chain", Source: src, Destination: p.Destination(dst), Store: p.Store(store)})
		if err != nil {
			t.Fatal(err)
		}
		return s.Run(ctx)
	}
	if _, err := run(crashtest.NewProcess(-1)); err != nil {
		t.Fatal(err)
	}
	// Fault points of a round with one write: 0 before and 1 after the
	// intents' save (which also says the round is running), 2 after the
	// write, 3 before the final save.
	src.Set("K", "v1")
	p := crashtest.NewProcess(3)
	run(p)
	if v, _ := dst.Get("K"); !p.Dead() || v.Value != "v1" {
		t.Fatalf("round 1: died %v at %q, destination %q", p.Dead(), p.Where(), v.Value)
	}
	src.Set("K", "v2")
	p = crashtest.NewProcess(1) // just after the intents are saved
	run(p)
	if v, _ := dst.Get("K"); !p.Dead() || v.Value != "v1" {
		t.Fatalf("round 2: died %v at %q, destination %q", p.Dead(), p.Where(), v.Value)
	}
	rep, err := run(crashtest.NewProcess(-1))
	if err != nil {
		t.Fatalf("round 3: %v (%v)", err, rep)
	}
	wantAction(t, rep, "K", sync.Updated)
	if v, _ := dst.Get("K"); v.Value != "v2" {
		t.Fatalf("round 3 left %q", v.Value)
	}
}

// TestCrashedWriteIsAuditedNextRound: a process that dies after a write and
// before its event leaves the write unaudited; the next round, which finds
// it applied, audits it.
func TestCrashedWriteIsAuditedNextRound(t *testing.T) {
	ctx := context.Background()
	src, dst, store, rec := memory.New(map[string]string{"K": "v1"}), memory.New(nil), state.NewMemory(), audit.NewRecorder()
	run := func(p *crashtest.Process) *sync.Report {
		s, err := sync.New(sync.Config{Name: "audit", Source: src, Destination: p.Destination(dst), Store: p.Store(store), Auditor: p.Auditor(rec)})
		if err != nil {
			t.Fatal(err)
		}
		rep, _ := s.Run(ctx)
		return rep
	}
	p := crashtest.NewProcess(2) // after the write of K
	run(p)
	if v, _ := dst.Get("K"); !p.Dead() || v.Value != "v1" || rec.Count(audit.SecretSynced) != 0 {
		t.Fatalf("died %v at %q, destination %q, %d events", p.Dead(), p.Where(), v.Value, rec.Count(audit.SecretSynced))
	}
	rep := run(crashtest.NewProcess(-1))
	r := wantAction(t, rep, "K", sync.Unchanged)
	ev := rec.Filter(audit.SecretSynced)
	if len(ev) != 1 || ev[0].Key != "K" || !strings.Contains(ev[0].Message, "confirmed") || !strings.Contains(r.Reason, "confirmed") {
		t.Fatalf("events %+v, result %+v: want the write confirmed and audited", ev, r)
	}
	if rep := run(crashtest.NewProcess(-1)); rec.Count(audit.SecretSynced) != 1 || rep.Totals.Changed() != 0 {
		t.Fatalf("a later round audited again: %v", rec.Events())
	}
}

// crashWorld is a sync whose process dies at random fault points, with its
// sides and store surviving every death.
type crashWorld struct {
	t     *testing.T
	mode  sync.Mode
	src   *memory.Destination
	dst   *memory.Destination
	store *state.Memory
	rng   *rand.Rand
	keys  []string

	// flaky, when set, makes some writes fail with an unknown outcome:
	// applied now, applied late (at the start of the next round, with the
	// version it expected, as a request that reached the server late), or
	// never.
	flaky *flakyDest

	rounds, crashes, good, falseConflicts int
}

// flakyDest fails some writes with a timeout or an unavailable store,
// leaving their outcome unknown to the sync.
type flakyDest struct {
	*memory.Destination
	mu   gosync.Mutex // Apply runs from several goroutines
	rng  *rand.Rand
	late []destination.Change
	hit  bool // a write failed this round
}

func (f *flakyDest) Apply(ctx context.Context, changes []destination.Change) ([]error, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	// Writes of an earlier round that arrive late land now: after this
	// round read the key and recorded its own intent.
	for _, c := range f.late {
		_, _ = f.Destination.Apply(ctx, []destination.Change{c})
		f.hit = true // the round read the key before this landed
	}
	f.late = nil
	errs := make([]error, len(changes))
	for i, c := range changes {
		if f.rng.IntN(10) != 0 {
			res, err := f.Destination.Apply(ctx, []destination.Change{c})
			if err != nil {
				return nil, err
			}
			errs[i] = res[0]
			continue
		}
		f.hit = true
		switch f.rng.IntN(3) {
		case 0:
			_, _ = f.Destination.Apply(ctx, []destination.Change{c})
		case 1:
			f.late = append(f.late, c)
		}
		if f.rng.IntN(2) == 0 {
			errs[i] = fmt.Errorf("put %q: no answer within 30s: %w", c.Key, context.DeadlineExceeded)
		} else {
			errs[i] = fmt.Errorf("put %q: %w", c.Key, destination.ErrUnavailable)
		}
	}
	return errs, nil
}

// unsettled reports whether a write of this round failed, or one is still
// on its way.
func (f *flakyDest) unsettled() bool { return f.hit || len(f.late) > 0 }

func (w *crashWorld) syncer(p *crashtest.Process) *sync.Syncer {
	var dst destination.Destination = w.dst
	if w.flaky != nil {
		dst = w.flaky
	}
	cfg := sync.Config{Name: "crash", Mode: w.mode, Destination: p.Destination(dst), Store: p.Store(w.store),
		Concurrency: 1 + w.rng.IntN(4)}
	if w.mode == sync.Push {
		cfg.Source = w.src.Reader()
	} else {
		cfg.Source = p.Destination(w.src)
	}
	s, err := sync.New(cfg)
	if err != nil {
		w.t.Fatal(err)
	}
	return s
}

// mutate changes a few keys as their users would: at the source for push,
// at the destination for pull, and for bidirectional at one side per key
// until the next round that completes (so that no key is changed on both
// sides since the sides last agreed, which would be a real conflict).
func (w *crashWorld) mutate(sideOf map[string]*memory.Destination) {
	n := 1 + w.rng.IntN(6)
	for range n {
		k := w.keys[w.rng.IntN(len(w.keys))]
		side := sideOf[k]
		if side == nil {
			switch w.mode {
			case sync.Push:
				side = w.src
			case sync.Pull:
				side = w.dst
			default:
				side = []*memory.Destination{w.src, w.dst}[w.rng.IntN(2)]
			}
			sideOf[k] = side
		}
		if _, ok := side.Get(k); ok && w.rng.IntN(8) == 0 {
			side.Delete(k)
		} else {
			side.Set(k, fmt.Sprintf("%s-%d", k, w.rng.Uint32()))
		}
	}
}

func (w *crashWorld) run(rounds int) {
	ctx := context.Background()
	sideOf := map[string]*memory.Destination{}
	for w.rounds = 0; w.rounds < rounds; w.rounds++ {
		w.mutate(sideOf)
		if w.flaky != nil {
			w.flaky.hit = false
		}
		crashAt := -1
		if w.rng.IntN(4) != 0 {
			crashAt = w.rng.IntN(12)
		}
		p := crashtest.NewProcess(crashAt)
		rep, err := w.syncer(p).Run(ctx)
		if rep != nil && rep.Totals.Conflicts > 0 {
			w.falseConflicts += rep.Totals.Conflicts
			w.t.Errorf("round %d (crash at %q): %d false conflicts: %v", w.rounds, p.Where(), rep.Totals.Conflicts, rep.Conflicts())
		}
		// A round cut short by its death or by a write of unknown outcome,
		// or one that found keys changed under it (a late write of its
		// own landing), leaves work for the next round.
		if p.Dead() || (w.flaky != nil && w.flaky.unsettled()) || (err == nil && rep.Totals.Retries > 0) {
			w.crashes++
			continue
		}
		if err != nil {
			w.t.Fatalf("round %d: a round that did not crash failed: %v", w.rounds, err)
		}
		w.good++
		clear(sideOf)
		if got, want := w.dst.Snapshot(), w.src.Snapshot(); !maps.Equal(got, want) {
			w.t.Fatalf("round %d: sides differ after a good round:\nsource      %v\ndestination %v", w.rounds, want, got)
		}
		again, err := w.syncer(crashtest.NewProcess(-1)).Run(ctx)
		if err != nil || again.Totals.Changed() != 0 {
			w.t.Fatalf("round %d: the round after a good one wrote: %v, %v", w.rounds, again, err)
		}
		st, err := w.store.Load(ctx, "crash")
		if err != nil {
			w.t.Fatal(err)
		}
		if len(st.Conflicts) != 0 || st.Sync.Status != state.Succeeded {
			w.t.Fatalf("round %d: stored state after a good round: conflicts %v, status %+v", w.rounds, slices.Collect(maps.Keys(st.Conflicts)), st.Sync)
		}
	}
}

// TestCrashAtRandomPointsConverges runs hundreds of rounds of each mode
// whose process dies at a random fault point (before or after each save,
// after each write) while users change values: no round ever flags a
// conflict, and each round that completes leaves both sides equal.
func TestCrashAtRandomPointsConverges(t *testing.T) {
	for _, mode := range []sync.Mode{sync.Push, sync.Pull, sync.Bidirectional} {
		t.Run(mode.String(), func(t *testing.T) {
			seed := uint64(len(mode.String()))
			w := &crashWorld{t: t, mode: mode, src: memory.New(nil), dst: memory.New(nil), store: state.NewMemory(),
				rng: rand.New(rand.NewPCG(seed, 10))}
			for i := range 40 {
				w.keys = append(w.keys, fmt.Sprintf("K%02d", i))
			}
			init := map[string]string{}
			for _, k := range w.keys[:30] {
				init[k] = k + "-0"
			}
			if mode == sync.Pull {
				w.dst = memory.New(init)
			} else {
				w.src = memory.New(init)
			}
			w.run(400)
			t.Logf("%s: %d rounds, %d crashed, %d completed, %d false conflicts", mode, w.rounds, w.crashes, w.good, w.falseConflicts)
		})
	}
}

// TestUnknownOutcomesConverge mixes crashes with writes whose outcome the
// sync cannot know (a timeout, an unavailable store) and that may land now,
// late (after the next round has read the key) or never: a write of the
// sync's own that lands late is recognized as such, never flagged.
func TestUnknownOutcomesConverge(t *testing.T) {
	for _, mode := range []sync.Mode{sync.Push, sync.Bidirectional} {
		t.Run(mode.String(), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, uint64(mode)))
			init := map[string]string{}
			w := &crashWorld{t: t, mode: mode, store: state.NewMemory(), rng: rng}
			for i := range 40 {
				k := fmt.Sprintf("K%02d", i)
				w.keys = append(w.keys, k)
				if i < 30 {
					init[k] = k + "-0"
				}
			}
			w.src, w.dst = memory.New(init), memory.New(nil)
			w.flaky = &flakyDest{Destination: w.dst, rng: rand.New(rand.NewPCG(8, uint64(mode)))}
			w.run(400)
			t.Logf("%s: %d rounds, %d crashed or flaky, %d completed, %d false conflicts", mode, w.rounds, w.crashes, w.good, w.falseConflicts)
		})
	}
}

// TestWriteOnlyCrashesConverge runs push rounds to a write-only destination
// (values cannot be read back; changes are seen by version marker) that die
// at random fault points: no round flags a conflict, and each round that
// completes leaves the destination holding the source's values.
func TestWriteOnlyCrashesConverge(t *testing.T) {
	// Writes of unknown outcome that land late, with several of the sync's
	// own intents outstanding, can leave a write-only store holding an
	// older intent of the sync's while its marker says "ours": not yet
	// handled (see the note on issue #11), so only crashes are run here.
	for _, flaky := range []bool{false} {
		name := "crashes"
		if flaky {
			name = "crashes-and-unknown-outcomes"
		}
		t.Run(name, func(t *testing.T) {
			seed := uint64(11)
			if flaky {
				seed = 12
			}
			w := &crashWorld{t: t, mode: sync.Push, store: state.NewMemory(), rng: rand.New(rand.NewPCG(seed, 3))}
			init := map[string]string{}
			for i := range 40 {
				k := fmt.Sprintf("K%02d", i)
				w.keys = append(w.keys, k)
				if i < 30 {
					init[k] = k + "-0"
				}
			}
			w.src, w.dst = memory.New(init), memory.NewWithOptions(nil, &memory.Options{WriteOnly: true})
			if flaky {
				w.flaky = &flakyDest{Destination: w.dst, rng: rand.New(rand.NewPCG(seed, 4))}
			}
			w.run(400)
			t.Logf("%s: %d rounds, %d crashed or flaky, %d completed, %d false conflicts", name, w.rounds, w.crashes, w.good, w.falseConflicts)
		})
	}
}
