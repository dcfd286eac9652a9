package keyschema_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/secretsync/secretsync/keyschema"
)

func TestParseErrors(t *testing.T) {
	for _, tt := range []struct {
		template string
		pos      int
		reason   string
	}{
		{"", 0, "missing"},
		{"APP", 3, "missing"},
		{"{{environment}}", 15, "missing"},
		{"{{secretKey}}{{secretKey}}", 13, "exactly once"},
		{"APP_{{key}}", 4, "unknown placeholder"},
		{"APP_{{secretKey}", 4, "unclosed"},
		{"APP_{secretKey}", 4, "lone"},
		{"{{secretKey}}}", 13, "lone"},
		{"A B{{secretKey}}", 1, "not allowed"},
		{"{{secretKey}}:x", 13, "not allowed"},
		{"é{{secretKey}}", 0, "not allowed"},
		{"{{ secretKey }}", 0, "unknown placeholder"},
		{"{{SecretKey}}", 0, "unknown placeholder"},
		{strings.Repeat("a", 600) + "{{secretKey}}", keyschema.MaxKeyLen, "longer"},
	} {
		_, err := keyschema.Parse(tt.template)
		var pe *keyschema.ParseError
		if !errors.As(err, &pe) {
			t.Errorf("Parse(%q) = %v, want *ParseError", tt.template, err)
			continue
		}
		if pe.Pos != tt.pos || !strings.Contains(pe.Reason, tt.reason) || pe.Template != tt.template {
			t.Errorf("Parse(%q) = pos %d %q, want pos %d containing %q", tt.template, pe.Pos, pe.Reason, tt.pos, tt.reason)
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("position %d", tt.pos)) {
			t.Errorf("error %q does not say where", err)
		}
	}
}

func TestRenderMatch(t *testing.T) {
	for _, tt := range []struct {
		template, env, key, want string
	}{
		{"{{secretKey}}", "", "DB_URL", "DB_URL"},
		{"APP_{{secretKey}}", "", "DB_URL", "APP_DB_URL"},
		{"{{secretKey}}_SUFFIX", "", "a", "a_SUFFIX"},
		{"{{environment}}/{{secretKey}}", "prod", "db/url", "prod/db/url"},
		{"{{environment}}/x/{{secretKey}}.{{environment}}", "dev", "K", "dev/x/K.dev"},
		{"{{secretKey}}{{environment}}", "p", "k", "kp"},
		{"app-{{secretKey}}", "ignored-env", "K", "app-K"},
	} {
		s := keyschema.MustParse(tt.template)
		got, err := s.Render(tt.key, tt.env)
		if err != nil || got != tt.want {
			t.Errorf("%q.Render(%q, %q) = %q, %v; want %q", tt.template, tt.key, tt.env, got, err, tt.want)
		}
		k, ok := s.Match(got, tt.env)
		if !ok || k != tt.key {
			t.Errorf("%q.Match(%q, %q) = %q, %v; want %q", tt.template, got, tt.env, k, ok, tt.key)
		}
		if s.String() != tt.template {
			t.Errorf("String() = %q", s.String())
		}
	}
}

func TestMatchUnmanaged(t *testing.T) {
	b, err := keyschema.MustParse("{{environment}}/APP_{{secretKey}}").Bind("prod")
	if err != nil {
		t.Fatal(err)
	}
	for _, dk := range []string{
		"", "prod/APP_", // empty key
		"APP_X", "dev/APP_X", "prod/X", "prod/app_X", "prod/APP_X Y", "prod/APP_é",
		"prod/APP_" + strings.Repeat("x", keyschema.MaxKeyLen),
	} {
		if k, ok := b.Match(dk); ok {
			t.Errorf("Match(%q) = %q, want unmanaged", dk, k)
		}
	}
	if k, ok := b.Match("prod/APP_APP_X"); !ok || k != "APP_X" {
		t.Errorf("Match nested prefix = %q, %v", k, ok)
	}
}

func TestInvalidKeysAndEnvironments(t *testing.T) {
	s := keyschema.MustParse("{{environment}}/{{secretKey}}")
	for _, env := range []string{"", "pr od", "a:b", strings.Repeat("e", keyschema.MaxKeyLen+1)} {
		if _, err := s.Bind(env); !errors.Is(err, keyschema.ErrInvalidKey) {
			t.Errorf("Bind(%q) = %v, want ErrInvalidKey", env, err)
		}
	}
	if _, err := keyschema.MustParse("{{secretKey}}").Bind("pr od"); !errors.Is(err, keyschema.ErrInvalidKey) {
		t.Errorf("an unused but invalid environment was accepted: %v", err)
	}
	b, _ := s.Bind("prod")
	for _, k := range []string{"", "a b", "a\n", "ключ", "x=y", strings.Repeat("k", keyschema.MaxKeyLen)} {
		_, err := b.Render(k)
		var ke *keyschema.KeyError
		if !errors.As(err, &ke) || ke.Key != k || !errors.Is(err, keyschema.ErrInvalidKey) {
			t.Errorf("Render(%q) = %v, want *KeyError", k, err)
		}
	}
	if !keyschema.ValidKey("a/B-c.d_9") || keyschema.ValidKey("a b") {
		t.Error("ValidKey disagrees with the documented set")
	}
}

func TestOverlap(t *testing.T) {
	bind := func(tmpl, env string) keyschema.Bound {
		b, err := keyschema.MustParse(tmpl).Bind(env)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tt := range []struct {
		a, b    keyschema.Bound
		overlap bool
	}{
		{bind("{{environment}}_{{secretKey}}", "prod"), bind("{{environment}}_{{secretKey}}", "prod_EU"), true},
		{bind("{{environment}}/{{secretKey}}", "prod"), bind("{{environment}}/{{secretKey}}", "dev"), false},
		{bind("{{secretKey}}", ""), bind("APP_{{secretKey}}", ""), true},
		{bind("{{secretKey}}.{{environment}}", "a"), bind("{{secretKey}}.{{environment}}", "b"), false},
		{bind("{{secretKey}}.{{environment}}", "b"), bind("{{secretKey}}.{{environment}}", "a.b"), true},
		{bind("A_{{secretKey}}_Z", ""), bind("A_{{secretKey}}_Y", ""), false},
	} {
		err := keyschema.Overlap(tt.a, tt.b)
		var ce *keyschema.CollisionError
		if got := errors.As(err, &ce); got != tt.overlap {
			t.Errorf("Overlap(%v, %v) = %v, want overlap %v", tt.a.Schema(), tt.b.Schema(), err, tt.overlap)
			continue
		}
		if ce == nil {
			continue
		}
		// The example must be real: both sides render their key to it.
		da, _ := tt.a.Render(ce.Keys[0])
		db, _ := tt.b.Render(ce.Keys[1])
		if da != ce.DestinationKey || db != ce.DestinationKey || ce.Keys[0] == "" || ce.Keys[1] == "" {
			t.Errorf("example %+v is not a collision (%q, %q)", ce, da, db)
		}
	}
}

func FuzzRoundTrip(f *testing.F) {
	f.Add("{{environment}}/APP_{{secretKey}}", "prod", "DB_URL")
	f.Add("{{secretKey}}", "", "a/b/c")
	f.Add("x{{secretKey}}{{environment}}", "e", "k")
	f.Fuzz(func(t *testing.T, template, env, key string) {
		s, err := keyschema.Parse(template)
		if err != nil {
			return
		}
		b, err := s.Bind(env)
		if err != nil {
			return
		}
		dk, err := b.Render(key)
		if err != nil {
			if keyschema.ValidKey(key) && len(key) < keyschema.MaxKeyLen/2 && len(template)+len(env)*strings.Count(template, keyschema.Environment) < keyschema.MaxKeyLen/2 {
				t.Fatalf("Render(%q) refused a valid key: %v", key, err)
			}
			return
		}
		k, ok := b.Match(dk)
		if !ok || k != key {
			t.Fatalf("template %q env %q: Match(Render(%q) = %q) = %q, %v", template, env, key, dk, k, ok)
		}
		// And the other way: whatever Match accepts renders back to itself.
		if k, ok := b.Match(key); ok {
			if back, err := b.Render(k); err != nil || back != key {
				t.Fatalf("Render(Match(%q) = %q) = %q, %v", key, k, back, err)
			}
		}
	})
}
