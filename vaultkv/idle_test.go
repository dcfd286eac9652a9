package vaultkv_test

import (
	"context"
	"fmt"
	"net/http"
	"path"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/state"
	"github.com/secretsync/secretsync/sync"
	"github.com/secretsync/secretsync/vaultkv"
	"github.com/secretsync/secretsync/vaultkv/vaulttest"
)

// stateVersions returns the KV version of the named sync's state in a
// Store kept at the default path of mount.
func stateVersions(t *testing.T, srv *vaulttest.Server, mount, name string) int {
	t.Helper()
	m, err := srv.Client(t).KVv2(mount).GetMetadata(context.Background(), path.Join("secretsync", "state", name))
	if err != nil {
		t.Fatal(err)
	}
	return m.CurrentVersion
}

// TestIdleRoundsAddNoStoreVersions: with the state kept in Vault KV, idle
// rounds add no KV version of the state, and a round with a change adds
// two (its intents, then its outcome), in both layouts.
func TestIdleRoundsAddNoStoreVersions(t *testing.T) {
	srv := vaulttest.Get(t)
	ctx := context.Background()
	for _, layout := range []vaultkv.Layout{vaultkv.SecretPath, vaultkv.SecretKey} {
		t.Run(layout.String(), func(t *testing.T) {
			mount := srv.NewMount(t)
			store := newStore(t, srv, srv.Conn(t), mount)
			kv := newKV(t, srv, vaultkv.Options{Mount: mount, Path: "app", Layout: layout, Owner: "idle"})
			src := memory.New(map[string]string{"A": "1", "B": "1", "C": "1"})
			s, err := sync.New(sync.Config{Name: "idle", Source: src, Destination: kv, Store: store})
			if err != nil {
				t.Fatal(err)
			}
			run := func() *sync.Report {
				t.Helper()
				rep, err := s.Run(ctx)
				if err != nil {
					t.Fatalf("Run: %v (%v)", err, rep)
				}
				return rep
			}
			run()
			v0 := stateVersions(t, srv, mount, "idle")
			const rounds = 20
			var last *sync.Report
			for range rounds {
				if last = run(); last.Totals.Changed() != 0 {
					t.Fatalf("idle round wrote: %v", last)
				}
			}
			idle := stateVersions(t, srv, mount, "idle") - v0
			src.Set("A", "2")
			if rep := run(); rep.Totals.Updated != 1 {
				t.Fatalf("round with a change: %v", rep)
			}
			change := stateVersions(t, srv, mount, "idle") - v0 - idle
			t.Logf("state KV versions: %d over %d idle rounds (%.2f per round), %d for a round with a change",
				idle, rounds, float64(idle)/rounds, change)
			if idle != 0 || change != 2 {
				t.Fatalf("%d versions over %d idle rounds and %d for a round with a change; want 0 and 2", idle, rounds, change)
			}
			// Status showed the latest idle round while it was the latest.
			run()
			st, err := s.Status(ctx)
			if err != nil || st.Sync.Status != state.Succeeded {
				t.Fatalf("Status = %+v, %v", st, err)
			}
		})
	}
}

// TestSecretPathConflictReplanned: in the SecretPath layout, another
// client's write to a field the sync does not manage makes the sync's
// check-and-set write of the secret fail; the round reads the secret again
// and writes it, up to three times, keeping the other client's field. The
// other write is made by the proxy just before each of the sync's first n
// writes of the secret reaches Vault.
func TestSecretPathConflictReplanned(t *testing.T) {
	srv := vaulttest.Get(t)
	ctx := context.Background()
	for _, tc := range []struct {
		n         int
		wantRetry bool
	}{{1, false}, {3, false}, {4, true}} {
		t.Run(fmt.Sprint("conflicts=", tc.n), func(t *testing.T) {
			mount := srv.NewMount(t)
			root := srv.Client(t).KVv2(mount)
			if _, err := root.Put(ctx, "app", map[string]any{"OTHER": "0"}); err != nil {
				t.Fatal(err)
			}
			p := srv.RequestProxy(t)
			conn := connThrough(t, p, srv.Token, 0, 10*time.Second)
			kv, err := vaultkv.New(ctx, conn, &vaultkv.Options{Mount: mount, Path: "app", Layout: vaultkv.SecretPath, Owner: "busy"})
			if err != nil {
				t.Fatal(err)
			}
			src := memory.New(map[string]string{"A": "1", "B": "1"})
			s, err := sync.New(sync.Config{Name: "busy", Source: src, Destination: kv, Store: newStore(t, srv, conn, mount),
				KeySchema: "APP_{{secretKey}}"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Run(ctx); err != nil {
				t.Fatal(err)
			}
			var writes, others atomic.Int32
			p.Intercept(func(r *http.Request) vaulttest.Verdict {
				if r.Method != http.MethodGet && r.URL.Path == "/v1/"+mount+"/data/app" {
					if writes.Add(1) <= int32(tc.n) {
						n := others.Add(1)
						if _, err := root.Patch(context.Background(), "app", map[string]any{"OTHER": fmt.Sprint(n)}); err != nil {
							t.Errorf("other writer: %v", err)
						}
					}
				}
				return vaulttest.Forward
			})
			src.Set("A", "2")
			rep, err := s.Run(ctx)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			got, err := root.Get(ctx, "app")
			if err != nil {
				t.Fatal(err)
			}
			r, _ := rep.Result("A")
			t.Logf("%d conflicting writes: A %v after %d writes of the secret; Vault holds %v", tc.n, r.Action, writes.Load(), got.Data)
			if got.Data["OTHER"] != fmt.Sprint(others.Load()) {
				t.Fatalf("the other client's field is %v, want %d", got.Data["OTHER"], others.Load())
			}
			if tc.wantRetry {
				if r.Action != sync.Retry || writes.Load() != 4 || got.Data["APP_A"] != "1" {
					t.Fatalf("A %v after %d writes, APP_A=%v: want Retry after 4", r.Action, writes.Load(), got.Data["APP_A"])
				}
				return
			}
			if r.Action != sync.Updated || got.Data["APP_A"] != "2" || writes.Load() != int32(tc.n+1) {
				t.Fatalf("A %v after %d writes, APP_A=%v: want Updated after %d", r.Action, writes.Load(), got.Data["APP_A"], tc.n+1)
			}
		})
	}
}

// TestSecretPathBusyWriter runs 20 rounds of a SecretPath sync, each with a
// change, while another client writes a field of the same secret that the
// sync does not manage as fast as it can. It reports how many rounds
// applied their change at once, and checks what holds whatever the timing:
// no round fails or flags a conflict, the other client's field is never
// overwritten, and the sync converges once the writer stops.
func TestSecretPathBusyWriter(t *testing.T) {
	srv := vaulttest.Get(t)
	for _, pause := range []time.Duration{0, 2 * time.Millisecond, 10 * time.Millisecond} {
		t.Run(fmt.Sprint("pause=", pause), func(t *testing.T) { busyWriter(t, srv, pause) })
	}
}

// busyWriter runs TestSecretPathBusyWriter with a writer that pauses
// between its writes.
func busyWriter(t *testing.T, srv *vaulttest.Server, pause time.Duration) {
	ctx := context.Background()
	mount := srv.NewMount(t, vaulttest.MountOptions{MaxVersions: 100000})
	root := srv.Client(t).KVv2(mount)
	if _, err := root.Put(ctx, "app", map[string]any{"OTHER": "0"}); err != nil {
		t.Fatal(err)
	}
	conn := srv.Conn(t)
	kv := newKV(t, srv, vaultkv.Options{Mount: mount, Path: "app", Layout: vaultkv.SecretPath, Owner: "busy"})
	src := memory.New(map[string]string{"A": "0", "B": "0"})
	s, err := sync.New(sync.Config{Name: "busy", Source: src, Destination: kv, Store: newStore(t, srv, conn, mount),
		KeySchema: "APP_{{secretKey}}"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}

	wctx, stop := context.WithCancel(ctx)
	var (
		wg   gosync.WaitGroup
		last atomic.Int64
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := int64(1); wctx.Err() == nil; n++ {
			if _, err := root.Patch(wctx, "app", map[string]any{"OTHER": fmt.Sprint(n)}); err != nil {
				if wctx.Err() == nil {
					t.Errorf("other writer: %v", err)
				}
				return
			}
			last.Store(n)
			time.Sleep(pause)
		}
	}()
	const rounds = 20
	succeeded := 0
	for i := 1; i <= rounds; i++ {
		src.Set("A", fmt.Sprint(i))
		rep, err := s.Run(ctx)
		if err != nil || rep.Totals.Conflicts != 0 || rep.Totals.Failed != 0 {
			stop()
			wg.Wait()
			t.Fatalf("round %d: %v, %v", i, rep, err)
		}
		if rep.Totals.Retries == 0 {
			succeeded++
		}
	}
	stop()
	wg.Wait()
	t.Logf("%d of %d rounds applied their change while another client wrote the secret (%d writes, pausing %v)", succeeded, rounds, last.Load(), pause)
	rep, err := s.Run(ctx)
	if err != nil || rep.Totals.Retries != 0 {
		t.Fatalf("round after the writer stopped: %v, %v", rep, err)
	}
	got, err := root.Get(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	// The writer's last write may land after its context ended.
	if other := fmt.Sprint(got.Data["OTHER"]); got.Data["APP_A"] != fmt.Sprint(rounds) || (other != fmt.Sprint(last.Load()) && other != fmt.Sprint(last.Load()+1)) {
		t.Fatalf("Vault holds %v; want APP_A=%d and the other client's last write OTHER=%d", got.Data, rounds, last.Load())
	}
}
