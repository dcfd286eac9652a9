package vercel_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/vercel"
	"github.com/secretsync/secretsync/destination/vercel/verceltest"
)

func newClient(t *testing.T, base string, mod func(*vercel.ClientOptions)) *vercel.Client {
	t.Helper()
	o := vercel.ClientOptions{Token: "test-token", BaseURL: base, MinBackoff: time.Millisecond}
	if mod != nil {
		mod(&o)
	}
	c, err := vercel.NewClient(&o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// ListEnv follows the answer's pagination to the end.
func TestClientPagination(t *testing.T) {
	ctx := context.Background()
	srv := verceltest.New(t, &verceltest.Options{PageSize: 2, TeamID: "team_p"})
	c := newClient(t, srv.URL, func(o *vercel.ClientOptions) { o.TeamID = "team_p" })
	for i := range 5 {
		if _, err := c.CreateEnv(ctx, srv.ProjectID(), vercel.NewEnvVar{Key: fmt.Sprintf("K%d", i), Value: "v", Type: vercel.TypeEncrypted, Target: []string{vercel.Production}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	srv.ResetCounts()
	all, err := c.ListEnv(ctx, srv.ProjectID(), &vercel.ListOptions{Decrypt: true})
	if err != nil || len(all) != 5 {
		t.Fatalf("ListEnv = %d variables, %v", len(all), err)
	}
	seen := map[string]bool{}
	for _, v := range all {
		if seen[v.Key] || !v.Decrypted || v.Value != "v" {
			t.Fatalf("listed %v", all)
		}
		seen[v.Key] = true
	}
	if got := srv.Count(verceltest.OpList); got != 3 {
		t.Fatalf("%d pages, want 3", got)
	}
	// By project name too.
	if all, err := c.ListEnv(ctx, "test-project", nil); err != nil || len(all) != 5 || all[0].Decrypted {
		t.Fatalf("ListEnv by name = %v, %v", all, err)
	}
}

// The answer's target may be a list or one string.
func TestTargetsDecode(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{`{"target":["production","preview"]}`, []string{"production", "preview"}},
		{`{"target":"production"}`, []string{"production"}},
		{`{"target":null}`, nil},
		{`{}`, nil},
	} {
		var v vercel.EnvVar
		if err := json.Unmarshal([]byte(tc.in), &v); err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		if fmt.Sprint([]string(v.Target)) != fmt.Sprint(tc.want) {
			t.Errorf("%s: target %v, want %v", tc.in, v.Target, tc.want)
		}
	}
	var v vercel.EnvVar
	if err := json.Unmarshal([]byte(`{"target":1}`), &v); err == nil {
		t.Error("a number decoded as targets")
	}
}

// No value and no token is ever printed: not by the types, not in errors,
// even when the API's message quotes the value.
func TestClientNeverPrintsSecrets(t *testing.T) {
	const value, token = "canary-value-9d1e", "canary-token-77aa"
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"error":{"code":"bad_request","message":"value %s is not accepted"}}`, value)
	}))
	defer hs.Close()
	c := newClient(t, hs.URL, func(o *vercel.ClientOptions) { o.Token = token })
	_, err := c.CreateEnv(context.Background(), "p", vercel.NewEnvVar{Key: "K", Value: value, Type: vercel.TypeEncrypted, Target: []string{vercel.Production}}, nil)
	var ae *vercel.APIError
	if !errors.As(err, &ae) || ae.Code != "bad_request" {
		t.Fatalf("err = %v", err)
	}
	edit := value
	_, err2 := c.EditEnv(context.Background(), "p", "id", vercel.EnvVarEdit{Value: &edit})
	for _, s := range []string{
		err.Error(), err2.Error(), fmt.Sprint(c), fmt.Sprintf("%#v", c), fmt.Sprintf("%+v", *ae),
		fmt.Sprint(vercel.EnvVar{Key: "K", Value: value}), fmt.Sprintf("%#v", vercel.EnvVar{Value: value}),
		fmt.Sprintf("%+v", vercel.EnvVar{Value: value}),
		fmt.Sprint(vercel.NewEnvVar{Value: value}), fmt.Sprintf("%#v", vercel.NewEnvVar{Value: value}),
		fmt.Sprint(vercel.EnvVarEdit{Value: &edit}), fmt.Sprintf("%#v", vercel.EnvVarEdit{Value: &edit}),
	} {
		if strings.Contains(s, value) || strings.Contains(s, token) {
			t.Errorf("printed a secret: %s", s)
		}
	}
	// Connection errors do not print the token either.
	hs.Close()
	if _, err := c.ListEnv(context.Background(), "p", nil); err == nil || strings.Contains(err.Error(), token) {
		t.Fatalf("ListEnv against a closed server = %v", err)
	}
}

// Retry-After is honoured when X-RateLimit-Reset is absent; a cancelled
// context ends the wait.
func TestClientRetryAfter(t *testing.T) {
	n := 0
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n++
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprint(w, `{"error":{"code":"rate_limited","message":"Rate limit exceeded"}}`)
			return
		}
		fmt.Fprint(w, `{"envs":[],"pagination":{"count":0,"next":null,"prev":null}}`)
	}))
	defer hs.Close()
	c := newClient(t, hs.URL, nil)
	start := time.Now()
	if _, err := c.ListEnv(context.Background(), "p", nil); err != nil || n != 2 || time.Since(start) < time.Second {
		t.Fatalf("ListEnv = %v after %d requests and %v", err, n, time.Since(start))
	}
	n = 0
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start = time.Now()
	if _, err := c.ListEnv(ctx, "p", nil); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 900*time.Millisecond {
		t.Fatalf("ListEnv with a short context = %v after %v", err, time.Since(start))
	}
}

func TestNewClientRefuses(t *testing.T) {
	for _, o := range []vercel.ClientOptions{
		{},
		{Token: "t", BaseURL: "ftp://x"},
		{Token: "t", BaseURL: "not a url"},
	} {
		if _, err := vercel.NewClient(&o); err == nil {
			t.Errorf("NewClient(%+v) succeeded", o)
		}
	}
}

func TestNormalizeKey(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"DB_URL", "DB_URL"},
		{"vault/kv_1234/app/prod/DB", "vault_kv_1234_app_prod_DB"},
		{"api-key.v2", "api_key_v2"},
		{"9LIVES", "_9LIVES"},
		{"pässwort", "p_sswort"},
		{"密码", "__"},
		{"_x", "_x"},
		{"a b", "a_b"},
	} {
		got, err := vercel.NormalizeKey(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("NormalizeKey(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "TZ", "NOW_REGION", "AWS_LAMBDA_FUNCTION_NAME"} {
		if got, err := vercel.NormalizeKey(in); !errors.Is(err, destination.ErrInvalidKey) {
			t.Errorf("NormalizeKey(%q) = %q, %v; want ErrInvalidKey", in, got, err)
		}
	}
	// Allowed by Vercel although AWS reserves them in Lambda.
	for _, in := range []string{"AWS_REGION", "AWS_ACCESS_KEY_ID", "tz"} {
		if got, err := vercel.NormalizeKey(in); err != nil || got != in {
			t.Errorf("NormalizeKey(%q) = %q, %v", in, got, err)
		}
	}
}

func FuzzNormalizeKey(f *testing.F) {
	for _, s := range []string{"DB_URL", "vault/kv/app/KEY", "9x", "", "TZ", "ü-ß", "\x00\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := vercel.NormalizeKey(in)
		if err != nil {
			if !errors.Is(err, destination.ErrInvalidKey) {
				t.Fatalf("NormalizeKey(%q): %v", in, err)
			}
			return
		}
		again, err := vercel.NormalizeKey(out)
		if err != nil || again != out {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", in, out, again, err)
		}
		for i, r := range out {
			ok := r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9'
			if !ok {
				t.Fatalf("NormalizeKey(%q) = %q, with %q at %d", in, out, r, i)
			}
		}
	})
}

// Values Vercel cannot hold exactly are refused before any request.
func TestValuesRefused(t *testing.T) {
	srv := verceltest.New(t, nil)
	d := open(t, srv, nil)
	edge := open(t, srv, func(o *vercel.Options) { o.MaxValueBytes = vercel.EdgeMaxValueBytes; o.Owner = "edge" })
	for _, tc := range []struct {
		d     *vercel.Destination
		value string
	}{
		{d, strings.Repeat("x", vercel.DefaultMaxValueBytes+1)},
		{d, "a\x00b"},
		{d, "bad \xff utf-8"},
		{edge, strings.Repeat("x", vercel.EdgeMaxValueBytes+1)},
	} {
		if err := applyOne(t, tc.d, destination.Change{Key: "K", Value: tc.value}); !errors.Is(err, destination.ErrInvalidValue) {
			t.Errorf("put of %d bytes = %v, want ErrInvalidValue", len(tc.value), err)
		}
	}
	mustApply(t, d, destination.Change{Key: "K", Value: strings.Repeat("x", vercel.DefaultMaxValueBytes)})
	mustApply(t, edge, destination.Change{Key: "E", Value: strings.Repeat("x", vercel.EdgeMaxValueBytes)})
	if got := srv.Count(verceltest.OpCreate); got != 2 {
		t.Fatalf("%d creates, want 2", got)
	}
	for _, k := range []string{"TZ", "1X", "a-b", ""} {
		if err := applyOne(t, d, destination.Change{Key: k, Value: "v"}); !errors.Is(err, destination.ErrInvalidKey) {
			t.Errorf("put %q = %v, want ErrInvalidKey", k, err)
		}
	}
}

func TestNewRefusesOptions(t *testing.T) {
	base := vercel.Options{Token: "t", ProjectID: "p", Targets: []string{vercel.Production}}
	for name, mod := range map[string]func(*vercel.Options){
		"no token":             func(o *vercel.Options) { o.Token = "" },
		"no project":           func(o *vercel.Options) { o.ProjectID = "" },
		"no targets":           func(o *vercel.Options) { o.Targets = nil },
		"unknown target":       func(o *vercel.Options) { o.Targets = []string{"staging"} },
		"target twice":         func(o *vercel.Options) { o.Targets = []string{"preview", "preview"} },
		"plain type":           func(o *vercel.Options) { o.Type = vercel.TypePlain },
		"sensitive on dev":     func(o *vercel.Options) { o.Type = vercel.TypeSensitive; o.Targets = []string{vercel.Development} },
		"owner with a newline": func(o *vercel.Options) { o.Owner = "a\nb" },
		"owner too long":       func(o *vercel.Options) { o.Owner = strings.Repeat("o", vercel.MaxCommentBytes) },
		"bad base URL":         func(o *vercel.Options) { o.BaseURL = "::" },
		"negative max value":   func(o *vercel.Options) { o.MaxValueBytes = -1 },
	} {
		o := base
		mod(&o)
		if _, err := vercel.New(context.Background(), &o); !errors.Is(err, vercel.ErrInvalidOptions) {
			t.Errorf("%s: New = %v, want ErrInvalidOptions", name, err)
		}
	}
	if _, err := vercel.New(context.Background(), &base); err != nil {
		t.Fatal(err)
	}
}

// Vercel answers an overlapping create with 400 ENV_CONFLICT; older API
// versions answered 409 ENV_ALREADY_EXISTS. Both are conflicts.
func TestAPIErrorClasses(t *testing.T) {
	for _, tc := range []struct {
		e                             vercel.APIError
		conflict, notFound, temporary bool
	}{
		{vercel.APIError{Status: 400, Code: "ENV_CONFLICT"}, true, false, false},
		{vercel.APIError{Status: 409, Code: "ENV_ALREADY_EXISTS"}, true, false, false},
		{vercel.APIError{Status: 400, Code: "bad_request"}, false, false, false},
		{vercel.APIError{Status: 404, Code: "not_found"}, false, true, false},
		{vercel.APIError{Status: 429, Code: "rate_limited"}, false, false, true},
		{vercel.APIError{Status: 503}, false, false, true},
		{vercel.APIError{Status: 403, Code: "forbidden"}, false, false, false},
	} {
		if tc.e.Conflict() != tc.conflict || tc.e.NotFound() != tc.notFound || tc.e.Temporary() != tc.temporary {
			t.Errorf("%v: conflict %v, not found %v, temporary %v", &tc.e, tc.e.Conflict(), tc.e.NotFound(), tc.e.Temporary())
		}
	}
}
