package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/secretsync/secretsync/registry"
	"github.com/secretsync/secretsync/registry/httpapi"
)

// The samples of Vault's /sys/sync API document (the seed's
// 003_*.txt) are kept in testdata/seed.json, so that the tests do not
// depend on where the document is. To make it again from the document:
//
//	go test ./registry/httpapi -run TestSeedTestdata -seed-doc=/work/shared/reference/003_253cd75edb2ec723.txt -update-seed
//
// Without -update-seed, -seed-doc checks that testdata/seed.json is what
// the document holds.
var (
	seedDoc    = flag.String("seed-doc", "", "Vault's /sys/sync API document, to check or make testdata/seed.json from")
	updateSeed = flag.Bool("update-seed", false, "write testdata/seed.json from -seed-doc")
)

const seedFile = "testdata/seed.json"

// seedSample is one sample request of the document, with its payload and
// its sample response when the document gives them.
type seedSample struct {
	Section  string          `json:"section"`
	Method   string          `json:"method"`
	URL      string          `json:"url"`
	Payload  json.RawMessage `json:"payload,omitempty"`
	Response json.RawMessage `json:"response,omitempty"`
}

var (
	sectionStart = regexp.MustCompile(`(?:^|[^#])## `)
	sectionTitle = regexp.MustCompile(`^(.*?) (?:This|The) `)
	payloadBlock = regexp.MustCompile("### Sample payload ```json (.*?) ```")
	requestBlock = regexp.MustCompile("### Sample request ```shell-session (.*?) ```")
	responseBlk  = regexp.MustCompile("### Sample response ```json (.*?) ```")
	curlMethod   = regexp.MustCompile(`--request (\S+)`)
	curlURL      = regexp.MustCompile(`(https?://\S+)`)
)

// parseSeed returns the sample requests of the document, in its order. It
// is a pure function of the text.
func parseSeed(doc string) ([]seedSample, error) {
	locs := sectionStart.FindAllStringIndex(doc, -1)
	var out []seedSample
	for i, loc := range locs {
		end := len(doc)
		if i+1 < len(locs) {
			end = locs[i+1][0] + 1
		}
		sec := doc[loc[1]:end]
		m := requestBlock.FindStringSubmatch(sec)
		if m == nil {
			continue
		}
		s := seedSample{Section: sec}
		if t := sectionTitle.FindStringSubmatch(sec); t != nil {
			s.Section = t[1]
		}
		mm, mu := curlMethod.FindStringSubmatch(m[1]), curlURL.FindStringSubmatch(m[1])
		if mm == nil || mu == nil {
			return nil, fmt.Errorf("section %q: no method or URL in the sample request", s.Section)
		}
		s.Method, s.URL = mm[1], mu[1]
		for _, b := range []struct {
			re  *regexp.Regexp
			dst *json.RawMessage
		}{{payloadBlock, &s.Payload}, {responseBlk, &s.Response}} {
			if m := b.re.FindStringSubmatch(sec); m != nil {
				var buf bytes.Buffer
				if err := json.Compact(&buf, []byte(m[1])); err != nil {
					return nil, fmt.Errorf("section %q: sample JSON: %v", s.Section, err)
				}
				*b.dst = buf.Bytes()
			}
		}
		out = append(out, s)
	}
	return out, nil
}

func loadSeed(t *testing.T) []seedSample {
	t.Helper()
	b, err := os.ReadFile(seedFile)
	if err != nil {
		t.Fatal(err)
	}
	var out []seedSample
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSeedTestdata checks (or, with -update-seed, writes) testdata/seed.json
// against the document given with -seed-doc.
func TestSeedTestdata(t *testing.T) {
	if *seedDoc == "" {
		t.Skip("no -seed-doc")
	}
	doc, err := os.ReadFile(*seedDoc)
	if err != nil {
		t.Fatal(err)
	}
	samples, err := parseSeed(string(doc))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.MarshalIndent(samples, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, '\n')
	if *updateSeed {
		if err := os.MkdirAll(filepath.Dir(seedFile), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(seedFile, b, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %d samples to %s", len(samples), seedFile)
		return
	}
	if old, _ := os.ReadFile(seedFile); !bytes.Equal(old, b) {
		t.Errorf("%s is not what %s holds; run with -update-seed", seedFile, *seedDoc)
	}
}

func TestParseSeed(t *testing.T) {
	doc := "# `/sys/sync` The x. ## List things This endpoint lists. ### Sample request ```shell-session $ curl \\ --request LIST \\ http://127.0.0.1:8200/v1/sys/sync/destinations ``` ### Sample response ```json { \"data\": { \"keys\": [ \"a\" ] } } ``` " +
		"## Make thing The make endpoint. ### Sample payload ```json { \"mount\": \"kv\" } ``` ### Sample request ```shell-session $ curl \\ --request POST \\ --data @payload.json http://127.0.0.1:8200/v1/sys/sync/x ``` " +
		"## No sample This endpoint has none."
	got, err := parseSeed(doc)
	if err != nil {
		t.Fatal(err)
	}
	want := []seedSample{
		{Section: "List things", Method: "LIST", URL: "http://127.0.0.1:8200/v1/sys/sync/destinations", Response: json.RawMessage(`{"data":{"keys":["a"]}}`)},
		{Section: "Make thing", Method: "POST", URL: "http://127.0.0.1:8200/v1/sys/sync/x", Payload: json.RawMessage(`{"mount":"kv"}`)},
	}
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(want)
	if !bytes.Equal(gb, wb) {
		t.Errorf("parseSeed:\n got %s\nwant %s", gb, wb)
	}
}

// seedAccessor is the accessor of the samples' mount, my-kv.
const seedAccessor = "kv_eb4acbae"

// seedFixture is the state the samples assume: the destinations they
// list and read, and (unless the sample deletes the destination) the
// association they read, set and remove.
func seedFixture(t *testing.T, withAssociation bool) *fixture {
	f := newFixture(t, httpapi.Options{Accessor: func(_ context.Context, mount string) (string, error) {
		if mount == "my-kv" {
			return seedAccessor, nil
		}
		return "", fmt.Errorf("no mount %s", mount)
	}})
	f.put("my-store-1", registry.AWSSecretsManager{AccessKeyID: "AKIAEXAMPLE", SecretAccessKey: "sample-secret-key", Region: "us-west-1"})
	f.put("my-dest-1", registry.AWSSecretsManager{})
	f.put("my-dest-1", registry.GitHubRepository{AccessToken: "github_pat_sample", RepositoryOwner: "o", RepositoryName: "r"})
	if withAssociation {
		f.set(registry.TypeAWSSecretsManager, "my-store-1", "my-kv", "my-secret-1")
	}
	return f
}

// TestSeedReplay replays every sample request of Vault's document against
// the handler and compares the answer's shape with the sample response's
// (the keys at every level and the JSON types; values such as the
// request_id and times differ). Samples without a response have their
// expected outcome here: for a create, the document's create answer with
// the sample payload's fields as connection_details; 204 for a delete; and Vault's error body for the two sample
// payloads that are not valid for their path (see below).
func TestSeedReplay(t *testing.T) {
	samples := loadSeed(t)
	// The create answer the document shows (for aws-sm) is the shape of
	// every create.
	var createShape json.RawMessage
	for _, s := range samples {
		if strings.HasPrefix(s.Section, "Create/Update") && s.Response != nil {
			createShape = s.Response
		}
	}
	if createShape == nil {
		t.Fatal("the seed has no create response")
	}
	// Expected outcomes of the samples without a response.
	noResponse := map[string]struct {
		status int
		why    string
	}{
		"Delete destination": {204, ""},
		"Create/Update GitHub Repository Action destination": {200, ""},
		"Create/Update Vercel Project destination":           {200, ""},
		// The document sends Azure's payload to .../aws-sm/my-store-1, and
		// its subscription_id is not one of Azure's parameters.
		"Create/Update Azure Key Vault destination": {400, `unknown field "key_vault_uri"`},
		// The document's payload has empty credentials, which are required.
		"Create/Update GCP Secret Manager destination": {400, "credentials: missing"},
	}

	matched, withResponse := 0, 0
	for _, s := range samples {
		t.Run(s.Section, func(t *testing.T) {
			u, err := url.Parse(s.URL)
			if err != nil {
				t.Fatal(err)
			}
			f := seedFixture(t, s.Method != "DELETE")
			r := newRequest(s.Method, u.RequestURI(), string(s.Payload))
			r.Host = u.Host
			got := f.serve(r)

			want, expect := s.Response, noResponse[s.Section]
			if want != nil {
				withResponse++
				expect.status = 200
			} else if expect.status == 0 {
				t.Fatalf("no expected outcome for sample %q", s.Section)
			} else if expect.status == 200 {
				// The document's create answer, whose connection_details
				// are the fields of this sample's payload.
				var w map[string]any
				var details any
				_ = json.Unmarshal(createShape, &w)
				if err := json.Unmarshal(s.Payload, &details); err != nil {
					t.Fatal(err)
				}
				w["data"].(map[string]any)["connection_details"] = details
				want, _ = json.Marshal(w)
			}
			if got.status != expect.status {
				t.Fatalf("%s %s: status %d, want %d: %s", s.Method, s.URL, got.status, expect.status, got.raw)
			}
			switch {
			case expect.status == 204:
				if got.raw != "" {
					t.Fatalf("204 with a body: %s", got.raw)
				}
			case expect.status >= 400:
				errs := got.errors(t)
				if len(errs) != 1 || !strings.Contains(errs[0], expect.why) {
					t.Fatalf("errors %q, want one saying %q", errs, expect.why)
				}
			default:
				var w any
				if err := json.Unmarshal(want, &w); err != nil {
					t.Fatal(err)
				}
				var g any
				_ = json.Unmarshal([]byte(got.raw), &g)
				if diff := shapeDiff("$", w, g); len(diff) > 0 {
					t.Fatalf("shape differs from the sample:\n%s\ngot: %s", strings.Join(diff, "\n"), got.raw)
				}
			}
			matched++
		})
	}
	t.Logf("seed replay: %d samples replayed, %d matched (%d with a sample response compared by shape, %d without one checked against their expected outcome)",
		len(samples), matched, withResponse, len(samples)-withResponse)
	if len(samples) != 11 {
		t.Errorf("%d samples in %s, want the document's 11", len(samples), seedFile)
	}
}

// TestSeedCorrectedPayloads sends the two sample payloads that the
// document gets wrong, corrected, and expects the create shape.
func TestSeedCorrectedPayloads(t *testing.T) {
	var createShape any
	for _, s := range loadSeed(t) {
		if s.Method == "POST" && strings.HasPrefix(s.Section, "Create/Update") && s.Response != nil {
			_ = json.Unmarshal(s.Response, &createShape)
		}
	}
	for _, c := range []struct{ path, body string }{
		{"/v1/sys/sync/destinations/azure-kv/my-store-1", `{"key_vault_uri":"https://keyvault-1234abcd.vault.azure.net","tenant_id":"uuid","client_id":"uuid","client_secret":"90y8Q***"}`},
		{"/v1/sys/sync/destinations/gcp-sm/my-store-1", `{"credentials":"{\"type\":\"service_account\"}"}`},
	} {
		f := seedFixture(t, false)
		got := f.do("POST", c.path, c.body)
		if got.status != 200 {
			t.Fatalf("POST %s: %d %s", c.path, got.status, got.raw)
		}
		var g any
		_ = json.Unmarshal([]byte(got.raw), &g)
		// Only the envelope and data's keys: connection_details differ by type.
		d := g.(map[string]any)["data"].(map[string]any)
		d["connection_details"] = map[string]any{}
		w := createShape.(map[string]any)
		wd := w["data"].(map[string]any)
		wd["connection_details"] = map[string]any{}
		if diff := shapeDiff("$", w, g); len(diff) > 0 {
			t.Errorf("POST %s: %v", c.path, diff)
		}
	}
}
