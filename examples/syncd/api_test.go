package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/sync"
)

var snakeCase = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

// Values the API gives by name.
var (
	actionNames = []string{"unchanged", "created", "updated", "deleted", "imported", "conflict", "unmanaged", "skipped", "retry", "failed",
		"keep-source", "keep-destination"} // a key's, or a resolution's
	classNames = []string{"unchanged", "source-changed", "destination-changed", "converged", "both-changed", "both-created", "source-deleted", "destination-deleted"}
	modeNames  = []string{"push", "pull", "bidirectional"}
)

// checkStyle walks a decoded JSON answer: every field is snake_case, every
// time (a field ending in _at, or failing_since) is RFC 3339 in UTC, and
// actions, classes and modes are names.
func checkStyle(t *testing.T, where string, v any) {
	t.Helper()
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			at := where + "." + k
			if !snakeCase.MatchString(k) {
				t.Errorf("%s: field %q is not snake_case", where, k)
			}
			s, isString := x.(string)
			switch {
			case strings.HasSuffix(k, "_at") || k == "failing_since":
				if _, err := time.Parse(time.RFC3339, s); !isString || err != nil || !strings.HasSuffix(s, "Z") {
					t.Errorf("%s = %v: not an RFC 3339 time in UTC", at, x)
				}
			case k == "action" && !slices.Contains(actionNames, s),
				k == "class" && !slices.Contains(classNames, s),
				k == "mode" && !slices.Contains(modeNames, s):
				t.Errorf("%s = %v: not a name", at, x)
			}
			checkStyle(t, at, x)
		}
	case []any:
		for _, x := range v {
			checkStyle(t, where+"[]", x)
		}
	}
}

// fields returns the sorted field names of a JSON object.
func fields(t *testing.T, where string, v any) []string {
	t.Helper()
	o, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%s: %v is not an object", where, v)
	}
	var out []string
	for k := range o {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func wantFields(t *testing.T, where string, v any, want ...string) {
	t.Helper()
	sort.Strings(want)
	if got := fields(t, where, v); !slices.Equal(got, want) {
		t.Errorf("%s: fields %v, want %v", where, got, want)
	}
}

// TestAPIShapes calls every endpoint of the syncs' API (httpapi, on the
// api listener) and of the main listener, answers and errors, and checks
// the style of each answer and the fields of each kind of object.
func TestAPIShapes(t *testing.T) {
	src := memory.New(map[string]string{"A": "1", "B": "2"})
	dst := memory.New(nil)
	m := newMetrics()
	g := testGen(t, m,
		testSync{name: "manual", mode: sync.Bidirectional, src: src, dst: dst},
		testSync{name: "auto", auto: true, src: memory.New(nil), dst: memory.New(nil), interval: time.Hour})
	d := testDaemon(g, m)
	api, _ := testAPI(t, d)
	main := httptest.NewServer((&server{d: d}).routes())
	defer main.Close()

	answers := map[string]any{}
	get := func(srv *httptest.Server, name string, wantCode int, method, path, body string) any {
		t.Helper()
		do := callAPI
		if srv == main {
			do = call
		}
		code, text := do(t, srv, method, path, body)
		var v any
		if err := json.Unmarshal([]byte(text), &v); err != nil {
			t.Fatalf("%s %s: not JSON: %v\n%s", method, path, err, text)
		}
		if code != wantCode {
			t.Fatalf("%s %s = %d, want %d: %s", method, path, code, wantCode, text)
		}
		answers[name] = v
		checkStyle(t, name, v)
		if o, ok := v.(map[string]any); ok && srv == api && code < 300 {
			return o["data"] // the envelope's
		}
		return v
	}
	const syncs = "/v1/secretsync/syncs"

	// A first round, then a conflict: A changed on both sides.
	get(api, "first round", 200, "POST", syncs+"/manual/trigger", "")
	src.Set("A", "from-src")
	dst.Set("A", "from-dst")
	tr := get(api, "trigger", 200, "POST", syncs+"/manual/trigger", "")
	wantFields(t, "trigger", tr, "sync", "status", "report")
	rep := tr.(map[string]any)["report"]
	wantFields(t, "report", rep, "sync", "run_id", "operation", "mode", "dry_run", "initial", "started_at", "finished_at", "keys", "totals", "flagged")
	wantFields(t, "report.totals", rep.(map[string]any)["totals"], "created", "updated", "deleted", "imported", "unchanged", "conflicts", "unmanaged", "skipped", "retries", "failed")
	var sawConflict bool
	for _, k := range rep.(map[string]any)["keys"].([]any) {
		f := fields(t, "report.keys[]", k)
		for _, want := range []string{"key", "destination_key", "action", "class"} {
			if !slices.Contains(f, want) {
				t.Errorf("report.keys[]: no %s in %v", want, f)
			}
		}
		if k.(map[string]any)["action"] == "conflict" {
			sawConflict = true
			if k.(map[string]any)["class"] != "both-changed" {
				t.Errorf("conflict of class %v", k.(map[string]any)["class"])
			}
		}
	}
	if !sawConflict || rep.(map[string]any)["flagged"] != 1.0 {
		t.Fatalf("no conflict in the report: %v", rep)
	}

	list := get(api, "list", 200, "GET", syncs, "").(map[string]any)["syncs"]
	if n := len(list.([]any)); n != 2 {
		t.Fatalf("%d syncs listed", n)
	}
	for _, s := range list.([]any) {
		if s.(map[string]any)["name"] != "manual" {
			continue
		}
		wantFields(t, "sync", s, "name", "mode", "auto_sync", "sync", "import", "remove", "last_round", "conflicts")
		wantFields(t, "sync.sync", s.(map[string]any)["sync"], "operation", "status", "message", "updated_at", "run_id")
		if st := s.(map[string]any)["sync"].(map[string]any)["status"]; st != "conflicts" {
			t.Errorf("status %v, want conflicts", st)
		}
	}
	wantFields(t, "status", get(api, "status", 200, "GET", syncs+"/manual", ""), "name", "mode", "auto_sync", "sync", "import", "remove", "last_round", "conflicts")
	cs := get(api, "conflicts", 200, "GET", syncs+"/manual/conflicts", "").(map[string]any)["conflicts"]
	if len(cs.([]any)) != 1 {
		t.Fatalf("conflicts: %v", cs)
	}
	wantFields(t, "conflict", cs.([]any)[0], "key", "destination_key", "class", "run_id", "flagged_at")
	plan := get(api, "plan", 200, "GET", syncs+"/manual/plan", "")
	if plan.(map[string]any)["dry_run"] != true {
		t.Errorf("plan: %v", plan)
	}

	wantFields(t, "triggered", get(api, "triggered", 202, "POST", syncs+"/auto/trigger", ""), "status", "sync")
	wantFields(t, "resolved", get(api, "resolved", 200, "POST", syncs+"/manual/resolve", `{"key":"A","action":"keep-source"}`), "status", "sync", "key", "action")
	wantFields(t, "healthz", get(main, "healthz", 200, "GET", "/healthz", ""), "status")
	rd := get(main, "readyz", 503, "GET", "/readyz", "")
	wantFields(t, "readyz", rd, "ready", "syncs")
	wantFields(t, "readyz.syncs[]", rd.(map[string]any)["syncs"].([]any)[0], "name", "ready", "state", "message")

	for _, e := range []struct {
		name, method, path, body string
		code                     int
	}{
		{"unknown sync", "POST", syncs + "/nope/trigger", "", 404},
		{"bad body", "POST", syncs + "/manual/resolve", `{"key":`, 400},
		{"bad action", "POST", syncs + "/manual/resolve", `{"key":"A","action":"keep-both"}`, 400},
		{"no conflict", "POST", syncs + "/manual/resolve", `{"key":"B","action":"keep-source"}`, 404},
		{"wrong method", "DELETE", syncs, "", 405},
	} {
		v := get(api, e.name, e.code, e.method, e.path, e.body)
		wantFields(t, e.name, v, "errors")
		if msgs, _ := v.(map[string]any)["errors"].([]any); len(msgs) != 1 || msgs[0] == "" || strings.ContainsAny(msgs[0].(string), "\r\n") {
			t.Errorf("%s: errors %v: want one line", e.name, msgs)
		}
	}
	for _, e := range []struct {
		name, method, path string
		code               int
	}{
		{"unknown path", "GET", "/v2/nothing", 404},
		{"wrong method", "DELETE", "/healthz", 405},
	} {
		v := get(main, "main "+e.name, e.code, e.method, e.path, "")
		wantFields(t, e.name, v, "error")
	}
	req := httptest.NewRequest("DELETE", "/healthz", nil)
	rec := httptest.NewRecorder()
	(&server{d: d}).routes().ServeHTTP(rec, req)
	if rec.Code != 405 || !strings.Contains(rec.Header().Get("Allow"), "GET") || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("DELETE /healthz = %d, Allow %q, Content-Type %q", rec.Code, rec.Header().Get("Allow"), rec.Header().Get("Content-Type"))
	}

	// No Go field name leaks anywhere.
	all, _ := json.Marshal(answers)
	for _, goName := range []string{"RunID", "Err", "Key", "Totals", "Started", "DestinationKey", "Class", "Time"} {
		if strings.Contains(string(all), `"`+goName+`"`) {
			t.Errorf("a Go field name leaks: %s", goName)
		}
	}
}

// TestMainListenerRefusesTheAPI: the main listener, which needs no
// token, no longer has the syncs' API: a trigger there (a browser's
// cross-site POST included) runs no round, and every sync path is 404 or
// 405; the API's listener refuses it without the token, and from another
// origin with it.
func TestMainListenerRefusesTheAPI(t *testing.T) {
	src := memory.New(map[string]string{"A": "1"})
	dst := memory.New(nil)
	g := testGen(t, newMetrics(), testSync{name: "manual", src: src, dst: dst})
	d := testDaemon(g, nil)
	main := httptest.NewServer((&server{d: d}).routes())
	defer main.Close()
	api, _ := testAPI(t, d)

	for _, p := range []string{"/v1/syncs/manual/trigger", "/v1/secretsync/syncs/manual/trigger", "/v1/syncs/manual/conflicts/A", "/v1/secretsync/syncs/manual/resolve"} {
		req, _ := http.NewRequest("POST", main.URL+p, strings.NewReader(`{"keep":"source","key":"A","action":"keep-source"}`))
		req.Header.Set("Origin", "http://evil.example")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		resp, err := main.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 && resp.StatusCode != 405 {
			t.Errorf("main listener: POST %s = %d", p, resp.StatusCode)
		}
	}
	for _, p := range []string{"/v1/syncs", "/v1/secretsync/syncs"} {
		if code, body := call(t, main, "GET", p, ""); code != 404 {
			t.Errorf("main listener: GET %s = %d %s", p, code, body)
		}
	}
	// The API: no token 401, a wrong one 403, another origin 403.
	if code, _ := call(t, api, "POST", "/v1/secretsync/syncs/manual/trigger", ""); code != 401 {
		t.Errorf("API without a token: %d", code)
	}
	req, _ := http.NewRequest("POST", api.URL+"/v1/secretsync/syncs/manual/trigger", nil)
	req.Header.Set("Authorization", "Bearer wrong")
	if resp, err := api.Client().Do(req); err != nil || resp.StatusCode != 403 {
		t.Errorf("API with a wrong token: %v %v", resp, err)
	}
	req, _ = http.NewRequest("POST", api.URL+"/v1/secretsync/syncs/manual/trigger", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Origin", "http://evil.example")
	if resp, err := api.Client().Do(req); err != nil || resp.StatusCode != 403 {
		t.Errorf("API from another origin: %v %v", resp, err)
	}
	if st, err := g.syncs["manual"].syncer.Status(context.Background()); err != nil || st.Sync != nil {
		t.Fatalf("a refused trigger ran a round: %+v %v", st, err)
	}
	if _, ok := dst.Get("A"); ok {
		t.Fatal("a refused trigger wrote the destination")
	}
	// With the token, from the API's own origin: the round runs.
	if code, body := callAPI(t, api, "POST", "/v1/secretsync/syncs/manual/trigger", ""); code != 200 {
		t.Fatalf("trigger with the token: %d %s", code, body)
	}
	if _, ok := dst.Get("A"); !ok {
		t.Fatal("the trigger did not run a round")
	}
}
