package gcpsm_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/secretsync/secretsync/destination/gcpsm"
	"github.com/secretsync/secretsync/destination/gcpsm/gcpsmtest"
	"github.com/secretsync/secretsync/registry"
	"github.com/secretsync/secretsync/registry/kv"
	"github.com/secretsync/secretsync/vaultkv/vaulttest"
)

// TestRegistryAssociationFromVault associates a KV v2 secret of the real
// Vault with a gcp-sm destination (credentials from a key file, custom
// tags, the default secret-path granularity and name template): Set
// creates one secret holding the JSON of the secret's keys, a change in
// Vault arrives with the next Set, an idle Set only reads, and Remove
// deletes the secret and nothing else.
func TestRegistryAssociationFromVault(t *testing.T) {
	ctx := context.Background()
	vs := vaulttest.Get(t)
	conn := vs.Conn(t)
	c := vs.Client(t)
	mount := vs.NewMount(t)
	if _, err := c.KVv2(mount).Put(ctx, "app/prod", map[string]any{"DB": "db-1", "KEY": "k-1"}); err != nil {
		t.Fatal(err)
	}
	srv := newServer(t, gcpsmtest.Options{})
	if _, err := srv.Put("someone-elses", "keep me", map[string]string{"team": "other"}); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "key.json")
	if err := os.WriteFile(keyFile, srv.ServiceAccountKey("secretsync"), 0o600); err != nil {
		t.Fatal(err)
	}
	reg := registry.New(&registry.Options{
		Drivers: map[string]registry.Driver{registry.TypeGCPSecretManager: gcpsm.Driver(&gcpsm.DriverOptions{
			HTTPClient: srv.HTTPClient(), ClientOptions: srv.ClientOptions(),
		})},
		Source: kv.SecretSource(conn),
	})
	t.Cleanup(func() { _ = reg.Close() })
	if _, err := reg.Put(ctx, "gcp", registry.GCPSecretManager{
		Credentials: registry.Credential("@" + keyFile),
		SyncOptions: registry.SyncOptions{CustomTags: map[string]string{"team": "platform"}},
	}); err != nil {
		t.Fatal(err)
	}
	ref := registry.SecretRef{Mount: mount, Name: "app/prod"}
	a, err := reg.Set(ctx, registry.TypeGCPSecretManager, "gcp", ref, nil)
	if err != nil || a.Status != registry.StatusSynced || a.Totals.Created != 1 {
		t.Fatalf("Set = %+v, %v", a, err)
	}
	// The default template, "vault/{{ .MountAccessor }}/{{ .SecretPath }}",
	// normalized: the accessor, or the mount path when the source cannot
	// tell it.
	mounts, err := c.Sys().ListMountsWithContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	candidates := []string{"vault_" + mount + "_app_prod", "vault_" + mounts[mount+"/"].Accessor + "_app_prod"}
	var id string
	for _, s := range srv.Secrets() {
		if slices.Contains(candidates, s) {
			id = s
		}
	}
	if id == "" || len(srv.Secrets()) != 2 {
		t.Fatalf("secrets = %v, want one of %v beside someone-elses", srv.Secrets(), candidates)
	}
	value := func() map[string]string {
		t.Helper()
		v, _, ok := srv.Value(id)
		if !ok {
			t.Fatalf("%s has no value", id)
		}
		var m map[string]string
		if err := json.Unmarshal([]byte(v), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	if got := value(); fmt.Sprint(got) != fmt.Sprint(map[string]string{"DB": "db-1", "KEY": "k-1"}) {
		t.Fatalf("value = %v", got)
	}
	labels := srv.Labels(id)
	if labels["managed-by"] != "secretsync" || labels["secretsync-owner"] != gcpsm.OwnerLabel(a.SyncName) || labels["team"] != "platform" {
		t.Fatalf("labels = %v (sync %s)", labels, a.SyncName)
	}

	if _, err := c.KVv2(mount).Patch(ctx, "app/prod", map[string]any{"DB": "db-2"}); err != nil {
		t.Fatal(err)
	}
	if a, err = reg.Set(ctx, registry.TypeGCPSecretManager, "gcp", ref, nil); err != nil || a.Status != registry.StatusSynced || a.Totals.Updated != 1 {
		t.Fatalf("refresh = %+v, %v", a, err)
	}
	if got := value(); got["DB"] != "db-2" || got["KEY"] != "k-1" {
		t.Fatalf("after the refresh value = %v", got)
	}
	if n := len(srv.Versions(id)); n != 2 {
		t.Fatalf("%d versions, want 2", n)
	}

	// An idle round (nothing changed in Vault) reads and writes nothing.
	srv.ResetCounts()
	if a, err = reg.Set(ctx, registry.TypeGCPSecretManager, "gcp", ref, nil); err != nil || a.Totals.Unchanged != 1 {
		t.Fatalf("idle Set = %+v, %v", a, err)
	}
	if got := srv.Counts(); srv.Total() != 2 || got["ListSecrets"] != 1 || got["AccessSecretVersion"] != 1 {
		t.Fatalf("an idle round sent %v", got)
	}

	if a, err = reg.Remove(ctx, registry.TypeGCPSecretManager, "gcp", ref); err != nil || a.Status != registry.StatusUnsynced || a.Totals.Deleted != 1 {
		t.Fatalf("Remove = %+v, %v", a, err)
	}
	if srv.Exists(id) {
		t.Fatal("the secret is still there after Remove")
	}
	if v, _, ok := srv.Value("someone-elses"); !ok || v != "keep me" {
		t.Fatal("Remove touched a secret it does not own")
	}
}

// TestRequestsPerKey measures the requests of a registry association
// with secret-key granularity (one secret per key of the Vault secret):
// creating n keys, updating them, and an idle round.
func TestRequestsPerKey(t *testing.T) {
	ctx := context.Background()
	vs := vaulttest.Get(t)
	conn := vs.Conn(t)
	c := vs.Client(t)
	mount := vs.NewMount(t)
	const n = 10
	data := func(round int) map[string]any {
		m := map[string]any{}
		for i := range n {
			m[fmt.Sprint("K", i)] = fmt.Sprint("value-", i, "-", round)
		}
		return m
	}
	if _, err := c.KVv2(mount).Put(ctx, "app", data(1)); err != nil {
		t.Fatal(err)
	}
	srv := newServer(t, gcpsmtest.Options{})
	reg := registry.New(&registry.Options{
		Drivers: map[string]registry.Driver{registry.TypeGCPSecretManager: gcpsm.Driver(&gcpsm.DriverOptions{
			HTTPClient: srv.HTTPClient(), ClientOptions: srv.ClientOptions(),
		})},
		Source: kv.SecretSource(conn),
	})
	t.Cleanup(func() { _ = reg.Close() })
	if _, err := reg.Put(ctx, "gcp", registry.GCPSecretManager{
		Credentials: registry.Credential(srv.ServiceAccountKey("secretsync")),
		SyncOptions: registry.SyncOptions{Granularity: registry.GranularitySecretKey},
	}); err != nil {
		t.Fatal(err)
	}
	ref := registry.SecretRef{Mount: mount, Name: "app"}
	round := func(what string, want func(registry.Association) bool, wantRPCs map[string]int) {
		t.Helper()
		srv.ResetCounts()
		a, err := reg.Set(ctx, registry.TypeGCPSecretManager, "gcp", ref, nil)
		if err != nil || !want(a) {
			t.Fatalf("%s: %+v, %v", what, a, err)
		}
		got := srv.Counts()
		delete(got, "Token")
		t.Logf("%s of %d keys: %d requests (%.1f per key): %v", what, n, srv.Total(), float64(srv.Total())/n, got)
		if fmt.Sprint(got) != fmt.Sprint(wantRPCs) {
			t.Errorf("%s: requests %v, want %v", what, got, wantRPCs)
		}
	}
	round("create", func(a registry.Association) bool { return a.Totals.Created == n },
		map[string]int{"ListSecrets": 1, "CreateSecret": n, "AddSecretVersion": n})
	if len(srv.Secrets()) != n {
		t.Fatalf("secrets = %v", srv.Secrets())
	}
	if _, err := c.KVv2(mount).Put(ctx, "app", data(2)); err != nil {
		t.Fatal(err)
	}
	round("update", func(a registry.Association) bool { return a.Totals.Updated == n },
		map[string]int{"ListSecrets": 1, "AccessSecretVersion": n, "GetSecret": n, "ListSecretVersions": n, "AddSecretVersion": n})
	round("idle round", func(a registry.Association) bool { return a.Totals.Unchanged == n },
		map[string]int{"ListSecrets": 1, "AccessSecretVersion": n})
	srv.ResetCounts()
	if a, err := reg.Remove(ctx, registry.TypeGCPSecretManager, "gcp", ref); err != nil || a.Totals.Deleted != n {
		t.Fatalf("Remove = %+v, %v", a, err)
	}
	t.Logf("remove of %d keys: %d requests: %v", n, srv.Total(), srv.Counts())
	if len(srv.Secrets()) != 0 {
		t.Fatalf("secrets left: %v", srv.Secrets())
	}
}
