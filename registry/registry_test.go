package registry_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	gosync "sync"
	"sync/atomic"
	"testing"

	"github.com/secretsync/secretsync/audit"
	"github.com/secretsync/secretsync/conflict"
	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/registry"
	"github.com/secretsync/secretsync/state"
	"github.com/secretsync/secretsync/sync"
)

const canary = "canary-5ec7e7-value"

func TestCredentialsNeverShown(t *testing.T) {
	cfgs := []registry.Config{
		registry.AWSSecretsManager{AccessKeyID: canary, SecretAccessKey: canary, Region: "us-west-1"},
		registry.AzureKeyVault{KeyVaultURI: "https://kv.vault.azure.net", TenantID: "t", ClientID: "c", ClientSecret: canary},
		registry.GCPSecretManager{Credentials: registry.Credential(`{"private_key":"` + canary + `"}`)},
		registry.GitHubRepository{AccessToken: canary, RepositoryOwner: "acme", RepositoryName: "api"},
		registry.VercelProject{AccessToken: canary, ProjectID: "prj_1", DeploymentEnvironments: []string{"preview"}},
		&withNested{Inner: inner{Key: canary}, Plain: "shown"},
	}
	ctx := context.Background()
	reg := registry.New(nil)
	for _, cfg := range cfgs {
		info, err := reg.Put(ctx, "d1", cfg)
		if err != nil {
			t.Fatalf("Put %s: %v", cfg.Type(), err)
		}
		got, err := reg.Get(ctx, cfg.Type(), "d1")
		if err != nil {
			t.Fatal(err)
		}
		js, _ := json.Marshal(got)
		cfgJS, _ := json.Marshal(cfg)
		for _, s := range []string{
			fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), fmt.Sprintf("%s %q %x", cfg, cfg, cfg),
			fmt.Sprintf("%+v", info), fmt.Sprintf("%#v", got), string(js), string(cfgJS),
		} {
			if strings.Contains(s, canary) {
				t.Errorf("%s: the credential shows in %s", cfg.Type(), s)
			}
		}
	}
	got, _ := reg.Get(ctx, registry.TypeAWSSecretsManager, "d1")
	want := map[string]any{"access_key_id": "*****", "secret_access_key": "*****", "region": "us-west-1"}
	if fmt.Sprint(got.ConnectionDetails) != fmt.Sprint(want) {
		t.Errorf("connection details %v, want %v", got.ConnectionDetails, want)
	}
	if c := registry.Credential(canary); c.Reveal() != canary || registry.Credential("").String() != "" {
		t.Error("Reveal returns the value, and an empty credential prints empty")
	}
	nested, _ := reg.Get(ctx, "custom", "d1")
	if nested.ConnectionDetails["plain"] != "shown" {
		t.Errorf("plain fields are shown: %v", nested.ConnectionDetails)
	}
}

type inner struct{ Key registry.Credential }

type withNested struct {
	Inner inner  `json:"inner"`
	Plain string `json:"plain"`
}

func (*withNested) Type() string    { return "custom" }
func (*withNested) Validate() error { return nil }

func TestValidation(t *testing.T) {
	cases := []struct {
		cfg   registry.Config
		field string // "" when valid
	}{
		{registry.VaultKV{Connection: "prod", Mount: "kv"}, ""},
		{registry.VaultKV{Connection: "prod", Mount: "kv", Layout: "secret-key"}, ""},
		{registry.VaultKV{Mount: "kv"}, "connection"},
		{registry.VaultKV{Connection: "prod"}, "mount"},
		{registry.VaultKV{Connection: "prod", Mount: "/kv"}, "mount"},
		{registry.VaultKV{Connection: "prod", Mount: "kv", Layout: "flat"}, "layout"},
		{registry.AWSSecretsManager{}, ""},
		{registry.AWSSecretsManager{AccessKeyID: canary}, "secret_access_key"},
		{registry.AWSSecretsManager{SecretAccessKey: canary}, "access_key_id"},
		{registry.AWSSecretsManager{Region: "Mars"}, "region"},
		{registry.AzureKeyVault{KeyVaultURI: "https://kv.vault.azure.net", TenantID: "t", ClientID: "c", ClientSecret: canary}, ""},
		{registry.AzureKeyVault{TenantID: "t", ClientID: "c", ClientSecret: canary}, "key_vault_uri"},
		{registry.AzureKeyVault{KeyVaultURI: "http://kv", TenantID: "t", ClientID: "c", ClientSecret: canary}, "key_vault_uri"},
		{registry.AzureKeyVault{KeyVaultURI: "https://kv", ClientID: "c", ClientSecret: canary}, "tenant_id"},
		{registry.AzureKeyVault{KeyVaultURI: "https://kv", TenantID: "t", ClientSecret: canary}, "client_id"},
		{registry.AzureKeyVault{KeyVaultURI: "https://kv", TenantID: "t", ClientID: "c"}, "client_secret"},
		{registry.GCPSecretManager{Credentials: `{"type":"service_account"}`}, ""},
		{registry.GCPSecretManager{}, "credentials"},
		{registry.GCPSecretManager{Credentials: canary}, "credentials"},
		{registry.GitHubRepository{AccessToken: canary, RepositoryOwner: "o", RepositoryName: "r"}, ""},
		{registry.GitHubRepository{RepositoryOwner: "o", RepositoryName: "r"}, "access_token"},
		{registry.GitHubRepository{AccessToken: canary, RepositoryName: "r"}, "repository_owner"},
		{registry.GitHubRepository{AccessToken: canary, RepositoryOwner: "o"}, "repository_name"},
		{registry.GitHubRepository{AccessToken: canary, RepositoryOwner: "o", RepositoryName: "o/r"}, "repository_name"},
		{registry.VercelProject{AccessToken: canary, ProjectID: "p", DeploymentEnvironments: []string{"production", "preview"}}, ""},
		{registry.VercelProject{ProjectID: "p", DeploymentEnvironments: []string{"preview"}}, "access_token"},
		{registry.VercelProject{AccessToken: canary, DeploymentEnvironments: []string{"preview"}}, "project_id"},
		{registry.VercelProject{AccessToken: canary, ProjectID: "p"}, "deployment_environments"},
		{registry.VercelProject{AccessToken: canary, ProjectID: "p", DeploymentEnvironments: []string{"staging"}}, "deployment_environments"},
	}
	ctx := context.Background()
	for _, c := range cases {
		reg := registry.New(nil)
		_, err := reg.Put(ctx, "d", c.cfg)
		if c.field == "" {
			if err != nil {
				t.Errorf("%#v: %v", c.cfg, err)
			}
			continue
		}
		var ce *registry.ConfigError
		if !errors.As(err, &ce) || !errors.Is(err, registry.ErrInvalidConfig) || ce.Field != c.field || ce.Type != c.cfg.Type() {
			t.Errorf("%#v: err %v, want a ConfigError on %s", c.cfg, err, c.field)
			continue
		}
		if strings.Contains(err.Error(), canary) {
			t.Errorf("the error shows the value: %v", err)
		}
		if list, _ := reg.List(ctx); len(list) != 0 {
			t.Errorf("a refused Put left %v", list)
		}
	}
}

func TestDestinations(t *testing.T) {
	ctx := context.Background()
	reg := registry.New(nil)
	gh := registry.GitHubRepository{AccessToken: "t", RepositoryOwner: "o", RepositoryName: "r"}
	for _, name := range []string{"b-repo", "a-repo"} {
		if _, err := reg.Put(ctx, name, gh); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := reg.Put(ctx, "store", registry.AWSSecretsManager{Region: "eu-west-1"}); err != nil {
		t.Fatal(err)
	}
	list, err := reg.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(registry.Types(list), list["gh"], list["aws-sm"]) != "[aws-sm gh] [a-repo b-repo] [store]" {
		t.Fatalf("List = %v", list)
	}

	// Bad names and configs change nothing.
	for _, name := range []string{"", "-x", "a/b", "sp ace", string(make([]byte, 65))} {
		_, err := reg.Put(ctx, name, gh)
		var ce *registry.ConfigError
		if !errors.As(err, &ce) || ce.Field != "name" {
			t.Errorf("Put(%q) = %v, want a ConfigError on name", name, err)
		}
	}
	if _, err := reg.Put(ctx, "a-repo", nil); !errors.Is(err, registry.ErrInvalidConfig) {
		t.Errorf("Put(nil) = %v", err)
	}
	if _, err := reg.Put(ctx, "a-repo", registry.GitHubRepository{}); !errors.Is(err, registry.ErrInvalidConfig) {
		t.Errorf("Put of a bad config = %v", err)
	}
	if got, _ := reg.Get(ctx, "gh", "a-repo"); got.ConnectionDetails["repository_name"] != "r" {
		t.Errorf("a refused update changed the destination: %v", got.ConnectionDetails)
	}

	// An update replaces the config.
	gh.RepositoryName = "r2"
	if _, err := reg.Put(ctx, "a-repo", gh); err != nil {
		t.Fatal(err)
	}
	if got, _ := reg.Get(ctx, "gh", "a-repo"); got.ConnectionDetails["repository_name"] != "r2" {
		t.Errorf("after the update: %v", got.ConnectionDetails)
	}

	if _, err := reg.Get(ctx, "gh", "nope"); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("Get of a missing destination = %v", err)
	}
	if _, err := reg.Get(ctx, "aws-sm", "a-repo"); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("names are per type: %v", err)
	}
	if err := reg.Delete(ctx, "gh", "a-repo", nil); err != nil {
		t.Fatal(err)
	}
	if err := reg.Delete(ctx, "gh", "a-repo", nil); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("second Delete = %v", err)
	}
	if _, err := reg.Open(ctx, "gh", "b-repo"); !errors.Is(err, registry.ErrNoDriver) {
		t.Errorf("Open with no driver = %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := reg.List(cancelled); !errors.Is(err, context.Canceled) {
		t.Errorf("List with a cancelled context = %v", err)
	}
}

// fixture is a registry over in-memory secrets and destinations.
type fixture struct {
	reg     *registry.Registry
	secrets map[registry.SecretRef]*memory.Destination
	dests   map[string]*memory.Destination
	opens   atomic.Int32
	sides   atomic.Int32 // sides opened (sources and destinations) and not closed yet
	failOn  atomic.Bool  // the driver fails
	store   state.Store
	events  *audit.Recorder
}

// testKV is a program's own destination type, named by key schema.
type testKV struct {
	Token registry.Credential `json:"token"`
}

func (testKV) Type() string    { return "test-kv" }
func (testKV) Validate() error { return nil }

func newFixture(t *testing.T, store state.Store) *fixture {
	f := &fixture{secrets: map[registry.SecretRef]*memory.Destination{}, dests: map[string]*memory.Destination{}, store: store, events: audit.NewRecorder()}
	var mu gosync.Mutex
	f.reg = registry.New(&registry.Options{
		Drivers: map[string]registry.Driver{
			"test-kv": func(ctx context.Context, tg registry.Target) (destination.Destination, error) {
				name, cfg := tg.Name, tg.Config
				f.opens.Add(1)
				if f.failOn.Load() {
					return nil, errors.New("github: 401 bad credentials")
				}
				if _, ok := cfg.(testKV); !ok {
					t.Errorf("driver got %T", cfg)
				}
				mu.Lock()
				defer mu.Unlock()
				d := f.dests[name]
				if d == nil {
					d = memory.New(nil)
					f.dests[name] = d
				}
				f.sides.Add(1)
				return &closer{d, f}, nil
			},
		},
		Source: func(ctx context.Context, mount, name string) (destination.Reader, error) {
			mu.Lock()
			defer mu.Unlock()
			s := f.secrets[registry.SecretRef{Mount: mount, Name: name}]
			if s == nil {
				return nil, fmt.Errorf("no secret %s/%s", mount, name)
			}
			f.sides.Add(1)
			return &closer{s, f}, nil
		},
		Store:   store,
		Auditor: f.events,
	})
	if _, err := f.reg.Put(context.Background(), "repo", testKV{Token: "t"}); err != nil {
		t.Fatal(err)
	}
	return f
}

// closer is a side that counts its Close in the fixture.
type closer struct {
	*memory.Destination
	f *fixture
}

func (c *closer) Close() error {
	c.f.sides.Add(-1)
	return nil
}

func (f *fixture) secret(mount, name string, kv map[string]string) registry.SecretRef {
	ref := registry.SecretRef{Mount: mount, Name: name}
	f.secrets[ref] = memory.New(kv)
	return ref
}

func values(t *testing.T, d *memory.Destination) map[string]string {
	t.Helper()
	m, err := d.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for k, s := range m {
		out[k] = s.Value
	}
	return out
}

func TestSetSyncsAndRefreshes(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	prod := f.secret("kv", "app/prod", map[string]string{"DB": "db-1", "KEY": "k-1"})
	a, err := f.reg.Set(ctx, "test-kv", "repo", prod, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.Status != registry.StatusSynced || a.Totals.Created != 2 || a.KeySchema != "kv_app_prod_{{secretKey}}" || a.UpdatedAt.IsZero() {
		t.Fatalf("Set = %+v", a)
	}
	if a.SyncName != "test-kv-repo-kv-app-prod" {
		t.Errorf("sync name %q, want one that says what it links", a.SyncName)
	}
	if got := fmt.Sprint(values(t, f.dests["repo"])); got != "map[kv_app_prod_DB:db-1 kv_app_prod_KEY:k-1]" {
		t.Fatalf("destination holds %s", got)
	}

	// A second secret on the same destination manages its own keys.
	dev := f.secret("kv", "app/dev", map[string]string{"DB": "db-dev"})
	if _, err := f.reg.Set(ctx, "test-kv", "repo", dev, nil); err != nil {
		t.Fatal(err)
	}
	// Set again: a refresh that picks up the change.
	f.secrets[prod].Set("DB", "db-2")
	a, err = f.reg.Set(ctx, "test-kv", "repo", prod, nil)
	if err != nil || a.Totals.Updated != 1 || a.Totals.Unchanged != 1 {
		t.Fatalf("refresh = %+v, %v", a, err)
	}
	if got := values(t, f.dests["repo"]); got["kv_app_prod_DB"] != "db-2" || got["kv_app_dev_DB"] != "db-dev" || len(got) != 3 {
		t.Fatalf("destination holds %v", got)
	}
	list, err := f.reg.Associations(ctx, "test-kv", "repo")
	if err != nil || len(list) != 2 || list[0].Secret != dev || list[1].Secret != prod {
		t.Fatalf("Associations = %+v, %v", list, err)
	}
	if info, _ := f.reg.Get(ctx, "test-kv", "repo"); info.Associations != 2 {
		t.Errorf("Info.Associations = %d", info.Associations)
	}

	// Another association with a schema in use is refused, and nothing changes.
	other := f.secret("kv", "other", map[string]string{"DB": "x"})
	_, err = f.reg.Set(ctx, "test-kv", "repo", other, &registry.AssociationOptions{KeySchema: "kv_app_dev_{{secretKey}}"})
	var ce *registry.ConfigError
	if !errors.As(err, &ce) || ce.Field != "key_schema" {
		t.Fatalf("Set with a schema in use = %v", err)
	}
	for _, bad := range []registry.AssociationOptions{{KeySchema: "{{nope}}"}, {KeySchema: "NO_PLACEHOLDER"}} {
		if _, err := f.reg.Set(ctx, "test-kv", "repo", other, &bad); !errors.Is(err, registry.ErrInvalidConfig) {
			t.Errorf("Set with schema %q = %v", bad.KeySchema, err)
		}
	}
	for _, ref := range []registry.SecretRef{{Mount: "", Name: "x"}, {Mount: "kv", Name: ""}, {Mount: "kv/", Name: "x"}, {Mount: "kv", Name: "/x"}} {
		if _, err := f.reg.Set(ctx, "test-kv", "repo", ref, nil); !errors.Is(err, registry.ErrInvalidConfig) {
			t.Errorf("Set(%+v) = %v", ref, err)
		}
	}
	if list, _ := f.reg.Associations(ctx, "test-kv", "repo"); len(list) != 2 {
		t.Fatalf("refused Sets left %d associations", len(list))
	}
	if _, err := f.reg.Set(ctx, "gh", "nope", prod, nil); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("Set on a missing destination = %v", err)
	}
	if _, err := f.reg.Associations(ctx, "gh", "nope"); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("Associations of a missing destination = %v", err)
	}

	// The sync's events carry the association's sync name.
	var synced int
	for _, e := range f.events.Events() {
		if e.Type == audit.SecretSynced && e.Sync == a.SyncName {
			synced++
		}
	}
	if synced != 3 {
		t.Errorf("%d SECRET_SYNCED events for %s, want 3 (2 created, 1 updated)", synced, a.SyncName)
	}
}

func TestFailuresAreRecordedAndRetried(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	ref := f.secret("kv", "app", map[string]string{"A": canary})
	f.failOn.Store(true)
	a, err := f.reg.Set(ctx, "test-kv", "repo", ref, nil)
	if err == nil || a.Status != registry.StatusClientSideError || !strings.Contains(a.Message, "bad credentials") {
		t.Fatalf("Set with a failing driver = %+v, %v", a, err)
	}
	if strings.Contains(a.Message, canary) || strings.Contains(err.Error(), canary) {
		t.Fatal("a value shows in the failure")
	}
	// The link is kept, so that the failure shows, and blocks Delete.
	var inUse *registry.InUseError
	if err := f.reg.Delete(ctx, "test-kv", "repo", nil); !errors.As(err, &inUse) || inUse.Associations != 1 {
		t.Fatalf("Delete = %v", err)
	}
	// Failing since the first failure, through the next ones.
	first := a.FailingSince
	if first.IsZero() || !first.Equal(a.UpdatedAt) {
		t.Fatalf("FailingSince = %v, want the first failure's time %v", first, a.UpdatedAt)
	}
	if a, _ = f.reg.Set(ctx, "test-kv", "repo", ref, nil); !a.FailingSince.Equal(first) || a.UpdatedAt.Before(first) {
		t.Fatalf("a second failure: FailingSince %v, UpdatedAt %v; want %v and later", a.FailingSince, a.UpdatedAt, first)
	}
	f.failOn.Store(false)
	if a, err = f.reg.Set(ctx, "test-kv", "repo", ref, nil); err != nil || a.Status != registry.StatusSynced || !strings.HasPrefix(a.Message, "synced: ") {
		t.Fatalf("retry = %+v, %v", a, err)
	}
	if !a.FailingSince.IsZero() {
		t.Fatalf("FailingSince after a success = %v", a.FailingSince)
	}

	// A secret that cannot be opened.
	missing := registry.SecretRef{Mount: "kv", Name: "missing"}
	if a, err := f.reg.Set(ctx, "test-kv", "repo", missing, nil); err == nil || a.Status != registry.StatusInternalVaultError {
		t.Fatalf("Set of a missing secret = %+v, %v", a, err)
	}

	if _, err := registry.New(nil).Set(ctx, "test-kv", "repo", ref, nil); !errors.Is(err, registry.ErrNoSource) {
		t.Errorf("Set with no Source = %v", err)
	}
}

func TestRemoveUnsyncsManagedKeysOnly(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	ref := f.secret("kv", "app", map[string]string{"A": "1", "B": "2"})
	if _, err := f.reg.Set(ctx, "test-kv", "repo", ref, &registry.AssociationOptions{KeySchema: "APP_{{secretKey}}"}); err != nil {
		t.Fatal(err)
	}
	dst := f.dests["repo"]
	dst.Set("OTHER", "kept") // not under the schema: unmanaged
	dst.Set("APP_LATE", "x") // under the schema, but never synced by this association

	// A new config makes the association open the destination again; the
	// driver now fails, and the association stays, marked failed.
	f.failOn.Store(true)
	if _, err := f.reg.Put(ctx, "repo", testKV{Token: "t2"}); err != nil {
		t.Fatal(err)
	}
	opens := f.opens.Load()
	a, err := f.reg.Remove(ctx, "test-kv", "repo", ref)
	if err == nil || a.Status != registry.StatusClientSideError || f.opens.Load() != opens+1 {
		t.Fatalf("Remove with a failing driver = %+v, %v (opens %d -> %d)", a, err, opens, f.opens.Load())
	}
	if list, _ := f.reg.Associations(ctx, "test-kv", "repo"); len(list) != 1 || list[0].Status != registry.StatusClientSideError {
		t.Fatalf("after a failed Remove: %+v", list)
	}
	f.failOn.Store(false)
	a, err = f.reg.Remove(ctx, "test-kv", "repo", ref)
	if err != nil || a.Status != registry.StatusUnsynced || a.Totals.Deleted != 2 {
		t.Fatalf("Remove = %+v, %v", a, err)
	}
	if got := fmt.Sprint(values(t, dst)); got != "map[APP_LATE:x OTHER:kept]" {
		t.Fatalf("after Remove the destination holds %s", got)
	}
	if list, _ := f.reg.Associations(ctx, "test-kv", "repo"); len(list) != 0 {
		t.Fatalf("after Remove: %+v", list)
	}
	// Removing again, or removing what never was, succeeds.
	if a, err := f.reg.Remove(ctx, "test-kv", "repo", ref); err != nil || a.Status != registry.StatusUnsynced {
		t.Fatalf("second Remove = %+v, %v", a, err)
	}
	if err := f.reg.Delete(ctx, "test-kv", "repo", nil); err != nil {
		t.Fatalf("Delete after Remove = %v", err)
	}
	if _, err := f.reg.Remove(ctx, "test-kv", "repo", ref); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("Remove on a deleted destination = %v", err)
	}
}

func TestDisableDeletion(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	ref := f.secret("kv", "app", map[string]string{"A": "1", "B": "2"})
	opts := registry.AssociationOptions{KeySchema: "{{secretKey}}", DisableDeletion: true}
	if _, err := f.reg.Set(ctx, "test-kv", "repo", ref, &opts); err != nil {
		t.Fatal(err)
	}
	f.secrets[ref].Delete("B")
	if a, err := f.reg.Set(ctx, "test-kv", "repo", ref, &opts); err != nil || a.Totals.Deleted != 0 || !a.DisableDeletion {
		t.Fatalf("Set = %+v, %v", a, err)
	}
	a, err := f.reg.Remove(ctx, "test-kv", "repo", ref)
	if err != nil || a.Status != registry.StatusUnsynced {
		t.Fatalf("Remove = %+v, %v", a, err)
	}
	if got := fmt.Sprint(values(t, f.dests["repo"])); got != "map[A:1 B:2]" {
		t.Fatalf("with deletion disabled the destination holds %s", got)
	}
	if list, _ := f.reg.Associations(ctx, "test-kv", "repo"); len(list) != 0 {
		t.Fatalf("the link stays: %+v", list)
	}
}

// TestStateOutlivesTheRegistry: a new registry over the same Store sees
// the baselines of the old one, so a restart is not a first sync.
func TestStateOutlivesTheRegistry(t *testing.T) {
	ctx := context.Background()
	store := state.NewMemory()
	f := newFixture(t, store)
	ref := f.secret("kv", "app", map[string]string{"A": "1"})
	if _, err := f.reg.Set(ctx, "test-kv", "repo", ref, nil); err != nil {
		t.Fatal(err)
	}
	g := newFixture(t, store)
	g.secrets[ref] = f.secrets[ref]
	g.dests["repo"] = f.dests["repo"]
	f.dests["repo"].Set("kv_app_A", "changed at the destination")
	a, err := g.reg.Set(ctx, "test-kv", "repo", ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	// With the old baseline, the destination's change is drift, flagged;
	// as a first sync it would have been overwritten.
	if a.Status != registry.StatusExternalServiceError || a.Totals.Conflicts != 1 || !strings.Contains(a.Message, "1 conflict(s) flagged") {
		t.Fatalf("Set after restart = %+v", a)
	}
	s, err := g.reg.Syncer(ctx, "test-kv", "repo", ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Resolve(ctx, "A", conflict.KeepSource); err != nil {
		t.Fatal(err)
	}
	if got := values(t, g.dests["repo"])["kv_app_A"]; got != "1" {
		t.Fatalf("after Resolve: %q", got)
	}
	if a, err := g.reg.Set(ctx, "test-kv", "repo", ref, nil); err != nil || a.Status != registry.StatusSynced {
		t.Fatalf("Set after Resolve = %+v, %v", a, err)
	}
	if _, err := g.reg.Syncer(ctx, "test-kv", "repo", registry.SecretRef{Mount: "kv", Name: "none"}); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("Syncer of no association = %v", err)
	}
}

func TestConcurrentUse(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	var refs []registry.SecretRef
	for i := range 8 {
		refs = append(refs, f.secret("kv", fmt.Sprintf("s%d", i), map[string]string{"K": fmt.Sprint(i)}))
	}
	var wg gosync.WaitGroup
	for i, ref := range refs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				if _, err := f.reg.Set(ctx, "test-kv", "repo", ref, nil); err != nil {
					t.Error(err)
				}
				_, _ = f.reg.Associations(ctx, "test-kv", "repo")
				if i%2 == 0 {
					if _, err := f.reg.Remove(ctx, "test-kv", "repo", ref); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	list, _ := f.reg.Associations(ctx, "test-kv", "repo")
	if len(list) != 4 {
		t.Fatalf("%d associations, want the 4 odd ones", len(list))
	}
	if got := values(t, f.dests["repo"]); len(got) != 4 {
		t.Fatalf("destination holds %v", got)
	}
}

// TestSetAndRemoveRace: Set and Remove of one association racing each
// other always leave it either linked with its keys at the destination,
// or unlinked with its keys gone, never linked keys with no link.
func TestSetAndRemoveRace(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	ref := f.secret("kv", "app", map[string]string{"K": "v"})
	for i := range 200 {
		var wg gosync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			if _, err := f.reg.Set(ctx, "test-kv", "repo", ref, nil); err != nil {
				t.Error(err)
			}
		}()
		go func() {
			defer wg.Done()
			if _, err := f.reg.Remove(ctx, "test-kv", "repo", ref); err != nil {
				t.Error(err)
			}
		}()
		wg.Wait()
		list, _ := f.reg.Associations(ctx, "test-kv", "repo")
		_, held := values(t, f.dests["repo"])["kv_app_K"]
		if (len(list) == 1) != held {
			t.Fatalf("round %d: %d association(s), key at the destination: %v", i, len(list), held)
		}
	}
}

// TestListingDuringASync: listing associations does not wait for a sync
// in flight, and shows it as syncing.
func TestListingDuringASync(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	ref := f.secret("kv", "app", map[string]string{"A": "1"})
	entered, release := make(chan struct{}), make(chan struct{})
	f.dests["repo"] = memory.NewWithOptions(nil, &memory.Options{BeforeApply: func(context.Context, destination.Change) error {
		close(entered)
		<-release
		return nil
	}})
	done := make(chan error, 1)
	go func() {
		_, err := f.reg.Set(ctx, "test-kv", "repo", ref, nil)
		done <- err
	}()
	<-entered
	list, err := f.reg.Associations(ctx, "test-kv", "repo")
	if err != nil || len(list) != 1 || list[0].Status != registry.StatusPending {
		t.Fatalf("during the sync: %+v, %v", list, err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if list, _ := f.reg.Associations(ctx, "test-kv", "repo"); list[0].Status != registry.StatusSynced {
		t.Fatalf("after the sync: %+v", list)
	}
}

// TestStatusesOfSet: each failure of a Set shows as the status of its
// side, with a one-line message that holds no value.
func TestStatusesOfSet(t *testing.T) {
	ctx := context.Background()
	down := memory.Options{BeforeApply: func(context.Context, destination.Change) error {
		return fmt.Errorf("%w: 503", destination.ErrUnavailable)
	}}
	for _, tt := range []struct {
		name  string
		setup func(f *fixture, ref registry.SecretRef)
		want  registry.SyncStatus
	}{
		{"synced", func(*fixture, registry.SecretRef) {}, registry.StatusSynced},
		{"vault unreadable", func(f *fixture, ref registry.SecretRef) {
			f.secrets[ref] = memory.NewWithOptions(map[string]string{"A": canary}, &memory.Options{BeforeList: func(context.Context) error {
				return errors.New("permission denied")
			}})
		}, registry.StatusInternalVaultError},
		{"store down", func(f *fixture, _ registry.SecretRef) { f.dests["repo"] = memory.NewWithOptions(nil, &down) }, registry.StatusExternalServiceError},
		{"key the schema cannot name", func(f *fixture, ref registry.SecretRef) { f.secrets[ref].Set("a key", canary) }, registry.StatusClientSideError},
		{"driver fails", func(f *fixture, _ registry.SecretRef) { f.failOn.Store(true) }, registry.StatusClientSideError},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil)
			ref := f.secret("kv", "app", map[string]string{"A": canary})
			tt.setup(f, ref)
			a, err := f.reg.Set(ctx, "test-kv", "repo", ref, nil)
			if a.Status != tt.want || (err == nil) != (tt.want == registry.StatusSynced) {
				t.Fatalf("Set = %s %q, %v; want %s", a.Status, a.Message, err, tt.want)
			}
			if a.Message == "" || strings.ContainsAny(a.Message, "\r\n") || strings.Contains(a.Message, canary) {
				t.Errorf("message %q: not one line, or it shows the value", a.Message)
			}
			if list, _ := f.reg.Associations(ctx, "test-kv", "repo"); len(list) != 1 || list[0].Status != tt.want {
				t.Errorf("listed: %+v", list)
			}
		})
	}
}

// TestRemoveWhileKeysChange: keys that change at the destination during
// an unsync are read again and deleted; when they keep changing, the
// association stays, pending, and Remove says so.
func TestRemoveWhileKeysChange(t *testing.T) {
	ctx := context.Background()
	for _, refusals := range []int{2, 100} {
		f := newFixture(t, nil)
		var left atomic.Int32
		f.dests["repo"] = memory.NewWithOptions(nil, &memory.Options{BeforeApply: func(_ context.Context, c destination.Change) error {
			if c.Delete && c.Key == "kv_app_B" && left.Add(-1) >= 0 {
				return &destination.KeyError{Op: "delete", Key: c.Key, Err: destination.ErrConflict}
			}
			return nil
		}})
		ref := f.secret("kv", "app", map[string]string{"A": "1", "B": "2"})
		if _, err := f.reg.Set(ctx, "test-kv", "repo", ref, nil); err != nil {
			t.Fatal(err)
		}
		left.Store(int32(refusals))
		a, err := f.reg.Remove(ctx, "test-kv", "repo", ref)
		list, _ := f.reg.Associations(ctx, "test-kv", "repo")
		if refusals == 2 {
			if err != nil || a.Status != registry.StatusUnsynced || a.Totals.Deleted != 2 || len(list) != 0 || len(values(t, f.dests["repo"])) != 0 {
				t.Fatalf("Remove with %d refusals = %+v, %v; left %v", refusals, a, err, list)
			}
			continue
		}
		if !errors.Is(err, destination.ErrConflict) || a.Status != registry.StatusPending || len(list) != 1 || list[0].Status != registry.StatusPending {
			t.Fatalf("Remove with keys that keep changing = %+v, %v; left %+v", a, err, list)
		}
	}
}

// TestSyncNamesStayApart: two secrets whose readable sync names meet
// (Vault paths are case-sensitive; sync names are not) get two names, and
// the first keeps the readable one.
func TestSyncNamesStayApart(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	lower := f.secret("kv", "app/prod", map[string]string{"A": "1"})
	upper := f.secret("kv", "App/Prod", map[string]string{"A": "2"})
	a, err := f.reg.Set(ctx, "test-kv", "repo", lower, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := f.reg.Set(ctx, "test-kv", "repo", upper, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.SyncName != "test-kv-repo-kv-app-prod" || !strings.HasPrefix(b.SyncName, a.SyncName+"-") || !sync.ValidName(b.SyncName) {
		t.Fatalf("sync names %q and %q", a.SyncName, b.SyncName)
	}
	// A refresh keeps each name.
	if b2, err := f.reg.Set(ctx, "test-kv", "repo", upper, nil); err != nil || b2.SyncName != b.SyncName {
		t.Fatalf("refresh: %q, %v", b2.SyncName, err)
	}
	if got := values(t, f.dests["repo"]); got["kv_app_prod_A"] != "1" || got["kv_App_Prod_A"] != "2" {
		t.Fatalf("destination holds %v", got)
	}
}

// TestOverlappingSchemasRefused: on a destination named by key schema,
// an association whose schema can claim a key of another's is refused
// with a ConfigError that names the other, and nothing changes.
func TestOverlappingSchemasRefused(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	app := f.secret("kv", "app", map[string]string{"X_DB": "1"})
	appX := f.secret("kv", "app-x", map[string]string{"DB": "2"})
	if _, err := f.reg.Set(ctx, "test-kv", "repo", app, &registry.AssociationOptions{KeySchema: "APP_{{secretKey}}"}); err != nil {
		t.Fatal(err)
	}
	_, err := f.reg.Set(ctx, "test-kv", "repo", appX, &registry.AssociationOptions{KeySchema: "APP_X_{{secretKey}}"})
	var ce *registry.ConfigError
	if !errors.As(err, &ce) || ce.Field != "key_schema" || !strings.Contains(ce.Reason, "kv/app ") || !strings.Contains(ce.Reason, `"APP_{{secretKey}}"`) {
		t.Fatalf("Set of an overlapping schema = %v", err)
	}
	t.Log(err)
	if list, _ := f.reg.Associations(ctx, "test-kv", "repo"); len(list) != 1 {
		t.Fatalf("the refused Set left %d associations", len(list))
	}
	if got := values(t, f.dests["repo"]); len(got) != 1 || got["APP_X_DB"] != "1" {
		t.Fatalf("the destination holds %v", got)
	}

	for _, tt := range []struct {
		schema string
		ok     bool
	}{
		{"APP_{{secretKey}}", false},                 // the same schema
		{"{{secretKey}}", false},                     // claims every key
		{"{{secretKey}}_DB", false},                  // "APP_X_DB" again
		{"APPX_{{secretKey}}", true},                 // no key starts with both
		{"OTHER_{{secretKey}}", true},                //
		{"app/{{secretKey}}", true},                  // case matters
		{"APP_{{secretKey}}_{{environment}}", false}, // no environment to bind
	} {
		_, err := f.reg.Set(ctx, "test-kv", "repo", appX, &registry.AssociationOptions{KeySchema: tt.schema})
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, registry.ErrInvalidConfig)) {
			t.Errorf("Set with %q beside APP_{{secretKey}} = %v, want ok %v", tt.schema, err, tt.ok)
		}
		if err == nil {
			if _, err := f.reg.Remove(ctx, "test-kv", "repo", appX); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Refreshing the first with its own schema is no overlap with itself.
	if _, err := f.reg.Set(ctx, "test-kv", "repo", app, &registry.AssociationOptions{KeySchema: "APP_{{secretKey}}"}); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	// Default schemas of nested secrets overlap too.
	top := f.secret("kv", "top", map[string]string{"K": "4"})
	topProd := f.secret("kv", "top/prod", map[string]string{"K": "5"})
	if _, err := f.reg.Set(ctx, "test-kv", "repo", top, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.reg.Set(ctx, "test-kv", "repo", topProd, nil); !errors.Is(err, registry.ErrInvalidConfig) {
		t.Errorf("Set of kv/top/prod beside kv/top, default schemas = %v", err)
	}
}

// TestDeletePurge: Delete with Purge unsyncs every association, then
// deletes the destination; a failure stops it and leaves the destination
// with the associations not removed, and Delete again resumes.
func TestDeletePurge(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	var refuse atomic.Bool
	f.dests["repo"] = memory.NewWithOptions(map[string]string{"OTHER": "kept"}, &memory.Options{BeforeApply: func(_ context.Context, c destination.Change) error {
		if refuse.Load() && c.Delete && strings.HasPrefix(c.Key, "kv_b_") {
			return &destination.KeyError{Op: "delete", Key: c.Key, Err: errors.New("403 forbidden")}
		}
		return nil
	}})
	a := f.secret("kv", "a", map[string]string{"K": "1"})
	b := f.secret("kv", "b", map[string]string{"K": "2"})
	keep := f.secret("kv", "keep", map[string]string{"K": "3"})
	for _, ref := range []registry.SecretRef{a, b} {
		if _, err := f.reg.Set(ctx, "test-kv", "repo", ref, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.reg.Set(ctx, "test-kv", "repo", keep, &registry.AssociationOptions{DisableDeletion: true}); err != nil {
		t.Fatal(err)
	}
	if err := f.reg.Delete(ctx, "test-kv", "repo", nil); !errors.Is(err, registry.ErrInUse) {
		t.Fatalf("Delete without options = %v", err)
	}
	if err := f.reg.Delete(ctx, "test-kv", "repo", &registry.DeleteOptions{Purge: true, Force: true}); !errors.Is(err, registry.ErrInvalidConfig) {
		t.Fatalf("Delete with purge and force = %v", err)
	}

	refuse.Store(true)
	err := f.reg.Delete(ctx, "test-kv", "repo", &registry.DeleteOptions{Purge: true})
	if err == nil {
		t.Fatal("Delete with Purge succeeded while an unsync fails")
	}
	list, _ := f.reg.Associations(ctx, "test-kv", "repo")
	if len(list) != 2 || list[0].Secret != b || list[0].Status != registry.StatusExternalServiceError || list[1].Secret != keep {
		t.Fatalf("after a failed purge: %+v", list)
	}
	if got := values(t, f.dests["repo"]); got["kv_a_K"] != "" || got["kv_b_K"] != "2" {
		t.Fatalf("after a failed purge the destination holds %v", got)
	}

	refuse.Store(false)
	if err := f.reg.Delete(ctx, "test-kv", "repo", &registry.DeleteOptions{Purge: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.reg.Get(ctx, "test-kv", "repo"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("the destination is still there: %v", err)
	}
	if got := fmt.Sprint(values(t, f.dests["repo"])); got != "map[OTHER:kept kv_keep_K:3]" {
		t.Fatalf("after the purge the destination holds %s", got)
	}
	if n := f.sides.Load(); n != 0 {
		t.Fatalf("%d sides left open", n)
	}
}

// TestDeleteForce: Delete with Force drops the associations and the
// destination and leaves the entries; the sides are closed; associations
// set again later take their entries back as their own.
func TestDeleteForce(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	a := f.secret("kv", "a", map[string]string{"K": "1"})
	b := f.secret("kv", "b", map[string]string{"K": "2"})
	for _, ref := range []registry.SecretRef{a, b} {
		if _, err := f.reg.Set(ctx, "test-kv", "repo", ref, nil); err != nil {
			t.Fatal(err)
		}
	}
	applies := f.dests["repo"].Stats().Applies
	if err := f.reg.Delete(ctx, "test-kv", "repo", &registry.DeleteOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.reg.Associations(ctx, "test-kv", "repo"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("Associations after a forced Delete = %v", err)
	}
	if got := fmt.Sprint(values(t, f.dests["repo"])); got != "map[kv_a_K:1 kv_b_K:2]" || f.dests["repo"].Stats().Applies != applies {
		t.Fatalf("a forced Delete touched the store: %s", got)
	}
	if n := f.sides.Load(); n != 0 {
		t.Fatalf("%d sides left open", n)
	}

	// Declared again, an association finds its entries as it left them.
	if _, err := f.reg.Put(ctx, "repo", testKV{Token: "t"}); err != nil {
		t.Fatal(err)
	}
	if got, err := f.reg.Set(ctx, "test-kv", "repo", a, nil); err != nil || got.Status != registry.StatusSynced || got.Totals.Unchanged != 1 || got.Totals.Changed() != 0 {
		t.Fatalf("Set after a forced Delete = %+v, %v", got, err)
	}
}

// TestPutClosesReplacedSides: replacing a destination's Config closes the
// sides its associations opened with the old one, at once when they are
// idle; the next operation opens them anew.
func TestPutClosesReplacedSides(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	ref := f.secret("kv", "app", map[string]string{"A": "1"})
	if _, err := f.reg.Set(ctx, "test-kv", "repo", ref, nil); err != nil {
		t.Fatal(err)
	}
	if n := f.sides.Load(); n != 2 {
		t.Fatalf("%d sides open, want the source and the destination", n)
	}
	if _, err := f.reg.Put(ctx, "repo", testKV{Token: "t2"}); err != nil {
		t.Fatal(err)
	}
	if n := f.sides.Load(); n != 0 {
		t.Fatalf("%d sides open after the Config was replaced", n)
	}
	if a, err := f.reg.Set(ctx, "test-kv", "repo", ref, nil); err != nil || a.Status != registry.StatusSynced || f.sides.Load() != 2 {
		t.Fatalf("Set after Put = %+v, %v (%d sides open)", a, err, f.sides.Load())
	}

	// Busy: the operation in flight closes the old sides when it ends.
	entered, release := make(chan struct{}), make(chan struct{})
	f.secrets[ref].Set("A", "2")
	var once gosync.Once
	f.dests["repo"] = memory.NewWithOptions(values(t, f.dests["repo"]), &memory.Options{BeforeApply: func(context.Context, destination.Change) error {
		once.Do(func() { close(entered); <-release })
		return nil
	}})
	if _, err := f.reg.Put(ctx, "repo", testKV{Token: "t3"}); err != nil { // the association opens the new store next
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := f.reg.Set(ctx, "test-kv", "repo", ref, nil)
		done <- err
	}()
	<-entered
	if _, err := f.reg.Put(ctx, "repo", testKV{Token: "t4"}); err != nil {
		t.Fatal(err)
	}
	if n := f.sides.Load(); n != 2 {
		t.Fatalf("%d sides open during the operation, want its 2", n)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := f.sides.Load(); n != 0 {
		t.Fatalf("%d sides open after the operation that used the replaced Config", n)
	}
}
