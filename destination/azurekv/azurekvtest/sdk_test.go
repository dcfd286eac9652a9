package azurekvtest_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/secretsync/secretsync/destination/azurekv/azurekvtest"
)

// sdkClient returns the official SDK's client for srv, in a cloud, with
// the credentials given.
func sdkClient(t *testing.T, srv *azurekvtest.Server, c cloud.Configuration, vaultURL, tenant, clientID, secret string) *azsecrets.Client {
	t.Helper()
	co := azcore.ClientOptions{Transport: srv.HTTPClient(), Cloud: c,
		Retry: policy.RetryOptions{MaxRetries: 2, RetryDelay: time.Millisecond, MaxRetryDelay: 10 * time.Millisecond}}
	cred, err := azidentity.NewClientSecretCredential(tenant, clientID, secret, &azidentity.ClientSecretCredentialOptions{ClientOptions: co})
	if err != nil {
		t.Fatal(err)
	}
	client, err := azsecrets.NewClient(vaultURL, cred, &azsecrets.ClientOptions{ClientOptions: co})
	if err != nil {
		t.Fatal(err)
	}
	return client
}

func publicClient(t *testing.T, srv *azurekvtest.Server) *azsecrets.Client {
	return sdkClient(t, srv, cloud.AzurePublic, srv.VaultURL(), srv.TenantID(), srv.ClientID(), srv.ClientSecret())
}

func ptr[T any](v T) *T { return &v }

func respErr(t *testing.T, err error) *azcore.ResponseError {
	t.Helper()
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("got %v, want an *azcore.ResponseError", err)
	}
	return re
}

// TestSDKRoundTrip drives every operation through the official client.
func TestSDKRoundTrip(t *testing.T) {
	ctx := context.Background()
	srv := azurekvtest.New(t, nil)
	c := publicClient(t, srv)

	set, err := c.SetSecret(ctx, "db-url", azsecrets.SetSecretParameters{Value: ptr("v1"), Tags: map[string]*string{"team": ptr("a")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if set.ID.Name() != "db-url" || len(set.ID.Version()) != 32 || *set.Value != "v1" || *set.Tags["team"] != "a" {
		t.Fatalf("SetSecret = %s %s %v", *set.ID, *set.Value, set.Tags)
	}
	if !strings.HasPrefix(string(*set.ID), srv.VaultURL()+"/secrets/db-url/") {
		t.Fatalf("id %s", *set.ID)
	}
	// Names are compared without regard to case; the first spelling stays.
	set2, err := c.SetSecret(ctx, "DB-URL", azsecrets.SetSecretParameters{Value: ptr("v2")}, nil)
	if err != nil || set2.ID.Name() != "db-url" {
		t.Fatalf("SetSecret DB-URL = %v, %v", set2.ID, err)
	}
	got, err := c.GetSecret(ctx, "db-url", "", nil)
	if err != nil || *got.Value != "v2" || got.ID.Version() != set2.ID.Version() {
		t.Fatalf("GetSecret = %v, %v", got.ID, err)
	}
	old, err := c.GetSecret(ctx, "db-url", set.ID.Version(), nil)
	if err != nil || *old.Value != "v1" {
		t.Fatalf("GetSecret(v1) = %v, %v", old.ID, err)
	}
	if !old.Attributes.Created.Equal(old.Attributes.Created.Truncate(time.Second)) || *old.Attributes.RecoveryLevel != "Recoverable+Purgeable" {
		t.Fatalf("attributes %+v", old.Attributes)
	}

	upd, err := c.UpdateSecretProperties(ctx, "db-url", set2.ID.Version(), azsecrets.UpdateSecretPropertiesParameters{Tags: map[string]*string{"x": ptr("y")}}, nil)
	if err != nil || *upd.Tags["x"] != "y" || upd.Value != nil {
		t.Fatalf("UpdateSecretProperties = %v, %v", upd.Tags, err)
	}

	// Versions, paged.
	for i := range 30 {
		if _, err := c.SetSecret(ctx, "db-url", azsecrets.SetSecretParameters{Value: ptr(fmt.Sprint(i))}, nil); err != nil {
			t.Fatal(err)
		}
	}
	srv.ResetCounts()
	versions := 0
	for p := c.NewListSecretPropertiesVersionsPager("db-url", nil); p.More(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		versions += len(page.Value)
	}
	if versions != 32 || srv.Count(azurekvtest.OpListVersions) != 2 {
		t.Fatalf("%d versions in %d pages", versions, srv.Count(azurekvtest.OpListVersions))
	}

	// Soft delete, recover, delete, purge.
	del, err := c.DeleteSecret(ctx, "db-url", nil)
	if err != nil || *del.RecoveryID != srv.VaultURL()+"/deletedsecrets/db-url" || del.ScheduledPurgeDate.Sub(*del.DeletedDate) != 90*24*time.Hour {
		t.Fatalf("DeleteSecret = %+v, %v", del, err)
	}
	if _, err := c.GetSecret(ctx, "db-url", "", nil); respErr(t, err).ErrorCode != "SecretNotFound" {
		t.Fatalf("GetSecret after delete = %v", err)
	}
	_, err = c.SetSecret(ctx, "db-url", azsecrets.SetSecretParameters{Value: ptr("x")}, nil)
	if re := respErr(t, err); re.StatusCode != http.StatusConflict || !strings.Contains(re.Error(), "ObjectIsDeletedButRecoverable") {
		t.Fatalf("SetSecret on a deleted name = %v", err)
	}
	gd, err := c.GetDeletedSecret(ctx, "db-url", nil)
	if err != nil || gd.ID.Version() != srv.Versions("db-url")[31].Version || gd.Value != nil {
		t.Fatalf("GetDeletedSecret = %v, %v", gd.ID, err)
	}
	if _, err := c.RecoverDeletedSecret(ctx, "db-url", nil); err != nil {
		t.Fatal(err)
	}
	if got, err := c.GetSecret(ctx, "db-url", "", nil); err != nil || *got.Value != "29" {
		t.Fatalf("GetSecret after recovery = %v", err)
	}
	if _, err := c.DeleteSecret(ctx, "db-url", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PurgeDeletedSecret(ctx, "db-url", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetDeletedSecret(ctx, "db-url", nil); respErr(t, err).StatusCode != http.StatusNotFound {
		t.Fatalf("GetDeletedSecret after purge = %v", err)
	}
	if _, err := c.SetSecret(ctx, "db-url", azsecrets.SetSecretParameters{Value: ptr("fresh")}, nil); err != nil {
		t.Fatalf("SetSecret after purge = %v", err)
	}
	if vs := srv.Versions("db-url"); len(vs) != 1 {
		t.Fatalf("%d versions after purge and create", len(vs))
	}
}

// TestSDKChallengeAndToken checks the bearer challenge flow: one
// unauthenticated request; then MSAL's instance discovery and OpenID
// configuration, one token, and every request with the token.
func TestSDKChallengeAndToken(t *testing.T) {
	ctx := context.Background()
	srv := azurekvtest.New(t, nil)
	c := publicClient(t, srv)
	for i := range 5 {
		if _, err := c.SetSecret(ctx, fmt.Sprint("s", i), azsecrets.SetSecretParameters{Value: ptr("v")}, nil); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]int{azurekvtest.OpChallenge: 1, azurekvtest.OpInstanceDiscovery: 1, azurekvtest.OpOpenIDConfig: 1, azurekvtest.OpToken: 1, azurekvtest.OpSetSecret: 5}
	if got := srv.Counts(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("counts = %v, want %v", got, want)
	}
	log := srv.Log()
	if log[0].Authorized || log[0].Op != azurekvtest.OpSetSecret || log[0].Status != http.StatusUnauthorized {
		t.Fatalf("first request %+v, want an unauthorized SetSecret", log[0])
	}
	for _, r := range log[1:] {
		if r.Op == azurekvtest.OpSetSecret && (!r.Authorized || r.Status != http.StatusOK || r.APIVersion != "2026-04-01") {
			t.Fatalf("request %+v", r)
		}
	}
}

// TestSDKClouds reaches the vault of each cloud through that cloud's
// authority, with the SDK's challenge resource verification on.
func TestSDKClouds(t *testing.T) {
	ctx := context.Background()
	srv := azurekvtest.New(t, nil)
	for name, c := range map[string]cloud.Configuration{"AzureChina": cloud.AzureChina, "AzureUSGovernment": cloud.AzureGovernment, "": cloud.AzurePublic} {
		client := sdkClient(t, srv, c, srv.VaultURLIn(name), srv.TenantID(), srv.ClientID(), srv.ClientSecret())
		if _, err := client.SetSecret(ctx, "in-"+strings.ToLower(name+"x"), azsecrets.SetSecretParameters{Value: ptr("v")}, nil); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	// The SDK refuses a challenge whose resource (vault.azure.net) is not
	// a suffix of the vault's host, here 127.0.0.1.
	_, err := sdkClient(t, srv, cloud.AzurePublic, srv.LoopbackURL(), srv.TenantID(), srv.ClientID(), srv.ClientSecret()).
		SetSecret(ctx, "x", azsecrets.SetSecretParameters{Value: ptr("v")}, nil)
	if err == nil || !strings.Contains(err.Error(), "doesn't match the requested domain") {
		t.Fatalf("loopback URL with challenge verification = %v", err)
	}
}

// TestSDKBadCredentials: Entra's refusals reach the caller as
// azidentity.AuthenticationFailedError, and nothing is written.
func TestSDKBadCredentials(t *testing.T) {
	ctx := context.Background()
	srv := azurekvtest.New(t, nil)
	for _, tc := range []struct{ tenant, client, secret, want string }{
		{srv.TenantID(), srv.ClientID(), "wrong", "AADSTS7000215"},
		{srv.TenantID(), "00000000-0000-0000-0000-000000000001", srv.ClientSecret(), "AADSTS700016"},
		// The challenge names the vault's tenant, which the credential
		// refuses to get tokens for.
		{"00000000-0000-0000-0000-000000000002", srv.ClientID(), srv.ClientSecret(), "isn't configured to acquire tokens for tenant"},
	} {
		_, err := sdkClient(t, srv, cloud.AzurePublic, srv.VaultURL(), tc.tenant, tc.client, tc.secret).
			SetSecret(ctx, "x", azsecrets.SetSecretParameters{Value: ptr("v")}, nil)
		var afe *azidentity.AuthenticationFailedError
		if !errors.As(err, &afe) && !strings.Contains(fmt.Sprint(err), tc.want) {
			t.Fatalf("got %v, want an authentication failure %s", err, tc.want)
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("got %v, want %s", err, tc.want)
		}
	}
	if n := srv.Count(azurekvtest.OpSetSecret); n != 0 {
		t.Fatalf("%d writes with bad credentials", n)
	}
}
