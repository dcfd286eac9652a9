package funcs_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	gosync "sync"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/funcs"
	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/sync"
)

// table stands for a service's own table of secrets: key, value, and a
// version taken from one sequence, as a database would keep them.
type table struct {
	mu   gosync.Mutex
	rows map[string]destination.Secret
	seq  int
}

func (t *table) list(ctx context.Context) (map[string]destination.Secret, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]destination.Secret, len(t.rows))
	for k, r := range t.rows {
		out[k] = r
	}
	return out, nil
}

// apply writes one change if the key still has the version the engine read,
// as "UPDATE ... WHERE key = ? AND version = ?" would.
func (t *table) apply(ctx context.Context, c destination.Change) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	row, ok := t.rows[c.Key]
	switch {
	case c.Delete && !ok:
		return nil // already gone
	case !ok && c.Expect != "":
		return fmt.Errorf("%w: key is gone", destination.ErrConflict)
	case ok && row.Version != c.Expect:
		return fmt.Errorf("%w: key has another version", destination.ErrConflict)
	case c.Delete:
		delete(t.rows, c.Key)
		return nil
	}
	t.seq++
	t.rows[c.Key] = destination.Secret{Value: c.Value, Version: strconv.Itoa(t.seq)}
	return nil
}

// A service keeps its secrets in its own table and syncs them with Vault
// both ways; a write that lost a race is refused, never applied blindly.
func Example() {
	ctx := context.Background()
	db := &table{rows: map[string]destination.Secret{"DB_PASSWORD": {Value: "s3cret", Version: "1"}}, seq: 1}
	vault := memory.New(map[string]string{"API_TOKEN": "t0ken"}) // in production a vaultkv destination

	s, err := sync.New(sync.Config{
		Name:        "billing",
		Source:      funcs.New(db.list, db.apply, nil),
		Destination: vault,
		Mode:        sync.Bidirectional,
		InitialSync: sync.ImportPreferSource,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if _, err := s.Run(ctx); err != nil {
		fmt.Println(err)
		return
	}
	rows, _ := db.list(ctx)
	fmt.Println("table:", slices.Sorted(maps.Keys(rows)))
	fmt.Println("vault:", slices.Sorted(maps.Keys(vault.Snapshot())))

	// The service changes a secret itself; a write still expecting the
	// version read before is refused.
	side := funcs.New(db.list, db.apply, nil)
	errs, _ := side.Apply(ctx, []destination.Change{{Key: "DB_PASSWORD", Value: "n3w", Expect: rows["DB_PASSWORD"].Version}})
	fmt.Println("service update:", errs[0])
	errs, _ = side.Apply(ctx, []destination.Change{{Key: "DB_PASSWORD", Value: "stale", Expect: rows["DB_PASSWORD"].Version}})
	fmt.Println("stale write:", errs[0])

	report, _ := s.Run(ctx)
	fmt.Println(report.Totals.Updated, "updated in vault")
	// Output:
	// table: [API_TOKEN DB_PASSWORD]
	// vault: [API_TOKEN DB_PASSWORD]
	// service update: <nil>
	// stale write: put "DB_PASSWORD": destination: precondition failed: key changed since it was read: key has another version
	// 1 updated in vault
}
