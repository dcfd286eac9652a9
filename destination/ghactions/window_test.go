package ghactions_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/secretsync/secretsync/conflict"
	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/ghactions"
	"github.com/secretsync/secretsync/destination/ghactions/ghactionstest"
	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/sync"
)

// updated_at has one-second resolution: within one second, a write by
// someone else leaves the marker as it was, so it is neither seen as a
// change nor refused as a conflict. This pins the window the package
// documentation states.
func TestOneSecondResolution(t *testing.T) {
	second := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	srv := newServer(t, ghactionstest.Options{Clock: func() time.Time { return second.Add(300 * time.Millisecond) }})
	d, sc := fixture(t, srv, ghactions.RepositorySecrets)
	mustApply(t, d, put("A", "ours", ""))
	before := mustList(t, d)["A"].Version
	if before != "2026-01-01T00:00:00Z" {
		t.Fatalf("marker %q", before)
	}
	if err := sc.Set("A", "theirs"); err != nil { // the same second
		t.Fatal(err)
	}
	if after := mustList(t, d)["A"].Version; after != before {
		t.Fatalf("a write in the same second changed the marker: %q -> %q", before, after)
	}
	// So a put that read the marker before their write replaces it.
	mustApply(t, d, put("A", "ours-2", before))
	if s, _ := sc.Get("A"); s.Value != "ours-2" {
		t.Fatal("unexpected")
	}
}

// GitHub keeps no ownership marker, so a secret that someone else created
// under a name the sync manages, before the sync first wrote it, is told
// apart by the sync's own state: the first round flags it instead of
// replacing it, and taking it over is a deliberate resolution, after which
// it is the sync's, which Remove deletes. Apply's own check holds too: a
// create (Expect "") never replaces an existing secret.
func TestFirstRoundTakesOverAManagedName(t *testing.T) {
	srv := newServer(t, ghactionstest.Options{})
	d, sc := fixture(t, srv, ghactions.RepositorySecrets)
	if err := sc.Set("APP_DB_URL", "someone else's"); err != nil {
		t.Fatal(err)
	}
	errs, err := d.Apply(context.Background(), []destination.Change{put("APP_DB_URL", "ours", "")})
	if err != nil || !errors.Is(errs[0], destination.ErrConflict) {
		t.Fatalf("create over an existing secret = %v, %v", errs, err)
	}
	s, err := sync.New(sync.Config{Name: "foreign", Source: memory.New(map[string]string{"DB_URL": "ours", "KEY": "k"}), Destination: d, KeySchema: "APP_{{secretKey}}"})
	if err != nil {
		t.Fatal(err)
	}
	// The first round creates KEY, and flags APP_DB_URL: it exists, this
	// sync never wrote it, and its value cannot be compared.
	rep, err := s.Run(context.Background())
	if err != nil || rep.Totals.Created != 1 || rep.Totals.Conflicts != 1 || rep.Totals.Updated != 0 {
		t.Fatalf("first round = %+v, %v", rep.Totals, err)
	}
	if v, _ := sc.Get("APP_DB_URL"); v.Value != "someone else's" {
		t.Fatal("the first round took over a secret it never wrote")
	}
	// Taking it over is a deliberate resolution.
	if err := s.Resolve(context.Background(), "DB_URL", conflict.KeepSource); err != nil {
		t.Fatal(err)
	}
	if v, _ := sc.Get("APP_DB_URL"); v.Value != "ours" {
		t.Fatal("resolving did not take the secret over")
	}
	rep, err = s.Remove(context.Background())
	if err != nil || rep.Totals.Deleted != 2 || len(sc.List()) != 0 {
		t.Fatalf("Remove = %+v, %v; left %v", rep.Totals, err, sc.List())
	}
}
