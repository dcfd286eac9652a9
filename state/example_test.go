package state_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/secretsync/secretsync/conflict"
	"github.com/secretsync/secretsync/state"
)

func ExampleNewMemory() {
	ctx := context.Background()
	store := state.NewMemory()

	if _, err := store.Load(ctx, "app-prod"); errors.Is(err, state.ErrNotFound) {
		fmt.Println("no state yet: first sync")
	}

	st := &state.State{Sync: &state.Record{Status: state.Succeeded, Message: "2 keys synced"}}
	if err := store.Save(ctx, "app-prod", st); err != nil {
		log.Fatal(err)
	}
	fmt.Println("saved revision", st.Revision)

	// Two writers load revision 1; the first save wins, the second must
	// load again.
	a, _ := store.Load(ctx, "app-prod")
	b, _ := store.Load(ctx, "app-prod")
	a.Sync.Status = state.Running
	fmt.Println("first save:", store.Save(ctx, "app-prod", a))
	err := store.Save(ctx, "app-prod", b)
	fmt.Println("second save conflicts:", errors.Is(err, state.ErrConflict))
	// Output:
	// no state yet: first sync
	// saved revision 1
	// first save: <nil>
	// second save conflicts: true
}

func ExampleOpenFile() {
	dir, err := os.MkdirTemp("", "secretsync-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "state.json")
	ctx := context.Background()

	store, err := state.OpenFile(path, nil)
	if err != nil {
		log.Fatal(err)
	}
	// The key is made on first use and kept in state.json.key. The engine
	// uses it to fingerprint values; the state file never holds a value.
	key, err := store.FingerprintKey(ctx)
	if err != nil {
		log.Fatal(err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("postgres://user:pass@db/app"))
	var fp conflict.Fingerprint
	mac.Sum(fp[:0])

	st := &state.State{
		Baseline:    map[string]conflict.Fingerprint{"DB_URL": fp},
		Sync:        &state.Record{Status: state.Succeeded, Time: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), RunID: "run-1"},
		Initialized: true,
	}
	if err := store.Save(ctx, "app-prod", st); err != nil {
		log.Fatal(err)
	}
	fmt.Println("saved revision", st.Revision)
	if err := store.Close(); err != nil {
		log.Fatal(err)
	}

	info, err := os.Stat(path)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("state file mode", info.Mode())

	// Another run of the program opens the same file.
	store, err = state.OpenFile(path, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	got, err := store.Load(ctx, "app-prod")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("loaded revision", got.Revision, got.Sync.Status, got.Sync.RunID, "baseline matches:", got.Baseline["DB_URL"] == fp)
	// Output:
	// saved revision 1
	// state file mode -rw-------
	// loaded revision 1 succeeded run-1 baseline matches: true
}
