package vaultkv

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/secretsync/secretsync/vaultkv/vaulttest"
)

// fixtureDir holds the raw HTTP bodies of a real Vault 1.19 (the tests'
// server) answering the requests of fixtureCalls, one file each.
// TestFixturesAreVaults checks that the server still answers so, and
// rewrites them when run with -update-fixtures.
const fixtureDir = "testdata/vault-1.19"

var updateFixtures = flag.Bool("update-fixtures", false, "rewrite "+fixtureDir+" from the test Vault's answers")

// A fixtureCall is one request to Vault, on a fresh KV v2 mount ("{m}" in
// path). Calls without a file prepare the next ones.
type fixtureCall struct {
	file         string
	method, path string
	body         string
	status       int
}

// The values of the data fixture: a string, a boolean, a number larger than
// a float64 holds exactly, a fraction, null, nested values, and NUL and
// control bytes in a string.
const fixtureValues = `{"a":"x","b":true,"big":12345678901234567890,"n":1.5,"nul":null,"o":{"k":["v",2]},"u":"päss\u0000\u0007"}`

var fixtureCalls = []fixtureCall{
	{method: "POST", path: "{m}/metadata/app", body: `{"custom_metadata":{"secretsync-owner":"me","team":"payments"}}`, status: 204},
	{file: "write.json", method: "POST", path: "{m}/data/app", body: `{"data":` + fixtureValues + `,"options":{"cas":0}}`, status: 200},
	{file: "write-cas-mismatch.json", method: "POST", path: "{m}/data/app", body: `{"data":{"a":"y"},"options":{"cas":0}}`, status: 400},
	{file: "data.json", method: "GET", path: "{m}/data/app", status: 200},
	{file: "metadata.json", method: "GET", path: "{m}/metadata/app", status: 200},
	{method: "POST", path: "{m}/data/dir/nested", body: `{"data":{"k":"v"}}`, status: 200},
	{file: "list.json", method: "LIST", path: "{m}/metadata/", status: 200},
	{file: "list-missing.json", method: "LIST", path: "{m}/metadata/nothing/", status: 404},
	{method: "POST", path: "{m}/data/gone", body: `{"data":{"k":"v"}}`, status: 200},
	{method: "DELETE", path: "{m}/data/gone", status: 204},
	{file: "data-deleted.json", method: "GET", path: "{m}/data/gone", status: 404},
	{file: "metadata-deleted.json", method: "GET", path: "{m}/metadata/gone", status: 200},
	{method: "POST", path: "{m}/data/burnt", body: `{"data":{"k":"v"}}`, status: 200},
	{method: "PUT", path: "{m}/destroy/burnt", body: `{"versions":[1]}`, status: 204},
	{file: "data-destroyed.json", method: "GET", path: "{m}/data/burnt", status: 404},
	{file: "metadata-destroyed.json", method: "GET", path: "{m}/metadata/burnt", status: 200},
	{method: "POST", path: "{m}/metadata/empty", body: `{"custom_metadata":{"team":"payments"}}`, status: 204},
	{file: "data-noversion.json", method: "GET", path: "{m}/data/empty", status: 404},
	{file: "metadata-noversion.json", method: "GET", path: "{m}/metadata/empty", status: 200},
	{file: "data-missing.json", method: "GET", path: "{m}/data/missing", status: 404},
	{file: "mount.json", method: "GET", path: "sys/internal/ui/mounts/{m}", status: 200},
}

// TestFixturesAreVaults replays fixtureCalls on the real Vault and checks
// that each answer is its fixture, but for request ids, times, accessors
// and the mount's name; with -update-fixtures it writes the answers as the
// fixtures.
func TestFixturesAreVaults(t *testing.T) {
	srv := vaulttest.Get(t)
	mount := srv.NewMount(t)
	if *updateFixtures {
		if err := os.MkdirAll(fixtureDir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range fixtureCalls {
		p := strings.ReplaceAll(c.path, "{m}", mount)
		req, err := http.NewRequestWithContext(context.Background(), c.method, srv.Addr+"/v1/"+p, strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Vault-Token", srv.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != c.status {
			t.Fatalf("%s %s: status %d, want %d: %s", c.method, c.path, resp.StatusCode, c.status, body)
		}
		if c.file == "" {
			continue
		}
		file := filepath.Join(fixtureDir, c.file)
		if *updateFixtures {
			if err := os.WriteFile(file, body, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if g, w := normalize(t, body), normalize(t, want); g != w {
			t.Errorf("%s %s answers\n%s\nwhere %s holds\n%s", c.method, c.path, g, file, w)
		}
	}
}

// normalize returns body as indented JSON with what differs between runs
// replaced: request ids, times, accessors, uuids and the mount's path.
func normalize(t *testing.T, body []byte) string {
	t.Helper()
	var v any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("not JSON: %v: %q", err, body)
	}
	var walk func(v any) any
	walk = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				s, isString := e.(string)
				switch {
				case isString && s != "" && (k == "request_id" || k == "accessor" || k == "uuid" || strings.HasSuffix(k, "_time")):
					x[k] = "<" + k + ">"
				case isString && k == "path" && strings.HasSuffix(s, "/"):
					x[k] = "<mount>/"
				default:
					x[k] = walk(e)
				}
			}
		case []any:
			for i := range x {
				x[i] = walk(x[i])
			}
		}
		return v
	}
	out, err := json.MarshalIndent(walk(v), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// readFixture returns the data of the fixture file as the API client gives
// it (nil for a 404 without data).
func readFixture(t *testing.T, file string) map[string]any {
	t.Helper()
	body, err := os.ReadFile(filepath.Join(fixtureDir, file))
	if err != nil {
		t.Fatal(err)
	}
	return parse(t, body)
}

func TestDecodeFixtures(t *testing.T) {
	fixtureValuesText := map[string]string{
		"a": "x", "b": "true", "big": "12345678901234567000", "n": "1.5", "nul": "null", "o": `{"k":["v",2]}`, "u": "päss\x00\x07",
	}
	for _, tt := range []struct {
		file   string
		decode string // "data" or "metadata"
		want   secretState
		values map[string]string
	}{
		{file: "data.json", decode: "data", want: secretState{version: 1, owner: "me"}, values: fixtureValuesText},
		{file: "data-deleted.json", decode: "data", want: secretState{version: 1, deleted: true}},
		{file: "data-destroyed.json", decode: "data", want: secretState{version: 1, destroyed: true}},
		{file: "data-noversion.json", decode: "data"},
		{file: "data-missing.json", decode: "data"},
		{file: "metadata.json", decode: "metadata", want: secretState{version: 1, owner: "me"}},
		{file: "metadata-deleted.json", decode: "metadata", want: secretState{version: 1, deleted: true}},
		{file: "metadata-destroyed.json", decode: "metadata", want: secretState{version: 1, destroyed: true}},
		{file: "metadata-noversion.json", decode: "metadata"},
		// A metadata read holds no values; a data read's metadata is not
		// a metadata read.
		{file: "data.json", decode: "metadata"},
		{file: "metadata.json", decode: "data"},
	} {
		t.Run(tt.decode+"/"+tt.file, func(t *testing.T) {
			body := readFixture(t, tt.file)
			var got secretState
			if tt.decode == "data" {
				got = decodeData(body)
			} else {
				got = decodeMetadata(body)
			}
			vals := got.values()
			if got.version != tt.want.version || got.deleted != tt.want.deleted || got.destroyed != tt.want.destroyed || got.owner != tt.want.owner {
				t.Errorf("decoded %+v, want %+v", got, tt.want)
			}
			if tt.values == nil {
				tt.values = map[string]string{}
			}
			if !maps.Equal(vals, tt.values) {
				t.Errorf("values %q, want %q", vals, tt.values)
			}
		})
	}

	t.Run("write", func(t *testing.T) {
		// The response's version wins over the guess from cas.
		if got := decodeWrite(readFixture(t, "write.json"), 7); got != 1 {
			t.Errorf("decodeWrite = %d, want 1", got)
		}
		// Without a body, the version is the one after cas.
		if got := decodeWrite(nil, 4); got != 5 {
			t.Errorf("decodeWrite without a body = %d, want 5", got)
		}
	})
	t.Run("write CAS mismatch", func(t *testing.T) {
		var e struct{ Errors []string }
		body, err := os.ReadFile(filepath.Join(fixtureDir, "write-cas-mismatch.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(body, &e); err != nil || len(e.Errors) != 1 {
			t.Fatalf("errors %q, %v", e.Errors, err)
		}
		werr := &api.ResponseError{HTTPMethod: "PUT", URL: "http://127.0.0.1/v1/kv/data/app", StatusCode: http.StatusBadRequest, Errors: e.Errors}
		if !isCASMismatch(werr) {
			t.Errorf("isCASMismatch(%q) = false", e.Errors[0])
		}
	})
	t.Run("list", func(t *testing.T) {
		if got := decodeList(readFixture(t, "list.json")); !slices.Equal(got, []string{"app", "dir/"}) {
			t.Errorf("decodeList = %q", got)
		}
		if got := decodeList(readFixture(t, "list-missing.json")); len(got) != 0 {
			t.Errorf("decodeList of a 404 = %q", got)
		}
	})
	t.Run("mount", func(t *testing.T) {
		got := decodeMount(readFixture(t, "mount.json"))
		if got.typ != "kv" || got.version != 2 || !strings.HasPrefix(got.accessor, "kv_") {
			t.Errorf("decodeMount = %+v, want a KV v2 mount with its accessor", got)
		}
	})
}

// fixtureBodies returns the content of every fixture, to seed FuzzDecode.
func fixtureBodies(f *testing.F) [][]byte {
	f.Helper()
	es, err := os.ReadDir(fixtureDir)
	if err != nil {
		f.Fatal(err)
	}
	var out [][]byte
	for _, e := range es {
		b, err := os.ReadFile(filepath.Join(fixtureDir, e.Name()))
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		f.Fatal("no fixtures in " + fixtureDir)
	}
	return out
}
