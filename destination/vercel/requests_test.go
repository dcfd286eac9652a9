package vercel_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/destination/vercel"
	"github.com/secretsync/secretsync/destination/vercel/verceltest"
	"github.com/secretsync/secretsync/state"
	"github.com/secretsync/secretsync/sync"
)

// TestRequestsPerKey measures, with the server's counters, the requests a
// push sync.Syncer makes to Vercel for n keys: creating them, updating
// them, an idle round and deleting them. The numbers are in the package
// documentation.
func TestRequestsPerKey(t *testing.T) {
	const n = 10
	for _, tc := range []struct {
		name string
		so   verceltest.Options
		typ  string
		// want: requests per round, as a + b*n.
		create, update, idle, remove [2]int
	}{
		{"encrypted", verceltest.Options{TeamID: "team_n"}, vercel.TypeEncrypted, [2]int{1, 1}, [2]int{1, 2}, [2]int{1, 0}, [2]int{1, 2}},
		// Without decrypted lists, each round reads every value by id.
		{"encrypted-no-list-decrypt", verceltest.Options{ListIgnoresDecrypt: true}, vercel.TypeEncrypted, [2]int{1, 1}, [2]int{1, 3}, [2]int{1, 1}, [2]int{1, 3}},
		// A write-only sync lists again after its puts, for the markers.
		{"sensitive", verceltest.Options{TeamID: "team_n"}, vercel.TypeSensitive, [2]int{2, 1}, [2]int{2, 2}, [2]int{1, 0}, [2]int{1, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			srv := verceltest.New(t, &tc.so)
			d := open(t, srv, func(o *vercel.Options) { o.Type = tc.typ })
			data := map[string]string{}
			for i := range n {
				data[fmt.Sprintf("KEY_%02d", i)] = fmt.Sprintf("v1-%d", i)
			}
			src := memory.New(data)
			s, err := sync.New(sync.Config{Name: "perkey", Source: src, Destination: d, Store: state.NewMemory()})
			if err != nil {
				t.Fatal(err)
			}
			round := func(what string, want [2]int, wantChanged int, opts ...sync.Option) {
				t.Helper()
				srv.ResetCounts()
				rep, err := s.Run(ctx, opts...)
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				if rep.Totals.Changed() != wantChanged || rep.Totals.Failed != 0 || rep.Totals.Conflicts != 0 {
					t.Fatalf("%s: %+v", what, rep.Totals)
				}
				got := srv.Count("")
				t.Logf("%s %d keys: %d requests %v", what, n, got, srv.Counts())
				if w := want[0] + want[1]*n; got != w {
					t.Errorf("%s: %d requests, want %d", what, got, w)
				}
			}
			round("create", tc.create, n)
			for k := range data {
				src.Set(k, "v2-"+k)
			}
			round("update", tc.update, n)
			round("idle", tc.idle, 0)
			for k := range data {
				src.Delete(k)
			}
			round("delete", tc.remove, n, sync.Force())
			if vars := srv.Vars(); len(vars) != 0 {
				t.Fatalf("%d variables left", len(vars))
			}
		})
	}
}
