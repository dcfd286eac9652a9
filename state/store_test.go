package state

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/secretsync/secretsync/conflict"
	"github.com/secretsync/secretsync/internal/fingerprint"
)

// sampleState returns a state that uses every field, with Revision 0.
func sampleState(t *testing.T) *State {
	t.Helper()
	key, err := fingerprint.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	h, err := fingerprint.New(key)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC)
	return &State{
		Baseline: map[string]conflict.Fingerprint{
			"DB_URL":      h.Sum("postgres://example"),
			"API_TOKEN":   h.Sum("token"),
			"EMPTY":       h.Sum(""),
			"odd \"key\"": h.Sum("x"),
		},
		Conflicts: map[string]FlaggedConflict{
			"API_TOKEN": {
				Class:       conflict.BothChanged,
				Source:      conflict.Present(h.Sum("a")),
				Destination: conflict.Present(h.Sum("b")),
				RunID:       "run-2",
				Time:        at,
			},
			"GONE": {
				Class:       conflict.SourceDeleted,
				Source:      conflict.Absent,
				Destination: conflict.Present(h.Sum("c")),
				Time:        at.Add(time.Second),
			},
		},
		Sync:        &Record{Status: Succeeded, Message: "3 keys synced <&>", Time: at, RunID: "run-2"},
		Import:      &Record{Status: Failed, Message: "destination unreachable", Time: at.Add(-time.Hour)},
		Remove:      nil,
		Initialized: true,
	}
}

// testStore runs the behaviour every Store must have. newStore returns an
// empty store, cleaned up by the test.
func testStore(t *testing.T, newStore func(t *testing.T) Store) {
	ctx := context.Background()

	t.Run("NotFoundBeforeSave", func(t *testing.T) {
		s := newStore(t)
		_, err := s.Load(ctx, "app")
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("Load = %v, want ErrNotFound", err)
		}
	})

	t.Run("RoundTrip", func(t *testing.T) {
		s := newStore(t)
		st := sampleState(t)
		want := st.Clone()
		if err := s.Save(ctx, "app", st); err != nil {
			t.Fatal(err)
		}
		if st.Revision != 1 {
			t.Fatalf("Revision after first Save = %d, want 1", st.Revision)
		}
		want.Revision = 1
		got, err := s.Load(ctx, "app")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Load =\n%+v\nwant\n%+v", got, want)
		}

		got.Sync.Status = Running
		if err := s.Save(ctx, "app", got); err != nil {
			t.Fatal(err)
		}
		if got.Revision != 2 {
			t.Fatalf("Revision after second Save = %d, want 2", got.Revision)
		}
		again, err := s.Load(ctx, "app")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(again, got) {
			t.Fatalf("Load =\n%+v\nwant\n%+v", again, got)
		}
	})

	t.Run("EmptyState", func(t *testing.T) {
		s := newStore(t)
		if err := s.Save(ctx, "app", &State{}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Load(ctx, "app")
		if err != nil {
			t.Fatal(err)
		}
		if want := (&State{Revision: 1}); !reflect.DeepEqual(got, want) {
			t.Fatalf("Load = %+v, want %+v", got, want)
		}
	})

	t.Run("RevisionConflict", func(t *testing.T) {
		s := newStore(t)
		if err := s.Save(ctx, "new", &State{Revision: 3}); !errors.Is(err, ErrConflict) {
			t.Fatalf("first Save with Revision 3 = %v, want ErrConflict", err)
		}
		if _, err := s.Load(ctx, "new"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Load after refused first Save = %v, want ErrNotFound", err)
		}

		st := sampleState(t)
		if err := s.Save(ctx, "app", st); err != nil {
			t.Fatal(err)
		}
		stored, err := s.Load(ctx, "app")
		if err != nil {
			t.Fatal(err)
		}
		for _, rev := range []int64{0, 2, 7, -1} {
			stale := sampleState(t)
			stale.Revision = rev
			stale.Initialized = false
			err := s.Save(ctx, "app", stale)
			if !errors.Is(err, ErrConflict) {
				t.Fatalf("Save with Revision %d = %v, want ErrConflict", rev, err)
			}
			if stale.Revision != rev {
				t.Errorf("refused Save changed Revision %d to %d", rev, stale.Revision)
			}
		}
		got, err := s.Load(ctx, "app")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, stored) {
			t.Fatalf("refused Saves changed the state:\n%+v\nwant\n%+v", got, stored)
		}

		// Two writers that loaded the same revision: the second loses.
		a, _ := s.Load(ctx, "app")
		b, _ := s.Load(ctx, "app")
		if err := s.Save(ctx, "app", a); err != nil {
			t.Fatal(err)
		}
		if err := s.Save(ctx, "app", b); !errors.Is(err, ErrConflict) {
			t.Fatalf("second writer's Save = %v, want ErrConflict", err)
		}
	})

	t.Run("Aliasing", func(t *testing.T) {
		s := newStore(t)
		st := sampleState(t)
		if err := s.Save(ctx, "app", st); err != nil {
			t.Fatal(err)
		}
		want := st.Clone()

		// Mutating the saved state does not change the store.
		st.Baseline["DB_URL"] = conflict.Fingerprint{1}
		st.Baseline["NEW"] = conflict.Fingerprint{2}
		st.Conflicts["GONE"] = FlaggedConflict{Class: conflict.BothCreated}
		st.Sync.Status = Failed
		st.Import.Message = "changed"
		got, err := s.Load(ctx, "app")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("mutating the saved state changed the store:\n%+v\nwant\n%+v", got, want)
		}

		// Mutating a loaded state does not change the store.
		delete(got.Baseline, "DB_URL")
		got.Conflicts["X"] = FlaggedConflict{}
		got.Sync.Message = "changed"
		got.Import = nil
		again, err := s.Load(ctx, "app")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(again, want) {
			t.Fatalf("mutating a loaded state changed the store:\n%+v\nwant\n%+v", again, want)
		}
	})

	t.Run("IndependentSyncs", func(t *testing.T) {
		s := newStore(t)
		a, b := sampleState(t), &State{Sync: &Record{Status: Pending}}
		if err := s.Save(ctx, "a", a); err != nil {
			t.Fatal(err)
		}
		if err := s.Save(ctx, "b", b); err != nil {
			t.Fatal(err)
		}
		if b.Revision != 1 {
			t.Fatalf("first Save of b: Revision %d, want 1", b.Revision)
		}
		a.Initialized = false
		if err := s.Save(ctx, "a", a); err != nil {
			t.Fatal(err)
		}
		for name, want := range map[string]*State{"a": a, "b": b} {
			got, err := s.Load(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Load(%q) =\n%+v\nwant\n%+v", name, got, want)
			}
		}
	})

	t.Run("NilState", func(t *testing.T) {
		s := newStore(t)
		if err := s.Save(ctx, "app", nil); err == nil {
			t.Fatal("Save(nil) succeeded")
		}
		if _, err := s.Load(ctx, "app"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Load after Save(nil) = %v, want ErrNotFound", err)
		}
	})

	t.Run("FingerprintKeyStable", func(t *testing.T) {
		s := newStore(t)
		k1, err := s.FingerprintKey(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(k1) != fingerprint.KeySize {
			t.Fatalf("key has %d bytes, want %d", len(k1), fingerprint.KeySize)
		}
		if _, err := fingerprint.New(k1); err != nil {
			t.Fatal(err)
		}
		keep := append([]byte(nil), k1...)
		clear(k1) // the caller's copy
		if err := s.Save(ctx, "app", sampleState(t)); err != nil {
			t.Fatal(err)
		}
		k2, err := s.FingerprintKey(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if string(k2) != string(keep) {
			t.Fatal("FingerprintKey changed between calls")
		}
	})

	t.Run("CancelledContext", func(t *testing.T) {
		s := newStore(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := s.Load(cctx, "app"); err != context.Canceled {
			t.Errorf("Load = %v, want context.Canceled", err)
		}
		if err := s.Save(cctx, "app", &State{}); err != context.Canceled {
			t.Errorf("Save = %v, want context.Canceled", err)
		}
		if _, err := s.FingerprintKey(cctx); err != context.Canceled {
			t.Errorf("FingerprintKey = %v, want context.Canceled", err)
		}
		if _, err := s.Load(ctx, "app"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Save with a cancelled context saved: Load = %v", err)
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		s := newStore(t)
		const workers, each = 8, 10
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := s.FingerprintKey(ctx); err != nil {
					errs <- err
					return
				}
				for i := range each {
					for {
						st, err := s.Load(ctx, "app")
						if errors.Is(err, ErrNotFound) {
							st, err = &State{}, nil
						}
						if err != nil {
							errs <- err
							return
						}
						if st.Baseline == nil {
							st.Baseline = map[string]conflict.Fingerprint{}
						}
						st.Baseline[fmt.Sprintf("w%d-%d", w, i)] = conflict.Fingerprint{byte(w), byte(i)}
						err = s.Save(ctx, "app", st)
						if errors.Is(err, ErrConflict) {
							continue
						}
						if err != nil {
							errs <- err
							return
						}
						break
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		st, err := s.Load(ctx, "app")
		if err != nil {
			t.Fatal(err)
		}
		if st.Revision != workers*each || len(st.Baseline) != workers*each {
			t.Fatalf("after %d saves: Revision %d, %d baseline keys; a save was lost", workers*each, st.Revision, len(st.Baseline))
		}
	})
}

func TestMemory(t *testing.T) {
	testStore(t, func(t *testing.T) Store { return NewMemory() })
}

func TestMemoryZeroValue(t *testing.T) {
	testStore(t, func(t *testing.T) Store { return new(Memory) })
}
