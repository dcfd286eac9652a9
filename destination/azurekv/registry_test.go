package azurekv_test

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/hashicorp/vault/api"
	"os"
	"testing"
	"time"

	"github.com/secretsync/secretsync/destination/azurekv"
	"github.com/secretsync/secretsync/destination/azurekv/azurekvtest"
	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/registry"
	regkv "github.com/secretsync/secretsync/registry/kv"
	"github.com/secretsync/secretsync/sync"
	"github.com/secretsync/secretsync/vaultkv/vaulttest"
)

func TestMain(m *testing.M) { os.Exit(vaulttest.Main(m)) }

// TestRegistryAssociationFromVault associates a KV v2 secret of the real
// Vault with an azure-kv destination on the local Key Vault: Set writes
// the secret as one JSON entry (secret-path granularity, the default)
// under the default name template, normalized to Key Vault's rules, with
// the association's marker and the custom tags; a change in Vault arrives
// with a refresh and with a Syncer round; Remove soft-deletes the entry; a
// new association recovers and reuses the name; with purge, Remove leaves
// nothing.
func TestRegistryAssociationFromVault(t *testing.T) {
	ctx := context.Background()
	srv := vaulttest.Get(t)
	conn := srv.Conn(t)
	c := srv.Client(t)
	mount := srv.NewMount(t)
	if _, err := c.KVv2(mount).Put(ctx, "app/prod", map[string]any{"DB_URL": "postgres://db-1", "API_KEY": "k-1"}); err != nil {
		t.Fatal(err)
	}
	kv := azurekvtest.New(t, &azurekvtest.Options{DeleteDelay: 20 * time.Millisecond, RecoverDelay: 20 * time.Millisecond, PurgeDelay: 20 * time.Millisecond})
	if _, err := kv.Set("someone-elses", "keep me", nil); err != nil {
		t.Fatal(err)
	}
	reg := registry.New(&registry.Options{
		Drivers: map[string]registry.Driver{registry.TypeAzureKeyVault: azurekv.Driver(&azurekv.DriverOptions{
			HTTPClient: kv.HTTPClient(), Retry: fastRetry, PollInterval: 5 * time.Millisecond, WaitTimeout: 10 * time.Second,
		})},
		Source: regkv.SecretSource(conn),
	})
	cfg := registry.AzureKeyVault{
		KeyVaultURI: kv.VaultURL(), TenantID: kv.TenantID(), ClientID: kv.ClientID(),
		ClientSecret: registry.Credential(kv.ClientSecret()),
		SyncOptions:  registry.SyncOptions{CustomTags: map[string]string{"env": "prod"}},
	}
	if _, err := reg.Put(ctx, "vault-1", cfg); err != nil {
		t.Fatal(err)
	}
	ref := registry.SecretRef{Mount: mount, Name: "app/prod"}
	name, err := azurekv.NormalizeKey("vault/" + accessor(t, c, mount) + "/app/prod")
	if err != nil {
		t.Fatal(err)
	}
	entry := func() (map[string]string, azurekvtest.Secret) {
		t.Helper()
		s, ok := kv.Get(name)
		if !ok {
			t.Fatalf("no secret %s in the vault (has %v)", name, kv.Names())
		}
		var m map[string]string
		if err := json.Unmarshal([]byte(s.Value), &m); err != nil {
			t.Fatalf("the entry is not a JSON object: %v", err)
		}
		return m, s
	}

	a, err := reg.Set(ctx, registry.TypeAzureKeyVault, "vault-1", ref, nil)
	if err != nil || a.Status != registry.StatusSynced || a.Totals.Created != 1 {
		t.Fatalf("Set = %+v, %v", a, err)
	}
	m, s := entry()
	if m["DB_URL"] != "postgres://db-1" || m["API_KEY"] != "k-1" || len(m) != 2 {
		t.Fatalf("entry holds %d keys", len(m))
	}
	if s.Tags[azurekv.TagManagedBy] != azurekv.ManagedBy || s.Tags[azurekv.TagOwner] != a.SyncName || s.Tags["env"] != "prod" {
		t.Fatalf("entry tags %v", s.Tags)
	}

	// A change in Vault arrives with a refresh.
	if _, err := c.KVv2(mount).Patch(ctx, "app/prod", map[string]any{"DB_URL": "postgres://db-2"}); err != nil {
		t.Fatal(err)
	}
	if a, err = reg.Set(ctx, registry.TypeAzureKeyVault, "vault-1", ref, nil); err != nil || a.Totals.Updated != 1 {
		t.Fatalf("refresh = %+v, %v", a, err)
	}
	if m, _ := entry(); m["DB_URL"] != "postgres://db-2" {
		t.Fatal("the change did not arrive")
	}
	// And with a round of the association's Syncer.
	if _, err := c.KVv2(mount).Patch(ctx, "app/prod", map[string]any{"API_KEY": "k-2"}); err != nil {
		t.Fatal(err)
	}
	s2, err := reg.Syncer(ctx, registry.TypeAzureKeyVault, "vault-1", ref)
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := s2.Run(ctx); err != nil || rep.Totals.Updated != 1 {
		t.Fatalf("Run = %+v, %v", rep, err)
	}
	if m, _ := entry(); m["API_KEY"] != "k-2" {
		t.Fatal("the change did not arrive with Run")
	}
	// An idle refresh writes nothing.
	versions := len(kv.Versions(name))
	if a, err = reg.Set(ctx, registry.TypeAzureKeyVault, "vault-1", ref, nil); err != nil || a.Totals.Changed() != 0 {
		t.Fatalf("idle refresh = %+v, %v", a, err)
	}
	if len(kv.Versions(name)) != versions {
		t.Fatal("an idle refresh wrote a version")
	}

	// Remove soft-deletes the entry, and only it.
	if a, err = reg.Remove(ctx, registry.TypeAzureKeyVault, "vault-1", ref); err != nil || a.Status != registry.StatusUnsynced || a.Totals.Deleted != 1 {
		t.Fatalf("Remove = %+v, %v", a, err)
	}
	if st := kv.State(name); st != azurekvtest.StateDeleting && st != azurekvtest.StateDeleted {
		t.Fatalf("after Remove the entry is %q, want soft-deleted", st)
	}
	if s, ok := kv.Get("someone-elses"); !ok || s.Value != "keep me" {
		t.Fatal("the unmanaged secret was touched")
	}

	// Set again: the name is soft-deleted by this association, so it is
	// recovered, then written.
	if a, err = reg.Set(ctx, registry.TypeAzureKeyVault, "vault-1", ref, nil); err != nil || a.Totals.Created != 1 {
		t.Fatalf("Set after Remove = %+v, %v", a, err)
	}
	if m, _ := entry(); m["API_KEY"] != "k-2" || kv.Count(azurekvtest.OpRecoverSecret) != 1 {
		t.Fatal("the name was not recovered and written")
	}

	// With purge, Remove leaves nothing to recover.
	cfg.Purge = true
	if _, err := reg.Put(ctx, "vault-1", cfg); err != nil {
		t.Fatal(err)
	}
	if a, err = reg.Remove(ctx, registry.TypeAzureKeyVault, "vault-1", ref); err != nil || a.Totals.Deleted != 1 {
		t.Fatalf("Remove with purge = %+v, %v", a, err)
	}
	if st := kv.State(name); st != "" && st != azurekvtest.StatePurging {
		t.Fatalf("after Remove with purge the entry is %q", st)
	}
}

// TestRequestsPerKey measures the requests a sync.Syncer makes through
// this destination per key: creating n keys, updating them, and an idle
// round.
func TestRequestsPerKey(t *testing.T) {
	ctx := context.Background()
	kv := azurekvtest.New(t, nil)
	d := open(t, kv, "requests")
	const n = 20
	src := memory.New(nil)
	for i := range n {
		src.Set(fmt.Sprintf("key-%02d", i), "v1")
	}
	s, err := sync.New(sync.Config{Name: "requests", Source: src, Destination: d, Mode: sync.Push})
	if err != nil {
		t.Fatal(err)
	}
	round := func(what string, wantChanged int) float64 {
		t.Helper()
		before := kv.VaultRequests()
		rep, err := s.Run(ctx)
		if err != nil || rep.Totals.Changed() != wantChanged {
			t.Fatalf("%s: %+v, %v", what, rep.Totals, err)
		}
		per := float64(kv.VaultRequests()-before) / n
		t.Logf("%s: %.2f requests per key (%d keys; %v)", what, per, n, kv.Counts())
		kv.ResetCounts()
		return per
	}
	kv.ResetCounts()
	create := round("create", n)
	for i := range n {
		src.Set(fmt.Sprintf("key-%02d", i), "v2")
	}
	update := round("update", n)
	idle := round("idle", 0)
	// One list of the vault per round and per 25 secrets; per key: create
	// = read + write + versions; update = the round's read + versions +
	// read + write + versions; idle = the round's read.
	for what, c := range map[string][2]float64{"create": {create, 3 + 2.0/n}, "update": {update, 5 + 1.0/n}, "idle": {idle, 1 + 1.0/n}} {
		if c[0] > c[1] {
			t.Errorf("%s: %.2f requests per key, want at most %.2f", what, c[0], c[1])
		}
	}
}

// accessor returns the accessor of a mount, which the registry's default
// name template uses.
func accessor(t *testing.T, c *api.Client, mount string) string {
	t.Helper()
	mounts, err := c.Sys().ListMounts()
	if err != nil {
		t.Fatal(err)
	}
	m, ok := mounts[mount+"/"]
	if !ok || m.Accessor == "" {
		t.Fatalf("no accessor for mount %s", mount)
	}
	return m.Accessor
}
