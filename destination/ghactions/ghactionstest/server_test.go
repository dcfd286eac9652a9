package ghactionstest_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v84/github"
	"golang.org/x/crypto/nacl/box"

	"github.com/secretsync/secretsync/destination/ghactions/ghactionstest"
)

// These tests check the server's wire shapes with raw HTTP, and that
// go-github reads them as it reads GitHub's.

func newServer(t *testing.T, opts ghactionstest.Options) *ghactionstest.Server {
	t.Helper()
	srv := ghactionstest.NewServer(&opts)
	t.Cleanup(srv.Close)
	return srv
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func do(t *testing.T, srv *ghactionstest.Server, method, path, auth string, body any) answer {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, strings.TrimSuffix(srv.URL, "/")+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &a.body)
	}
	return a
}

func seal(t *testing.T, sc *ghactionstest.Secrets, v string) string {
	t.Helper()
	ct, err := box.SealAnonymous(nil, []byte(v), sc.PublicKey(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(ct)
}

func TestWireShapes(t *testing.T) {
	srv := newServer(t, ghactionstest.Options{Clock: ghactionstest.TickingClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))})
	repo := srv.AddRepository("Acme", "API")
	sc := repo.Secrets()
	bearer, token := "Bearer "+srv.Token, "token "+srv.Token

	// Authentication: both schemes; anything else is 401 in GitHub's shape.
	for _, auth := range []string{"", "Bearer wrong", "Basic " + srv.Token, srv.Token} {
		a := do(t, srv, "GET", "/repos/acme/api/actions/secrets", auth, nil)
		if a.status != 401 || a.body["message"] != "Bad credentials" || a.body["documentation_url"] == nil {
			t.Fatalf("auth %q: %d %s", auth, a.status, a.raw)
		}
	}
	if a := do(t, srv, "GET", "/repos/acme/api/actions/secrets", token, nil); a.status != 200 {
		t.Fatalf("token scheme: %d %s", a.status, a.raw)
	}

	// Public key: a base64 32-byte key and a string id.
	a := do(t, srv, "GET", "/repos/ACME/api/actions/secrets/public-key", bearer, nil)
	if a.status != 200 || a.body["key_id"] != sc.KeyID() || a.body["key"] != base64.StdEncoding.EncodeToString(sc.PublicKey()[:]) {
		t.Fatalf("public key: %d %s", a.status, a.raw)
	}
	if a.header.Get("X-RateLimit-Remaining") == "" || a.header.Get("X-RateLimit-Reset") == "" || a.header.Get("X-RateLimit-Resource") != "core" {
		t.Fatalf("rate headers: %v", a.header)
	}

	// PUT: 201, then 204; the name is stored upper-case.
	body := map[string]any{"encrypted_value": seal(t, sc, "v1"), "key_id": sc.KeyID()}
	if a := do(t, srv, "PUT", "/repos/acme/api/actions/secrets/db_url", bearer, body); a.status != 201 {
		t.Fatalf("create: %d %s", a.status, a.raw)
	}
	body["encrypted_value"] = seal(t, sc, "v2")
	if a := do(t, srv, "PUT", "/repos/acme/api/actions/secrets/DB_URL", bearer, body); a.status != 204 || a.raw != "" {
		t.Fatalf("update: %d %q", a.status, a.raw)
	}
	if s, ok := sc.Get("db_url"); !ok || s.Name != "DB_URL" || s.Value != "v2" || !s.UpdatedAt.After(s.CreatedAt) {
		t.Fatalf("stored: %v %v", s, ok)
	}
	a = do(t, srv, "GET", "/repos/acme/api/actions/secrets/Db_Url", bearer, nil)
	if a.status != 200 || a.body["name"] != "DB_URL" || a.body["created_at"] != "2026-01-01T00:00:01Z" || a.body["updated_at"] != "2026-01-01T00:00:02Z" {
		t.Fatalf("get: %d %s", a.status, a.raw)
	}
	if _, ok := a.body["value"]; ok {
		t.Fatal("GET returned a value")
	}

	// Refusals, in GitHub's words where GitHub's are known.
	improper := "Bad request - validation failed due to an improperly encrypted secret"
	for _, tc := range []struct {
		name string
		body map[string]any
		path string
		want string
	}{
		{"no key id", map[string]any{"encrypted_value": seal(t, sc, "x")}, "X", `"key_id" wasn't supplied.`},
		{"no value", map[string]any{"key_id": sc.KeyID()}, "X", `"encrypted_value" wasn't supplied.`},
		{"not base64", map[string]any{"encrypted_value": "not base64!", "key_id": sc.KeyID()}, "X", "does not match"},
		{"wrong key id", map[string]any{"encrypted_value": seal(t, sc, "x"), "key_id": "123"}, "X", improper},
		{"not sealed", map[string]any{"encrypted_value": base64.StdEncoding.EncodeToString(make([]byte, 64)), "key_id": sc.KeyID()}, "X", improper},
		{"too large", map[string]any{"encrypted_value": seal(t, sc, strings.Repeat("x", ghactionstest.MaxValueSize+1)), "key_id": sc.KeyID()}, "X", "too large"},
		{"GITHUB_", body, "github_token", "GITHUB_"},
		{"digit", body, "1X", "number"},
		{"dash", body, "A-B", "alphanumeric"},
	} {
		a := do(t, srv, "PUT", "/repos/acme/api/actions/secrets/"+tc.path, bearer, tc.body)
		msg, _ := a.body["message"].(string)
		if a.status != 422 || !strings.Contains(msg, tc.want) {
			t.Errorf("%s: %d %s", tc.name, a.status, a.raw)
		}
	}
	if a := do(t, srv, "PUT", "/repos/acme/api/actions/secrets/X", bearer, "{"); a.status != 400 {
		t.Errorf("bad JSON: %d %s", a.status, a.raw)
	}
	if len(sc.List()) != 1 {
		t.Fatalf("refused PUTs stored something: %v", sc.List())
	}
	if got := len(sc.Received()); got != 11 {
		t.Fatalf("%d PUTs recorded, want 11", got)
	}

	// DELETE: 204, then 404; GET of a missing secret 404.
	if a := do(t, srv, "DELETE", "/repos/acme/api/actions/secrets/DB_URL", bearer, nil); a.status != 204 {
		t.Fatalf("delete: %d %s", a.status, a.raw)
	}
	for _, m := range []string{"DELETE", "GET"} {
		if a := do(t, srv, m, "/repos/acme/api/actions/secrets/DB_URL", bearer, nil); a.status != 404 || a.body["message"] != "Not Found" {
			t.Fatalf("%s of a missing secret: %d %s", m, a.status, a.raw)
		}
	}

	// Unknown places and paths: 404; the /api/v3 prefix works.
	for _, p := range []string{"/repos/acme/nope/actions/secrets", "/orgs/nope/actions/secrets", "/repositories/1/environments/x/secrets", "/user"} {
		if a := do(t, srv, "GET", p, bearer, nil); a.status != 404 {
			t.Fatalf("%s: %d", p, a.status)
		}
	}
	if a := do(t, srv, "GET", "/api/v3/repos/acme/api", bearer, nil); a.status != 200 || a.body["id"] != float64(repo.ID) || a.body["full_name"] != "Acme/API" {
		t.Fatalf("repository: %d %s", a.status, a.raw)
	}
}

func TestOrganizationWire(t *testing.T) {
	srv := newServer(t, ghactionstest.Options{})
	org := srv.AddOrganization("acme")
	bearer := "Bearer " + srv.Token
	body := map[string]any{"encrypted_value": seal(t, org, "v"), "key_id": org.KeyID()}
	if a := do(t, srv, "PUT", "/orgs/acme/actions/secrets/S", bearer, body); a.status != 422 || !strings.Contains(a.raw, "visibility") {
		t.Fatalf("no visibility: %d %s", a.status, a.raw)
	}
	body["visibility"] = "public"
	if a := do(t, srv, "PUT", "/orgs/acme/actions/secrets/S", bearer, body); a.status != 422 {
		t.Fatalf("bad visibility: %d %s", a.status, a.raw)
	}
	body["visibility"], body["selected_repository_ids"] = "selected", []int64{7, 9}
	if a := do(t, srv, "PUT", "/orgs/acme/actions/secrets/S", bearer, body); a.status != 201 {
		t.Fatalf("selected: %d %s", a.status, a.raw)
	}
	a := do(t, srv, "GET", "/orgs/acme/actions/secrets/S", bearer, nil)
	if a.body["visibility"] != "selected" || !strings.HasSuffix(fmt.Sprint(a.body["selected_repositories_url"]), "/orgs/acme/actions/secrets/S/repositories") {
		t.Fatalf("get: %s", a.raw)
	}
	if s, _ := org.Get("S"); fmt.Sprint(s.SelectedRepositoryIDs) != "[7 9]" {
		t.Fatalf("ids: %v", s.SelectedRepositoryIDs)
	}
}

// The Link header, as GitHub sends it and as go-github reads it.
func TestPaginationWire(t *testing.T) {
	srv := newServer(t, ghactionstest.Options{})
	org := srv.AddOrganization("acme")
	for i := range 250 {
		if err := org.Set(fmt.Sprintf("S%03d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	bearer := "Bearer " + srv.Token
	a := do(t, srv, "GET", "/orgs/acme/actions/secrets?per_page=100&page=2", bearer, nil)
	base := strings.TrimSuffix(srv.URL, "/") + "/orgs/acme/actions/secrets"
	want := fmt.Sprintf(`<%s?page=1&per_page=100>; rel="prev", <%s?page=3&per_page=100>; rel="next", <%s?page=3&per_page=100>; rel="last", <%s?page=1&per_page=100>; rel="first"`, base, base, base, base)
	if got := a.header.Get("Link"); got != want {
		t.Fatalf("Link = %s\nwant %s", got, want)
	}
	if a.body["total_count"] != float64(250) || len(a.body["secrets"].([]any)) != 100 || a.body["secrets"].([]any)[0].(map[string]any)["name"] != "S100" {
		t.Fatalf("page 2: %s", a.raw[:200])
	}
	// Defaults and bounds: 30 per page, at most 100.
	if a := do(t, srv, "GET", "/orgs/acme/actions/secrets", bearer, nil); len(a.body["secrets"].([]any)) != 30 {
		t.Fatal("default page size")
	}
	if a := do(t, srv, "GET", "/orgs/acme/actions/secrets?per_page=500", bearer, nil); len(a.body["secrets"].([]any)) != 100 {
		t.Fatal("page size over 100")
	}

	gh, err := github.NewClient(srv.Client()).WithAuthToken(srv.Token).WithEnterpriseURLs(srv.URL, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	opt := &github.ListOptions{PerPage: 100}
	var names []string
	for {
		page, resp, err := gh.Actions.ListOrgSecrets(context.Background(), "acme", opt)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range page.Secrets {
			names = append(names, s.Name)
		}
		if resp.NextPage == 0 {
			break
		}
		if resp.LastPage != 3 && resp.NextPage != 3 {
			t.Fatalf("go-github read last page %d", resp.LastPage)
		}
		opt.Page = resp.NextPage
	}
	if len(names) != 250 || names[0] != "S000" || names[249] != "S249" {
		t.Fatalf("go-github paged through %d secrets", len(names))
	}
}

// go-github maps the server's faults to its typed errors.
func TestFaultsAsGoGitHubSeesThem(t *testing.T) {
	srv := newServer(t, ghactionstest.Options{})
	srv.AddRepository("acme", "api")
	gh := github.NewClient(srv.Client()).WithAuthToken(srv.Token)
	gh.BaseURL = mustParse(t, srv.URL)
	ctx := context.Background()

	srv.FailNext(1, ghactionstest.Fault{RateLimit: true, Status: 429})
	_, _, err := gh.Actions.GetRepoPublicKey(ctx, "acme", "api")
	if _, ok := err.(*github.RateLimitError); !ok {
		t.Fatalf("rate limit: %T %v", err, err)
	}
	srv.FailNext(1, ghactionstest.Fault{SecondaryRateLimit: true})
	_, _, err = gh.Actions.GetRepoPublicKey(ctx, "acme", "api")
	if e, ok := err.(*github.AbuseRateLimitError); !ok || e.GetRetryAfter() != 0 {
		t.Fatalf("secondary rate limit: %T %v", err, err)
	}
	srv.FailNext(1, ghactionstest.Fault{Status: 503, Ops: []ghactionstest.Op{ghactionstest.OpListSecrets}})
	if _, _, err := gh.Actions.GetRepoPublicKey(ctx, "acme", "api"); err != nil {
		t.Fatalf("a fault for another operation hit: %v", err)
	}
	_, _, err = gh.Actions.ListRepoSecrets(ctx, "acme", "api", nil)
	if e, ok := err.(*github.ErrorResponse); !ok || e.Response.StatusCode != 503 {
		t.Fatalf("503: %T %v", err, err)
	}
	if srv.Count(ghactionstest.OpGetPublicKey) != 3 || srv.Count(ghactionstest.OpListSecrets) != 1 {
		t.Fatalf("counts: %v", srv.Counts())
	}
}

func mustParse(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestTLS(t *testing.T) {
	srv := newServer(t, ghactionstest.Options{TLS: true})
	srv.AddRepository("acme", "api")
	if !strings.HasPrefix(srv.URL, "https://") {
		t.Fatal(srv.URL)
	}
	if a := do(t, srv, "GET", "/repos/acme/api", "Bearer "+srv.Token, nil); a.status != 200 {
		t.Fatalf("%d %s", a.status, a.raw)
	}
}

// Tokens registered with a Grant are checked per endpoint and refused as
// GitHub refuses them, with GitHub's headers.
func TestTokenGrantsWire(t *testing.T) {
	srv := newServer(t, ghactionstest.Options{})
	repo := srv.AddRepository("acme", "api")
	repo.AddEnvironment("prod")
	srv.AddOrganization("acme")
	perms := func(kv ...string) map[string]ghactionstest.Access {
		m := map[string]ghactionstest.Access{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = ghactionstest.Access(kv[i+1])
		}
		return m
	}
	srv.AddToken("pat-read", ghactionstest.Grant{Permissions: perms("secrets", "read")})
	srv.AddToken("pat-write", ghactionstest.Grant{Permissions: perms("secrets", "write")})
	srv.AddToken("app-env", ghactionstest.Grant{Kind: ghactionstest.Installation, Permissions: perms("environments", "write")})
	srv.AddToken("classic-org", ghactionstest.Grant{Kind: ghactionstest.Classic, Scopes: []string{"read:org", "workflow"}})
	srv.AddToken("classic-none", ghactionstest.Grant{Kind: ghactionstest.Classic})
	body := map[string]string{"encrypted_value": seal(t, repo.Secrets(), "v"), "key_id": repo.Secrets().KeyID()}
	envByID := fmt.Sprintf("/repositories/%d/environments/prod/secrets", repo.ID)

	for _, c := range []struct {
		token, method, path   string
		status                int
		message, docs         string
		accepted              string // X-Accepted-GitHub-Permissions
		scopes, acceptedOAuth *string
	}{
		{"pat-read", "GET", "/repos/acme/api/actions/secrets/public-key", 200, "", "", "secrets=read", nil, nil},
		{"pat-read", "PUT", "/repos/acme/api/actions/secrets/K", 403, "Resource not accessible by personal access token", "https://docs.github.com/rest/actions/secrets#create-or-update-a-repository-secret", "secrets=write", nil, nil},
		{"pat-read", "DELETE", "/repos/acme/api/actions/secrets/K", 403, "Resource not accessible by personal access token", "https://docs.github.com/rest/actions/secrets#delete-a-repository-secret", "secrets=write", nil, nil},
		{"pat-write", "PUT", "/repos/acme/api/actions/secrets/K", 201, "", "", "secrets=write", nil, nil},
		{"pat-write", "GET", "/repos/acme/api/actions/secrets", 200, "", "", "secrets=read", nil, nil},
		{"pat-write", "GET", "/repos/acme/api", 403, "Resource not accessible by personal access token", "https://docs.github.com/rest/repos/repos#get-a-repository", "metadata=read", nil, nil},
		{"pat-write", "GET", "/repos/acme/nope", 404, "Not Found", "https://docs.github.com/rest/repos/repos#get-a-repository", "", nil, nil},
		{"pat-write", "GET", "/repos/acme/api/environments/prod/secrets", 403, "Resource not accessible by personal access token", "https://docs.github.com/rest/actions/secrets#list-environment-secrets", "environments=read,secrets=read", nil, nil},
		{"app-env", "GET", envByID + "/public-key", 403, "Resource not accessible by integration", "https://docs.github.com/rest/actions/secrets#get-an-environment-public-key", "environments=read,secrets=read", nil, nil},
		{"pat-write", "GET", "/orgs/acme/actions/secrets", 403, "Resource not accessible by personal access token", "https://docs.github.com/rest/actions/secrets#list-organization-secrets", "organization_secrets=read", nil, nil},
		{"pat-write", "GET", "/orgs/nope/actions/secrets", 404, "Not Found", "https://docs.github.com/rest/actions/secrets", "", nil, nil},
		{"classic-org", "GET", "/orgs/acme/actions/secrets/public-key", 403, "Must have admin rights to Repository.", "https://docs.github.com/rest/actions/secrets#get-an-organization-public-key", "", ptr("read:org, workflow"), ptr("admin:org")},
		{"classic-org", "GET", "/repos/acme/api/actions/secrets/K", 404, "Not Found", "https://docs.github.com/rest/actions/secrets#get-a-repository-secret", "", ptr("read:org, workflow"), ptr("repo")},
		{"classic-none", "GET", "/repos/acme/api", 404, "Not Found", "https://docs.github.com/rest/repos/repos#get-a-repository", "", ptr(""), ptr("repo")},
		{ghactionstest.DefaultToken, "GET", "/orgs/acme/actions/secrets", 200, "", "", "", nil, nil},
		{"unknown", "GET", "/orgs/acme/actions/secrets", 401, "Bad credentials", "https://docs.github.com/rest", "", nil, nil},
	} {
		var b any
		if c.method == "PUT" {
			b = body
		}
		a := do(t, srv, c.method, c.path, "Bearer "+c.token, b)
		name := c.token + " " + c.method + " " + c.path
		if a.status != c.status {
			t.Fatalf("%s: %d %s, want %d", name, a.status, a.raw, c.status)
		}
		if c.message != "" && (a.body["message"] != c.message || a.body["documentation_url"] != c.docs) {
			t.Fatalf("%s: body %s, want message %q and documentation_url %q", name, a.raw, c.message, c.docs)
		}
		if got := a.header.Get("X-Accepted-GitHub-Permissions"); got != c.accepted {
			t.Fatalf("%s: X-Accepted-GitHub-Permissions %q, want %q", name, got, c.accepted)
		}
		for h, want := range map[string]*string{"X-OAuth-Scopes": c.scopes, "X-Accepted-OAuth-Scopes": c.acceptedOAuth} {
			got, sent := a.header[http.CanonicalHeaderKey(h)]
			if sent != (want != nil) || (want != nil && (len(got) != 1 || got[0] != *want)) {
				t.Fatalf("%s: %s %q (sent %v), want %v", name, h, got, sent, want)
			}
		}
	}
	if s, _ := repo.Secrets().Get("K"); s.Value != "v" || len(repo.Secrets().Received()) != 1 {
		t.Fatalf("K = %v after %d PUTs received; want the one that was allowed", s, len(repo.Secrets().Received()))
	}

	// The server's own token may be restricted too; go-github sees a
	// refusal as an *ErrorResponse.
	srv.AddToken(srv.Token, ghactionstest.Grant{Permissions: perms("secrets", "read")})
	gh := github.NewClient(srv.Client()).WithAuthToken(srv.Token)
	gh.BaseURL = mustParse(t, srv.URL)
	_, err := gh.Actions.DeleteRepoSecret(context.Background(), "acme", "api", "K")
	if e, ok := err.(*github.ErrorResponse); !ok || e.Response.StatusCode != 403 || e.Message != "Resource not accessible by personal access token" {
		t.Fatalf("delete with a read-only server token: %T %v", err, err)
	}
}

func ptr(s string) *string { return &s }
