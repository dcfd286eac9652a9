package awssm_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secretsync/secretsync/destination/awssm"
	"github.com/secretsync/secretsync/destination/awssm/awssmtest"
	"github.com/secretsync/secretsync/destination/registry"
	"github.com/secretsync/secretsync/vaultkv"
	"github.com/secretsync/secretsync/vaultkv/vaulttest"
)

// TestRegistryAssociationFromVault associates a KV v2 secret of a real
// Vault with an aws-sm destination on the local server: Set syncs it, a
// change in Vault arrives with the next Set, and Remove schedules the
// entries for deletion with the default recovery window. The test reads
// the server as AWS users would, through the entries the association
// tagged with its owner, so it holds whatever the registry's naming and
// granularity make of the secret.
func TestRegistryAssociationFromVault(t *testing.T) {
	ctx := context.Background()
	vs := vaulttest.Get(t)
	conn := vs.Conn(t)
	c := vs.Client(t)
	mount := vs.NewMount(t)
	if _, err := c.KVv2(mount).Put(ctx, "app/prod", map[string]any{"DB": "db-1", "KEY": "k-1"}); err != nil {
		t.Fatal(err)
	}
	srv := newServer(t, awssmtest.Options{})
	srv.Put("unrelated", "not ours", nil)
	id, key := srv.AccessKey()
	reg := registry.New(registry.Options{
		Drivers: map[string]registry.Driver{registry.TypeAWSSecretsManager: awssm.Driver(awssm.DriverOptions{
			Endpoint: srv.URL, HTTPClient: srv.HTTPClient(), ClientOptions: []func(*secretsmanager.Options){fastRetries},
		})},
		Source: vaultkv.SecretSource(conn),
	})
	if _, err := reg.Put(ctx, "aws", registry.AWSSecretsManager{
		AccessKeyID: registry.Credential(id), SecretAccessKey: registry.Credential(key), Region: srv.Region(),
		SyncOptions: registry.SyncOptions{CustomTags: map[string]string{"team": "payments"}},
	}); err != nil {
		t.Fatal(err)
	}
	ref := registry.SecretRef{Mount: mount, Name: "app/prod"}
	a, err := reg.Set(ctx, registry.TypeAWSSecretsManager, "aws", ref, registry.AssociationOptions{})
	if err != nil || a.Status != registry.StatusSynced || a.Totals.Created == 0 {
		t.Fatalf("Set = %+v, %v", a, err)
	}

	// entries returns the live secrets the association owns, by name.
	entries := func() map[string]awssmtest.Secret {
		t.Helper()
		out := map[string]awssmtest.Secret{}
		for _, n := range srv.Names() {
			s, _ := srv.Get(n)
			if s.Tags[awssm.TagOwner] == a.SyncName && !s.Deleted {
				out[n] = s
			}
		}
		return out
	}
	holds := func(want ...string) {
		t.Helper()
		var all []string
		for name, s := range entries() {
			if s.Tags[awssm.TagManagedBy] != awssm.ManagedByValue || s.Tags["team"] != "payments" {
				t.Fatalf("%s has tags %v", name, s.Tags)
			}
			all = append(all, s.Value)
		}
		joined := strings.Join(all, "\n")
		for _, w := range want {
			if !strings.Contains(joined, w) {
				t.Fatalf("the entries do not hold %q", w)
			}
		}
	}
	if len(entries()) == 0 {
		t.Fatal("Set made no entry")
	}
	holds("db-1", "k-1")
	t.Logf("entries after Set: %v", names(entries()))

	if _, err := c.KVv2(mount).Patch(ctx, "app/prod", map[string]any{"DB": "db-2"}); err != nil {
		t.Fatal(err)
	}
	if a, err = reg.Set(ctx, registry.TypeAWSSecretsManager, "aws", ref, registry.AssociationOptions{}); err != nil || a.Status != registry.StatusSynced || a.Totals.Updated != 1 {
		t.Fatalf("refresh = %+v, %v", a, err)
	}
	holds("db-2", "k-1")
	for _, s := range entries() {
		if strings.Contains(s.Value, "db-1") {
			t.Fatal("the old value is still current")
		}
	}
	if err := reg.Delete(ctx, registry.TypeAWSSecretsManager, "aws"); !errors.Is(err, registry.ErrInUse) {
		t.Fatalf("Delete while associated = %v", err)
	}

	before := names(entries())
	if a, err = reg.Remove(ctx, registry.TypeAWSSecretsManager, "aws", ref); err != nil || a.Status != registry.StatusUnsynced || a.Totals.Deleted != len(before) {
		t.Fatalf("Remove = %+v, %v", a, err)
	}
	if len(entries()) != 0 {
		t.Fatalf("entries left after Remove: %v", names(entries()))
	}
	for _, n := range before {
		s, ok := srv.Get(n)
		if !ok || !s.Deleted || time.Until(s.PurgeAt) < 29*24*time.Hour {
			t.Fatalf("%s after Remove: %+v, %v; want scheduled for deletion", n, s, ok)
		}
	}
	if s, ok := srv.Get("unrelated"); !ok || s.Deleted || s.Value != "not ours" {
		t.Fatal("the unrelated secret was touched")
	}
	if err := reg.Delete(ctx, registry.TypeAWSSecretsManager, "aws"); err != nil {
		t.Fatalf("Delete after Remove = %v", err)
	}
}

func names(m map[string]awssmtest.Secret) []string {
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	return out
}
