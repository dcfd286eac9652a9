package sync_test

import (
	"context"
	"errors"
	gosync "sync"
	"testing"

	"github.com/secretsync/secretsync/audit"
	"github.com/secretsync/secretsync/conflict"
	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/state"
	"github.com/secretsync/secretsync/sync"
)

// A Resolve whose write is refused because the key changed meanwhile
// fails with destination.ErrConflict and changes nothing: the conflict
// stays flagged, no CONFLICT_RESOLVED is recorded, and Resolve again
// works, as its documentation promises.
func TestResolveRefusedKeepsTheConflict(t *testing.T) {
	ctx := context.Background()
	var once gosync.Once
	var race func()
	dst := memory.NewWithOptions(map[string]string{"K": "v1"}, &memory.Options{BeforeApply: func(ctx context.Context, c destination.Change) error {
		if race != nil {
			once.Do(race)
		}
		return nil
	}})
	src := memory.New(map[string]string{"K": "v1"})
	rec := audit.NewRecorder()
	s, err := sync.New(sync.Config{Name: "app", Source: src, Destination: dst, Store: state.NewMemory(), Auditor: rec})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	src.Set("K", "from-src")
	dst.Set("K", "drift")
	if _, err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.Status(ctx); len(st.Conflicts) != 1 {
		t.Fatalf("conflicts = %+v, want K flagged", st.Conflicts)
	}
	// Another writer changes the destination between Resolve's read and
	// its write.
	race = func() { dst.Set("K", "drift-again") }
	err = s.Resolve(ctx, "K", conflict.KeepSource)
	if !errors.Is(err, destination.ErrConflict) {
		t.Fatalf("Resolve with a concurrent write = %v, want ErrConflict", err)
	}
	if v, _ := dst.Get("K"); v.Value != "drift-again" {
		t.Fatalf("the other writer's value was overwritten: %q", v.Value)
	}
	if st, _ := s.Status(ctx); len(st.Conflicts) != 1 || st.Conflicts[0].Key != "K" {
		t.Fatalf("after a refused Resolve the conflict is gone: %+v", st.Conflicts)
	}
	if n := rec.Count(audit.ConflictResolved); n != 0 {
		t.Fatalf("CONFLICT_RESOLVED recorded %d times for a refused Resolve", n)
	}
	// Resolve again: safe, and it works now.
	if err := s.Resolve(ctx, "K", conflict.KeepSource); err != nil {
		t.Fatalf("Resolve again: %v", err)
	}
	if v, _ := dst.Get("K"); v.Value != "from-src" {
		t.Fatalf("destination after Resolve = %q", v.Value)
	}
	if st, _ := s.Status(ctx); len(st.Conflicts) != 0 || rec.Count(audit.ConflictResolved) != 1 {
		t.Fatalf("after Resolve: conflicts %+v, %d CONFLICT_RESOLVED", st.Conflicts, rec.Count(audit.ConflictResolved))
	}
}
