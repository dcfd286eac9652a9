package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/secretsync/secretsync/destination/ghactions"
	"github.com/secretsync/secretsync/destination/ghactions/ghactionstest"
	"github.com/secretsync/secretsync/registry"
	"github.com/secretsync/secretsync/vaultkv/vaulttest"
)

func TestExternalDestinationConfig(t *testing.T) {
	dir := t.TempDir()
	ghTok := filepath.Join(dir, "gh-token")
	write(t, ghTok, "ghp-canary-7d1e\n")
	t.Setenv("SYNCD_TEST_VERCEL", "vercel-canary-22ab")
	good := regBase + fmt.Sprintf(`
registry {
  connection = "v"
  destination "gh" "repo" {
    access_token_file = %q
    repository_owner  = "acme"
    repository_name   = "api"
  }
  destination "vercel-project" "web" {
    access_token_env        = "SYNCD_TEST_VERCEL"
    project_id              = "prj_1"
    deployment_environments = ["production", "preview"]
  }
  destination "aws-sm" "prod" {
    region               = "eu-west-1"
    recovery_window_days = 7
    custom_tags          = { team = "platform" }
  }
  association "gh" "repo" {
    mount       = "kv"
    secret_name = "app/prod"
  }
}
`, ghTok)
	cfg, err := ParseConfig("good.hcl", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	rc := cfg.Registry
	got := map[string]registry.Config{}
	for _, d := range rc.Destinations {
		c, err := declaredConfig(rc, d)
		if err != nil {
			t.Fatalf("%s/%s: %v", d.Type, d.Name, err)
		}
		got[d.Type] = c
	}
	if c := got["gh"].(registry.GitHubRepository); c.AccessToken.Reveal() != "ghp-canary-7d1e" || c.RepositoryName != "api" {
		t.Fatalf("gh = %+v", c)
	}
	if c := got["vercel-project"].(registry.VercelProject); c.AccessToken.Reveal() != "vercel-canary-22ab" || len(c.DeploymentEnvironments) != 2 {
		t.Fatalf("vercel = %+v", c)
	}
	if c := got["aws-sm"].(registry.AWSSecretsManager); c.RecoveryWindowDays != 7 || c.CustomTags["team"] != "platform" {
		t.Fatalf("aws-sm = %+v", c)
	}
	next, err := ParseConfig("good.hcl", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if err := registryUnchanged(cfg, next); err != nil {
		t.Fatalf("same external destinations on reload: %v", err)
	}

	for _, tc := range []struct{ name, from, to, want string }{
		{"unknown attribute", `project_id              = "prj_1"`, `project = "prj_1"`, "project is not an attribute of type vercel-project"},
		{"both", `access_token_env        = "SYNCD_TEST_VERCEL"`, "access_token_env = \"X\"\n access_token = \"t\"", "give one of access_token and access_token_env"},
		{"_file of a plain field", `project_id              = "prj_1"`, `project_id_file = "/p"`, "project_id_file is not an attribute"},
		{"wrong type", `recovery_window_days = 7`, `recovery_window_days = "a week"`, "recovery_window_days"},
		{"invalid", `region               = "eu-west-1"`, `region = "Europe"`, "region"},
		{"vault-kv attribute", `repository_name   = "api"`, "repository_name = \"api\"\n mount = \"kv\"", "vault-kv's attributes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(good, tc.from, tc.to, 1)
			if src == good {
				t.Fatal("the case changes nothing")
			}
			_, err := ParseConfig("bad.hcl", []byte(src))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}

	// Credentials are read when the destination is built (and by -check),
	// not when the file loads; their errors name the file or variable,
	// never a value.
	t.Setenv("SYNCD_TEST_VERCEL", "")
	cfgPath := filepath.Join(dir, "syncd.hcl")
	t.Setenv("T", "x")
	write(t, cfgPath, good)
	_, err = checkConfig(context.Background(), cfgPath)
	if err == nil || !strings.Contains(err.Error(), "SYNCD_TEST_VERCEL is empty or unset") {
		t.Fatalf("-check with the variable unset: %v", err)
	}
	if strings.Contains(err.Error(), "canary") {
		t.Fatal("a credential reached an error")
	}
	t.Setenv("SYNCD_TEST_VERCEL", "vercel-canary-22ab")
	if _, err := checkConfig(context.Background(), cfgPath); err != nil {
		t.Fatalf("-check: %v", err)
	}

	// A credential in the file itself: -check wants the file 0600.
	literal := strings.Replace(good, `access_token_env        = "SYNCD_TEST_VERCEL"`, `access_token = "vercel-canary-22ab"`, 1)
	write(t, cfgPath, literal)
	if _, err := checkConfig(context.Background(), cfgPath); err != nil {
		t.Fatalf("-check of a 0600 file: %v", err)
	}
	if err := os.Chmod(cfgPath, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = checkConfig(context.Background(), cfgPath)
	if err == nil || !strings.Contains(err.Error(), "make it 0600") || strings.Contains(err.Error(), "canary") {
		t.Fatalf("-check of a 0644 file with a credential: %v", err)
	}
}

// TestRegistryGitHubDestination runs the daemon with a gh destination
// declared in the file, its token read from a file, pointed at the local
// GitHub API, and an association of a secret of the real Vault with it:
// the association reaches SYNCED and the secret arrives at GitHub; a
// change in Vault arrives by polling.
func TestRegistryGitHubDestination(t *testing.T) {
	gh := ghactionstest.NewServer(&ghactionstest.Options{Clock: ghactionstest.TickingClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))})
	t.Cleanup(gh.Close)
	repo := gh.AddRepository("acme", "api")
	orig := newExternalDrivers
	t.Cleanup(func() { newExternalDrivers = orig })
	newExternalDrivers = func() map[string]registry.Driver {
		m := orig()
		m[registry.TypeGitHubRepository] = ghactions.Driver(&ghactions.DriverOptions{BaseURL: gh.URL, HTTPClient: gh.Client()})
		return m
	}

	srv := vaulttest.Get(t)
	mount := srv.NewMount(t)
	vc := srv.Client(t)
	ctx := context.Background()
	if _, err := vc.KVv2(mount).Put(ctx, "app", map[string]any{"DB": "one"}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SYNCD_TEST_TOKEN", srv.Token)
	dir := t.TempDir()
	const token = "api-token-81aa"
	tokenFile, ghTokenFile := filepath.Join(dir, "api-token"), filepath.Join(dir, "gh-token")
	write(t, tokenFile, token+"\n")
	write(t, ghTokenFile, gh.Token+"\n")
	apiAddr := freeAddr(t)
	cfgPath := filepath.Join(dir, "syncd.hcl")
	write(t, cfgPath, fmt.Sprintf(`
connection "v" {
  address = %q
  token { env = "SYNCD_TEST_TOKEN" }
}
registry {
  connection    = "v"
  poll_interval = "300ms"
  api {
    listen     = %q
    token_file = %q
  }
  destination "gh" "repo" {
    access_token_file = %q
    repository_owner  = "acme"
    repository_name   = "api"
  }
  association "gh" "repo" {
    mount       = %q
    secret_name = "app"
  }
}
`, srv.Addr, apiAddr, tokenFile, ghTokenFile, mount))

	runCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runContext(runCtx, []string{"-config", cfgPath, "-listen", "127.0.0.1:0"}, &stdout, &stderr)
	}()
	base := "http://" + apiAddr
	values := func() []string {
		var vs []string
		for _, v := range repo.Secrets().Values() {
			vs = append(vs, v)
		}
		return vs
	}
	var status string
	waitFor(t, "the association to be SYNCED", func() bool {
		code, out := apiCall(t, base, token, "GET", "/v1/sys/sync/destinations/gh/repo/associations", "")
		if code != http.StatusOK {
			return false
		}
		status, _ = assocOf(t, out)
		return status == "SYNCED" && fmt.Sprint(values()) == "[one]"
	})
	code, out := apiCall(t, base, token, "GET", "/v1/sys/sync/destinations/gh/repo", "")
	if code != http.StatusOK || !strings.Contains(fmt.Sprint(out), "*****") || strings.Contains(fmt.Sprint(out), gh.Token) {
		t.Fatalf("read destination = %d %v", code, out)
	}

	if _, err := vc.KVv2(mount).Put(ctx, "app", map[string]any{"DB": "two"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the change to arrive at GitHub", func() bool { return fmt.Sprint(values()) == "[two]" })

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("syncd = %d\n%s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("syncd did not stop within 30s")
	}
	if strings.Contains(stderr.String(), gh.Token) || strings.Contains(stderr.String(), `"two"`) {
		t.Fatal("the GitHub token or a secret value reached the log")
	}
}
