package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/secretsync/secretsync/audit"
	"github.com/secretsync/secretsync/registry/httpapi"
)

// asUser returns a request made as the user, for the fixture of
// TestAuditEvents.
func asUser(user, method, path, body string) *http.Request {
	r := newRequest(method, path, body)
	r.Header.Del("X-Vault-Token")
	if user != "" {
		r.Header.Set("Authorization", "Bearer user:"+user)
	}
	return r
}

func TestAuditEvents(t *testing.T) {
	f := newFixture(t, httpapi.Options{Authenticate: func(r *http.Request) (string, error) {
		who, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer user:")
		if !ok {
			return "", httpapi.ErrUnauthenticated
		}
		return who, nil
	}})
	gh := `{"access_token":"t","repository_owner":"o","repository_name":"r"}`
	ref := `{"mount":"kv","secret_name":"app"}`
	steps := []struct {
		user, method, path, body string
		status                   int
		typ                      audit.Type // "" when not audited
		outcome                  audit.Outcome
	}{
		{"alice", "POST", dests + "/gh/r", gh, 200, httpapi.EventDestinationWritten, audit.Success},
		{"alice", "POST", dests + "/gh/r", `{"access_token":""}`, 400, httpapi.EventDestinationWritten, audit.Failure},
		{"bob", "POST", dests + "/gh/r/associations/set", ref, 200, httpapi.EventAssociationSet, audit.Success},
		{"bob", "LIST", dests, "", 200, "", ""},
		{"bob", "GET", dests + "/gh/r", "", 200, "", ""},
		{"bob", "GET", dests + "/gh/r/associations", "", 200, "", ""},
		{"carol", "DELETE", dests + "/gh/r", "", 400, httpapi.EventDestinationDeleted, audit.Failure},
		{"carol", "POST", dests + "/gh/r/associations/remove", ref, 200, httpapi.EventAssociationRemoved, audit.Success},
		{"carol", "DELETE", dests + "/gh/r", "", 204, httpapi.EventDestinationDeleted, audit.Success},
		{"carol", "DELETE", dests + "/gh/r", "", 404, httpapi.EventDestinationDeleted, audit.Failure},
		{"", "POST", dests + "/gh/r", gh, 401, httpapi.EventRequestDenied, audit.Failure},
		{"", "GET", dests + "/gh/r", "", 401, "", ""},
	}
	for i, s := range steps {
		f.rec.Reset()
		a := f.serve(asUser(s.user, s.method, s.path, s.body))
		if a.status != s.status {
			t.Fatalf("step %d %s %s: %d %s", i, s.method, s.path, a.status, a.raw)
		}
		ev := f.rec.Events()
		if s.typ == "" {
			if len(ev) != 0 {
				t.Errorf("step %d %s %s: audited %+v", i, s.method, s.path, ev)
			}
			continue
		}
		if len(ev) != 1 {
			t.Fatalf("step %d %s %s: %d events, want 1: %+v", i, s.method, s.path, len(ev), ev)
		}
		e := ev[0]
		if e.Type != s.typ || e.Outcome != s.outcome || e.Attrs["actor"] != s.user || e.Time.IsZero() ||
			e.Attrs["status"] != fmt.Sprint(s.status) || e.Attrs["method"] != s.method || e.Attrs["path"] != s.path || e.Attrs["request_id"] == "" {
			t.Errorf("step %d %s %s: event %+v", i, s.method, s.path, e)
		}
		if id, ok := a.body["request_id"]; ok && id != e.Attrs["request_id"] {
			t.Errorf("step %d: event request_id %q, answer's %q", i, e.Attrs["request_id"], id)
		}
		if s.typ != httpapi.EventRequestDenied && (e.Attrs["destination_type"] != "gh" || e.Attrs["destination_name"] != "r") {
			t.Errorf("step %d: event names %+v", i, e.Attrs)
		}
		if s.typ == httpapi.EventAssociationSet || s.typ == httpapi.EventAssociationRemoved {
			if e.Attrs["mount"] != "kv" || e.Attrs["secret_name"] != "app" || e.Sync == "" {
				t.Errorf("step %d: association event %+v", i, e)
			}
		}
		if s.outcome == audit.Failure && e.Message == "" {
			t.Errorf("step %d: a failure without a message: %+v", i, e)
		}
	}
}

// The answer warns when the Auditor fails; the change is made.
func TestAuditorFails(t *testing.T) {
	f := newFixture(t, httpapi.Options{Auditor: audit.AuditorFunc(func(context.Context, audit.Event) error {
		return errors.New("disk full")
	})})
	a := f.do("POST", dests+"/gh/r", `{"access_token":"t","repository_owner":"o","repository_name":"r"}`)
	if w, _ := a.body["warnings"].([]any); a.status != 200 || len(w) != 1 || !strings.Contains(w[0].(string), "audit") {
		t.Errorf("%d %s", a.status, a.raw)
	}
}

// A canary planted in every credential, in the secret's values, in the
// values of refused fields, in wrong tokens and in an authenticator's
// errors appears in no answer (body or header) and no audit event; nor
// does the right token.
func TestNothingLeaks(t *testing.T) {
	const canary = "CANARY"
	var answers []answer
	check := func(f *fixture) {
		t.Helper()
		for _, a := range answers {
			all := a.raw + fmt.Sprint(a.header)
			if strings.Contains(all, canary) || strings.Contains(all, testToken) {
				t.Errorf("an answer holds a canary or the token: %s %v", a.raw, a.header)
			}
		}
		for _, e := range f.rec.Events() {
			b, _ := json.Marshal(e)
			if strings.Contains(string(b), canary) || strings.Contains(string(b), testToken) {
				t.Errorf("an audit event holds a canary or the token: %s", b)
			}
		}
	}

	f := newFixture(t, httpapi.Options{Accessor: func(context.Context, string) (string, error) {
		return "", errors.New("no accessor for " + canary)
	}})
	f.secrets["kv/app"] = f.secret("kv", "seed") // any memory secret
	f.secrets["kv/app"].Set("password", canary+"-secret-value")
	do := func(method, path, body string) {
		answers = append(answers, f.do(method, path, body))
	}
	c := func(s string) string { return canary + "-" + s }
	bodies := map[string]string{
		"aws-sm":         fmt.Sprintf(`{"access_key_id":%q,"secret_access_key":%q,"region":"us-east-1"}`, c("akid"), c("sak")),
		"azure-kv":       fmt.Sprintf(`{"key_vault_uri":"https://v.vault.azure.net","tenant_id":"t","client_id":"c","client_secret":%q}`, c("cs")),
		"gcp-sm":         fmt.Sprintf(`{"credentials":%q}`, `{"private_key":"`+c("pk")+`"}`),
		"gh":             fmt.Sprintf(`{"access_token":%q,"repository_owner":"o","repository_name":"r"}`, c("ghp")),
		"vercel-project": fmt.Sprintf(`{"access_token":%q,"project_id":"p","deployment_environments":["production"]}`, c("vt")),
	}
	for typ, body := range bodies {
		do("POST", dests+"/"+typ+"/d", body)
		do("GET", dests+"/"+typ+"/d", "")
	}
	do("LIST", dests, "")
	do("POST", dests+"/gh/d/associations/set", `{"mount":"kv","secret_name":"app"}`)
	do("GET", dests+"/gh/d/associations", "")
	do("POST", dests+"/gh/d/associations/remove", `{"mount":"kv","secret_name":"app"}`)

	// Refused values, each in its own field.
	for _, r := range []struct{ typ, body string }{
		{"aws-sm", fmt.Sprintf(`{"region":%q}`, c("region"))},
		{"aws-sm", fmt.Sprintf(`{"access_key_id":%q}`, c("akid"))},
		{"aws-sm", fmt.Sprintf(`{"region":[%q]}`, c("region"))},
		{"azure-kv", fmt.Sprintf(`{"key_vault_uri":"https://v.vault.azure.net","tenant_id":"t","client_id":"c","client_secret":"s","cloud":%q}`, c("cloud"))},
		{"azure-kv", fmt.Sprintf(`{"key_vault_uri":%q}`, "http://"+c("uri"))},
		{"gcp-sm", fmt.Sprintf(`{"credentials":%q}`, c("not-json"))},
		{"gh", fmt.Sprintf(`{"access_token":"t","repository_owner":"o","repository_name":"r","secrets_location":%q}`, c("loc"))},
		{"gh", fmt.Sprintf(`{"access_token":"t","repository_owner":"o","repository_name":"r","secret_name_template":%q}`, "{{ ."+c("tmpl")+" }}")},
		{"gh", `{"access_token":"t","repository_owner":"o","repository_name":"r","secret_name_template":"{{ .CANARYx7f3a }}"}`},
		{"vercel-project", fmt.Sprintf(`{"access_token":"t","project_id":"p","deployment_environments":[%q]}`, c("env"))},
		{"vault-kv", fmt.Sprintf(`{"connection":"c","mount":"kv","layout":%q}`, c("layout"))},
		{"gh", fmt.Sprintf(`{"access_token":%q x}`, c("ghp"))},
		{"gh", fmt.Sprintf(`{"colour":%q}`, c("colour"))},
	} {
		do("POST", dests+"/"+r.typ+"/d2", r.body)
		if last := answers[len(answers)-1]; last.status != 400 {
			t.Errorf("POST %s %s: %d %s", r.typ, r.body, last.status, last.raw)
		}
	}
	// (A mount and a secret name are names, not values: events hold them.)
	do("POST", dests+"/gh/d/associations/set", fmt.Sprintf(`{"mount":"kv","secret_name":[%q]}`, c("name")))
	do("DELETE", dests+"/gh/d?purge="+c("purge"), "")

	// Wrong tokens.
	for _, h := range []string{"X-Vault-Token", "Authorization"} {
		r := newRequest("POST", dests+"/gh/d", bodies["gh"])
		r.Header.Del("X-Vault-Token")
		r.Header.Set(h, "Bearer "+c("wrong-token"))
		answers = append(answers, f.serve(r))
	}
	check(f)

	// An authenticator's error.
	answers = nil
	f = newFixture(t, httpapi.Options{Authenticate: func(*http.Request) (string, error) {
		return "", errors.New("bad password " + canary)
	}})
	answers = append(answers, f.do("POST", dests+"/gh/d", bodies["gh"]))
	check(f)
}

// Events carry the time of Options.Now.
func TestAuditTime(t *testing.T) {
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	f := newFixture(t, httpapi.Options{Now: func() time.Time { return at }})
	f.do("DELETE", dests+"/gh/none", "")
	if ev := f.rec.Events(); len(ev) != 1 || !ev[0].Time.Equal(at) || ev[0].Attrs["actor"] != "token" {
		t.Errorf("events %+v", ev)
	}
}
