package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/secretsync/secretsync/registry/httpapi"
	"github.com/secretsync/secretsync/vaultkv/vaulttest"
)

func TestMain(m *testing.M) { os.Exit(vaulttest.Main(m)) }

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// dotenvConfig is a bidirectional sync between two dotenv files.
func dotenvConfig(dir, mode string) string {
	return fmt.Sprintf(`
state {
  file = %q
}
sync "files" {
  mode = %q
  auto_sync {
    interval = "50ms"
    debounce = "1ms"
  }
  source {
    dotenv { path = %q }
  }
  destination {
    dotenv { path = %q }
  }
}
`, filepath.Join(dir, "state.json"), mode, filepath.Join(dir, "src.env"), filepath.Join(dir, "dst.env"))
}

func call(t *testing.T, srv *httptest.Server, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestDaemonAPI(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "syncd.hcl")
	write(t, cfgPath, dotenvConfig(dir, "bidirectional"))
	write(t, filepath.Join(dir, "src.env"), "A=1\nB=2\n")
	cfg, err := LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	m := newMetrics()
	g, err := build(context.Background(), cfg, log, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{path: cfgPath, log: log, metrics: m}
	d.start(g)
	defer func() { d.current().stop(nil) }()
	srv := httptest.NewServer((&server{d: d}).routes())
	defer srv.Close()

	dst := filepath.Join(dir, "dst.env")
	waitFor(t, "the first round", func() bool { return strings.Contains(read(t, dst), "B=2") })
	waitFor(t, "readiness", func() bool { code, _ := call(t, srv, "GET", "/readyz", ""); return code == 200 })
	if code, _ := call(t, srv, "GET", "/healthz", ""); code != 200 {
		t.Fatal("healthz")
	}
	api, _ := testAPI(t, d)
	code, body := callAPI(t, api, "GET", "/v1/secretsync/syncs", "")
	var list struct {
		Data struct{ Syncs []httpapi.SyncInfo }
	}
	syncs := &list.Data.Syncs
	if err := json.Unmarshal([]byte(body), &list); code != 200 || err != nil || len(*syncs) != 1 || (*syncs)[0].Name != "files" || (*syncs)[0].Sync == nil {
		t.Fatalf("GET /v1/secretsync/syncs = %d %s", code, body)
	}

	// Both files change A: a conflict, listed, then resolved through the API.
	write(t, filepath.Join(dir, "src.env"), "A=from-src\nB=2\n")
	write(t, dst, "A=from-dst\nB=2\n")
	if code, _ := callAPI(t, api, "POST", "/v1/secretsync/syncs/files/trigger", ""); code != http.StatusAccepted {
		t.Fatalf("trigger = %d", code)
	}
	waitFor(t, "the conflict", func() bool {
		_, body := callAPI(t, api, "GET", "/v1/secretsync/syncs/files/conflicts", "")
		return strings.Contains(body, `"key":"A"`)
	})
	if code, body := callAPI(t, api, "POST", "/v1/secretsync/syncs/files/resolve", `{"key":"A","action":"maybe"}`); code != 400 {
		t.Fatalf("bad resolve = %d %s", code, body)
	}
	if code, body := callAPI(t, api, "POST", "/v1/secretsync/syncs/files/resolve", `{"key":"A","action":"keep-destination"}`); code != 200 {
		t.Fatalf("resolve = %d %s", code, body)
	}
	if !strings.Contains(read(t, filepath.Join(dir, "src.env")), "A=from-dst") {
		t.Fatalf("src.env after resolve: %q", read(t, filepath.Join(dir, "src.env")))
	}
	if code, _ := callAPI(t, api, "POST", "/v1/secretsync/syncs/nope/trigger", ""); code != 404 {
		t.Fatalf("unknown sync = %d", code)
	}
	_, metrics := call(t, srv, "GET", "/metrics", "")
	for _, want := range []string{`secretsync_rounds_total{sync="files"}`, `secretsync_flagged_conflicts{sync="files"}`, "# TYPE secretsync_keys_changed_total counter"} {
		if !strings.Contains(metrics, want) {
			t.Fatalf("metrics lack %s:\n%s", want, metrics)
		}
	}

	// A bad new config is refused; the running one goes on.
	write(t, cfgPath, strings.Replace(dotenvConfig(dir, "bidirectional"), `"bidirectional"`, `"sideways"`, 1))
	err = d.reload(context.Background())
	if err == nil || !strings.Contains(err.Error(), "syncd.hcl:") {
		t.Fatalf("reload of a bad config = %v", err)
	}
	write(t, filepath.Join(dir, "src.env"), "A=from-dst\nB=2\nC=3\n")
	waitFor(t, "the old config to keep running", func() bool { return strings.Contains(read(t, dst), "C=3") })
	// A good one is taken (the state file stays open across the reload).
	write(t, cfgPath, dotenvConfig(dir, "push"))
	if err := d.reload(context.Background()); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if d.current().syncs["files"].syncer.Config().Mode.String() != "push" {
		t.Fatal("the new config is not running")
	}
	if strings.Contains(logs.String(), "from-src") || strings.Contains(metrics, "from-") {
		t.Fatal("a secret value reached the logs or metrics")
	}
}

func TestOnceAndPlan(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "syncd.hcl")
	write(t, cfgPath, dotenvConfig(dir, "push"))
	write(t, filepath.Join(dir, "src.env"), "A=1\n")
	var out, errb bytes.Buffer
	if code := run([]string{"-config", cfgPath, "-plan"}, &out, &errb); code != 0 {
		t.Fatalf("-plan = %d: %s %s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "created") || read(t, filepath.Join(dir, "dst.env")) != "" {
		t.Fatalf("-plan wrote or did not report: %s", out.String())
	}
	out.Reset()
	if code := run([]string{"-config", cfgPath, "-once"}, &out, &errb); code != 0 {
		t.Fatalf("-once = %d: %s %s", code, out.String(), errb.String())
	}
	if !strings.Contains(read(t, filepath.Join(dir, "dst.env")), "A=1") {
		t.Fatal("-once did not write")
	}
	// Drift at the destination of a push: flagged, and -once exits 3; so
	// does -plan, which would flag it, and -once again while it waits.
	write(t, filepath.Join(dir, "dst.env"), "A=changed\n")
	write(t, filepath.Join(dir, "src.env"), "A=2\n")
	for _, mode := range []string{"-plan", "-once", "-once"} {
		out.Reset()
		if code := run([]string{"-config", cfgPath, mode}, &out, &errb); code != exitConflicts || !strings.Contains(out.String(), "CONFLICTS: 1 ") {
			t.Fatalf("%s with a conflict = %d, want 3:\n%s", mode, code, out.String())
		}
	}
	if code := run([]string{"-config", filepath.Join(dir, "missing.hcl"), "-once"}, &out, &errb); code != 2 {
		t.Fatalf("missing config = %d", code)
	}
}

// TestOnceAgainstVault pushes a dotenv file to a real Vault with the state
// kept in Vault, with a token read from an environment variable.
func TestOnceAgainstVault(t *testing.T) {
	srv := vaulttest.Get(t)
	mount := srv.NewMount(t)
	t.Setenv("SYNCD_TEST_TOKEN", srv.Token)
	dir := t.TempDir()
	write(t, filepath.Join(dir, "app.env"), "DB_URL=pg://db\nAPI_KEY=k\n")
	cfgPath := filepath.Join(dir, "syncd.hcl")
	write(t, cfgPath, fmt.Sprintf(`
state {
  connection = "v"
  mount = %[1]q
}
connection "v" {
  address = %[2]q
  token { env = "SYNCD_TEST_TOKEN" }
}
sync "app" {
  key_schema = "prod/{{secretKey}}"
  source {
    dotenv { path = %[3]q }
  }
  destination {
    vault {
      connection = "v"
      mount = %[1]q
      path = "apps"
      layout = "secret-key"
    }
  }
}
`, mount, srv.Addr, filepath.Join(dir, "app.env")))
	var out, errb bytes.Buffer
	if code := run([]string{"-config", cfgPath, "-once"}, &out, &errb); code != 0 {
		t.Fatalf("-once = %d: %s %s", code, out.String(), errb.String())
	}
	sec, err := srv.Client(t).KVv2(mount).Get(context.Background(), "apps/prod/DB_URL")
	if err != nil || sec.Data["value"] != "pg://db" {
		t.Fatalf("Vault: %v %v", sec, err)
	}
	if _, err := srv.Client(t).KVv2(mount).Get(context.Background(), "secretsync/state/app"); err != nil {
		t.Fatalf("state not kept in Vault: %v", err)
	}
	if !strings.Contains(errb.String(), "HCV_CONNECTION_CREATED") {
		t.Fatalf("no connection event in the log: %s", errb.String())
	}
}

// TestOnceWithTransitSealedState: the state file's fingerprint key is
// sealed with a Vault Transit key; a daemon whose Transit key is gone
// refuses to start with the cause, and the state stays as it was.
func TestOnceWithTransitSealedState(t *testing.T) {
	srv := vaulttest.Get(t)
	mount := srv.NewMount(t)
	root := srv.Client(t)
	ctx := context.Background()
	transit := "transit-" + filepath.Base(mount)
	if err := root.Sys().MountWithContext(ctx, transit, &api.MountInput{Type: "transit"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = root.Sys().UnmountWithContext(context.Background(), transit) })
	if _, err := root.Logical().WriteWithContext(ctx, transit+"/keys/syncd", nil); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SYNCD_TEST_TOKEN", srv.Token)
	dir := t.TempDir()
	write(t, filepath.Join(dir, "app.env"), "DB_URL=pg://db\n")
	cfg := func(key string) string {
		p := filepath.Join(dir, "syncd-"+key+".hcl")
		write(t, p, fmt.Sprintf(`
state {
  file = %[4]q
  transit {
    connection = "v"
    mount      = %[5]q
    key        = %[6]q
  }
}
connection "v" {
  address = %[2]q
  token { env = "SYNCD_TEST_TOKEN" }
}
sync "app" {
  source {
    dotenv { path = %[3]q }
  }
  destination {
    vault {
      connection = "v"
      mount = %[1]q
      path = "apps"
      layout = "secret-key"
    }
  }
}
`, mount, srv.Addr, filepath.Join(dir, "app.env"), filepath.Join(dir, "state.json"), transit, key))
		return p
	}
	for range 2 {
		var out, errb bytes.Buffer
		if code := run([]string{"-config", cfg("syncd"), "-once"}, &out, &errb); code != 0 {
			t.Fatalf("-once = %d: %s %s", code, out.String(), errb.String())
		}
	}
	key, err := os.ReadFile(filepath.Join(dir, "state.json.key"))
	if err != nil || !strings.Contains(string(key), `"sealer":"vault-transit"`) || !strings.Contains(string(key), "vault:v1:") {
		t.Fatalf("key file %q, %v: want Transit ciphertext", key, err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, "state.json"))
	var out, errb bytes.Buffer
	if code := run([]string{"-config", cfg("missing"), "-once"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), transit+"/decrypt/missing") {
		t.Fatalf("-once with a missing Transit key = %d: %s %s", code, out.String(), errb.String())
	}
	after, _ := os.ReadFile(filepath.Join(dir, "state.json"))
	if !bytes.Equal(before, after) {
		t.Fatal("the state file changed although the daemon could not unseal its key")
	}
}
