package ghactions_test

import (
	"context"
	"fmt"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/ghactions"
	"github.com/secretsync/secretsync/destination/ghactions/ghactionstest"
	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/sync"
)

// A destination over a repository's secrets, against the local GitHub
// API: names are normalized, values go out sealed, and List shows names
// and update times only.
func Example() {
	ctx := context.Background()
	gh := ghactionstest.NewServer(nil)
	defer gh.Close()
	repo := gh.AddRepository("acme", "api")

	d, err := ghactions.New(ctx, &ghactions.Options{
		Token: gh.Token, // a token with the "Secrets: Read and write" permission
		Owner: "acme", Repository: "api",
		BaseURL: gh.URL, // empty for api.github.com
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close()

	name, _ := d.NormalizeKey("db-url")
	errs, err := d.Apply(ctx, []destination.Change{{Key: name, Value: "postgres://db.internal/app"}})
	fmt.Println("apply:", errs, err)

	listed, _ := d.List(ctx)
	fmt.Printf("listed %s with value %q and a version: %t\n", name, listed[name].Value, listed[name].Version != "")
	s, _ := repo.Secrets().Get(name) // what GitHub holds, which its API never returns
	fmt.Println("GitHub holds:", s.Value)
	// Output:
	// apply: [<nil>] <nil>
	// listed DB_URL with value "" and a version: true
	// GitHub holds: postgres://db.internal/app
}

// A push sync to GitHub Actions secrets: the destination is write-only,
// so the engine detects changes at GitHub by their update times.
func Example_sync() {
	ctx := context.Background()
	gh := ghactionstest.NewServer(nil)
	defer gh.Close()
	repo := gh.AddRepository("acme", "api")
	d, err := ghactions.New(ctx, &ghactions.Options{Token: gh.Token, Owner: "acme", Repository: "api", BaseURL: gh.URL})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close()

	src := memory.New(map[string]string{"DB_URL": "postgres://db", "API_KEY": "k-1"})
	s, err := sync.New(sync.Config{Name: "api-secrets", Source: src, Destination: d, KeySchema: "APP_{{secretKey}}"})
	if err != nil {
		fmt.Println(err)
		return
	}
	rep, err := s.Run(ctx)
	fmt.Println("first round:", rep.Totals.Created, "created", err)
	rep, err = s.Run(ctx)
	fmt.Println("second round:", rep.Totals.Changed(), "changed", err)
	fmt.Println(repo.Secrets().Values())
	// Output:
	// first round: 2 created <nil>
	// second round: 0 changed <nil>
	// map[APP_API_KEY:k-1 APP_DB_URL:postgres://db]
}
