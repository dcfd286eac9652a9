package dotenv_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/dotenv"
)

func Example() {
	dir, err := os.MkdirTemp("", "dotenv-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, ".env")
	err = os.WriteFile(path, []byte("# settings of app\nexport LOG_LEVEL=info\nDB_PASS=old # rotated by secretsync\nUNUSED=x\n"), 0o600)
	if err != nil {
		log.Fatal(err)
	}

	f, err := dotenv.Open(path, nil)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	read, err := f.List(ctx)
	if err != nil {
		log.Fatal(err)
	}
	changes := []destination.Change{
		{Key: "DB_PASS", Value: "s3cret with spaces", Expect: read["DB_PASS"].Version},
		{Key: "API_TOKEN", Value: "t0k3n", Expect: ""}, // must not exist yet
		{Key: "UNUSED", Delete: true, Expect: read["UNUSED"].Version},
		{Key: "LOG_LEVEL", Value: "debug", Expect: "stale"},
	}
	errs, err := f.Apply(ctx, changes)
	if err != nil {
		log.Fatal(err)
	}
	for i, err := range errs {
		fmt.Printf("%s: ok=%v conflict=%v\n", changes[i].Key, err == nil, errors.Is(err, destination.ErrConflict))
	}
	data, err := os.ReadFile(path)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(data))
	// Output:
	// DB_PASS: ok=true conflict=false
	// API_TOKEN: ok=true conflict=false
	// UNUSED: ok=true conflict=false
	// LOG_LEVEL: ok=false conflict=true
	// # settings of app
	// export LOG_LEVEL=info
	// DB_PASS="s3cret with spaces" # rotated by secretsync
	// API_TOKEN=t0k3n
}
