package ghactions

import (
	"net/http"
	"strings"
	"testing"
)

func TestAccessHint(t *testing.T) {
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			out[http.CanonicalHeaderKey(kv[i])] = []string{kv[i+1]}
		}
		return out
	}
	const (
		pat = "Resource not accessible by personal access token"
		app = "Resource not accessible by integration"
	)
	for _, c := range []struct {
		name    string
		status  int
		message string
		header  http.Header
		want    string
	}{
		{"one permission", 403, pat, h("X-Accepted-GitHub-Permissions", "secrets=write"),
			`the token lacks a permission: GitHub requires the repository permission "Secrets: Read and write" (X-Accepted-GitHub-Permissions: secrets=write)`},
		{"a set", 403, app, h("X-Accepted-GitHub-Permissions", "environments=read,secrets=read"),
			`the token lacks a permission: GitHub requires the repository permission "Environments: Read-only" and the repository permission "Secrets: Read-only" (X-Accepted-GitHub-Permissions: environments=read,secrets=read)`},
		{"alternatives and unknown names", 403, pat, h("X-Accepted-GitHub-Permissions", "organization_secrets=write; members=admin , metadata=read"),
			`the token lacks a permission: GitHub requires the organization permission "Secrets: Read and write", or members=admin and the repository permission "Metadata: Read-only" (X-Accepted-GitHub-Permissions: organization_secrets=write; members=admin , metadata=read)`},
		{"sent on every answer, not a refusal", 404, "Not Found", h("X-Accepted-GitHub-Permissions", "secrets=read"), ""},
		{"classic, lacking", 403, "", h("X-Accepted-OAuth-Scopes", "admin:org", "X-OAuth-Scopes", "repo, workflow"),
			"the token lacks a scope: GitHub accepts the scope admin:org, and the token has repo, workflow (X-Accepted-OAuth-Scopes)"},
		{"classic, none", 404, "", h("X-Accepted-OAuth-Scopes", "repo", "X-OAuth-Scopes", ""),
			"the token lacks a scope: GitHub accepts the scope repo, and the token has none (X-Accepted-OAuth-Scopes)"},
		{"classic, several accepted", 404, "", h("X-Accepted-OAuth-Scopes", "repo, public_repo", "X-OAuth-Scopes", "gist"),
			"the token lacks a scope: GitHub accepts the scope repo or public_repo, and the token has gist (X-Accepted-OAuth-Scopes)"},
		{"classic, has it: a real 404", 404, "", h("X-Accepted-OAuth-Scopes", "repo", "X-OAuth-Scopes", "repo"), ""},
		{"classic, token's scopes not sent", 404, "", h("X-Accepted-OAuth-Scopes", "repo"), ""},
		{"no headers", 403, pat, h(), ""},
		{"another refusal to a fine-grained token", 403, "Resource protected by organization SAML enforcement.", h("X-Accepted-GitHub-Permissions", "secrets=read"), ""},
		{"other status", 422, "", h("X-Accepted-GitHub-Permissions", "secrets=write", "X-Accepted-OAuth-Scopes", "repo", "X-OAuth-Scopes", ""), ""},
	} {
		if got := accessHint(c.status, c.message, c.header); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, c.want)
		}
	}
}

func FuzzAccessHint(f *testing.F) {
	f.Add(403, "environments=write,secrets=write; metadata=read", "repo", "")
	f.Add(404, "", "admin:org", "repo, gist")
	f.Fuzz(func(t *testing.T, status int, perms, accepted, has string) {
		hdr := http.Header{}
		hdr.Set("X-Accepted-GitHub-Permissions", perms)
		hdr.Set("X-Accepted-OAuth-Scopes", accepted)
		hdr.Set("X-OAuth-Scopes", has)
		got := accessHint(status, "Resource not accessible by personal access token", hdr)
		if got != "" && status != 403 && status != 404 {
			t.Fatalf("a hint for status %d: %s", status, got)
		}
		if strings.TrimSpace(perms) != "" && status == 403 && !strings.Contains(got, strings.TrimSpace(perms)) {
			t.Fatalf("the hint does not quote the header %q: %s", perms, got)
		}
	})
}
