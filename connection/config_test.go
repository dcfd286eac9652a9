package connection

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/secretsync/secretsync/audit"
)

const (
	secretID = "SECRET-ID-CANARY-93f1"
	roleID   = "ROLE-ID-CANARY-11aa"
	tokenVal = "hvs.TOKEN-CANARY-77"
)

func TestConfigRedaction(t *testing.T) {
	cfgs := []Config{
		{Address: "https://vault:8200", Namespace: "team", AppRole: &AppRole{RoleID: roleID, SecretID: Credential{Value: secretID}}},
		{Address: "https://vault:8200", Token: &Token{Token: Credential{Value: tokenVal}}},
	}
	for _, c := range cfgs {
		js, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		outs := []string{
			fmt.Sprint(c), fmt.Sprintf("%v %+v %#v %s %q", c, c, c, c, c), c.String(), string(js),
		}
		if c.AppRole != nil {
			outs = append(outs, fmt.Sprintf("%v %+v %#v", *c.AppRole, *c.AppRole, c.AppRole), fmt.Sprintf("%+v", c.AppRole.SecretID))
		}
		if c.Token != nil {
			outs = append(outs, fmt.Sprintf("%v %+v %#v", *c.Token, *c.Token, c.Token))
		}
		conn, err := New(context.Background(), c, nil)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, conn.String(), fmt.Sprintf("%v %+v", conn, conn))
		for _, o := range outs {
			for _, canary := range []string{secretID, roleID, tokenVal} {
				if strings.Contains(o, canary) {
					t.Errorf("output leaks a credential: %s", o)
				}
			}
		}
		if !strings.Contains(string(js), Redacted) {
			t.Errorf("JSON does not show %s: %s", Redacted, js)
		}
	}
	// File and variable names are not secrets and are shown.
	c := Credential{File: "/run/secret-id"}
	if c.String() != "file:/run/secret-id" {
		t.Errorf("String = %q", c.String())
	}
}

func TestConfigValidation(t *testing.T) {
	ok := AppRole{RoleID: "r", SecretID: Credential{Value: "s"}}
	tests := []struct {
		cfg   Config
		field string
	}{
		{Config{AppRole: &ok}, "Address"},
		{Config{Address: "vault:8200", AppRole: &ok}, "Address"},
		{Config{Address: "ftp://vault", AppRole: &ok}, "Address"},
		{Config{Address: "http://vault"}, "AppRole"},
		{Config{Address: "http://vault", AppRole: &ok, Token: &Token{Token: Credential{Value: "t"}}}, "AppRole"},
		{Config{Address: "http://vault", AppRole: &AppRole{SecretID: Credential{Value: "s"}}}, "AppRole.RoleID"},
		{Config{Address: "http://vault", AppRole: &AppRole{RoleID: "r"}}, "AppRole.SecretID"},
		{Config{Address: "http://vault", AppRole: &AppRole{RoleID: "r", SecretID: Credential{Value: "s", File: "f"}}}, "AppRole.SecretID"},
		{Config{Address: "http://vault", Token: &Token{}}, "Token.Token"},
		{Config{Address: "http://vault", AppRole: &ok, Timeout: -1}, "Timeout"},
		{Config{Address: "http://vault", AppRole: &ok, TLS: TLS{ClientCert: "c"}}, "TLS"},
		{Config{Address: "https://vault", AppRole: &ok, TLS: TLS{CACert: "/does/not/exist.pem"}}, "TLS"},
	}
	for _, tt := range tests {
		_, err := New(context.Background(), tt.cfg, nil)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != tt.field || !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("New(%v) = %v, want a ConfigError for %s", tt.cfg, err, tt.field)
		}
	}
}

func TestNewIgnoresVaultEnvironment(t *testing.T) {
	t.Setenv("VAULT_TOKEN", "env-token")
	t.Setenv("VAULT_NAMESPACE", "env-ns")
	t.Setenv("VAULT_ADDR", "http://203.0.113.1:8200")
	var got http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"data":{"id":"x"}}`)
	}))
	defer srv.Close()
	rec := audit.NewRecorder()
	c, err := New(context.Background(), Config{Address: srv.URL, Token: &Token{Token: Credential{Value: "mine"}}}, &Options{Name: "dev", Auditor: rec})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := c.Client(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if cl.Address() != srv.URL {
		t.Fatalf("address = %s", cl.Address())
	}
	if _, err := cl.Logical().Read("auth/token/lookup-self"); err != nil {
		t.Fatal(err)
	}
	if got.Get("X-Vault-Token") != "mine" || got.Get("X-Vault-Namespace") != "" {
		t.Fatalf("headers = %v: the environment leaked in", got)
	}
	if rec.Count("HCV_CONNECTION_CREATED") != 1 {
		t.Fatalf("events = %v", rec.Events())
	}
}

func TestRetriesHonourRetryAfter(t *testing.T) {
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		if calls < 3 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"data":{"ok":true}}`)
	}))
	defer srv.Close()
	c, err := New(context.Background(), Config{Address: srv.URL, Token: &Token{Token: Credential{Value: "t"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cl, _ := c.Client(context.Background())
	if _, err := cl.Logical().Read("secret/data/x"); err != nil {
		t.Fatalf("read after two 429s: %v", err)
	}
	if calls != 3 {
		t.Fatalf("calls = %d, want 3", calls)
	}
}

func TestClassify(t *testing.T) {
	c, err := New(context.Background(), Config{Address: "http://127.0.0.1:1", Token: &Token{Token: Credential{Value: "t"}}, MaxRetries: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Do(context.Background(), "read", "secret/data/x", "read", func(cl *api.Client) error {
		_, err := cl.Logical().Read("secret/data/x")
		return err
	})
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("err = %v, want ErrUnreachable", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Path != "secret/data/x" {
		t.Fatalf("err = %#v", err)
	}
}
