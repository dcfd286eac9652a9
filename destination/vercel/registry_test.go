package vercel_test

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/secretsync/secretsync/destination/vercel"
	"github.com/secretsync/secretsync/destination/vercel/verceltest"
	"github.com/secretsync/secretsync/registry"
	"github.com/secretsync/secretsync/registry/kv"
	"github.com/secretsync/secretsync/vaultkv/vaulttest"
)

func TestMain(m *testing.M) { os.Exit(vaulttest.Main(m)) }

// TestRegistryAssociationFromVault associates a KV v2 secret of the real
// Vault with Vercel projects (the local server): Set syncs each key to a
// variable named by the destination's template, a change in Vault arrives
// on the next Set, and Remove deletes the variables and nothing else. One
// destination keeps encrypted variables under a template of its own, the
// other sensitive ones under the default template.
func TestRegistryAssociationFromVault(t *testing.T) {
	ctx := context.Background()
	vs := vaulttest.Get(t)
	c := vs.Client(t)
	conn := vs.Conn(t)
	mount := vs.NewMount(t)
	if _, err := c.KVv2(mount).Put(ctx, "app/prod", map[string]any{"DB": "db-1", "KEY": "k-1"}); err != nil {
		t.Fatal(err)
	}

	srv := verceltest.New(t, &verceltest.Options{TeamID: "team_reg"})
	bystander, err := srv.Create(verceltest.Var{Key: "APP_PROD_OTHER", Value: "not ours", Type: vercel.TypeEncrypted, Target: []string{vercel.Production}})
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.New(&registry.Options{
		Drivers: map[string]registry.Driver{registry.TypeVercelProject: vercel.Driver(&vercel.DriverOptions{BaseURL: srv.URL, MinBackoff: time.Millisecond})},
		Source:  kv.SecretSource(conn),
	})
	defer reg.Close()
	targets := []string{vercel.Production, vercel.Preview}
	if _, err := reg.Put(ctx, "web", registry.VercelProject{
		AccessToken: "test-token", ProjectID: srv.ProjectID(), TeamID: "team_reg", DeploymentEnvironments: targets,
		SyncOptions: registry.SyncOptions{SecretNameTemplate: `{{ .SecretPath | replace "/" "_" | uppercase }}_{{ .SecretKey }}`},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Put(ctx, "web-sensitive", registry.VercelProject{
		AccessToken: "test-token", ProjectID: srv.ProjectID(), TeamID: "team_reg",
		DeploymentEnvironments: []string{vercel.Production}, VariableType: vercel.TypeSensitive,
	}); err != nil {
		t.Fatal(err)
	}
	ref := registry.SecretRef{Mount: mount, Name: "app/prod"}

	a, err := reg.Set(ctx, registry.TypeVercelProject, "web", ref, nil)
	if err != nil || a.Status != registry.StatusSynced || a.Totals.Created != 2 {
		t.Fatalf("Set = %+v, %v", a, err)
	}
	want := func(key, value string) verceltest.Var {
		t.Helper()
		v, ok := srv.Find(key, targets)
		if !ok || v.Value != value || v.Type != vercel.TypeEncrypted || v.Comment != vercel.Marker(a.SyncName) {
			t.Fatalf("%s = %v (found %v), want %q marked for %s", key, v, ok, value, a.SyncName)
		}
		return v
	}
	db := want("APP_PROD_DB", "db-1")
	want("APP_PROD_KEY", "k-1")

	s, err := reg.Set(ctx, registry.TypeVercelProject, "web-sensitive", ref, nil)
	if err != nil || s.Status != registry.StatusSynced || s.Totals.Created != 2 {
		t.Fatalf("Set (sensitive) = %+v, %v", s, err)
	}
	sensitive := func() map[string]verceltest.Var {
		out := map[string]verceltest.Var{}
		for _, v := range srv.Vars() {
			if v.Type == vercel.TypeSensitive {
				out[v.Key] = v
			}
		}
		return out
	}
	var sdb string
	for k, v := range sensitive() {
		// The default template, vault/<accessor>/app/prod/<key>, fitted to
		// Vercel's names.
		if !strings.HasPrefix(k, "vault_") || !slices.Equal(v.Target, []string{vercel.Production}) || v.Comment != vercel.Marker(s.SyncName) {
			t.Fatalf("sensitive variable %v", v)
		}
		if strings.HasSuffix(k, "_app_prod_DB") && v.Value == "db-1" {
			sdb = k
		}
	}
	if len(sensitive()) != 2 || sdb == "" {
		t.Fatalf("sensitive variables %v", sensitive())
	}

	// A change in Vault arrives with the next Set (a refresh).
	if _, err := c.KVv2(mount).Patch(ctx, "app/prod", map[string]any{"DB": "db-2"}); err != nil {
		t.Fatal(err)
	}
	srv.ResetCounts()
	if a, err = reg.Set(ctx, registry.TypeVercelProject, "web", ref, nil); err != nil || a.Totals.Updated != 1 || a.Totals.Unchanged != 1 {
		t.Fatalf("refresh = %+v, %v", a, err)
	}
	t.Logf("refresh of 2 keys, 1 changed: %v", srv.Counts())
	if got := want("APP_PROD_DB", "db-2"); got.ID != db.ID {
		t.Fatalf("the update made a new variable: %v, was %v", got, db)
	}
	if s, err = reg.Set(ctx, registry.TypeVercelProject, "web-sensitive", ref, nil); err != nil || s.Totals.Updated != 1 || s.Totals.Unchanged != 1 {
		t.Fatalf("refresh (sensitive) = %+v, %v", s, err)
	}
	if v := sensitive()[sdb]; v.Value != "db-2" {
		t.Fatalf("%s = %v after the refresh", sdb, v)
	}
	// An idle refresh writes nothing.
	srv.ResetCounts()
	if a, err = reg.Set(ctx, registry.TypeVercelProject, "web", ref, nil); err != nil || a.Totals.Changed() != 0 {
		t.Fatalf("idle refresh = %+v, %v", a, err)
	}
	if c := srv.Counts(); c[verceltest.OpCreate]+c[verceltest.OpEdit]+c[verceltest.OpDelete] != 0 {
		t.Fatalf("idle refresh wrote: %v", c)
	}

	// Remove deletes the association's variables, and nothing else.
	if a, err = reg.Remove(ctx, registry.TypeVercelProject, "web", ref); err != nil || a.Status != registry.StatusUnsynced || a.Totals.Deleted != 2 {
		t.Fatalf("Remove = %+v, %v", a, err)
	}
	if s, err = reg.Remove(ctx, registry.TypeVercelProject, "web-sensitive", ref); err != nil || s.Status != registry.StatusUnsynced || s.Totals.Deleted != 2 {
		t.Fatalf("Remove (sensitive) = %+v, %v", s, err)
	}
	vars := srv.Vars()
	if len(vars) != 1 || vars[0].ID != bystander.ID || vars[0].Value != "not ours" || vars[0].UpdatedAt != bystander.UpdatedAt {
		t.Fatalf("after Remove: %v", vars)
	}
	for _, r := range srv.Requests() {
		if r.TeamID != "team_reg" {
			t.Fatalf("%s %s without the team", r.Method, r.Path)
		}
	}
}
