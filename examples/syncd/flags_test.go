package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/secretsync/secretsync/state"
)

func TestVersion(t *testing.T) {
	code, out, errb := runNoPanic(t, context.Background(), "-version")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || errb != "" || len(lines) != 3 || !strings.HasPrefix(lines[0], "syncd ") || !strings.HasPrefix(lines[1], "commit ") || lines[2] != runtime.Version() {
		t.Fatalf("-version = %d:\n%s\n%s", code, out, errb)
	}
	defer func(v string) { version = v }(version)
	version = "v1.2.3"
	if _, out, _ := runNoPanic(t, context.Background(), "-version", "-config", "/nonexistent"); !strings.HasPrefix(out, "syncd v1.2.3\n") {
		t.Fatalf("-version with a version set at link time:\n%s", out)
	}
	for _, tt := range []struct {
		bi   buildInfo
		want string
	}{
		{buildInfo{Version: "(devel)", GoVersion: "go1.26.0"}, "syncd (devel)\ncommit unknown\ngo1.26.0\n"},
		{buildInfo{Version: "v1.0.0", Revision: "abc123", Time: "2025-01-02T03:04:05Z", GoVersion: "go1.26.0"},
			"syncd v1.0.0\ncommit abc123 (2025-01-02T03:04:05Z)\ngo1.26.0\n"},
		{buildInfo{Version: "(devel)", Revision: "abc123", Time: "2025-01-02T03:04:05Z", Modified: true, GoVersion: "go1.26.0"},
			"syncd (devel)\ncommit abc123 (2025-01-02T03:04:05Z, modified)\ngo1.26.0\n"},
	} {
		var b bytes.Buffer
		tt.bi.write(&b)
		if b.String() != tt.want {
			t.Errorf("%+v:\n%s\nwant\n%s", tt.bi, b.String(), tt.want)
		}
	}
}

// TestUsage: bad flags, arguments and combinations exit 2; -help exits 0.
func TestUsage(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "syncd.hcl")
	write(t, cfgPath, dotenvConfig(dir, "push"))
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-config", cfgPath, "-once", "-plan"}, 2, "exclude each other"},
		{[]string{"-config", cfgPath, "-check", "-once"}, 2, "exclude each other"},
		{[]string{"-config", cfgPath, "-bogus"}, 2, "flag provided but not defined"},
		{[]string{"-config", cfgPath, "status"}, 2, `unexpected argument "status"`},
		{[]string{"-config", filepath.Join(dir, "missing.hcl"), "-once"}, 2, "no such file"},
		{[]string{"-h"}, 0, "exit status: 0 clean, 1 failure, 2 usage, 3 conflicts flagged"},
	} {
		code, out, errb := runNoPanic(t, context.Background(), tt.args...)
		if code != tt.code || !strings.Contains(errb, tt.want) {
			t.Errorf("syncd %s = %d, want %d and %q:\n%s%s", strings.Join(tt.args, " "), code, tt.code, tt.want, out, errb)
		}
	}
	if read(t, filepath.Join(dir, "dst.env")) != "" {
		t.Fatal("a refused command line ran a round")
	}
}

// TestCheck: -check validates a configuration offline: it accepts one
// whose Vault cannot be reached and whose state file a running daemon
// holds, writes nothing, and lists every problem it finds, exit 1.
func TestCheck(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "src.env"), "A=1\n")
	write(t, filepath.Join(dir, "token"), "canary-token-value\n")
	write(t, filepath.Join(dir, "empty-token"), "\n")
	t.Setenv("SYNCD_TEST_TOKEN", "canary-token-value")
	held, err := state.OpenFile(filepath.Join(dir, "state.json"), nil) // as a running daemon would
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()

	unreachable := closedAddr(t)
	conn, dest := vaultAt(unreachable)
	valid := conn + withSync(dir, dest) + fmt.Sprintf("audit {\n  file = %q\n}\nready_grace = \"1m\"\n", filepath.Join(dir, "audit.jsonl"))
	for _, tt := range []struct {
		name string
		cfg  string
		code int
		want []string // in stderr, each
	}{
		{"valid, Vault unreachable, state file held", valid, 0, nil},
		{"does not load", strings.Replace(valid, `mode = "bidirectional"`, `mode = "sideways"`, 1), 1, []string{"syncd.hcl:", "mode"}},
		{"variable unset", strings.Replace(valid, `env = "SYNCD_TEST_TOKEN"`, `env = "SYNCD_TEST_UNSET"`, 1), 1,
			[]string{`connection "v": credential variable SYNCD_TEST_UNSET is empty or unset`}},
		{"token file", strings.Replace(valid, `env = "SYNCD_TEST_TOKEN"`, fmt.Sprintf("file = %q", filepath.Join(dir, "token")), 1), 0, nil},
		{"token file missing", strings.Replace(valid, `env = "SYNCD_TEST_TOKEN"`, fmt.Sprintf("file = %q", filepath.Join(dir, "nope")), 1), 1,
			[]string{`connection "v": credential file ` + filepath.Join(dir, "nope") + ": no such file or directory"}},
		{"token file empty", strings.Replace(valid, `env = "SYNCD_TEST_TOKEN"`, fmt.Sprintf("file = %q", filepath.Join(dir, "empty-token")), 1), 1,
			[]string{"is empty"}},
		{"TLS file missing", strings.Replace(valid, "address = ", fmt.Sprintf("ca_cert = %q\n  address = ", filepath.Join(dir, "ca.pem")), 1), 1,
			[]string{`connection "v": `, "ca.pem"}},
		{"engine refuses the sync", strings.Replace(valid, `mode = "bidirectional"`, "mode = \"pull\"\n  initial_sync = \"overwrite-destination\"", 1), 1,
			[]string{`sync "files": `, "InitialSync"}},
		{"several problems", strings.NewReplacer(
			`env = "SYNCD_TEST_TOKEN"`, `env = "SYNCD_TEST_UNSET"`,
			filepath.Join(dir, "audit.jsonl"), filepath.Join(dir, "no-dir", "audit.jsonl"),
			filepath.Join(dir, "state.json"), filepath.Join(dir, "no-state", "state.json"),
			filepath.Join(dir, "more.env"), filepath.Join(dir, "no-side", "more.env"),
		).Replace(valid) + "listen = \"localhost\"\n", 1, []string{
			"SYNCD_TEST_UNSET",
			"audit: file " + filepath.Join(dir, "no-dir", "audit.jsonl") + ": directory " + filepath.Join(dir, "no-dir") + ": no such file or directory",
			"state: file " + filepath.Join(dir, "no-state", "state.json"),
			`sync "more": source: dotenv: open`,
			`listen "localhost"`,
		}},
		{"unparsable dotenv", valid, 1, []string{`sync "more": source: `}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "unparsable dotenv" {
				write(t, filepath.Join(dir, "more.env"), "this is not a dotenv line\n")
				defer os.Remove(filepath.Join(dir, "more.env"))
			}
			cfgPath := filepath.Join(dir, "syncd.hcl")
			write(t, cfgPath, tt.cfg)
			code, out, errb := runNoPanic(t, context.Background(), "-config", cfgPath, "-check")
			if code != tt.code {
				t.Fatalf("-check = %d, want %d:\n%s%s", code, tt.code, out, errb)
			}
			if code == 0 && !strings.Contains(out, "valid") {
				t.Fatalf("-check said: %q", out)
			}
			for _, w := range tt.want {
				if !strings.Contains(errb, w) {
					t.Errorf("-check does not say %q:\n%s", w, errb)
				}
			}
			for _, l := range strings.Split(strings.TrimSpace(errb), "\n") {
				if code != 0 && !strings.HasPrefix(l, "syncd: "+cfgPath+": ") {
					t.Errorf("line %q does not name the file", l)
				}
			}
			if strings.Contains(out+errb, "canary-token-value") {
				t.Fatal("-check showed a credential")
			}
		})
	}
	for _, f := range []string{"dst.env", "more.env", "audit.jsonl"} {
		if _, err := os.Stat(filepath.Join(dir, f)); !os.IsNotExist(err) {
			t.Errorf("-check created %s", f)
		}
	}
}
