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
	w := startWatched(t)
	c, srcMount, dstMount, reg, set := w.c, w.srcMount, w.dstMount, w.reg, w.set

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

// A KV mount disabled under a watched association reads as empty through
// the source opened before (Vault answers 404); Watch must not take that
// for a deleted secret and unsync: the entries stay.
func TestRegistryWatchDisabledMountKeepsEntries(t *testing.T) {
	ctx := context.Background()
	w := startWatched(t)
	c, srcMount, dstMount, reg := w.c, w.srcMount, w.dstMount, w.reg
	if err := c.Sys().UnmountWithContext(ctx, srcMount); err != nil {
		t.Fatal(err)
	}
	disabled := time.Now()
	// Several rounds after the mount is gone (each updates UpdatedAt).
	rounds := 0
	var last time.Time
	for deadline := time.Now().Add(30 * time.Second); rounds < 4; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d rounds ran after the mount was disabled", rounds)
		}
		as, err := reg.Associations(ctx, registry.TypeVaultKV, "replica")
		if err != nil || len(as) != 1 {
			t.Fatalf("Associations = %v, %v", as, err)
		}
		if a := as[0]; a.UpdatedAt.After(disabled) && a.UpdatedAt.After(last) {
			last = a.UpdatedAt
			rounds++
			if a.Status == registry.StatusUnsynced {
				t.Fatalf("the association was unsynced after its mount was disabled: %s", a.Message)
			}
		}
	}
	s, err := c.KVv2(dstMount).Get(ctx, "app/DB")
	if err != nil || s.Data["value"] != "db-1" {
		t.Fatalf("the entry is gone after the source mount was disabled: %v, %v", s, err)
	}
}

// watched is a registry over the real Vault, polling every 50 ms, with the
// secret app (DB=db-1) of srcMount associated with a vault-kv destination
// on dstMount, set (set is what Set answered) and watched until the test
// ends.
type watched struct {
	c                  *api.Client
	srcMount, dstMount string
	reg                *registry.Registry
	set                registry.Association
}

func startWatched(t *testing.T) *watched {
	t.Helper()
	ctx := context.Background()
	srv := vaulttest.Get(t)
	conn := srv.Conn(t)
	w := &watched{c: srv.Client(t), srcMount: srv.NewMount(t), dstMount: srv.NewMount(t)}
	if _, err := w.c.KVv2(w.srcMount).Put(ctx, "app", map[string]any{"DB": "db-1"}); err != nil {
		t.Fatal(err)
	}
	w.reg = registry.New(&registry.Options{
		Drivers:      map[string]registry.Driver{registry.TypeVaultKV: kv.Driver(map[string]*connection.Conn{"main": conn}, "registry-test")},
		Source:       kv.SecretSource(conn),
		PollInterval: 50 * time.Millisecond,
	})
	if _, err := w.reg.Put(ctx, "replica", registry.VaultKV{Connection: "main", Mount: w.dstMount, Layout: "secret-key"}); err != nil {
		t.Fatal(err)
	}
	ref := registry.SecretRef{Mount: w.srcMount, Name: "app"}
	var err error
	w.set, err = w.reg.Set(ctx, registry.TypeVaultKV, "replica", ref, &registry.AssociationOptions{KeySchema: "app/{{secretKey}}"})
	if err != nil || w.set.Status != registry.StatusSynced {
		t.Fatalf("Set = %+v, %v", w.set, err)
	}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.reg.Watch(wctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Watch returned %v", err)
		}
	})
	return w
}
