package httpapi_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/secretsync/secretsync/audit"
	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/registry"
	"github.com/secretsync/secretsync/registry/httpapi"
)

const dests = "/v1/sys/sync/destinations"

func TestListEmptyAndGETList(t *testing.T) {
	f := newFixture(t, httpapi.Options{})
	for _, r := range []struct{ method, path string }{{"LIST", dests}, {"LIST", dests + "/"}, {"GET", dests + "?list=true"}} {
		a := f.do(r.method, r.path, "")
		if a.status != 200 {
			t.Fatalf("%s %s: %d %s", r.method, r.path, a.status, a.raw)
		}
		d := a.data(t)
		if ki, ok := d["key_info"].(map[string]any); !ok || len(ki) != 0 {
			t.Errorf("%s: key_info %v, want {}", r.method, d["key_info"])
		}
		if k, ok := d["keys"].([]any); !ok || len(k) != 0 {
			t.Errorf("%s: keys %v, want []", r.method, d["keys"])
		}
		if a.body["warnings"] != nil || a.body["wrap_info"] != nil || a.body["auth"] != nil {
			t.Errorf("warnings, wrap_info, auth not null: %s", a.raw)
		}
		if id, _ := a.body["request_id"].(string); len(id) != 36 || id[14] != '4' {
			t.Errorf("request_id %q is not a random UUID", id)
		}
	}
	a := f.do("GET", dests, "")
	if a.status != 405 || a.header.Get("Allow") != "LIST, GET" {
		t.Errorf("GET without list: %d Allow %q", a.status, a.header.Get("Allow"))
	}
	if errs := a.errors(t); len(errs) != 1 || errs[0] != "unsupported operation" {
		t.Errorf("errors %q", errs)
	}
}

func TestListGroupsByType(t *testing.T) {
	f := newFixture(t, httpapi.Options{})
	f.put("b", registry.AWSSecretsManager{})
	f.put("a", registry.AWSSecretsManager{})
	f.put("x", registry.VaultKV{Connection: "c", Mount: "kv"})
	d := f.do("LIST", dests, "").data(t)
	ki := d["key_info"].(map[string]any)
	if got := ki["aws-sm"].([]any); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Errorf("aws-sm: %v", got)
	}
	if keys := d["keys"].([]any); len(keys) != 2 || keys[0] != "aws-sm" || keys[1] != "vault-kv" {
		t.Errorf("keys %v", keys)
	}
}

// Every built-in type is created from its JSON body, shows its
// credentials as "*****", and reads back the same.
func TestCreateEachType(t *testing.T) {
	cases := []struct {
		typ, body string
		creds     []string
	}{
		{"aws-sm", `{"access_key_id":"AKIAX","secret_access_key":"sk","region":"eu-west-3","granularity":"secret-key","secret_name_template":"{{ .SecretKey }}"}`, []string{"access_key_id", "secret_access_key"}},
		{"azure-kv", `{"key_vault_uri":"https://v.vault.azure.net","tenant_id":"t","client_id":"c","client_secret":"cs","cloud":"AzurePublic"}`, []string{"client_secret"}},
		{"gcp-sm", `{"credentials":"{\"type\":\"service_account\"}","project_id":"p"}`, []string{"credentials"}},
		{"gh", `{"access_token":"ghp","repository_owner":"o","repository_name":"r"}`, []string{"access_token"}},
		{"vercel-project", `{"access_token":"v","project_id":"prj","team_id":"team","deployment_environments":["preview"]}`, []string{"access_token"}},
		{"vault-kv", `{"connection":"primary","mount":"kv","path":"app"}`, nil},
	}
	f := newFixture(t, httpapi.Options{})
	for _, c := range cases {
		p := dests + "/" + c.typ + "/d1"
		created := f.do("POST", p, c.body)
		if created.status != 200 {
			t.Fatalf("POST %s: %d %s", p, created.status, created.raw)
		}
		read := f.do("GET", p, "")
		if read.status != 200 {
			t.Fatalf("GET %s: %d %s", p, read.status, read.raw)
		}
		for _, a := range []answer{created, read} {
			d := a.data(t)
			if d["name"] != "d1" || d["type"] != c.typ {
				t.Errorf("%s: name %v type %v", c.typ, d["name"], d["type"])
			}
			cd := d["connection_details"].(map[string]any)
			for _, k := range c.creds {
				if cd[k] != "*****" {
					t.Errorf("%s: %s = %v, want *****", c.typ, k, cd[k])
				}
			}
			if len(cd) == 0 {
				t.Errorf("%s: no connection_details", c.typ)
			}
		}
	}
	// PUT is POST, as in Vault.
	if a := f.do("PUT", dests+"/gh/d2", cases[3].body); a.status != 200 {
		t.Errorf("PUT: %d %s", a.status, a.raw)
	}
}

func TestCreateRefused(t *testing.T) {
	big := `{"access_token":"` + strings.Repeat("x", 2<<20) + `"}`
	cases := []struct {
		name, typ, body string
		status          int
		want            string
	}{
		{"unknown field", "gh", `{"access_token":"t","repository_owner":"o","repository_name":"r","colour":"blue"}`, 400, `unknown field "colour"`},
		{"not JSON", "gh", `{"access_token":`, 400, "not valid JSON"},
		{"bad JSON", "gh", `{"access_token" "t"}`, 400, "not valid JSON (at byte"},
		{"wrong JSON type", "aws-sm", `{"region":5}`, 400, `field "region": a JSON number where a string belongs`},
		{"array", "aws-sm", `[1]`, 400, "request body is a JSON array, not an object"},
		{"two values", "aws-sm", `{} {}`, 400, "more than one JSON value"},
		{"missing field", "gh", `{}`, 400, "invalid gh destination: access_token: missing"},
		{"empty body", "azure-kv", ``, 400, "invalid azure-kv destination: key_vault_uri: missing"},
		{"bad value", "aws-sm", `{"region":"moon-base-1x"}`, 400, "invalid aws-sm destination: region: the value is not an AWS region name"},
		{"bad name", "gh", `{"access_token":"t","repository_owner":"o","repository_name":"r"}`, 400, "name: must be"},
		{"unknown type", "nope", `{}`, 400, `unsupported destination type "nope"`},
		{"too large", "gh", big, 413, "request body over"},
	}
	f := newFixture(t, httpapi.Options{})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			name := "d1"
			if c.name == "bad name" {
				name = "-bad"
			}
			a := f.do("POST", dests+"/"+c.typ+"/"+name, c.body)
			if a.status != c.status {
				t.Fatalf("status %d, want %d: %s", a.status, c.status, a.raw)
			}
			if errs := a.errors(t); len(errs) != 1 || !strings.Contains(errs[0], c.want) {
				t.Errorf("errors %q, want one holding %q", errs, c.want)
			}
		})
	}
	if a := f.do("LIST", dests, ""); len(a.data(t)["keys"].([]any)) != 0 {
		t.Errorf("a refused create left a destination: %s", a.raw)
	}
}

func TestReadAndDeleteErrors(t *testing.T) {
	f := newFixture(t, httpapi.Options{})
	if a := f.do("GET", dests+"/gh/none", ""); a.status != 404 || !strings.Contains(a.errors(t)[0], "gh/none") {
		t.Errorf("GET unknown: %d %s", a.status, a.raw)
	}
	if a := f.do("DELETE", dests+"/gh/none", ""); a.status != 404 {
		t.Errorf("DELETE unknown: %d %s", a.status, a.raw)
	}
	f.put("r", registry.GitHubRepository{AccessToken: "t", RepositoryOwner: "o", RepositoryName: "r"})
	f.set("gh", "r", "kv", "app")
	a := f.do("DELETE", dests+"/gh/r", "")
	if a.status != 400 || !strings.Contains(a.errors(t)[0], "has 1 association(s)") {
		t.Errorf("DELETE in use: %d %s", a.status, a.raw)
	}
	if a := f.do("DELETE", dests+"/gh/r?purge=maybe", ""); a.status != 400 || !strings.Contains(a.errors(t)[0], "purge") {
		t.Errorf("DELETE purge=maybe: %d %s", a.status, a.raw)
	}
	f.do("POST", dests+"/gh/r/associations/remove", `{"mount":"kv","secret_name":"app"}`)
	a = f.do("DELETE", dests+"/gh/r", "")
	if a.status != 204 || a.raw != "" {
		t.Errorf("DELETE: %d %q", a.status, a.raw)
	}
	if a := f.do("GET", dests+"/gh/r", ""); a.status != 404 {
		t.Errorf("GET after DELETE: %d", a.status)
	}
}

func TestPaths(t *testing.T) {
	f := newFixture(t, httpapi.Options{})
	f.put("r", registry.GitHubRepository{AccessToken: "t", RepositoryOwner: "o", RepositoryName: "r"})
	for _, c := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{"GET", "/v1/sys/health", 404, ""},
		{"GET", "/v1/sys/sync/other", 404, ""},
		{"GET", dests + "/gh", 404, ""},
		{"GET", dests + "/gh/r/x", 404, ""},
		{"GET", dests + "/gh/r/associations/x", 404, ""},
		{"GET", dests + "//r", 404, ""},
		{"PATCH", dests + "/gh/r", 405, "GET, POST, PUT, DELETE"},
		{"POST", dests + "/gh/r/associations", 405, "GET"},
		{"GET", dests + "/gh/r/associations/set", 405, "POST, PUT"},
		{"POST", dests, 405, "LIST, GET"},
	} {
		a := f.do(c.method, c.path, "")
		if a.status != c.status || a.header.Get("Allow") != c.allow {
			t.Errorf("%s %s: %d Allow %q, want %d %q", c.method, c.path, a.status, a.header.Get("Allow"), c.status, c.allow)
		}
		a.errors(t)
	}
}

func TestAssociations(t *testing.T) {
	accessors := func(_ context.Context, mount string) (string, error) {
		if mount == "kv" {
			return "kv_1234", nil
		}
		return "", errors.New("unknown mount")
	}
	f := newFixture(t, httpapi.Options{Accessor: accessors})
	f.put("r", registry.GitHubRepository{AccessToken: "t", RepositoryOwner: "o", RepositoryName: "r"})
	p := dests + "/gh/r/associations"

	a := f.do("GET", p, "")
	d := a.data(t)
	if d["store_name"] != "r" || d["store_type"] != "gh" || len(d["associated_secrets"].(map[string]any)) != 0 {
		t.Errorf("no associations: %s", a.raw)
	}

	a = f.do("POST", p+"/set", `{"mount":"kv","secret_name":"app/prod"}`)
	if a.status != 200 {
		t.Fatalf("set: %d %s", a.status, a.raw)
	}
	e := a.data(t)["associated_secrets"].(map[string]any)["kv_1234/app/prod"].(map[string]any)
	if e["accessor"] != "kv_1234" || e["secret_name"] != "app/prod" || e["sync_status"] != "SYNCED" || e["updated_at"] == "" {
		t.Errorf("set: %s", a.raw)
	}
	if got := f.dest("gh", "r").Len(); got != 1 {
		t.Errorf("the destination holds %d entries after set, want 1", got)
	}

	// A mount whose accessor is unknown is keyed by its path, with a warning.
	a = f.do("POST", p+"/set", `{"mount":"other","secret_name":"s"}`)
	if _, ok := a.data(t)["associated_secrets"].(map[string]any)["other/s"]; !ok {
		t.Errorf("set other: %s", a.raw)
	}
	if w, _ := a.body["warnings"].([]any); len(w) != 1 || !strings.Contains(w[0].(string), `mount "other"`) {
		t.Errorf("warnings %v", a.body["warnings"])
	}

	a = f.do("GET", p, "")
	if got := len(a.data(t)["associated_secrets"].(map[string]any)); got != 2 {
		t.Errorf("%d associations, want 2: %s", got, a.raw)
	}

	a = f.do("POST", p+"/remove", `{"mount":"kv","secret_name":"app/prod"}`)
	e = a.data(t)["associated_secrets"].(map[string]any)["kv_1234/app/prod"].(map[string]any)
	if a.status != 200 || e["sync_status"] != "UNSYNCED" {
		t.Errorf("remove: %d %s", a.status, a.raw)
	}
	a = f.do("GET", p, "")
	if _, ok := a.data(t)["associated_secrets"].(map[string]any)["kv_1234/app/prod"]; ok {
		t.Errorf("still associated after remove: %s", a.raw)
	}
	// Removing what is not associated succeeds, UNSYNCED, as in Vault.
	a = f.do("POST", p+"/remove", `{"mount":"kv","secret_name":"never"}`)
	if a.status != 200 || a.data(t)["associated_secrets"].(map[string]any)["kv_1234/never"].(map[string]any)["sync_status"] != "UNSYNCED" {
		t.Errorf("remove never set: %d %s", a.status, a.raw)
	}
}

func TestAssociationsRefused(t *testing.T) {
	f := newFixture(t, httpapi.Options{})
	f.put("r", registry.GitHubRepository{AccessToken: "t", RepositoryOwner: "o", RepositoryName: "r"})
	for _, c := range []struct {
		path, body string
		status     int
		want       string
	}{
		{dests + "/gh/none/associations/set", `{"mount":"kv","secret_name":"a"}`, 404, "gh/none"},
		{dests + "/gh/none/associations", "", 404, "gh/none"},
		{dests + "/gh/r/associations/set", `{"mount":"kv"}`, 400, "secret_name"},
		{dests + "/gh/r/associations/set", `{"mount":"/kv/","secret_name":"a"}`, 400, "mount"},
		{dests + "/gh/r/associations/set", `{"mount":"kv","secret_name":"a","name":"a"}`, 400, `unknown field "name"`},
		{dests + "/gh/r/associations/remove", `{"mount":"kv","secret_name":5}`, 400, `field "secret_name"`},
	} {
		method := "POST"
		if c.body == "" {
			method = "GET"
		}
		a := f.do(method, c.path, c.body)
		if a.status != c.status || !strings.Contains(a.errors(t)[0], c.want) {
			t.Errorf("%s %s: %d %s, want %d holding %q", method, c.path, a.status, a.raw, c.status, c.want)
		}
	}
}

// A set whose sync fails is answered 200, as in Vault: the association
// exists, its status says what failed, and warnings why.
func TestSetSyncFails(t *testing.T) {
	f := newFixture(t, httpapi.Options{})
	f.dests["gh/r"] = memory.NewWithOptions(nil, &memory.Options{BeforeApply: func(context.Context, destination.Change) error {
		return errors.New("store unavailable")
	}})
	f.put("r", registry.GitHubRepository{AccessToken: "t", RepositoryOwner: "o", RepositoryName: "r"})
	a := f.do("POST", dests+"/gh/r/associations/set", `{"mount":"kv","secret_name":"app"}`)
	if a.status != 200 {
		t.Fatalf("set: %d %s", a.status, a.raw)
	}
	e := a.data(t)["associated_secrets"].(map[string]any)["kv/app"].(map[string]any)
	if st := e["sync_status"]; st != "EXTERNAL_SERVICE_ERROR" {
		t.Errorf("sync_status %v after the destination failed, want EXTERNAL_SERVICE_ERROR", st)
	}
	if w, _ := a.body["warnings"].([]any); len(w) != 1 || !strings.HasPrefix(w[0].(string), "sync of kv/app failed") {
		t.Errorf("warnings %v", a.body["warnings"])
	}
}

// A program's own Config type, decoded by Decoder.
type myConfig struct {
	Endpoint string              `json:"endpoint"`
	APIKey   registry.Credential `json:"api_key"`
}

func (myConfig) Type() string { return "my-store" }
func (c myConfig) Validate() error {
	if c.Endpoint == "" {
		return &registry.ConfigError{Type: "my-store", Field: "endpoint", Reason: "missing"}
	}
	return nil
}

func TestOwnTypes(t *testing.T) {
	f := newFixture(t, httpapi.Options{Types: map[string]httpapi.ConfigDecoder{"my-store": httpapi.Decoder[myConfig]()}})
	a := f.do("POST", dests+"/my-store/m", `{"endpoint":"https://x","api_key":"k"}`)
	if a.status != 200 || a.data(t)["connection_details"].(map[string]any)["api_key"] != "*****" {
		t.Errorf("own type: %d %s", a.status, a.raw)
	}
	if a := f.do("POST", dests+"/my-store/m", `{"api_key":"k"}`); a.status != 400 || !strings.Contains(a.errors(t)[0], "endpoint: missing") {
		t.Errorf("own type invalid: %d %s", a.status, a.raw)
	}
	// A decoder that returns a Config of another type is refused.
	f = newFixture(t, httpapi.Options{Types: map[string]httpapi.ConfigDecoder{"other": httpapi.Decoder[myConfig]()}})
	if a := f.do("POST", dests+"/other/m", `{"endpoint":"https://x"}`); a.status != 400 {
		t.Errorf("mismatched type: %d %s", a.status, a.raw)
	}
}

func TestNewRefuses(t *testing.T) {
	reg := registry.New(nil)
	for _, c := range []struct {
		name string
		opts httpapi.Options
		want string
	}{
		{"no authentication", httpapi.Options{}, "no authentication"},
		{"two", httpapi.Options{Token: "a", Authenticate: func(*http.Request) (string, error) { return "x", nil }}, "only one"},
		{"no auth and token", httpapi.Options{NoAuth: true, Token: "a"}, "NoAuth"},
		{"missing token file", httpapi.Options{TokenFile: t.TempDir() + "/none"}, "TokenFile"},
		{"bad host", httpapi.Options{Token: "a", Hosts: []string{"a b"}}, "Hosts"},
		{"bad origin", httpapi.Options{Token: "a", Origins: []string{"example.com"}}, "Origins"},
		{"nil decoder", httpapi.Options{Token: "a", Types: map[string]httpapi.ConfigDecoder{"x": nil}}, "Types"},
	} {
		if _, err := httpapi.New(reg, &c.opts); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error holding %q", c.name, err, c.want)
		}
	}
	if _, err := httpapi.New(nil, &httpapi.Options{NoAuth: true}); err == nil {
		t.Error("nil registry accepted")
	}
}

// DELETE with purge=true unsyncs every association, then deletes the
// destination; the destination's entries are gone.
func TestDeletePurge(t *testing.T) {
	f := newFixture(t, httpapi.Options{})
	f.put("r", registry.GitHubRepository{AccessToken: "t", RepositoryOwner: "o", RepositoryName: "r"})
	f.set("gh", "r", "kv", "a")
	f.set("gh", "r", "kv", "b")
	f.dest("gh", "r").Set("UNRELATED", "kept")
	if n := f.dest("gh", "r").Len(); n != 3 {
		t.Fatalf("%d entries before the purge", n)
	}
	if a := f.do("DELETE", dests+"/gh/r?purge=false", ""); a.status != 400 {
		t.Errorf("purge=false: %d %s", a.status, a.raw)
	}
	a := f.do("DELETE", dests+"/gh/r?purge=true", "")
	if a.status != 204 {
		t.Fatalf("purge: %d %s", a.status, a.raw)
	}
	if got := f.dest("gh", "r").Snapshot(); len(got) != 1 || got["UNRELATED"] != "kept" {
		t.Errorf("entries after the purge: %v", got)
	}
	if a := f.do("GET", dests+"/gh/r", ""); a.status != 404 {
		t.Errorf("GET after the purge: %d", a.status)
	}
	ev := f.rec.Filter(httpapi.EventDestinationDeleted)
	if last := ev[len(ev)-1]; last.Outcome != audit.Success || last.Attrs["purge"] != "true" {
		t.Errorf("event %+v", last)
	}
}

// Every sync_status answered is one of Vault's.
func TestVaultStatuses(t *testing.T) {
	vault := map[any]bool{"SYNCED": true, "UNSYNCED": true, "PENDING": true,
		"INTERNAL_VAULT_ERROR": true, "CLIENT_SIDE_ERROR": true, "EXTERNAL_SERVICE_ERROR": true}
	f := newFixture(t, httpapi.Options{})
	f.dests["gh/bad"] = memory.NewWithOptions(nil, &memory.Options{BeforeApply: func(context.Context, destination.Change) error {
		return errors.New("store unavailable")
	}})
	for _, name := range []string{"r", "bad"} {
		f.put(name, registry.GitHubRepository{AccessToken: "t", RepositoryOwner: "o", RepositoryName: "r"})
		p := dests + "/gh/" + name + "/associations"
		for _, a := range []answer{
			f.do("POST", p+"/set", `{"mount":"kv","secret_name":"a"}`),
			f.do("GET", p, ""),
			f.do("POST", p+"/remove", `{"mount":"kv","secret_name":"a"}`),
			f.do("POST", p+"/remove", `{"mount":"kv","secret_name":"never"}`),
		} {
			for k, e := range a.data(t)["associated_secrets"].(map[string]any) {
				if st := e.(map[string]any)["sync_status"]; !vault[st] {
					t.Errorf("%s: sync_status %v is not Vault's", k, st)
				}
			}
		}
	}
}

// A purge whose unsync fails answers 500 and leaves the destination and
// the association that failed; deleting again, once the store is back,
// finishes.
func TestDeletePurgeFails(t *testing.T) {
	f := newFixture(t, httpapi.Options{})
	var down atomic.Bool
	f.dests["gh/r"] = memory.NewWithOptions(nil, &memory.Options{BeforeApply: func(context.Context, destination.Change) error {
		if down.Load() {
			return errors.New("store unavailable")
		}
		return nil
	}})
	f.put("r", registry.GitHubRepository{AccessToken: "t", RepositoryOwner: "o", RepositoryName: "r"})
	f.set("gh", "r", "kv", "a")
	down.Store(true)
	a := f.do("DELETE", dests+"/gh/r?purge=true", "")
	if a.status != 500 || !strings.Contains(a.errors(t)[0], "purge") {
		t.Errorf("purge with the store down: %d %s", a.status, a.raw)
	}
	a = f.do("GET", dests+"/gh/r/associations", "")
	e, ok := a.data(t)["associated_secrets"].(map[string]any)["kv/a"].(map[string]any)
	if !ok || e["sync_status"] != "EXTERNAL_SERVICE_ERROR" {
		t.Errorf("after the failed purge: %s", a.raw)
	}
	down.Store(false)
	if a := f.do("DELETE", dests+"/gh/r?purge=true", ""); a.status != 204 {
		t.Errorf("purge again: %d %s", a.status, a.raw)
	}
	if n := f.dest("gh", "r").Len(); n != 0 {
		t.Errorf("%d entries left", n)
	}
}
