package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	gosync "sync"
	"testing"

	"github.com/secretsync/secretsync/audit"
	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/registry"
	"github.com/secretsync/secretsync/registry/httpapi"
)

// testToken is the token of the handlers the tests build.
const testToken = "s.test-token-0123456789abcdef"

// fixture is a handler over a registry whose destinations and secrets are
// in memory.
type fixture struct {
	t   *testing.T
	reg *registry.Registry
	h   http.Handler
	rec *audit.Recorder

	mu      gosync.Mutex
	dests   map[string]*memory.Destination // by "type/name"
	secrets map[string]*memory.Destination // by "mount/name"
}

// newFixture builds a fixture; opts gets the fixture's Auditor, and the
// test token when it sets no authentication.
func newFixture(t *testing.T, opts httpapi.Options) *fixture {
	t.Helper()
	f := &fixture{t: t, rec: audit.NewRecorder(), dests: map[string]*memory.Destination{}, secrets: map[string]*memory.Destination{}}
	drivers := map[string]registry.Driver{}
	for _, typ := range []string{registry.TypeAWSSecretsManager, registry.TypeAzureKeyVault, registry.TypeGCPSecretManager,
		registry.TypeGitHubRepository, registry.TypeVercelProject, registry.TypeVaultKV} {
		drivers[typ] = func(_ context.Context, tg registry.Target) (destination.Destination, error) {
			return f.dest(tg.Config.Type(), tg.Name), nil
		}
	}
	f.reg = registry.New(&registry.Options{
		Drivers: drivers,
		Source: func(_ context.Context, mount, name string) (destination.Reader, error) {
			return f.secret(mount, name), nil
		},
	})
	if opts.Token == "" && opts.TokenFile == "" && opts.Authenticate == nil && !opts.NoAuth {
		opts.Token = testToken
	}
	if opts.Auditor == nil {
		opts.Auditor = f.rec
	}
	h, err := httpapi.New(f.reg, &opts)
	if err != nil {
		t.Fatal(err)
	}
	f.h = h
	return f
}

func (f *fixture) dest(typ, name string) *memory.Destination {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := typ + "/" + name
	if f.dests[k] == nil {
		f.dests[k] = memory.New(nil)
	}
	return f.dests[k]
}

func (f *fixture) secret(mount, name string) *memory.Destination {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := mount + "/" + name
	if f.secrets[k] == nil {
		f.secrets[k] = memory.New(map[string]string{"password": "hunter2-value"})
	}
	return f.secrets[k]
}

// put creates a destination in the registry directly.
func (f *fixture) put(name string, cfg registry.Config) {
	f.t.Helper()
	if _, err := f.reg.Put(context.Background(), name, cfg); err != nil {
		f.t.Fatal(err)
	}
}

// set associates a secret in the registry directly.
func (f *fixture) set(typ, name, mount, secret string) {
	f.t.Helper()
	if _, err := f.reg.Set(context.Background(), typ, name, registry.SecretRef{Mount: mount, Name: secret}, nil); err != nil {
		f.t.Fatal(err)
	}
}

// newRequest returns a request to the loopback listener, with the test
// token in X-Vault-Token.
func newRequest(method, path, body string) *http.Request {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, "http://127.0.0.1:8200"+path, rd)
	r.Header.Set("X-Vault-Token", testToken)
	return r
}

// answer is a response as the tests look at it.
type answer struct {
	status int
	header http.Header
	raw    string
	body   map[string]any // nil when the body is empty
}

// serve sends r to the fixture's handler.
func (f *fixture) serve(r *http.Request) answer {
	return serve(f.t, f.h, r)
}

// do sends a request with the test token.
func (f *fixture) do(method, path, body string) answer {
	return f.serve(newRequest(method, path, body))
}

func serve(t *testing.T, h http.Handler, r *http.Request) answer {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	a := answer{status: w.Code, header: w.Header(), raw: w.Body.String()}
	if a.raw != "" {
		if err := json.Unmarshal([]byte(a.raw), &a.body); err != nil {
			t.Fatalf("%s %s: body is not a JSON object: %v: %s", r.Method, r.URL.Path, err, a.raw)
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s %s: Content-Type %q", r.Method, r.URL.Path, ct)
		}
	}
	return a
}

// errors returns the errors of a Vault error body, failing the test when
// the body is not one.
func (a answer) errors(t *testing.T) []string {
	t.Helper()
	raw, ok := a.body["errors"].([]any)
	if !ok || len(a.body) != 1 {
		t.Fatalf("status %d: not Vault's error body: %s", a.status, a.raw)
	}
	var out []string
	for _, e := range raw {
		s, ok := e.(string)
		if !ok {
			t.Fatalf("an error is not a string: %s", a.raw)
		}
		out = append(out, s)
	}
	return out
}

// data returns the data of a Vault envelope, failing the test when the
// body is not one.
func (a answer) data(t *testing.T) map[string]any {
	t.Helper()
	keys := []string{"auth", "data", "lease_duration", "lease_id", "renewable", "request_id", "warnings", "wrap_info"}
	if got := sortedKeys(a.body); !slices.Equal(got, keys) {
		t.Fatalf("status %d: envelope keys %v, want %v: %s", a.status, got, keys, a.raw)
	}
	d, ok := a.body["data"].(map[string]any)
	if !ok {
		t.Fatalf("data is not an object: %s", a.raw)
	}
	return d
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// shapeDiff lists where got's shape differs from want's: the keys of
// every object, and the JSON type of every value. Each element of a list
// in got has the shape of the first element of the list in want; a list
// that is not empty in want must not be empty in got.
func shapeDiff(path string, want, got any) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: %s, want an object", path, jsonType(got))}
		}
		var out []string
		if wk, gk := sortedKeys(w), sortedKeys(g); !slices.Equal(wk, gk) {
			out = append(out, fmt.Sprintf("%s: keys %v, want %v", path, gk, wk))
		}
		for k, wv := range w {
			if gv, ok := g[k]; ok {
				out = append(out, shapeDiff(path+"."+k, wv, gv)...)
			}
		}
		return out
	case []any:
		g, ok := got.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s: %s, want a list", path, jsonType(got))}
		}
		if len(w) == 0 {
			return nil
		}
		if len(g) == 0 {
			return []string{fmt.Sprintf("%s: empty list, want elements", path)}
		}
		var out []string
		for i, gv := range g {
			out = append(out, shapeDiff(fmt.Sprintf("%s[%d]", path, i), w[0], gv)...)
		}
		return out
	}
	if jsonType(want) != jsonType(got) {
		return []string{fmt.Sprintf("%s: %s, want %s", path, jsonType(got), jsonType(want))}
	}
	return nil
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}
