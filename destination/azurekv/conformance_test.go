package azurekv_test

import (
	"context"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/azurekv"
	"github.com/secretsync/secretsync/destination/azurekv/azurekvtest"
	"github.com/secretsync/secretsync/destination/destinationtest"
)

// fastRetry keeps the SDK's retries short in tests.
var fastRetry = policy.RetryOptions{MaxRetries: 2, RetryDelay: time.Millisecond, MaxRetryDelay: 5 * time.Millisecond}

// open returns a destination over srv, with owner as its marker.
func open(t testing.TB, srv *azurekvtest.Server, owner string, mod ...func(*azurekv.Options)) *azurekv.Destination {
	t.Helper()
	opts := azurekv.Options{
		VaultURL:     srv.VaultURL(),
		TenantID:     srv.TenantID(),
		ClientID:     srv.ClientID(),
		ClientSecret: "azurekvtest-client-secret",
		Owner:        owner,
		HTTPClient:   srv.HTTPClient(),
		Retry:        fastRetry,
		PollInterval: 2 * time.Millisecond,
		WaitTimeout:  5 * time.Second,
	}
	for _, m := range mod {
		m(&opts)
	}
	d, err := azurekv.New(context.Background(), &opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// ours returns the tags that mark an entry as owner's.
func ours(owner string) map[string]string {
	return map[string]string{azurekv.TagManagedBy: azurekv.ManagedBy, azurekv.TagOwner: owner}
}

func TestConformance(t *testing.T) {
	destinationtest.Run(t, destinationtest.Harness{
		Keys:          []string{"DB-URL", "api-key-v2", "nested-path-KEY"},
		Capabilities:  destination.Capabilities{NoCheckAndSet: true},
		MaxValueBytes: azurekv.MaxValueBytes,
		New: func(t *testing.T) destinationtest.Fixture {
			srv := azurekvtest.New(t, nil)
			const owner = "conformance"
			set := func(_ context.Context, key, value string, tags map[string]string) error {
				if srv.State(key) == azurekvtest.StateDeleted {
					if err := srv.Purge(key); err != nil {
						return err
					}
				}
				_, err := srv.Set(key, value, tags)
				return err
			}
			return destinationtest.Fixture{
				Destination: open(t, srv, owner),
				Set:         func(ctx context.Context, key, value string) error { return set(ctx, key, value, ours(owner)) },
				Delete:      func(_ context.Context, key string) error { return srv.Delete(key) },
				SetUnowned:  func(ctx context.Context, key, value string) error { return set(ctx, key, value, nil) },
				Get: func(_ context.Context, key string) (string, bool, error) {
					s, ok := srv.Get(key)
					return s.Value, ok, nil
				},
			}
		},
	})
}
