package vaultkv_test

import (
	"context"
	"errors"
	"net/http"
	"path"
	"strconv"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/vaultkv"
	"github.com/secretsync/secretsync/vaultkv/vaulttest"
)

// customMetadata reads a secret's custom_metadata with the root token.
func customMetadata(t *testing.T, c *api.Client, mount, p string) map[string]any {
	t.Helper()
	sec, err := c.Logical().ReadWithContext(context.Background(), path.Join(mount, "metadata", p))
	if err != nil || sec == nil {
		t.Fatalf("read metadata of %s: %v", p, err)
	}
	cm, _ := sec.Data["custom_metadata"].(map[string]any)
	return cm
}

// Marking ownership, taking it back after a lost race, and adoption touch
// only the owner key: an operator's other custom metadata stays (issue
// #10, defect 6).
func TestOwnershipKeepsOtherMetadata(t *testing.T) {
	srv := vaulttest.Get(t)
	ctx := context.Background()
	mount := srv.NewMount(t)
	root := srv.Client(t)
	operatorMeta := func(key string) {
		t.Helper()
		if _, err := root.Logical().WriteWithContext(ctx, path.Join(mount, "metadata", "team", key), map[string]any{
			"custom_metadata": map[string]any{"team": "payments"},
		}); err != nil {
			t.Fatal(err)
		}
	}
	wantMeta := func(what, key string, owned bool) {
		t.Helper()
		cm := customMetadata(t, root, mount, path.Join("team", key))
		if cm["team"] != "payments" {
			t.Errorf("%s: custom_metadata = %v, the operator's team=payments is gone", what, cm)
		}
		if got := cm[vaultkv.OwnerKey] == "sync-a"; got != owned {
			t.Errorf("%s: custom_metadata = %v, want owned=%v", what, cm, owned)
		}
	}
	p := srv.RequestProxy(t)
	kv, err := vaultkv.New(ctx, connThrough(t, p, srv.Token, 0, 0), &vaultkv.Options{Mount: mount, Path: "team", Layout: vaultkv.SecretKey, Owner: "sync-a"})
	if err != nil {
		t.Fatal(err)
	}

	// 1. The operator prepared the secret's metadata; the sync creates it.
	operatorMeta("CREATED")
	errs, err := kv.Apply(ctx, []destination.Change{{Key: "CREATED", Value: "v"}})
	if err != nil || errs[0] != nil {
		t.Fatalf("create: %v %v", errs, err)
	}
	wantMeta("create", "CREATED", true)

	// 2. The operator creates the secret between the sync's marking and
	// its write: the sync loses the race and takes its marker back.
	operatorMeta("RACED")
	p.Intercept(func(r *http.Request) vaulttest.Verdict {
		if isDataWrite(r, mount) && r.URL.Path == "/v1/"+path.Join(mount, "data", "team", "RACED") {
			if _, err := root.KVv2(mount).Put(ctx, "team/RACED", map[string]any{"value": "operator's"}); err != nil {
				t.Error(err)
			}
		}
		return vaulttest.Forward
	})
	errs, err = kv.Apply(ctx, []destination.Change{{Key: "RACED", Value: "ours"}})
	p.Intercept(nil)
	if err != nil || !errorsIsConflict(errs[0]) {
		t.Fatalf("create that lost the race: %v %v, want ErrConflict", errs, err)
	}
	wantMeta("rollback", "RACED", false)
	if v, _, _ := newBackdoor(t, srv, mount, "team", "value").getKey(ctx, "RACED"); v != "operator's" {
		t.Fatalf("RACED = %q, want the operator's value", v)
	}

	// 3. Adoption of the operator's secret.
	adopt := newKV(t, srv, vaultkv.Options{Mount: mount, Path: "team", Layout: vaultkv.SecretKey, Owner: "sync-a", AdoptUnowned: true})
	operatorMeta("ADOPTED")
	s, err := root.KVv2(mount).Put(ctx, "team/ADOPTED", map[string]any{"value": "operator's"})
	if err != nil {
		t.Fatal(err)
	}
	errs, err = adopt.Apply(ctx, []destination.Change{{Key: "ADOPTED", Value: "ours", Expect: strconv.Itoa(s.VersionMetadata.Version)}})
	if err != nil || errs[0] != nil {
		t.Fatalf("adopt: %v %v", errs, err)
	}
	wantMeta("adoption", "ADOPTED", true)
}

func errorsIsConflict(err error) bool { return errors.Is(err, destination.ErrConflict) }
