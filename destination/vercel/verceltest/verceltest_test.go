package verceltest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/secretsync/secretsync/destination/vercel/verceltest"
)

// call sends a raw request and decodes the JSON answer.
func call(t *testing.T, srv *verceltest.Server, method, path, token, body string) (int, map[string]any, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s %s: answer is not a JSON object: %v", method, path, err)
	}
	return resp.StatusCode, out, resp.Header
}

func errCode(t *testing.T, body map[string]any) string {
	t.Helper()
	e, ok := body["error"].(map[string]any)
	if !ok {
		t.Fatalf("no error object in %v", body)
	}
	if _, ok := e["message"].(string); !ok {
		t.Fatalf("error without a message: %v", e)
	}
	code, _ := e["code"].(string)
	return code
}

const tok = "test-token"

func TestShapes(t *testing.T) {
	srv := verceltest.New(t, &verceltest.Options{TeamID: "team_1"})
	q := "?teamId=team_1"
	base := "/v10/projects/prj_test/env"

	// Create: 201 with created (an object) and failed.
	status, body, _ := call(t, srv, "POST", base+q, tok, `{"key":"DB_URL","value":"postgres://x","type":"encrypted","target":["production","preview"],"comment":"c"}`)
	if status != http.StatusCreated {
		t.Fatalf("create: %d %v", status, body)
	}
	created, ok := body["created"].(map[string]any)
	if !ok || created["key"] != "DB_URL" || created["decrypted"] != false || created["value"] == "postgres://x" || created["value"] == "" {
		t.Fatalf("created %v", body)
	}
	if f, ok := body["failed"].([]any); !ok || len(f) != 0 {
		t.Fatalf("failed %v", body["failed"])
	}
	id, _ := created["id"].(string)
	for _, field := range []string{"createdAt", "updatedAt"} {
		if n, ok := created[field].(float64); !ok || n < float64(time.Now().Add(-time.Minute).UnixMilli()) {
			t.Fatalf("%s = %v, want ms since the epoch", field, created[field])
		}
	}

	// Same key, overlapping target: 400 ENV_CONFLICT, with failed.
	status, body, _ = call(t, srv, "POST", base+q, tok, `{"key":"DB_URL","value":"x","type":"encrypted","target":["production"]}`)
	if status != http.StatusBadRequest || errCode(t, body) != "ENV_CONFLICT" || body["failed"] == nil {
		t.Fatalf("conflicting create: %d %v", status, body)
	}
	if e := body["error"].(map[string]any); e["envVarId"] != id || e["envVarKey"] != "DB_URL" {
		t.Fatalf("conflict names %v", e)
	}
	// Disjoint target: allowed.
	status, body, _ = call(t, srv, "POST", base+q, tok, `{"key":"DB_URL","value":"dev","type":"plain","target":["development"]}`)
	if status != http.StatusCreated {
		t.Fatalf("disjoint create: %d %v", status, body)
	}
	// An array body: created is an array, partial failures in failed.
	status, body, _ = call(t, srv, "POST", base+q, tok, `[{"key":"A","value":"1","type":"encrypted","target":["preview"]},{"key":"DB_URL","value":"2","type":"encrypted","target":["preview"]}]`)
	if status != http.StatusCreated || len(body["created"].([]any)) != 1 || len(body["failed"].([]any)) != 1 {
		t.Fatalf("array create: %d %v", status, body)
	}

	// List: encrypted unless decrypt=true; plain always in clear.
	status, body, _ = call(t, srv, "GET", base+q, tok, "")
	envs, _ := body["envs"].([]any)
	if status != http.StatusOK || len(envs) != 3 || body["pagination"] == nil {
		t.Fatalf("list: %d %v", status, body)
	}
	for _, e := range envs {
		e := e.(map[string]any)
		switch {
		case e["type"] == "plain" && e["value"] != "dev":
			t.Fatalf("plain value %v", e)
		case e["type"] == "encrypted" && (e["decrypted"] != false || e["value"] == "postgres://x"):
			t.Fatalf("encrypted listed in clear without decrypt: %v", e)
		}
	}
	_, body, _ = call(t, srv, "GET", base+q+"&decrypt=true", tok, "")
	found := false
	for _, e := range body["envs"].([]any) {
		if e := e.(map[string]any); e["id"] == id {
			found = e["value"] == "postgres://x" && e["decrypted"] == true
		}
	}
	if !found {
		t.Fatalf("decrypt=true: %v", body)
	}

	// Get by id: v1, decrypted.
	status, body, _ = call(t, srv, "GET", "/v1/projects/prj_test/env/"+id+q, tok, "")
	if status != http.StatusOK || body["value"] != "postgres://x" || body["decrypted"] != true {
		t.Fatalf("get: %d %v", status, body)
	}
	// Edit: v9 PATCH; updatedAt moves.
	before := body["updatedAt"].(float64)
	status, body, _ = call(t, srv, "PATCH", "/v9/projects/prj_test/env/"+id+q, tok, `{"value":"postgres://y"}`)
	if status != http.StatusOK || body["updatedAt"].(float64) <= before || body["id"] != id {
		t.Fatalf("edit: %d %v", status, body)
	}
	if v, _ := srv.Get(id); v.Value != "postgres://y" || v.Comment != "c" {
		t.Fatalf("after the edit: %v", v)
	}
	// Delete: v9; then 404.
	status, body, _ = call(t, srv, "DELETE", "/v9/projects/prj_test/env/"+id+q, tok, "")
	if status != http.StatusOK || body["id"] != id {
		t.Fatalf("delete: %d %v", status, body)
	}
	for _, r := range []struct{ method, path string }{
		{"DELETE", "/v9/projects/prj_test/env/" + id}, {"GET", "/v1/projects/prj_test/env/" + id}, {"PATCH", "/v9/projects/prj_test/env/" + id},
	} {
		status, body, _ = call(t, srv, r.method, r.path+q, tok, `{"value":"z"}`)
		if status != http.StatusNotFound || errCode(t, body) != "not_found" {
			t.Fatalf("%s after delete: %d %v", r.method, status, body)
		}
	}
	if c := srv.Counts(); c[verceltest.OpCreate] != 4 || c[verceltest.OpList] != 2 || c[verceltest.OpGet] != 2 || c[verceltest.OpEdit] != 2 || c[verceltest.OpDelete] != 2 {
		t.Fatalf("counts %v", c)
	}
}

func TestAuthAndTeam(t *testing.T) {
	srv := verceltest.New(t, &verceltest.Options{TeamID: "team_1"})
	base := "/v10/projects/prj_test/env"
	for _, tc := range []struct {
		path, token string
		status      int
		code        string
	}{
		{base + "?teamId=team_1", "", http.StatusForbidden, "forbidden"},
		{base + "?teamId=team_1", "wrong", http.StatusForbidden, "forbidden"},
		{base + "?teamId=team_2", tok, http.StatusForbidden, "forbidden"},
		{base, tok, http.StatusNotFound, "not_found"},
		{"/v10/projects/other/env?teamId=team_1", tok, http.StatusNotFound, "not_found"},
		{"/v10/projects/test-project/env?teamId=team_1", tok, http.StatusOK, ""},
		{"/v2/projects/prj_test/env?teamId=team_1", tok, http.StatusNotFound, "not_found"},
	} {
		status, body, _ := call(t, srv, "GET", tc.path, tc.token, "")
		if status != tc.status || tc.code != "" && errCode(t, body) != tc.code {
			t.Errorf("GET %s (token %q) = %d %v, want %d %s", tc.path, tc.token, status, body, tc.status, tc.code)
		}
	}
	reqs := srv.Requests()
	if len(reqs) != 7 || reqs[3].HasTeamID || !reqs[0].HasTeamID || reqs[2].TeamID != "team_2" {
		t.Fatalf("requests %+v", reqs)
	}
}

func TestRules(t *testing.T) {
	srv := verceltest.New(t, nil)
	base := "/v10/projects/prj_test/env"
	for _, tc := range []struct{ body, code string }{
		{`{"key":"1X","value":"v","type":"encrypted","target":["production"]}`, "bad_request"},
		{`{"key":"A-B","value":"v","type":"encrypted","target":["production"]}`, "bad_request"},
		{`{"key":"TZ","value":"v","type":"encrypted","target":["production"]}`, "RESERVED_ENV_VARIABLE"},
		{`{"key":"A","value":"v","type":"encrypted","target":[]}`, "bad_request"},
		{`{"key":"A","value":"v","type":"encrypted","target":["staging"]}`, "bad_request"},
		{`{"key":"A","value":"v","type":"secret","target":["production"]}`, "bad_request"},
		{`{"key":"A","value":"v","type":"sensitive","target":["development"]}`, "bad_request"},
		{`{"key":"A","value":"v","type":"encrypted","target":["production"],"gitBranch":"main"}`, "bad_request"},
		{`{"key":"A","type":"encrypted","target":["production"]}`, "bad_request"},
		{`{"key":"A","value":"` + strings.Repeat("x", verceltest.MaxValueBytes+1) + `","type":"encrypted","target":["production"]}`, "bad_request"},
		{`{"key":"A","value":"v","type":"encrypted","target":["production"],"comment":"` + strings.Repeat("c", verceltest.MaxCommentBytes+1) + `"}`, "bad_request"},
		{`not json`, "bad_request"},
	} {
		status, body, _ := call(t, srv, "POST", base, tok, tc.body)
		if status != http.StatusBadRequest || errCode(t, body) != tc.code {
			t.Errorf("create %.60s = %d %v, want 400 %s", tc.body, status, body["error"], tc.code)
		}
	}
	if n := len(srv.Vars()); n != 0 {
		t.Fatalf("%d variables after refused creates", n)
	}
	// A git branch on preview alone, and a value of exactly the limit.
	for _, body := range []string{
		`{"key":"A","value":"v","type":"encrypted","target":["preview"],"gitBranch":"main"}`,
		`{"key":"A","value":"v","type":"encrypted","target":["preview"]}`,
		`{"key":"B","value":"` + strings.Repeat("x", verceltest.MaxValueBytes) + `","type":"encrypted","target":["production"]}`,
	} {
		if status, b, _ := call(t, srv, "POST", base, tok, body); status != http.StatusCreated {
			t.Errorf("create %.60s = %d %v", body, status, b)
		}
	}
}

// Sensitive values never leave the server.
func TestSensitiveNeverReturned(t *testing.T) {
	srv := verceltest.New(t, nil)
	const secret = "s3cr3t-value"
	status, body, _ := call(t, srv, "POST", "/v10/projects/prj_test/env", tok, `{"key":"S","value":"`+secret+`","type":"sensitive","target":["production"]}`)
	if status != http.StatusCreated {
		t.Fatalf("%d %v", status, body)
	}
	id := body["created"].(map[string]any)["id"].(string)
	for _, path := range []string{"/v10/projects/prj_test/env?decrypt=true", "/v10/projects/prj_test/env", "/v1/projects/prj_test/env/" + id} {
		_, b, _ := call(t, srv, "GET", path, tok, "")
		raw, _ := json.Marshal(b)
		if strings.Contains(string(raw), secret) {
			t.Fatalf("GET %s returned the sensitive value: %s", path, raw)
		}
	}
	// Its type cannot change to a readable one.
	if status, b, _ := call(t, srv, "PATCH", "/v9/projects/prj_test/env/"+id, tok, `{"type":"encrypted"}`); status != http.StatusBadRequest {
		t.Fatalf("type change = %d %v", status, b)
	}
	if v, _ := srv.Get(id); v.Value != secret || v.Type != "sensitive" {
		t.Fatalf("stored %v", v)
	}
}

func TestUpsert(t *testing.T) {
	srv := verceltest.New(t, nil)
	base := "/v10/projects/prj_test/env"
	_, b, _ := call(t, srv, "POST", base, tok, `{"key":"K","value":"1","type":"encrypted","target":["production","preview"]}`)
	id := b["created"].(map[string]any)["id"]
	status, b, _ := call(t, srv, "POST", base+"?upsert=true", tok, `{"key":"K","value":"2","type":"encrypted","target":["preview","production"],"comment":"new"}`)
	if status != http.StatusCreated || b["created"].(map[string]any)["id"] != id {
		t.Fatalf("upsert: %d %v", status, b)
	}
	vars := srv.Vars()
	if len(vars) != 1 || vars[0].Value != "2" || vars[0].Comment != "new" {
		t.Fatalf("after upsert: %v", vars)
	}
	// Overlapping but different targets: a conflict, even with upsert.
	if status, b, _ := call(t, srv, "POST", base+"?upsert=true", tok, `{"key":"K","value":"3","type":"encrypted","target":["production"]}`); status != http.StatusBadRequest || errCode(t, b) != "ENV_CONFLICT" {
		t.Fatalf("upsert over other targets: %d %v", status, b)
	}
}

func TestFaultsAndPagination(t *testing.T) {
	srv := verceltest.New(t, &verceltest.Options{PageSize: 2})
	for _, k := range []string{"A", "B", "C"} {
		if _, err := srv.Create(verceltest.Var{Key: k, Value: k, Target: []string{"production"}}); err != nil {
			t.Fatal(err)
		}
	}
	base := "/v10/projects/prj_test/env"
	_, b, _ := call(t, srv, "GET", base, tok, "")
	page := b["pagination"].(map[string]any)
	next, ok := page["next"].(float64)
	if len(b["envs"].([]any)) != 2 || !ok {
		t.Fatalf("first page %v", b)
	}
	_, b, _ = call(t, srv, "GET", base+"?until="+strconv.FormatInt(int64(next), 10), tok, "")
	if len(b["envs"].([]any)) != 1 || b["pagination"].(map[string]any)["next"] != nil {
		t.Fatalf("second page %v", b)
	}

	srv.RateLimitNext(verceltest.OpList, 1, 2*time.Second)
	status, b, h := call(t, srv, "GET", base, tok, "")
	reset, err := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64)
	if status != http.StatusTooManyRequests || errCode(t, b) != "rate_limited" || err != nil || reset < time.Now().Add(time.Second).Unix() || h.Get("X-RateLimit-Remaining") != "0" {
		t.Fatalf("rate limited: %d %v %v", status, b, h)
	}
	srv.FailNext("", 1, http.StatusBadGateway)
	if status, _, _ := call(t, srv, "GET", base, tok, ""); status != http.StatusBadGateway {
		t.Fatalf("fault: %d", status)
	}
	if status, _, _ := call(t, srv, "GET", base, tok, ""); status != http.StatusOK {
		t.Fatalf("after the faults: %d", status)
	}
}
