package main

import (
	"encoding/json"
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
	actionNames = []string{"unchanged", "created", "updated", "deleted", "imported", "conflict", "unmanaged", "skipped", "retry", "failed"}
	classNames  = []string{"unchanged", "source-changed", "destination-changed", "converged", "both-changed", "both-created", "source-deleted", "destination-deleted"}
	modeNames   = []string{"push", "pull", "bidirectional"}
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

// TestAPIShapes calls every endpoint of the API, answers and errors, and
// checks the style of each answer and the fields of each kind of object.
func TestAPIShapes(t *testing.T) {
	src := memory.New(map[string]string{"A": "1", "B": "2"})
	dst := memory.New(nil)
	m := newMetrics()
	g := testGen(t, m,
		testSync{name: "manual", mode: sync.Bidirectional, src: src, dst: dst},
		testSync{name: "auto", auto: true, src: memory.New(nil), dst: memory.New(nil), interval: time.Hour})
	d := testDaemon(g, m)
	srv := httptest.NewServer((&server{d: d}).routes())
	defer srv.Close()

	answers := map[string]any{}
	get := func(name string, wantCode int, method, path, body string) any {
		t.Helper()
		code, text := call(t, srv, method, path, body)
		var v any
		if err := json.Unmarshal([]byte(text), &v); err != nil {
			t.Fatalf("%s %s: not JSON: %v\n%s", method, path, err, text)
		}
		if code != wantCode {
			t.Fatalf("%s %s = %d, want %d: %s", method, path, code, wantCode, text)
		}
		answers[name] = v
		checkStyle(t, name, v)
		return v
	}

	// A first round, then a conflict: A changed on both sides.
	get("first round", 200, "POST", "/v1/syncs/manual/trigger", "")
	src.Set("A", "from-src")
	dst.Set("A", "from-dst")
	rep := get("report", 200, "POST", "/v1/syncs/manual/trigger", "")
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

	list := get("list", 200, "GET", "/v1/syncs", "")
	if n := len(list.([]any)); n != 2 {
		t.Fatalf("%d syncs listed", n)
	}
	for _, s := range list.([]any) {
		if s.(map[string]any)["name"] != "manual" {
			continue
		}
		wantFields(t, "sync", s, "name", "mode", "auto_sync", "sync", "conflicts")
		wantFields(t, "sync.sync", s.(map[string]any)["sync"], "status", "message", "updated_at", "run_id")
		if st := s.(map[string]any)["sync"].(map[string]any)["status"]; st != "conflicts" {
			t.Errorf("status %v, want conflicts", st)
		}
	}
	cs := get("conflicts", 200, "GET", "/v1/syncs/manual/conflicts", "")
	if len(cs.([]any)) != 1 {
		t.Fatalf("conflicts: %v", cs)
	}
	wantFields(t, "conflict", cs.([]any)[0], "key", "destination_key", "class", "run_id", "flagged_at")

	wantFields(t, "triggered", get("triggered", 202, "POST", "/v1/syncs/auto/trigger", ""), "status", "sync")
	wantFields(t, "resolved", get("resolved", 200, "POST", "/v1/syncs/manual/conflicts/A", `{"keep":"source"}`), "status", "sync", "key", "kept")
	wantFields(t, "healthz", get("healthz", 200, "GET", "/healthz", ""), "status")
	rd := get("readyz", 503, "GET", "/readyz", "")
	wantFields(t, "readyz", rd, "ready", "syncs")
	wantFields(t, "readyz.syncs[]", rd.(map[string]any)["syncs"].([]any)[0], "name", "ready", "state", "message")

	for _, e := range []struct {
		name, method, path, body string
		code                     int
	}{
		{"unknown sync", "POST", "/v1/syncs/nope/trigger", "", 404},
		{"bad body", "POST", "/v1/syncs/manual/conflicts/A", `{"keep":`, 400},
		{"bad keep", "POST", "/v1/syncs/manual/conflicts/A", `{"keep":"both"}`, 400},
		{"no conflict", "POST", "/v1/syncs/manual/conflicts/B", `{"keep":"source"}`, 404},
		{"unknown path", "GET", "/v2/nothing", "", 404},
		{"wrong method", "DELETE", "/v1/syncs", "", 405},
	} {
		v := get(e.name, e.code, e.method, e.path, e.body)
		wantFields(t, e.name, v, "error")
		if msg, _ := v.(map[string]any)["error"].(string); msg == "" || strings.ContainsAny(msg, "\r\n") {
			t.Errorf("%s: error %q is not one line", e.name, msg)
		}
	}
	req := httptest.NewRequest("DELETE", "/v1/syncs", nil)
	rec := httptest.NewRecorder()
	(&server{d: d}).routes().ServeHTTP(rec, req)
	if rec.Code != 405 || !strings.Contains(rec.Header().Get("Allow"), "GET") || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("DELETE /v1/syncs = %d, Allow %q, Content-Type %q", rec.Code, rec.Header().Get("Allow"), rec.Header().Get("Content-Type"))
	}

	// No Go field name leaks anywhere.
	all, _ := json.Marshal(answers)
	for _, goName := range []string{"RunID", "Err", "Key", "Totals", "Started", "DestinationKey", "Class", "Time"} {
		if strings.Contains(string(all), `"`+goName+`"`) {
			t.Errorf("a Go field name leaks: %s", goName)
		}
	}
}
