package awssmtest_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"

	"github.com/secretsync/secretsync/destination/awssm/awssmtest"
)

func fastRetries(o *secretsmanager.Options) {
	o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
		so.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return time.Millisecond, nil })
		so.RateLimiter = ratelimit.None
	})
}

func start(t *testing.T, opts awssmtest.Options) (*awssmtest.Server, *secretsmanager.Client) {
	t.Helper()
	srv := awssmtest.NewServer(&opts)
	t.Cleanup(srv.Close)
	return srv, srv.Client(fastRetries)
}

// code returns the AWS error code of err ("" for none).
func code(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorCode()
	}
	return ""
}

func wantCode(t *testing.T, what string, err error, want string) {
	t.Helper()
	if got := code(err); got != want {
		t.Fatalf("%s: error %v (code %q), want code %s", what, err, got, want)
	}
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// rawCall sends a request as the JSON protocol frames it, signed with
// the server's key unless sign is false, and returns status and body.
func rawCall(t *testing.T, srv *awssmtest.Server, op, body string, sign bool) (int, map[string]any, http.Header) {
	t.Helper()
	id, key := "", ""
	if sign {
		id, key = srv.AccessKey()
	}
	return rawCallAs(t, srv, id, key, op, body)
}

// rawCallAs is rawCall signed with the access key id (unsigned when id is
// empty).
func rawCallAs(t *testing.T, srv *awssmtest.Server, id, key, op, body string) (int, map[string]any, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "secretsmanager."+op)
	if id != "" {
		sum := sha256.Sum256([]byte(body))
		err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: id, SecretAccessKey: key},
			req, hex.EncodeToString(sum[:]), "secretsmanager", srv.Region(), time.Now())
		if err != nil {
			t.Fatal(err)
		}
	}
	resp, err := srv.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s: body %q is not a JSON object: %v", op, raw, err)
	}
	return resp.StatusCode, out, resp.Header
}

func TestWireShapes(t *testing.T) {
	srv, _ := start(t, awssmtest.Options{})

	status, body, _ := rawCall(t, srv, "DescribeSecret", `{"SecretId":"x"}`, false)
	if status != 400 || body["__type"] != "MissingAuthenticationTokenException" {
		t.Fatalf("unsigned request: %d %v", status, body)
	}

	status, body, hdr := rawCall(t, srv, "DescribeSecret", `{"SecretId":"missing"}`, true)
	if status != 400 || body["__type"] != "ResourceNotFoundException" || body["Message"] != "Secrets Manager can't find the specified secret." {
		t.Fatalf("missing secret: %d %v", status, body)
	}
	if ct := hdr.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		t.Fatalf("Content-Type %q", ct)
	}

	status, body, _ = rawCall(t, srv, "CreateSecret", `{"Name":"app/db","SecretString":"pw","ClientRequestToken":"00000000-0000-4000-8000-000000000001","Tags":[{"Key":"k","Value":"v"}]}`, true)
	if status != 200 || body["VersionId"] != "00000000-0000-4000-8000-000000000001" || !strings.HasPrefix(body["ARN"].(string), "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db-") {
		t.Fatalf("CreateSecret: %d %v", status, body)
	}
	status, body, _ = rawCall(t, srv, "DescribeSecret", `{"SecretId":"app/db"}`, true)
	if status != 200 {
		t.Fatalf("DescribeSecret: %d %v", status, body)
	}
	if _, ok := body["CreatedDate"].(float64); !ok {
		t.Fatalf("CreatedDate is not epoch seconds: %v", body["CreatedDate"])
	}
	stages, _ := body["VersionIdsToStages"].(map[string]any)
	if got := stages["00000000-0000-4000-8000-000000000001"]; !slices.Equal(toStrings(got), []string{"AWSCURRENT"}) {
		t.Fatalf("VersionIdsToStages = %v", body["VersionIdsToStages"])
	}

	status, body, _ = rawCall(t, srv, "PutSecretValue", `{"SecretId":"app/db"}`, true)
	if status != 400 || body["__type"] != "InvalidParameterException" {
		t.Fatalf("PutSecretValue without a value: %d %v", status, body)
	}
	status, body, _ = rawCall(t, srv, "NoSuchOperation", `{}`, true)
	if status != 400 || body["__type"] != "UnknownOperationException" {
		t.Fatalf("unknown operation: %d %v", status, body)
	}
}

func toStrings(v any) []string {
	l, _ := v.([]any)
	out := make([]string, len(l))
	for i, x := range l {
		out[i], _ = x.(string)
	}
	return out
}

func TestSignature(t *testing.T) {
	srv, _ := start(t, awssmtest.Options{})
	ctx := context.Background()
	id, key := srv.AccessKey()
	for _, tc := range []struct {
		name, id, key, region, want string
	}{
		{"wrong secret key", id, key + "x", srv.Region(), "InvalidSignatureException"},
		{"unknown key id", "AKIANOTKNOWN", key, srv.Region(), "UnrecognizedClientException"},
		{"wrong region", id, key, "eu-west-1", "InvalidSignatureException"},
	} {
		c := srv.Client(fastRetries, func(o *secretsmanager.Options) {
			o.Credentials = credentials.NewStaticCredentialsProvider(tc.id, tc.key, "")
			o.Region = tc.region
		})
		_, err := c.ListSecrets(ctx, &secretsmanager.ListSecretsInput{})
		wantCode(t, tc.name, err, tc.want)
	}
	if _, err := srv.Client().ListSecrets(ctx, &secretsmanager.ListSecretsInput{}); err != nil {
		t.Fatalf("a well-signed request: %v", err)
	}
}

func TestTypedErrors(t *testing.T) {
	_, c := start(t, awssmtest.Options{})
	ctx := context.Background()
	_, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("nope")})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("GetSecretValue of a missing secret: %v, want *types.ResourceNotFoundException", err)
	}
	must[*secretsmanager.CreateSecretOutput](t)(c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("a"), SecretString: aws.String("1")}))
	_, err = c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("a"), SecretString: aws.String("2")})
	var ex *types.ResourceExistsException
	if !errors.As(err, &ex) {
		t.Fatalf("CreateSecret of an existing name: %v, want *types.ResourceExistsException", err)
	}
	_, err = c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("a"), RecoveryWindowInDays: aws.Int64(7), ForceDeleteWithoutRecovery: aws.Bool(true)})
	var ip *types.InvalidParameterException
	if !errors.As(err, &ip) || !strings.Contains(ip.ErrorMessage(), "ForceDeleteWithoutRecovery") {
		t.Fatalf("DeleteSecret with both: %v, want *types.InvalidParameterException", err)
	}
	must[*secretsmanager.DeleteSecretOutput](t)(c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("a")}))
	_, err = c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("a"), SecretString: aws.String("3")})
	var ir *types.InvalidRequestException
	if !errors.As(err, &ir) || !strings.Contains(ir.ErrorMessage(), "marked for deletion") {
		t.Fatalf("PutSecretValue on a deleted secret: %v, want *types.InvalidRequestException", err)
	}
}

func TestVersionsAndStages(t *testing.T) {
	srv, c := start(t, awssmtest.Options{})
	ctx := context.Background()
	v1 := must[*secretsmanager.CreateSecretOutput](t)(c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("s"), SecretString: aws.String("one")})).VersionId
	v2 := must[*secretsmanager.PutSecretValueOutput](t)(c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("s"), SecretString: aws.String("two")})).VersionId
	out3 := must[*secretsmanager.PutSecretValueOutput](t)(c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("s"), SecretString: aws.String("three")}))
	if !slices.Equal(out3.VersionStages, []string{"AWSCURRENT"}) {
		t.Fatalf("new version's stages = %v", out3.VersionStages)
	}
	desc := must[*secretsmanager.DescribeSecretOutput](t)(c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("s")}))
	want := map[string][]string{*out3.VersionId: {"AWSCURRENT"}, *v2: {"AWSPREVIOUS"}}
	if len(desc.VersionIdsToStages) != 2 || !slices.Equal(desc.VersionIdsToStages[*out3.VersionId], want[*out3.VersionId]) || !slices.Equal(desc.VersionIdsToStages[*v2], want[*v2]) {
		t.Fatalf("VersionIdsToStages = %v, want %v (deprecated %s left out)", desc.VersionIdsToStages, want, *v1)
	}
	prev := must[*secretsmanager.GetSecretValueOutput](t)(c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("s"), VersionStage: aws.String("AWSPREVIOUS")}))
	if aws.ToString(prev.SecretString) != "two" {
		t.Fatalf("AWSPREVIOUS holds %q", aws.ToString(prev.SecretString))
	}
	old := must[*secretsmanager.GetSecretValueOutput](t)(c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: v1ARN(t, c, "s"), VersionId: v1}))
	if aws.ToString(old.SecretString) != "one" || len(old.VersionStages) != 0 {
		t.Fatalf("deprecated version: %q %v", aws.ToString(old.SecretString), old.VersionStages)
	}
	all := must[*secretsmanager.ListSecretVersionIdsOutput](t)(c.ListSecretVersionIds(ctx, &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String("s"), IncludeDeprecated: aws.Bool(true)}))
	labeled := must[*secretsmanager.ListSecretVersionIdsOutput](t)(c.ListSecretVersionIds(ctx, &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String("s")}))
	if len(all.Versions) != 3 || len(labeled.Versions) != 2 {
		t.Fatalf("ListSecretVersionIds: %d with deprecated, %d without", len(all.Versions), len(labeled.Versions))
	}
	if got, _ := srv.Get("s"); got.Value != "three" || got.Versions != 3 || got.PreviousVersionID != *v2 {
		t.Fatalf("Get = %+v", got)
	}
}

// v1ARN returns the ARN of a secret, to show that ids may be ARNs.
func v1ARN(t *testing.T, c *secretsmanager.Client, name string) *string {
	t.Helper()
	return must[*secretsmanager.DescribeSecretOutput](t)(c.DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})).ARN
}

func TestVersionQuota(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu gosync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	srv, c := start(t, awssmtest.Options{MaxVersions: 3, Now: clock})
	ctx := context.Background()
	must[*secretsmanager.CreateSecretOutput](t)(c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("q"), SecretString: aws.String("0")}))
	for i := range 2 {
		must[*secretsmanager.PutSecretValueOutput](t)(c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("q"), SecretString: aws.String(string(rune('1' + i)))}))
	}
	_, err := c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("q"), SecretString: aws.String("x")}, func(o *secretsmanager.Options) { o.RetryMaxAttempts = 1 })
	var le *types.LimitExceededException
	if !errors.As(err, &le) {
		t.Fatalf("a fourth version within a day: %v, want LimitExceededException", err)
	}
	mu.Lock()
	now = now.Add(25 * time.Hour)
	mu.Unlock()
	must[*secretsmanager.PutSecretValueOutput](t)(c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("q"), SecretString: aws.String("y")}))
	if got, _ := srv.Get("q"); got.Versions != 3 || got.Value != "y" {
		t.Fatalf("after pruning: %+v", got)
	}
}

func TestIdempotency(t *testing.T) {
	srv, c := start(t, awssmtest.Options{})
	ctx := context.Background()
	tok := "11111111-1111-4111-8111-111111111111"
	create := &secretsmanager.CreateSecretInput{Name: aws.String("i"), SecretString: aws.String("v"), ClientRequestToken: aws.String(tok)}
	a := must[*secretsmanager.CreateSecretOutput](t)(c.CreateSecret(ctx, create))
	b := must[*secretsmanager.CreateSecretOutput](t)(c.CreateSecret(ctx, create))
	if aws.ToString(a.VersionId) != tok || aws.ToString(b.VersionId) != tok {
		t.Fatalf("CreateSecret twice with one token: %v, %v", aws.ToString(a.VersionId), aws.ToString(b.VersionId))
	}
	_, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("i"), SecretString: aws.String("other"), ClientRequestToken: aws.String(tok)})
	wantCode(t, "CreateSecret with the token and another value", err, "ResourceExistsException")

	tok2 := "22222222-2222-4222-8222-222222222222"
	put := &secretsmanager.PutSecretValueInput{SecretId: aws.String("i"), SecretString: aws.String("w"), ClientRequestToken: aws.String(tok2)}
	must[*secretsmanager.PutSecretValueOutput](t)(c.PutSecretValue(ctx, put))
	again := must[*secretsmanager.PutSecretValueOutput](t)(c.PutSecretValue(ctx, put))
	if aws.ToString(again.VersionId) != tok2 {
		t.Fatalf("PutSecretValue again = %v", aws.ToString(again.VersionId))
	}
	_, err = c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("i"), SecretString: aws.String("x"), ClientRequestToken: aws.String(tok2)})
	wantCode(t, "PutSecretValue with the token and another value", err, "ResourceExistsException")
	if got, _ := srv.Get("i"); got.Versions != 2 || got.Value != "w" || got.PreviousVersionID != tok {
		t.Fatalf("after idempotent calls: %+v", got)
	}
}

func TestDeletion(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu gosync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	srv, c := start(t, awssmtest.Options{Now: clock})
	ctx := context.Background()
	must[*secretsmanager.CreateSecretOutput](t)(c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("d"), SecretString: aws.String("v")}))
	_, err := c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("d"), RecoveryWindowInDays: aws.Int64(6)})
	wantCode(t, "a 6-day window", err, "InvalidParameterException")
	out := must[*secretsmanager.DeleteSecretOutput](t)(c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("d"), RecoveryWindowInDays: aws.Int64(7)}))
	if !out.DeletionDate.Equal(now.Add(7 * 24 * time.Hour)) {
		t.Fatalf("DeletionDate = %v", out.DeletionDate)
	}
	_, err = c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("d")})
	wantCode(t, "GetSecretValue of a deleted secret", err, "InvalidRequestException")
	_, err = c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("d"), SecretString: aws.String("new")})
	wantCode(t, "CreateSecret over a deleted name", err, "InvalidRequestException")
	_, err = c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("d")})
	wantCode(t, "DeleteSecret of a deleted secret", err, "InvalidRequestException")
	desc := must[*secretsmanager.DescribeSecretOutput](t)(c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("d")}))
	if desc.DeletedDate == nil {
		t.Fatal("DescribeSecret shows no DeletedDate")
	}
	if l := must[*secretsmanager.ListSecretsOutput](t)(c.ListSecrets(ctx, &secretsmanager.ListSecretsInput{})); len(l.SecretList) != 0 {
		t.Fatalf("ListSecrets lists a deleted secret")
	}
	if l := must[*secretsmanager.ListSecretsOutput](t)(c.ListSecrets(ctx, &secretsmanager.ListSecretsInput{IncludePlannedDeletion: aws.Bool(true)})); len(l.SecretList) != 1 {
		t.Fatalf("ListSecrets with IncludePlannedDeletion lists %d", len(l.SecretList))
	}
	must[*secretsmanager.RestoreSecretOutput](t)(c.RestoreSecret(ctx, &secretsmanager.RestoreSecretInput{SecretId: aws.String("d")}))
	if v := must[*secretsmanager.GetSecretValueOutput](t)(c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("d")})); aws.ToString(v.SecretString) != "v" {
		t.Fatal("the restored secret lost its value")
	}
	// The recovery window ends: the secret is purged, its name free.
	must[*secretsmanager.DeleteSecretOutput](t)(c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("d")}))
	mu.Lock()
	now = now.Add(30 * 24 * time.Hour)
	mu.Unlock()
	if _, ok := srv.Get("d"); ok {
		t.Fatal("the secret outlived its recovery window")
	}
	must[*secretsmanager.CreateSecretOutput](t)(c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("d"), SecretString: aws.String("again")}))
	// Without recovery: gone at once; again for a secret that is not there.
	must[*secretsmanager.DeleteSecretOutput](t)(c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("d"), ForceDeleteWithoutRecovery: aws.Bool(true)}))
	if _, ok := srv.Get("d"); ok {
		t.Fatal("a forced deletion left the secret")
	}
	must[*secretsmanager.DeleteSecretOutput](t)(c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("d"), ForceDeleteWithoutRecovery: aws.Bool(true)}))
	_, err = c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("d")})
	wantCode(t, "DeleteSecret of a missing secret", err, "ResourceNotFoundException")
}

func TestLimits(t *testing.T) {
	_, c := start(t, awssmtest.Options{})
	ctx := context.Background()
	create := func(name, value string, tags ...types.Tag) error {
		_, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value), Tags: tags}, func(o *secretsmanager.Options) { o.RetryMaxAttempts = 1 })
		return err
	}
	tag := func(k, v string) types.Tag { return types.Tag{Key: aws.String(k), Value: aws.String(v)} }
	wantCode(t, "a name with a space", create("a b", "v"), "ValidationException")
	wantCode(t, "a name with ':'", create("a:b", "v"), "ValidationException")
	wantCode(t, "a 513-byte name", create(strings.Repeat("n", 513), "v"), "ValidationException")
	if err := create(strings.Repeat("n", 512), "v"); err != nil {
		t.Fatalf("a 512-byte name: %v", err)
	}
	if err := create("all/chars_+=.@-OK9", strings.Repeat("x", 65536)); err != nil {
		t.Fatalf("a 64 KiB value: %v", err)
	}
	wantCode(t, "a value over 64 KiB", create("big", strings.Repeat("x", 65537)), "ValidationException")
	wantCode(t, "an empty value", create("empty", ""), "ValidationException")
	wantCode(t, "the aws: prefix", create("t1", "v", tag("aws:x", "v")), "InvalidParameterException")
	wantCode(t, "a 129-character tag key", create("t2", "v", tag(strings.Repeat("k", 129), "v")), "ValidationException")
	wantCode(t, "a 257-character tag value", create("t3", "v", tag("k", strings.Repeat("v", 257))), "ValidationException")
	var many []types.Tag
	for i := range 51 {
		many = append(many, tag("k"+strings.Repeat("x", i), "v"))
	}
	wantCode(t, "51 tags", create("t4", "v", many...), "ValidationException")
	if err := create("t5", "v", many[:50]...); err != nil {
		t.Fatalf("50 tags: %v", err)
	}
	_, err := c.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String("t5"), Tags: []types.Tag{tag("one-more", "v")}})
	wantCode(t, "a 51st tag", err, "LimitExceededException")
	ids := make([]string, 21)
	for i := range ids {
		ids[i] = "x"
	}
	_, err = c.BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{SecretIdList: ids})
	wantCode(t, "21 ids", err, "ValidationException")
}

func TestListFiltersAndPages(t *testing.T) {
	srv, c := start(t, awssmtest.Options{})
	ctx := context.Background()
	for i, n := range []string{"app/a", "app/b", "app/c", "other/d", "app/e"} {
		tags := map[string]string{"owner": "team-1"}
		if i%2 == 1 {
			tags = map[string]string{"owner": "team-2", "extra": "x"}
		}
		srv.Put(n, "v", tags)
	}
	names := func(in *secretsmanager.ListSecretsInput) []string {
		t.Helper()
		var out []string
		p := secretsmanager.NewListSecretsPaginator(c, in)
		for p.HasMorePages() {
			page := must[*secretsmanager.ListSecretsOutput](t)(p.NextPage(ctx))
			if len(page.SecretList) > 2 {
				t.Fatalf("a page of %d for MaxResults 2", len(page.SecretList))
			}
			for _, s := range page.SecretList {
				out = append(out, aws.ToString(s.Name))
			}
		}
		return out
	}
	f := func(k types.FilterNameStringType, v ...string) types.Filter { return types.Filter{Key: k, Values: v} }
	for _, tc := range []struct {
		name    string
		filters []types.Filter
		order   types.SortOrderType
		want    []string
	}{
		{"all", nil, "", []string{"app/a", "app/b", "app/c", "other/d", "app/e"}},
		{"desc", nil, types.SortOrderTypeDesc, []string{"app/e", "other/d", "app/c", "app/b", "app/a"}},
		{"name prefix", []types.Filter{f("name", "app/")}, "", []string{"app/a", "app/b", "app/c", "app/e"}},
		{"name prefix is case-sensitive", []types.Filter{f("name", "APP/")}, "", nil},
		{"tag key", []types.Filter{f("tag-key", "extra")}, "", []string{"app/b", "other/d"}},
		{"tag value prefix", []types.Filter{f("tag-value", "team-2")}, "", []string{"app/b", "other/d"}},
		{"tag key and value", []types.Filter{f("tag-key", "owner"), f("tag-value", "team-1")}, "", []string{"app/a", "app/c", "app/e"}},
		{"negation", []types.Filter{f("name", "!app/")}, "", []string{"other/d"}},
		{"either value", []types.Filter{f("name", "other/", "app/a")}, "", []string{"app/a", "other/d"}},
	} {
		got := names(&secretsmanager.ListSecretsInput{Filters: tc.filters, MaxResults: aws.Int32(2), SortOrder: tc.order})
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	_, err := c.ListSecrets(ctx, &secretsmanager.ListSecretsInput{NextToken: aws.String("garbage")})
	wantCode(t, "a bad NextToken", err, "InvalidNextTokenException")
	_, err = c.ListSecrets(ctx, &secretsmanager.ListSecretsInput{Filters: []types.Filter{f("colour", "x")}})
	wantCode(t, "an unknown filter key", err, "ValidationException")
	_, err = c.ListSecrets(ctx, &secretsmanager.ListSecretsInput{MaxResults: aws.Int32(101)})
	wantCode(t, "MaxResults 101", err, "ValidationException")

	// The server may cut pages shorter than asked, as AWS may.
	short, c2 := start(t, awssmtest.Options{MaxPageSize: 3})
	for i := range 10 {
		short.Put("s/"+string(rune('a'+i)), "v", nil)
	}
	pages, n := 0, 0
	p := secretsmanager.NewListSecretsPaginator(c2, &secretsmanager.ListSecretsInput{MaxResults: aws.Int32(100)})
	for p.HasMorePages() {
		page := must[*secretsmanager.ListSecretsOutput](t)(p.NextPage(ctx))
		pages, n = pages+1, n+len(page.SecretList)
	}
	if pages != 4 || n != 10 || short.Count("ListSecrets") != 4 {
		t.Fatalf("MaxPageSize 3: %d pages, %d secrets, %d requests", pages, n, short.Count("ListSecrets"))
	}
}

func TestBatchGetSecretValue(t *testing.T) {
	srv, c := start(t, awssmtest.Options{})
	ctx := context.Background()
	for _, n := range []string{"b/1", "b/2", "b/3", "gone"} {
		srv.Put(n, "value-of-"+n, map[string]string{"set": "b"})
	}
	srv.Delete("gone", false)
	arn := v1ARN(t, c, "b/2")
	out := must[*secretsmanager.BatchGetSecretValueOutput](t)(c.BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{SecretIdList: []string{"b/1", *arn, "missing", "gone"}}))
	if len(out.SecretValues) != 2 || aws.ToString(out.SecretValues[1].SecretString) != "value-of-b/2" || aws.ToString(out.SecretValues[1].Name) != "b/2" {
		t.Fatalf("SecretValues = %+v", out.SecretValues)
	}
	codes := map[string]string{}
	for _, e := range out.Errors {
		codes[aws.ToString(e.SecretId)] = aws.ToString(e.ErrorCode)
	}
	if codes["missing"] != "ResourceNotFoundException" || codes["gone"] != "InvalidRequestException" {
		t.Fatalf("Errors = %v", codes)
	}
	var got []string
	p := secretsmanager.NewBatchGetSecretValuePaginator(c, &secretsmanager.BatchGetSecretValueInput{
		Filters: []types.Filter{{Key: types.FilterNameStringTypeTagValue, Values: []string{"b"}}}, MaxResults: aws.Int32(2)})
	for p.HasMorePages() {
		for _, v := range must[*secretsmanager.BatchGetSecretValueOutput](t)(p.NextPage(ctx)).SecretValues {
			got = append(got, aws.ToString(v.Name))
		}
	}
	if !slices.Equal(got, []string{"b/1", "b/2", "b/3"}) {
		t.Fatalf("by filter: %v", got)
	}
	_, err := c.BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{SecretIdList: []string{"b/1"}, Filters: []types.Filter{{Key: "name", Values: []string{"b"}}}})
	wantCode(t, "ids and filters", err, "InvalidParameterException")
	_, err = c.BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{SecretIdList: []string{"b/1"}, MaxResults: aws.Int32(5)})
	wantCode(t, "ids and MaxResults", err, "InvalidParameterException")
}

func TestTags(t *testing.T) {
	srv, c := start(t, awssmtest.Options{})
	ctx := context.Background()
	srv.Put("t", "v", map[string]string{"a": "1"})
	must[*secretsmanager.TagResourceOutput](t)(c.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String("t"), Tags: []types.Tag{{Key: aws.String("a"), Value: aws.String("2")}, {Key: aws.String("b"), Value: aws.String("")}}}))
	must[*secretsmanager.UntagResourceOutput](t)(c.UntagResource(ctx, &secretsmanager.UntagResourceInput{SecretId: aws.String("t"), TagKeys: []string{"b", "absent"}}))
	if got, _ := srv.Get("t"); len(got.Tags) != 1 || got.Tags["a"] != "2" {
		t.Fatalf("tags = %v", got.Tags)
	}
}

func TestFaults(t *testing.T) {
	srv, c := start(t, awssmtest.Options{})
	ctx := context.Background()
	srv.Put("f", "v0", nil)

	// Throttled once: the SDK retries.
	srv.Inject(awssmtest.Fault{Op: "GetSecretValue", Status: http.StatusBadRequest})
	must[*secretsmanager.GetSecretValueOutput](t)(c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("f")}))
	reqs := srv.Requests()
	if len(reqs) != 2 || reqs[0].ErrorType != "ThrottlingException" || reqs[0].Status != 400 || reqs[1].Status != 200 {
		t.Fatalf("requests = %+v", reqs)
	}

	// A response lost after the write: the retry carries the same token
	// and makes no second version.
	srv.ResetCounts()
	srv.Inject(awssmtest.Fault{Op: "PutSecretValue", AfterApply: true})
	out := must[*secretsmanager.PutSecretValueOutput](t)(c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("f"), SecretString: aws.String("v1")}))
	reqs = srv.Requests()
	if len(reqs) != 2 || reqs[0].Status != 500 || reqs[0].ClientRequestToken == "" || reqs[0].ClientRequestToken != reqs[1].ClientRequestToken || reqs[1].ClientRequestToken != aws.ToString(out.VersionId) {
		t.Fatalf("requests = %+v", reqs)
	}
	if got, _ := srv.Get("f"); got.Versions != 2 || got.Value != "v1" {
		t.Fatalf("after the retried put: %+v", got)
	}

	// Failing past the SDK's attempts.
	srv.Inject(awssmtest.Fault{Times: 3})
	_, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("f")})
	wantCode(t, "three 500s", err, "InternalServiceError")

	// A delay that outlasts the caller's patience.
	srv.Inject(awssmtest.Fault{Delay: time.Minute})
	tctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := c.GetSecretValue(tctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("f")}); err == nil {
		t.Fatal("a delayed request succeeded within the caller's deadline")
	}
}

func TestValuesNeverLogged(t *testing.T) {
	srv, c := start(t, awssmtest.Options{})
	ctx := context.Background()
	const canary = "canary-7f3a9c"
	must[*secretsmanager.CreateSecretOutput](t)(c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("c"), SecretString: aws.String(canary)}))
	_, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("c"), SecretString: aws.String(canary)})
	var buf bytes.Buffer
	for _, r := range srv.Requests() {
		buf.WriteString(r.Op + r.SecretID + r.ClientRequestToken + r.ErrorType)
	}
	if strings.Contains(buf.String(), canary) || strings.Contains(err.Error(), canary) {
		t.Fatal("a value leaked into the request log or an error")
	}
}
