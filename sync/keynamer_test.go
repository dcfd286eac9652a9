package sync_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/sync"
)

// upper names destination keys as a store with upper-case names would: not
// invertible, and two source keys can meet.
var upper = sync.KeyNamerFunc(func(k string) (string, error) {
	if strings.HasPrefix(k, "bad") {
		return "", destination.ErrInvalidKey
	}
	return "APP_" + strings.ToUpper(strings.ReplaceAll(k, "-", "_")), nil
})

func TestKeyNamerManagesOnlyWhatItNames(t *testing.T) {
	f := newFixture(t, map[string]string{"db-url": "u", "token": "t", "bad-one": "x"},
		map[string]string{"APP_OTHER": "theirs", "UNRELATED": "kept"},
		func(c *sync.Config) { c.KeyNamer = upper })
	rep, err := f.s.Run(context.Background())
	if err == nil {
		t.Fatal("the key with no name did not fail the round")
	}
	wantAction(t, rep, "db-url", sync.Created)
	wantAction(t, rep, "token", sync.Created)
	wantAction(t, rep, "bad-one", sync.Failed)
	wantSnapshot(t, "destination", f.dst, map[string]string{"APP_DB_URL": "u", "APP_TOKEN": "t", "APP_OTHER": "theirs", "UNRELATED": "kept"})

	// A key gone from the source is deleted at its name; names the sync
	// never gave are not touched.
	f.src.Delete("token")
	f.src.Delete("bad-one")
	rep = f.run()
	wantAction(t, rep, "token", sync.Deleted)
	wantSnapshot(t, "destination", f.dst, map[string]string{"APP_DB_URL": "u", "APP_OTHER": "theirs", "UNRELATED": "kept"})
	if rep := f.run(); rep.Totals.Changed() != 0 {
		t.Fatalf("idle round: %v", rep)
	}
	// Remove deletes what the sync named, and only that.
	if _, err := f.s.Remove(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantSnapshot(t, "destination", f.dst, map[string]string{"APP_OTHER": "theirs", "UNRELATED": "kept"})
}

func TestKeyNamerCollisionFailsBothKeys(t *testing.T) {
	f := newFixture(t, map[string]string{"a-b": "1", "a_b": "2", "c": "3"}, nil,
		func(c *sync.Config) { c.KeyNamer = upper })
	rep, err := f.s.Run(context.Background())
	if !errors.Is(err, destination.ErrInvalidKey) {
		t.Fatalf("Run = %v, want an error matching ErrInvalidKey", err)
	}
	wantAction(t, rep, "a-b", sync.Failed)
	wantAction(t, rep, "a_b", sync.Failed)
	wantAction(t, rep, "c", sync.Created)
	wantSnapshot(t, "destination", f.dst, map[string]string{"APP_C": "3"})
}

func TestKeyNamerWithKeySchemaRefused(t *testing.T) {
	_, err := sync.New(sync.Config{Name: "x", Source: newFixture(t, nil, nil, nil).src, Destination: newFixture(t, nil, nil, nil).dst,
		KeyNamer: upper, KeySchema: "P_{{secretKey}}"})
	if !errors.Is(err, sync.ErrInvalidConfig) {
		t.Fatalf("New = %v, want ErrInvalidConfig", err)
	}
}

// A key renamed at the source to one that gets the same destination name
// (a-b to a_b): the name is the new key's; the old key is not named any
// more, so it neither deletes the entry nor blocks the new key.
func TestKeyNamerRenamedKeyTakesTheName(t *testing.T) {
	f := newFixture(t, map[string]string{"a-b": "1"}, nil, func(c *sync.Config) { c.KeyNamer = upper })
	f.run()
	f.src.Delete("a-b")
	f.src.Set("a_b", "1")
	rep, err := f.s.Run(context.Background())
	if err != nil {
		t.Fatalf("Run = %v", err)
	}
	if kr := wantAction(t, rep, "a_b", sync.Unchanged); kr.DestinationKey != "APP_A_B" {
		t.Fatalf("a_b = %+v", kr)
	}
	wantSnapshot(t, "destination", f.dst, map[string]string{"APP_A_B": "1"})
	f.src.Set("a_b", "2")
	f.run()
	wantSnapshot(t, "destination", f.dst, map[string]string{"APP_A_B": "2"})
}

// TestKeyNamerChangeNamesTwoOldKeysAlike: two keys gone from the source
// that a changed namer now gives one name both lose it, as two source
// keys do, whatever the order of the maps: the entry at that name is left
// alone (unmanaged), neither deleted for one key nor flagged as drift of
// the other.
func TestKeyNamerChangeNamesTwoOldKeysAlike(t *testing.T) {
	for range 32 {
		var changed bool // the namer before and after a deploy
		namer := sync.KeyNamerFunc(func(k string) (string, error) {
			if changed {
				return upper(k)
			}
			return "APP_" + strings.ToUpper(k), nil // keeps '-'
		})
		f := newFixture(t, map[string]string{"a-b": "1", "a_b": "2"}, nil, func(c *sync.Config) { c.KeyNamer = namer })
		f.run()
		wantSnapshot(t, "destination", f.dst, map[string]string{"APP_A-B": "1", "APP_A_B": "2"})
		f.src.Delete("a-b")
		f.src.Delete("a_b")
		changed = true
		rep := f.run()
		if rep.Totals.Changed() != 0 || rep.Totals.Conflicts != 0 || rep.Totals.Failed != 0 {
			t.Fatalf("round after the namer changed: %v", rep)
		}
		for _, kr := range rep.Keys {
			if kr.Key != "" {
				t.Fatalf("key %q is managed (%v) after the namer gave it a shared name", kr.Key, kr.Action)
			}
		}
		wantSnapshot(t, "destination", f.dst, map[string]string{"APP_A-B": "1", "APP_A_B": "2"})
	}
}
