package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/secretsync/secretsync/sync"
	"github.com/secretsync/secretsync/vaultkv"
)

// The operations guide, docs/operations.md, is checked against the code:
// its configuration reference against Config, its policies against
// vaultkv.Policy, its metrics against what the daemon exports, and the
// alerting rules of alerts.yml against those metrics.

const guidePath = "../../docs/operations.md"

func readGuide(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(guidePath)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// guideSection returns the lines of the "## title" section of the guide.
func guideSection(t *testing.T, guide, title string) []string {
	t.Helper()
	var out []string
	in := false
	for _, line := range strings.Split(guide, "\n") {
		switch {
		case line == "## "+title:
			in = true
			continue
		case in && strings.HasPrefix(line, "## "):
			return out
		}
		if in {
			out = append(out, line)
		}
	}
	if !in {
		t.Fatalf("the guide has no section %q", "## "+title)
	}
	return out
}

var codeSpan = regexp.MustCompile("`([^`]+)`")

// tableRow splits a Markdown table row into its cells; ok is false for a
// line that is not a row, or is a header or separator row.
func tableRow(line string) (cells []string, ok bool) {
	if !strings.HasPrefix(line, "| `") {
		return nil, false
	}
	for _, c := range strings.Split(strings.Trim(line, "|"), "|") {
		cells = append(cells, strings.TrimSpace(c))
	}
	return cells, true
}

// hclItem is an attribute or a block of the configuration file.
type hclItem struct {
	block bool
	kind  string // for an attribute: "required" or "optional"; for a block: "required block", "block" or "blocks"
}

// configItems walks the hcl tags of t (Config, then each block's type)
// and records each block path's attributes and blocks: "" is the top
// level, "sync.source.vault" a vault block in a sync's source. Labels and
// the remain body are not items.
func configItems(t reflect.Type, path string, out map[string]map[string]hclItem) {
	if out[path] == nil {
		out[path] = map[string]hclItem{}
	}
	for i := range t.NumField() {
		f := t.Field(i)
		tag, ok := f.Tag.Lookup("hcl")
		if !ok {
			continue
		}
		name, opt, _ := strings.Cut(tag, ",")
		switch opt {
		case "label", "remain":
		case "block":
			typ, kind := f.Type, "required block"
			switch typ.Kind() {
			case reflect.Pointer:
				typ, kind = typ.Elem(), "block"
			case reflect.Slice:
				typ, kind = typ.Elem(), "blocks"
			}
			out[path][name] = hclItem{block: true, kind: kind}
			configItems(typ, strings.TrimPrefix(path+"."+name, "."), out)
		case "optional":
			out[path][name] = hclItem{kind: "optional"}
		default:
			out[path][name] = hclItem{kind: "required"}
		}
	}
}

// TestGuideConfigReference: the guide's configuration reference lists
// every block path of Config under a heading that names it, and in its
// table every attribute and block of that path, with "required" (or
// "required block", "block", "blocks") as Config declares it, and nothing
// else; the external destination types with each field of their config.
func TestGuideConfigReference(t *testing.T) {
	want := map[string]map[string]hclItem{}
	configItems(reflect.TypeFor[Config](), "", want)

	got := map[string]map[string]string{} // path → name → default column
	ext := map[string][]string{}          // external type → attributes
	var paths []string
	inExt := false
	for _, line := range guideSection(t, readGuide(t), "Configuration reference") {
		if h, ok := strings.CutPrefix(line, "### "); ok {
			inExt = strings.HasPrefix(h, "External destination types")
			paths = nil
			switch {
			case inExt:
			case h == "Top level":
				paths = []string{""}
			default:
				// `connection "name"`: the path, then the labels.
				for _, m := range codeSpan.FindAllStringSubmatch(h, -1) {
					paths = append(paths, strings.Fields(m[1])[0])
				}
			}
			for _, p := range paths {
				if got[p] != nil {
					t.Errorf("the guide describes %q twice", p)
				}
				got[p] = map[string]string{}
			}
			continue
		}
		cells, ok := tableRow(line)
		if !ok {
			continue
		}
		if inExt {
			spans := codeSpan.FindAllStringSubmatch(line, -1)
			for _, s := range spans[1:] {
				ext[spans[0][1]] = append(ext[spans[0][1]], s[1])
			}
			continue
		}
		if len(paths) == 0 || len(cells) < 3 {
			t.Errorf("a row outside a block's table, or without a default and a meaning: %q", line)
			continue
		}
		name := codeSpan.FindStringSubmatch(cells[0])[1]
		for _, p := range paths {
			got[p][name] = cells[1]
		}
	}

	for _, p := range sortedKeys(want) {
		g, ok := got[p]
		if !ok {
			t.Errorf("the guide has no heading for the block %q (its items: %v)", p, sortedKeys(want[p]))
			continue
		}
		for _, name := range sortedKeys(want[p]) {
			item := want[p][name]
			def, ok := g[name]
			switch {
			case !ok:
				t.Errorf("%s: %s is not in the guide", p, name)
			case item.block && def != item.kind:
				t.Errorf("%s: block %s: the guide says %q, want %q", p, name, def, item.kind)
			case !item.block && (def == "required") != (item.kind == "required"):
				t.Errorf("%s: %s is %s; the guide's default is %q", p, name, item.kind, def)
			}
		}
		for name := range g {
			if _, ok := want[p][name]; !ok {
				t.Errorf("%s: the guide describes %s, which Config does not have", p, name)
			}
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("the guide describes a block %q that Config does not have", p)
		}
	}

	for typ, rt := range externalTypes {
		var fields []string
		for name := range configFields(rt) {
			fields = append(fields, name)
		}
		sort.Strings(fields)
		g := slices.Sorted(slices.Values(ext[typ]))
		if !slices.Equal(g, fields) {
			t.Errorf("external type %s: the guide lists %v, its config has %v", typ, g, fields)
		}
	}
	for typ := range ext {
		if _, ok := externalTypes[typ]; !ok {
			t.Errorf("the guide lists an external type %s that syncd does not have", typ)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// examplePolicySpecs derives from a configuration what each connection
// does with Vault, for vaultkv.Policy: the Vault sides of its syncs
// (written when they are a destination or a side of a non-push sync,
// polled when the sync is auto-synced), its state store with locks, the
// Transit key that seals a state file, and the registry's associated
// secrets (read) and vault-kv destinations (written): the registry's
// associations always run under Watch, which polls both sides; with the
// state in Vault, the registry's catalog and locks in the store, and the
// Transit key that seals the catalog's credentials.
func examplePolicySpecs(cfg *Config) map[string]*vaultkv.PolicySpec {
	specs := map[string]*vaultkv.PolicySpec{}
	spec := func(conn string) *vaultkv.PolicySpec {
		if specs[conn] == nil {
			specs[conn] = &vaultkv.PolicySpec{}
		}
		return specs[conn]
	}
	for _, sc := range cfg.Syncs {
		p := cfg.parsed[sc.Name]
		for _, side := range []struct {
			v     *VaultSideConfig
			lay   vaultkv.Layout
			write bool
		}{
			{sc.Source.Vault, p.srcLay, p.mode != sync.Push},
			{sc.Destination.Vault, p.dstLay, true},
		} {
			if side.v == nil {
				continue
			}
			s := spec(side.v.Connection)
			s.KV = append(s.KV, vaultkv.KVAccess{
				Options: vaultkv.Options{Mount: side.v.Mount, Path: side.v.Path, Layout: side.lay},
				Write:   side.write, Poll: !p.auto.Disabled,
			})
		}
	}
	if st := cfg.State; st != nil {
		if st.Connection != "" {
			s := spec(st.Connection)
			s.Stores = append(s.Stores, vaultkv.StoreAccess{Options: vaultkv.StoreOptions{Mount: st.Mount, Path: st.Path}, Lock: true})
		}
		if tr := st.Transit; tr != nil {
			s := spec(tr.Connection)
			s.Transit = append(s.Transit, vaultkv.TransitAccess{Options: vaultkv.TransitOptions{Mount: tr.Mount, Key: tr.Key}})
		}
	}
	if rc := cfg.Registry; rc != nil {
		s := spec(rc.Connection)
		// With the state in Vault, the registry opens the store over its
		// own connection, for its catalog (documents) and its locks.
		if st := cfg.State; st != nil && st.Connection != "" {
			i := slices.IndexFunc(s.Stores, func(a vaultkv.StoreAccess) bool {
				return a.Options == vaultkv.StoreOptions{Mount: st.Mount, Path: st.Path}
			})
			if i < 0 {
				s.Stores = append(s.Stores, vaultkv.StoreAccess{Options: vaultkv.StoreOptions{Mount: st.Mount, Path: st.Path}, Lock: true})
				i = len(s.Stores) - 1
			}
			s.Stores[i].Documents = true
		}
		if tr := rc.Transit; tr != nil && cfg.State != nil {
			s.Transit = append(s.Transit, vaultkv.TransitAccess{Options: vaultkv.TransitOptions{Mount: tr.Mount, Key: tr.Key}})
		}
		for _, a := range rc.Associations {
			s.KV = append(s.KV, vaultkv.KVAccess{Options: vaultkv.Options{Mount: a.Mount, Path: a.SecretName, Layout: vaultkv.SecretPath}, Poll: true})
		}
		for _, d := range rc.Destinations {
			if d.ext != nil {
				continue
			}
			var lay vaultkv.Layout
			if d.Layout != "" {
				if err := lay.UnmarshalText([]byte(d.Layout)); err != nil {
					panic(err) // validated
				}
			}
			s.KV = append(s.KV, vaultkv.KVAccess{Options: vaultkv.Options{Mount: d.Mount, Path: d.Path, Layout: lay}, Write: true, Poll: true})
		}
	}
	return specs
}

// TestGuidePolicies: the guide's policy for each connection of
// example.hcl is what vaultkv.Policy returns for what that configuration
// does over the connection, and the guide has no other.
func TestGuidePolicies(t *testing.T) {
	cfg, err := LoadConfig("example.hcl")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for conn, spec := range examplePolicySpecs(cfg) {
		p, err := vaultkv.Policy(*spec)
		if err != nil {
			t.Fatalf("connection %s: %v", conn, err)
		}
		want[conn] = p
	}
	got := map[string]string{}
	lines := guideSection(t, readGuide(t), "Vault policies")
	marker := regexp.MustCompile(`^<!-- policy: ([a-z0-9-]+) -->$`)
	for i := 0; i < len(lines); i++ {
		m := marker.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		if i+1 >= len(lines) || lines[i+1] != "```hcl" {
			t.Fatalf("the policy of %s is not followed by an hcl code block", m[1])
		}
		var b strings.Builder
		for i += 2; i < len(lines) && lines[i] != "```"; i++ {
			b.WriteString(lines[i] + "\n")
		}
		got[m[1]] = b.String()
	}
	for conn, p := range want {
		if strings.TrimSpace(got[conn]) != strings.TrimSpace(p) {
			t.Errorf("the guide's policy for connection %s is not what vaultkv.Policy returns for example.hcl; want:\n<!-- policy: %s -->\n```hcl\n%s```\ngot:\n%s", conn, conn, p, got[conn])
		}
	}
	for conn := range got {
		if _, ok := want[conn]; !ok {
			t.Errorf("the guide has a policy for %s, which example.hcl does not use", conn)
		}
	}
}

// scrapeDaemon starts syncd as main does, on a loopback port, with a
// dotenv sync, and returns the metric families of its /metrics.
func scrapeDaemon(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "syncd.hcl")
	write(t, cfgPath, dotenvConfig(dir, "push"))
	write(t, filepath.Join(dir, "src.env"), "A=1\n")
	ctx, cancel := context.WithCancel(context.Background())
	var stderr syncBuffer
	done := make(chan int)
	go func() {
		done <- runContext(ctx, []string{"-config", cfgPath, "-listen", "127.0.0.1:0"}, &syncBuffer{}, &stderr)
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != exitOK {
			t.Errorf("syncd exited %d\n%s", code, stderr.String())
		}
	})
	started := regexp.MustCompile(`"msg":"syncd started".*"listen":"(127\.0\.0\.1:[0-9]+)"`)
	var addr string
	waitFor(t, "syncd to start", func() bool {
		if m := started.FindStringSubmatch(stderr.String()); m != nil {
			addr = m[1]
			return true
		}
		return false
	})
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// TestGuideMetrics: every metric family syncd exports is in the guide's
// metrics table, with its type and labels, and every metric of the table
// is exported; the Go and process collectors are named by prefix.
func TestGuideMetrics(t *testing.T) {
	fams := scrapeDaemon(t)
	type row struct{ typ, labels string }
	got := map[string]row{}
	var prefixes []string
	for _, line := range guideSection(t, readGuide(t), "Metrics") {
		cells, ok := tableRow(line)
		if !ok {
			continue
		}
		name := codeSpan.FindStringSubmatch(cells[0])[1]
		if p, ok := strings.CutSuffix(name, "*"); ok {
			prefixes = append(prefixes, p)
			continue
		}
		if len(cells) < 4 {
			t.Errorf("metrics row %q: want name, type, labels, meaning", line)
			continue
		}
		var labels []string
		for _, m := range codeSpan.FindAllStringSubmatch(cells[2], -1) {
			labels = append(labels, m[1])
		}
		sort.Strings(labels)
		got[name] = row{cells[1], strings.Join(labels, ",")}
	}
	for name, f := range fams {
		if slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(name, p) }) {
			continue
		}
		var labels []string
		if len(f.GetMetric()) > 0 {
			for _, l := range f.GetMetric()[0].GetLabel() {
				labels = append(labels, l.GetName())
			}
		}
		sort.Strings(labels)
		w := row{strings.ToLower(f.GetType().String()), strings.Join(labels, ",")}
		g, ok := got[name]
		switch {
		case !ok:
			t.Errorf("syncd exports %s (%s {%s}), which the guide does not list", name, w.typ, w.labels)
		case g != w:
			t.Errorf("%s: the guide says %s {%s}; syncd exports %s {%s}", name, g.typ, g.labels, w.typ, w.labels)
		}
	}
	for name := range got {
		if fams[name] == nil {
			t.Errorf("the guide lists %s, which syncd does not export", name)
		}
	}
	for _, p := range prefixes {
		found := false
		for name := range fams {
			found = found || strings.HasPrefix(name, p)
		}
		if !found {
			t.Errorf("the guide lists %s*, and syncd exports no such family", p)
		}
	}
}

// promFunctions are the PromQL functions and aggregations the rules may
// call.
var promFunctions = []string{"abs", "absent", "avg", "avg_over_time", "changes", "clamp_min", "count", "delta",
	"deriv", "histogram_quantile", "increase", "irate", "max", "max_over_time", "min", "min_over_time", "rate",
	"resets", "sum", "time", "timestamp", "topk", "vector"}

// promKeywords are the PromQL words that are neither metrics nor
// functions.
var promKeywords = []string{"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right"}

// promMetrics returns the metric names an expression selects, checking on
// the way that its brackets balance, its functions exist and its label
// matchers are well formed. It is a light check, not a PromQL parser.
func promMetrics(expr string) ([]string, error) {
	// Strings go first: they may hold anything.
	expr = regexp.MustCompile(`"(\\.|[^"\\])*"|'(\\.|[^'\\])*'`).ReplaceAllString(expr, `""`)
	depth := map[rune]int{}
	pairs := map[rune]rune{')': '(', ']': '[', '}': '{'}
	var stack []rune
	for _, r := range expr {
		switch r {
		case '(', '[', '{':
			stack = append(stack, r)
			depth[r]++
		case ')', ']', '}':
			if len(stack) == 0 || stack[len(stack)-1] != pairs[r] {
				return nil, fmt.Errorf("unbalanced %q", r)
			}
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) > 0 {
		return nil, fmt.Errorf("unclosed %q", stack[len(stack)-1])
	}
	matcher := regexp.MustCompile(`^\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(=|!=|=~|!~)\s*""\s*$`)
	for _, m := range regexp.MustCompile(`\{([^}]*)\}`).FindAllStringSubmatch(expr, -1) {
		for _, part := range strings.Split(m[1], ",") {
			if strings.TrimSpace(part) != "" && !matcher.MatchString(part) {
				return nil, fmt.Errorf("label matcher %q", strings.TrimSpace(part))
			}
		}
	}
	expr = regexp.MustCompile(`\{[^}]*\}`).ReplaceAllString(expr, " ")
	if bad := regexp.MustCompile(`\[([^\]]*)\]`).FindAllStringSubmatch(expr, -1); bad != nil {
		for _, m := range bad {
			if _, err := model.ParseDuration(m[1]); err != nil {
				return nil, fmt.Errorf("range %q: %v", m[1], err)
			}
		}
	}
	expr = regexp.MustCompile(`\[[^\]]*\]`).ReplaceAllString(expr, " ")
	expr = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`).ReplaceAllString(expr, " ")
	var metrics []string
	for _, m := range regexp.MustCompile(`([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?`).FindAllStringSubmatch(expr, -1) {
		word, call := m[1], m[2] != ""
		switch {
		case slices.Contains(promKeywords, word):
		case call:
			if !slices.Contains(promFunctions, word) {
				return nil, fmt.Errorf("unknown function %s", word)
			}
		case regexp.MustCompile(`^[0-9]`).MatchString(word):
		default:
			metrics = append(metrics, word)
		}
	}
	if len(metrics) == 0 {
		return nil, fmt.Errorf("selects no metric")
	}
	return metrics, nil
}

// TestPromMetrics: the light PromQL check catches what it claims to.
func TestPromMetrics(t *testing.T) {
	got, err := promMetrics(`sum by (job, sync) (increase(a_total{job="x", sync=~"a|b"}[5m])) / on(job) b > 0.5 and c`)
	if err != nil || !slices.Equal(got, []string{"a_total", "b", "c"}) {
		t.Fatalf("promMetrics = %v, %v", got, err)
	}
	for _, bad := range []string{`rate(a[5m]`, `rte(a[5m])`, `rate(a[5x])`, `a{job="x"`, `a{job:"x"}`, `1 > 0`} {
		if _, err := promMetrics(bad); err == nil {
			t.Errorf("promMetrics(%q): no error", bad)
		}
	}
}

// TestAlertRules: alerts.yml is a Prometheus rule file whose rules each
// have a name, a severity, a summary, a well-formed "for", and an
// expression that selects only metrics syncd exports (a histogram's
// _bucket, _sum and _count included), or Prometheus's own "up"; and the
// guide names every alert.
func TestAlertRules(t *testing.T) {
	fams := scrapeDaemon(t)
	exported := map[string]bool{"up": true}
	for name, f := range fams {
		exported[name] = true
		if f.GetType() == dto.MetricType_HISTOGRAM {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				exported[name+s] = true
			}
		}
	}
	b, err := os.ReadFile("alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Groups []struct {
			Name  string
			Rules []struct {
				Alert       string
				Expr        string
				For         string
				Labels      map[string]string
				Annotations map[string]string
			}
		}
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&file); err != nil {
		t.Fatalf("alerts.yml: %v", err)
	}
	guide := strings.Join(guideSection(t, readGuide(t), "Alerts"), "\n")
	n := 0
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			n++
			if r.Alert == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("rule %q: want alert, labels.severity and annotations.summary", r.Alert)
			}
			if r.For != "" {
				if _, err := model.ParseDuration(r.For); err != nil {
					t.Errorf("%s: for %q: %v", r.Alert, r.For, err)
				}
			}
			metrics, err := promMetrics(r.Expr)
			if err != nil {
				t.Errorf("%s: %v in %s", r.Alert, err, r.Expr)
			}
			for _, m := range metrics {
				if !exported[m] {
					t.Errorf("%s: %s is not a metric syncd exports", r.Alert, m)
				}
			}
			if !strings.Contains(guide, "`"+r.Alert+"`") {
				t.Errorf("the guide's Alerts section does not name %s", r.Alert)
			}
		}
	}
	if n == 0 {
		t.Fatal("alerts.yml has no rule")
	}
}
