package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/secretsync/secretsync/registry"
	"github.com/secretsync/secretsync/vaultkv/vaulttest"
)

const regBase = `
connection "v" {
  address = "http://127.0.0.1:8200"
  token { env = "T" }
}
`

func TestRegistryConfig(t *testing.T) {
	good := regBase + `
registry {
  connection    = "v"
  poll_interval = "10s"
  api {
    listen     = "127.0.0.1:8201"
    token_file = "/run/secrets/api-token"
  }
  destination "vault-kv" "copy" {
    mount  = "secret"
    path   = "copy"
    layout = "secret-key"
  }
  association "vault-kv" "copy" {
    mount       = "kv"
    secret_name = "app/prod"
    key_schema  = "APP_{{secretKey}}"
  }
}
`
	cfg, err := ParseConfig("good.hcl", []byte(good))
	if err != nil {
		t.Fatalf("a registry block alone: %v", err)
	}
	if cfg.registryPoll != 10*time.Second || len(cfg.Registry.Destinations) != 1 || len(cfg.Registry.Associations) != 1 {
		t.Fatalf("registry = %+v", cfg.Registry)
	}
	if got := registryDest(cfg.Registry, cfg.Registry.Destinations[0]); got.Connection != "v" || got.Mount != "secret" {
		t.Fatalf("declared destination = %+v", got)
	}

	for _, tc := range []struct{ name, from, to, want string }{
		{"unknown connection", `connection    = "v"`, `connection = "nope"`, `registry: unknown connection "nope"`},
		{"bad poll", `"10s"`, `"often"`, "registry: poll_interval"},
		{"no token", `token_file = "/run/secrets/api-token"`, `token_file = ""`, "token_file is empty"},
		{"half TLS", `token_file = "/run/secrets/api-token"`, "token_file = \"/t\"\n tls_cert = \"c.pem\"", "both tls_cert and tls_key"},
		{"plain beyond loopback", `"127.0.0.1:8201"`, `"0.0.0.0:8201"`, "beyond loopback"},
		{"bad listen", `"127.0.0.1:8201"`, `"nowhere"`, "listen"},
		{"vault-kv attributes on an external type", `destination "vault-kv" "copy"`, `destination "aws-sm" "copy"`, `vault-kv's attributes`},
		{"unknown type", `destination "vault-kv" "copy"`, `destination "s3" "copy"`, `unknown type "s3"`},
		{"unknown attribute", `layout = "secret-key"`, `layout = "secret-key"
  region = "eu-west-1"`, `region is not an attribute of type vault-kv`},
		{"undeclared destination", `association "vault-kv" "copy"`, `association "vault-kv" "other"`, "vault-kv/other is not declared"},
		{"no mount", `mount  = "secret"`, `mount = ""`, "mount"},
		{"bad schema", `"APP_{{secretKey}}"`, `"APP_{{key}}"`, "key_schema"},
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
	if _, err := ParseConfig("allowed.hcl", []byte(strings.Replace(strings.Replace(good, `"127.0.0.1:8201"`, `"0.0.0.0:8201"`, 1),
		`token_file = "/run/secrets/api-token"`, "token_file = \"/t\"\n allow_plaintext_non_loopback = true", 1))); err != nil {
		t.Fatalf("allow_plaintext_non_loopback: %v", err)
	}
	if _, err := ParseConfig("none.hcl", []byte(regBase)); err == nil || !strings.Contains(err.Error(), "nothing to do") {
		t.Fatalf("neither syncs nor registry: %v", err)
	}

	// A reload keeps the running registry: it refuses a changed registry
	// block, registry connection or state block.
	changed := func(from, to string) *Config {
		c, err := ParseConfig("next.hcl", []byte(strings.Replace(good, from, to, 1)))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if err := registryUnchanged(cfg, changed("", "")); err != nil {
		t.Fatalf("same config: %v", err)
	}
	for _, next := range []*Config{
		changed(`"10s"`, `"20s"`),
		changed(`address = "http://127.0.0.1:8200"`, `address = "http://127.0.0.1:8300"`),
		changed(`registry {`, "state {\n file = \"s.json\"\n}\nregistry {"),
	} {
		if err := registryUnchanged(cfg, next); err == nil || !strings.Contains(err.Error(), "restart syncd") {
			t.Fatalf("changed config: %v", err)
		}
	}
}

func TestRegistryCheckReadsTokenFile(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("T", "x")
	cfgPath := filepath.Join(dir, "syncd.hcl")
	write(t, cfgPath, regBase+fmt.Sprintf(`
registry {
  connection = "v"
  api { token_file = %q }
}
`, filepath.Join(dir, "missing-token")))
	if _, err := checkConfig(context.Background(), cfgPath); err == nil || !strings.Contains(err.Error(), "registry: api: token_file") {
		t.Fatalf("-check with no token file: %v", err)
	}
	write(t, filepath.Join(dir, "missing-token"), "tok\n")
	if _, err := checkConfig(context.Background(), cfgPath); err != nil {
		t.Fatalf("-check: %v", err)
	}
}

// apiCall makes a request of the registry's API; token "" sends none.
func apiCall(t *testing.T, base, token, method, path, body string) (int, map[string]any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// assocOf returns the status and updated_at of the one associated secret
// in an associations answer.
func assocOf(t *testing.T, out map[string]any) (status string, updated time.Time) {
	t.Helper()
	data, _ := out["data"].(map[string]any)
	secrets, _ := data["associated_secrets"].(map[string]any)
	if len(secrets) != 1 {
		t.Fatalf("associated_secrets = %v", out)
	}
	for _, v := range secrets {
		m := v.(map[string]any)
		ts, err := time.Parse(time.RFC3339Nano, m["updated_at"].(string))
		if err != nil {
			t.Fatal(err)
		}
		return m["sync_status"].(string), ts
	}
	return "", time.Time{}
}

// TestRegistryAgainstVault runs the daemon with a registry block: a
// vault-kv destination created over the API, an association set, a change
// of the secret in Vault that arrives by polling.
func TestRegistryAgainstVault(t *testing.T) {
	srv := vaulttest.Get(t)
	srcMount, dstMount := srv.NewMount(t), srv.NewMount(t)
	vc := srv.Client(t)
	ctx := context.Background()
	if _, err := vc.KVv2(srcMount).Put(ctx, "app", map[string]any{"DB": "one"}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SYNCD_TEST_TOKEN", srv.Token)
	dir := t.TempDir()
	const token = "api-token-3f9c"
	tokenFile := filepath.Join(dir, "api-token")
	write(t, tokenFile, token+"\n")
	apiAddr := freeAddr(t)
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

	stop, stderr := runSyncd(t, cfgPath, "127.0.0.1:0")
	base := "http://" + apiAddr
	waitFor(t, "the API", func() bool {
		code, _ := apiCall(t, base, token, "LIST", "/v1/sys/sync/destinations", "")
		return code == http.StatusOK || code == http.StatusNotFound // 404: none yet, as in Vault
	})
	if code, _ := apiCall(t, base, "", "GET", "/v1/sys/sync/destinations?list=true", ""); code != http.StatusUnauthorized {
		t.Fatalf("no token = %d, want 401", code)
	}
	if code, _ := apiCall(t, base, "wrong", "POST", "/v1/sys/sync/destinations/vault-kv/copy", `{}`); code != http.StatusForbidden {
		t.Fatalf("wrong token = %d, want 403", code)
	}

	body := fmt.Sprintf(`{"connection":"v","mount":%q,"path":"copy"}`, dstMount)
	if code, out := apiCall(t, base, token, "POST", "/v1/sys/sync/destinations/vault-kv/copy", body); code/100 != 2 {
		t.Fatalf("create destination = %d %v", code, out)
	}
	ref := registry.SecretRef{Mount: srcMount, Name: "app"}
	key := strings.Replace(registry.DefaultKeySchema(ref), "{{secretKey}}", "DB", 1)
	dstValue := func() any {
		sec, err := vc.KVv2(dstMount).Get(ctx, "copy")
		if err != nil {
			return nil
		}
		return sec.Data[key]
	}
	start := time.Now()
	code, out := apiCall(t, base, token, "POST", "/v1/sys/sync/destinations/vault-kv/copy/associations/set",
		fmt.Sprintf(`{"mount":%q,"secret_name":"app"}`, srcMount))
	if code != http.StatusOK {
		t.Fatalf("set = %d %v", code, out)
	}
	status, first := assocOf(t, out)
	if status != "SYNCED" || dstValue() != "one" {
		t.Fatalf("after set: %s, destination %v", status, dstValue())
	}
	t.Logf("set answered SYNCED in %v", time.Since(start).Round(time.Millisecond))
	data := out["data"].(map[string]any)
	for k := range data["associated_secrets"].(map[string]any) {
		if !strings.HasPrefix(k, "kv_") {
			t.Fatalf("associated_secrets keyed %q, want the mount's accessor", k)
		}
	}

	// The association's sync, beside Vault's paths: listed (its status
	// running or succeeded: Watch polls it), planned and triggered through
	// the sync resources, with the same token.
	code, out = apiCall(t, base, token, "GET", "/v1/secretsync/syncs", "")
	syncsData, _ := out["data"].(map[string]any)
	list, _ := syncsData["syncs"].([]any)
	if code != http.StatusOK || len(list) != 1 {
		t.Fatalf("GET /v1/secretsync/syncs = %d %v", code, out)
	}
	syncName, _ := list[0].(map[string]any)["name"].(string)
	if rec, _ := list[0].(map[string]any)["sync"].(map[string]any); syncName == "" || rec["status"] == "failed" || rec["status"] == nil {
		t.Fatalf("the association's sync: %v", list[0])
	}
	if code, out := apiCall(t, base, token, "GET", "/v1/secretsync/syncs/"+syncName+"/plan", ""); code != http.StatusOK || out["data"].(map[string]any)["dry_run"] != true {
		t.Fatalf("plan = %d %v", code, out)
	}
	if code, _ := apiCall(t, base, "", "POST", "/v1/secretsync/syncs/"+syncName+"/trigger", ""); code != http.StatusUnauthorized {
		t.Fatalf("trigger without a token = %d, want 401", code)
	}
	if code, out := apiCall(t, base, token, "POST", "/v1/secretsync/syncs/"+syncName+"/trigger?wait=true", ""); code != http.StatusOK {
		t.Fatalf("trigger = %d %v", code, out)
	}

	// SIGHUP with the same file: the registry keeps running, and its
	// association with it.
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the reload", func() bool { return strings.Contains(stderr.String(), `"msg":"configuration reloaded"`) })

	changed := time.Now()
	if _, err := vc.KVv2(srcMount).Put(ctx, "app", map[string]any{"DB": "two"}); err != nil {
		t.Fatal(err)
	}
	var last time.Time
	waitFor(t, "the change to arrive by polling", func() bool {
		code, out := apiCall(t, base, token, "GET", "/v1/sys/sync/destinations/vault-kv/copy/associations", "")
		if code != http.StatusOK {
			return false
		}
		status, last = assocOf(t, out)
		return status == "SYNCED" && last.After(first) && last.After(changed) && dstValue() == "two"
	})
	t.Logf("the change arrived in %v (poll_interval 300ms); updated_at %s -> %s",
		time.Since(changed).Round(time.Millisecond), first.Format(time.RFC3339Nano), last.Format(time.RFC3339Nano))

	stop()
	if strings.Contains(stderr.String(), token) || strings.Contains(stderr.String(), `"two"`) {
		t.Fatal("the API token or a secret value reached the log")
	}
}
