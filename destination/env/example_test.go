package env_test

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/secretsync/secretsync/destination/env"
	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/sync"
)

// A command-line program pushes the APP_ variables of its environment to
// Vault. The environment is passed in; env.FromOS("APP_", nil) reads the
// process's own.
func Example() {
	environ := []string{"APP_DB_PASSWORD=s3cret", "APP_API_TOKEN=t0ken", "HOME=/home/ci", "PATH=/usr/bin"}
	src, err := env.New(environ, "APP_", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	vault := memory.New(nil) // in production a vaultkv destination
	s, err := sync.New(sync.Config{Name: "ci", Source: src, Destination: vault, KeySchema: "ci/{{secretKey}}"})
	if err != nil {
		fmt.Println(err)
		return
	}
	report, err := s.Run(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(src)
	fmt.Println(report.Totals.Created, "created:", slices.Sorted(maps.Keys(vault.Snapshot())))
	// Output:
	// env.Source("APP_", 2 variables)
	// 2 created: [ci/API_TOKEN ci/DB_PASSWORD]
}
