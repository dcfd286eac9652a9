package connection_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/secretsync/secretsync/connection"
)

// lookup is a getenv over a map.
func lookup(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// TestConfigFromEnv checks what each variable sets, with a fake getenv.
func TestConfigFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want connection.Config
	}{
		{"defaults", nil, connection.Config{Address: connection.DefaultAddress}},
		{"all", map[string]string{
			"VAULT_ADDR": "https://vault.example.com:8200", "VAULT_TOKEN": " hvs.abc\n", "VAULT_NAMESPACE": "team-a/",
			"VAULT_CACERT": "/etc/ca.pem", "VAULT_CAPATH": "/etc/cas", "VAULT_CLIENT_CERT": "/c.pem", "VAULT_CLIENT_KEY": "/k.pem",
			"VAULT_TLS_SERVER_NAME": "vault.internal", "VAULT_SKIP_VERIFY": "true", "VAULT_CLIENT_TIMEOUT": "45", "VAULT_MAX_RETRIES": "2",
		}, connection.Config{
			Address: "https://vault.example.com:8200", Namespace: "team-a/",
			TLS:     connection.TLS{CACert: "/etc/ca.pem", CAPath: "/etc/cas", ClientCert: "/c.pem", ClientKey: "/k.pem", ServerName: "vault.internal", InsecureSkipVerify: true},
			Timeout: 45 * time.Second, MaxRetries: 2,
			Token: &connection.Token{Token: connection.Credential{Value: "hvs.abc"}},
		}},
		{"agent address wins", map[string]string{"VAULT_ADDR": "https://vault:8200", "VAULT_AGENT_ADDR": "http://127.0.0.1:8100"},
			connection.Config{Address: "http://127.0.0.1:8100"}},
		{"skip verify off", map[string]string{"VAULT_SKIP_VERIFY": "0"}, connection.Config{Address: connection.DefaultAddress}},
		{"duration timeout", map[string]string{"VAULT_CLIENT_TIMEOUT": "1m30s"}, connection.Config{Address: connection.DefaultAddress, Timeout: 90 * time.Second}},
		{"no retries", map[string]string{"VAULT_MAX_RETRIES": "0"}, connection.Config{Address: connection.DefaultAddress, MaxRetries: -1}},
		{"empty is unset", map[string]string{"VAULT_ADDR": "", "VAULT_TOKEN": "  ", "VAULT_SKIP_VERIFY": ""}, connection.Config{Address: connection.DefaultAddress}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := connection.ConfigFromEnv(lookup(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			if !sameConfig(got, tc.want) {
				t.Fatalf("ConfigFromEnv = %s\nwant %s", describe(got), describe(tc.want))
			}
		})
	}
}

// sameConfig compares configs, token values included.
func sameConfig(a, b connection.Config) bool { return describe(a) == describe(b) }

func describe(c connection.Config) string {
	tok := "<nil>"
	if c.Token != nil {
		tok = fmt.Sprintf("%q", c.Token.Token.Value)
	}
	return fmt.Sprintf("addr=%s ns=%q tls=%+v timeout=%v retries=%d approle=%v token=%s",
		c.Address, c.Namespace, c.TLS, c.Timeout, c.MaxRetries, c.AppRole != nil, tok)
}

// TestConfigFromEnvErrors checks that each malformed value is refused with
// a ConfigError naming the variable, and that no value appears in it.
func TestConfigFromEnvErrors(t *testing.T) {
	const canary = "CANARY-4be19"
	for _, tc := range []struct {
		env   map[string]string
		field string
	}{
		{map[string]string{"VAULT_ADDR": "vault:8200/" + canary}, "VAULT_ADDR"},
		{map[string]string{"VAULT_ADDR": "https://user:" + canary + "@:8200 x"}, "VAULT_ADDR"},
		{map[string]string{"VAULT_ADDR": "ftp://" + canary}, "VAULT_ADDR"},
		{map[string]string{"VAULT_AGENT_ADDR": "unix:///" + canary}, "VAULT_AGENT_ADDR"},
		{map[string]string{"VAULT_TOKEN": "hvs." + canary + " more"}, "VAULT_TOKEN"},
		{map[string]string{"VAULT_TOKEN": "hvs." + canary + "\x00"}, "VAULT_TOKEN"},
		{map[string]string{"VAULT_TOKEN": "hvs." + canary + "\xff"}, "VAULT_TOKEN"},
		{map[string]string{"VAULT_NAMESPACE": "a b" + canary}, "VAULT_NAMESPACE"},
		{map[string]string{"VAULT_SKIP_VERIFY": "yes" + canary}, "VAULT_SKIP_VERIFY"},
		{map[string]string{"VAULT_CLIENT_TIMEOUT": "soon" + canary}, "VAULT_CLIENT_TIMEOUT"},
		{map[string]string{"VAULT_CLIENT_TIMEOUT": "-5"}, "VAULT_CLIENT_TIMEOUT"},
		{map[string]string{"VAULT_CLIENT_TIMEOUT": "0"}, "VAULT_CLIENT_TIMEOUT"},
		{map[string]string{"VAULT_CLIENT_TIMEOUT": "99999999999999999"}, "VAULT_CLIENT_TIMEOUT"},
		{map[string]string{"VAULT_MAX_RETRIES": "-1"}, "VAULT_MAX_RETRIES"},
		{map[string]string{"VAULT_MAX_RETRIES": "many" + canary}, "VAULT_MAX_RETRIES"},
		{map[string]string{"VAULT_CLIENT_CERT": "/c.pem"}, "VAULT_CLIENT_CERT"},
		{map[string]string{"VAULT_CLIENT_KEY": "/k.pem"}, "VAULT_CLIENT_CERT"},
	} {
		cfg, err := connection.ConfigFromEnv(lookup(tc.env))
		var ce *connection.ConfigError
		if !errors.As(err, &ce) || !errors.Is(err, connection.ErrInvalidConfig) || ce.Field != tc.field {
			t.Errorf("ConfigFromEnv(%q) = %v, want a ConfigError for %s", tc.env, err, tc.field)
			continue
		}
		if strings.Contains(err.Error(), canary) {
			t.Errorf("the error for %s holds the value: %v", tc.field, err)
		}
		if cfg.Address != "" || cfg.Token != nil {
			t.Errorf("ConfigFromEnv returned a Config with its error: %s", describe(cfg))
		}
	}
	if _, err := connection.ConfigFromEnv(nil); !errors.Is(err, connection.ErrInvalidConfig) {
		t.Errorf("ConfigFromEnv(nil) = %v, want ErrInvalidConfig", err)
	}
}

// TestConfigFromEnvReadsOnlyGetenv checks that the process's environment is
// not read behind the caller's getenv.
func TestConfigFromEnvReadsOnlyGetenv(t *testing.T) {
	t.Setenv("VAULT_ADDR", "https://from-the-process:8200")
	t.Setenv("VAULT_TOKEN", "hvs.from-the-process")
	cfg, err := connection.ConfigFromEnv(lookup(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Address != connection.DefaultAddress || cfg.Token != nil {
		t.Fatalf("ConfigFromEnv with an empty getenv = %s, want the default address and no token", describe(cfg))
	}
	var asked []string
	if _, err := connection.ConfigFromEnv(func(k string) string { asked = append(asked, k); return "" }); err != nil {
		t.Fatal(err)
	}
	for _, k := range asked {
		if !strings.HasPrefix(k, "VAULT_") {
			t.Fatalf("ConfigFromEnv asked for %s", k)
		}
	}
}

// TestConfigFromEnvRedacted checks that the Config prints the token from
// the environment as "*****".
func TestConfigFromEnvRedacted(t *testing.T) {
	const canary = "hvs.CANARY-e07d"
	cfg, err := connection.ConfigFromEnv(lookup(map[string]string{"VAULT_TOKEN": canary}))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
		if s := fmt.Sprintf(f, cfg); strings.Contains(s, canary) || !strings.Contains(s, connection.Redacted) {
			t.Errorf("%s of the Config = %s, want the token redacted", f, s)
		}
	}
}

// TestConfigFromEnvAgainstVault connects to a real Vault with the
// variables a shell would set for the CLI, and reads a secret.
func TestConfigFromEnvAgainstVault(t *testing.T) {
	f := newFixture(t)
	tok, err := f.srv.Client(t).Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{f.policy}, TTL: "10m"})
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"VAULT_ADDR": f.srv.Addr, "VAULT_TOKEN": tok.Auth.ClientToken,
		"VAULT_CLIENT_TIMEOUT": "20", "VAULT_MAX_RETRIES": "1", "VAULT_SKIP_VERIFY": "false",
	}
	cfg, err := connection.ConfigFromEnv(lookup(env))
	if err != nil {
		t.Fatal(err)
	}
	conn := connect(t, cfg, nil)
	if err := f.read(context.Background(), conn); err != nil {
		t.Fatalf("read with the Config from the environment: %v", err)
	}

	// A token the server does not know is refused as a dead token.
	env["VAULT_TOKEN"] = "hvs.not-a-token"
	cfg, err = connection.ConfigFromEnv(lookup(env))
	if err != nil {
		t.Fatal(err)
	}
	conn = connect(t, cfg, nil)
	if err := f.read(context.Background(), conn); !errors.Is(err, connection.ErrTokenInvalid) {
		t.Fatalf("read with an unknown token = %v, want ErrTokenInvalid", err)
	}
}

// ExampleConfigFromEnv builds a connection's Config from the variables the
// Vault CLI reads. A program passes os.Getenv; the example passes a map.
func ExampleConfigFromEnv() {
	env := map[string]string{
		"VAULT_ADDR":      "https://vault.example.com:8200",
		"VAULT_TOKEN":     "hvs.example-token",
		"VAULT_NAMESPACE": "team-a",
	}
	cfg, err := connection.ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg)

	env["VAULT_SKIP_VERIFY"] = "maybe"
	_, err = connection.ConfigFromEnv(func(k string) string { return env[k] })
	fmt.Println(err)
	// Output:
	// vault(address=https://vault.example.com:8200, namespace="team-a", auth=token(*****))
	// vault: invalid connection config: VAULT_SKIP_VERIFY: not a boolean (1, t, true, 0, f, false)
}
