package gcpsm_test

import (
	"context"
	"fmt"
	"log"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/gcpsm"
	"github.com/secretsync/secretsync/destination/gcpsm/gcpsmtest"
	"github.com/secretsync/secretsync/registry"
)

// Example writes and lists a secret in a local Secret Manager
// (gcpsmtest). Against Google Cloud, leave out HTTPClient and
// ClientOptions and give the JSON key of a service account.
func Example() {
	srv, err := gcpsmtest.NewServer(&gcpsmtest.Options{ProjectID: "my-project"})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	ctx := context.Background()
	d, err := gcpsm.New(ctx, &gcpsm.Options{
		Credentials:   srv.ServiceAccountKey("secretsync"), // a service account's JSON key
		Owner:         "assoc-example",
		Labels:        map[string]string{"team": "platform"},
		HTTPClient:    srv.HTTPClient(),
		ClientOptions: srv.ClientOptions(),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()

	key, err := d.NormalizeKey("vault/kv/app/prod")
	if err != nil {
		log.Fatal(err)
	}
	errs, err := d.Apply(ctx, []destination.Change{{Key: key, Value: `{"DB":"db-1"}`}})
	if err != nil || errs[0] != nil {
		log.Fatal(err, errs)
	}
	m, err := d.List(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(key, m[key].Value)
	fmt.Println(srv.Labels(key))
	// Output:
	// vault_kv_app_prod {"DB":"db-1"}
	// map[managed-by:secretsync secretsync-owner:assoc-example team:platform]
}

// ExampleDriver registers the gcp-sm driver with a registry and opens a
// destination from its typed configuration.
func ExampleDriver() {
	srv, err := gcpsmtest.NewServer(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	ctx := context.Background()
	reg := registry.New(&registry.Options{
		Drivers: map[string]registry.Driver{
			registry.TypeGCPSecretManager: gcpsm.Driver(&gcpsm.DriverOptions{
				HTTPClient: srv.HTTPClient(), ClientOptions: srv.ClientOptions(), // for the local server only
			}),
		},
	})
	defer reg.Close()
	info, err := reg.Put(ctx, "gcp", registry.GCPSecretManager{
		Credentials: registry.Credential(srv.ServiceAccountKey("secretsync")), // or "@/path/to/key.json"
		SyncOptions: registry.SyncOptions{CustomTags: map[string]string{"env": "prod"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.ConnectionDetails["credentials"])

	d, err := reg.Open(ctx, registry.TypeGCPSecretManager, "gcp")
	if err != nil {
		log.Fatal(err)
	}
	defer d.(*gcpsm.Destination).Close()
	if _, err := d.Apply(ctx, []destination.Change{{Key: "DB_URL", Value: "postgres://db"}}); err != nil {
		log.Fatal(err)
	}
	fmt.Println(srv.Secrets(), srv.Labels("DB_URL")["env"])
	// Output:
	// *****
	// [DB_URL] prod
}
