package gcpsm_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/gcpsm"
	"github.com/secretsync/secretsync/destination/gcpsm/gcpsmtest"
)

func put(key, value, expect string) destination.Change {
	return destination.Change{Key: key, Value: value, Expect: expect}
}

func del(key, expect string) destination.Change {
	return destination.Change{Key: key, Delete: true, Expect: expect}
}

// mustApply applies changes and fails on any error.
func mustApply(t *testing.T, d destination.Destination, changes ...destination.Change) {
	t.Helper()
	errs, err := d.Apply(context.Background(), changes)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Apply: change %d: %v", i, err)
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

// TestListPaginates lists more secrets than fit in a page: the SDK
// follows next_page_token until the last page, and List filters on the
// owner's labels on the server (other owners' and unowned secrets are
// not even sent) and again on its side.
func TestListPaginates(t *testing.T) {
	srv := newServer(t, gcpsmtest.Options{MaxPageSize: 2})
	d := open(t, srv, gcpsm.Options{Owner: "assoc-a"})
	for i := range 7 {
		mustApply(t, d, put(fmt.Sprintf("OURS_%d", i), fmt.Sprint("v", i), ""))
	}
	for i := range 3 {
		if _, err := srv.Put(fmt.Sprintf("UNOWNED_%d", i), "x", nil); err != nil {
			t.Fatal(err)
		}
		if _, err := srv.Put(fmt.Sprintf("OTHER_%d", i), "x", ownerLabels("assoc-b")); err != nil {
			t.Fatal(err)
		}
	}
	srv.ResetCounts()
	m := mustList(t, d)
	if len(m) != 7 {
		t.Fatalf("List = %d keys, want 7", len(m))
	}
	for i := range 7 {
		if got := m[fmt.Sprintf("OURS_%d", i)]; got.Value != fmt.Sprint("v", i) || !strings.HasPrefix(got.Version, "1@") {
			t.Fatalf("OURS_%d = %v", i, got)
		}
	}
	if n := srv.Count("ListSecrets"); n != 4 {
		t.Errorf("ListSecrets requests = %d, want 4 (7 secrets in pages of 2)", n)
	}
	if n := srv.Count("AccessSecretVersion"); n != 7 {
		t.Errorf("AccessSecretVersion requests = %d, want 7", n)
	}

	// The page size of Options is sent.
	d3 := open(t, srv, gcpsm.Options{Owner: "assoc-a", PageSize: 3})
	srv.ResetCounts()
	if m := mustList(t, d3); len(m) != 7 {
		t.Fatalf("List = %d keys, want 7", len(m))
	}
	if n := srv.Count("ListSecrets"); n != 4 { // the server's cap of 2 still applies
		t.Errorf("ListSecrets requests = %d, want 4", n)
	}
	srvBig := newServer(t, gcpsmtest.Options{})
	dBig := open(t, srvBig, gcpsm.Options{Owner: "assoc-a", PageSize: 3})
	for i := range 7 {
		mustApply(t, dBig, put(fmt.Sprintf("K%d", i), "v", ""))
	}
	srvBig.ResetCounts()
	if m := mustList(t, dBig); len(m) != 7 {
		t.Fatalf("List = %d keys, want 7", len(m))
	}
	if n := srvBig.Count("ListSecrets"); n != 3 {
		t.Errorf("ListSecrets requests with page size 3 = %d, want 3", n)
	}
}

// TestChecksums: every version is added with the CRC32C of its data
// (which the server checks), and a payload whose checksum does not match
// on the way back is refused.
func TestChecksums(t *testing.T) {
	srv := newServer(t, gcpsmtest.Options{})
	d := open(t, srv, gcpsm.Options{Owner: "o"})
	mustApply(t, d, put("K", "pässwörd\x00\xff", ""))
	vs := srv.Versions("K")
	if len(vs) != 1 || !vs[0].ClientChecksum {
		t.Fatalf("versions = %+v, want one added with a client checksum", vs)
	}
	srv.CorruptChecksums(1)
	_, err := d.List(context.Background())
	if err == nil || !strings.Contains(err.Error(), "CRC32C") {
		t.Fatalf("List with a corrupted payload = %v, want a checksum error", err)
	}
	if strings.Contains(err.Error(), "pässwörd") {
		t.Fatal("the error holds the value")
	}
	if m := mustList(t, d); m["K"].Value != "pässwörd\x00\xff" {
		t.Fatal("the value did not round-trip")
	}
}

// TestOAuthToken: the destination obtains one access token from the
// key's token_uri (the JWT-bearer grant, which the server verifies with
// the key's public half) and sends it as "authorization: Bearer" on every
// RPC; a key the token endpoint refuses makes the store unavailable.
func TestOAuthToken(t *testing.T) {
	srv := newServer(t, gcpsmtest.Options{})
	d := open(t, srv, gcpsm.Options{Owner: "o"})
	mustApply(t, d, put("A", "1", ""))
	v := mustList(t, d)["A"].Version
	mustApply(t, d, put("A", "2", v), put("B", "1", ""))
	mustList(t, d)
	if n := srv.Count("Token"); n != 1 {
		t.Errorf("token requests = %d, want 1 (the token is cached)", n)
	}
	calls := srv.Calls()
	if len(calls) < 8 {
		t.Fatalf("only %d calls", len(calls))
	}
	email := srv.ServiceAccountEmail("sync")
	for _, c := range calls {
		if !strings.HasPrefix(c.Authorization, "Bearer ya29.gcpsmtest-") || c.Principal != email || c.SelfSignedJWT || c.Code != codes.OK {
			t.Errorf("%s: authorization %.30q, principal %q, self-signed %v, code %v", c.Method, c.Authorization, c.Principal, c.SelfSignedJWT, c.Code)
		}
		if c.RequestParams == "" {
			t.Errorf("%s: no x-goog-request-params", c.Method)
		}
	}

	// A key of an account the server does not know: the token endpoint
	// answers invalid_grant, and no RPC reaches the service.
	other := newServer(t, gcpsmtest.Options{})
	stranger := bytes.Replace(other.ServiceAccountKey("stranger"), []byte(other.TokenURL()), []byte(srv.TokenURL()), 1)
	bad := open(t, srv, gcpsm.Options{Owner: "o", Credentials: stranger})
	before := srv.Total()
	_, err := bad.List(context.Background())
	if !errors.Is(err, destination.ErrUnavailable) {
		t.Fatalf("List with a refused key = %v, want ErrUnavailable", err)
	}
	if srv.Total() != before {
		t.Fatal("an RPC was sent without a token")
	}
	// An access token from another issuer is refused by the service.
	foreign := open(t, srv, gcpsm.Options{Owner: "o", Credentials: other.ServiceAccountKey("stranger")})
	if _, err := foreign.List(context.Background()); !errors.Is(err, destination.ErrUnavailable) || !strings.Contains(err.Error(), "Unauthenticated") {
		t.Fatalf("List with a foreign token = %v, want ErrUnavailable (UNAUTHENTICATED)", err)
	}
	// A token endpoint that fails once: the next request gets a token.
	fresh := open(t, srv, gcpsm.Options{Owner: "o"})
	srv.FailTokenNext(1, 503)
	errs, err := fresh.Apply(context.Background(), []destination.Change{put("C", "1", ""), put("D", "1", "")})
	if !errors.Is(err, destination.ErrUnavailable) || !errors.Is(errs[0], destination.ErrUnavailable) || !errors.Is(errs[1], destination.ErrUnavailable) {
		t.Fatalf("Apply while the token endpoint fails = %v, %v", errs, err)
	}
	mustApply(t, fresh, put("C", "1", ""))
}

// TestEtagConditionalDelete: a delete sends the etag of the secret it
// read, so that a change of the secret between that read and the delete
// (here, another writer's labels) makes it fail (FAILED_PRECONDITION),
// reported as a conflict, with the secret kept.
func TestEtagConditionalDelete(t *testing.T) {
	srv := newServer(t, gcpsmtest.Options{})
	d := open(t, srv, gcpsm.Options{Owner: "o"})
	mustApply(t, d, put("K", "v", ""))
	v := mustList(t, d)["K"].Version
	var sent string
	srv.BeforeRPC(func(method string, req proto.Message) {
		if r, ok := req.(*secretmanagerpb.DeleteSecretRequest); ok {
			sent = r.GetEtag()
			labels := srv.Labels("K")
			labels["touched"] = "yes"
			if err := srv.SetLabels("K", labels); err != nil {
				t.Error(err)
			}
		}
	})
	errs, err := d.Apply(context.Background(), []destination.Change{del("K", v)})
	if err != nil || !errors.Is(errs[0], destination.ErrConflict) {
		t.Fatalf("delete racing a change = %v, %v; want ErrConflict", errs, err)
	}
	if sent == "" || !strings.HasPrefix(sent, `"`) {
		t.Fatalf("DeleteSecret was sent with etag %q", sent)
	}
	if !srv.Exists("K") {
		t.Fatal("the secret was deleted")
	}
	srv.BeforeRPC(nil)
	mustApply(t, d, del("K", v))
	if srv.Exists("K") {
		t.Fatal("the secret was not deleted")
	}
}

// TestWriteBetweenReadAndWrite: another writer adds a version after the
// destination read the key and before its own version lands. Secret
// Manager cannot refuse the write, but the version below ours is not the
// one read, so the put reports a conflict; ours is the latest (the
// window the package documentation describes).
func TestWriteBetweenReadAndWrite(t *testing.T) {
	srv := newServer(t, gcpsmtest.Options{})
	d := open(t, srv, gcpsm.Options{Owner: "o"})
	mustApply(t, d, put("K", "v1", ""))
	v := mustList(t, d)["K"].Version
	once := gosync.Once{}
	srv.BeforeRPC(func(method string, req proto.Message) {
		if method == "AddSecretVersion" {
			once.Do(func() {
				if _, err := srv.AddVersion("K", "theirs"); err != nil {
					t.Error(err)
				}
			})
		}
	})
	srv.ResetCounts()
	errs, err := d.Apply(context.Background(), []destination.Change{put("K", "ours", v)})
	if err != nil || !errors.Is(errs[0], destination.ErrConflict) {
		t.Fatalf("put racing another writer = %v, %v; want ErrConflict", errs, err)
	}
	if n := srv.Count("ListSecretVersions"); n != 2 {
		t.Errorf("ListSecretVersions = %d, want 2 (the read before, the check after)", n)
	}
	if val, n, _ := srv.Value("K"); val != "ours" || n != 3 {
		t.Fatalf("latest = %q (version %d)", val, n)
	}
	// Without a race, no request checks afterwards.
	srv.BeforeRPC(nil)
	v = mustList(t, d)["K"].Version
	srv.ResetCounts()
	mustApply(t, d, put("K", "v4", v))
	if got := srv.Counts(); got["GetSecret"] != 1 || got["ListSecretVersions"] != 1 || got["AddSecretVersion"] != 1 || srv.Total() != 3 {
		t.Fatalf("an update cost %v", got)
	}
}

// TestConcurrentDestinations: writers in separate Destinations (as
// separate processes would be) update one key from the same read. The
// first version to land wins; every other writer reports a conflict,
// though its version was added: one of them is the latest. This is the
// window that Secret Manager leaves without a conditional write.
func TestConcurrentDestinations(t *testing.T) {
	srv := newServer(t, gcpsmtest.Options{})
	const n = 6
	ds := make([]*gcpsm.Destination, n)
	for i := range ds {
		ds[i] = open(t, srv, gcpsm.Options{Owner: "o"})
	}
	mustApply(t, ds[0], put("K", "base", ""))
	v := mustList(t, ds[0])["K"].Version
	results := make([]error, n)
	var wg gosync.WaitGroup
	for i, d := range ds {
		wg.Go(func() {
			errs, err := d.Apply(context.Background(), []destination.Change{put("K", fmt.Sprint("writer-", i), v)})
			results[i] = errors.Join(err, errs[0])
		})
	}
	wg.Wait()
	winners := 0
	for i, err := range results {
		switch {
		case err == nil:
			winners++
		case !errors.Is(err, destination.ErrConflict):
			t.Fatalf("writer %d: %v", i, err)
		}
	}
	if winners != 1 {
		t.Fatalf("%d writers won, want exactly 1: %v", winners, results)
	}
	if val, _, _ := srv.Value("K"); !strings.HasPrefix(val, "writer-") {
		t.Fatalf("latest = %q", val)
	}
}

// TestLatestDisabled: a secret whose latest version is disabled lists
// its latest enabled version, and is updated from that version.
func TestLatestDisabled(t *testing.T) {
	srv := newServer(t, gcpsmtest.Options{})
	d := open(t, srv, gcpsm.Options{Owner: "o"})
	mustApply(t, d, put("K", "v1", ""))
	mustApply(t, d, put("K", "v2", mustList(t, d)["K"].Version))
	if err := srv.SetVersionState("K", 2, secretmanagerpb.SecretVersion_DISABLED); err != nil {
		t.Fatal(err)
	}
	got := mustList(t, d)["K"]
	if got.Value != "v1" || !strings.HasPrefix(got.Version, "1@") {
		t.Fatalf("listed %v (%q), want v1 at version 1", got, got.Value)
	}
	mustApply(t, d, put("K", "v3", got.Version))
	if val, n, _ := srv.Value("K"); val != "v3" || n != 3 {
		t.Fatalf("latest = %q (version %d)", val, n)
	}
	// With every version disabled the key is not listed, and a create
	// gives it a version again.
	for _, n := range []int64{1, 3} {
		if err := srv.SetVersionState("K", n, secretmanagerpb.SecretVersion_DESTROYED); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := mustList(t, d)["K"]; ok {
		t.Fatal("a secret with no enabled version is listed")
	}
	mustApply(t, d, put("K", "v4", ""))
	if got := mustList(t, d)["K"]; got.Value != "v4" || !strings.HasPrefix(got.Version, "4@") {
		t.Fatalf("listed %v", got)
	}
}

// TestUnavailable: UNAVAILABLE, RESOURCE_EXHAUSTED, INTERNAL and
// DEADLINE_EXCEEDED (the server's, not the caller's) answers
// stop Apply with ErrUnavailable; PERMISSION_DENIED is the key's own
// error. AccessSecretVersion is retried by the SDK, as its retry settings
// say.
func TestUnavailable(t *testing.T) {
	srv := newServer(t, gcpsmtest.Options{})
	d := open(t, srv, gcpsm.Options{Owner: "o"})
	mustApply(t, d, put("A", "1", ""))
	v := mustList(t, d)["A"].Version
	for _, code := range []codes.Code{codes.Unavailable, codes.ResourceExhausted, codes.Internal, codes.DeadlineExceeded} {
		srv.FailNext("GetSecret", 1, code)
		errs, err := d.Apply(context.Background(), []destination.Change{put("A", "2", v), put("B", "1", "")})
		if !errors.Is(err, destination.ErrUnavailable) || !errors.Is(errs[0], destination.ErrUnavailable) || !errors.Is(errs[1], destination.ErrUnavailable) {
			t.Fatalf("%v: Apply = %v, %v; want ErrUnavailable for both", code, errs, err)
		}
		if srv.Exists("B") {
			t.Fatalf("%v: the second change was applied", code)
		}
	}
	srv.FailNext("GetSecret", 1, codes.PermissionDenied)
	errs, err := d.Apply(context.Background(), []destination.Change{put("A", "2", v), put("B", "1", "")})
	if err != nil || errs[0] == nil || errors.Is(errs[0], destination.ErrUnavailable) || errs[1] != nil {
		t.Fatalf("PermissionDenied: Apply = %v, %v", errs, err)
	}

	srv.ResetCounts()
	srv.FailNext("AccessSecretVersion", 1, codes.Unavailable)
	if m := mustList(t, d); len(m) != 2 {
		t.Fatalf("List = %v", m)
	}
	if n := srv.Count("AccessSecretVersion"); n != 3 {
		t.Errorf("AccessSecretVersion = %d, want 3 (one retried)", n)
	}

	// A server too slow for the caller: the context's error, unwrapped.
	srv.SetDelay(time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := d.List(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("List past the deadline = %v", err)
	}
}

// TestLabels: custom labels are set on create and added to an owned
// secret that lacks them (with its etag), leaving others' labels; labels
// that break Secret Manager's rules are refused when opening.
func TestLabels(t *testing.T) {
	srv := newServer(t, gcpsmtest.Options{})
	d := open(t, srv, gcpsm.Options{Owner: "assoc-1", Labels: map[string]string{"team": "platform", "env": ""}})
	mustApply(t, d, put("K", "v", ""))
	want := map[string]string{"managed-by": "secretsync", "secretsync-owner": "assoc-1", "team": "platform", "env": ""}
	if got := srv.Labels("K"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("labels = %v, want %v", got, want)
	}
	// Someone adds a label; the config gains one.
	l := srv.Labels("K")
	l["cost-center"] = "42"
	if err := srv.SetLabels("K", l); err != nil {
		t.Fatal(err)
	}
	d2 := open(t, srv, gcpsm.Options{Owner: "assoc-1", Labels: map[string]string{"team": "platform", "tier": "gold"}})
	srv.ResetCounts()
	mustApply(t, d2, put("K", "v2", mustList(t, d2)["K"].Version))
	if srv.Count("UpdateSecret") != 1 {
		t.Fatalf("UpdateSecret = %d, want 1", srv.Count("UpdateSecret"))
	}
	if got := srv.Labels("K"); got["tier"] != "gold" || got["cost-center"] != "42" || got["env"] != "" || got["secretsync-owner"] != "assoc-1" {
		t.Fatalf("labels = %v", got)
	}

	for _, bad := range []map[string]string{
		{"Team": "x"}, {"team": "X"}, {"1team": "x"}, {"team": strings.Repeat("x", 64)},
		{"managed-by": "me"}, {"secretsync-owner": "x"}, {"a.b": "x"},
	} {
		_, err := gcpsm.New(context.Background(), &gcpsm.Options{Credentials: srv.ServiceAccountKey("sync"), Labels: bad})
		if err == nil {
			t.Errorf("labels %v were accepted", bad)
		}
	}
	many := map[string]string{}
	for i := range 63 {
		many[fmt.Sprint("l", i)] = "x"
	}
	if _, err := gcpsm.New(context.Background(), &gcpsm.Options{Credentials: srv.ServiceAccountKey("sync"), Labels: many}); err == nil {
		t.Error("63 custom labels were accepted (64 with the markers is the limit)")
	}
}

// TestValuesAndKeys: the limits of a payload and of a secret ID.
func TestValuesAndKeys(t *testing.T) {
	srv := newServer(t, gcpsmtest.Options{})
	d := open(t, srv, gcpsm.Options{Owner: "o"})
	errs, err := d.Apply(context.Background(), []destination.Change{
		put("EMPTY", "", ""),
		put("BIG", strings.Repeat("x", gcpsm.MaxPayload+1), ""),
		put("MAX", strings.Repeat("x", gcpsm.MaxPayload), ""),
		put(strings.Repeat("k", 256), "v", ""),
		put(strings.Repeat("k", 255), "v", ""),
		put("a.b", "v", ""),
		del("a/b", ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []error{destination.ErrInvalidValue, destination.ErrInvalidValue, nil, destination.ErrInvalidKey, nil, destination.ErrInvalidKey, destination.ErrInvalidKey} {
		if want == nil && errs[i] != nil || want != nil && !errors.Is(errs[i], want) {
			t.Errorf("change %d: %v, want %v", i, errs[i], want)
		}
	}
	if got := srv.Secrets(); len(got) != 2 {
		t.Fatalf("secrets = %v", got)
	}
}

// TestProjectFromConfig: ProjectID overrides the key's project_id; the
// server refuses a project the account cannot reach.
func TestProjectFromConfig(t *testing.T) {
	srv := newServer(t, gcpsmtest.Options{ProjectID: "prod-1"})
	d := open(t, srv, gcpsm.Options{Owner: "o", ProjectID: fmt.Sprint(srv.ProjectNumber())})
	mustApply(t, d, put("K", "v", ""))
	if _, ok := mustList(t, d)["K"]; !ok {
		t.Fatal("not listed")
	}
	other := open(t, srv, gcpsm.Options{Owner: "o", ProjectID: "elsewhere"})
	_, err := other.List(context.Background())
	if err == nil || errors.Is(err, destination.ErrUnavailable) || !strings.Contains(err.Error(), "PermissionDenied") {
		t.Fatalf("List in another project = %v", err)
	}
	if _, err := gcpsm.New(context.Background(), &gcpsm.Options{Credentials: []byte(`{"type":"authorized_user"}`)}); err == nil {
		t.Fatal("a key that is not a service account's was accepted")
	}
	if _, err := gcpsm.New(context.Background(), nil); err == nil {
		t.Fatal("no credentials were accepted")
	}
}

// TestCustomRole runs a whole life cycle with exactly the permissions the
// package documentation lists for a custom role, and shows that each of
// them is needed.
func TestCustomRole(t *testing.T) {
	perms := []string{
		gcpsmtest.PermSecretsCreate, gcpsmtest.PermSecretsGet, gcpsmtest.PermSecretsList,
		gcpsmtest.PermSecretsUpdate, gcpsmtest.PermSecretsDelete,
		gcpsmtest.PermVersionsAdd, gcpsmtest.PermVersionsAccess, gcpsmtest.PermVersionsList,
	}
	srv := newServer(t, gcpsmtest.Options{})
	key := srv.ServiceAccountKey("limited")
	email := srv.ServiceAccountEmail("limited")
	srv.SetPermissions(email, perms...)
	cycle := func(labels map[string]string) error {
		d := open(t, srv, gcpsm.Options{Owner: "o", Credentials: key, Labels: labels})
		for _, c := range []destination.Change{put("K", "v1", "")} {
			if errs, err := d.Apply(context.Background(), []destination.Change{c}); err != nil || errs[0] != nil {
				return errors.Join(err, errs[0])
			}
		}
		m, err := d.List(context.Background())
		if err != nil {
			return err
		}
		d2 := open(t, srv, gcpsm.Options{Owner: "o", Credentials: key, Labels: map[string]string{"extra": "1"}})
		if errs, err := d2.Apply(context.Background(), []destination.Change{put("K", "v2", m["K"].Version)}); err != nil || errs[0] != nil {
			return errors.Join(err, errs[0])
		}
		if m, err = d.List(context.Background()); err != nil {
			return err
		}
		if errs, err := d.Apply(context.Background(), []destination.Change{del("K", m["K"].Version)}); err != nil || errs[0] != nil {
			return errors.Join(err, errs[0])
		}
		return nil
	}
	if err := cycle(nil); err != nil {
		t.Fatalf("with the documented permissions: %v", err)
	}
	for i, p := range perms {
		srv.SetPermissions(email, append(append([]string{}, perms[:i]...), perms[i+1:]...)...)
		err := cycle(nil)
		if err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("without %s: %v", p, err)
		}
		srv.Delete("K")
	}
}

func TestNormalizeKey(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"DB_URL", "DB_URL"},
		{"vault/kv_1a2b/app/prod", "vault_kv_1a2b_app_prod"},
		{"api-key.v2", "api-key_v2"},
		{"pässwort", "p_sswort"},
		{"a\xffb", "a_b"},
		{"../x", "___x"},
		{strings.Repeat("k", 255), strings.Repeat("k", 255)},
	} {
		got, err := gcpsm.NormalizeKey(c.in)
		if err != nil || got != c.want {
			t.Errorf("NormalizeKey(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", strings.Repeat("k", 256)} {
		if _, err := gcpsm.NormalizeKey(bad); !errors.Is(err, destination.ErrInvalidKey) {
			t.Errorf("NormalizeKey(%.20q) = %v, want ErrInvalidKey", bad, err)
		}
	}
}

func FuzzNormalizeKey(f *testing.F) {
	for _, s := range []string{"DB_URL", "vault/kv/app", "../x", "a\xffb", "密码"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		got, err := gcpsm.NormalizeKey(key)
		if err != nil {
			if !errors.Is(err, destination.ErrInvalidKey) {
				t.Fatalf("NormalizeKey(%q): %v", key, err)
			}
			return
		}
		again, err := gcpsm.NormalizeKey(got)
		if err != nil || again != got {
			t.Fatalf("not idempotent: %q → %q → %q, %v", key, got, again, err)
		}
		if len(got) > gcpsm.MaxSecretID || strings.Trim(got, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != "" {
			t.Fatalf("NormalizeKey(%q) = %q, not a secret ID", key, got)
		}
	})
}

func TestOwnerLabel(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"assoc-0123456789abcdef", "assoc-0123456789abcdef"},
		// The registry's sync names, up to its longest (63, with a hash).
		{"gcp-sm-prod-kv-app-prod", "gcp-sm-prod-kv-app-prod"},
		{"gcp-sm-dest-kv-team-platform-applications-payments-gat-0a1b2c3d", "gcp-sm-dest-kv-team-platform-applications-payments-gat-0a1b2c3d"},
		{"App_Prod", "app_prod"},
		{"", ""},
	} {
		if got := gcpsm.OwnerLabel(c.in); got != c.want {
			t.Errorf("OwnerLabel(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	for _, in := range []string{"a/b", strings.Repeat("x", 64), "Ünïcode"} {
		got := gcpsm.OwnerLabel(in)
		if !strings.HasPrefix(got, "h-") || len(got) != 18 || got != gcpsm.OwnerLabel(in) {
			t.Errorf("OwnerLabel(%q) = %q, want a short hash", in, got)
		}
	}
}

// TestNoKeyInOutput: printing Options, and the errors of a destination
// whose key is refused, never show the key.
func TestNoKeyInOutput(t *testing.T) {
	srv := newServer(t, gcpsmtest.Options{})
	key := srv.ServiceAccountKey("sync")
	var kf struct {
		PrivateKey string `json:"private_key"`
	}
	if err := json.Unmarshal(key, &kf); err != nil {
		t.Fatal(err)
	}
	canary := strings.Split(kf.PrivateKey, "\n")[1] // a line of the key's base64
	opts := gcpsm.Options{Credentials: key, Owner: "o"}
	for _, s := range []string{fmt.Sprint(opts), fmt.Sprintf("%+v", opts), fmt.Sprintf("%#v", opts), fmt.Sprintf("%s", opts)} {
		if strings.Contains(s, canary) || strings.Contains(s, "PRIVATE KEY") {
			t.Fatalf("printed options show the key: %s", s)
		}
	}
	broken := bytes.Replace(key, []byte(canary), []byte(strings.Repeat("A", len(canary))), 1)
	d, err := gcpsm.New(context.Background(), &gcpsm.Options{Credentials: broken, HTTPClient: srv.HTTPClient(), ClientOptions: srv.ClientOptions()})
	if err == nil {
		_, err = d.List(context.Background())
		_ = d.Close()
	}
	if err == nil || strings.Contains(err.Error(), canary) || strings.Contains(err.Error(), strings.Repeat("A", 20)) {
		t.Fatalf("a broken key: %v", err)
	}
}
