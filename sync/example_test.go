package sync_test

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/secretsync/secretsync/audit"
	"github.com/secretsync/secretsync/conflict"
	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/state"
	"github.com/secretsync/secretsync/sync"
)

func printSide(name string, d *memory.Destination) {
	snap := d.Snapshot()
	keys := make([]string, 0, len(snap))
	for k := range snap {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Print(name, ":")
	for _, k := range keys {
		fmt.Printf(" %s=%s", k, snap[k])
	}
	fmt.Println()
}

// Push secrets under a key schema: only destination keys that match the
// schema are managed; the others are left alone.
func ExampleSyncer_Run() {
	src := memory.New(map[string]string{"DB_URL": "postgres://db", "API_KEY": "k1"})
	dst := memory.New(map[string]string{"prod/APP_OLD": "stale", "LEGACY": "kept"})

	s, err := sync.New(sync.Config{
		Name:        "app-prod",
		Source:      src,
		Destination: dst,
		KeySchema:   "{{environment}}/APP_{{secretKey}}",
		Environment: "prod",
		Store:       state.NewMemory(),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	rep, err := s.Run(context.Background(), sync.Force())
	if err != nil {
		fmt.Println(err)
		return
	}
	rep.WriteTable(os.Stdout)
	printSide("destination", dst)
	// Output:
	// KEY      DESTINATION KEY   ACTION     DIRECTION       REASON
	// -        LEGACY            unmanaged  -               -
	// API_KEY  prod/APP_API_KEY  created    to-destination  -
	// DB_URL   prod/APP_DB_URL   created    to-destination  -
	// OLD      prod/APP_OLD      deleted    to-destination  -
	// app-prod sync: 2 created, 0 updated, 1 deleted, 0 imported, 0 unchanged, 0 conflicts, 1 unmanaged, 0 skipped, 0 retries, 0 failed
	// destination: LEGACY=kept prod/APP_API_KEY=k1 prod/APP_DB_URL=postgres://db
}

// A key changed on both sides of a bidirectional sync is flagged, and
// neither side is written until the conflict is resolved deliberately.
func ExampleSyncer_Resolve() {
	ctx := context.Background()
	src := memory.New(map[string]string{"DB_URL": "v1"})
	dst := memory.New(nil)
	rec := audit.NewRecorder()
	s, _ := sync.New(sync.Config{Name: "app", Source: src, Destination: dst, Mode: sync.Bidirectional, Auditor: rec})
	s.Run(ctx)

	src.Set("DB_URL", "v2-from-source")
	dst.Set("DB_URL", "v2-from-vault")
	rep, _ := s.Run(ctx)
	r, _ := rep.Result("DB_URL")
	fmt.Println("DB_URL:", r.Action, r.Class)

	st, _ := s.Status(ctx)
	fmt.Println("flagged:", len(st.Conflicts), st.Conflicts[0].Key)

	if err := s.Resolve(ctx, "DB_URL", conflict.KeepDestination); err != nil {
		fmt.Println(err)
	}
	printSide("source", src)
	for _, e := range rec.Events() {
		fmt.Println(strings.TrimSpace(fmt.Sprintf("%s %s %s", e.Type, e.Key, e.Direction)))
	}
	// Output:
	// DB_URL: conflict both-changed
	// flagged: 1 DB_URL
	// source: DB_URL=v2-from-vault
	// SECRET_SYNCED DB_URL to-destination
	// CONFLICT_DETECTED DB_URL
	// SECRET_SYNCED DB_URL to-source
	// CONFLICT_RESOLVED DB_URL
}

// Plan shows what a round would do without writing anything.
func ExampleSyncer_Plan() {
	src := memory.New(map[string]string{"A": "1"})
	dst := memory.New(map[string]string{"A": "0", "B": "2"})
	s, _ := sync.New(sync.Config{Name: "plan", Source: src, Destination: dst})
	rep, _ := s.Plan(context.Background())
	fmt.Println(rep)
	printSide("destination", dst)
	// Output:
	// plan sync (plan): 0 created, 1 updated, 1 deleted, 0 imported, 0 unchanged, 0 conflicts, 0 unmanaged, 0 skipped, 0 retries, 0 failed
	// destination: A=0 B=2
}
