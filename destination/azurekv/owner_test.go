package azurekv_test

import (
	"context"
	"testing"
	"time"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/azurekv"
	"github.com/secretsync/secretsync/destination/azurekv/azurekvtest"
	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/registry"
	"github.com/secretsync/secretsync/sync"
)

// TestSyncNameAsOwner: the registry's longest sync names (cut to 63
// characters and ended with a hash) are the ownership marker as they are,
// and the entry stays the association's: an idle Set leaves it, and
// Remove deletes it.
func TestSyncNameAsOwner(t *testing.T) {
	ctx := context.Background()
	secret := memory.New(map[string]string{"DB": "db-1", "KEY": "k-1"})
	srv := azurekvtest.New(t, azurekvtest.Options{DeleteDelay: time.Millisecond, RecoverDelay: time.Millisecond, PurgeDelay: time.Millisecond})
	driver := azurekv.Driver(azurekv.DriverOptions{HTTPClient: srv.HTTPClient(), Retry: fastRetry, PollInterval: time.Millisecond, WaitTimeout: 10 * time.Second})
	cfg := registry.AzureKeyVault{KeyVaultURI: srv.VaultURL(), TenantID: srv.TenantID(), ClientID: srv.ClientID(), ClientSecret: registry.Credential(srv.ClientSecret())}
	reg := registry.New(registry.Options{
		Drivers: map[string]registry.Driver{registry.TypeAzureKeyVault: driver},
		Source:  func(context.Context, string, string) (destination.Reader, error) { return secret, nil },
	})
	defer reg.Close()
	if _, err := reg.Put(ctx, "dest", cfg); err != nil {
		t.Fatal(err)
	}
	ref := registry.SecretRef{Mount: "kv", Name: "team-platform/applications/payments-gateway/production/eu-west"}
	a, err := reg.Set(ctx, registry.TypeAzureKeyVault, "dest", ref, registry.AssociationOptions{})
	if err != nil || a.Status != registry.StatusSynced || a.Totals.Created == 0 {
		t.Fatalf("Set = %+v, %v", a, err)
	}
	if len(a.SyncName) < 60 || len(a.SyncName) > 63 || !sync.ValidName(a.SyncName) {
		t.Fatalf("sync name %q: want a long one, cut to at most 63", a.SyncName)
	}
	owned := func() int {
		t.Helper()
		n := 0
		for _, name := range srv.Names() {
			if s, ok := srv.Get(name); ok && s.Tags[azurekv.TagOwner] == a.SyncName && s.Tags[azurekv.TagManagedBy] == azurekv.ManagedBy {
				n++
			}
		}
		return n
	}
	if n := owned(); n != a.Totals.Created {
		t.Fatalf("%d entries marked for %s, want %d", n, a.SyncName, a.Totals.Created)
	}
	created := a.Totals.Created
	if a, err = reg.Set(ctx, registry.TypeAzureKeyVault, "dest", ref, registry.AssociationOptions{}); err != nil || a.Totals.Changed() != 0 || a.Totals.Unchanged != created {
		t.Fatalf("idle Set = %+v, %v", a, err)
	}
	if a, err = reg.Remove(ctx, registry.TypeAzureKeyVault, "dest", ref); err != nil || a.Status != registry.StatusUnsynced || a.Totals.Deleted != created {
		t.Fatalf("Remove = %+v, %v", a, err)
	}
	if n := owned(); n != 0 {
		t.Fatalf("%d entries left after Remove", n)
	}
}
