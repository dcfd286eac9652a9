package ghactions_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-github/v84/github"
	"golang.org/x/crypto/nacl/box"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/ghactions"
	"github.com/secretsync/secretsync/destination/ghactions/ghactionstest"
)

func newServer(t *testing.T, opts ghactionstest.Options) *ghactionstest.Server {
	t.Helper()
	if opts.Clock == nil {
		opts.Clock = ghactionstest.TickingClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	}
	srv := ghactionstest.NewServer(&opts)
	t.Cleanup(srv.Close)
	return srv
}

func put(k, v, expect string) destination.Change {
	return destination.Change{Key: k, Value: v, Expect: expect}
}

func del(k, expect string) destination.Change {
	return destination.Change{Key: k, Delete: true, Expect: expect}
}

func mustApply(t *testing.T, d destination.Destination, changes ...destination.Change) {
	t.Helper()
	errs, err := d.Apply(context.Background(), changes)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	for i, e := range errs {
		if e != nil {
			t.Fatalf("Apply: change %d (%v): %v", i, changes[i], e)
		}
	}
}

func mustList(t *testing.T, d destination.Destination) map[string]destination.Secret {
	t.Helper()
	m, err := d.List(context.Background())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return m
}

// openAll checks that every PUT the server accepted carries a sealed box
// that opens with priv to the value want names for its key.
func openAll(t *testing.T, puts []ghactionstest.Put, pub, priv *[32]byte, want map[string]string) {
	t.Helper()
	for i, p := range puts {
		if p.Status != 201 && p.Status != 204 {
			continue
		}
		ct, err := base64.StdEncoding.DecodeString(p.EncryptedValue)
		if err != nil {
			t.Fatalf("put %d (%s): encrypted_value is not base64: %v", i, p.Name, err)
		}
		pt, ok := box.OpenAnonymous(nil, ct, pub, priv)
		if !ok {
			t.Fatalf("put %d (%s): encrypted_value does not open with the private key", i, p.Name)
		}
		if string(pt) != want[p.Name] {
			t.Fatalf("put %d (%s): opens to %d bytes that differ from the %d put", i, p.Name, len(pt), len(want[p.Name]))
		}
	}
}

// Every encrypted_value opens with the repository's private key to the
// exact value, and the key is fetched once for many puts.
func TestSealedValuesOpenWithThePrivateKey(t *testing.T) {
	srv := newServer(t, ghactionstest.Options{})
	d, sc := fixture(t, srv, ghactions.RepositorySecrets)
	values := map[string]string{
		"EMPTY":     "",
		"UNICODE":   "pässwörd ✓ 密码",
		"MULTILINE": "-----BEGIN KEY-----\nabc\n-----END KEY-----\n",
		"JSON":      `{"user":"u","n":1}`,
		"NUL":       "a\x00b",
		"SPACES":    "  padded  ",
		"MAX":       strings.Repeat("x", ghactions.MaxValueSize),
	}
	for i := range 20 {
		values[fmt.Sprintf("KEY_%02d", i)] = fmt.Sprintf("value-%d", i)
	}
	var changes []destination.Change
	for k, v := range values {
		changes = append(changes, put(k, v, ""))
	}
	mustApply(t, d, changes...)
	if n := srv.Count(ghactionstest.OpGetPublicKey); n != 1 {
		t.Fatalf("the public key was fetched %d times for %d puts, want once", n, len(values))
	}
	if n := srv.Count(ghactionstest.OpPutSecret); n != len(values) {
		t.Fatalf("%d PUTs for %d values", n, len(values))
	}
	puts := sc.Received()
	openAll(t, puts, sc.PublicKey(), sc.PrivateKey(), values)
	for _, p := range puts {
		if p.KeyID != sc.KeyID() || p.Status != 201 {
			t.Fatalf("put %s: key id %q, status %d; want %q, 201", p.Name, p.KeyID, p.Status, sc.KeyID())
		}
	}
	got := sc.Values()
	if len(got) != len(values) {
		t.Fatalf("the server holds %d secrets, want %d", len(got), len(values))
	}
	for k, v := range values {
		if got[k] != v {
			t.Fatalf("%s holds %d bytes that differ from the %d put", k, len(got[k]), len(v))
		}
	}

	// Updates: the same key, still fetched once; GitHub answers 204.
	listed := mustList(t, d)
	changes = changes[:0]
	for k, v := range values {
		if len(v)+2 > ghactions.MaxValueSize {
			v = v[2:]
		}
		values[k] = v + "-2"
		changes = append(changes, put(k, values[k], listed[k].Version))
	}
	mustApply(t, d, changes...)
	if n := srv.Count(ghactionstest.OpGetPublicKey); n != 1 {
		t.Fatalf("the public key was fetched %d times, want once", n)
	}
	puts = sc.Received()[len(values):]
	openAll(t, puts, sc.PublicKey(), sc.PrivateKey(), values)
	for _, p := range puts {
		if p.Status != 204 {
			t.Fatalf("update of %s answered %d, want 204", p.Name, p.Status)
		}
	}
	for k, v := range values {
		if s, _ := sc.Get(k); s.Value != v {
			t.Fatalf("%s was not updated", k)
		}
	}
}

// After GitHub rotates the key, the first PUT with the old key id gets
// 422; the destination fetches the key again and writes once more.
func TestKeyRotation(t *testing.T) {
	srv := newServer(t, ghactionstest.Options{})
	d, sc := fixture(t, srv, ghactions.RepositorySecrets)
	mustApply(t, d, put("A", "a1", ""), put("B", "b1", ""))
	oldID, oldPub, oldPriv := sc.KeyID(), sc.PublicKey(), sc.PrivateKey()
	openAll(t, sc.Received(), oldPub, oldPriv, map[string]string{"A": "a1", "B": "b1"})

	newID := sc.RotateKey()
	if newID == oldID {
		t.Fatal("RotateKey kept the key id")
	}
	l := mustList(t, d)
	mustApply(t, d, put("A", "a2", l["A"].Version), put("B", "b2", l["B"].Version), put("C", "c1", ""))
	if n := srv.Count(ghactionstest.OpGetPublicKey); n != 2 {
		t.Fatalf("public key fetched %d times, want twice (once more after the rotation)", n)
	}
	puts := sc.Received()[2:]
	if len(puts) != 4 {
		t.Fatalf("%d PUTs after the rotation, want 4 (one refused, three accepted): %+v", len(puts), puts)
	}
	if puts[0].KeyID != oldID || puts[0].Status != 422 {
		t.Fatalf("first PUT after the rotation: key id %q, status %d; want the old id, 422", puts[0].KeyID, puts[0].Status)
	}
	for _, p := range puts[1:] {
		if p.KeyID != newID {
			t.Fatalf("PUT of %s used key id %q, want the new %q", p.Name, p.KeyID, newID)
		}
	}
	openAll(t, puts, sc.PublicKey(), sc.PrivateKey(), map[string]string{"A": "a2", "B": "b2", "C": "c1"})
	for k, v := range map[string]string{"A": "a2", "B": "b2", "C": "c1"} {
		if s, _ := sc.Get(k); s.Value != v {
			t.Fatalf("%s = %d bytes after the rotation", k, len(s.Value))
		}
	}

	// A 422 that a fresh key does not cure is returned, not retried forever.
	srv.FailNext(1, ghactionstest.Fault{Ops: []ghactionstest.Op{ghactionstest.OpPutSecret}, Status: 422})
	l = mustList(t, d)
	errs, err := d.Apply(context.Background(), []destination.Change{put("A", "a3", l["A"].Version)})
	var er *github.ErrorResponse
	if err != nil || !errors.As(errs[0], &er) || er.Response.StatusCode != 422 || errors.Is(errs[0], destination.ErrUnavailable) {
		t.Fatalf("Apply with a 422 that persists = %v, %v", errs, err)
	}
	if n := srv.Count(ghactionstest.OpPutSecret); n != 7 {
		t.Fatalf("%d PUTs in all, want 7 (one try, no second with the same key)", n)
	}
	if n := srv.Count(ghactionstest.OpGetPublicKey); n != 3 {
		t.Fatalf("public key fetched %d times, want 3 (once more after the 422)", n)
	}
}

// More than 100 secrets are read page by page, following the Link header.
func TestListPagination(t *testing.T) {
	for _, tc := range []struct {
		loc ghactions.Location
		n   int
	}{
		{ghactions.OrganizationSecrets, 250},
		{ghactions.RepositorySecrets, 100},
		{ghactions.EnvironmentSecrets, 100},
	} {
		t.Run(string(tc.loc), func(t *testing.T) {
			srv := newServer(t, ghactionstest.Options{})
			d, sc := fixture(t, srv, tc.loc)
			for i := range tc.n {
				if err := sc.Set(fmt.Sprintf("S_%04d", i), "v"); err != nil {
					t.Fatal(err)
				}
			}
			// Beyond GitHub's limit, the store refuses.
			if err := sc.Set("ONE_TOO_MANY", "v"); tc.loc != ghactions.OrganizationSecrets && err == nil {
				t.Fatal("the server took one secret over GitHub's limit")
			}
			srv.ResetCounts()
			m := mustList(t, d)
			want := len(sc.List())
			if len(m) != want {
				t.Fatalf("List returned %d secrets, want %d", len(m), want)
			}
			for _, s := range sc.List() {
				got, ok := m[s.Name]
				if !ok || got.Value != "" || got.Version != s.UpdatedAt.UTC().Format(time.RFC3339) {
					t.Fatalf("%s listed as %v, %v; want its updated_at %s", s.Name, got, ok, s.UpdatedAt)
				}
			}
			if n, pages := srv.Count(ghactionstest.OpListSecrets), (want+99)/100; n != pages {
				t.Fatalf("List sent %d requests for %d secrets, want %d", n, want, pages)
			}
		})
	}
	// With the repository limit raised (the server can model more), the
	// same holds for repository secrets over 100.
	srv := newServer(t, ghactionstest.Options{MaxRepositorySecrets: 1000})
	d, sc := fixture(t, srv, ghactions.RepositorySecrets)
	for i := range 301 {
		if err := sc.Set(fmt.Sprintf("R_%04d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	if m := mustList(t, d); len(m) != 301 || srv.Count(ghactionstest.OpListSecrets) != 4 {
		t.Fatalf("List returned %d of 301 in %d requests", len(m), srv.Count(ghactionstest.OpListSecrets))
	}
}

// Environment secrets go through the repository's id, learned once, and
// an environment name with a space is escaped in the path.
func TestEnvironmentSecrets(t *testing.T) {
	srv := newServer(t, ghactionstest.Options{})
	var paths []string
	srv.OnRequest(func(r ghactionstest.Request) { paths = append(paths, r.Method+" "+r.Path) })
	d, sc := fixture(t, srv, ghactions.EnvironmentSecrets)
	mustApply(t, d, put("DB_URL", "postgres://", ""), put("TOKEN", "t", ""))
	if v, _ := sc.Get("DB_URL"); v.Value != "postgres://" {
		t.Fatalf("DB_URL = %d bytes", len(v.Value))
	}
	openAll(t, sc.Received(), sc.PublicKey(), sc.PrivateKey(), map[string]string{"DB_URL": "postgres://", "TOKEN": "t"})
	l := mustList(t, d)
	mustApply(t, d, del("TOKEN", l["TOKEN"].Version))
	if _, ok := sc.Get("TOKEN"); ok {
		t.Fatal("TOKEN is still there")
	}
	if n := srv.Count(ghactionstest.OpGetRepository); n != 1 {
		t.Fatalf("the repository was read %d times, want once", n)
	}
	repo := srv.AddRepository("acme", strings.TrimPrefix(paths[0], "GET /repos/acme/"))
	want := []string{
		"GET /repos/acme/" + repo.Name,
		fmt.Sprintf("GET /repositories/%d/environments/prod env/secrets/public-key", repo.ID),
		fmt.Sprintf("GET /repositories/%d/environments/prod env/secrets/DB_URL", repo.ID),
		fmt.Sprintf("PUT /repositories/%d/environments/prod env/secrets/DB_URL", repo.ID),
	}
	for i, w := range want {
		if paths[i] != w {
			t.Fatalf("request %d = %q, want %q (all: %q)", i, paths[i], w, paths)
		}
	}
	// Another environment of the same repository holds nothing of these.
	other := repo.AddEnvironment("staging")
	if len(other.List()) != 0 || len(repo.Secrets().List()) != 0 {
		t.Fatal("environment secrets leaked into another environment or the repository")
	}
}

// Organization secrets carry their visibility and, for "selected", the
// repository ids, on every write.
func TestOrganizationSecrets(t *testing.T) {
	srv := newServer(t, ghactionstest.Options{})
	org := srv.AddOrganization("acme")
	ids := []int64{srv.AddRepository("acme", "api").ID, srv.AddRepository("acme", "web").ID}
	d, err := ghactions.New(context.Background(), &ghactions.Options{
		Token: srv.Token, BaseURL: srv.URL, Location: ghactions.OrganizationSecrets, Organization: "acme",
		Visibility: ghactions.VisibilitySelected, SelectedRepositoryIDs: ids,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	mustApply(t, d, put("SHARED", "s1", ""))
	l := mustList(t, d)
	mustApply(t, d, put("SHARED", "s2", l["SHARED"].Version))
	s, ok := org.Get("SHARED")
	if !ok || s.Value != "s2" || s.Visibility != "selected" || fmt.Sprint(s.SelectedRepositoryIDs) != fmt.Sprint(ids) {
		t.Fatalf("SHARED = %v (visibility %q, ids %v), want s2, selected, %v", s, s.Visibility, s.SelectedRepositoryIDs, ids)
	}
	for _, p := range org.Received() {
		if p.Visibility != "selected" || fmt.Sprint(p.SelectedRepositoryIDs) != fmt.Sprint(ids) {
			t.Fatalf("PUT body had visibility %q and ids %v", p.Visibility, p.SelectedRepositoryIDs)
		}
	}
	openAll(t, org.Received()[1:], org.PublicKey(), org.PrivateKey(), map[string]string{"SHARED": "s2"})

	// The default visibility is private, with no ids.
	d2, err := ghactions.New(context.Background(), &ghactions.Options{Token: srv.Token, BaseURL: srv.URL, Location: ghactions.OrganizationSecrets, Organization: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	mustApply(t, d2, put("PRIVATE_ONE", "p", ""))
	if s, _ := org.Get("PRIVATE_ONE"); s.Visibility != "private" || s.SelectedRepositoryIDs != nil {
		t.Fatalf("PRIVATE_ONE: visibility %q, ids %v", s.Visibility, s.SelectedRepositoryIDs)
	}
	// Both destinations list every organization secret.
	if m := mustList(t, d2); len(m) != 2 {
		t.Fatalf("List = %v", m)
	}
}

// Names are normalized as GitHub stores them, and Apply refuses any other
// name without sending a request.
func TestNames(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"DB_URL", "DB_URL"},
		{"db_url", "DB_URL"},
		{"app/db-url", "APP_DB_URL"},
		{"api-key.v2", "API_KEY_V2"},
		{"1password", "_1PASSWORD"},
		{"9", "_9"},
		{"_x", "_X"},
		{"pässwort", "P_SSWORT"},
		{"密码", "__"},
		{"a b\tc", "A_B_C"},
		{"bad-\xff", "BAD__"},
		{"vault/kv_1a2b/app/prod/DB", "VAULT_KV_1A2B_APP_PROD_DB"},
		{"_GITHUB_TOKEN", "_GITHUB_TOKEN"},
		{"GITHUBX", "GITHUBX"},
		{"GITHUB", "GITHUB"},
	} {
		got, err := ghactions.NormalizeKey(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("NormalizeKey(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "GITHUB_TOKEN", "github_token", "GitHub_Actions", "github-sha", "github.ref"} {
		if got, err := ghactions.NormalizeKey(in); !errors.Is(err, destination.ErrInvalidKey) {
			t.Errorf("NormalizeKey(%q) = %q, %v; want ErrInvalidKey", in, got, err)
		}
	}

	srv := newServer(t, ghactionstest.Options{})
	d, sc := fixture(t, srv, ghactions.RepositorySecrets)
	for _, k := range []string{"db_url", "Db_Url", "GITHUB_TOKEN", "1ABC", "A-B", "A.B", "", "A/B", "../A", "A B", "Ä"} {
		errs, err := d.Apply(context.Background(), []destination.Change{put(k, "v", ""), del(k, "x")})
		if err != nil || !errors.Is(errs[0], destination.ErrInvalidKey) || !errors.Is(errs[1], destination.ErrInvalidKey) {
			t.Errorf("Apply of %q = %v, %v; want ErrInvalidKey for the put and the delete", k, errs, err)
		}
	}
	if n := srv.Requests(); n != 0 {
		t.Fatalf("refused names sent %d requests", n)
	}
	if len(sc.List()) != 0 {
		t.Fatal("a refused name was written")
	}
	// The server, as GitHub, stores names upper-case: a lower-case name
	// written by someone else is listed upper-case.
	if err := sc.Set("lower_case", "v"); err != nil {
		t.Fatal(err)
	}
	if _, ok := mustList(t, d)["LOWER_CASE"]; !ok {
		t.Fatal("lower_case is not listed as LOWER_CASE")
	}
	if err := sc.Set("GITHUB_X", "v"); err == nil {
		t.Fatal("the server took a GITHUB_ name")
	}
}

func FuzzNormalizeKey(f *testing.F) {
	for _, s := range []string{"", "a", "DB_URL", "1x", "github_x", "app/db-url", "\xff", "密码", "_", "GITHUB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ghactions.NormalizeKey(s)
		if err != nil {
			if !errors.Is(err, destination.ErrInvalidKey) {
				t.Fatalf("NormalizeKey(%q) = %v, not ErrInvalidKey", s, err)
			}
			return
		}
		if n == "" || n[0] >= '0' && n[0] <= '9' || strings.HasPrefix(n, "GITHUB_") {
			t.Fatalf("NormalizeKey(%q) = %q, which GitHub refuses", s, n)
		}
		for i := 0; i < len(n); i++ {
			if c := n[i]; !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
				t.Fatalf("NormalizeKey(%q) = %q, with %q", s, n, c)
			}
		}
		if again, err := ghactions.NormalizeKey(n); err != nil || again != n {
			t.Fatalf("NormalizeKey is not idempotent: %q -> %q -> %q, %v", s, n, again, err)
		}
	})
}

// Values GitHub cannot hold exactly are refused before any request.
func TestValueLimits(t *testing.T) {
	srv := newServer(t, ghactionstest.Options{})
	d, sc := fixture(t, srv, ghactions.RepositorySecrets)
	errs, err := d.Apply(context.Background(), []destination.Change{
		put("TOO_LONG", strings.Repeat("x", ghactions.MaxValueSize+1), ""),
		put("NOT_UTF8", "p\xe4ss", ""),
		put("FITS", strings.Repeat("y", ghactions.MaxValueSize), ""),
	})
	if err != nil || !errors.Is(errs[0], destination.ErrInvalidValue) || !errors.Is(errs[1], destination.ErrInvalidValue) || errs[2] != nil {
		t.Fatalf("Apply = %v, %v", errs, err)
	}
	if n := srv.Count(ghactionstest.OpPutSecret); n != 1 {
		t.Fatalf("%d PUTs, want 1", n)
	}
	if _, ok := sc.Get("TOO_LONG"); ok {
		t.Fatal("TOO_LONG was written")
	}
}

// A secret created or deleted by someone else between the read and the
// write shows in GitHub's answer (204 for a create, 201 for an update):
// the write happened, and Apply reports a conflict.
func TestRaceBetweenReadAndWrite(t *testing.T) {
	srv := newServer(t, ghactionstest.Options{})
	d, sc := fixture(t, srv, ghactions.RepositorySecrets)
	var race atomic.Value // func()
	srv.OnRequest(func(r ghactionstest.Request) {
		if r.Op == ghactionstest.OpPutSecret {
			if f, _ := race.Swap(func() {}).(func()); f != nil {
				f()
			}
		}
	})
	race.Store(func() {
		if err := sc.Set("A", "theirs"); err != nil {
			t.Error(err)
		}
	})
	errs, err := d.Apply(context.Background(), []destination.Change{put("A", "ours", "")})
	if err != nil || !errors.Is(errs[0], destination.ErrConflict) {
		t.Fatalf("create that found the secret created meanwhile = %v, %v", errs, err)
	}
	if s, _ := sc.Get("A"); s.Value != "ours" {
		t.Fatal("the write did not happen")
	}
	l := mustList(t, d)
	race.Store(func() { sc.Delete("A") })
	errs, err = d.Apply(context.Background(), []destination.Change{put("A", "ours-2", l["A"].Version)})
	if err != nil || !errors.Is(errs[0], destination.ErrConflict) {
		t.Fatalf("update that found the secret deleted meanwhile = %v, %v", errs, err)
	}
	// A delete that finds the secret gone meanwhile succeeds.
	l = mustList(t, d)
	srv.OnRequest(func(r ghactionstest.Request) {
		if r.Op == ghactionstest.OpDeleteSecret {
			sc.Delete(r.Name)
		}
	})
	mustApply(t, d, del("A", l["A"].Version))
}

func TestErrors(t *testing.T) {
	ctx := context.Background()
	srv := newServer(t, ghactionstest.Options{})
	d, sc := fixture(t, srv, ghactions.RepositorySecrets)
	mustApply(t, d, put("A", "a", ""))

	var stopsAfter func(name string, requests int, f ghactionstest.Fault, check func(error) bool)
	stops := func(name string, f ghactionstest.Fault, check func(error) bool) {
		t.Helper()
		stopsAfter(name, 1, f, check)
	}
	stopsAfter = func(name string, requests int, f ghactionstest.Fault, check func(error) bool) {
		t.Helper()
		srv.ResetCounts()
		srv.FailNext(1, f)
		changes := []destination.Change{put("B", "b", ""), put("C", "c", ""), put("D", "d", "")}
		errs, err := d.Apply(ctx, changes)
		if err == nil || len(errs) != 3 {
			t.Fatalf("%s: Apply = %v, %v; want a stop", name, errs, err)
		}
		for i, e := range errs {
			if !check(e) {
				t.Fatalf("%s: change %d: %v", name, i, e)
			}
		}
		if n := srv.Requests(); n != requests {
			t.Fatalf("%s: %d requests, want %d (none after the failure)", name, n, requests)
		}
	}
	isUnavailable := func(err error) bool { return errors.Is(err, destination.ErrUnavailable) }
	stops("500", ghactionstest.Fault{Status: 500}, isUnavailable)
	stops("502", ghactionstest.Fault{Status: 502}, isUnavailable)
	// (A GET on a connection closed without an answer is retried by
	// net/http itself, so the hang-up is on the PUT.)
	stopsAfter("hang-up", 2, ghactionstest.Fault{Hangup: true, Ops: []ghactionstest.Op{ghactionstest.OpPutSecret}}, isUnavailable)
	stops("rate limit", ghactionstest.Fault{RateLimit: true}, func(err error) bool {
		var rl *github.RateLimitError
		return isUnavailable(err) && errors.As(err, &rl)
	})
	stops("rate limit 429", ghactionstest.Fault{RateLimit: true, Status: 429}, func(err error) bool {
		var rl *github.RateLimitError
		return isUnavailable(err) && errors.As(err, &rl)
	})
	stops("secondary rate limit", ghactionstest.Fault{SecondaryRateLimit: true}, func(err error) bool {
		var al *github.AbuseRateLimitError
		return isUnavailable(err) && errors.As(err, &al)
	})
	stops("403", ghactionstest.Fault{Status: 403}, func(err error) bool {
		var er *github.ErrorResponse
		return !isUnavailable(err) && errors.As(err, &er) && er.Response.StatusCode == 403
	})

	// List fails as a whole the same way.
	srv.FailNext(1, ghactionstest.Fault{Status: 503})
	if _, err := d.List(ctx); !errors.Is(err, destination.ErrUnavailable) {
		t.Fatalf("List with a 503 = %v", err)
	}
	// A slow answer beyond the caller's deadline is the caller's error.
	srv.FailNext(1, ghactionstest.Fault{Delay: time.Second})
	tctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	_, err := d.List(tctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("List past the deadline = %v", err)
	}
	// A delay alone answers normally.
	srv.FailNext(1, ghactionstest.Fault{Delay: 10 * time.Millisecond})
	if m := mustList(t, d); len(m) != 1 {
		t.Fatalf("List after a delay = %v", m)
	}

	// A bad token: 401 in GitHub's shape, Apply stops at the first change.
	bad, err := ghactions.New(ctx, &ghactions.Options{Token: "ghp_wrong", BaseURL: srv.URL, Owner: "acme", Repository: "repo-x"})
	if err != nil {
		t.Fatal(err)
	}
	srv.ResetCounts()
	errs, err := bad.Apply(ctx, []destination.Change{put("B", "b", ""), put("C", "c", "")})
	var er *github.ErrorResponse
	if err == nil || !errors.As(errs[0], &er) || er.Response.StatusCode != 401 || er.Message != "Bad credentials" || errors.Is(errs[0], destination.ErrUnavailable) {
		t.Fatalf("Apply with a bad token = %v, %v", errs, err)
	}
	if srv.Requests() != 1 {
		t.Fatalf("%d requests with a bad token, want 1", srv.Requests())
	}
	// A repository that does not exist (or that the token cannot see):
	// List and deletes fail, they do not report an empty place.
	gone, err := ghactions.New(ctx, &ghactions.Options{Token: srv.Token, BaseURL: srv.URL, Owner: "acme", Repository: "no-such-repo"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gone.List(ctx); !errors.As(err, &er) || er.Response.StatusCode != 404 {
		t.Fatalf("List of a missing repository = %v", err)
	}
	if errs, _ := gone.Apply(ctx, []destination.Change{del("A", "x")}); errs[0] == nil {
		t.Fatal("a delete in a missing repository succeeded")
	}
	if len(sc.List()) != 1 {
		t.Fatalf("the store holds %v", sc.List())
	}
}

// The primary rate limit: once an answer says no request remains,
// go-github refuses further requests itself until the reset; a client that
// does not know it yet gets GitHub's 403 with remaining 0. Both are
// ErrUnavailable.
func TestPrimaryRateLimit(t *testing.T) {
	srv := newServer(t, ghactionstest.Options{RateLimit: 4})
	d, _ := fixture(t, srv, ghactions.RepositorySecrets)
	mustList(t, d)
	mustApply(t, d, put("A", "a", "")) // public key, GET, PUT: 4 requests in all
	n := srv.Requests()
	_, err := d.List(context.Background())
	var rl *github.RateLimitError
	if !errors.Is(err, destination.ErrUnavailable) || !errors.As(err, &rl) {
		t.Fatalf("List after the last request of the limit = %v", err)
	}
	if srv.Requests() != n {
		t.Fatal("go-github sent a request before the rate limit's reset")
	}
	other, _ := fixture(t, srv, ghactions.RepositorySecrets)
	_, err = other.List(context.Background())
	if !errors.Is(err, destination.ErrUnavailable) || !errors.As(err, &rl) || rl.Response.StatusCode != 403 {
		t.Fatalf("List over the limit = %v", err)
	}
	if srv.Requests() != n+1 {
		t.Fatal("the server was not asked")
	}
}

func TestSecretsNeverLeak(t *testing.T) {
	const canary = "canary-5ecret-value"
	const token = "ghp_canaryToken0000000000"
	srv := newServer(t, ghactionstest.Options{Token: token})
	d, err := ghactions.New(context.Background(), &ghactions.Options{Token: token, BaseURL: srv.URL, Owner: "acme", Repository: "leak"})
	if err != nil {
		t.Fatal(err)
	}
	sc := srv.AddRepository("acme", "leak").Secrets()
	var texts []string
	for _, f := range []ghactionstest.Fault{{Status: 500}, {Status: 422}, {RateLimit: true}, {Hangup: true}} {
		srv.FailNext(1, ghactionstest.Fault{Ops: []ghactionstest.Op{ghactionstest.OpPutSecret}, Status: f.Status, RateLimit: f.RateLimit, Hangup: f.Hangup})
		errs, err := d.Apply(context.Background(), []destination.Change{put("K", canary, ""), put("TOO_LONG", canary+strings.Repeat("x", 50000), ""), put("BAD_UTF8", canary+"\xff", "")})
		texts = append(texts, fmt.Sprint(err), fmt.Sprintf("%v %+v %#v", errs, errs, errs))
		sc.Delete("K")
	}
	opts := ghactions.Options{Token: token, Owner: "o", Repository: "r"}
	texts = append(texts, fmt.Sprint(opts), fmt.Sprintf("%+v %#v %s", opts, opts, opts), fmt.Sprint(d), fmt.Sprint(sc.List()))
	for _, s := range texts {
		if strings.Contains(s, canary) || strings.Contains(s, token) {
			t.Fatalf("a value or the token leaked: %s", s)
		}
	}
}

func TestCloseAndOptions(t *testing.T) {
	ctx := context.Background()
	srv := newServer(t, ghactionstest.Options{})
	d, _ := fixture(t, srv, ghactions.RepositorySecrets)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.List(ctx); !errors.Is(err, ghactions.ErrClosed) {
		t.Fatalf("List after Close = %v", err)
	}
	if errs, err := d.Apply(ctx, []destination.Change{put("A", "a", "")}); !errors.Is(err, ghactions.ErrClosed) || !errors.Is(errs[0], ghactions.ErrClosed) {
		t.Fatalf("Apply after Close = %v, %v", errs, err)
	}
	for _, o := range []ghactions.Options{
		{},
		{Token: "t"},
		{Token: "t", Owner: "o"},
		{Token: "t", Owner: "o/x", Repository: "r"},
		{Token: "t", Owner: "o", Repository: ".."},
		{Token: "t", Owner: "o", Repository: "r", Environment: "e"},
		{Token: "t", Location: ghactions.EnvironmentSecrets, Owner: "o", Repository: "r"},
		{Token: "t", Location: ghactions.EnvironmentSecrets, Owner: "o", Repository: "r", Environment: ".."},
		{Token: "t", Location: ghactions.OrganizationSecrets},
		{Token: "t", Location: ghactions.OrganizationSecrets, Organization: "o", Visibility: "public"},
		{Token: "t", Location: ghactions.OrganizationSecrets, Organization: "o", SelectedRepositoryIDs: []int64{1}},
		{Token: "t", Location: ghactions.OrganizationSecrets, Organization: "o", Owner: "x"},
		{Token: "t", Location: "enterprise", Organization: "o"},
		{Token: "t", Owner: "o", Repository: "r", BaseURL: "ftp://x"},
	} {
		if _, err := ghactions.New(ctx, &o); !errors.Is(err, ghactions.ErrInvalidOptions) {
			t.Errorf("New(%v) = %v, want ErrInvalidOptions", o, err)
		}
	}
	// GitHub Enterprise Server's /api/v3/ prefix.
	d2, err := ghactions.New(ctx, &ghactions.Options{Token: srv.Token, BaseURL: srv.URL + "api/v3", Owner: "acme", Repository: "ghes"})
	if err != nil {
		t.Fatal(err)
	}
	srv.AddRepository("acme", "ghes")
	mustApply(t, d2, put("X", "x", ""))
	if len(mustList(t, d2)) != 1 {
		t.Fatal("GHES-style base URL")
	}
	// A cancelled context is returned as it is.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := ghactions.New(cctx, &ghactions.Options{Token: "t", Owner: "o", Repository: "r"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("New with a cancelled context = %v", err)
	}
}

// Environment names are escaped in the path, whatever they hold.
func TestEnvironmentNames(t *testing.T) {
	srv := newServer(t, ghactionstest.Options{})
	repo := srv.AddRepository("acme", "envs")
	for _, env := range []string{"eu/prod", "a b?c#d", "staging%2F", "Prod"} {
		sc := repo.AddEnvironment(env)
		d, err := ghactions.New(context.Background(), &ghactions.Options{Token: srv.Token, BaseURL: srv.URL, Location: ghactions.EnvironmentSecrets, Owner: "acme", Repository: "envs", Environment: env})
		if err != nil {
			t.Fatal(err)
		}
		mustApply(t, d, put("X", env, ""))
		if s, ok := sc.Get("X"); !ok || s.Value != env {
			t.Fatalf("environment %q: X = %v, %v", env, s, ok)
		}
		if m := mustList(t, d); len(m) != 1 {
			t.Fatalf("environment %q lists %v", env, m)
		}
		d.Close()
	}
}
