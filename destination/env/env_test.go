package env_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/env"
)

func list(t *testing.T, s *env.Source) map[string]destination.Secret {
	t.Helper()
	m, err := s.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func values(m map[string]destination.Secret) map[string]string {
	out := make(map[string]string, len(m))
	for k, s := range m {
		out[k] = s.Value
	}
	return out
}

// TestFilter checks which entries become keys, under which names.
func TestFilter(t *testing.T) {
	environ := []string{
		"APP_A=1", "APP_B=two=parts", "APP_EMPTY=", "APP_=no key", "APP_NOEQUALS",
		"OTHER=x", "XAPP_C=x", "app_lower=x", "APP_A=last wins", "=C:=C:\\",
	}
	for _, tc := range []struct {
		name string
		opts *env.Options
		want map[string]string
	}{
		{"strip", nil, map[string]string{"A": "last wins", "B": "two=parts", "EMPTY": ""}},
		{"keep", &env.Options{KeepPrefix: true}, map[string]string{"APP_A": "last wins", "APP_B": "two=parts", "APP_EMPTY": ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := env.New(environ, "APP_", tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			got := values(list(t, s))
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("keys = %v, want %v", got, tc.want)
			}
			if s.Len() != len(tc.want) {
				t.Fatalf("Len = %d, want %d", s.Len(), len(tc.want))
			}
		})
	}
}

// TestVersions checks that a version stands for its key and value without
// holding the value: the same in every List and for an equal value, other
// for another value or key, and never the value or a part of it.
func TestVersions(t *testing.T) {
	const canary = "canary-3f1a9c"
	s, err := env.New([]string{"P_A=" + canary, "P_B=" + canary, "P_C=other", "P_D=" + canary}, "P_", nil)
	if err != nil {
		t.Fatal(err)
	}
	first, second := list(t, s), list(t, s)
	for k, sec := range first {
		if sec.Version == "" || second[k].Version != sec.Version {
			t.Fatalf("version of %s: %q then %q, want the same non-empty version", k, sec.Version, second[k].Version)
		}
		if strings.Contains(sec.Version, canary[:6]) || strings.Contains(sec.Version, "other") {
			t.Fatalf("version of %s holds the value: %q", k, sec.Version)
		}
	}
	if first["A"].Version == first["C"].Version || first["A"].Version == first["B"].Version {
		t.Fatalf("versions do not tell keys and values apart: %v", first)
	}
	// Another Source over the same variables: a value equal to before keeps
	// a version that tells nothing about it to anyone without the Source.
	s2, _ := env.New([]string{"P_A=" + canary}, "P_", nil)
	if list(t, s2)["A"].Version == first["A"].Version {
		t.Fatal("two Sources give the same version: versions can be used to test guesses of a value")
	}
}

// TestSnapshot checks that a Source does not see later changes to the
// slice it was made from, and that the listed map is the caller's own.
func TestSnapshot(t *testing.T) {
	environ := []string{"APP_A=1"}
	s, err := env.New(environ, "APP_", nil)
	if err != nil {
		t.Fatal(err)
	}
	environ[0] = "APP_A=2"
	m := list(t, s)
	if m["A"].Value != "1" {
		t.Fatalf("value = %q after the slice changed, want the snapshot's %q", m["A"].Value, "1")
	}
	delete(m, "A")
	if list(t, s)["A"].Value != "1" {
		t.Fatal("deleting from a listed map changed the Source")
	}
}

// TestFromOS checks that FromOS reads the process's environment when it is
// called, and only then.
func TestFromOS(t *testing.T) {
	t.Setenv("SECRETSYNC_ENVTEST_K", "v1")
	s, err := env.FromOS("SECRETSYNC_ENVTEST_", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SECRETSYNC_ENVTEST_K", "v2")
	t.Setenv("SECRETSYNC_ENVTEST_NEW", "x")
	if got := values(list(t, s)); fmt.Sprint(got) != "map[K:v1]" {
		t.Fatalf("FromOS listed %v, want map[K:v1]: the environment as it was when FromOS was called", got)
	}
}

// TestInvalidPrefix checks that a prefix that could take the whole
// environment, or that no variable name can start with, is refused.
func TestInvalidPrefix(t *testing.T) {
	for _, p := range []string{"", "A=B", "A\x00"} {
		if _, err := env.New([]string{"A=1"}, p, nil); !errors.Is(err, env.ErrInvalidPrefix) {
			t.Errorf("New with prefix %q = %v, want ErrInvalidPrefix", p, err)
		}
		if _, err := env.FromOS(p, nil); !errors.Is(err, env.ErrInvalidPrefix) {
			t.Errorf("FromOS with prefix %q = %v, want ErrInvalidPrefix", p, err)
		}
	}
}

// TestNoValueInPrint plants a canary and checks every way of printing a
// Source and its secrets.
func TestNoValueInPrint(t *testing.T) {
	const canary = "canary-8d2e71"
	s, err := env.New([]string{"APP_K=" + canary}, "APP_", nil)
	if err != nil {
		t.Fatal(err)
	}
	m := list(t, s)
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
		for _, v := range []any{s, m, m["K"]} {
			if out := fmt.Sprintf(f, v); strings.Contains(out, canary) {
				t.Errorf("%s of %T prints the value: %s", f, v, out)
			}
		}
	}
}

// TestEndedContext checks that List returns the context's error, unwrapped.
func TestEndedContext(t *testing.T) {
	s, err := env.New([]string{"APP_K=v"}, "APP_", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if m, err := s.List(ctx); err != context.Canceled || m != nil {
		t.Fatalf("List = %v, %v; want nil, context.Canceled", m, err)
	}
}
