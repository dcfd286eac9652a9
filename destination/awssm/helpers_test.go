package awssm_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secretsync/secretsync/destination/awssm"
	"github.com/secretsync/secretsync/destination/awssm/awssmtest"
)

// fastRetries keeps the SDK's standard retryer (3 attempts, the same
// errors retried) with millisecond backoff and no retry quota, so that
// tests of faults run quickly.
func fastRetries(o *secretsmanager.Options) {
	o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
		so.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return time.Millisecond, nil })
		so.RateLimiter = ratelimit.None
	})
}

// newServer starts a local Secrets Manager for the test.
func newServer(t testing.TB, opts awssmtest.Options) *awssmtest.Server {
	t.Helper()
	srv := awssmtest.NewServer(&opts)
	t.Cleanup(srv.Close)
	return srv
}

// options returns the Options that reach srv, owned by owner.
func options(srv *awssmtest.Server, owner string) awssm.Options {
	id, key := srv.AccessKey()
	return awssm.Options{
		Region:          srv.Region(),
		AccessKeyID:     id,
		SecretAccessKey: key,
		Endpoint:        srv.URL,
		HTTPClient:      srv.HTTPClient(),
		ClientOptions:   []func(*secretsmanager.Options){fastRetries},
		Owner:           owner,
	}
}

func open(t testing.TB, opts awssm.Options) *awssm.Destination {
	t.Helper()
	d, err := awssm.New(context.Background(), &opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// owned are the tags of a secret that owner's destination owns.
func owned(owner string) map[string]string {
	return map[string]string{awssm.TagManagedBy: awssm.ManagedByValue, awssm.TagOwner: owner}
}
