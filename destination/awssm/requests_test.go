package awssm_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/secretsync/secretsync/destination/awssm/awssmtest"
	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/sync"
)

// TestRequestsPerKey measures, with the server's counters, the requests a
// sync.Syncer makes over the destination per synced key: creating N keys,
// updating them, an idle round and deleting them. The numbers are in the
// package documentation.
func TestRequestsPerKey(t *testing.T) {
	const n = 50
	ctx := context.Background()
	srv := newServer(t, awssmtest.Options{})
	d := open(t, options(srv, "requests"))
	src := memory.New(nil)
	for i := range n {
		src.Set(fmt.Sprintf("KEY_%02d", i), fmt.Sprint("v1-", i))
	}
	s, err := sync.New(sync.Config{Name: "requests", Source: src, Destination: d, KeySchema: "app/prod/{{secretKey}}"})
	if err != nil {
		t.Fatal(err)
	}
	round := func(what string, want func(sync.Totals) bool) map[string]int {
		t.Helper()
		srv.ResetCounts()
		rep, err := s.Run(ctx)
		if err != nil || !want(rep.Totals) {
			t.Fatalf("%s round: %+v, %v", what, rep.Totals, err)
		}
		c := srv.Counts()
		total := 0
		for _, v := range c {
			total += v
		}
		t.Logf("%-6s %3d requests for %d keys (%.2f per key): %s", what, total, n, float64(total)/n, fmtCounts(c))
		return c
	}

	create := round("create", func(t sync.Totals) bool { return t.Created == n })
	if create["CreateSecret"] != n || create["PutSecretValue"] != 0 || create["DescribeSecret"] != 0 {
		t.Errorf("create round: %v, want one CreateSecret per key", create)
	}
	for i := range n {
		src.Set(fmt.Sprintf("KEY_%02d", i), fmt.Sprint("v2-", i))
	}
	update := round("update", func(t sync.Totals) bool { return t.Updated == n })
	if update["PutSecretValue"] != n || update["DescribeSecret"] != 2*n {
		t.Errorf("update round: %v, want a DescribeSecret before and after each PutSecretValue", update)
	}
	idle := round("idle", func(t sync.Totals) bool { return t.Changed() == 0 })
	if idle["ListSecrets"] != 1 || idle["BatchGetSecretValue"] != (n+19)/20 || len(idle) != 2 {
		t.Errorf("idle round: %v, want one ListSecrets and a BatchGetSecretValue per 20 keys", idle)
	}
	for _, k := range slices.Collect(maps.Keys(mustList(t, src))) {
		src.Delete(k)
	}
	srv.ResetCounts()
	rep, err := s.Run(ctx, sync.Force())
	if err != nil || rep.Totals.Deleted != n {
		t.Fatalf("delete round: %+v, %v", rep.Totals, err)
	}
	t.Logf("delete %3d requests for %d keys: %s", srv.Count(""), n, fmtCounts(srv.Counts()))
}

func mustList(t *testing.T, m *memory.Destination) map[string]string {
	t.Helper()
	l, err := m.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for k, v := range l {
		out[k] = v.Value
	}
	return out
}

func fmtCounts(c map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(c)) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, c[k]))
	}
	return strings.Join(parts, " ")
}
