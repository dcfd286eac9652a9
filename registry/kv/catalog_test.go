package kv_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/secretsync/secretsync/connection"
	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/registry"
	"github.com/secretsync/secretsync/registry/kv"
	"github.com/secretsync/secretsync/vaultkv"
	"github.com/secretsync/secretsync/vaultkv/vaulttest"
)

// tokenKV is a program's own destination type that holds a credential:
// a Vault KV mount reached with a token of its own.
type tokenKV struct {
	Mount string              `json:"mount"`
	Token registry.Credential `json:"token"`
}

func (tokenKV) Type() string    { return "token-kv" }
func (tokenKV) Validate() error { return nil }

const catalogCanary = "hvs.catalog-canary-9f3e"

// TestCatalogReplicasAgainstVault: two replicas share one vaultkv.Store
// as their sync state and catalog, with credentials sealed by a Transit
// key. What one sets, the other finds and syncs; what one removes, the
// other drops. The catalog in Vault holds the credential only sealed.
func TestCatalogReplicasAgainstVault(t *testing.T) {
	ctx := context.Background()
	srv := vaulttest.Get(t)
	c := srv.Client(t)
	srcMount, dstMount, stateMount := srv.NewMount(t), srv.NewMount(t), srv.NewMount(t)
	if _, err := c.KVv2(srcMount).Put(ctx, "app", map[string]any{"DB": "db-1"}); err != nil {
		t.Fatal(err)
	}
	tk := srv.NewTransitKey(t)

	replica := func(poll time.Duration) *registry.Registry {
		conn := srv.Conn(t)
		store, err := vaultkv.NewStore(ctx, conn, &vaultkv.StoreOptions{Mount: stateMount})
		if err != nil {
			t.Fatal(err)
		}
		sealer, err := vaultkv.NewTransit(conn, &vaultkv.TransitOptions{Mount: tk.Mount, Key: tk.Name})
		if err != nil {
			t.Fatal(err)
		}
		lock, err := store.NewLock(nil)
		if err != nil {
			t.Fatal(err)
		}
		vaultDriver := kv.Driver(map[string]*connection.Conn{"main": conn}, "catalog-test")
		r, err := registry.Open(ctx, &registry.Options{
			Drivers: map[string]registry.Driver{
				"token-kv": func(ctx context.Context, tg registry.Target) (destination.Destination, error) {
					cfg := tg.Config.(tokenKV)
					if cfg.Token.Reveal() != catalogCanary {
						t.Errorf("the driver got another token than the one Put")
					}
					return vaultDriver(ctx, registry.Target{Name: tg.Name, Owner: tg.Owner,
						Config: registry.VaultKV{Connection: "main", Mount: cfg.Mount, Layout: "secret-key"}})
				},
			},
			Source:       kv.SecretSource(conn),
			Store:        store,
			Catalog:      store,
			Sealer:       sealer,
			Lock:         lock,
			Types:        map[string]registry.Config{"token-kv": tokenKV{}},
			PollInterval: poll,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		return r
	}

	admin := replica(time.Hour)
	if _, err := admin.Put(ctx, "replica", tokenKV{Mount: dstMount, Token: catalogCanary}); err != nil {
		t.Fatal(err)
	}
	ref := registry.SecretRef{Mount: srcMount, Name: "app"}
	if a, err := admin.Set(ctx, "token-kv", "replica", ref, &registry.AssociationOptions{KeySchema: "app/{{secretKey}}"}); err != nil || a.Status != registry.StatusSynced {
		t.Fatalf("Set = %+v, %v", a, err)
	}

	// The catalog as Vault keeps it.
	raw, err := c.KVv2(stateMount).Get(ctx, "secretsync/documents/"+registry.DefaultCatalogName)
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := raw.Data["document"].(string)
	if strings.Contains(doc, catalogCanary) || !strings.Contains(doc, `"token":"sealed:v1:`) || !strings.Contains(doc, `"sealed_key":"vault:v1:`) {
		t.Fatalf("the catalog in Vault does not hold the credential sealed by Transit:\n%s", doc)
	}

	// Another replica, watching: it finds the association and syncs a
	// change of the secret.
	watcher := replica(100 * time.Millisecond)
	as, err := watcher.Associations(ctx, "token-kv", "replica")
	if err != nil || len(as) != 1 {
		t.Fatalf("the second replica sees %v, %v", as, err)
	}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- watcher.Watch(wctx) }()
	defer func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Watch returned %v", err)
		}
	}()
	if _, err := c.KVv2(srcMount).Patch(ctx, "app", map[string]any{"DB": "db-2"}); err != nil {
		t.Fatal(err)
	}
	eventually := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("hung waiting for %s", what)
			}
		}
	}
	eventually("the change at the destination", func() bool {
		s, err := c.KVv2(dstMount).Get(ctx, "app/DB")
		return err == nil && s.Data["value"] == "db-2"
	})
	eventually("SYNCED on the watching replica", func() bool {
		as, _ := watcher.Associations(ctx, "token-kv", "replica")
		return len(as) == 1 && as[0].Status == registry.StatusSynced
	})

	// The admin replica removes it: the watcher runs the association's
	// rounds (it holds the sync's lock), so the admin records the removal
	// and the watcher unsyncs it.
	a, err := admin.Remove(ctx, "token-kv", "replica", ref)
	if err != nil || a.Status != registry.StatusPending || !strings.Contains(a.Message, "another replica") {
		t.Fatalf("Remove on the replica that does not run the association = %+v, %v; want PENDING, handed over", a, err)
	}
	eventually("the watcher to unsync and drop the association", func() bool {
		as, _ := watcher.Associations(ctx, "token-kv", "replica")
		return len(as) == 0
	})
	if s, err := c.KVv2(dstMount).Get(ctx, "app/DB"); err == nil && s.Data != nil {
		t.Error("the entry is still at the destination after Remove")
	}
	if err := admin.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if as, _ := admin.Associations(ctx, "token-kv", "replica"); len(as) != 0 {
		t.Errorf("the admin replica still has %v", as)
	}
}
