package main

import (
	"errors"
	"strings"
	"testing"
)

func TestExampleConfigParses(t *testing.T) {
	cfg, err := LoadConfig("example.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Syncs) != 2 || len(cfg.Connections) != 2 || cfg.State.Connection != "vault-main" {
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

func TestConfigErrorsNameFileLineAndField(t *testing.T) {
	for _, tt := range []struct {
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
	} {
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
