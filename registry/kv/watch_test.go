package kv_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/secretsync/secretsync/connection"
	"github.com/secretsync/secretsync/registry"
	"github.com/secretsync/secretsync/registry/kv"
	"github.com/secretsync/secretsync/vaultkv/vaulttest"
)

// TestRegistryWatchVault runs Registry.Watch against the real Vault: a
// change to the associated secret arrives by polling, with SYNCED and a
// new UpdatedAt, and deleting the secret unsyncs it (UNSYNCED, the
// destination's entries deleted).
func TestRegistryWatchVault(t *testing.T) {
	ctx := context.Background()
	srv := vaulttest.Get(t)
	c := srv.Client(t)
	conn := srv.Conn(t)
	srcMount, dstMount := srv.NewMount(t), srv.NewMount(t)
	if _, err := c.KVv2(srcMount).Put(ctx, "app", map[string]any{"DB": "db-1"}); err != nil {
		t.Fatal(err)
	}
	reg := registry.New(registry.Options{
		Drivers:      map[string]registry.Driver{registry.TypeVaultKV: kv.Driver(map[string]*connection.Conn{"main": conn}, "registry-test")},
		Source:       kv.SecretSource(conn),
		PollInterval: 50 * time.Millisecond,
	})
	if _, err := reg.Put(ctx, "replica", registry.VaultKV{Connection: "main", Mount: dstMount, Layout: "secret-key"}); err != nil {
		t.Fatal(err)
	}
	ref := registry.SecretRef{Mount: srcMount, Name: "app"}
	set, err := reg.Set(ctx, registry.TypeVaultKV, "replica", ref, registry.AssociationOptions{KeySchema: "app/{{secretKey}}"})
	if err != nil || set.Status != registry.StatusSynced {
		t.Fatalf("Set = %+v, %v", set, err)
	}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- reg.Watch(wctx) }()
	defer func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Watch returned %v", err)
		}
	}()

	read := func() (string, bool) {
		t.Helper()
		s, err := c.KVv2(dstMount).Get(ctx, "app/DB")
		if errors.Is(err, api.ErrSecretNotFound) || err == nil && s.Data == nil {
			return "", false
		}
		if err != nil {
			t.Fatal(err)
		}
		v, _ := s.Data["value"].(string)
		return v, true
	}
	assoc := func() registry.Association {
		as, err := reg.Associations(ctx, registry.TypeVaultKV, "replica")
		if err != nil || len(as) != 1 {
			t.Fatalf("Associations = %v, %v", as, err)
		}
		return as[0]
	}
	// Waits are bounded only to catch a hang.
	eventually := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				a := assoc()
				t.Fatalf("hung waiting for %s (status %s %q)", what, a.Status, a.Message)
			}
		}
	}

	if _, err := c.KVv2(srcMount).Patch(ctx, "app", map[string]any{"DB": "db-2"}); err != nil {
		t.Fatal(err)
	}
	eventually("the change", func() bool { v, _ := read(); return v == "db-2" })
	eventually("SYNCED with a new time", func() bool {
		a := assoc()
		return a.Status == registry.StatusSynced && a.UpdatedAt.After(set.UpdatedAt)
	})

	if err := c.KVv2(srcMount).Delete(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	eventually("the unsync", func() bool {
		a := assoc()
		return a.Status == registry.StatusUnsynced && strings.Contains(a.Message, "deleted in Vault")
	})
	if _, ok := read(); ok {
		t.Error("the entry is still at the destination after the secret was deleted")
	}
}
