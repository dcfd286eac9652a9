package azurekvtest_test

import (
	"context"
	"fmt"
	"log"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/secretsync/secretsync/destination/azurekv/azurekvtest"
)

// Example points the official SDK at the local vault: its HTTPClient is
// the transport of both the credential and the secrets client.
func Example() {
	srv, err := azurekvtest.Start(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	co := azcore.ClientOptions{Transport: srv.HTTPClient(), Cloud: cloud.AzurePublic}
	cred, err := azidentity.NewClientSecretCredential(srv.TenantID(), srv.ClientID(), srv.ClientSecret(),
		&azidentity.ClientSecretCredentialOptions{ClientOptions: co})
	if err != nil {
		log.Fatal(err)
	}
	client, err := azsecrets.NewClient(srv.VaultURL(), cred, &azsecrets.ClientOptions{ClientOptions: co})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	value := "s3cr3t"
	if _, err := client.SetSecret(ctx, "db-password", azsecrets.SetSecretParameters{Value: &value}, nil); err != nil {
		log.Fatal(err)
	}
	s, _ := srv.Get("db-password")
	fmt.Println(s.Value, len(s.Version))
	fmt.Println("challenged:", srv.Count(azurekvtest.OpChallenge), "tokens:", srv.Count(azurekvtest.OpToken), "writes:", srv.Count(azurekvtest.OpSetSecret))
	// Output:
	// s3cr3t 32
	// challenged: 1 tokens: 1 writes: 1
}
