package azurekvtest_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/secretsync/secretsync/destination/azurekv/azurekvtest"
)

// rawClient talks to the server without the SDK, to check the shapes of
// its answers.
type rawClient struct {
	t     *testing.T
	srv   *azurekvtest.Server
	hc    *http.Client
	token string
}

func newRaw(t *testing.T, srv *azurekvtest.Server) *rawClient {
	c := &rawClient{t: t, srv: srv, hc: srv.HTTPClient()}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {srv.ClientID()}, "client_secret": {srv.ClientSecret()},
		"scope": {"https://vault.azure.net/.default openid offline_access profile"}}
	resp, err := c.hc.PostForm("https://login.microsoftonline.com/"+srv.TenantID()+"/oauth2/v2.0/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != 200 || tok.TokenType != "Bearer" || tok.ExpiresIn != 3600 {
		t.Fatalf("token: %d %+v %v", resp.StatusCode, tok, err)
	}
	c.token = tok.AccessToken
	return c
}

// do sends a request and returns the status, headers and decoded body.
func (c *rawClient) do(method, path, body string, auth bool) (int, http.Header, map[string]any) {
	c.t.Helper()
	u := path
	if !strings.HasPrefix(u, "https://") {
		u = c.srv.VaultURL() + path
	}
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &m); err != nil {
			c.t.Fatalf("%s %s: body %q: %v", method, path, b, err)
		}
	}
	return resp.StatusCode, resp.Header, m
}

func errorOf(m map[string]any) (code, inner, msg string) {
	e, _ := m["error"].(map[string]any)
	code, _ = e["code"].(string)
	msg, _ = e["message"].(string)
	if ie, ok := e["innererror"].(map[string]any); ok {
		inner, _ = ie["code"].(string)
	}
	return code, inner, msg
}

const api = "?api-version=2025-07-01"

func TestRawChallenge(t *testing.T) {
	srv := azurekvtest.New(t, nil)
	c := newRaw(t, srv)
	status, h, body := c.do("GET", "/secrets"+api, "", false)
	want := fmt.Sprintf(`Bearer authorization="https://login.windows.net/%s", resource="https://vault.azure.net"`, srv.TenantID())
	if status != 401 || h.Get("WWW-Authenticate") != want {
		t.Fatalf("challenge: %d %q", status, h.Get("WWW-Authenticate"))
	}
	if code, _, msg := errorOf(body); code != "Unauthorized" || !strings.HasPrefix(msg, "AKV10000") {
		t.Fatalf("challenge body %v", body)
	}
	// A China vault's challenge names its resource and authority.
	status, h, _ = c.do("GET", srv.VaultURLIn("AzureChina")+"/secrets"+api, "", true)
	if status != 401 || !strings.Contains(h.Get("WWW-Authenticate"), `resource="https://vault.azure.cn"`) || !strings.Contains(h.Get("WWW-Authenticate"), "login.chinacloudapi.cn") {
		t.Fatalf("a public-cloud token at a China vault: %d %q", status, h.Get("WWW-Authenticate"))
	}
	if status, _, _ := c.do("GET", "/secrets"+api, "", true); status != 200 {
		t.Fatalf("with the token: %d", status)
	}
	if status, _, body := c.do("GET", "/secrets", "", true); status != 400 {
		t.Fatalf("without api-version: %d %v", status, body)
	}
}

func TestRawErrors(t *testing.T) {
	srv := azurekvtest.New(t, nil)
	c := newRaw(t, srv)
	for _, tc := range []struct {
		method, path, body string
		status             int
		code, inner        string
	}{
		{"GET", "/secrets/nope/" + api, "", 404, "SecretNotFound", ""},
		{"GET", "/deletedsecrets/nope" + api, "", 404, "SecretNotFound", ""},
		{"PUT", "/secrets/bad_name" + api, `{"value":"x"}`, 400, "BadParameter", ""},
		{"PUT", "/secrets/" + strings.Repeat("a", 128) + api, `{"value":"x"}`, 400, "BadParameter", ""},
		{"PUT", "/secrets/big" + api, fmt.Sprintf(`{"value":%q}`, strings.Repeat("x", 25*1024+1)), 400, "BadParameter", ""},
		{"PUT", "/secrets/novalue" + api, `{}`, 400, "BadParameter", ""},
		{"PUT", "/secrets/tags" + api, `{"value":"x","tags":{` + strings.Repeat(`"a":"b",`, 0) + manyTagsJSON(16) + `}}`, 400, "BadParameter", ""},
		{"PUT", "/secrets/tagvalue" + api, fmt.Sprintf(`{"value":"x","tags":{"a":%q}}`, strings.Repeat("v", 257)), 400, "BadParameter", ""},
		{"GET", "/secrets" + api + "&maxresults=26", "", 400, "BadParameter", ""},
		{"POST", "/deletedsecrets/nope/recover" + api, "", 404, "SecretNotFound", ""},
		{"DELETE", "/deletedsecrets/nope" + api, "", 404, "SecretNotFound", ""},
	} {
		status, _, body := c.do(tc.method, tc.path, tc.body, true)
		code, inner, _ := errorOf(body)
		if status != tc.status || code != tc.code || inner != tc.inner {
			t.Errorf("%s %.40s: %d %s/%s, want %d %s/%s", tc.method, tc.path, status, code, inner, tc.status, tc.code, tc.inner)
		}
	}
	// 25 KiB exactly, and 15 tags, are accepted.
	if status, _, _ := c.do("PUT", "/secrets/max"+api, fmt.Sprintf(`{"value":%q,"tags":{%s}}`, strings.Repeat("x", 25*1024), manyTagsJSON(15)), true); status != 200 {
		t.Fatalf("at the limits: %d", status)
	}

	// Soft-delete states.
	if status, _, _ := c.do("DELETE", "/secrets/max"+api, "", true); status != 200 {
		t.Fatal(status)
	}
	status, _, body := c.do("PUT", "/secrets/MAX"+api, `{"value":"x"}`, true)
	if code, inner, msg := errorOf(body); status != 409 || code != "Conflict" || inner != "ObjectIsDeletedButRecoverable" || !strings.Contains(msg, "deleted but recoverable") {
		t.Fatalf("write of a deleted name: %d %v", status, body)
	}

	// Throttling, with Retry-After.
	srv.FailNext(1, azurekvtest.Fault{Status: 429, RetryAfter: 1500 * time.Millisecond})
	status, h, body := c.do("GET", "/secrets"+api, "", true)
	if code, _, _ := errorOf(body); status != 429 || code != "Throttled" || h.Get("Retry-After") != "2" {
		t.Fatalf("throttled: %d %v %q", status, body, h.Get("Retry-After"))
	}

	// A missing permission.
	srv.SetPermissions(azurekvtest.PermGet)
	status, _, body = c.do("GET", "/secrets"+api, "", true)
	if code, inner, msg := errorOf(body); status != 403 || code != "Forbidden" || inner != "AccessDenied" || !strings.Contains(msg, "secrets list permission") {
		t.Fatalf("forbidden: %d %v", status, body)
	}
}

func manyTagsJSON(n int) string {
	var parts []string
	for i := range n {
		parts = append(parts, fmt.Sprintf(`"t%d":"v"`, i))
	}
	return strings.Join(parts, ",")
}

func TestRawPaging(t *testing.T) {
	srv := azurekvtest.New(t, nil)
	c := newRaw(t, srv)
	for i := range 7 {
		if _, err := srv.Set(fmt.Sprint("s", i), "v", map[string]string{"i": fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	next := "/secrets" + api + "&maxresults=3"
	pages := 0
	for next != "" {
		status, _, body := c.do("GET", next, "", true)
		if status != 200 {
			t.Fatalf("page: %d %v", status, body)
		}
		pages++
		for _, it := range body["value"].([]any) {
			item := it.(map[string]any)
			id := item["id"].(string)
			if _, ok := item["value"]; ok || strings.Count(strings.TrimPrefix(id, srv.VaultURL()+"/secrets/"), "/") != 0 {
				t.Fatalf("list item %v: values are not listed and ids have no version", item)
			}
			names = append(names, id[strings.LastIndex(id, "/")+1:])
		}
		next = ""
		if nl, ok := body["nextLink"].(string); ok {
			if !strings.HasPrefix(nl, srv.VaultURL()+":443/secrets?api-version=") || !strings.Contains(nl, "$skiptoken=") || !strings.Contains(nl, "maxresults=3") {
				t.Fatalf("nextLink %s", nl)
			}
			next = nl
		} else if body["nextLink"] != nil {
			t.Fatalf("nextLink %v", body["nextLink"])
		}
	}
	if pages != 3 || strings.Join(names, ",") != "s0,s1,s2,s3,s4,s5,s6" {
		t.Fatalf("%d pages: %v", pages, names)
	}
}

// TestRawAsyncStates: a delete, a recovery and a purge take time, and the
// name answers as Key Vault's does in between.
func TestRawAsyncStates(t *testing.T) {
	const d = 80 * time.Millisecond
	srv := azurekvtest.New(t, &azurekvtest.Options{DeleteDelay: d, RecoverDelay: d, PurgeDelay: d})
	c := newRaw(t, srv)
	if _, err := srv.Set("s", "v", nil); err != nil {
		t.Fatal(err)
	}
	check := func(what string, wantState string, method, path string, status int, inner string) {
		t.Helper()
		if got := srv.State("s"); got != wantState {
			t.Fatalf("%s: state %q, want %q", what, got, wantState)
		}
		st, _, body := c.do(method, path+api, `{"value":"x"}`, true)
		if _, in, _ := errorOf(body); st != status || in != inner {
			t.Fatalf("%s: %s %s = %d %s, want %d %s", what, method, path, st, in, status, inner)
		}
	}
	if st, _, _ := c.do("DELETE", "/secrets/s"+api, "", true); st != 200 {
		t.Fatal(st)
	}
	check("deleting", azurekvtest.StateDeleting, "GET", "/deletedsecrets/s", 404, "")
	check("deleting", azurekvtest.StateDeleting, "PUT", "/secrets/s", 409, "ObjectIsBeingDeleted")
	check("deleting", azurekvtest.StateDeleting, "DELETE", "/deletedsecrets/s", 409, "ObjectIsBeingDeleted")
	time.Sleep(d)
	check("deleted", azurekvtest.StateDeleted, "GET", "/deletedsecrets/s", 200, "")
	if st, _, _ := c.do("POST", "/deletedsecrets/s/recover"+api, "", true); st != 200 {
		t.Fatal(st)
	}
	check("recovering", azurekvtest.StateRecovering, "GET", "/secrets/s/", 404, "")
	check("recovering", azurekvtest.StateRecovering, "PUT", "/secrets/s", 409, "ObjectIsBeingRecovered")
	time.Sleep(d)
	check("recovered", azurekvtest.StateActive, "GET", "/secrets/s/", 200, "")
	if st, _, _ := c.do("DELETE", "/secrets/s"+api, "", true); st != 200 {
		t.Fatal(st)
	}
	time.Sleep(d)
	if st, _, _ := c.do("DELETE", "/deletedsecrets/s"+api, "", true); st != 204 {
		t.Fatal(st)
	}
	check("purging", azurekvtest.StatePurging, "PUT", "/secrets/s", 409, "ObjectIsBeingDeleted")
	time.Sleep(d)
	check("purged", "", "PUT", "/secrets/s", 200, "")
}
