package vercel_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/vercel"
	"github.com/secretsync/secretsync/destination/vercel/verceltest"
)

// Example keeps two secrets as encrypted production and preview variables
// of a team's project, against the local fake of Vercel's API.
func Example() {
	ctx := context.Background()
	srv := verceltest.NewServer(&verceltest.Options{Token: "token-1", TeamID: "team_1", ProjectID: "prj_1"})
	defer srv.Close()

	d, err := vercel.New(ctx, &vercel.Options{
		Token:     "token-1",
		ProjectID: "prj_1",
		TeamID:    "team_1",
		Targets:   []string{vercel.Production, vercel.Preview},
		Owner:     "billing-app",
		BaseURL:   srv.URL, // https://api.vercel.com by default
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close()

	name, _ := d.NormalizeKey("vault/kv/billing/db-url")
	errs, err := d.Apply(ctx, []destination.Change{
		{Key: name, Value: "postgres://db.internal/billing"},
		{Key: "STRIPE_KEY", Value: "sk_test_123"},
		{Key: "TZ", Value: "UTC"}, // reserved by Vercel
	})
	fmt.Println(errs[0], errs[1], errors.Is(errs[2], destination.ErrInvalidKey), err)

	listed, _ := d.List(ctx)
	fmt.Println(len(listed), listed[name].Value)
	for _, v := range srv.Vars() {
		fmt.Println(v.Key, v.Type, v.Target, v.Comment)
	}
	// Output:
	// <nil> <nil> true <nil>
	// 2 postgres://db.internal/billing
	// STRIPE_KEY encrypted [preview production] managed-by: secretsync owner=billing-app
	// vault_kv_billing_db_url encrypted [preview production] managed-by: secretsync owner=billing-app
}
