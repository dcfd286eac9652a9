package audit_test

import (
	"context"
	"fmt"
	"os"

	"github.com/secretsync/secretsync/audit"
)

func ExampleNewJSONLines() {
	a := audit.NewJSONLines(os.Stdout)
	_ = a.Audit(context.Background(), audit.Event{
		Type: audit.SecretSynced, Time: when, Sync: "app", RunID: "r1",
		Key: "DB_URL", DestinationKey: "prod/DB_URL", Direction: audit.ToDestination, Outcome: audit.Success,
	})
	// Output:
	// {"type":"SECRET_SYNCED","time":"2026-11-22T10:00:00Z","sync":"app","run_id":"r1","key":"DB_URL","destination_key":"prod/DB_URL","direction":"to-destination","outcome":"success"}
}

func ExamplePrefix() {
	rec := audit.NewRecorder()
	a := audit.Prefix("HCV_", rec)
	_ = a.Audit(context.Background(), audit.Event{Type: audit.SecretSynced})
	fmt.Println(rec.Events()[0].Type)
	// Output:
	// HCV_SECRET_SYNCED
}
