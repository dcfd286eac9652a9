package main

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/sync"
)

// scrape GETs /metrics from h and parses it as Prometheus text, checking
// it with promlint on the way.
func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics = %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	text := rec.Body.String()
	problems, err := promlint.New(strings.NewReader(text)).Lint()
	if err != nil {
		t.Fatalf("promlint: %v", err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "secretsync_") {
			t.Errorf("promlint: %s: %s", p.Metric, p.Text)
		}
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, text)
	}
	return fams
}

// series returns the metric of family name whose labels are exactly want,
// or fails.
func series(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	t.Helper()
	f := fams[name]
	if f == nil {
		t.Fatalf("no family %s", name)
	}
	for _, m := range f.GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		if len(got) == len(want) && func() bool {
			for k, v := range want {
				if got[k] != v {
					return false
				}
			}
			return true
		}() {
			return m
		}
	}
	t.Fatalf("no series %s%v", name, want)
	return nil
}

// value returns the value of a counter or gauge series.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	t.Helper()
	m := series(t, fams, name, labels)
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	}
	t.Fatalf("%s%v is neither a counter nor a gauge", name, labels)
	return 0
}

// wantFamilies are the daemon's own families: type, and label names of
// each series.
var wantFamilies = map[string]struct {
	typ    dto.MetricType
	labels []string
}{
	"secretsync_round_duration_seconds":         {dto.MetricType_HISTOGRAM, []string{"operation", "sync"}},
	"secretsync_rounds_total":                   {dto.MetricType_COUNTER, []string{"sync"}},
	"secretsync_round_failures_total":           {dto.MetricType_COUNTER, []string{"sync"}},
	"secretsync_keys_changed_total":             {dto.MetricType_COUNTER, []string{"action", "sync"}},
	"secretsync_key_failures_total":             {dto.MetricType_COUNTER, []string{"sync"}},
	"secretsync_flagged_conflicts":              {dto.MetricType_GAUGE, []string{"sync"}},
	"secretsync_last_success_timestamp_seconds": {dto.MetricType_GAUGE, []string{"sync"}},
	"secretsync_build_info":                     {dto.MetricType_GAUGE, []string{"goversion", "revision", "version"}},
}

// TestMetricsExposition scrapes a daemon that has run no round, with an
// auto-synced and a manual sync: every family has its type and labels,
// every sync its series at 0, and the Go and process collectors are there.
// A manual trigger then counts, on the manual sync's series.
func TestMetricsExposition(t *testing.T) {
	m := newMetrics()
	g := testGen(t, m,
		testSync{name: "auto", auto: true, src: memory.New(map[string]string{"A": "1"}), dst: memory.New(nil)},
		testSync{name: "manual", src: memory.New(map[string]string{"A": "1", "B": "2"}), dst: memory.New(nil)})
	d := testDaemon(g, m)
	h := (&server{d: d}).routes()

	fams := scrape(t, h)
	for name, want := range wantFamilies {
		f := fams[name]
		if f == nil {
			t.Errorf("no family %s", name)
			continue
		}
		if f.GetType() != want.typ || f.GetHelp() == "" {
			t.Errorf("%s: type %v, help %q; want %v with a help", name, f.GetType(), f.GetHelp(), want.typ)
		}
		for _, s := range f.GetMetric() {
			var names []string
			for _, l := range s.GetLabel() {
				names = append(names, l.GetName())
			}
			if !slices.Equal(names, want.labels) {
				t.Errorf("%s: labels %v, want %v", name, names, want.labels)
			}
		}
	}
	for _, name := range []string{"go_goroutines", "go_memstats_alloc_bytes", "process_start_time_seconds"} {
		if fams[name] == nil {
			t.Errorf("no %s: the Go and process collectors are missing", name)
		}
	}
	for name := range fams {
		if !strings.HasPrefix(name, "secretsync_") && !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_") && !strings.HasPrefix(name, "promhttp_") {
			t.Errorf("unexpected family %s", name)
		}
	}
	bi := readBuildInfo()
	if v := value(t, fams, "secretsync_build_info", map[string]string{"version": bi.Version, "revision": bi.Revision, "goversion": bi.GoVersion}); v != 1 {
		t.Errorf("build_info = %g", v)
	}

	// Every sync, manual too, has its series at 0 before any round.
	for _, s := range []string{"auto", "manual"} {
		one := map[string]string{"sync": s}
		for _, name := range []string{"secretsync_rounds_total", "secretsync_round_failures_total", "secretsync_key_failures_total",
			"secretsync_flagged_conflicts", "secretsync_last_success_timestamp_seconds"} {
			if v := value(t, fams, name, one); v != 0 {
				t.Errorf("%s{sync=%q} = %g before any round", name, s, v)
			}
		}
		for _, a := range []string{"created", "updated", "deleted", "imported"} {
			if v := value(t, fams, "secretsync_keys_changed_total", map[string]string{"sync": s, "action": a}); v != 0 {
				t.Errorf("keys changed %s %s = %g", s, a, v)
			}
		}
		for _, op := range []string{"sync", "resolve"} {
			if h := series(t, fams, "secretsync_round_duration_seconds", map[string]string{"sync": s, "operation": op}).GetHistogram(); h.GetSampleCount() != 0 || len(h.GetBucket()) == 0 {
				t.Errorf("duration %s %s: %d samples, %d buckets", s, op, h.GetSampleCount(), len(h.GetBucket()))
			}
		}
	}

	// A manual trigger counts on the manual sync's series.
	api, _ := testAPI(t, d)
	if code, body := callAPI(t, api, "POST", "/v1/secretsync/syncs/manual/trigger", ""); code != 200 {
		t.Fatalf("trigger = %d %s", code, body)
	}
	fams = scrape(t, h)
	manual := map[string]string{"sync": "manual"}
	if v := value(t, fams, "secretsync_rounds_total", manual); v != 1 {
		t.Errorf("rounds after a manual trigger = %g", v)
	}
	if v := value(t, fams, "secretsync_keys_changed_total", map[string]string{"sync": "manual", "action": "created"}); v != 2 {
		t.Errorf("created after a manual trigger = %g", v)
	}
	if v := value(t, fams, "secretsync_last_success_timestamp_seconds", manual); v < 1e9 {
		t.Errorf("last success = %g", v)
	}
	if n := series(t, fams, "secretsync_round_duration_seconds", map[string]string{"sync": "manual", "operation": "sync"}).GetHistogram().GetSampleCount(); n != 1 {
		t.Errorf("duration samples = %d", n)
	}
	if v := value(t, fams, "secretsync_rounds_total", map[string]string{"sync": "auto"}); v != 0 {
		t.Errorf("the auto sync counted a round it did not run: %g", v)
	}
}

// TestMetricsFollowReloads: a sync added by a reload has its series at
// once, one removed loses them.
func TestMetricsFollowReloads(t *testing.T) {
	m := newMetrics()
	m.configure([]string{"a", "b"})
	m.observe("a", &sync.Report{Operation: sync.OpSync, Flagged: 0}, nil)
	m.configure([]string{"b", "c"})
	fams := scrape(t, m.handler())
	for _, name := range []string{"secretsync_rounds_total", "secretsync_flagged_conflicts"} {
		var got []string
		for _, s := range fams[name].GetMetric() {
			got = append(got, s.GetLabel()[0].GetValue())
		}
		if !slices.Equal(got, []string{"b", "c"}) {
			t.Errorf("%s: syncs %v, want [b c]", name, got)
		}
	}
	if _, ran := m.outcome("a"); ran {
		t.Error("a removed sync keeps its latest round")
	}
}

// TestConflictsGaugeKeepsFlaggedConflicts: the gauge counts the conflicts
// flagged in the store (not only those of the last round), and a failed
// round that could not read the store leaves it as it was.
func TestConflictsGaugeKeepsFlaggedConflicts(t *testing.T) {
	m := newMetrics()
	m.configure([]string{"s"})
	steps := []struct {
		name string
		rep  *sync.Report
		err  error
		want float64
	}{
		{"a round that flags one more", &sync.Report{Flagged: 2, Totals: sync.Totals{Conflicts: 1}}, nil, 2},
		{"a failed round", &sync.Report{Flagged: -1}, errors.New("vault: server unreachable"), 2},
		{"a round without a report", nil, errors.New("state: load: locked"), 2},
		{"a round in which a key failed", &sync.Report{Flagged: 2, Totals: sync.Totals{Failed: 1}}, nil, 2},
		{"a quiet round", &sync.Report{Flagged: 2}, nil, 2},
		{"both resolved", &sync.Report{Flagged: 0}, nil, 0},
	}
	s := map[string]string{"sync": "s"}
	for i, st := range steps {
		m.observe("s", st.rep, st.err)
		fams := scrape(t, m.handler())
		if got := value(t, fams, "secretsync_flagged_conflicts", s); got != st.want {
			t.Fatalf("after %s: secretsync_flagged_conflicts = %g, want %g", st.name, got, st.want)
		}
		if got := value(t, fams, "secretsync_rounds_total", s); got != float64(i+1) {
			t.Fatalf("after %s: rounds = %g, want %d", st.name, got, i+1)
		}
	}
	fams := scrape(t, m.handler())
	if got := value(t, fams, "secretsync_round_failures_total", s); got != 3 {
		t.Fatalf("failures = %g, want 3", got)
	}
	if got := value(t, fams, "secretsync_key_failures_total", s); got != 1 {
		t.Fatalf("key failures = %g, want 1", got)
	}
}

// TestLibraryDoesNotLinkPrometheus: client_golang stays in the daemon; no
// package of the library (any package outside examples/) links it.
func TestLibraryDoesNotLinkPrometheus(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("go", "list", "-C", root, "-f", `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`, "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, deps, _ := strings.Cut(line, " ")
		if strings.Contains(pkg, "/examples/") {
			continue
		}
		checked++
		for _, dep := range strings.Fields(deps) {
			if strings.HasPrefix(dep, "github.com/prometheus/") {
				t.Errorf("%s links %s", pkg, dep)
				break
			}
		}
	}
	if checked < 10 {
		t.Fatalf("checked %d library packages: the listing is wrong\n%s", checked, out)
	}
}
