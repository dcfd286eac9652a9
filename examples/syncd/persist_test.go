package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/secretsync/secretsync/registry"
	"github.com/secretsync/secretsync/vaultkv/vaulttest"
)

// TestRegistryPersistsAcrossRestart: destinations and associations
// created over the API are kept in the state file's catalog, credentials
// sealed; after a restart syncd serves them again and keeps the
// association syncing.
func TestRegistryPersistsAcrossRestart(t *testing.T) {
	srv := vaulttest.Get(t)
	srcMount, dstMount := srv.NewMount(t), srv.NewMount(t)
	vc := srv.Client(t)
	ctx := context.Background()
	if _, err := vc.KVv2(srcMount).Put(ctx, "app", map[string]any{"DB": "one"}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SYNCD_TEST_TOKEN", srv.Token)
	dir := t.TempDir()
	const token = "api-token-77aa"
	const canary = "vercel-token-canary-5d1c"
	tokenFile := filepath.Join(dir, "api-token")
	write(t, tokenFile, token+"\n")
	apiAddr := freeAddr(t)
	mainAddr := freeAddr(t)
	cfgPath := filepath.Join(dir, "syncd.hcl")
	write(t, cfgPath, fmt.Sprintf(`
state {
  file = %q
}
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
}
`, filepath.Join(dir, "state.json"), srv.Addr, apiAddr, tokenFile))
	base := "http://" + apiAddr

	start := func() (stop func(), stderr *syncBuffer) {
		stop, stderr = runSyncd(t, cfgPath, mainAddr)
		waitFor(t, "the API", func() bool {
			code, _ := apiCall(t, base, token, "LIST", "/v1/sys/sync/destinations", "")
			return code == http.StatusOK || code == http.StatusNotFound
		})
		return stop, stderr
	}

	stop, _ := start()
	if code, out := apiCall(t, base, token, "POST", "/v1/sys/sync/destinations/vault-kv/copy",
		fmt.Sprintf(`{"connection":"v","mount":%q,"path":"copy"}`, dstMount)); code/100 != 2 {
		t.Fatalf("create vault-kv = %d %v", code, out)
	}
	if code, out := apiCall(t, base, token, "POST", "/v1/sys/sync/destinations/vercel-project/web",
		fmt.Sprintf(`{"access_token":%q,"project_id":"prj_1","deployment_environments":["preview"]}`, canary)); code/100 != 2 {
		t.Fatalf("create vercel-project = %d %v", code, out)
	}
	code, out := apiCall(t, base, token, "POST", "/v1/sys/sync/destinations/vault-kv/copy/associations/set",
		fmt.Sprintf(`{"mount":%q,"secret_name":"app"}`, srcMount))
	if status, _ := assocOf(t, out); code != http.StatusOK || status != "SYNCED" {
		t.Fatalf("set = %d %v", code, out)
	}
	stop()

	// On disk: the catalog beside the state file, the credential sealed.
	for _, name := range []string{"state.json", "state.json.docs", "state.json.catalog-key"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(canary)) {
			t.Fatalf("%s holds the credential in plain text", name)
		}
	}
	if docs, _ := os.ReadFile(filepath.Join(dir, "state.json.docs")); !bytes.Contains(docs, []byte(`sealed:v1:`)) {
		t.Fatalf("the catalog holds no sealed credential:\n%s", docs)
	}

	// A new process: the same destinations and association, still syncing.
	stop, stderr := start()
	defer func() {
		if strings.Contains(stderr.String(), canary) {
			t.Error("the credential reached the log")
		}
	}()
	defer stop()
	code, out = apiCall(t, base, token, "GET", "/v1/sys/sync/destinations/vercel-project/web", "")
	if code != http.StatusOK {
		t.Fatalf("the vercel-project destination after a restart: %d %v", code, out)
	}
	if cd, _ := out["data"].(map[string]any)["connection_details"].(map[string]any); cd["access_token"] != "*****" || cd["project_id"] != "prj_1" {
		t.Fatalf("connection details after a restart: %v", out)
	}
	changed := time.Now()
	if _, err := vc.KVv2(srcMount).Put(ctx, "app", map[string]any{"DB": "two"}); err != nil {
		t.Fatal(err)
	}
	ref := registry.SecretRef{Mount: srcMount, Name: "app"}
	key := strings.Replace(registry.DefaultKeySchema(ref), "{{secretKey}}", "DB", 1)
	waitFor(t, "the change to arrive after the restart", func() bool {
		code, out := apiCall(t, base, token, "GET", "/v1/sys/sync/destinations/vault-kv/copy/associations", "")
		if code != http.StatusOK {
			return false
		}
		status, last := assocOf(t, out)
		sec, err := vc.KVv2(dstMount).Get(ctx, "copy")
		return status == "SYNCED" && last.After(changed) && err == nil && sec.Data[key] == "two"
	})

	// /readyz counts the association: ready while it syncs, not ready once
	// its destination fails (ready_grace is 0).
	readyz := func() (int, map[string]any) {
		resp, err := http.Get("http://" + mainAddr + "/readyz")
		if err != nil {
			return 0, nil
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	assocState := func(out map[string]any) string {
		syncs, _ := out["syncs"].([]any)
		for _, s := range syncs {
			if m, _ := s.(map[string]any); m["association"] != nil && m["association"] != "" {
				return fmt.Sprint(m["state"])
			}
		}
		return ""
	}
	if code, out := readyz(); code != http.StatusOK || assocState(out) != "succeeded" {
		t.Fatalf("/readyz with a synced association = %d %v", code, out)
	}
	if err := vc.Sys().UnmountWithContext(ctx, dstMount); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "/readyz to say the association failed", func() bool {
		code, out := readyz()
		return code == http.StatusServiceUnavailable && assocState(out) == "failed"
	})
}

// With the state in Vault, a declared destination that holds a
// credential needs a transit block to be kept sealed: -check says so.
func TestCheckCatalogNeedsTransit(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("T", "x")
	t.Setenv("GH", "gh-token")
	cfg := func(transit string) string {
		return regBase + `
state {
  connection = "v"
  mount      = "secret"
}
registry {
  connection = "v"
` + transit + `
  destination "gh" "repo" {
    access_token_env = "GH"
    repository_owner = "acme"
    repository_name  = "api"
  }
}
`
	}
	path := filepath.Join(dir, "syncd.hcl")
	write(t, path, cfg(""))
	if _, err := checkConfig(context.Background(), path); err == nil || !strings.Contains(err.Error(), "transit block") {
		t.Fatalf("-check with a credential, the state in Vault and no transit: %v", err)
	}
	write(t, path, cfg(`  transit { key = "syncd" }`))
	if _, err := checkConfig(context.Background(), path); err != nil {
		t.Fatalf("-check with a transit block: %v", err)
	}
}
