package faults_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/secretsync/secretsync/connection"
	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/internal/crashtest"
	"github.com/secretsync/secretsync/state"
	"github.com/secretsync/secretsync/sync"
	"github.com/secretsync/secretsync/vaultkv"
	"github.com/secretsync/secretsync/vaultkv/vaulttest"
)

// crashRounds is how many rounds each crash test runs.
const crashRounds = 220

// vaultCrashWorld is a sync from an in-memory host side to a real Vault,
// with a file state store, whose process dies at random fault points.
type vaultCrashWorld struct {
	t      *testing.T
	srv    *vaulttest.Server
	root   *api.Client
	mode   sync.Mode
	layout vaultkv.Layout
	mount  string
	host   *memory.Destination
	file   string
	rng    *rand.Rand
	keys   []string

	rounds, crashes, good, falseConflicts int
	where                                 map[string]int
}

// process opens the store and the Vault side as a new process would, each
// wrapped so that the process dies at crashAt. The returned close releases
// the state file as the death of the process would.
func (w *vaultCrashWorld) process(p *crashtest.Process) (*sync.Syncer, func()) {
	w.t.Helper()
	ctx := context.Background()
	f, err := state.OpenFile(w.file, nil)
	if err != nil {
		w.t.Fatalf("open state file: %v", err)
	}
	conn, err := connection.New(ctx, connection.Config{Address: w.srv.Addr, Token: &connection.Token{Token: connection.Credential{Value: w.srv.Token}}}, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	kv, err := vaultkv.New(ctx, conn, &vaultkv.Options{Mount: w.mount, Path: "app", Layout: w.layout, Owner: "crash"})
	if err != nil {
		w.t.Fatal(err)
	}
	cfg := sync.Config{Name: "crash", Mode: w.mode, Destination: p.Destination(kv), Store: p.Store(f),
		Concurrency: 1 + w.rng.IntN(4)}
	if w.mode == sync.Push {
		cfg.Source = w.host.Reader()
	} else {
		cfg.Source = p.Destination(w.host)
	}
	s, err := sync.New(cfg)
	if err != nil {
		w.t.Fatal(err)
	}
	return s, func() { _ = f.Close(); _ = conn.Close(ctx) }
}

// vault returns what Vault holds, read with the root token.
func (w *vaultCrashWorld) vault() map[string]string {
	w.t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	kv := w.root.KVv2(w.mount)
	if w.layout == vaultkv.SecretPath {
		s, err := kv.Get(ctx, "app")
		if errors.Is(err, api.ErrSecretNotFound) {
			return out
		}
		if err != nil {
			w.t.Fatal(err)
		}
		for k, v := range s.Data {
			out[k] = fmt.Sprint(v)
		}
		return out
	}
	l, err := w.root.Logical().ListWithContext(ctx, path.Join(w.mount, "metadata", "app"))
	if err != nil {
		w.t.Fatal(err)
	}
	if l == nil {
		return out
	}
	for _, k := range l.Data["keys"].([]any) {
		s, err := kv.Get(ctx, path.Join("app", k.(string)))
		if errors.Is(err, api.ErrSecretNotFound) || (err != nil && strings.Contains(err.Error(), "deleted")) {
			continue
		}
		if err != nil {
			w.t.Fatal(err)
		}
		if s.Data != nil {
			out[k.(string)] = fmt.Sprint(s.Data["value"])
		}
	}
	return out
}

// mutate changes a few host keys; in bidirectional mode some of them are
// changed in Vault instead, with the root token, at most one side per key
// until the next round that completes.
func (w *vaultCrashWorld) mutate(sideOf map[string]string) {
	w.t.Helper()
	ctx := context.Background()
	for range 1 + w.rng.IntN(5) {
		k := w.keys[w.rng.IntN(len(w.keys))]
		side, ok := sideOf[k]
		if !ok {
			side = "host"
			if w.mode == sync.Bidirectional && w.rng.IntN(2) == 0 {
				side = "vault"
			}
			sideOf[k] = side
		}
		v := fmt.Sprintf("%s-%d", k, w.rng.Uint32())
		if side == "host" {
			if _, ok := w.host.Get(k); ok && w.rng.IntN(8) == 0 {
				w.host.Delete(k)
			} else {
				w.host.Set(k, v)
			}
			continue
		}
		// Vault side of a bidirectional sync (secret-key layout): an
		// update of a key the sync created keeps its ownership marker.
		if s, err := w.root.KVv2(w.mount).Get(ctx, path.Join("app", k)); err != nil || s.Data == nil {
			continue // absent or deleted: nothing of the sync's to change
		}
		if _, err := w.root.KVv2(w.mount).Patch(ctx, path.Join("app", k), map[string]any{"value": v}); err != nil {
			w.t.Fatalf("write %s in Vault: %v", k, err)
		}
	}
}

func (w *vaultCrashWorld) run(rounds int) {
	ctx := context.Background()
	sideOf := map[string]string{}
	w.where = map[string]int{}
	for w.rounds = 0; w.rounds < rounds; w.rounds++ {
		w.mutate(sideOf)
		crashAt := -1
		if w.rng.IntN(4) != 0 {
			crashAt = w.rng.IntN(14)
		}
		p := crashtest.NewProcess(crashAt)
		s, closeStore := w.process(p)
		rep, err := s.Run(ctx)
		closeStore()
		if rep != nil && rep.Totals.Conflicts > 0 {
			w.falseConflicts += rep.Totals.Conflicts
			w.t.Errorf("round %d (died at %q): false conflicts: %v", w.rounds, p.Where(), rep.Conflicts())
		}
		if p.Dead() {
			w.crashes++
			w.where[strings.Fields(p.Where())[0]+" "+strings.Fields(p.Where())[1]]++
			continue
		}
		if err != nil {
			w.t.Fatalf("round %d: a round that did not crash failed: %v", w.rounds, err)
		}
		if rep.Totals.Retries > 0 {
			continue
		}
		w.good++
		clear(sideOf)
		if got, want := w.vault(), w.host.Snapshot(); !maps.Equal(got, want) {
			w.t.Fatalf("round %d: sides differ after a good round:\nhost  %v\nvault %v", w.rounds, want, got)
		}
		s, closeStore = w.process(crashtest.NewProcess(-1))
		again, err := s.Run(ctx)
		closeStore()
		if err != nil || again.Totals.Changed() != 0 {
			w.t.Fatalf("round %d: the round after a good one wrote: %v, %v", w.rounds, again, err)
		}
		f, err := state.OpenFile(w.file, nil)
		if err != nil {
			w.t.Fatal(err)
		}
		st, err := f.Load(ctx, "crash")
		_ = f.Close()
		if err != nil {
			w.t.Fatal(err)
		}
		if len(st.Conflicts) != 0 || st.Sync.Status != state.Succeeded {
			w.t.Fatalf("round %d: stored state after a good round: conflicts %v, status %+v", w.rounds, slices.Collect(maps.Keys(st.Conflicts)), st.Sync)
		}
	}
}

// TestCrashAtEveryStepAgainstVault: a sync to a real Vault, with a file
// state store, whose process dies at a random fault point of most rounds
// (before or after each state save, after each write to Vault) while the
// host's values change at random. No round ever flags a conflict, and every
// round that completes leaves Vault holding exactly the host's values.
func TestCrashAtEveryStepAgainstVault(t *testing.T) {
	srv := vaulttest.Get(t)
	cases := []struct {
		mode   sync.Mode
		layout vaultkv.Layout
	}{
		{sync.Push, vaultkv.SecretKey},
		{sync.Push, vaultkv.SecretPath},
		{sync.Bidirectional, vaultkv.SecretKey},
	}
	for i, c := range cases {
		t.Run(c.mode.String()+"/"+c.layout.String(), func(t *testing.T) {
			w := &vaultCrashWorld{t: t, srv: srv, root: srv.Client(t), mode: c.mode, layout: c.layout,
				mount: srv.NewMount(t), host: memory.New(nil), file: filepath.Join(t.TempDir(), "state.json"),
				rng: rand.New(rand.NewPCG(uint64(i), 99))}
			init := map[string]string{}
			for j := range 30 {
				k := fmt.Sprintf("K%02d", j)
				w.keys = append(w.keys, k)
				if j < 20 {
					init[k] = k + "-0"
				}
			}
			w.host = memory.New(init)
			w.run(crashRounds)
			t.Logf("%s/%s: %d rounds, %d died (%v), %d completed, %d false conflicts",
				c.mode, c.layout, w.rounds, w.crashes, w.where, w.good, w.falseConflicts)
		})
	}
}

var _ destination.Destination = (*memory.Destination)(nil)
