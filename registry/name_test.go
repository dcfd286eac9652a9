package registry_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/registry"
)

// upperStore is a store whose names are upper-case letters, digits and
// '_', as GitHub's are, and which holds a client to close.
type upperStore struct {
	*memory.Destination
	closed *atomic.Int32
}

func (u upperStore) NormalizeKey(k string) (string, error) {
	k = strings.ToUpper(strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, k))
	if strings.HasPrefix(k, "GITHUB_") {
		return "", fmt.Errorf("%w: %q has the reserved prefix GITHUB_", destination.ErrInvalidKey, k)
	}
	return k, nil
}

func (u upperStore) Close() error { u.closed.Add(1); return nil }

type accessorSource struct{ *memory.Destination }

func (accessorSource) MountAccessor() string { return "kv_1234abcd" }

func TestNamedByTemplate(t *testing.T) {
	ctx := context.Background()
	store := memory.New(map[string]string{"THEIRS": "kept"})
	aws := memory.New(nil)
	var closed atomic.Int32
	var opened []registry.Target
	secret := memory.New(map[string]string{"db-url": "u&<v>", "token": "t", "github-x": "refused"})
	reg := registry.New(&registry.Options{
		Drivers: map[string]registry.Driver{
			registry.TypeGitHubRepository: func(ctx context.Context, tg registry.Target) (destination.Destination, error) {
				opened = append(opened, tg)
				return upperStore{store, &closed}, nil
			},
			registry.TypeAWSSecretsManager: func(ctx context.Context, tg registry.Target) (destination.Destination, error) {
				return aws, nil
			},
		},
		Source: func(ctx context.Context, mount, name string) (destination.Reader, error) {
			return accessorSource{secret}, nil
		},
	})
	gh := registry.GitHubRepository{AccessToken: "t", RepositoryOwner: "o", RepositoryName: "r",
		SyncOptions: registry.SyncOptions{SecretNameTemplate: "{{ .SecretKey }}"}}
	if _, err := reg.Put(ctx, "repo", gh); err != nil {
		t.Fatal(err)
	}
	ref := registry.SecretRef{Mount: "kv", Name: "app/prod"}
	if _, err := reg.Set(ctx, "gh", "repo", ref, &registry.AssociationOptions{KeySchema: "X_{{secretKey}}"}); !errors.Is(err, registry.ErrInvalidConfig) {
		t.Fatalf("Set with a key schema on a destination named by template = %v", err)
	}
	a, err := reg.Set(ctx, "gh", "repo", ref, nil)
	if err == nil || a.Totals.Created != 2 || a.Totals.Failed != 1 || !errors.Is(err, destination.ErrInvalidKey) {
		t.Fatalf("Set = %+v, %v; want 2 created and GITHUB_ refused", a, err)
	}
	want := map[string]string{"THEIRS": "kept", "DB_URL": "u&<v>", "TOKEN": "t"}
	if got := values(t, store); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("store holds %v, want %v", got, want)
	}
	if len(opened) != 1 || opened[0].Owner != a.SyncName || opened[0].Name != "repo" {
		t.Fatalf("the driver opened %+v; want the association's owner %q", opened, a.SyncName)
	}

	// A new name template is refused while associations use the old one.
	gh2 := gh
	gh2.SecretNameTemplate = ""
	if _, err := reg.Put(ctx, "repo", gh2); !errors.Is(err, registry.ErrInvalidConfig) {
		t.Fatalf("Put with a new template and an association = %v", err)
	}
	// A change arrives under its name; a new Config (a new token) reopens
	// the store and closes the old one.
	secret.Delete("github-x")
	secret.Set("token", "t2")
	gh.AccessToken = "t2"
	if _, err := reg.Put(ctx, "repo", gh); err != nil {
		t.Fatal(err)
	}
	if a, err = reg.Set(ctx, "gh", "repo", ref, nil); err != nil {
		t.Fatal(err)
	}
	if closed.Load() != 1 {
		t.Fatalf("the replaced destination was closed %d times", closed.Load())
	}
	want["TOKEN"] = "t2"
	if got := values(t, store); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after the refresh the store holds %v", got)
	}
	if _, err := reg.Remove(ctx, "gh", "repo", ref); err != nil {
		t.Fatal(err)
	}
	if closed.Load() != 2 {
		t.Fatalf("the removed association's destination was closed %d times in all", closed.Load())
	}
	if got := values(t, store); len(got) != 1 || got["THEIRS"] != "kept" {
		t.Fatalf("after Remove the store holds %v", got)
	}

	// secret-path granularity (aws-sm's default): the secret as one JSON entry.
	if _, err := reg.Put(ctx, "sm", registry.AWSSecretsManager{Region: "eu-west-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Set(ctx, "aws-sm", "sm", ref, nil); err != nil {
		t.Fatal(err)
	}
	got := values(t, aws)
	var obj map[string]string
	if len(got) != 1 || json.Unmarshal([]byte(got["vault/kv_1234abcd/app/prod"]), &obj) != nil || obj["token"] != "t2" || len(obj) != 2 {
		t.Fatalf("aws-sm holds %v", got)
	}
	if v := got["vault/kv_1234abcd/app/prod"]; v != `{"db-url":"u&<v>","token":"t2"}` {
		t.Fatalf("the secret as one entry is %s, want its keys in order with no escapes beyond JSON's", v)
	}
	secret.Set("db-url", "u2")
	if a, err := reg.Set(ctx, "aws-sm", "sm", ref, nil); err != nil || a.Totals.Updated != 1 {
		t.Fatalf("refresh = %+v, %v", a, err)
	}
	if err := reg.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestNameTemplateValidation(t *testing.T) {
	reg := registry.New(nil)
	for _, c := range []struct {
		cfg   registry.Config
		field string
	}{
		{registry.GitHubRepository{AccessToken: "t", RepositoryOwner: "o", RepositoryName: "r", SyncOptions: registry.SyncOptions{SecretNameTemplate: "{{ .SecretPath }}"}}, "secret_name_template"},
		{registry.GitHubRepository{AccessToken: "t", RepositoryOwner: "o", RepositoryName: "r", SyncOptions: registry.SyncOptions{SecretNameTemplate: "{{ .Nope }}"}}, "secret_name_template"},
		{registry.GitHubRepository{AccessToken: "t", RepositoryOwner: "o", RepositoryName: "r", SyncOptions: registry.SyncOptions{SecretNameTemplate: "{{ .SecretKey | shout }}"}}, "secret_name_template"},
		{registry.GitHubRepository{AccessToken: "t", RepositoryOwner: "o", RepositoryName: "r", SyncOptions: registry.SyncOptions{CustomTags: map[string]string{"a": "b"}}}, "custom_tags"},
		{registry.AWSSecretsManager{SyncOptions: registry.SyncOptions{Granularity: "per-secret"}}, "granularity"},
		{registry.AWSSecretsManager{SyncOptions: registry.SyncOptions{SecretNameTemplate: "{{ .SecretPath }}"}}, ""},
		{registry.AWSSecretsManager{SyncOptions: registry.SyncOptions{Granularity: "secret-key", SecretNameTemplate: "{{ .SecretPath }}"}}, "secret_name_template"},
		{registry.AWSSecretsManager{RecoveryWindowDays: 3}, "recovery_window_days"},
		{registry.AWSSecretsManager{SyncOptions: registry.SyncOptions{SecretNameTemplate: "{{ range 1000000000 }}{{ end }}{{ .SecretPath }}"}}, "secret_name_template"},
		{registry.AWSSecretsManager{SyncOptions: registry.SyncOptions{SecretNameTemplate: `{{ define "x" }}{{ template "x" }}{{ end }}{{ template "x" }}`}}, "secret_name_template"},
		{registry.AWSSecretsManager{SyncOptions: registry.SyncOptions{SecretNameTemplate: `{{ if .SecretPath }}{{ .SecretPath }}{{ else }}none{{ end }}`}}, ""},
		{registry.AWSSecretsManager{AccessKeyID: "a", SecretAccessKey: "s"}, "region"},
		{registry.AzureKeyVault{KeyVaultURI: "https://v.vault.azure.net", TenantID: "t", ClientID: "c", ClientSecret: "s", Cloud: "AzureChina"}, ""},
		{registry.AzureKeyVault{KeyVaultURI: "https://v.vault.azure.net", TenantID: "t", ClientID: "c", ClientSecret: "s", Cloud: "mars"}, "cloud"},
		{registry.GCPSecretManager{Credentials: "@"}, "credentials"},
		{registry.GCPSecretManager{Credentials: "@/etc/gcp.json"}, ""},
		{registry.GitHubRepository{AccessToken: "t", SecretsLocation: "organization", OrganizationName: "acme", OrganizationVisibility: "selected", SelectedRepositoryIDs: []int64{1}}, ""},
		{registry.GitHubRepository{AccessToken: "t", SecretsLocation: "environment", RepositoryOwner: "o", RepositoryName: "r"}, "environment_name"},
		{registry.VercelProject{AccessToken: "t", ProjectID: "p", DeploymentEnvironments: []string{"production"}, VariableType: "plain"}, "variable_type"},
		{registry.VercelProject{AccessToken: "t", ProjectID: "p", DeploymentEnvironments: []string{"production", "development"}, VariableType: "sensitive"}, "deployment_environments"},
	} {
		_, err := reg.Put(context.Background(), "d", c.cfg)
		var ce *registry.ConfigError
		switch {
		case c.field == "" && err != nil:
			t.Errorf("Put(%T) = %v, want success", c.cfg, err)
		case c.field != "" && (!errors.As(err, &ce) || ce.Field != c.field):
			t.Errorf("Put(%T) = %v, want a ConfigError on %s", c.cfg, err, c.field)
		}
	}
}

// FuzzNameTemplate parses and renders arbitrary templates: never a panic,
// never a name over MaxNameBytes, and the same fields give the same name.
func FuzzNameTemplate(f *testing.F) {
	for _, s := range []string{
		registry.DefaultNameTemplate(registry.GranularitySecretKey), "{{ .SecretPath | replace \"/\" \"_\" | uppercase }}",
		"{{ range 1000000000 }}x{{ end }}", "{{ .Nope }}", "{{", "{{ printf \"%s\" .SecretKey }}", "{{ lowercase 1 }}",
	} {
		f.Add(s, "app/prod", "DB_URL")
	}
	f.Fuzz(func(t *testing.T, tmpl, path, key string) {
		n, err := registry.ParseNameTemplate(tmpl)
		if err != nil {
			return
		}
		fields := registry.NameFields{DestinationType: "gh", DestinationName: "d", MountAccessor: "kv_1", MountPath: "kv", SecretPath: path, SecretBaseName: path, SecretKey: key}
		a, errA := n.Render(fields)
		b, errB := n.Render(fields)
		if (errA == nil) != (errB == nil) || a != b {
			t.Fatalf("two renders differ: %q %v, %q %v", a, errA, b, errB)
		}
		if len(a) > registry.MaxNameBytes {
			t.Fatalf("rendered %d bytes", len(a))
		}
	})
}
