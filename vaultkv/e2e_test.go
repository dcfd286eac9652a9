package vaultkv_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/secretsync/secretsync/audit"
	"github.com/secretsync/secretsync/conflict"
	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/state"
	"github.com/secretsync/secretsync/sync"
	"github.com/secretsync/secretsync/vaultkv"
	"github.com/secretsync/secretsync/vaultkv/vaulttest"
)

// vaultSide is one sync's Vault side in a test, with raw access to check
// what Vault holds, independently of the code under test.
type vaultSide struct {
	t      *testing.T
	srv    *vaulttest.Server
	c      *api.Client
	mount  string
	path   string
	layout vaultkv.Layout
	kv     *vaultkv.KV
}

func newVaultSide(t *testing.T, layout vaultkv.Layout, mo ...vaulttest.MountOptions) *vaultSide {
	t.Helper()
	srv := vaulttest.Get(t)
	v := &vaultSide{t: t, srv: srv, c: srv.Client(t), mount: srv.NewMount(t, mo...), path: "app", layout: layout}
	v.kv = newKV(t, srv, vaultkv.Options{Mount: v.mount, Path: v.path, Layout: layout, Owner: "e2e"})
	return v
}

// raw writes key=value behind the sync's back (no ownership marker).
func (v *vaultSide) raw(key, value string) {
	v.t.Helper()
	ctx := context.Background()
	kv := v.c.KVv2(v.mount)
	var err error
	if v.layout == vaultkv.SecretPath {
		_, err = kv.Patch(ctx, v.path, map[string]any{key: value})
		if errors.Is(err, api.ErrSecretNotFound) || (err != nil && strings.Contains(err.Error(), "404")) {
			_, err = kv.Put(ctx, v.path, map[string]any{key: value})
		}
	} else {
		_, err = kv.Put(ctx, path.Join(v.path, key), map[string]any{"value": value})
	}
	if err != nil {
		v.t.Fatalf("raw write %s: %v", key, err)
	}
}

// snapshot returns what Vault holds, read with the root token.
func (v *vaultSide) snapshot() map[string]string {
	v.t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	kv := v.c.KVv2(v.mount)
	if v.layout == vaultkv.SecretPath {
		s, err := kv.Get(ctx, v.path)
		if errors.Is(err, api.ErrSecretNotFound) {
			return out
		}
		if err != nil {
			v.t.Fatal(err)
		}
		for k, x := range s.Data {
			out[k] = fmt.Sprint(x)
		}
		return out
	}
	var walk func(dir string)
	walk = func(dir string) {
		l, err := v.c.Logical().ListWithContext(ctx, path.Join(v.mount, "metadata", v.path, dir))
		if err != nil {
			v.t.Fatal(err)
		}
		if l == nil {
			return
		}
		for _, k := range l.Data["keys"].([]any) {
			name := path.Join(dir, k.(string))
			if strings.HasSuffix(k.(string), "/") {
				walk(name)
				continue
			}
			s, err := kv.Get(ctx, path.Join(v.path, name))
			if errors.Is(err, api.ErrSecretNotFound) {
				continue // deleted
			}
			if err != nil {
				v.t.Fatal(err)
			}
			if s.Data != nil {
				out[name] = fmt.Sprint(s.Data["value"])
			}
		}
	}
	walk("")
	return out
}

// versions returns current_version per secret (one entry, "", for the
// secret-path layout).
func (v *vaultSide) versions() map[string]int {
	v.t.Helper()
	ctx := context.Background()
	kv := v.c.KVv2(v.mount)
	out := map[string]int{}
	if v.layout == vaultkv.SecretPath {
		m, err := kv.GetMetadata(ctx, v.path)
		if err != nil {
			v.t.Fatal(err)
		}
		out[""] = m.CurrentVersion
		return out
	}
	for k := range v.snapshot() {
		m, err := kv.GetMetadata(ctx, path.Join(v.path, k))
		if err != nil {
			v.t.Fatal(err)
		}
		out[k] = m.CurrentVersion
	}
	return out
}

func want(t *testing.T, what string, got, exp map[string]string) {
	t.Helper()
	if !maps.Equal(got, exp) {
		t.Fatalf("%s = %v, want %v", what, got, exp)
	}
}

func newSyncer(t *testing.T, cfg sync.Config) *sync.Syncer {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "e2e"
	}
	if cfg.Store == nil {
		cfg.Store = state.NewMemory()
	}
	s, err := sync.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func run(t *testing.T, s *sync.Syncer, opts ...sync.Option) *sync.Report {
	t.Helper()
	rep, err := s.Run(context.Background(), opts...)
	if err != nil {
		t.Fatalf("Run: %v\n%v", err, rep)
	}
	return rep
}

var layouts = []vaultkv.Layout{vaultkv.SecretPath, vaultkv.SecretKey}

// TestE2EPush pushes under a key schema, with unmanaged keys in the same
// secret (secret-path) or other secrets (secret-key) left untouched, then
// updates and deletes, and checks that an idle round writes nothing.
func TestE2EPush(t *testing.T) {
	for _, layout := range layouts {
		t.Run(layout.String(), func(t *testing.T) {
			v := newVaultSide(t, layout)
			v.raw("OTHER", "unmanaged")
			v.raw("dev/DB_URL", "another environment")
			src := memory.New(map[string]string{"DB_URL": "pg://prod", "API_KEY": "k1", "nested/TOKEN": "t1"})
			rec := audit.NewRecorder()
			s := newSyncer(t, sync.Config{Source: src, Destination: v.kv, KeySchema: "prod/{{secretKey}}", Auditor: audit.Prefix("HCV_", rec)})
			rep := run(t, s)
			if rep.Totals.Created != 3 || rep.Totals.Unmanaged != 2 {
				t.Fatalf("first round: %v", rep)
			}
			want(t, "vault", v.snapshot(), map[string]string{
				"OTHER": "unmanaged", "dev/DB_URL": "another environment",
				"prod/DB_URL": "pg://prod", "prod/API_KEY": "k1", "prod/nested/TOKEN": "t1",
			})
			if n := len(rec.Filter("HCV_SECRET_SYNCED")); n != 3 {
				t.Fatalf("HCV_SECRET_SYNCED events = %d, want 3", n)
			}

			src.Set("API_KEY", "k2")
			src.Delete("nested/TOKEN")
			rep = run(t, s)
			if rep.Totals.Updated != 1 || rep.Totals.Deleted != 1 {
				t.Fatalf("second round: %v", rep)
			}
			want(t, "vault", v.snapshot(), map[string]string{
				"OTHER": "unmanaged", "dev/DB_URL": "another environment",
				"prod/DB_URL": "pg://prod", "prod/API_KEY": "k2",
			})

			before := v.versions()
			events := len(rec.Events())
			rep = run(t, s)
			if rep.Totals.Changed() != 0 || !maps.Equal(before, v.versions()) || len(rec.Events()) != events {
				t.Fatalf("idle round wrote: %v; versions %v -> %v", rep, before, v.versions())
			}
		})
	}
}

func TestE2EPull(t *testing.T) {
	for _, layout := range layouts {
		t.Run(layout.String(), func(t *testing.T) {
			v := newVaultSide(t, layout)
			v.raw("APP_DB_URL", "pg://vault")
			v.raw("APP_TOKEN", "t")
			v.raw("UNRELATED", "x")
			host := memory.New(map[string]string{"LOCAL_ONLY": "gone after the mirror"})
			s := newSyncer(t, sync.Config{Source: host, Destination: v.kv, Mode: sync.Pull, KeySchema: "APP_{{secretKey}}"})
			run(t, s, sync.Force())
			want(t, "host", host.Snapshot(), map[string]string{"DB_URL": "pg://vault", "TOKEN": "t"})
			v.raw("APP_TOKEN", "t2")
			if rep := run(t, s); rep.Totals.Updated != 1 {
				t.Fatalf("pull after a change in Vault: %v", rep)
			}
			want(t, "host", host.Snapshot(), map[string]string{"DB_URL": "pg://vault", "TOKEN": "t2"})
			if got := v.snapshot()["UNRELATED"]; got != "x" {
				t.Fatalf("unmanaged key = %q", got)
			}
		})
	}
}

// TestE2EBidirectionalConflict: the same key changed in Vault and at the
// source between rounds is flagged, neither side is written, and resolving
// it converges.
func TestE2EBidirectionalConflict(t *testing.T) {
	for _, layout := range layouts {
		t.Run(layout.String(), func(t *testing.T) {
			v := newVaultSide(t, layout)
			host := memory.New(map[string]string{"DB_URL": "v1", "API_KEY": "a1"})
			rec := audit.NewRecorder()
			s := newSyncer(t, sync.Config{Source: host, Destination: v.kv, Mode: sync.Bidirectional, Auditor: rec})
			run(t, s)
			// A change in Vault flows to the host.
			v.raw("API_KEY", "a2-from-vault")
			run(t, s)
			if got, _ := host.Get("API_KEY"); got.Value != "a2-from-vault" {
				t.Fatalf("host API_KEY = %q", got.Value)
			}
			// Both sides change DB_URL.
			v.raw("DB_URL", "v2-vault")
			host.Set("DB_URL", "v2-host")
			before := v.versions()
			hostPuts := host.Stats().Puts
			rep := run(t, s)
			r, _ := rep.Result("DB_URL")
			if r.Action != sync.Conflict || r.Class != conflict.BothChanged {
				t.Fatalf("DB_URL: %+v", r)
			}
			if !maps.Equal(before, v.versions()) || host.Stats().Puts != hostPuts {
				t.Fatal("a side was written while the conflict was flagged")
			}
			if rec.Count(audit.ConflictDetected) != 1 {
				t.Fatalf("CONFLICT_DETECTED = %d", rec.Count(audit.ConflictDetected))
			}
			// Still flagged next round, with no new event.
			run(t, s)
			if rec.Count(audit.ConflictDetected) != 1 {
				t.Fatal("a standing conflict was reported again")
			}
			if err := s.Resolve(context.Background(), "DB_URL", conflict.UseValue("v3-agreed")); err != nil {
				t.Fatal(err)
			}
			if got := v.snapshot()["DB_URL"]; got != "v3-agreed" {
				t.Fatalf("vault DB_URL = %q", got)
			}
			if got, _ := host.Get("DB_URL"); got.Value != "v3-agreed" {
				t.Fatalf("host DB_URL = %q", got.Value)
			}
			if rep := run(t, s); rep.Totals.Changed() != 0 || rep.Totals.Conflicts != 0 {
				t.Fatalf("round after Resolve: %v", rep)
			}
		})
	}
}

func TestE2EInitialSync(t *testing.T) {
	for _, layout := range layouts {
		for _, tt := range []struct {
			initial  sync.InitialSync
			mode     sync.Mode
			wantHost map[string]string
			wantVlt  map[string]string
		}{
			{sync.OverwriteDestination, sync.Bidirectional,
				map[string]string{"A": "host-a", "H": "host-only"},
				map[string]string{"APP_A": "host-a", "APP_H": "host-only", "KEEP": "unmanaged"}},
			{sync.ImportPreferSource, sync.Bidirectional,
				map[string]string{"A": "host-a", "H": "host-only", "V": "vault-only"},
				map[string]string{"APP_A": "host-a", "APP_H": "host-only", "APP_V": "vault-only", "KEEP": "unmanaged"}},
			{sync.ImportPreferDestination, sync.Push,
				map[string]string{"A": "vault-a", "H": "host-only", "V": "vault-only"},
				map[string]string{"APP_A": "vault-a", "APP_H": "host-only", "APP_V": "vault-only", "KEEP": "unmanaged"}},
		} {
			t.Run(layout.String()+"/"+tt.initial.String(), func(t *testing.T) {
				v := newVaultSide(t, layout)
				v.raw("APP_A", "vault-a")
				v.raw("APP_V", "vault-only")
				v.raw("KEEP", "unmanaged")
				host := memory.New(map[string]string{"A": "host-a", "H": "host-only"})
				// Secrets written behind the sync's back carry no ownership
				// marker: the secret-key layout must be told to adopt them.
				kv := newKV(t, v.srv, vaultkv.Options{Mount: v.mount, Path: v.path, Layout: layout, Owner: "e2e", AdoptUnowned: true})
				s := newSyncer(t, sync.Config{Source: host, Destination: kv, Mode: tt.mode, InitialSync: tt.initial, KeySchema: "APP_{{secretKey}}"})
				rep := run(t, s, sync.Force())
				if !rep.Initial {
					t.Fatal("first round not initial")
				}
				want(t, "host", host.Snapshot(), tt.wantHost)
				want(t, "vault", v.snapshot(), tt.wantVlt)
				if rep := run(t, s); rep.Totals.Changed() != 0 || rep.Totals.Conflicts != 0 {
					t.Fatalf("second round not idle: %v", rep)
				}
			})
		}
	}
}

func TestE2EUnownedSecretsAreNotTouched(t *testing.T) {
	v := newVaultSide(t, vaultkv.SecretKey)
	v.raw("APP_A", "someone else's")
	host := memory.New(map[string]string{"A": "ours"})
	s := newSyncer(t, sync.Config{Source: host, Destination: v.kv, KeySchema: "APP_{{secretKey}}"})
	rep, err := s.Run(context.Background())
	if !errors.Is(err, destination.ErrNotOwned) {
		t.Fatalf("Run = %v, want ErrNotOwned", err)
	}
	if r, _ := rep.Result("A"); r.Action != sync.Failed {
		t.Fatalf("A: %+v", r)
	}
	want(t, "vault", v.snapshot(), map[string]string{"APP_A": "someone else's"})
}

func TestE2EDeletionControlGuardAndRemove(t *testing.T) {
	for _, layout := range layouts {
		t.Run(layout.String(), func(t *testing.T) {
			v := newVaultSide(t, layout)
			v.raw("OTHER", "unmanaged")
			keys := map[string]string{}
			for i := range 6 {
				keys[fmt.Sprintf("K%d", i)] = fmt.Sprint("v", i)
			}
			host := memory.New(keys)
			cfg := sync.Config{Name: "del", Source: host, Destination: v.kv, KeySchema: "APP_{{secretKey}}", DisableDeletion: true, Store: state.NewMemory()}
			s := newSyncer(t, cfg)
			run(t, s)
			host.Delete("K0")
			if rep := run(t, s); rep.Totals.Skipped != 1 || rep.Totals.Deleted != 0 {
				t.Fatalf("DisableDeletion round: %v", rep)
			}
			if _, ok := v.snapshot()["APP_K0"]; !ok {
				t.Fatal("DisableDeletion deleted APP_K0")
			}

			// The same sync with deletion enabled: deleting 4 of 6 is refused.
			cfg.DisableDeletion = false
			s = newSyncer(t, cfg)
			for i := 1; i < 4; i++ {
				host.Delete(fmt.Sprintf("K%d", i))
			}
			before := v.versions()
			_, err := s.Run(context.Background())
			var me *sync.MassDeletionError
			if !errors.As(err, &me) || me.Deletes != 4 {
				t.Fatalf("Run = %v, want a MassDeletionError for 4 keys", err)
			}
			if !maps.Equal(before, v.versions()) {
				t.Fatal("the refused round wrote to Vault")
			}
			run(t, s, sync.Force())
			want(t, "vault", v.snapshot(), map[string]string{"OTHER": "unmanaged", "APP_K4": "v4", "APP_K5": "v5"})

			rep, err := s.Remove(context.Background())
			if err != nil || rep.Totals.Deleted != 2 {
				t.Fatalf("Remove: %v, %v", rep, err)
			}
			want(t, "vault", v.snapshot(), map[string]string{"OTHER": "unmanaged"})
			if rep, err := s.Remove(context.Background()); err != nil || rep.Totals.Deleted != 0 {
				t.Fatalf("second Remove: %v, %v", rep, err)
			}
			st, _ := s.Status(context.Background())
			if st.Remove == nil || st.Remove.Status != state.Succeeded {
				t.Fatalf("remove status: %+v", st.Remove)
			}
		})
	}
}

// TestE2EIdempotence: 100 rounds with no changes leave every
// current_version unchanged.
func TestE2EIdempotence(t *testing.T) {
	for _, layout := range layouts {
		t.Run(layout.String(), func(t *testing.T) {
			v := newVaultSide(t, layout)
			keys := map[string]string{}
			for i := range 20 {
				keys[fmt.Sprintf("K%02d", i)] = fmt.Sprintf(`{"n":%d}`, i) // JSON-looking text stays text
			}
			s := newSyncer(t, sync.Config{Source: memory.New(keys), Destination: v.kv, Mode: sync.Bidirectional})
			run(t, s)
			before := v.versions()
			for range 100 {
				if rep := run(t, s); rep.Totals.Changed() != 0 {
					t.Fatalf("idle round changed: %v", rep)
				}
			}
			if after := v.versions(); !maps.Equal(before, after) {
				t.Fatalf("current_version moved: %v -> %v", before, after)
			}
		})
	}
}

// TestE2ENonStringValues: values Vault holds as JSON numbers, booleans or
// objects are read as their JSON text, and a round trip keeps them.
func TestE2ENonStringValues(t *testing.T) {
	v := newVaultSide(t, vaultkv.SecretPath)
	ctx := context.Background()
	if _, err := v.c.KVv2(v.mount).Put(ctx, v.path, map[string]any{"PORT": 5432, "ON": true, "OBJ": map[string]any{"a": 1}}); err != nil {
		t.Fatal(err)
	}
	host := memory.New(nil)
	s := newSyncer(t, sync.Config{Source: host, Destination: v.kv, Mode: sync.Bidirectional})
	run(t, s)
	want(t, "host", host.Snapshot(), map[string]string{"PORT": "5432", "ON": "true", "OBJ": `{"a":1}`})
	host.Set("NEW", "n")
	run(t, s)
	sec, err := v.c.KVv2(v.mount).Get(ctx, v.path)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%T %T %T", sec.Data["PORT"], sec.Data["ON"], sec.Data["OBJ"]) != "json.Number bool map[string]interface {}" &&
		fmt.Sprintf("%T", sec.Data["PORT"]) != "float64" {
		t.Fatalf("types changed in a round trip: %T %T %T", sec.Data["PORT"], sec.Data["ON"], sec.Data["OBJ"])
	}
}

// TestE2ENoLostUpdate runs a writer that changes the synced secrets in
// Vault while push rounds run. In Vault's version history, no write of the
// sync may directly follow a value of the writer: that would be the
// writer's update overwritten blindly.
func TestE2ENoLostUpdate(t *testing.T) {
	for _, layout := range layouts {
		t.Run(layout.String(), func(t *testing.T) {
			v := newVaultSide(t, layout, vaulttest.MountOptions{MaxVersions: 10000})
			keys := []string{"A", "B", "C"}
			host := memory.New(map[string]string{"A": "src-0", "B": "src-0", "C": "src-0"})
			s := newSyncer(t, sync.Config{Source: host, Destination: v.kv, ConflictPolicy: nil})
			run(t, s)

			ctx, cancel := context.WithCancel(context.Background())
			var wg gosync.WaitGroup
			wg.Add(1)
			writes := 0
			go func() {
				defer wg.Done()
				for i := 0; ctx.Err() == nil; i++ {
					v.raw(keys[i%len(keys)], fmt.Sprint("writer-", i))
					writes++
					time.Sleep(3 * time.Millisecond)
				}
			}()
			for round := 1; round <= 40; round++ {
				for _, k := range keys {
					host.Set(k, fmt.Sprintf("src-%d", round))
				}
				if _, err := s.Run(context.Background()); err != nil && !errors.Is(err, destination.ErrConflict) {
					cancel()
					wg.Wait()
					t.Fatalf("round %d: %v", round, err)
				}
			}
			cancel()
			wg.Wait()
			if writes == 0 {
				t.Fatal("the writer never wrote")
			}
			checked := 0
			for _, k := range keys {
				hist := v.history(k)
				for i := 1; i < len(hist); i++ {
					if strings.HasPrefix(hist[i], "src-") && strings.HasPrefix(hist[i-1], "writer-") {
						t.Fatalf("%s: version %d (%s) overwrote the writer's %s", k, i+1, hist[i], hist[i-1])
					}
					checked++
				}
			}
			t.Logf("%d writer writes; %d versions checked", writes, checked)
		})
	}
}

// history returns the values key had in each version, oldest first.
func (v *vaultSide) history(key string) []string {
	v.t.Helper()
	ctx := context.Background()
	kv := v.c.KVv2(v.mount)
	p, field := path.Join(v.path, key), "value"
	if v.layout == vaultkv.SecretPath {
		p, field = v.path, key
	}
	m, err := kv.GetMetadata(ctx, p)
	if err != nil {
		v.t.Fatal(err)
	}
	var out []string
	last := ""
	for n := 1; n <= m.CurrentVersion; n++ {
		s, err := kv.GetVersion(ctx, p, n)
		val := "(deleted)"
		if err == nil && s != nil && s.Data != nil {
			val = fmt.Sprint(s.Data[field])
		}
		if v.layout == vaultkv.SecretPath && val == last {
			continue // a version that changed another field
		}
		out, last = append(out, val), val
	}
	return slices.Clip(out)
}
