package gcpsm_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/secretsync/secretsync/destination/gcpsm"
	"github.com/secretsync/secretsync/destination/gcpsm/gcpsmtest"
	"github.com/secretsync/secretsync/internal/ownertest"
	"github.com/secretsync/secretsync/registry"
)

// TestSyncNameAsOwner: the registry's longest sync names (cut to 63
// characters and ended with a hash) are the ownership marker as they are,
// and the entry stays the association's: an idle Set leaves it, and
// Remove deletes it.
func TestSyncNameAsOwner(t *testing.T) {
	srv := newServer(t, gcpsmtest.Options{})
	keyFile := filepath.Join(t.TempDir(), "key.json")
	if err := os.WriteFile(keyFile, srv.ServiceAccountKey("secretsync"), 0o600); err != nil {
		t.Fatal(err)
	}
	driver := gcpsm.Driver(&gcpsm.DriverOptions{HTTPClient: srv.HTTPClient(), ClientOptions: srv.ClientOptions()})
	cfg := registry.GCPSecretManager{Credentials: registry.Credential("@" + keyFile)}
	owned := func(owner string) int {
		n := 0
		for _, id := range srv.Secrets() {
			// The label is the sync name itself: no hash in its place.
			if l := srv.Labels(id); l[gcpsm.LabelOwner] == owner && l[gcpsm.LabelManagedBy] == gcpsm.ManagedByValue {
				n++
			}
		}
		return n
	}
	ownertest.SyncNameAsOwner(t, driver, cfg, owned)
}
