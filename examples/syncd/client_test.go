package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/registry/httpapi"
	"github.com/secretsync/secretsync/sync"
)

// runCmd runs syncd with args and returns its exit status and output.
func runCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := runContext(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// TestSubcommands runs every subcommand against the daemon's handler on
// loopback: a manual sync with a conflict on a key holding a slash, and an
// auto-synced one.
func TestSubcommands(t *testing.T) {
	const canary = "canary-secret-value"
	src := memory.New(map[string]string{"A": "1", "dir/B": "2"})
	dst := memory.New(nil)
	m := newMetrics()
	g := testGen(t, m,
		testSync{name: "manual", mode: sync.Bidirectional, src: src, dst: dst},
		testSync{name: "auto", auto: true, src: memory.New(nil), dst: memory.New(nil), interval: time.Hour})
	srv, tokenFile := testAPI(t, testDaemon(g, m))
	addr := strings.TrimPrefix(srv.URL, "http://")
	runCmd := func(t *testing.T, args ...string) (int, string, string) {
		t.Helper()
		if !slices.Contains(args, "-token-file") {
			args = append(args, "-token-file", tokenFile)
		}
		return runCmd(t, args...)
	}

	// Before any round: nothing flagged.
	code, out, errb := runCmd(t, "status", "-addr", addr)
	if code != exitOK || !strings.Contains(out, "SYNC") || !strings.Contains(out, "manual") || !strings.Contains(out, "never run") {
		t.Fatalf("status = %d:\n%s%s", code, out, errb)
	}
	if code, out, errb := runCmd(t, "conflicts", "-addr", addr); code != exitOK || !strings.Contains(out, "no conflicts flagged") {
		t.Fatalf("conflicts = %d:\n%s%s", code, out, errb)
	}

	// A plan: what the round would do, nothing written.
	code, out, errb = runCmd(t, "plan", "-addr", addr, "manual")
	if code != exitOK || !strings.Contains(out, "nothing written") || !strings.Contains(out, "created 2,") || len(dst.Snapshot()) != 0 {
		t.Fatalf("plan manual = %d:\n%s%s", code, out, errb)
	}

	// A manual round: its report.
	code, out, errb = runCmd(t, "trigger", "-addr", srv.URL, "manual")
	if code != exitOK || !strings.Contains(out, "created 2,") || !strings.Contains(out, "dir/B") {
		t.Fatalf("trigger manual = %d:\n%s%s", code, out, errb)
	}
	// An auto-synced sync: triggered in the background.
	if code, out, errb := runCmd(t, "trigger", "auto", "-addr", addr); code != exitOK || !strings.Contains(out, "triggered auto") {
		t.Fatalf("trigger auto = %d:\n%s%s", code, out, errb)
	}
	if code, out, errb := runCmd(t, "trigger", "-addr", addr, "-json", "auto"); code != exitOK || !strings.Contains(out, `"status": "triggered"`) {
		t.Fatalf("trigger auto -json = %d:\n%s%s", code, out, errb)
	}

	// Both sides change both keys: conflicts, flagged by a manual round (3).
	src.Set("A", canary)
	dst.Set("A", canary+"-dst")
	src.Set("dir/B", canary)
	dst.Set("dir/B", canary+"-dst")
	code, out, errb = runCmd(t, "trigger", "-addr", addr, "manual")
	if code != exitConflicts || !strings.Contains(out, "CONFLICTS: 2 flagged") || !strings.Contains(out, "both-changed") {
		t.Fatalf("trigger with conflicts = %d:\n%s%s", code, out, errb)
	}
	if code, out, errb := runCmd(t, "plan", "-addr", addr, "manual"); code != exitConflicts || !strings.Contains(out, "both-changed") {
		t.Fatalf("plan with conflicts = %d:\n%s%s", code, out, errb)
	}
	code, out, errb = runCmd(t, "status", "-addr", addr)
	if code != exitConflicts || !strings.Contains(out, "conflicts") {
		t.Fatalf("status with conflicts = %d:\n%s%s", code, out, errb)
	}
	code, out, errb = runCmd(t, "status", "-addr", addr, "-json")
	var syncs []httpapi.SyncInfo
	if code != exitConflicts || json.Unmarshal([]byte(out), &syncs) != nil || len(syncs) != 2 {
		t.Fatalf("status -json = %d:\n%s%s", code, out, errb)
	}
	code, out, errb = runCmd(t, "conflicts", "-addr", addr)
	if code != exitConflicts || !strings.Contains(out, "dir/B") || !strings.Contains(out, "both-changed") || strings.Contains(out, "auto") {
		t.Fatalf("conflicts = %d:\n%s%s", code, out, errb)
	}
	code, out, errb = runCmd(t, "conflicts", "-json", "-addr", addr, "manual")
	var cs []syncConflict
	if code != exitConflicts || json.Unmarshal([]byte(out), &cs) != nil || len(cs) != 2 || cs[0].Sync != "manual" || cs[0].Class != "both-changed" {
		t.Fatalf("conflicts -json manual = %d:\n%s%s", code, out, errb)
	}
	checkStyle(t, "conflicts -json", decodeAny(t, out))

	// Resolve both, one each way; the key with a slash included.
	if code, out, errb := runCmd(t, "resolve", "-addr", addr, "manual", "dir/B", "keep-destination"); code != exitOK || !strings.Contains(out, "resolved dir/B") {
		t.Fatalf("resolve dir/B = %d:\n%s%s", code, out, errb)
	}
	if src.Snapshot()["dir/B"] != canary+"-dst" {
		t.Fatalf("source dir/B after keep-destination: another value")
	}
	code, out, errb = runCmd(t, "resolve", "-addr", addr, "-json", "manual", "A", "keep-source")
	if code != exitOK || !strings.Contains(out, `"action": "keep-source"`) {
		t.Fatalf("resolve A = %d:\n%s%s", code, out, errb)
	}
	if code, out, errb := runCmd(t, "conflicts", "-addr", addr); code != exitOK {
		t.Fatalf("conflicts after resolving = %d:\n%s%s", code, out, errb)
	}

	// Refusals by the daemon: exit 1, with its one-line error.
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"resolve", "manual", "A", "keep-source"}, "no flagged conflict"},
		{[]string{"trigger", "nope"}, `"nope"`},
		{[]string{"conflicts", "nope"}, "HTTP 404"},
		{[]string{"plan", "nope"}, "HTTP 404"},
	} {
		code, out, errb := runCmd(t, append(tt.args, "-addr", addr)...)
		if code != exitFailure || !strings.Contains(errb, tt.want) || strings.Count(errb, "\n") != 1 {
			t.Errorf("%v = %d, want 1 and %q:\n%s%s", tt.args, code, tt.want, out, errb)
		}
	}

	// Usage errors: exit 2, and nothing is asked of the daemon.
	for _, args := range [][]string{
		{"resolve", "manual", "A"},
		{"resolve", "manual", "A", "keep-both"},
		{"resolve", "manual", "A", "keep-source", "extra"},
		{"trigger"},
		{"trigger", "a", "b"},
		{"status", "extra"},
		{"status", "-bogus"},
		{"status", "-addr", "no-port"},
		{"status", "-addr", "ftp://host:1"},
		{"status", "-timeout", "0s"},
		{"status", "-config", filepath.Join(t.TempDir(), "missing.hcl")},
	} {
		if !hasAddr(args) {
			args = append(args, "-addr", addr)
		}
		if code, out, errb := runCmd(t, args...); code != exitUsage {
			t.Errorf("%v = %d, want 2:\n%s%s", args, code, out, errb)
		}
	}
	if code, _, errb := runCmd(t, "status", "-h"); code != exitOK || !strings.Contains(errb, "usage: syncd status") {
		t.Errorf("status -h = %d:\n%s", code, errb)
	}

	// No subcommand prints a secret value (the API has none to give).
	for _, args := range [][]string{{"status"}, {"status", "-json"}, {"conflicts"}, {"conflicts", "-json"}, {"trigger", "manual"}, {"trigger", "-json", "manual"}, {"plan", "manual"}, {"plan", "-json", "manual"}} {
		_, out, errb := runCmd(t, append(args, "-addr", addr)...)
		if strings.Contains(out+errb, canary) {
			t.Fatalf("%v printed a secret value", args)
		}
	}
}

func hasAddr(args []string) bool {
	for _, a := range args {
		if a == "-addr" || a == "-config" {
			return true
		}
	}
	return false
}

func decodeAny(t *testing.T, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, s)
	}
	return v
}

// TestTriggerFailedRound: a manual round in which a key failed exits 1 and
// prints the report and the daemon's one-line error.
func TestTriggerFailedRound(t *testing.T) {
	dst := memory.NewWithOptions(nil, &memory.Options{BeforeApply: func(_ context.Context, c destination.Change) error {
		return &destination.KeyError{Op: "put", Key: c.Key, Err: destination.ErrInvalidValue}
	}})
	g := oneSync(t, memory.New(map[string]string{"A": "1"}), dst)
	srv, tokenFile := testAPI(t, testDaemon(g, nil))
	runCmd := func(t *testing.T, args ...string) (int, string, string) {
		t.Helper()
		return runCmd(t, append(args, "-token-file", tokenFile)...)
	}
	code, out, errb := runCmd(t, "trigger", "-addr", srv.URL, "s")
	if code != exitFailure || !strings.Contains(out, "failed 1") || !strings.Contains(errb, "HTTP 502") {
		t.Fatalf("trigger = %d:\n%s%s", code, out, errb)
	}
	code, out, errb = runCmd(t, "trigger", "-json", "-addr", srv.URL, "s")
	if code != exitFailure || !strings.Contains(out, `"report"`) {
		t.Fatalf("trigger -json = %d:\n%s%s", code, out, errb)
	}
	// The round's failure is the sync's status: status exits 1.
	if code, out, errb := runCmd(t, "status", "-addr", srv.URL); code != exitFailure || !strings.Contains(out, "failed") {
		t.Fatalf("status after a failed round = %d:\n%s%s", code, out, errb)
	}
}

// TestSubcommandAddress: the address comes from -addr, else from listen
// of the api block in the -config file (a dotenv configuration), else
// 127.0.0.1:8201; the token from -token-file, else the api block's
// token_file.
func TestSubcommandAddress(t *testing.T) {
	g := oneSync(t, memory.New(map[string]string{"A": "1"}), memory.New(nil))
	srv, tokenFile := testAPI(t, testDaemon(g, nil))
	_, port, _ := strings.Cut(strings.TrimPrefix(srv.URL, "http://"), ":")

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "syncd.hcl")
	write(t, cfgPath, fmt.Sprintf("api {\n  listen = %q\n  token_file = %q\n}\n", "127.0.0.1:"+port, tokenFile)+dotenvConfig(dir, "push"))
	if code, out, errb := runCmd(t, "status", "-config", cfgPath); code != exitOK || !strings.Contains(out, "s ") {
		t.Fatalf("status -config = %d:\n%s%s", code, out, errb)
	}
	// The default file, in the working directory.
	t.Chdir(dir)
	if code, out, errb := runCmd(t, "status"); code != exitOK {
		t.Fatalf("status with ./syncd.hcl = %d:\n%s%s", code, out, errb)
	}
	// A flag before the subcommand is not one of its flags.
	if code, _, errb := runCmd(t, "-config", cfgPath, "status"); code != exitUsage || !strings.Contains(errb, "a subcommand comes first") {
		t.Fatalf("syncd -config f status = %d:\n%s", code, errb)
	}

	// No token: a usage error; a token file that cannot be read: a failure.
	noAPI := filepath.Join(dir, "no-api.hcl")
	write(t, noAPI, dotenvConfig(dir, "push"))
	if code, _, errb := runCmd(t, "status", "-config", noAPI); code != exitUsage || !strings.Contains(errb, "no token") {
		t.Errorf("status without an api block = %d:\n%s", code, errb)
	}
	if code, _, errb := runCmd(t, "status", "-addr", srv.URL, "-token-file", filepath.Join(dir, "missing")); code != exitFailure || !strings.Contains(errb, "token file") {
		t.Errorf("status with a missing token file = %d:\n%s", code, errb)
	}
	// A wrong token: refused by the daemon (403), exit 1.
	wrong := filepath.Join(dir, "wrong-token")
	write(t, wrong, "s.wrong\n")
	if code, _, errb := runCmd(t, "status", "-addr", srv.URL, "-token-file", wrong); code != exitFailure || !strings.Contains(errb, "HTTP 403") || strings.Contains(errb, "s.wrong") {
		t.Errorf("status with a wrong token = %d:\n%s", code, errb)
	}

	for _, tt := range []struct{ in, want string }{
		{"", "http://127.0.0.1:8201"},
		{":9000", "http://127.0.0.1:9000"},
		{"0.0.0.0:9000", "http://127.0.0.1:9000"},
		{"[::]:9000", "http://[::1]:9000"},
		{"syncd.internal:9000", "http://syncd.internal:9000"},
		{"https://syncd.internal:9443/", "https://syncd.internal:9443"},
	} {
		if got, err := baseURL(tt.in); err != nil || got != tt.want {
			t.Errorf("baseURL(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}

	// An answer that is not the API's: its status only, never its body.
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "body of another server", http.StatusTeapot)
	}))
	defer other.Close()
	if code, out, errb := runCmd(t, "status", "-addr", other.URL, "-token-file", tokenFile); code != exitFailure || strings.Contains(out+errb, "another server") || !strings.Contains(errb, "HTTP 418") {
		t.Fatalf("status against another server = %d:\n%s%s", code, out, errb)
	}
	// The client gives up after -timeout.
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer slow.Close()
	start := time.Now()
	if code, _, errb := runCmd(t, "status", "-addr", slow.URL, "-token-file", tokenFile, "-timeout", "100ms"); code != exitFailure || time.Since(start) > 3*time.Second {
		t.Fatalf("status against a slow server = %d after %v:\n%s", code, time.Since(start), errb)
	}
}
