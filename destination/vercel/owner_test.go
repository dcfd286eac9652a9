package vercel_test

import (
	"testing"
	"time"

	"github.com/secretsync/secretsync/destination/vercel"
	"github.com/secretsync/secretsync/destination/vercel/verceltest"
	"github.com/secretsync/secretsync/internal/ownertest"
	"github.com/secretsync/secretsync/registry"
)

// TestSyncNameAsOwner: the registry's longest sync names (cut to 63
// characters and ended with a hash) are the ownership marker as they are,
// and the entry stays the association's: an idle Set leaves it, and
// Remove deletes it.
func TestSyncNameAsOwner(t *testing.T) {
	srv := verceltest.New(t, nil)
	driver := vercel.Driver(&vercel.DriverOptions{BaseURL: srv.URL, MinBackoff: time.Millisecond})
	cfg := registry.VercelProject{AccessToken: "test-token", ProjectID: srv.ProjectID(), DeploymentEnvironments: []string{vercel.Production}}
	owned := func(owner string) int {
		n := 0
		for _, v := range srv.Vars() {
			if v.Comment == vercel.Marker(owner) {
				n++
			}
		}
		return n
	}
	ownertest.SyncNameAsOwner(t, driver, cfg, owned)
}
