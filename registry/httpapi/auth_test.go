package httpapi_test

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/secretsync/secretsync/audit"
	"github.com/secretsync/secretsync/registry/httpapi"
)

// withAuth returns a LIST request carrying the given headers instead of
// the test token.
func withAuth(headers ...string) *http.Request {
	r := newRequest("LIST", dests, "")
	r.Header.Del("X-Vault-Token")
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Add(headers[i], headers[i+1])
	}
	return r
}

func TestToken(t *testing.T) {
	f := newFixture(t, httpapi.Options{})
	for _, c := range []struct {
		name    string
		headers []string
		status  int
	}{
		{"missing", nil, 401},
		{"empty X-Vault-Token", []string{"X-Vault-Token", ""}, 403},
		{"wrong X-Vault-Token", []string{"X-Vault-Token", "s.wrong"}, 403},
		{"wrong bearer", []string{"Authorization", "Bearer s.wrong"}, 403},
		{"prefix of the token", []string{"X-Vault-Token", testToken[:10]}, 403},
		{"token with more", []string{"X-Vault-Token", testToken + "x"}, 403},
		{"right token, Basic scheme", []string{"Authorization", "Basic " + testToken}, 403},
		{"right X-Vault-Token", []string{"X-Vault-Token", testToken}, 200},
		{"right bearer", []string{"Authorization", "Bearer " + testToken}, 200},
		{"right bearer, lower case", []string{"Authorization", "bearer " + testToken}, 200},
		{"both right", []string{"Authorization", "Bearer " + testToken, "X-Vault-Token", testToken}, 200},
		{"one right, one wrong", []string{"Authorization", "Bearer s.wrong", "X-Vault-Token", testToken}, 403},
	} {
		a := f.serve(withAuth(c.headers...))
		if a.status != c.status {
			t.Errorf("%s: %d, want %d: %s", c.name, a.status, c.status, a.raw)
			continue
		}
		switch c.status {
		case 401:
			if errs := a.errors(t); errs[0] != "missing client token" || a.header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s: %q, WWW-Authenticate %q", c.name, errs, a.header.Get("WWW-Authenticate"))
			}
		case 403:
			if errs := a.errors(t); len(errs) != 1 || errs[0] != "permission denied" {
				t.Errorf("%s: %q", c.name, errs)
			}
		}
	}
}

// A token file is read again when it is replaced, and a file that cannot
// be read refuses every request.
func TestTokenFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "token")
	write := func(tok string) {
		tmp := filepath.Join(dir, "token.tmp")
		if err := os.WriteFile(tmp, []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := httpapi.New(newFixture(t, httpapi.Options{}).reg, &httpapi.Options{TokenFile: path}); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty token file: %v", err)
	}
	write("first-token-value")
	f := newFixture(t, httpapi.Options{TokenFile: path})
	status := func(tok string) int { return f.serve(withAuth("Authorization", "Bearer "+tok)).status }
	if s := status("first-token-value"); s != 200 {
		t.Fatalf("first token: %d", s)
	}
	write("second-token-value")
	if s := status("first-token-value"); s != 403 {
		t.Errorf("old token after rotation: %d", s)
	}
	if s := status("second-token-value"); s != 200 {
		t.Errorf("new token after rotation: %d", s)
	}
	// Rewritten in place, with another length.
	if err := os.WriteFile(path, []byte("third-token-value-longer"), 0o600); err != nil {
		t.Fatal(err)
	}
	if s := status("third-token-value-longer"); s != 200 {
		t.Errorf("token rewritten in place: %d", s)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	a := f.serve(withAuth("Authorization", "Bearer third-token-value-longer"))
	if a.status != 500 || strings.Contains(a.raw, path) {
		t.Errorf("token file gone: %d %s", a.status, a.raw)
	}
	write("fourth-token-value")
	if s := status("fourth-token-value"); s != 200 {
		t.Errorf("token file back: %d", s)
	}
}

func TestAuthenticate(t *testing.T) {
	f := newFixture(t, httpapi.Options{Authenticate: func(r *http.Request) (string, error) {
		switch r.Header.Get("X-User") {
		case "":
			return "", fmt.Errorf("no user: %w", httpapi.ErrUnauthenticated)
		case "alice":
			return "alice", nil
		case "nobody":
			return "", nil
		}
		return "", errors.New("unknown user " + r.Header.Get("X-User"))
	}})
	for _, c := range []struct {
		user   string
		status int
	}{{"", 401}, {"alice", 200}, {"mallory-SECRETISH", 403}, {"nobody", 500}} {
		r := withAuth()
		if c.user != "" {
			r.Header.Set("X-User", c.user)
		}
		a := f.serve(r)
		if a.status != c.status || strings.Contains(a.raw, "unknown user") {
			t.Errorf("user %q: %d %s", c.user, a.status, a.raw)
		}
	}
	r := newRequest("POST", dests+"/gh/r", `{"access_token":"t","repository_owner":"o","repository_name":"r"}`)
	r.Header.Set("X-User", "alice")
	if a := f.serve(r); a.status != 200 {
		t.Fatalf("POST as alice: %d %s", a.status, a.raw)
	}
	ev := f.rec.Filter(httpapi.EventDestinationWritten)
	if len(ev) != 1 || ev[0].Attrs["actor"] != "alice" {
		t.Errorf("events %+v", ev)
	}
}

func TestNoAuth(t *testing.T) {
	f := newFixture(t, httpapi.Options{NoAuth: true})
	if a := f.serve(withAuth()); a.status != 200 {
		t.Errorf("NoAuth: %d", a.status)
	}
	f.serve(withAuth()) // a read: not audited
	r := withAuth()
	r.Method = "DELETE"
	r.URL.Path = dests + "/gh/none"
	f.serve(r)
	ev := f.rec.Events()
	if len(ev) != 1 || ev[0].Attrs["actor"] != "unauthenticated" || ev[0].Outcome != audit.Failure {
		t.Errorf("events %+v", ev)
	}
}
