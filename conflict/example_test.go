package conflict_test

import (
	"crypto/sha256"
	"fmt"

	"github.com/secretsync/secretsync/conflict"
)

func ExampleClassify() {
	fp := func(v string) conflict.Side { return conflict.Present(sha256.Sum256([]byte(v))) }
	base := fp("v1")
	fmt.Println(conflict.Classify(base, fp("v2"), base))
	fmt.Println(conflict.Classify(base, fp("v2"), fp("v2")))
	fmt.Println(conflict.Classify(base, fp("v2"), fp("v3")))
	fmt.Println(conflict.Classify(base, conflict.Absent, conflict.Absent))
	fmt.Println(conflict.Classify(conflict.Absent, fp("a"), fp("b")))
	// Output:
	// source-changed
	// converged
	// both-changed
	// converged
	// both-created
}

func ExamplePolicy() {
	// Keep what operators set in Vault for database keys; flag the rest.
	p := conflict.Policy(func(c conflict.Conflict) conflict.Resolution {
		if c.Key == "DB_PASSWORD" {
			return conflict.KeepDestination
		}
		return conflict.Flag
	})
	fmt.Println(p.Resolve(conflict.Conflict{Key: "DB_PASSWORD", Class: conflict.BothChanged}))
	fmt.Println(p.Resolve(conflict.Conflict{Key: "API_TOKEN", Class: conflict.BothChanged}))
	// Output:
	// keep-destination
	// flag
}
