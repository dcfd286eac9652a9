package kv_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/secretsync/secretsync/connection"
	"github.com/secretsync/secretsync/registry"
	"github.com/secretsync/secretsync/registry/kv"
	"github.com/secretsync/secretsync/state"
	"github.com/secretsync/secretsync/vaultkv/vaulttest"
)

// TestRegistryRemoveWithoutSourceVault: against the real Vault, a secret
// synced to a vault-kv destination is unsynced after its mount became
// unreadable: disabled, or the registry's token lost its policy on it.
// Remove deletes the destination's entries, from the sync's state, and
// ends with UNSYNCED: with the Syncer that synced it ("cached"), with one
// rebuilt after the destination's Config changed ("reopened": the secret
// cannot be opened), and with a new registry over the same state store
// ("restart"), where the association is set again while the secret
// cannot be opened.
//
// With the cached Syncer, a disabled mount reads as an empty secret (Vault
// answers 404 for a path no mount serves, which reads as no secret), so
// that case passed before Remove could work without the source too; the
// other five failed with INTERNAL_VAULT_ERROR.
func TestRegistryRemoveWithoutSourceVault(t *testing.T) {
	for _, how := range []string{"mount disabled", "policy revoked"} {
		for _, mode := range []string{"cached", "reopened", "restart"} {
			t.Run(how+", "+mode, func(t *testing.T) {
				testRemoveWithoutSource(t, how, mode)
			})
		}
	}
}

func testRemoveWithoutSource(t *testing.T, how, mode string) {
	ctx := context.Background()
	srv := vaulttest.Get(t)
	c := srv.Client(t)
	srcMount, dstMount := srv.NewMount(t), srv.NewMount(t)
	if _, err := c.KVv2(srcMount).Put(ctx, "app", map[string]any{"DB": "db-1", "API": "api-1"}); err != nil {
		t.Fatal(err)
	}
	// The registry's token reads the source mount and writes the
	// destination mount; "policy revoked" takes the first part away.
	dstPolicy := fmt.Sprintf(`path "%s/*" { capabilities = ["create", "read", "update", "patch", "delete", "list"] }`, dstMount)
	policy := srv.Policy(t, dstPolicy+"\n"+fmt.Sprintf(`path "%s/*" { capabilities = ["read", "list"] }`, srcMount))
	tok, err := c.Auth().Token().CreateWithContext(ctx, &api.TokenCreateRequest{Policies: []string{policy}})
	if err != nil {
		t.Fatal(err)
	}
	conn := srv.TokenConn(t, tok.Auth.ClientToken)
	store := state.NewMemory()
	newRegistry := func(conn *connection.Conn) *registry.Registry {
		reg := registry.New(&registry.Options{
			Drivers: map[string]registry.Driver{registry.TypeVaultKV: kv.Driver(map[string]*connection.Conn{"main": conn}, "registry-test")},
			Source:  kv.SecretSource(conn),
			Store:   store,
		})
		if _, err := reg.Put(ctx, "replica", registry.VaultKV{Connection: "main", Mount: dstMount, Layout: "secret-key"}); err != nil {
			t.Fatal(err)
		}
		return reg
	}
	reg := newRegistry(conn)
	defer reg.Close()
	ref := registry.SecretRef{Mount: srcMount, Name: "app"}
	opts := registry.AssociationOptions{KeySchema: "app/{{secretKey}}"}
	if a, err := reg.Set(ctx, registry.TypeVaultKV, "replica", ref, &opts); err != nil || a.Status != registry.StatusSynced || a.Totals.Created != 2 {
		t.Fatalf("Set = %+v, %v", a, err)
	}
	entries := func() []string {
		t.Helper()
		s, err := c.Logical().ListWithContext(ctx, dstMount+"/metadata/app")
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		if s != nil {
			for _, k := range s.Data["keys"].([]any) {
				// A deleted key keeps its metadata; only a live version counts.
				if v, err := c.KVv2(dstMount).Get(ctx, "app/"+k.(string)); err == nil && v.Data != nil {
					out = append(out, k.(string))
				} else if err != nil && !errors.Is(err, api.ErrSecretNotFound) {
					t.Fatal(err)
				}
			}
		}
		return out
	}
	if got := fmt.Sprint(entries()); got != "[API DB]" {
		t.Fatalf("after Set the destination holds %s", got)
	}

	switch how {
	case "mount disabled":
		if err := c.Sys().UnmountWithContext(ctx, srcMount); err != nil {
			t.Fatal(err)
		}
	case "policy revoked":
		if err := c.Sys().PutPolicyWithContext(ctx, policy, dstPolicy); err != nil {
			t.Fatal(err)
		}
	}
	switch mode {
	case "reopened":
		if _, err := reg.Put(ctx, "replica", registry.VaultKV{Connection: "main", Mount: dstMount, Layout: "secret-key"}); err != nil {
			t.Fatal(err)
		}
	case "restart":
		// A restarted process has a connection of its own (the KVs of
		// one connection share its mount checks for a while).
		reg = newRegistry(srv.TokenConn(t, tok.Auth.ClientToken))
		defer reg.Close()
		a, err := reg.Set(ctx, registry.TypeVaultKV, "replica", ref, &opts)
		if err == nil || a.Status != registry.StatusInternalVaultError {
			t.Fatalf("Set after a restart = %+v, %v", a, err)
		}
	}

	a, err := reg.Remove(ctx, registry.TypeVaultKV, "replica", ref)
	if err != nil || a.Status != registry.StatusUnsynced || a.Totals.Deleted != 2 {
		t.Fatalf("Remove = %+v, %v", a, err)
	}
	if got := entries(); len(got) != 0 {
		t.Fatalf("after Remove the destination holds %v", got)
	}
	if list, _ := reg.Associations(ctx, registry.TypeVaultKV, "replica"); len(list) != 0 {
		t.Fatalf("after Remove: %+v", list)
	}
}
