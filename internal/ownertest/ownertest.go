// Package ownertest checks, for the tests of a registry driver, that the
// registry's longest sync names (cut to 63 characters and ended with a
// hash) serve as the driver's ownership marker as they are: the entries
// an association creates carry it, an idle Set leaves them, and Remove
// deletes them.
package ownertest

import (
	"context"
	"testing"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/registry"
	"github.com/secretsync/secretsync/sync"
)

// SyncNameAsOwner runs the check with the driver of cfg's type. owned
// returns how many live entries of the store carry the ownership marker
// of the sync named owner.
func SyncNameAsOwner(t *testing.T, driver registry.Driver, cfg registry.Config, owned func(owner string) int) {
	t.Helper()
	ctx := context.Background()
	typ := cfg.Type()
	secret := memory.New(map[string]string{"DB": "db-1", "KEY": "k-1"})
	reg := registry.New(&registry.Options{
		Drivers: map[string]registry.Driver{typ: driver},
		Source:  func(context.Context, string, string) (destination.Reader, error) { return secret, nil },
	})
	defer reg.Close()
	if _, err := reg.Put(ctx, "dest", cfg); err != nil {
		t.Fatal(err)
	}
	ref := registry.SecretRef{Mount: "kv", Name: "team-platform/applications/payments-gateway/production/eu-west"}
	a, err := reg.Set(ctx, typ, "dest", ref, nil)
	if err != nil || a.Status != registry.StatusSynced || a.Totals.Created == 0 {
		t.Fatalf("Set = %+v, %v", a, err)
	}
	if len(a.SyncName) < 60 || len(a.SyncName) > 63 || !sync.ValidName(a.SyncName) {
		t.Fatalf("sync name %q: want a long one, cut to at most 63", a.SyncName)
	}
	if n := owned(a.SyncName); n != a.Totals.Created {
		t.Fatalf("%d entries marked for %s, want %d", n, a.SyncName, a.Totals.Created)
	}
	created := a.Totals.Created
	if a, err = reg.Set(ctx, typ, "dest", ref, nil); err != nil || a.Totals.Changed() != 0 || a.Totals.Unchanged != created {
		t.Fatalf("idle Set = %+v, %v", a, err)
	}
	if a, err = reg.Remove(ctx, typ, "dest", ref); err != nil || a.Status != registry.StatusUnsynced || a.Totals.Deleted != created {
		t.Fatalf("Remove = %+v, %v", a, err)
	}
	if n := owned(a.SyncName); n != 0 {
		t.Fatalf("%d entries left after Remove", n)
	}
}
