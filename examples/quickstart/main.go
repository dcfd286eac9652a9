// Command quickstart shows secretsync end to end: it pushes a host's secrets
// under a key schema, shows a bidirectional conflict being flagged and
// resolved, and prints the reports and the audit trail.
package main

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/secretsync/secretsync/audit"
	"github.com/secretsync/secretsync/conflict"
	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/state"
	"github.com/secretsync/secretsync/sync"
)

func main() {
	if err := run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context) error {
	host := memory.New(map[string]string{
		"DB_PASSWORD": "correct-horse",
		"API_TOKEN":   "tok-123",
		"SMTP_PASS":   "mail-pass",
	})
	// The destination already holds a key outside the schema: it stays.
	vault := memory.New(map[string]string{"unrelated/KEY": "not ours"})
	trail := audit.NewRecorder()

	s, err := sync.New(sync.Config{
		Name:        "quickstart",
		Description: "host secrets to the prod environment",
		Source:      host,
		Destination: vault,
		Mode:        sync.Bidirectional,
		KeySchema:   "{{environment}}/{{secretKey}}",
		Environment: "prod",
		Store:       state.NewMemory(),
		Auditor:     audit.Fanout(trail, audit.NewJSONLines(os.Stderr)),
	})
	if err != nil {
		return err
	}

	fmt.Println("== first round: push under the key schema")
	if err := round(ctx, s); err != nil {
		return err
	}

	fmt.Println("\n== both sides change DB_PASSWORD: a conflict, neither side written")
	host.Set("DB_PASSWORD", "host-rotated")
	vault.Set("prod/DB_PASSWORD", "vault-rotated")
	if err := round(ctx, s); err != nil {
		return err
	}
	st, err := s.Status(ctx)
	if err != nil {
		return err
	}
	for _, c := range st.Conflicts {
		fmt.Printf("flagged: %s (%s) since run %s\n", c.Key, c.Class, c.RunID)
	}

	fmt.Println("\n== resolve deliberately: keep Vault's value")
	if err := s.Resolve(ctx, "DB_PASSWORD", conflict.KeepDestination); err != nil {
		return err
	}
	if err := round(ctx, s); err != nil {
		return err
	}

	fmt.Println("\n== audit trail")
	for _, e := range trail.Events() {
		fmt.Printf("%-18s key=%-12s direction=%-15s outcome=%s\n", e.Type, e.Key, e.Direction, e.Outcome)
	}
	return nil
}

func round(ctx context.Context, s *sync.Syncer) error {
	rep, err := s.Run(ctx)
	if err != nil {
		return err
	}
	return rep.WriteTable(os.Stdout)
}
