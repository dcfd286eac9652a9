package gcpsmtest_test

import (
	"context"
	"fmt"
	"log"

	secretmanager "cloud.google.com/go/secretmanager/apiv1"
	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/api/option"

	"github.com/secretsync/secretsync/destination/gcpsm/gcpsmtest"
)

// ExampleServer points the official SDK's gRPC client at a local Secret
// Manager, authenticated with a service-account key of the server.
func ExampleServer() {
	srv, err := gcpsmtest.NewServer(&gcpsmtest.Options{ProjectID: "my-project"})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	ctx := context.Background()
	opts := append(srv.ClientOptions(), option.WithAuthCredentialsJSON(option.ServiceAccount, srv.ServiceAccountKey("app")))
	client, err := secretmanager.NewClient(ctx, opts...)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	if _, err := srv.Put("db-password", "s3cret", nil); err != nil { // as another writer would
		log.Fatal(err)
	}
	resp, err := client.AccessSecretVersion(ctx, &secretmanagerpb.AccessSecretVersionRequest{
		Name: "projects/my-project/secrets/db-password/versions/latest",
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.GetName(), string(resp.GetPayload().GetData()))
	fmt.Println(srv.Count("AccessSecretVersion"))
	// Output:
	// projects/271828182845/secrets/db-password/versions/1 s3cret
	// 1
}
