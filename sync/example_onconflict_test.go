package sync_test

import (
	"context"
	"fmt"

	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/sync"
)

// React to a conflict as it is flagged, without polling Status: the
// callback is told once, with the key and class but never a value.
func Example_onConflict() {
	ctx := context.Background()
	app := memory.New(map[string]string{"DB_PASSWORD": "s3cret"})
	vault := memory.New(nil)
	s, err := sync.New(sync.Config{
		Name: "app", Source: app, Destination: vault, Mode: sync.Bidirectional,
		OnConflict: func(ctx context.Context, c sync.FlaggedConflict) {
			fmt.Printf("conflict on %s (%s): page the owner\n", c.Key, c.Class)
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	s.Run(ctx)
	app.Set("DB_PASSWORD", "changed here")
	vault.Set("DB_PASSWORD", "and there")
	s.Run(ctx) // flags the conflict: the callback is called
	s.Run(ctx) // still flagged: not called again
	// Output: conflict on DB_PASSWORD (both-changed): page the owner
}
