package sync_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/secretsync/secretsync/audit"
	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/state"
	"github.com/secretsync/secretsync/sync"
)

// errSourceGone is what a source reports once its mount cannot be read.
var errSourceGone = errors.New("permission denied on the source mount")

// failingSource is a source whose List fails once gone is set, as a Vault
// secret does when its mount is disabled or its token loses the policy.
func failingSource(kv map[string]string) (*memory.Destination, *atomic.Bool) {
	gone := new(atomic.Bool)
	src := memory.NewWithOptions(kv, &memory.Options{BeforeList: func(context.Context) error {
		if gone.Load() {
			return errSourceGone
		}
		return nil
	}})
	return src, gone
}

// TestRemoveWithoutSource: a Remove whose source cannot be listed deletes
// what the sync wrote, from its saved state, with the engine's safeties:
// destination keys the state does not hold are left, a key written at the
// destination during the Remove is not deleted (check-and-set), every
// deletion is audited, and the status is recorded.
func TestRemoveWithoutSource(t *testing.T) {
	for _, tt := range []struct {
		name      string
		writeOnly bool
		namer     sync.KeyNamer
	}{
		{name: "key schema"},
		{name: "key namer", namer: sync.KeyNamerFunc(func(k string) (string, error) { return "APP_" + k, nil })},
		{name: "write-only", writeOnly: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			src, gone := failingSource(map[string]string{"A": "1", "B": "2", "C": "3"})
			var during func(destination.Change) // a concurrent writer, during Remove
			dst := memory.NewWithOptions(map[string]string{"OTHER": "o"}, &memory.Options{
				WriteOnly: tt.writeOnly,
				BeforeApply: func(_ context.Context, c destination.Change) error {
					if during != nil {
						during(c)
					}
					return nil
				},
			})
			rec := audit.NewRecorder()
			cfg := sync.Config{Name: "app", Source: src, Destination: dst, Store: state.NewMemory(), Auditor: rec,
				KeySchema: "APP_{{secretKey}}"}
			if tt.namer != nil {
				cfg.KeySchema, cfg.KeyNamer = "", tt.namer
			}
			s, err := sync.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Run(ctx); err != nil {
				t.Fatal(err)
			}
			wantSnapshot(t, "dst", dst, map[string]string{"APP_A": "1", "APP_B": "2", "APP_C": "3", "OTHER": "o"})
			if _, err := s.Run(ctx); err != nil { // the sync's own markers, for write-only
				t.Fatal(err)
			}

			// The source becomes unreadable; someone else creates a key
			// under the schema, and changes APP_C while Remove runs.
			gone.Store(true)
			if _, err := s.Run(ctx); !errors.Is(err, errSourceGone) {
				t.Fatalf("Run with the source gone = %v", err)
			}
			dst.Set("APP_D", "not ours")
			during = func(c destination.Change) {
				if c.Key == "APP_C" && c.Delete {
					dst.Set("APP_C", "changed meanwhile")
				}
			}
			rec.Reset()
			rep, err := s.Remove(ctx)
			if err != nil {
				t.Fatalf("Remove with the source gone = %v, %v", rep, err)
			}
			wantAction(t, rep, "A", sync.Deleted)
			wantAction(t, rep, "B", sync.Deleted)
			wantAction(t, rep, "C", sync.Retry)
			if tt.namer == nil {
				wantAction(t, rep, "D", sync.Skipped)
			}
			wantSnapshot(t, "dst", dst, map[string]string{"APP_C": "changed meanwhile", "APP_D": "not ours", "OTHER": "o"})
			var deleted []string
			for _, e := range rec.Filter(audit.SecretDeleted) {
				if e.Operation != sync.OpRemove || e.Outcome != audit.Success {
					t.Errorf("deletion event %+v", e)
				}
				deleted = append(deleted, e.DestinationKey)
			}
			if strings.Join(deleted, ",") != "APP_A,APP_B" && strings.Join(deleted, ",") != "APP_B,APP_A" {
				t.Errorf("deletion events for %v, want APP_A and APP_B", deleted)
			}
			st, err := s.Status(ctx)
			if err != nil || st.Remove == nil || st.Remove.Status != state.Pending || st.Remove.RunID != rep.RunID {
				t.Fatalf("remove status = %+v, %v", st.Remove, err)
			}

			// The key that changed is still the sync's in its state; the
			// next Remove deletes it, with the source still gone.
			during = nil
			rep, err = s.Remove(ctx)
			if err != nil {
				t.Fatalf("second Remove = %v", err)
			}
			wantAction(t, rep, "C", sync.Deleted)
			wantSnapshot(t, "dst", dst, map[string]string{"APP_D": "not ours", "OTHER": "o"})
			if st, _ := s.Status(ctx); st.Remove.Status != state.Succeeded {
				t.Fatalf("remove status = %+v", st.Remove)
			}
			// With the source back, the next Run is a first round.
			gone.Store(false)
			if plan, _ := s.Plan(ctx); !plan.Initial {
				t.Fatalf("Plan after Remove: %v", plan)
			}
		})
	}
}

// unknownOutcome is a destination that applies each put and then answers
// with an error that says nothing of its outcome (a lost answer), while
// lost is set.
type unknownOutcome struct {
	*memory.Destination
	lost atomic.Bool
}

func (u *unknownOutcome) Apply(ctx context.Context, cs []destination.Change) ([]error, error) {
	errs, err := u.Destination.Apply(ctx, cs)
	if u.lost.Load() && err == nil {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = errors.New("connection reset by peer")
			}
		}
	}
	return errs, err
}

// TestRemoveWithoutSourcePendingWrite: a key whose only trace in the state
// is a pending write (its put landed, but the answer was lost) is the
// sync's; a Remove without the source finds it and deletes it, also when
// a KeyNamer names it.
func TestRemoveWithoutSourcePendingWrite(t *testing.T) {
	ctx := context.Background()
	src, gone := failingSource(map[string]string{"a": "1"})
	dst := &unknownOutcome{Destination: memory.New(map[string]string{"OTHER": "o"})}
	s, err := sync.New(sync.Config{Name: "app", Source: src, Destination: dst, Store: state.NewMemory(),
		KeyNamer: sync.KeyNamerFunc(func(k string) (string, error) { return "APP_" + strings.ToUpper(k), nil })})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	src.Set("new", "2")
	dst.lost.Store(true)
	if _, err := s.Run(ctx); err == nil {
		t.Fatal("a write of unknown outcome did not fail the round")
	}
	wantSnapshot(t, "dst", dst.Destination, map[string]string{"APP_A": "1", "APP_NEW": "2", "OTHER": "o"})
	dst.lost.Store(false)
	gone.Store(true)
	rep, err := s.Remove(ctx)
	if err != nil {
		t.Fatalf("Remove = %v, %v", rep, err)
	}
	wantAction(t, rep, "a", sync.Deleted)
	wantAction(t, rep, "new", sync.Deleted)
	wantSnapshot(t, "dst", dst.Destination, map[string]string{"OTHER": "o"})
}

// TestRemoveDestinationUnreadable: without a listing of the destination,
// Remove cannot know what to delete: it fails, and records so.
func TestRemoveDestinationUnreadable(t *testing.T) {
	ctx := context.Background()
	src, gone := failingSource(map[string]string{"a": "1"})
	var down atomic.Bool
	dst := memory.NewWithOptions(nil, &memory.Options{BeforeList: func(context.Context) error {
		if down.Load() {
			return destination.ErrUnavailable
		}
		return nil
	}})
	s, err := sync.New(sync.Config{Name: "app", Source: src, Destination: dst})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	gone.Store(true)
	down.Store(true)
	var se *sync.SideError
	if _, err := s.Remove(ctx); !errors.As(err, &se) || se.Side != sync.SideDestination {
		t.Fatalf("Remove = %v, want a SideError of the destination", err)
	}
	if st, _ := s.Status(ctx); st.Remove == nil || st.Remove.Status != state.Failed {
		t.Fatalf("remove status = %+v", st.Remove)
	}
	wantSnapshot(t, "dst", dst, map[string]string{"a": "1"})
}
