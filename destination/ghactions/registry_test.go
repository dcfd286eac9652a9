package ghactions_test

import (
	"context"
	"github.com/hashicorp/vault/api"
	"maps"
	"os"
	"slices"
	"testing"

	"github.com/secretsync/secretsync/conflict"
	"github.com/secretsync/secretsync/destination/ghactions"
	"github.com/secretsync/secretsync/destination/ghactions/ghactionstest"
	"github.com/secretsync/secretsync/registry"
	"github.com/secretsync/secretsync/registry/kv"
	"github.com/secretsync/secretsync/vaultkv/vaulttest"
)

// The tests of this package that need Vault share one server.
func TestMain(m *testing.M) { os.Exit(vaulttest.Main(m)) }

// TestRegistryAssociationFromVault associates a KV v2 secret of the real
// Vault with a gh destination on the local GitHub API, for each secrets
// location: Set syncs it (one GitHub secret per key, named by the default
// template and normalized), a change in Vault arrives with a refresh and
// with the association's Syncer, a change made at GitHub is flagged as
// drift, and Remove deletes the association's secrets and nothing else.
func TestRegistryAssociationFromVault(t *testing.T) {
	ctx := context.Background()
	vault := vaulttest.Get(t)
	conn := vault.Conn(t)
	c := vault.Client(t)

	for _, loc := range []string{registry.GitHubRepositorySecrets, registry.GitHubEnvironmentSecrets, registry.GitHubOrganizationSecrets} {
		t.Run(loc, func(t *testing.T) {
			mount := vault.NewMount(t)
			if _, err := c.KVv2(mount).Put(ctx, "app/prod", map[string]any{"db-url": "postgres://db-1", "api_key": "k-1"}); err != nil {
				t.Fatal(err)
			}
			// Writes at GitHub get distinct update times, as writes more than
			// a second apart would (see the package documentation).
			gh := newServer(t, ghactionstest.Options{})
			repo := gh.AddRepository("acme", "api")
			cfg := registry.GitHubRepository{AccessToken: registry.Credential(gh.Token), SecretsLocation: loc}
			var sc *ghactionstest.Secrets
			switch loc {
			case registry.GitHubRepositorySecrets:
				cfg.RepositoryOwner, cfg.RepositoryName = "acme", "api"
				sc = repo.Secrets()
			case registry.GitHubEnvironmentSecrets:
				cfg.RepositoryOwner, cfg.RepositoryName, cfg.EnvironmentName = "acme", "api", "production"
				sc = repo.AddEnvironment("production")
			case registry.GitHubOrganizationSecrets:
				cfg.OrganizationName, cfg.OrganizationVisibility, cfg.SelectedRepositoryIDs = "acme", "selected", []int64{repo.ID}
				sc = gh.AddOrganization("acme")
			}
			// Someone else's secret, which the association must leave alone.
			if err := sc.Set("OTHER", "not ours"); err != nil {
				t.Fatal(err)
			}

			reg := registry.New(&registry.Options{
				Drivers: map[string]registry.Driver{registry.TypeGitHubRepository: ghactions.Driver(&ghactions.DriverOptions{BaseURL: gh.URL, HTTPClient: gh.Client()})},
				Source:  kv.SecretSource(conn),
			})
			t.Cleanup(func() { reg.Close() })
			if _, err := reg.Put(ctx, "repo", cfg); err != nil {
				t.Fatal(err)
			}
			name := func(key string) string {
				n, err := ghactions.NormalizeKey("vault/" + accessor(t, c, mount) + "/app/prod/" + key)
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
			want := func(what string, values map[string]string) {
				t.Helper()
				got := sc.Values()
				if !maps.Equal(got, values) {
					t.Fatalf("%s: GitHub holds %v, want %v", what, slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(values)))
				}
			}

			ref := registry.SecretRef{Mount: mount, Name: "app/prod"}
			gh.ResetCounts()
			a, err := reg.Set(ctx, registry.TypeGitHubRepository, "repo", ref, nil)
			if err != nil || a.Status != registry.StatusSynced || a.Totals.Created != 2 {
				t.Fatalf("Set = %+v, %v", a, err)
			}
			t.Logf("create 2 keys: %d requests %v", gh.Requests(), gh.Counts())
			want("after Set", map[string]string{name("db-url"): "postgres://db-1", name("api_key"): "k-1", "OTHER": "not ours"})
			if loc == registry.GitHubOrganizationSecrets {
				if s, _ := sc.Get(name("db-url")); s.Visibility != "selected" || !slices.Equal(s.SelectedRepositoryIDs, []int64{repo.ID}) {
					t.Fatalf("organization secret: visibility %q, ids %v", s.Visibility, s.SelectedRepositoryIDs)
				}
			}

			// A change in Vault arrives with a refresh.
			if _, err := c.KVv2(mount).Patch(ctx, "app/prod", map[string]any{"db-url": "postgres://db-2"}); err != nil {
				t.Fatal(err)
			}
			gh.ResetCounts()
			a, err = reg.Set(ctx, registry.TypeGitHubRepository, "repo", ref, nil)
			if err != nil || a.Status != registry.StatusSynced || a.Totals.Updated != 1 || a.Totals.Unchanged != 1 {
				t.Fatalf("refresh = %+v, %v", a, err)
			}
			t.Logf("update 1 key of 2: %d requests %v", gh.Requests(), gh.Counts())
			want("after the refresh", map[string]string{name("db-url"): "postgres://db-2", name("api_key"): "k-1", "OTHER": "not ours"})

			// And with a round of the association's Syncer; an idle round
			// only lists.
			if _, err := c.KVv2(mount).Patch(ctx, "app/prod", map[string]any{"api_key": "k-2", "new key": "n-1"}); err != nil {
				t.Fatal(err)
			}
			s, err := reg.Syncer(ctx, registry.TypeGitHubRepository, "repo", ref)
			if err != nil {
				t.Fatal(err)
			}
			rep, err := s.Run(ctx)
			if err != nil || rep.Totals.Updated != 1 || rep.Totals.Created != 1 {
				t.Fatalf("Syncer round = %+v, %v", rep.Totals, err)
			}
			want("after the Syncer's round", map[string]string{name("db-url"): "postgres://db-2", name("api_key"): "k-2", name("new key"): "n-1", "OTHER": "not ours"})
			gh.ResetCounts()
			if rep, err := s.Run(ctx); err != nil || rep.Totals.Changed() != 0 || gh.Requests() != 1 {
				t.Fatalf("idle round = %+v, %v, %d requests", rep.Totals, err, gh.Requests())
			}

			// A value changed at GitHub is drift: flagged, not overwritten.
			if err := sc.Set(name("api_key"), "changed at GitHub"); err != nil {
				t.Fatal(err)
			}
			rep, err = s.Run(ctx)
			if err != nil || rep.Totals.Conflicts != 1 {
				t.Fatalf("round after a change at GitHub = %+v, %v", rep.Totals, err)
			}
			if v, _ := sc.Get(name("api_key")); v.Value != "changed at GitHub" {
				t.Fatal("the change made at GitHub was overwritten")
			}
			// Resolving it for the source writes Vault's value again.
			if err := s.Resolve(ctx, "api_key", conflict.KeepSource); err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			want("after Resolve", map[string]string{name("db-url"): "postgres://db-2", name("api_key"): "k-2", name("new key"): "n-1", "OTHER": "not ours"})

			// Remove deletes the association's secrets, and nothing else.
			a, err = reg.Remove(ctx, registry.TypeGitHubRepository, "repo", ref)
			if err != nil || a.Status != registry.StatusUnsynced || a.Totals.Deleted != 3 {
				t.Fatalf("Remove = %+v, %v", a, err)
			}
			want("after Remove", map[string]string{"OTHER": "not ours"})
		})
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
