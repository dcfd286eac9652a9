package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/secretsync/secretsync/audit"
	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/registry"
	"github.com/secretsync/secretsync/registry/httpapi"
	"github.com/secretsync/secretsync/state"
	"github.com/secretsync/secretsync/sync"
)

const syncs = "/v1/secretsync/syncs"

// syncFixture is a handler over two in-memory syncs: "app", bidirectional
// and manual, and "auto", a push sync with auto-sync (whose Watch runs
// only when a test starts it).
type syncFixture struct {
	t        *testing.T
	h        http.Handler
	rec      *audit.Recorder
	src, dst *memory.Destination
	app      *sync.Syncer
	auto     *sync.Syncer
}

func newSyncFixture(t *testing.T, opts httpapi.Options) *syncFixture {
	t.Helper()
	f := &syncFixture{t: t, rec: audit.NewRecorder(),
		src: memory.New(map[string]string{"DB_URL": "postgres://db", "API_KEY": "k1"}),
		dst: memory.New(nil)}
	var err error
	f.app, err = sync.New(sync.Config{Name: "app", Description: "the app's secrets", Source: f.src, Destination: f.dst,
		Mode: sync.Bidirectional, Store: state.NewMemory(), AutoSync: sync.AutoSync{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	f.auto, err = sync.New(sync.Config{Name: "auto", Source: memory.New(map[string]string{"K": "v"}), Destination: memory.New(nil),
		Store: state.NewMemory()})
	if err != nil {
		t.Fatal(err)
	}
	if opts.Token == "" && opts.TokenFile == "" && opts.Authenticate == nil && !opts.NoAuth {
		opts.Token = testToken
	}
	if opts.Auditor == nil {
		opts.Auditor = f.rec
	}
	if opts.Syncs == nil {
		opts.Syncs = httpapi.SyncMap{"app": f.app, "auto": f.auto}
	}
	f.h, err = httpapi.New(nil, &opts)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *syncFixture) do(method, path, body string) answer {
	f.t.Helper()
	return serve(f.t, f.h, newRequest(method, path, body))
}

// conflict makes the key DB_URL of "app" a flagged conflict.
func (f *syncFixture) conflict() {
	f.t.Helper()
	ctx := context.Background()
	if _, err := f.app.Run(ctx); err != nil {
		f.t.Fatal(err)
	}
	f.src.Set("DB_URL", "from-source")
	f.dst.Set("DB_URL", "from-destination")
	if _, err := f.app.Run(ctx); err != nil {
		f.t.Fatal(err)
	}
}

// decode re-decodes v (a part of an answer) into out.
func decode(t *testing.T, v any, out any) {
	t.Helper()
	b, _ := json.Marshal(v)
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
}

// errorsWithData returns the errors and the data of an error body that
// carries a report.
func (a answer) errorsWithData(t *testing.T) ([]any, map[string]any) {
	t.Helper()
	errs, ok := a.body["errors"].([]any)
	if !ok || len(errs) != 1 {
		t.Fatalf("status %d: not an error body with one error: %s", a.status, a.raw)
	}
	d, _ := a.body["data"].(map[string]any)
	return errs, d
}

func TestSyncList(t *testing.T) {
	f := newSyncFixture(t, httpapi.Options{})
	a := f.do("GET", syncs, "")
	if a.status != 200 {
		t.Fatalf("GET %s: %d %s", syncs, a.status, a.raw)
	}
	var got struct{ Syncs []httpapi.SyncInfo }
	decode(t, a.data(t), &got)
	want := []httpapi.SyncInfo{
		{Name: "app", Description: "the app's secrets", Mode: "bidirectional", AutoSync: false},
		{Name: "auto", Mode: "push", AutoSync: true},
	}
	if !slices.EqualFunc(got.Syncs, want, func(x, y httpapi.SyncInfo) bool { return fmt.Sprint(x) == fmt.Sprint(y) }) {
		t.Errorf("syncs = %+v, want %+v", got.Syncs, want)
	}
	// Never-run operations are null, not absent.
	d := a.data(t)["syncs"].([]any)[0].(map[string]any)
	for _, k := range []string{"sync", "import", "remove", "last_round"} {
		if v, ok := d[k]; !ok || v != nil {
			t.Errorf("%s = %v (present %v), want null", k, v, ok)
		}
	}
}

func TestSyncStatus(t *testing.T) {
	f := newSyncFixture(t, httpapi.Options{})
	f.conflict()
	a := f.do("GET", syncs+"/app", "")
	if a.status != 200 {
		t.Fatalf("%d %s", a.status, a.raw)
	}
	var got httpapi.SyncInfo
	decode(t, a.data(t), &got)
	if got.Name != "app" || got.Conflicts != 1 || got.Sync == nil || got.Sync.Status != "conflicts" || got.Sync.Operation != "sync" {
		t.Errorf("status = %+v (sync %+v)", got, got.Sync)
	}
	if got.LastRound == nil || *got.LastRound != *got.Sync {
		t.Errorf("last_round = %+v, want the sync record %+v", got.LastRound, got.Sync)
	}
	// Times are RFC 3339, in UTC.
	raw := a.data(t)["sync"].(map[string]any)["updated_at"].(string)
	if at, err := time.Parse(time.RFC3339Nano, raw); err != nil || !strings.HasSuffix(raw, "Z") || time.Since(at) > time.Hour {
		t.Errorf("updated_at = %q: %v", raw, err)
	}

	if a := f.do("GET", syncs+"/nope", ""); a.status != 404 || !strings.Contains(a.errors(t)[0], "nope") {
		t.Errorf("unknown sync: %d %s", a.status, a.raw)
	}
}

func TestSyncConflictsAndResolve(t *testing.T) {
	f := newSyncFixture(t, httpapi.Options{})
	a := f.do("GET", syncs+"/app/conflicts", "")
	if a.status != 200 || len(a.data(t)["conflicts"].([]any)) != 0 {
		t.Fatalf("no conflicts yet: %d %s", a.status, a.raw)
	}
	f.conflict()
	a = f.do("GET", syncs+"/app/conflicts", "")
	var got struct {
		Sync      string
		Conflicts []httpapi.Conflict
	}
	decode(t, a.data(t), &got)
	if got.Sync != "app" || len(got.Conflicts) != 1 || got.Conflicts[0].Key != "DB_URL" || got.Conflicts[0].Class != "both-changed" || got.Conflicts[0].FlaggedAt.IsZero() {
		t.Fatalf("conflicts = %+v", got)
	}

	for _, bad := range []struct {
		body   string
		status int
	}{
		{`{"key":"DB_URL","action":"use-value"}`, 400},
		{`{"key":"DB_URL","action":"flag"}`, 400},
		{`{"key":"DB_URL","keep":"source"}`, 400},
		{`{"key":"","action":"keep-source"}`, 400},
		{`{"key":"API_KEY","action":"keep-source"}`, 404},
	} {
		if a := f.do("POST", syncs+"/app/resolve", bad.body); a.status != bad.status {
			t.Errorf("resolve %s: %d %s, want %d", bad.body, a.status, a.raw, bad.status)
		}
	}
	if v, _ := f.src.Get("DB_URL"); v.Value != "from-source" {
		t.Fatalf("a refused resolution changed the source: %q", v)
	}

	a = f.do("POST", syncs+"/app/resolve", `{"key":"DB_URL","action":"keep-destination"}`)
	if a.status != 200 {
		t.Fatalf("resolve: %d %s", a.status, a.raw)
	}
	var res httpapi.ResolveResult
	decode(t, a.data(t), &res)
	if res != (httpapi.ResolveResult{Sync: "app", Key: "DB_URL", Action: "keep-destination", Status: "resolved"}) {
		t.Errorf("resolved = %+v", res)
	}
	if v, _ := f.src.Get("DB_URL"); v.Value != "from-destination" {
		t.Errorf("source DB_URL = %q after keep-destination", v)
	}
	if a := f.do("GET", syncs+"/app/conflicts", ""); len(a.data(t)["conflicts"].([]any)) != 0 {
		t.Errorf("still flagged: %s", a.raw)
	}
}

func TestSyncTrigger(t *testing.T) {
	f := newSyncFixture(t, httpapi.Options{})
	// A manual sync runs its round during the request.
	a := f.do("POST", syncs+"/app/trigger", "")
	if a.status != 200 {
		t.Fatalf("trigger app: %d %s", a.status, a.raw)
	}
	var got httpapi.TriggerResult
	decode(t, a.data(t), &got)
	if got.Status != "completed" || got.Report == nil || got.Report.Totals.Created != 2 || got.Report.DryRun {
		t.Fatalf("trigger app = %+v", got)
	}
	if v, _ := f.dst.Get("DB_URL"); v.Value != "postgres://db" {
		t.Errorf("the round did not run: destination DB_URL = %q", v)
	}
	if k := got.Report.Keys[0]; k.Action != "created" || k.Direction != "to-destination" {
		t.Errorf("key result = %+v: actions and directions by name", k)
	}

	// An auto-synced one asks its Watch for a round.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	rounds := make(chan struct{}, 10)
	auto, err := sync.New(sync.Config{Name: "auto", Source: memory.New(map[string]string{"K": "v"}), Destination: memory.New(nil),
		Store: state.NewMemory(), AutoSync: sync.AutoSync{Interval: time.Hour},
		OnRound: func(*sync.Report, error) { rounds <- struct{}{} }})
	if err != nil {
		t.Fatal(err)
	}
	go func() { defer close(done); _ = auto.Watch(ctx) }()
	defer func() { cancel(); <-done }()
	<-rounds // Watch's first round
	f = newSyncFixture(t, httpapi.Options{Syncs: httpapi.SyncMap{"auto": auto}})
	a = f.do("POST", syncs+"/auto/trigger", "")
	if a.status != 202 {
		t.Fatalf("trigger auto: %d %s", a.status, a.raw)
	}
	got = httpapi.TriggerResult{}
	decode(t, a.data(t), &got)
	if got != (httpapi.TriggerResult{Sync: "auto", Status: "triggered"}) {
		t.Errorf("trigger auto = %+v", got)
	}
	<-rounds // the triggered round (the interval is an hour)

	// wait=true runs it during the request.
	a = f.do("POST", syncs+"/auto/trigger?wait=true", "")
	if a.status != 200 || a.data(t)["status"] != "completed" {
		t.Errorf("trigger auto?wait=true: %d %s", a.status, a.raw)
	}
	if a := f.do("POST", syncs+"/auto/trigger?wait=maybe", ""); a.status != 400 {
		t.Errorf("wait=maybe: %d %s", a.status, a.raw)
	}
	if a := f.do("POST", syncs+"/nope/trigger", ""); a.status != 404 {
		t.Errorf("unknown sync: %d %s", a.status, a.raw)
	}
}

// A round refused by the mass-deletion guard answers 409 with its report.
func TestSyncTriggerRefused(t *testing.T) {
	f := newSyncFixture(t, httpapi.Options{})
	if a := f.do("POST", syncs+"/app/trigger", ""); a.status != 200 {
		t.Fatalf("%d %s", a.status, a.raw)
	}
	for _, k := range []string{"DB_URL", "API_KEY"} {
		f.src.Delete(k)
	}
	a := f.do("POST", syncs+"/app/trigger", "")
	errs, data := a.errorsWithData(t)
	if a.status != 409 || !strings.Contains(fmt.Sprint(errs), "mass deletion") && !strings.Contains(fmt.Sprint(errs), "refused") {
		t.Fatalf("mass deletion: %d %s", a.status, a.raw)
	}
	if data["status"] != "completed" || data["sync"] != "app" {
		t.Errorf("data = %v", data)
	}
	if _, ok := f.dst.Get("DB_URL"); !ok {
		t.Errorf("the refused round deleted DB_URL")
	}
	if a := f.do("GET", syncs+"/app/plan", ""); a.status != 409 {
		t.Errorf("plan of a mass deletion: %d %s", a.status, a.raw)
	}
}

func TestSyncPlan(t *testing.T) {
	f := newSyncFixture(t, httpapi.Options{})
	a := f.do("GET", syncs+"/app/plan", "")
	if a.status != 200 {
		t.Fatalf("plan: %d %s", a.status, a.raw)
	}
	var rep httpapi.Report
	decode(t, a.data(t), &rep)
	if !rep.DryRun || rep.Totals.Created != 2 || len(rep.Keys) != 2 || rep.Keys[0].Action != "created" {
		t.Errorf("plan = %+v", rep)
	}
	if _, ok := f.dst.Get("DB_URL"); ok {
		t.Errorf("the plan wrote the destination")
	}
	if a := f.do("POST", syncs+"/app/plan", ""); a.status != 405 || a.header.Get("Allow") != "GET" {
		t.Errorf("POST plan: %d %s", a.status, a.raw)
	}
}

func TestSyncPaths(t *testing.T) {
	f := newSyncFixture(t, httpapi.Options{})
	for _, c := range []struct {
		method, path string
		status       int
	}{
		{"POST", syncs, 405},
		{"DELETE", syncs + "/app", 405},
		{"GET", syncs + "/app/trigger", 405},
		{"GET", syncs + "/app/resolve", 405},
		{"POST", syncs + "/app/conflicts", 405},
		{"GET", syncs + "/app/nothing", 404},
		{"GET", syncs + "/app/conflicts/DB_URL", 404},
		{"GET", "/v1/secretsync/other", 404},
		{"GET", "/v1/secretsync/", 404},
		// No registry: Vault's paths are not served.
		{"LIST", dests, 404},
	} {
		if a := f.do(c.method, c.path, ""); a.status != c.status {
			t.Errorf("%s %s: %d %s, want %d", c.method, c.path, a.status, a.raw, c.status)
		}
	}
	// Without syncs, the sync resources are not served.
	rf := newFixture(t, httpapi.Options{})
	if a := rf.do("GET", syncs, ""); a.status != 404 {
		t.Errorf("no Syncs: %d %s", a.status, a.raw)
	}
}

// The sync resources need the same authentication, and pass the same
// Host and Origin guard, as Vault's paths; refused mutations are audited.
func TestSyncAuthAndGuard(t *testing.T) {
	f := newSyncFixture(t, httpapi.Options{})
	noToken := func(method, path string) *http.Request {
		r := newRequest(method, path, "")
		r.Header.Del("X-Vault-Token")
		return r
	}
	wrong := func(method, path string) *http.Request {
		r := noToken(method, path)
		r.Header.Set("Authorization", "Bearer s.wrong")
		return r
	}
	crossOrigin := func(method, path string) *http.Request {
		r := newRequest(method, path, "")
		r.Header.Set("Origin", "http://evil.example")
		return r
	}
	crossSite := func(method, path string) *http.Request {
		r := newRequest(method, path, "")
		r.Header.Set("Sec-Fetch-Site", "cross-site")
		return r
	}
	rebound := func(method, path string) *http.Request {
		r := newRequest(method, path, "")
		r.Host = "evil.example:8200"
		return r
	}
	for _, c := range []struct {
		name   string
		req    func(method, path string) *http.Request
		status int
	}{
		{"no token", noToken, 401},
		{"wrong token", wrong, 403},
		{"cross-origin", crossOrigin, 403},
		{"cross-site", crossSite, 403},
		{"DNS rebinding", rebound, 403},
	} {
		for _, p := range []struct{ method, path string }{
			{"POST", syncs + "/app/trigger"},
			{"POST", syncs + "/app/resolve"},
			{"GET", syncs},
			{"GET", syncs + "/app/plan"},
		} {
			f.rec.Reset()
			a := serve(t, f.h, c.req(p.method, p.path))
			if a.status != c.status {
				t.Errorf("%s: %s %s: %d %s, want %d", c.name, p.method, p.path, a.status, a.raw, c.status)
			}
			evs := f.rec.Events()
			if p.method == "POST" && (len(evs) != 1 || evs[0].Type != httpapi.EventRequestDenied) {
				t.Errorf("%s: %s %s: events %+v, want one %s", c.name, p.method, p.path, evs, httpapi.EventRequestDenied)
			}
			if p.method == "GET" && len(evs) != 0 {
				t.Errorf("%s: GET audited: %+v", c.name, evs)
			}
		}
	}
	if st, _ := f.app.Status(context.Background()); st.Sync != nil {
		t.Errorf("a refused trigger ran a round: %+v", st.Sync)
	}
	// The listener's own origin is served.
	r := newRequest("POST", syncs+"/app/trigger", "")
	r.Header.Set("Origin", "http://127.0.0.1:8200")
	if a := serve(t, f.h, r); a.status != 200 {
		t.Errorf("same origin: %d %s", a.status, a.raw)
	}
}

// Trigger and resolve are audited with who made them, successful or not.
func TestSyncAudit(t *testing.T) {
	f := newSyncFixture(t, httpapi.Options{Authenticate: func(r *http.Request) (string, error) {
		who, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer user:")
		if !ok {
			return "", httpapi.ErrUnauthenticated
		}
		return who, nil
	}})
	f.conflict()
	steps := []struct {
		user, method, path, body string
		status                   int
		typ                      audit.Type
		outcome                  audit.Outcome
		attrs                    map[string]string
		key                      string
	}{
		{"alice", "POST", syncs + "/app/resolve", `{"key":"DB_URL","action":"keep-source"}`, 200, httpapi.EventResolveRequested, audit.Success, map[string]string{"action": "keep-source"}, "DB_URL"},
		{"alice", "POST", syncs + "/app/resolve", `{"key":"DB_URL","action":"keep-source"}`, 404, httpapi.EventResolveRequested, audit.Failure, map[string]string{"action": "keep-source"}, "DB_URL"},
		{"bob", "POST", syncs + "/app/trigger", "", 200, httpapi.EventSyncTriggered, audit.Success, map[string]string{"ran": "true"}, ""},
		{"bob", "POST", syncs + "/auto/trigger", "", 202, httpapi.EventSyncTriggered, audit.Success, map[string]string{"ran": "false"}, ""},
		{"carol", "POST", syncs + "/nope/trigger", "", 404, httpapi.EventSyncTriggered, audit.Failure, nil, ""},
		{"carol", "GET", syncs + "/app", "", 200, "", "", nil, ""},
		{"carol", "GET", syncs + "/app/plan", "", 200, "", "", nil, ""},
	}
	for i, s := range steps {
		f.rec.Reset()
		r := newRequest(s.method, s.path, s.body)
		r.Header.Del("X-Vault-Token")
		r.Header.Set("Authorization", "Bearer user:"+s.user)
		a := serve(t, f.h, r)
		if a.status != s.status {
			t.Fatalf("step %d %s %s: %d %s, want %d", i, s.method, s.path, a.status, a.raw, s.status)
		}
		var ours []audit.Event
		for _, e := range f.rec.Events() {
			if e.Type == httpapi.EventSyncTriggered || e.Type == httpapi.EventResolveRequested {
				ours = append(ours, e)
			}
		}
		if s.typ == "" {
			if len(ours) != 0 {
				t.Errorf("step %d: a read is audited: %+v", i, ours)
			}
			continue
		}
		if len(ours) != 1 {
			t.Fatalf("step %d: events %+v, want one %s", i, f.rec.Events(), s.typ)
		}
		e := ours[0]
		if e.Type != s.typ || e.Outcome != s.outcome || e.Attrs["actor"] != s.user || e.Key != s.key || e.Attrs["status"] != fmt.Sprint(s.status) {
			t.Errorf("step %d: event %+v", i, e)
		}
		if name := strings.Split(strings.TrimPrefix(s.path, syncs+"/"), "/")[0]; e.Sync != name {
			t.Errorf("step %d: event sync %q, want %q", i, e.Sync, name)
		}
		for k, v := range s.attrs {
			if e.Attrs[k] != v {
				t.Errorf("step %d: Attrs[%q] = %q, want %q", i, k, e.Attrs[k], v)
			}
		}
	}
}

// A canary in every value of both sides, in a conflict, in a failed key
// and in refused request bodies appears in no answer and no audit event
// of the sync resources: plans, reports and conflicts hold keys and
// actions only.
func TestSyncNothingLeaks(t *testing.T) {
	const canary = "CANARY"
	f := newSyncFixture(t, httpapi.Options{})
	f.src.Set("DB_URL", canary+"-db")
	f.src.Set("API_KEY", canary+"-api")
	var answers []answer
	do := func(method, path, body string) {
		answers = append(answers, f.do(method, path, body))
	}
	do("GET", syncs+"/app/plan", "")
	do("POST", syncs+"/app/trigger", "")
	f.src.Set("DB_URL", canary+"-source-change")
	f.dst.Set("DB_URL", canary+"-destination-change")
	f.src.Set("NEW", canary+"-new")
	do("GET", syncs+"/app/plan", "")
	do("POST", syncs+"/app/trigger", "")
	do("GET", syncs, "")
	do("GET", syncs+"/app", "")
	do("GET", syncs+"/app/conflicts", "")
	do("POST", syncs+"/app/resolve", fmt.Sprintf(`{"key":"DB_URL","action":%q}`, canary+"-action"))
	do("POST", syncs+"/app/resolve", fmt.Sprintf(`{"key":"DB_URL","value":%q}`, canary+"-value"))
	do("POST", syncs+"/app/resolve", fmt.Sprintf(`{"key":"DB_URL","action":"use-value","value":%q}`, canary+"-value"))
	do("POST", syncs+"/app/resolve", `{"key":"DB_URL","action":"keep-source"}`)
	do("POST", syncs+"/app/trigger?wait="+canary, "")
	// A side that fails a write.
	failing, err := sync.New(sync.Config{Name: "failing", Source: memory.New(map[string]string{"K": canary + "-k"}),
		Destination: memory.NewWithOptions(nil, &memory.Options{BeforeApply: func(_ context.Context, c destination.Change) error {
			return fmt.Errorf("refused the write of %s", c.Key)
		}}), Store: state.NewMemory(), AutoSync: sync.AutoSync{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	g := newSyncFixture(t, httpapi.Options{Auditor: f.rec, Syncs: httpapi.SyncMap{"failing": failing}})
	a := g.do("POST", syncs+"/failing/trigger", "")
	if a.status != 502 {
		t.Errorf("a round whose key failed: %d %s", a.status, a.raw)
	}
	answers = append(answers, a)

	for _, a := range answers {
		if strings.Contains(a.raw+fmt.Sprint(a.header), canary) || strings.Contains(a.raw, testToken) {
			t.Errorf("an answer holds a canary: %s", a.raw)
		}
	}
	if len(f.rec.Events()) == 0 {
		t.Fatal("no audit event")
	}
	for _, e := range f.rec.Events() {
		b, _ := json.Marshal(e)
		if strings.Contains(string(b), canary) {
			t.Errorf("an audit event holds a canary: %s", b)
		}
	}
}

// The registry's associations' syncs are served by their sync names.
func TestRegistrySyncs(t *testing.T) {
	f := newFixture(t, httpapi.Options{RegistrySyncs: true})
	f.put("r", registry.GitHubRepository{AccessToken: "t", RepositoryOwner: "o", RepositoryName: "r"})
	f.set(registry.TypeGitHubRepository, "r", "kv", "app")
	as, err := f.reg.Associations(context.Background(), registry.TypeGitHubRepository, "r")
	if err != nil || len(as) != 1 {
		t.Fatal(as, err)
	}
	name := as[0].SyncName
	a := f.do("GET", syncs, "")
	var got struct{ Syncs []httpapi.SyncInfo }
	decode(t, a.data(t), &got)
	if len(got.Syncs) != 1 || got.Syncs[0].Name != name || got.Syncs[0].Sync == nil || got.Syncs[0].Sync.Status != "succeeded" {
		t.Fatalf("syncs = %+v: %s", got.Syncs, a.raw)
	}
	if a := f.do("GET", syncs+"/"+name+"/plan", ""); a.status != 200 || a.data(t)["dry_run"] != true {
		t.Errorf("plan: %d %s", a.status, a.raw)
	}
	if a := f.do("POST", syncs+"/"+name+"/trigger?wait=true", ""); a.status != 200 {
		t.Errorf("trigger: %d %s", a.status, a.raw)
	}
	if _, err := httpapi.New(nil, &httpapi.Options{Token: "t", RegistrySyncs: true, Syncs: httpapi.SyncMap{}}); err == nil {
		t.Error("RegistrySyncs without a registry: no error")
	}
	if _, err := httpapi.New(nil, &httpapi.Options{Token: "t"}); err == nil {
		t.Error("no registry and no Syncs: no error")
	}
}

// A key whose write timed out (its error wraps context.DeadlineExceeded)
// fails the round: 502 with the report, not a cancelled request.
func TestSyncTriggerKeyTimeout(t *testing.T) {
	s, err := sync.New(sync.Config{Name: "slow", Source: memory.New(map[string]string{"A": "1", "B": "2"}),
		Destination: memory.NewWithOptions(nil, &memory.Options{BeforeApply: func(_ context.Context, c destination.Change) error {
			if c.Key == "B" {
				return fmt.Errorf("write %s: %w", c.Key, context.DeadlineExceeded)
			}
			return nil
		}}), AutoSync: sync.AutoSync{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	f := newSyncFixture(t, httpapi.Options{Syncs: httpapi.SyncMap{"slow": s}})
	a := f.do("POST", syncs+"/slow/trigger", "")
	errs, data := a.errorsWithData(t)
	if a.status != 502 || strings.Contains(fmt.Sprint(errs), "cancelled") || data["report"] == nil {
		t.Fatalf("trigger: %d %s", a.status, a.raw)
	}
}

// Concurrent requests on the sync resources (run with -race): every one
// answers, and the rounds of one sync do not overlap (the Syncer
// serializes them).
func TestSyncConcurrentRequests(t *testing.T) {
	f := newSyncFixture(t, httpapi.Options{})
	var wg gosync.WaitGroup
	codes := make(chan int, 64)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var r *http.Request
			switch i % 4 {
			case 0:
				r = newRequest("POST", syncs+"/app/trigger", "")
			case 1:
				r = newRequest("GET", syncs, "")
			case 2:
				r = newRequest("GET", syncs+"/app/plan", "")
			default:
				r = newRequest("GET", syncs+"/app/conflicts", "")
			}
			w := httptest.NewRecorder()
			f.h.ServeHTTP(w, r)
			codes <- w.Code
		}()
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 200 {
			t.Errorf("an answer %d", c)
		}
	}
	if st, err := f.app.Status(context.Background()); err != nil || st.Sync == nil || st.Sync.Status != "succeeded" || len(st.Conflicts) != 0 {
		t.Errorf("after concurrent rounds: %+v %v", st, err)
	}
}
