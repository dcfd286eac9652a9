package awssm_test

import (
	"context"
	"fmt"
	"log"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/awssm"
	"github.com/secretsync/secretsync/destination/awssm/awssmtest"
)

// A destination over the local server of package awssmtest; against AWS,
// leave out Endpoint and HTTPClient (and the access key, to use the AWS
// default configuration).
func Example() {
	ctx := context.Background()
	srv := awssmtest.NewServer(nil)
	defer srv.Close()
	id, key := srv.AccessKey()

	d, err := awssm.New(ctx, &awssm.Options{
		Region:          srv.Region(),
		AccessKeyID:     id,
		SecretAccessKey: key,
		Endpoint:        srv.URL,
		HTTPClient:      srv.HTTPClient(),
		Owner:           "billing-prod",
		Tags:            map[string]string{"team": "billing"},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()

	// Create, then update with the version read.
	errs, err := d.Apply(ctx, []destination.Change{{Key: "billing/prod/db", Value: `{"user":"app","password":"s3cr3t"}`}})
	if err != nil || errs[0] != nil {
		log.Fatal(err, errs)
	}
	secrets, err := d.List(ctx)
	if err != nil {
		log.Fatal(err)
	}
	errs, err = d.Apply(ctx, []destination.Change{{Key: "billing/prod/db", Value: `{"user":"app","password":"n3w"}`, Expect: secrets["billing/prod/db"].Version}})
	if err != nil || errs[0] != nil {
		log.Fatal(err, errs)
	}

	s, _ := srv.Get("billing/prod/db")
	fmt.Println(s.Value)
	fmt.Println(s.Tags)
	fmt.Println(srv.Counts())
	// Output:
	// {"user":"app","password":"n3w"}
	// map[managed-by:secretsync secretsync-owner:billing-prod team:billing]
	// map[BatchGetSecretValue:1 CreateSecret:1 DescribeSecret:2 ListSecrets:1 PutSecretValue:1]
}
