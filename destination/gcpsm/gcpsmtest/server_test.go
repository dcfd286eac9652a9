package gcpsmtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"net/http"
	"net/url"
	"strings"
	"testing"

	secretmanager "cloud.google.com/go/secretmanager/apiv1"
	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

func newServer(t *testing.T, opts Options) *Server {
	t.Helper()
	s, err := NewServer(&opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// client returns the SDK's gRPC client with the key of account "test",
// which authenticates as the SDK does by default: with self-signed JWTs.
func client(t *testing.T, s *Server, extra ...option.ClientOption) *secretmanager.Client {
	t.Helper()
	opts := append(s.ClientOptions(), option.WithAuthCredentialsJSON(option.ServiceAccount, s.ServiceAccountKey("test")))
	c, err := secretmanager.NewClient(context.Background(), append(opts, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func code(err error) codes.Code { return status.Code(err) }

func automaticSecret(labels map[string]string) *secretmanagerpb.Secret {
	return &secretmanagerpb.Secret{Replication: automatic(), Labels: labels}
}

func crc(b []byte) *int64 {
	c := int64(crc32.Checksum(b, castagnoli))
	return &c
}

// TestSDKLifecycle drives every modelled RPC through the SDK, with the
// SDK's default authentication (a self-signed JWT of the key), and checks
// the answers and their error codes.
func TestSDKLifecycle(t *testing.T) {
	s := newServer(t, Options{ProjectID: "p1", ProjectNumber: 42})
	c := client(t, s)
	ctx := context.Background()
	parent := "projects/p1"

	sec, err := c.CreateSecret(ctx, &secretmanagerpb.CreateSecretRequest{Parent: parent, SecretId: "db", Secret: automaticSecret(map[string]string{"env": "prod"})})
	if err != nil {
		t.Fatal(err)
	}
	if sec.GetName() != "projects/42/secrets/db" || sec.GetEtag() == "" || sec.GetEtag()[0] != '"' || sec.GetCreateTime() == nil {
		t.Fatalf("created %v", sec)
	}
	_, err = c.CreateSecret(ctx, &secretmanagerpb.CreateSecretRequest{Parent: parent, SecretId: "db", Secret: automaticSecret(nil)})
	if code(err) != codes.AlreadyExists {
		t.Fatalf("second create = %v", err)
	}
	for _, bad := range []*secretmanagerpb.CreateSecretRequest{
		{Parent: parent, SecretId: "a.b", Secret: automaticSecret(nil)},
		{Parent: parent, SecretId: strings.Repeat("a", 256), Secret: automaticSecret(nil)},
		{Parent: parent, SecretId: "x", Secret: &secretmanagerpb.Secret{}},
		{Parent: parent, SecretId: "x", Secret: automaticSecret(map[string]string{"Env": "x"})},
		{Parent: parent, SecretId: "x", Secret: automaticSecret(map[string]string{"env": "X"})},
	} {
		if _, err := c.CreateSecret(ctx, bad); code(err) != codes.InvalidArgument {
			t.Errorf("create %q = %v, want InvalidArgument", bad.GetSecretId(), err)
		}
	}
	if _, err := c.CreateSecret(ctx, &secretmanagerpb.CreateSecretRequest{Parent: "projects/other", SecretId: "x", Secret: automaticSecret(nil)}); code(err) != codes.PermissionDenied {
		t.Errorf("create in another project = %v", err)
	}

	// Versions: the CRC32C is checked, the payload limited, "latest" is
	// the newest version.
	name := "projects/p1/secrets/db"
	data := []byte("v1")
	v, err := c.AddSecretVersion(ctx, &secretmanagerpb.AddSecretVersionRequest{Parent: name, Payload: &secretmanagerpb.SecretPayload{Data: data, DataCrc32C: crc(data)}})
	if err != nil || v.GetName() != "projects/42/secrets/db/versions/1" || v.GetState() != secretmanagerpb.SecretVersion_ENABLED || !v.GetClientSpecifiedPayloadChecksum() {
		t.Fatalf("add = %v, %v", v, err)
	}
	wrong := int64(12345)
	for _, p := range []*secretmanagerpb.SecretPayload{
		{Data: []byte("v2"), DataCrc32C: &wrong},
		{Data: nil},
		{Data: make([]byte, MaxPayload+1)},
	} {
		if _, err := c.AddSecretVersion(ctx, &secretmanagerpb.AddSecretVersionRequest{Parent: name, Payload: p}); code(err) != codes.InvalidArgument {
			t.Errorf("add of %d bytes = %v, want InvalidArgument", len(p.GetData()), err)
		}
	}
	if _, err := c.AddSecretVersion(ctx, &secretmanagerpb.AddSecretVersionRequest{Parent: name, Payload: &secretmanagerpb.SecretPayload{Data: make([]byte, MaxPayload)}}); err != nil {
		t.Errorf("add of 64 KiB = %v", err)
	}
	if _, err := c.AddSecretVersion(ctx, &secretmanagerpb.AddSecretVersionRequest{Parent: "projects/p1/secrets/nope", Payload: &secretmanagerpb.SecretPayload{Data: data}}); code(err) != codes.NotFound {
		t.Errorf("add to a missing secret = %v", err)
	}
	acc, err := c.AccessSecretVersion(ctx, &secretmanagerpb.AccessSecretVersionRequest{Name: name + "/versions/latest"})
	if err != nil || acc.GetName() != "projects/42/secrets/db/versions/2" || len(acc.GetPayload().GetData()) != MaxPayload || acc.GetPayload().DataCrc32C == nil {
		t.Fatalf("access latest = %v, %v", acc.GetName(), err)
	}
	if _, err := c.DisableSecretVersion(ctx, &secretmanagerpb.DisableSecretVersionRequest{Name: name + "/versions/2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AccessSecretVersion(ctx, &secretmanagerpb.AccessSecretVersionRequest{Name: name + "/versions/latest"}); code(err) != codes.FailedPrecondition {
		t.Fatalf("access of a disabled latest = %v", err)
	}
	acc, err = c.AccessSecretVersion(ctx, &secretmanagerpb.AccessSecretVersionRequest{Name: name + "/versions/1"})
	if err != nil || string(acc.GetPayload().GetData()) != "v1" || acc.GetPayload().GetDataCrc32C() != *crc(data) {
		t.Fatalf("access 1 = %v, %v", acc, err)
	}
	if _, err := c.AccessSecretVersion(ctx, &secretmanagerpb.AccessSecretVersionRequest{Name: name + "/versions/9"}); code(err) != codes.NotFound {
		t.Fatalf("access 9 = %v", err)
	}
	gv, err := c.GetSecretVersion(ctx, &secretmanagerpb.GetSecretVersionRequest{Name: name + "/versions/latest"})
	if err != nil || gv.GetState() != secretmanagerpb.SecretVersion_DISABLED {
		t.Fatalf("get latest = %v, %v", gv, err)
	}
	var states []string
	it := c.ListSecretVersions(ctx, &secretmanagerpb.ListSecretVersionsRequest{Parent: name, PageSize: 1})
	for {
		v, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		states = append(states, v.GetName()[strings.LastIndex(v.GetName(), "/")+1:]+"="+v.GetState().String())
	}
	if fmt.Sprint(states) != "[2=DISABLED 1=ENABLED]" {
		t.Fatalf("versions, newest first = %v", states)
	}
	it = c.ListSecretVersions(ctx, &secretmanagerpb.ListSecretVersionsRequest{Parent: name, Filter: "state:ENABLED"})
	if v, err := it.Next(); err != nil || !strings.HasSuffix(v.GetName(), "/1") {
		t.Fatalf("enabled versions = %v, %v", v, err)
	}
	if _, err := c.DestroySecretVersion(ctx, &secretmanagerpb.DestroySecretVersionRequest{Name: name + "/versions/1", Etag: `"stale"`}); code(err) != codes.FailedPrecondition {
		t.Fatalf("destroy with a stale etag = %v", err)
	}

	// UpdateSecret: labels with an update mask and an etag.
	got, err := c.GetSecret(ctx, &secretmanagerpb.GetSecretRequest{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	upd, err := c.UpdateSecret(ctx, &secretmanagerpb.UpdateSecretRequest{
		Secret:     &secretmanagerpb.Secret{Name: name, Labels: map[string]string{"env": "dev"}, Etag: got.GetEtag()},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"labels"}},
	})
	if err != nil || upd.GetLabels()["env"] != "dev" || upd.GetEtag() == got.GetEtag() {
		t.Fatalf("update = %v, %v", upd, err)
	}
	_, err = c.UpdateSecret(ctx, &secretmanagerpb.UpdateSecretRequest{
		Secret:     &secretmanagerpb.Secret{Name: name, Labels: map[string]string{"env": "x"}, Etag: got.GetEtag()},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"labels"}},
	})
	if code(err) != codes.FailedPrecondition {
		t.Fatalf("update with a stale etag = %v", err)
	}

	// DeleteSecret: the etag is checked; deletion is immediate.
	if err := c.DeleteSecret(ctx, &secretmanagerpb.DeleteSecretRequest{Name: name, Etag: got.GetEtag()}); code(err) != codes.FailedPrecondition {
		t.Fatalf("delete with a stale etag = %v", err)
	}
	if err := c.DeleteSecret(ctx, &secretmanagerpb.DeleteSecretRequest{Name: name, Etag: upd.GetEtag()}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetSecret(ctx, &secretmanagerpb.GetSecretRequest{Name: name}); code(err) != codes.NotFound {
		t.Fatalf("get after delete = %v", err)
	}
	if _, err := c.AccessSecretVersion(ctx, &secretmanagerpb.AccessSecretVersionRequest{Name: name + "/versions/latest"}); code(err) != codes.NotFound {
		t.Fatalf("access after delete = %v", err)
	}
	for _, call := range s.Calls() {
		if !call.SelfSignedJWT || call.Principal != s.ServiceAccountEmail("test") {
			t.Fatalf("%s was not authenticated by a self-signed JWT: %+v", call.Method, call)
		}
	}
	if s.Count("Token") != 0 {
		t.Fatal("the SDK's default authentication asked the token endpoint")
	}
}

// TestListSecrets: pages newest first, filters, page tokens bound to
// their filter.
func TestListSecrets(t *testing.T) {
	s := newServer(t, Options{MaxPageSize: 2})
	c := client(t, s)
	ctx := context.Background()
	for i := range 5 {
		labels := map[string]string{"managed-by": "secretsync", "n": fmt.Sprint(i)}
		if i%2 == 1 {
			labels = map[string]string{"other": ""}
		}
		if _, err := s.Put(fmt.Sprint("s", i), "v", labels); err != nil {
			t.Fatal(err)
		}
	}
	list := func(filter string) []string {
		var out []string
		it := c.ListSecrets(ctx, &secretmanagerpb.ListSecretsRequest{Parent: "projects/test-project", Filter: filter})
		for {
			sec, err := it.Next()
			if errors.Is(err, iterator.Done) {
				return out
			}
			if err != nil {
				t.Fatalf("filter %q: %v", filter, err)
			}
			out = append(out, sec.GetName()[strings.LastIndex(sec.GetName(), "/")+1:])
		}
	}
	s.ResetCounts()
	if got := fmt.Sprint(list("")); got != "[s4 s3 s2 s1 s0]" {
		t.Fatalf("all = %v", got)
	}
	if n := s.Count("ListSecrets"); n != 3 {
		t.Fatalf("ListSecrets = %d pages, want 3", n)
	}
	for filter, want := range map[string]string{
		"labels.managed-by=secretsync":                     "[s4 s2 s0]",
		"labels.managed-by=secretsync AND labels.n=2":      "[s2]",
		"labels.managed-by=secretsync AND NOT labels.n=2":  "[s4 s0]",
		"labels.n=0 OR labels.n=4":                         "[s4 s0]",
		"labels.other:*":                                   "[s3 s1]",
		"labels:other":                                     "[s3 s1]",
		"name:s3":                                          "[s3]",
		"labels.n = \"4\"":                                 "[s4]",
		"(labels.n=0 OR labels.n=2) labels.managed-by:*":   "[s2 s0]",
		"create_time>2000-01-01T00:00:00Z AND labels.n!=0": "[s4 s3 s2 s1]",
	} {
		if got := fmt.Sprint(list(filter)); got != want {
			t.Errorf("filter %q = %v, want %v", filter, got, want)
		}
	}
	for _, bad := range []string{"labels.n=", "nosuchfield=1", "(labels.n=1", "AND"} {
		it := c.ListSecrets(ctx, &secretmanagerpb.ListSecretsRequest{Parent: "projects/test-project", Filter: bad})
		if _, err := it.Next(); code(err) != codes.InvalidArgument {
			t.Errorf("filter %q = %v, want InvalidArgument", bad, err)
		}
	}
	// A page token belongs to the listing it continues.
	it := c.ListSecrets(ctx, &secretmanagerpb.ListSecretsRequest{Parent: "projects/test-project", PageSize: 1})
	if _, err := it.Next(); err != nil {
		t.Fatal(err)
	}
	token := it.PageInfo().Token
	if token == "" {
		t.Fatal("no next page token")
	}
	mixed := c.ListSecrets(ctx, &secretmanagerpb.ListSecretsRequest{Parent: "projects/test-project", PageToken: token, Filter: "labels.other:*"})
	if _, err := mixed.Next(); code(err) != codes.InvalidArgument {
		t.Fatalf("a page token with another filter = %v", err)
	}
	pager := c.ListSecrets(ctx, &secretmanagerpb.ListSecretsRequest{Parent: "projects/test-project", PageToken: "garbage"})
	if _, err := pager.Next(); code(err) != codes.InvalidArgument {
		t.Fatalf("a garbage page token = %v", err)
	}
}

// TestAuthentication: the token endpoint grants access tokens for signed
// assertions only, and RPCs need a valid credential and the permission.
func TestAuthentication(t *testing.T) {
	s := newServer(t, Options{})
	ctx := context.Background()

	// Raw token requests, as the SDK's auth library sends them.
	post := func(form url.Values) (int, map[string]any) {
		resp, err := s.HTTPClient().PostForm(s.TokenURL(), form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	if st, body := post(url.Values{"grant_type": {"password"}}); st != http.StatusBadRequest || body["error"] != "unsupported_grant_type" {
		t.Fatalf("password grant = %d %v", st, body)
	}
	if st, body := post(url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {"a.b.c"}}); st != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("garbage assertion = %d %v", st, body)
	}

	// No credential at all.
	c, err := secretmanager.NewClient(ctx, append(s.ClientOptions(), option.WithoutAuthentication())...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.GetSecret(ctx, &secretmanagerpb.GetSecretRequest{Name: "projects/test-project/secrets/x"}); code(err) != codes.Unauthenticated {
		t.Fatalf("no credential = %v", err)
	}
	// A permission taken away.
	c = client(t, s)
	s.SetPermissions(s.ServiceAccountEmail("test"), PermSecretsList)
	_, err = c.GetSecret(ctx, &secretmanagerpb.GetSecretRequest{Name: "projects/test-project/secrets/x"})
	if code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), PermSecretsGet) {
		t.Fatalf("without secrets.get = %v", err)
	}
	s.SetPermissions(s.ServiceAccountEmail("test"), RoleAdmin...)
	if _, err := c.GetSecret(ctx, &secretmanagerpb.GetSecretRequest{Name: "projects/test-project/secrets/x"}); code(err) != codes.NotFound {
		t.Fatalf("with secrets.get = %v", err)
	}
}

// TestFaults: injected codes, and the SDK's retry of AccessSecretVersion.
func TestFaults(t *testing.T) {
	s := newServer(t, Options{})
	c := client(t, s)
	ctx := context.Background()
	if _, err := s.Put("k", "v", nil); err != nil {
		t.Fatal(err)
	}
	s.FailNext("GetSecret", 1, codes.Unavailable)
	if _, err := c.GetSecret(ctx, &secretmanagerpb.GetSecretRequest{Name: "projects/test-project/secrets/k"}); code(err) != codes.Unavailable {
		t.Fatalf("GetSecret = %v, want Unavailable (not retried)", err)
	}
	s.ResetCounts()
	s.FailNext("AccessSecretVersion", 1, codes.ResourceExhausted)
	if _, err := c.AccessSecretVersion(ctx, &secretmanagerpb.AccessSecretVersionRequest{Name: "projects/test-project/secrets/k/versions/latest"}); err != nil {
		t.Fatalf("AccessSecretVersion after one RESOURCE_EXHAUSTED = %v", err)
	}
	if n := s.Count("AccessSecretVersion"); n != 2 {
		t.Fatalf("AccessSecretVersion = %d requests, want 2", n)
	}
}

func TestParseFilter(t *testing.T) {
	fields := func(m map[string]string) fieldFunc {
		return func(name string) (string, bool, error) {
			if name == "labels" {
				var keys []string
				for k := range m {
					if rest, ok := strings.CutPrefix(k, "labels."); ok {
						keys = append(keys, rest)
					}
				}
				return strings.Join(keys, "\x00"), true, nil
			}
			v, ok := m[name]
			return v, ok, nil
		}
	}
	res := map[string]string{"labels.a": "1", "labels.b": "x-y", "state": "ENABLED", "name": "projects/1/secrets/abc"}
	for src, want := range map[string]bool{
		"":                             true,
		"labels.a=1":                   true,
		"labels.a=2":                   false,
		"labels.b=x-y":                 true,
		"labels.a=1 AND state:ENABLED": true,
		"labels.a=2 OR state=ENABLED":  true,
		"NOT labels.a=1":               false,
		"labels.c:*":                   false,
		"labels:b":                     true,
		"name:abc":                     true,
		"labels.a=2 AND labels.b=x-y OR state=ENABLED": false, // OR binds tighter
		"state != DISABLED":                            true,
	} {
		f, err := parseFilter(src)
		if err != nil {
			t.Errorf("parseFilter(%q): %v", src, err)
			continue
		}
		got, err := f.match(fields(res))
		if err != nil || got != want {
			t.Errorf("%q = %v, %v; want %v", src, got, err, want)
		}
	}
}
