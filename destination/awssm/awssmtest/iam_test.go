package awssmtest_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"

	"github.com/secretsync/secretsync/destination/awssm/awssmtest"
)

// clientAs returns an SDK client of srv signing with the access key id.
func clientAs(srv *awssmtest.Server, id, key string) *secretsmanager.Client {
	return srv.Client(fastRetries, func(o *secretsmanager.Options) {
		o.Credentials = credentials.NewStaticCredentialsProvider(id, key, "")
	})
}

func tag(k, v string) types.Tag { return types.Tag{Key: aws.String(k), Value: aws.String(v)} }

// wantDenied checks that err is AWS's AccessDeniedException for action.
func wantDenied(t *testing.T, what string, err error, action string) {
	t.Helper()
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != "AccessDeniedException" ||
		!strings.Contains(api.ErrorMessage(), "is not authorized to perform: "+action+" ") {
		t.Fatalf("%s: %v, want AccessDeniedException for %s", what, err, action)
	}
}

// An access key's policy: its actions are allowed, the others denied with
// AWS's error, which the SDK does not retry; other keys are not affected.
func TestAllow(t *testing.T) {
	srv, admin := start(t, awssmtest.Options{})
	ctx := context.Background()
	id, key := srv.NewAccessKey("app")
	c := clientAs(srv, id, key)
	must[*secretsmanager.CreateSecretOutput](t)(c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("a"), SecretString: aws.String("1")}))

	srv.Allow(id, "secretsmanager:ListSecrets", "secretsmanager:Get*")
	must[*secretsmanager.ListSecretsOutput](t)(c.ListSecrets(ctx, &secretsmanager.ListSecretsInput{}))
	must[*secretsmanager.GetSecretValueOutput](t)(c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("a")}))
	before, _ := srv.Get("a")
	srv.ResetCounts()
	_, err := c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("a"), SecretString: aws.String("2")})
	wantDenied(t, "PutSecretValue", err, "secretsmanager:PutSecretValue")
	if n := srv.Count(""); n != 1 {
		t.Fatalf("%d requests; AccessDeniedException is not retried", n)
	}
	status, body, _ := rawCallAs(t, srv, id, key, "PutSecretValue", `{"SecretId":"a","SecretString":"2"}`)
	want := "User: arn:aws:iam::123456789012:user/app is not authorized to perform: secretsmanager:PutSecretValue on resource: a because no identity-based policy allows the secretsmanager:PutSecretValue action"
	if status != 400 || body["__type"] != "AccessDeniedException" || body["message"] != want {
		t.Fatalf("denied: %d %v", status, body)
	}
	// A secret that does not exist is denied all the same: IAM comes first.
	_, err = c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("missing")})
	wantDenied(t, "DescribeSecret of a missing secret", err, "secretsmanager:DescribeSecret")
	if after, _ := srv.Get("a"); after.VersionID != before.VersionID {
		t.Fatal("a denied PutSecretValue wrote")
	}
	// No resource in the message of an action that takes none.
	srv.Allow(id)
	_, err = c.ListSecrets(ctx, &secretsmanager.ListSecretsInput{})
	wantDenied(t, "ListSecrets", err, "secretsmanager:ListSecrets")
	if strings.Contains(err.Error(), "on resource") {
		t.Fatalf("ListSecrets denied: %v", err)
	}
	// The server's own key can still do everything.
	must[*secretsmanager.PutSecretValueOutput](t)(admin.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("a"), SecretString: aws.String("2")}))
	// An empty policy allows everything again.
	if err := srv.SetPolicy(id, ""); err != nil {
		t.Fatal(err)
	}
	must[*secretsmanager.ListSecretsOutput](t)(c.ListSecrets(ctx, &secretsmanager.ListSecretsInput{}))
}

// The actions AWS documents beside the operation's own: TagResource for
// tags at creation; GetSecretValue on each secret BatchGetSecretValue
// reads, and ListSecrets with its filters.
func TestDependentActions(t *testing.T) {
	srv, _ := start(t, awssmtest.Options{})
	ctx := context.Background()
	id, key := srv.NewAccessKey("app")
	c := clientAs(srv, id, key)

	srv.Allow(id, "secretsmanager:CreateSecret")
	must[*secretsmanager.CreateSecretOutput](t)(c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("plain"), SecretString: aws.String("1")}))
	_, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("tagged"), SecretString: aws.String("1"), Tags: []types.Tag{tag("k", "v")}})
	wantDenied(t, "CreateSecret with tags", err, "secretsmanager:TagResource")
	if _, ok := srv.Get("tagged"); ok {
		t.Fatal("a denied CreateSecret created the secret")
	}
	srv.Allow(id, "secretsmanager:CreateSecret", "secretsmanager:TagResource")
	must[*secretsmanager.CreateSecretOutput](t)(c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("tagged"), SecretString: aws.String("1"), Tags: []types.Tag{tag("k", "v")}}))

	srv.Allow(id, "secretsmanager:BatchGetSecretValue")
	out := must[*secretsmanager.BatchGetSecretValueOutput](t)(c.BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{SecretIdList: []string{"plain", "missing"}}))
	if len(out.SecretValues) != 0 || len(out.Errors) != 2 {
		t.Fatalf("BatchGetSecretValue without GetSecretValue: %+v", out)
	}
	for _, e := range out.Errors {
		if aws.ToString(e.ErrorCode) != "AccessDeniedException" || !strings.Contains(aws.ToString(e.Message), "secretsmanager:GetSecretValue on resource: "+aws.ToString(e.SecretId)+" ") {
			t.Fatalf("error entry %s: %s", aws.ToString(e.ErrorCode), aws.ToString(e.Message))
		}
	}
	_, err = c.BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{Filters: []types.Filter{{Key: types.FilterNameStringTypeName, Values: []string{"p"}}}})
	wantDenied(t, "BatchGetSecretValue with filters", err, "secretsmanager:ListSecrets")

	// GetSecretValue on one secret only: the other is an error entry.
	if err := srv.SetPolicy(id, `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":["secretsmanager:BatchGetSecretValue","secretsmanager:ListSecrets"],"Resource":"*"},
		{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"arn:aws:secretsmanager:us-east-1:123456789012:secret:plain-??????"}]}`); err != nil {
		t.Fatal(err)
	}
	out = must[*secretsmanager.BatchGetSecretValueOutput](t)(c.BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{SecretIdList: []string{"plain", "tagged"}}))
	if len(out.SecretValues) != 1 || aws.ToString(out.SecretValues[0].Name) != "plain" || len(out.Errors) != 1 || aws.ToString(out.Errors[0].SecretId) != "tagged" {
		t.Fatalf("BatchGetSecretValue with GetSecretValue on plain only: %+v", out)
	}
	out = must[*secretsmanager.BatchGetSecretValueOutput](t)(c.BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{Filters: []types.Filter{{Key: types.FilterNameStringTypeAll, Values: []string{""}}}}))
	if len(out.SecretValues) != 1 || len(out.Errors) != 1 {
		t.Fatalf("BatchGetSecretValue by filter with GetSecretValue on plain only: %+v", out)
	}
}

// Conditions on tags and resource patterns, and an explicit deny.
func TestPolicyConditions(t *testing.T) {
	srv, _ := start(t, awssmtest.Options{})
	ctx := context.Background()
	id, key := srv.NewAccessKey("app")
	c := clientAs(srv, id, key)
	srv.Put("app/ours", "1", map[string]string{"managed-by": "me"})
	srv.Put("app/theirs", "1", map[string]string{"managed-by": "someone"})
	srv.Put("other/ours", "1", map[string]string{"managed-by": "me"})
	err := srv.SetPolicy(id, `{
	  "Version": "2012-10-17",
	  "Statement": [
	    {"Effect": "Allow", "Action": ["secretsmanager:CreateSecret", "secretsmanager:TagResource"],
	     "Resource": "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/*",
	     "Condition": {"StringEquals": {"aws:RequestTag/managed-by": "me"}}},
	    {"Effect": "Allow", "Action": ["secretsmanager:PutSecretValue", "secretsmanager:TagResource", "secretsmanager:DeleteSecret"],
	     "Resource": "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/*",
	     "Condition": {"StringEquals": {"aws:ResourceTag/managed-by": "me"}}},
	    {"Effect": "Deny", "Action": "secretsmanager:DeleteSecret", "Resource": "*",
	     "Condition": {"StringLike": {"secretsmanager:ResourceTag/keep": "*"}}}
	  ]
	}`)
	if err != nil {
		t.Fatal(err)
	}
	put := func(id string) error {
		_, err := c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(id), SecretString: aws.String("2")})
		return err
	}
	must[*secretsmanager.PutSecretValueOutput](t)(c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("app/ours"), SecretString: aws.String("2")}))
	wantDenied(t, "put to a secret without the tag", put("app/theirs"), "secretsmanager:PutSecretValue")
	wantDenied(t, "put outside the prefix", put("other/ours"), "secretsmanager:PutSecretValue")
	wantDenied(t, "put to a missing secret", put("app/missing"), "secretsmanager:PutSecretValue")

	create := func(name string, tags ...types.Tag) error {
		_, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String("1"), Tags: tags})
		return err
	}
	if err := create("app/new", tag("managed-by", "me")); err != nil {
		t.Fatalf("create with the tag: %v", err)
	}
	wantDenied(t, "create without tags", create("app/new2"), "secretsmanager:CreateSecret")
	wantDenied(t, "create with another tag value", create("app/new2", tag("managed-by", "you")), "secretsmanager:CreateSecret")
	// A name that is taken is authorized as a new secret, then refused.
	wantCode(t, "create of a taken name", create("app/theirs", tag("managed-by", "me")), "ResourceExistsException")

	// TagResource: allowed by the request's tags or by the secret's.
	tagRes := func(id string, tags ...types.Tag) error {
		_, err := c.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String(id), Tags: tags})
		return err
	}
	if err := tagRes("app/ours", tag("keep", "yes")); err != nil {
		t.Fatalf("tag a secret of ours: %v", err)
	}
	wantDenied(t, "tag a secret of theirs", tagRes("app/theirs", tag("x", "y")), "secretsmanager:TagResource")
	if err := tagRes("app/theirs", tag("managed-by", "me")); err != nil {
		t.Fatalf("mark a secret of theirs (allowed by the request tag): %v", err)
	}

	// The explicit deny wins over the allow.
	_, err = c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("app/ours")})
	wantDenied(t, "delete a secret tagged keep", err, "secretsmanager:DeleteSecret")
	if !strings.Contains(err.Error(), "with an explicit deny in an identity-based policy") {
		t.Fatalf("explicit deny: %v", err)
	}
	must[*secretsmanager.DeleteSecretOutput](t)(c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("app/new")}))
}

// A policy that uses what the server does not model is refused.
func TestSetPolicyRefuses(t *testing.T) {
	srv, _ := start(t, awssmtest.Options{})
	id, _ := srv.NewAccessKey("app")
	for _, doc := range []string{
		`not json`,
		`{"Statement":[]}`,
		`{"Version":"2012-10-17","Statement":{"Effect":"Allow","NotAction":"secretsmanager:*","Resource":"*"}}`,
		`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"secretsmanager:*","Resource":"*","Principal":"*"}}`,
		`{"Version":"2012-10-17","Statement":{"Effect":"Maybe","Action":"secretsmanager:*","Resource":"*"}}`,
		`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"secretsmanager:*"}}`,
		`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"secretsmanager:*","Resource":"*","Condition":{"ForAllValues:StringEquals":{"aws:TagKeys":["a"]}}}}`,
		`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"secretsmanager:*","Resource":"*","Condition":{"StringEquals":{"secretsmanager:Name":"a"}}}}`,
	} {
		if err := srv.SetPolicy(id, doc); err == nil {
			t.Errorf("SetPolicy(%s) accepted", doc)
		}
	}
	if err := srv.SetPolicy("AKIAUNKNOWN", `{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}`); err == nil {
		t.Error("SetPolicy of an unknown key accepted")
	}
}
