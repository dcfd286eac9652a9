package secretsync_test

import (
	"context"
	"fmt"

	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/sync"
)

// Push the secrets of a host system to a destination; a second round finds
// nothing to do.
func Example() {
	ctx := context.Background()
	host := memory.New(map[string]string{"DB_PASSWORD": "s3cret", "API_TOKEN": "t0ken"})
	vault := memory.New(nil) // in production: a vaultkv destination

	s, err := sync.New(sync.Config{Name: "billing", Source: host, Destination: vault, KeySchema: "BILLING_{{secretKey}}"})
	if err != nil {
		fmt.Println(err)
		return
	}
	first, _ := s.Run(ctx)
	second, _ := s.Run(ctx)
	fmt.Println(first.Totals.Created, "created;", second.Totals.Changed(), "changed on the second round")
	// Output: 2 created; 0 changed on the second round
}
