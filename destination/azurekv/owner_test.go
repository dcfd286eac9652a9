package azurekv_test

import (
	"testing"
	"time"

	"github.com/secretsync/secretsync/destination/azurekv"
	"github.com/secretsync/secretsync/destination/azurekv/azurekvtest"
	"github.com/secretsync/secretsync/internal/ownertest"
	"github.com/secretsync/secretsync/registry"
)

// TestSyncNameAsOwner: the registry's longest sync names (cut to 63
// characters and ended with a hash) are the ownership marker as they are,
// and the entry stays the association's: an idle Set leaves it, and
// Remove deletes it.
func TestSyncNameAsOwner(t *testing.T) {
	srv := azurekvtest.New(t, &azurekvtest.Options{DeleteDelay: time.Millisecond, RecoverDelay: time.Millisecond, PurgeDelay: time.Millisecond})
	driver := azurekv.Driver(&azurekv.DriverOptions{HTTPClient: srv.HTTPClient(), Retry: fastRetry, PollInterval: time.Millisecond, WaitTimeout: 10 * time.Second})
	cfg := registry.AzureKeyVault{KeyVaultURI: srv.VaultURL(), TenantID: srv.TenantID(), ClientID: srv.ClientID(), ClientSecret: registry.Credential(srv.ClientSecret())}
	owned := func(owner string) int {
		n := 0
		for _, name := range srv.Names() {
			if s, ok := srv.Get(name); ok && s.Tags[azurekv.TagOwner] == owner && s.Tags[azurekv.TagManagedBy] == azurekv.ManagedBy {
				n++
			}
		}
		return n
	}
	ownertest.SyncNameAsOwner(t, driver, cfg, owned)
}
