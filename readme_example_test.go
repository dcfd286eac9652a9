package secretsync_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/state"
	"github.com/secretsync/secretsync/sync"
)

// The code of the README's "Use" section, compiled and run: readme_test.go
// checks that the README shows exactly this body and these imports.
func Example_readme() {
	ctx := context.Background()
	// host is your system: any destination.Reader (pull and bidirectional
	// need a destination.Destination). vault is, in production, a vaultkv
	// destination: any destination.Destination.
	host := memory.New(map[string]string{"DB_PASSWORD": "s3cret", "API_TOKEN": "t0ken"})
	vault := memory.New(nil)
	// Baselines and status; state.OpenFile("/var/lib/myapp/secretsync.json", nil)
	// keeps them across restarts.
	store := state.NewMemory()

	s, err := sync.New(sync.Config{
		Name:        "app-prod",
		Source:      host,
		Destination: vault,
		Mode:        sync.Bidirectional,
		KeySchema:   "{{environment}}/{{secretKey}}",
		Environment: "prod",
		Store:       store,
	})
	if err != nil {
		log.Fatal(err)
	}
	plan, err := s.Plan(ctx) // what a round would do; writes nothing
	if err != nil {
		log.Fatal(err)
	}
	plan.WriteTable(os.Stdout)
	report, err := s.Run(ctx) // one round
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(report)
	fmt.Println(vault.Len(), "keys at the destination")
	// Output:
	// KEY          DESTINATION KEY   ACTION   DIRECTION       REASON
	// API_TOKEN    prod/API_TOKEN    created  to-destination  -
	// DB_PASSWORD  prod/DB_PASSWORD  created  to-destination  -
	// app-prod sync (plan): 2 created, 0 updated, 0 deleted, 0 imported, 0 unchanged, 0 conflicts, 0 unmanaged, 0 skipped, 0 retries, 0 failed
	// app-prod sync: 2 created, 0 updated, 0 deleted, 0 imported, 0 unchanged, 0 conflicts, 0 unmanaged, 0 skipped, 0 retries, 0 failed
	// 2 keys at the destination
}
