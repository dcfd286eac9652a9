package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/registry"
	"github.com/secretsync/secretsync/registry/httpapi"
)

// regAPI serves the registry's API over a registry with an in-memory gh
// driver on loopback, with one destination and one association; it
// returns the server's URL and the token file.
func regAPI(t *testing.T) (string, string) {
	t.Helper()
	ctx := context.Background()
	reg := registry.New(&registry.Options{
		Drivers: map[string]registry.Driver{registry.TypeGitHubRepository: func(context.Context, registry.Target) (destination.Destination, error) {
			return memory.New(nil), nil
		}},
		Source: func(context.Context, string, string) (destination.Reader, error) {
			return memory.New(map[string]string{"DB": "canary-value-5e2"}), nil
		},
	})
	t.Cleanup(func() { reg.Close() })
	if _, err := reg.Put(ctx, "repo", registry.GitHubRepository{AccessToken: "ghp-canary-0b9", RepositoryOwner: "acme", RepositoryName: "api"}); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Set(ctx, registry.TypeGitHubRepository, "repo", registry.SecretRef{Mount: "kv", Name: "app"}, nil); err != nil {
		t.Fatal(err)
	}
	const token = "cli-token-44d0"
	h, err := httpapi.New(reg, &httpapi.Options{Token: token})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	tokenFile := filepath.Join(t.TempDir(), "token")
	write(t, tokenFile, token+"\n")
	return srv.URL, tokenFile
}

func TestRegistrySubcommands(t *testing.T) {
	url, tokenFile := regAPI(t)
	ctx := context.Background()
	run := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := runContext(ctx, args, &out, &errOut)
		return code, out.String(), errOut.String()
	}
	auth := []string{"-addr", url, "-token-file", tokenFile}

	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"list", append([]string{"destinations"}, auth...), 0, "gh    repo"},
		{"read", append([]string{"destinations", "-type", "gh", "-name", "repo"}, auth...), 0, "access_token      *****"},
		{"read missing", append([]string{"destinations", "-type", "gh", "-name", "nope"}, auth...), 1, ""},
		{"half", append([]string{"destinations", "-type", "gh"}, auth...), 2, ""},
		{"associations", append([]string{"associations", "-type", "gh", "-name", "repo"}, auth...), 0, "kv      app     SYNCED"},
		{"associations without name", append([]string{"associations"}, auth...), 2, ""},
		{"associations of nothing", append([]string{"associations", "-type", "gh", "-name", "nope"}, auth...), 1, ""},
		{"wrong token", []string{"destinations", "-addr", url, "-token-file", write2(t, "wrong")}, 1, ""},
		{"no token", []string{"destinations", "-addr", url, "-config", filepath.Join(t.TempDir(), "none.hcl")}, 2, ""},
		{"extra argument", append([]string{"associations", "x", "-type", "gh", "-name", "repo"}, auth...), 2, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := run(tc.args...)
			if code != tc.code || !strings.Contains(strings.Join(strings.Fields(out), " "), strings.Join(strings.Fields(tc.want), " ")) {
				t.Fatalf("exit %d (want %d)\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errOut)
			}
			if strings.Contains(out+errOut, "canary") || strings.Contains(out+errOut, "cli-token") {
				t.Fatal("a credential, a value or the token was printed")
			}
		})
	}

	// -json prints the API's answer.
	code, out, _ := run(append([]string{"associations", "-json", "-type", "gh", "-name", "repo"}, auth...)...)
	var v struct {
		Data struct {
			Secrets map[string]map[string]string `json:"associated_secrets"`
		} `json:"data"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || v.Data.Secrets["kv/app"]["sync_status"] != "SYNCED" {
		t.Fatalf("-json: %d %s", code, out)
	}

	// The address and token come from the registry's api block.
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "syncd.hcl")
	write(t, cfgPath, regBase+fmt.Sprintf(`
registry {
  connection = "v"
  api {
    listen     = %q
    token_file = %q
  }
}
`, strings.TrimPrefix(url, "http://"), tokenFile))
	if code, out, errOut := run("destinations", "-config", cfgPath); code != 0 || !strings.Contains(out, "repo") {
		t.Fatalf("from -config: %d %s %s", code, out, errOut)
	}
}

// write2 writes content to a new file and returns its path.
func write2(t *testing.T, content string) string {
	p := filepath.Join(t.TempDir(), "f")
	write(t, p, content)
	return p
}
