package registry_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/secretsync/secretsync/audit"
	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/registry"
	"github.com/secretsync/secretsync/state"
	"github.com/secretsync/secretsync/sync"
)

// errMountGone is what reading a secret gives once its mount is disabled.
var errMountGone = errors.New("no handler for route: mount disabled")

// unreadableSecret adds to f a secret that can be read until gone is set;
// then its reads fail, and so does opening it again (the SourceFunc).
func unreadableSecret(f *fixture, mount, name string, kv map[string]string) (registry.SecretRef, func()) {
	ref := registry.SecretRef{Mount: mount, Name: name}
	var gone atomic.Bool
	f.secrets[ref] = memory.NewWithOptions(kv, &memory.Options{BeforeList: func(context.Context) error {
		if gone.Load() {
			return errMountGone
		}
		return nil
	}})
	return ref, func() { gone.Store(true); delete(f.secrets, ref) }
}

// TestRemoveWithoutTheSecret: once the secret cannot be read (its mount
// disabled), Remove still unsyncs, from the sync's state: the entries the
// association wrote are deleted and audited, an entry under its schema
// that it never wrote stays, and the association goes, with UNSYNCED. It
// holds with the Syncer the registry has, with one rebuilt after the
// destination's Config changed (the secret cannot be opened any more),
// and after a restart (a new registry over the same state store, where
// the association was set again while the secret could not be opened).
func TestRemoveWithoutTheSecret(t *testing.T) {
	for _, how := range []string{"cached syncer", "reopened", "after a restart"} {
		t.Run(how, func(t *testing.T) {
			ctx := context.Background()
			store := state.NewMemory()
			f := newFixture(t, store)
			ref, disable := unreadableSecret(f, "kv", "app", map[string]string{"A": "1", "B": "2"})
			opts := registry.AssociationOptions{KeySchema: "APP_{{secretKey}}"}
			if a, err := f.reg.Set(ctx, "test-kv", "repo", ref, &opts); err != nil || a.Status != registry.StatusSynced {
				t.Fatalf("Set = %+v, %v", a, err)
			}
			dst := f.dests["repo"]
			dst.Set("OTHER", "kept")
			dst.Set("APP_LATE", "never synced")
			disable()

			switch how {
			case "reopened":
				if _, err := f.reg.Put(ctx, "repo", testKV{Token: "t2"}); err != nil {
					t.Fatal(err)
				}
			case "after a restart":
				f2 := newFixture(t, store)
				f2.dests["repo"] = dst
				a, err := f2.reg.Set(ctx, "test-kv", "repo", ref, &opts)
				if err == nil || a.Status != registry.StatusInternalVaultError {
					t.Fatalf("Set of the unreadable secret after a restart = %+v, %v", a, err)
				}
				f = f2
			}
			// Rounds fail while the secret cannot be read; the entries stay.
			if s, err := f.reg.Syncer(ctx, "test-kv", "repo", ref); err == nil {
				if _, err := s.Run(ctx); !errors.Is(err, errMountGone) {
					t.Fatalf("Run = %v", err)
				}
			}
			if got := fmt.Sprint(values(t, dst)); got != "map[APP_A:1 APP_B:2 APP_LATE:never synced OTHER:kept]" {
				t.Fatalf("before Remove the destination holds %s", got)
			}

			f.events.Reset()
			a, err := f.reg.Remove(ctx, "test-kv", "repo", ref)
			if err != nil || a.Status != registry.StatusUnsynced || a.Totals.Deleted != 2 {
				t.Fatalf("Remove without the secret = %+v, %v", a, err)
			}
			if got := fmt.Sprint(values(t, dst)); got != "map[APP_LATE:never synced OTHER:kept]" {
				t.Fatalf("after Remove the destination holds %s", got)
			}
			if list, _ := f.reg.Associations(ctx, "test-kv", "repo"); len(list) != 0 {
				t.Fatalf("after Remove: %+v", list)
			}
			var deleted []string
			for _, e := range f.events.Filter(audit.SecretDeleted) {
				if e.Operation == sync.OpRemove && e.Outcome == audit.Success {
					deleted = append(deleted, e.DestinationKey)
				}
			}
			if len(deleted) != 2 {
				t.Fatalf("deletion events for %v, want APP_A and APP_B", deleted)
			}
			if n := f.sides.Load(); n != 0 {
				t.Errorf("%d side(s) left open", n)
			}
			if err := f.reg.Delete(ctx, "test-kv", "repo", nil); err != nil {
				t.Fatalf("Delete after Remove = %v", err)
			}
		})
	}
}

// TestRemoveWithoutTheSecretNamedByTemplate: a destination named by a
// template with {{ .MountAccessor }} (the default) is unsynced without the
// secret under the names the sync gave, with the accessor its source gave
// before; after a restart, with no accessor known, Remove refuses (the
// names are unknown) and keeps the entry and the association, and a
// template without the accessor needs none.
func TestRemoveWithoutTheSecretNamedByTemplate(t *testing.T) {
	ctx := context.Background()
	sm := memory.New(map[string]string{"THEIRS": "kept"})
	var gone atomic.Bool
	secret := memory.NewWithOptions(map[string]string{"k": "v"}, &memory.Options{BeforeList: func(context.Context) error {
		if gone.Load() {
			return errMountGone
		}
		return nil
	}})
	newReg := func(stateStore state.Store) *registry.Registry {
		return registry.New(&registry.Options{
			Drivers: map[string]registry.Driver{
				registry.TypeAWSSecretsManager: func(context.Context, registry.Target) (destination.Destination, error) { return sm, nil },
			},
			Source: func(ctx context.Context, mount, name string) (destination.Reader, error) {
				if gone.Load() {
					return nil, errMountGone
				}
				return accessorSource{secret}, nil
			},
			Store: stateStore,
		})
	}
	ref := registry.SecretRef{Mount: "kv", Name: "app"}
	setUp := func(reg *registry.Registry, cfg registry.AWSSecretsManager) {
		t.Helper()
		gone.Store(false)
		if _, err := reg.Put(ctx, "sm", cfg); err != nil {
			t.Fatal(err)
		}
		if a, err := reg.Set(ctx, registry.TypeAWSSecretsManager, "sm", ref, nil); err != nil || a.Status != registry.StatusSynced {
			t.Fatalf("Set = %+v, %v", a, err)
		}
		gone.Store(true)
	}
	entries := func() string { t.Helper(); return fmt.Sprint(values(t, sm)) }

	// The accessor is remembered: a Syncer rebuilt without the secret
	// names the entry as the sync did.
	stateStore := state.NewMemory()
	reg := newReg(stateStore)
	setUp(reg, registry.AWSSecretsManager{Region: "eu-west-1"})
	if got := entries(); got != `map[THEIRS:kept vault/kv_1234abcd/app:{"k":"v"}]` {
		t.Fatalf("after Set: %s", got)
	}
	if _, err := reg.Put(ctx, "sm", registry.AWSSecretsManager{Region: "eu-west-2"}); err != nil {
		t.Fatal(err)
	}
	if a, err := reg.Remove(ctx, registry.TypeAWSSecretsManager, "sm", ref); err != nil || a.Status != registry.StatusUnsynced || a.Totals.Deleted != 1 {
		t.Fatalf("Remove = %+v, %v", a, err)
	}
	if got := entries(); got != "map[THEIRS:kept]" {
		t.Fatalf("after Remove: %s", got)
	}

	// After a restart no accessor is known: Remove refuses.
	setUp(reg, registry.AWSSecretsManager{Region: "eu-west-1"})
	reg = newReg(stateStore)
	if _, err := reg.Put(ctx, "sm", registry.AWSSecretsManager{Region: "eu-west-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Set(ctx, registry.TypeAWSSecretsManager, "sm", ref, nil); err == nil {
		t.Fatal("Set of the unreadable secret succeeded")
	}
	a, err := reg.Remove(ctx, registry.TypeAWSSecretsManager, "sm", ref)
	if err == nil || a.Status != registry.StatusInternalVaultError || !errors.Is(err, errMountGone) {
		t.Fatalf("Remove with no accessor known = %+v, %v", a, err)
	}
	if list, _ := reg.Associations(ctx, registry.TypeAWSSecretsManager, "sm"); len(list) != 1 {
		t.Fatalf("the association went: %+v", list)
	}
	if got := entries(); got != `map[THEIRS:kept vault/kv_1234abcd/app:{"k":"v"}]` {
		t.Fatalf("after the refused Remove: %s", got)
	}
	if err := reg.Delete(ctx, registry.TypeAWSSecretsManager, "sm", &registry.DeleteOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	sm.Delete(`vault/kv_1234abcd/app`)

	// A template without the accessor needs none.
	noAccessor := registry.AWSSecretsManager{Region: "eu-west-1", SyncOptions: registry.SyncOptions{SecretNameTemplate: "app/{{ .SecretPath }}"}}
	stateStore = state.NewMemory()
	setUp(newReg(stateStore), noAccessor)
	reg = newReg(stateStore)
	if _, err := reg.Put(ctx, "sm", noAccessor); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Set(ctx, registry.TypeAWSSecretsManager, "sm", ref, nil); err == nil {
		t.Fatal("Set of the unreadable secret succeeded")
	}
	if a, err := reg.Remove(ctx, registry.TypeAWSSecretsManager, "sm", ref); err != nil || a.Status != registry.StatusUnsynced || a.Totals.Deleted != 1 {
		t.Fatalf("Remove = %+v, %v", a, err)
	}
	if got := entries(); got != "map[THEIRS:kept]" {
		t.Fatalf("after Remove: %s", got)
	}
}

// With a catalog, the accessor a source reported is kept: after a restart
// whose source cannot open the secret, Remove still names the template's
// entries and unsyncs them.
func TestRemoveAfterARestartWithACatalog(t *testing.T) {
	ctx := context.Background()
	sm := memory.New(map[string]string{"THEIRS": "kept"})
	var gone atomic.Bool
	secret := memory.New(map[string]string{"k": "v"})
	stateStore, catalog := state.NewMemory(), state.NewMemory()
	open := func() *registry.Registry {
		reg, err := registry.Open(ctx, &registry.Options{
			Drivers: map[string]registry.Driver{
				registry.TypeAWSSecretsManager: func(context.Context, registry.Target) (destination.Destination, error) { return sm, nil },
			},
			Source: func(ctx context.Context, mount, name string) (destination.Reader, error) {
				if gone.Load() {
					return nil, errMountGone
				}
				return accessorSource{secret}, nil
			},
			Store:   stateStore,
			Catalog: catalog,
		})
		if err != nil {
			t.Fatal(err)
		}
		return reg
	}
	reg := open()
	if _, err := reg.Put(ctx, "sm", registry.AWSSecretsManager{Region: "eu-west-1"}); err != nil {
		t.Fatal(err)
	}
	ref := registry.SecretRef{Mount: "kv", Name: "app"}
	if a, err := reg.Set(ctx, registry.TypeAWSSecretsManager, "sm", ref, nil); err != nil || a.Status != registry.StatusSynced {
		t.Fatalf("Set = %+v, %v", a, err)
	}
	reg.Close()
	gone.Store(true)
	reg = open()
	defer reg.Close()
	a, err := reg.Remove(ctx, registry.TypeAWSSecretsManager, "sm", ref)
	if err != nil || a.Status != registry.StatusUnsynced || a.Totals.Deleted != 1 {
		t.Fatalf("Remove after a restart, the secret unreadable = %+v, %v", a, err)
	}
	if got := fmt.Sprint(values(t, sm)); got != "map[THEIRS:kept]" {
		t.Fatalf("after Remove: %s", got)
	}
}
