package main

import (
	"errors"
	"maps"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/secretsync/secretsync/sync"
)

func TestExampleConfigParses(t *testing.T) {
	cfg, err := LoadConfig("example.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Syncs) != 2 || len(cfg.Connections) != 2 || cfg.State.Connection != "vault-main" || cfg.readyGrace != 5*time.Minute || cfg.Audit == nil ||
		cfg.API == nil || cfg.api() != cfg.API || cfg.Registry == nil || cfg.Registry.API != nil || len(cfg.Registry.Destinations) != 3 || len(cfg.Registry.Associations) != 2 {
		t.Fatalf("config = %+v", cfg)
	}
}

const base = `
connection "v" {
  address = "http://127.0.0.1:8200"
  token { env = "T" }
}
sync "s" {
  source {
    dotenv { path = "a.env" }
  }
  destination {
    vault {
      connection = "v"
      mount = "secret"
      path = "x"
    }
  }
}
`

// badConfigs are configurations that do not load, each with the line and
// the words its first error names.
var badConfigs = []struct {
	name, src string
	line      int
	want      string
}{
	{"syntax", "sync {", 1, "Unclosed configuration block"},
	{"unknown attribute", base + "bogus = 1\n", 18, `"bogus"`},
	{"secret in the file", strings.Replace(base, `token { env = "T" }`, "approle {\n role_id = \"r\"\n secret_id = \"s3cr3t\"\n}", 1), 6, `"secret_id"`},
	{"bad mode", strings.Replace(base, `sync "s" {`, "sync \"s\" {\n mode = \"sideways\"", 1), 7, "mode"},
	{"bad schema", strings.Replace(base, `sync "s" {`, "sync \"s\" {\n key_schema = \"APP_{{key}}\"", 1), 7, "key_schema"},
	{"unknown connection", strings.Replace(base, `connection = "v"`, `connection = "nope"`, 1), 12, `unknown connection "nope"`},
	{"bad duration", strings.Replace(base, `sync "s" {`, "sync \"s\" {\n auto_sync { interval = \"soon\" }", 1), 7, "interval"},
	{"two auth methods", strings.Replace(base, `token { env = "T" }`, "token { env = \"T\" }\n approle {\n role_id = \"r\"\n secret_id_env = \"S\"\n}", 1), 2, "exactly one"},
	{"bad name", strings.Replace(base, `sync "s"`, `sync "Bad Name"`, 1), 6, "not a valid name"},
	{"missing destination", "sync \"s\" {\n source {\n dotenv { path = \"a\" }\n }\n}\n", 1, "destination"},
	{"fraction", strings.Replace(base, `sync "s" {`, "sync \"s\" {\n max_delete_fraction = 2", 1), 7, "max_delete_fraction"},
	{"negative grace", base + "ready_grace = \"-1s\"\n", 18, "ready_grace"},
	{"bad grace", base + "ready_grace = \"soon\"\n", 18, "ready_grace"},
	{"empty audit file", base + "audit {\n  file = \"\"\n}\n", 19, "audit: file is empty"},
	{"audit without a file", base + "audit {\n}\n", 18, `"file" is required`},
	{"api without a token file", base + "api {\n  token_file = \"\"\n}\n", 19, "api: token_file is empty"},
	{"api beyond loopback", base + "api {\n  token_file = \"t\"\n  listen = \"10.0.0.5:8201\"\n}\n", 20, "beyond loopback"},
	{"api tls half", base + "api {\n  token_file = \"t\"\n  tls_cert = \"c.pem\"\n}\n", 20, "both tls_cert and tls_key"},
	{"api on the daemon's listener", base + "listen = \"127.0.0.1:8201\"\napi {\n  token_file = \"t\"\n}\n", 19, "the daemon's listen address too"},
	{"api bad listen", base + "api {\n  token_file = \"t\"\n  listen = \"8201\"\n}\n", 20, "listen"},
	{"api bad host", base + "api {\n  token_file = \"t\"\n  hosts = [\"a b\"]\n}\n", 20, "hosts"},
	{"two api blocks", base + "api {\n  token_file = \"t\"\n}\nregistry {\n  connection = \"v\"\n  api {\n    token_file = \"t\"\n  }\n}\n", 23, "give one api block"},
}

// TestReadyGraceAndAudit: ready_grace defaults to 0 and takes a duration;
// the audit block names a file.
func TestReadyGraceAndAudit(t *testing.T) {
	cfg, err := ParseConfig("syncd.hcl", []byte(base))
	if err != nil || cfg.readyGrace != 0 || cfg.Audit != nil {
		t.Fatalf("defaults: %v, grace %v, audit %+v", err, cfg.readyGrace, cfg.Audit)
	}
	for src, want := range map[string]time.Duration{`ready_grace = "0s"`: 0, `ready_grace = "90s"`: 90 * time.Second} {
		cfg, err := ParseConfig("syncd.hcl", []byte(base+src+"\naudit {\n  file = \"/var/log/syncd/audit.jsonl\"\n}\n"))
		if err != nil || cfg.readyGrace != want || cfg.Audit == nil || cfg.Audit.File != "/var/log/syncd/audit.jsonl" {
			t.Fatalf("%s: %v, grace %v, audit %+v", src, err, cfg.readyGrace, cfg.Audit)
		}
	}
}

func TestConfigErrorsNameFileLineAndField(t *testing.T) {
	for _, tt := range badConfigs {
		_, err := ParseConfig("syncd.hcl", []byte(tt.src))
		var ce *ConfigError
		if !errors.As(err, &ce) {
			t.Errorf("%s: err = %v, want a ConfigError", tt.name, err)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, "syncd.hcl:") || !strings.Contains(msg, tt.want) {
			t.Errorf("%s: %q does not name the file and %q", tt.name, msg, tt.want)
		}
		if ce.Diags[0].Subject == nil || ce.Diags[0].Subject.Start.Line != tt.line {
			t.Errorf("%s: %q: want line %d", tt.name, msg, tt.line)
		}
		if strings.Contains(msg, "s3cr3t") {
			t.Errorf("%s: the error shows a secret: %s", tt.name, msg)
		}
	}
}

// FuzzLoadConfig parses arbitrary bytes as a configuration. It never
// panics; an error is a *ConfigError whose every problem has a position in
// the file; and a configuration that loads holds what build relies on and
// validates again the same.
func FuzzLoadConfig(f *testing.F) {
	example, err := os.ReadFile("example.hcl")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	f.Add([]byte(base))
	f.Add([]byte(dotenvConfig("/tmp/syncd", "bidirectional")))
	f.Add([]byte(strings.Replace(dotenvConfig("/tmp/syncd", "push"), `mode = "push"`, "mode = \"push\"\n  key_schema = \"prod/{{secretKey}}\"", 1)))
	for _, tt := range badConfigs {
		f.Add([]byte(tt.src))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		cfg, err := ParseConfig("syncd.hcl", src)
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) || len(ce.Diags) == 0 {
				t.Fatalf("error %v (%T): want a *ConfigError with problems", err, err)
			}
			for _, d := range ce.Diags {
				if d.Subject == nil || d.Subject.Filename != "syncd.hcl" || d.Subject.Start.Line < 1 {
					t.Fatalf("a problem without a position in the file: %q (in %q)", d.Summary, err)
				}
			}
			if !strings.HasPrefix(err.Error(), "syncd.hcl:") {
				t.Fatalf("error %q does not start with the file", err)
			}
			return
		}
		checkLoaded(t, cfg)
		before := maps.Clone(cfg.parsed)
		if diags := cfg.validate(); diags.HasErrors() {
			t.Fatalf("a loaded config does not validate again: %v", diags)
		}
		if !reflect.DeepEqual(before, cfg.parsed) {
			t.Fatalf("validating again changed the settings: %+v, then %+v", before, cfg.parsed)
		}
		again, err := ParseConfig("syncd.hcl", src)
		if err != nil || !reflect.DeepEqual(again.parsed, cfg.parsed) {
			t.Fatalf("loading again: %v, %+v; first %+v", err, again, cfg.parsed)
		}
	})
}

// checkLoaded checks what build relies on in a configuration that loaded.
func checkLoaded(t *testing.T, cfg *Config) {
	t.Helper()
	if len(cfg.Syncs) == 0 || len(cfg.parsed) != len(cfg.Syncs) || len(cfg.conns) != len(cfg.Connections) {
		t.Fatalf("%d syncs, %d parsed, %d connections, %d named", len(cfg.Syncs), len(cfg.parsed), len(cfg.Connections), len(cfg.conns))
	}
	for _, cc := range cfg.Connections {
		if (cc.AppRole == nil) == (cc.Token == nil) {
			t.Fatalf("connection %q: not exactly one auth method", cc.Name)
		}
		if cc.Timeout != "" {
			if d, err := time.ParseDuration(cc.Timeout); err != nil || d <= 0 {
				t.Fatalf("connection %q: timeout %q", cc.Name, cc.Timeout)
			}
		}
	}
	if cfg.readyGrace < 0 {
		t.Fatalf("ready_grace %v", cfg.readyGrace)
	}
	if a := cfg.Audit; a != nil && a.File == "" {
		t.Fatal("audit: empty file")
	}
	if s := cfg.State; s != nil && (s.File == "") == (s.Connection == "") {
		t.Fatalf("state: not exactly one of file or connection: %+v", s)
	}
	if s := cfg.State; s != nil && s.Connection != "" && cfg.conns[s.Connection] == nil {
		t.Fatalf("state: unknown connection %q", s.Connection)
	}
	for _, sc := range cfg.Syncs {
		if !sync.ValidName(sc.Name) {
			t.Fatalf("sync %q: invalid name", sc.Name)
		}
		p := cfg.parsed[sc.Name]
		if p.fraction < 0 || p.fraction > 1 || p.fraction != p.fraction {
			t.Fatalf("sync %q: max_delete_fraction %g", sc.Name, p.fraction)
		}
		for _, side := range []SideConfig{sc.Source, sc.Destination} {
			if (side.Vault == nil) == (side.Dotenv == nil) {
				t.Fatalf("sync %q: a side without exactly one block", sc.Name)
			}
			if v := side.Vault; v != nil && cfg.conns[v.Connection] == nil {
				t.Fatalf("sync %q: unknown connection %q", sc.Name, v.Connection)
			}
			if d := side.Dotenv; d != nil && d.Path == "" {
				t.Fatalf("sync %q: empty dotenv path", sc.Name)
			}
		}
	}
}
