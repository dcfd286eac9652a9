package awssm_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secretsync/secretsync/destination/awssm"
	"github.com/secretsync/secretsync/destination/awssm/awssmtest"
	"github.com/secretsync/secretsync/registry"
	"github.com/secretsync/secretsync/registry/kv"
	"github.com/secretsync/secretsync/vaultkv/vaulttest"
)

// TestRegistryAssociationFromVault associates a KV v2 secret of a real
// Vault with an aws-sm destination on the local server: Set syncs it (one
// JSON entry, secret-path granularity), a change in Vault arrives with the
// next Set, an idle Set writes nothing, and Remove schedules the entry for
// deletion with the default recovery window. Then the same with
// secret-key granularity, a name template and force_delete.
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
	reg := registry.New(&registry.Options{
		Drivers: map[string]registry.Driver{registry.TypeAWSSecretsManager: awssm.Driver(&awssm.DriverOptions{
			Endpoint: srv.URL, HTTPClient: srv.HTTPClient(), ClientOptions: []func(*secretsmanager.Options){fastRetries},
		})},
		Source: kv.SecretSource(conn),
	})
	if _, err := reg.Put(ctx, "aws", registry.AWSSecretsManager{
		AccessKeyID: registry.Credential(id), SecretAccessKey: registry.Credential(key), Region: srv.Region(),
		SyncOptions: registry.SyncOptions{CustomTags: map[string]string{"team": "payments"}},
	}); err != nil {
		t.Fatal(err)
	}
	ref := registry.SecretRef{Mount: mount, Name: "app/prod"}
	srv.ResetCounts()
	a, err := reg.Set(ctx, registry.TypeAWSSecretsManager, "aws", ref, nil)
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
	// secret-path granularity, the default of aws-sm: the whole secret is
	// one entry, a JSON object, named by the default template.
	one := func() (string, map[string]string) {
		t.Helper()
		es := entries()
		if len(es) != 1 {
			t.Fatalf("entries: %v, want one", names(es))
		}
		for name, s := range es {
			if !strings.HasPrefix(name, "vault/") || !strings.HasSuffix(name, "/app/prod") {
				t.Fatalf("entry named %q, want vault/<mount accessor>/app/prod", name)
			}
			var obj map[string]string
			if err := json.Unmarshal([]byte(s.Value), &obj); err != nil {
				t.Fatalf("%s does not hold a JSON object: %v", name, err)
			}
			return name, obj
		}
		return "", nil
	}
	holds("db-1", "k-1")
	if name, obj := one(); obj["DB"] != "db-1" || obj["KEY"] != "k-1" || len(obj) != 2 {
		t.Fatalf("%s holds the wrong keys (%d)", name, len(obj))
	}

	t.Logf("Set (create): %s", fmtCounts(srv.Counts()))

	if _, err := c.KVv2(mount).Patch(ctx, "app/prod", map[string]any{"DB": "db-2"}); err != nil {
		t.Fatal(err)
	}
	srv.ResetCounts()
	if a, err = reg.Set(ctx, registry.TypeAWSSecretsManager, "aws", ref, nil); err != nil || a.Status != registry.StatusSynced || a.Totals.Updated != 1 {
		t.Fatalf("refresh = %+v, %v", a, err)
	}
	holds("db-2", "k-1")
	if name, obj := one(); obj["DB"] != "db-2" || obj["KEY"] != "k-1" {
		t.Fatalf("%s was not updated", name)
	}
	t.Logf("Set (update): %s", fmtCounts(srv.Counts()))
	srv.ResetCounts()
	if a, err = reg.Set(ctx, registry.TypeAWSSecretsManager, "aws", ref, nil); err != nil || a.Totals.Changed() != 0 {
		t.Fatalf("idle Set = %+v, %v", a, err)
	}
	if c := srv.Counts(); len(c) != 2 || c["ListSecrets"] != 1 || c["BatchGetSecretValue"] != 1 {
		t.Fatalf("idle Set: %v, want one ListSecrets and one BatchGetSecretValue", c)
	}
	if err := reg.Delete(ctx, registry.TypeAWSSecretsManager, "aws", nil); !errors.Is(err, registry.ErrInUse) {
		t.Fatalf("Delete while associated = %v", err)
	}

	before := names(entries())
	srv.ResetCounts()
	if a, err = reg.Remove(ctx, registry.TypeAWSSecretsManager, "aws", ref); err != nil || a.Status != registry.StatusUnsynced || a.Totals.Deleted != len(before) {
		t.Fatalf("Remove = %+v, %v", a, err)
	}
	t.Logf("Remove: %s", fmtCounts(srv.Counts()))
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
	if err := reg.Delete(ctx, registry.TypeAWSSecretsManager, "aws", nil); err != nil {
		t.Fatalf("Delete after Remove = %v", err)
	}

	// secret-key granularity: one entry per key, the rendered names
	// normalized to AWS's rules; deletion without recovery.
	if _, err := c.KVv2(mount).Put(ctx, "app/keys", map[string]any{"API KEY": "a-1", "token": "t-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Put(ctx, "aws-keys", registry.AWSSecretsManager{
		AccessKeyID: registry.Credential(id), SecretAccessKey: registry.Credential(key), Region: srv.Region(), ForceDelete: true,
		SyncOptions: registry.SyncOptions{Granularity: registry.GranularitySecretKey, SecretNameTemplate: "{{ .SecretPath }}/{{ .SecretKey | uppercase }}"},
	}); err != nil {
		t.Fatal(err)
	}
	ref = registry.SecretRef{Mount: mount, Name: "app/keys"}
	if a, err = reg.Set(ctx, registry.TypeAWSSecretsManager, "aws-keys", ref, nil); err != nil || a.Totals.Created != 2 {
		t.Fatalf("Set with secret-key granularity = %+v, %v", a, err)
	}
	if s, _ := srv.Get("app/keys/API_KEY"); s.Value != "a-1" || s.Tags[awssm.TagOwner] != a.SyncName {
		t.Fatalf("app/keys/API_KEY = %+v", s)
	}
	if s, _ := srv.Get("app/keys/TOKEN"); s.Value != "t-1" {
		t.Fatalf("app/keys/TOKEN = %+v", s)
	}
	if a, err = reg.Remove(ctx, registry.TypeAWSSecretsManager, "aws-keys", ref); err != nil || a.Totals.Deleted != 2 {
		t.Fatalf("Remove = %+v, %v", a, err)
	}
	for _, n := range []string{"app/keys/API_KEY", "app/keys/TOKEN"} {
		if _, ok := srv.Get(n); ok {
			t.Errorf("%s is left after a Remove with force_delete", n)
		}
	}
}

func names(m map[string]awssmtest.Secret) []string {
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	return out
}
