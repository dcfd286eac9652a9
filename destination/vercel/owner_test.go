package vercel_test

import (
	"context"
	"testing"
	"time"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/destination/vercel"
	"github.com/secretsync/secretsync/destination/vercel/verceltest"
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
	srv := verceltest.New(t, verceltest.Options{})
	driver := vercel.Driver(vercel.DriverOptions{BaseURL: srv.URL, MinBackoff: time.Millisecond})
	cfg := registry.VercelProject{AccessToken: "test-token", ProjectID: srv.ProjectID(), DeploymentEnvironments: []string{vercel.Production}}
	reg := registry.New(registry.Options{
		Drivers: map[string]registry.Driver{registry.TypeVercelProject: driver},
		Source:  func(context.Context, string, string) (destination.Reader, error) { return secret, nil },
	})
	defer reg.Close()
	if _, err := reg.Put(ctx, "dest", cfg); err != nil {
		t.Fatal(err)
	}
	ref := registry.SecretRef{Mount: "kv", Name: "team-platform/applications/payments-gateway/production/eu-west"}
	a, err := reg.Set(ctx, registry.TypeVercelProject, "dest", ref, registry.AssociationOptions{})
	if err != nil || a.Status != registry.StatusSynced || a.Totals.Created == 0 {
		t.Fatalf("Set = %+v, %v", a, err)
	}
	if len(a.SyncName) < 60 || len(a.SyncName) > 63 || !sync.ValidName(a.SyncName) {
		t.Fatalf("sync name %q: want a long one, cut to at most 63", a.SyncName)
	}
	owned := func() int {
		t.Helper()
		n := 0
		for _, v := range srv.Vars() {
			if v.Comment == vercel.Marker(a.SyncName) {
				n++
			}
		}
		return n
	}
	if n := owned(); n != a.Totals.Created {
		t.Fatalf("%d entries marked for %s, want %d", n, a.SyncName, a.Totals.Created)
	}
	created := a.Totals.Created
	if a, err = reg.Set(ctx, registry.TypeVercelProject, "dest", ref, registry.AssociationOptions{}); err != nil || a.Totals.Changed() != 0 || a.Totals.Unchanged != created {
		t.Fatalf("idle Set = %+v, %v", a, err)
	}
	if a, err = reg.Remove(ctx, registry.TypeVercelProject, "dest", ref); err != nil || a.Status != registry.StatusUnsynced || a.Totals.Deleted != created {
		t.Fatalf("Remove = %+v, %v", a, err)
	}
	if n := owned(); n != 0 {
		t.Fatalf("%d entries left after Remove", n)
	}
}
