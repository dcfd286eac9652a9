package awssm_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secretsync/secretsync/destination/awssm"
	"github.com/secretsync/secretsync/destination/awssm/awssmtest"
	"github.com/secretsync/secretsync/internal/ownertest"
	"github.com/secretsync/secretsync/registry"
)

// TestSyncNameAsOwner: the registry's longest sync names (cut to 63
// characters and ended with a hash) are the ownership marker as they are,
// and the entry stays the association's: an idle Set leaves it, and
// Remove deletes it.
func TestSyncNameAsOwner(t *testing.T) {
	srv := newServer(t, awssmtest.Options{})
	id, key := srv.AccessKey()
	driver := awssm.Driver(&awssm.DriverOptions{Endpoint: srv.URL, HTTPClient: srv.HTTPClient(), ClientOptions: []func(*secretsmanager.Options){fastRetries}})
	cfg := registry.AWSSecretsManager{AccessKeyID: registry.Credential(id), SecretAccessKey: registry.Credential(key), Region: srv.Region()}
	owned := func(owner string) int {
		n := 0
		for _, name := range srv.Names() {
			if s, _ := srv.Get(name); !s.Deleted && s.Tags[awssm.TagOwner] == owner && s.Tags[awssm.TagManagedBy] == awssm.ManagedByValue {
				n++
			}
		}
		return n
	}
	ownertest.SyncNameAsOwner(t, driver, cfg, owned)
}
