package registry_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/registry"
	"github.com/secretsync/secretsync/state"
)

// A GitHub repository destination, with a KV v2 secret associated to it.
// In-memory sides stand in for Vault and for GitHub; a program registers
// its own driver for each external type it supports.
func Example() {
	ctx := context.Background()
	secret := memory.New(map[string]string{"DB_URL": "postgres://db/app", "API_KEY": "k-123"})
	repo := memory.New(map[string]string{"UNRELATED": "kept"})

	reg := registry.New(&registry.Options{
		Drivers: map[string]registry.Driver{
			registry.TypeGitHubRepository: func(ctx context.Context, t registry.Target) (destination.Destination, error) {
				return repo, nil // a real driver would connect with t.Config.(registry.GitHubRepository)
			},
		},
		Source: func(ctx context.Context, mount, name string) (destination.Reader, error) {
			return secret, nil // vaultkv.New in a real program
		},
	})

	info, err := reg.Put(ctx, "my-repo", registry.GitHubRepository{
		AccessToken: "github_pat_example", RepositoryOwner: "acme", RepositoryName: "api",
		// One GitHub secret per key of the Vault secret, named by template.
		SyncOptions: registry.SyncOptions{SecretNameTemplate: "APP_{{ .SecretKey }}"},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(info.Type, info.Name, info.ConnectionDetails["access_token"])

	ref := registry.SecretRef{Mount: "kv", Name: "app/prod"}
	a, err := reg.Set(ctx, registry.TypeGitHubRepository, "my-repo", ref, nil)
	if err != nil {
		panic(err)
	}
	fmt.Println(a.SyncName, a.Status, a.Totals.Created)
	held, _ := repo.List(ctx)
	fmt.Println(slices.Sorted(maps.Keys(held)))

	// Delete is refused while the destination has associations; Purge
	// unsyncs them first (Force would leave their entries behind).
	err = reg.Delete(ctx, registry.TypeGitHubRepository, "my-repo", nil)
	fmt.Println(errors.Is(err, registry.ErrInUse))
	if err := reg.Delete(ctx, registry.TypeGitHubRepository, "my-repo", &registry.DeleteOptions{Purge: true}); err != nil {
		panic(err)
	}
	held, _ = repo.List(ctx)
	fmt.Println(slices.Sorted(maps.Keys(held)))
	// Output:
	// gh my-repo *****
	// gh-my-repo-kv-app-prod SYNCED 2
	// [APP_API_KEY APP_DB_URL UNRELATED]
	// true
	// [UNRELATED]
}

// A registry that keeps its destinations and associations in a catalog:
// here a state.Memory (a state.File on one host, a vaultkv.Store for
// replicas), with credentials sealed by a key file (vaultkv.Transit in
// production). A second registry opened on the same catalog, as after a
// restart, has the destination, its credential and its association.
func ExampleOpen() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "registry-example")
	defer os.RemoveAll(dir)
	catalog := state.NewMemory()
	opts := registry.Options{
		Drivers: map[string]registry.Driver{
			registry.TypeGitHubRepository: func(ctx context.Context, t registry.Target) (destination.Destination, error) {
				return memory.New(nil), nil
			},
		},
		Source: func(ctx context.Context, mount, name string) (destination.Reader, error) {
			return memory.New(map[string]string{"TOKEN": "t-1"}), nil
		},
		Catalog: catalog,
		Sealer:  registry.KeyFileSealer(filepath.Join(dir, "catalog.key")),
	}
	reg, err := registry.Open(ctx, &opts)
	if err != nil {
		panic(err)
	}
	if _, err := reg.Put(ctx, "my-repo", registry.GitHubRepository{AccessToken: "github_pat_example", RepositoryOwner: "acme", RepositoryName: "api"}); err != nil {
		panic(err)
	}
	if _, err := reg.Set(ctx, registry.TypeGitHubRepository, "my-repo", registry.SecretRef{Mount: "kv", Name: "app"}, nil); err != nil {
		panic(err)
	}
	doc, _ := catalog.LoadDocument(ctx, registry.DefaultCatalogName)
	fmt.Println("plain text in the catalog:", strings.Contains(string(doc.Data), "github_pat_example"))

	again, err := registry.Open(ctx, &opts)
	if err != nil {
		panic(err)
	}
	as, _ := again.Associations(ctx, registry.TypeGitHubRepository, "my-repo")
	fmt.Println(as[0].SyncName, as[0].Status)
	// Output:
	// plain text in the catalog: false
	// gh-my-repo-kv-app PENDING
}
