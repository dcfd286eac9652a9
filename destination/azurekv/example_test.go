package azurekv_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/azurekv"
	"github.com/secretsync/secretsync/destination/azurekv/azurekvtest"
)

// Example writes, updates, lists and deletes secrets in a vault: here the
// local one of package azurekvtest, reached over its HTTPClient.
func Example() {
	ctx := context.Background()
	vault, err := azurekvtest.Start(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer vault.Close()

	d, err := azurekv.New(ctx, &azurekv.Options{
		VaultURL:     vault.VaultURL(), // https://fakevault.vault.azure.net
		TenantID:     vault.TenantID(),
		ClientID:     vault.ClientID(),
		ClientSecret: "azurekvtest-client-secret",
		Owner:        "example",
		Tags:         map[string]string{"env": "prod"},
		HTTPClient:   vault.HTTPClient(),
		PollInterval: 10 * time.Millisecond,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()

	name, _ := d.NormalizeKey("app/prod/DB_URL")
	errs, err := d.Apply(ctx, []destination.Change{
		{Key: name, Value: "postgres://db-1"},
		{Key: "bad_name", Value: "x"},
	})
	fmt.Println(name, errs[0], errs[1], err)

	m, _ := d.List(ctx)
	errs, _ = d.Apply(ctx, []destination.Change{{Key: name, Value: "postgres://db-2", Expect: m[name].Version}})
	fmt.Println("update:", errs[0])
	// The version read before the update is stale now.
	errs, _ = d.Apply(ctx, []destination.Change{{Key: name, Delete: true, Expect: m[name].Version}})
	fmt.Println("stale delete is a conflict:", errs[0] != nil)

	m, _ = d.List(ctx)
	s, _ := vault.Get(name)
	fmt.Println(m[name].Value, s.Tags)
	errs, _ = d.Apply(ctx, []destination.Change{{Key: name, Delete: true, Expect: m[name].Version}})
	fmt.Println("delete:", errs[0], vault.State(name))
	// Output:
	// app-prod-DB-URL <nil> put "bad_name": destination: invalid key: "bad_name": Key Vault names hold only letters, digits and '-' <nil>
	// update: <nil>
	// stale delete is a conflict: true
	// postgres://db-2 map[env:prod managed-by:secretsync secretsync-owner:example]
	// delete: <nil> deleted
}
