package kv_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/secretsync/secretsync/connection"
	"github.com/secretsync/secretsync/registry"
	"github.com/secretsync/secretsync/registry/kv"
	"github.com/secretsync/secretsync/vaultkv"
	"github.com/secretsync/secretsync/vaultkv/vaulttest"
)

// TestRegistryVaultToVault associates a KV v2 secret with a vault-kv
// destination (another mount, secret-key layout) in the real Vault: Set
// syncs it, a second Set refreshes it, Delete is refused while it is
// associated, and Remove deletes the managed secrets and nothing else.
func TestRegistryVaultToVault(t *testing.T) {
	ctx := context.Background()
	srv := vaulttest.Get(t)
	c := srv.Client(t)
	conn := srv.Conn(t)
	srcMount, dstMount := srv.NewMount(t), srv.NewMount(t)
	if _, err := c.KVv2(srcMount).Put(ctx, "app/prod", map[string]any{"DB": "db-1", "KEY": "k-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.KVv2(dstMount).Put(ctx, "mirror/OTHER", map[string]any{"value": "not ours"}); err != nil {
		t.Fatal(err)
	}
	reg := registry.New(&registry.Options{
		Drivers: map[string]registry.Driver{registry.TypeVaultKV: kv.Driver(map[string]*connection.Conn{"main": conn}, "registry-test")},
		Source:  kv.SecretSource(conn),
	})
	if _, err := reg.Put(ctx, "replica", registry.VaultKV{Connection: "main", Mount: dstMount, Path: "mirror", Layout: "secret-key"}); err != nil {
		t.Fatal(err)
	}
	ref := registry.SecretRef{Mount: srcMount, Name: "app/prod"}
	opts := registry.AssociationOptions{KeySchema: "prod/{{secretKey}}"}
	a, err := reg.Set(ctx, registry.TypeVaultKV, "replica", ref, &opts)
	if err != nil || a.Status != registry.StatusSynced || a.Totals.Created != 2 {
		t.Fatalf("Set = %+v, %v", a, err)
	}
	if want := registry.TypeVaultKV + "-replica-" + srcMount + "-app-prod"; len(want) <= 63 && a.SyncName != strings.ToLower(want) {
		t.Errorf("sync name %q, want %q", a.SyncName, want)
	}
	read := func(p string) (string, bool) {
		t.Helper()
		s, err := c.KVv2(dstMount).Get(ctx, p)
		if errors.Is(err, api.ErrSecretNotFound) {
			return "", false
		}
		if err != nil {
			t.Fatal(err)
		}
		if s.Data == nil {
			return "", false // the latest version is deleted
		}
		v, _ := s.Data["value"].(string)
		return v, true
	}
	if v, _ := read("mirror/prod/DB"); v != "db-1" {
		t.Fatalf("mirror/prod/DB = %q", v)
	}

	if _, err := c.KVv2(srcMount).Patch(ctx, "app/prod", map[string]any{"DB": "db-2"}); err != nil {
		t.Fatal(err)
	}
	if a, err = reg.Set(ctx, registry.TypeVaultKV, "replica", ref, &opts); err != nil || a.Totals.Updated != 1 || a.Totals.Unchanged != 1 {
		t.Fatalf("refresh = %+v, %v", a, err)
	}
	if v, _ := read("mirror/prod/DB"); v != "db-2" {
		t.Fatalf("after the refresh mirror/prod/DB = %q", v)
	}
	if err := reg.Delete(ctx, registry.TypeVaultKV, "replica", nil); !errors.Is(err, registry.ErrInUse) {
		t.Fatalf("Delete while associated = %v", err)
	}

	if a, err = reg.Remove(ctx, registry.TypeVaultKV, "replica", ref); err != nil || a.Status != registry.StatusUnsynced || a.Totals.Deleted != 2 {
		t.Fatalf("Remove = %+v, %v", a, err)
	}
	for _, p := range []string{"mirror/prod/DB", "mirror/prod/KEY"} {
		if _, ok := read(p); ok {
			t.Errorf("%s is still readable after Remove", p)
		}
	}
	if v, ok := read("mirror/OTHER"); !ok || v != "not ours" {
		t.Errorf("the unmanaged secret was touched: %q, %v", v, ok)
	}
	if err := reg.Delete(ctx, registry.TypeVaultKV, "replica", nil); err != nil {
		t.Fatalf("Delete after Remove = %v", err)
	}

	// A destination naming an unknown connection fails, recorded.
	if _, err := reg.Put(ctx, "broken", registry.VaultKV{Connection: "nope", Mount: dstMount}); err != nil {
		t.Fatal(err)
	}
	a, err = reg.Set(ctx, registry.TypeVaultKV, "broken", ref, &opts)
	if !errors.Is(err, vaultkv.ErrInvalidOptions) || a.Status != registry.StatusClientSideError {
		t.Fatalf("Set on a destination with an unknown connection = %+v, %v", a, err)
	}

	// A secret on a mount Vault does not have: the source side fails.
	if _, err := reg.Put(ctx, "replica", registry.VaultKV{Connection: "main", Mount: dstMount, Path: "mirror", Layout: "secret-key"}); err != nil {
		t.Fatal(err)
	}
	a, err = reg.Set(ctx, registry.TypeVaultKV, "replica", registry.SecretRef{Mount: "no-such-mount", Name: "app"}, &opts)
	if err == nil || a.Status != registry.StatusInternalVaultError {
		t.Fatalf("Set of a secret on no mount = %+v, %v", a, err)
	}
	// An unsync works from the sync's state, without the secret: Purge
	// unlinks the association (which never wrote anything) and deletes the
	// destination.
	if err := reg.Delete(ctx, registry.TypeVaultKV, "replica", &registry.DeleteOptions{Purge: true}); err != nil {
		t.Fatalf("Delete with Purge of an association whose mount is gone = %v", err)
	}
	if _, err := reg.Associations(ctx, registry.TypeVaultKV, "replica"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("after the purge: %v", err)
	}
}
