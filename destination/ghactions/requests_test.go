package ghactions_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/secretsync/secretsync/destination/ghactions"
	"github.com/secretsync/secretsync/destination/ghactions/ghactionstest"
	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/sync"
)

// TestRequestsPerKey counts the requests of sync rounds over the
// destination: creating N keys, updating them, and an idle round. The
// package documentation states these numbers.
func TestRequestsPerKey(t *testing.T) {
	const n = 60
	for _, loc := range []ghactions.Location{ghactions.RepositorySecrets, ghactions.EnvironmentSecrets, ghactions.OrganizationSecrets} {
		t.Run(string(loc), func(t *testing.T) {
			srv := newServer(t, ghactionstest.Options{})
			d, sc := fixture(t, srv, loc)
			data := map[string]string{}
			for i := range n {
				data[fmt.Sprintf("K%02d", i)] = fmt.Sprint("v", i)
			}
			src := memory.New(data)
			s, err := sync.New(sync.Config{Name: "requests", Source: src, Destination: d})
			if err != nil {
				t.Fatal(err)
			}
			round := func(what string, want sync.Totals) map[ghactionstest.Op]int {
				t.Helper()
				srv.ResetCounts()
				rep, err := s.Run(context.Background())
				if err != nil || rep.Totals != want {
					t.Fatalf("%s: %+v, %v; want %+v", what, rep.Totals, err, want)
				}
				c := srv.Counts()
				t.Logf("%s of %d keys: %d requests (%.2f per key): %v", what, n, srv.Requests(), float64(srv.Requests())/n, c)
				return c
			}
			setup := 1 // the public key
			if loc == ghactions.EnvironmentSecrets {
				setup = 2 // and the repository's id
			}
			c := round("create", sync.Totals{Created: n})
			if c[ghactionstest.OpListSecrets] != 2 || c[ghactionstest.OpGetSecret] != n || c[ghactionstest.OpPutSecret] != n ||
				c[ghactionstest.OpGetPublicKey]+c[ghactionstest.OpGetRepository] != setup || srv.Requests() != 2+2*n+setup {
				t.Fatalf("create: %v", c)
			}
			for k := range data {
				data[k] += "-2"
				src.Set(k, data[k])
			}
			c = round("update", sync.Totals{Updated: n})
			if c[ghactionstest.OpListSecrets] != 2 || c[ghactionstest.OpGetSecret] != n || c[ghactionstest.OpPutSecret] != n || srv.Requests() != 2+2*n {
				t.Fatalf("update: %v", c)
			}
			round("idle round", sync.Totals{Unchanged: n})
			if srv.Requests() != 1 {
				t.Fatalf("idle: %v", srv.Counts())
			}
			for k, v := range data {
				if s, _ := sc.Get(k); s.Value != v {
					t.Fatalf("%s not synced", k)
				}
			}
		})
	}
}
