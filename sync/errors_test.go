package sync_test

import (
	"context"
	"errors"
	"strings"
	gosync "sync"
	"testing"

	multierror "github.com/hashicorp/go-multierror"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/state"
	"github.com/secretsync/secretsync/sync"
)

// TestKeyErrorNamesTheKeyOnce: a key that the destination refuses, with a
// *destination.KeyError as destinations do, is named once in the message,
// and errors.As still finds both errors.
func TestKeyErrorNamesTheKeyOnce(t *testing.T) {
	refuse := func(_ context.Context, c destination.Change) error {
		if c.Key == "SECRET_KEY" {
			return destination.ErrInvalidValue
		}
		return nil
	}
	s, err := sync.New(sync.Config{Name: "once", Source: memory.New(map[string]string{"SECRET_KEY": "1", "B": "2"}),
		Destination: memory.NewWithOptions(nil, &memory.Options{BeforeApply: refuse})})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Run(context.Background())
	var ke *sync.KeyError
	var dke *destination.KeyError
	if !errors.As(err, &ke) || !errors.As(err, &dke) || !errors.Is(err, destination.ErrInvalidValue) {
		t.Fatalf("Run = %v, want a *sync.KeyError wrapping a *destination.KeyError", err)
	}
	msg := ke.Error()
	if n := strings.Count(msg, "SECRET_KEY"); n != 1 {
		t.Errorf("%q names the key %d times, want once", msg, n)
	}
	if want := `sync: put "SECRET_KEY" at destination: ` + destination.ErrInvalidValue.Error(); msg != want {
		t.Errorf("message %q, want %q", msg, want)
	}
	// A destination key other than the key is named once too.
	ke2 := &sync.KeyError{Key: "A", DestinationKey: "prod/A", Op: "put", Side: sync.SideDestination,
		Err: &destination.KeyError{Op: "put", Key: "prod/A", Err: destination.ErrConflict}}
	if got, want := ke2.Error(), `sync: put "A" (destination key "prod/A") at destination: `+destination.ErrConflict.Error(); got != want {
		t.Errorf("message %q, want %q", got, want)
	}
	// Any other cause is kept whole.
	other := errors.New("boom")
	ke3 := &sync.KeyError{Key: "A", Op: "render", Side: sync.SideSource, Err: other}
	if got, want := ke3.Error(), `sync: render "A" at source: boom`; got != want {
		t.Errorf("message %q, want %q", got, want)
	}
}

// TestRunErrorTypes: Run returns per-key failures as a *multierror.Error
// of *KeyError, and when the state cannot be saved either, the same
// *multierror.Error holds the *SideError too, as Run's documentation says.
func TestRunErrorTypes(t *testing.T) {
	saveErr := errors.New("disk on fire")
	for _, tt := range []struct {
		name     string
		saveFail bool
		want     int // errors in the multierror
	}{
		{"keys", false, 2},
		{"keys and save", true, 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			store := &lastSaveFails{Store: state.NewMemory()}
			if tt.saveFail {
				store.err = saveErr
			}
			refuse := func(_ context.Context, c destination.Change) error {
				store.wrote = true
				if c.Key != "OK" {
					return destination.ErrInvalidValue
				}
				return nil
			}
			s, err := sync.New(sync.Config{Name: "types", Source: memory.New(map[string]string{"A": "1", "B": "2", "OK": "3"}),
				Destination: memory.NewWithOptions(nil, &memory.Options{BeforeApply: refuse}), Store: store, Concurrency: 1})
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Run(context.Background())
			me, ok := err.(*multierror.Error)
			if !ok {
				t.Fatalf("Run = %T %v, want a *multierror.Error", err, err)
			}
			if len(me.Errors) != tt.want {
				t.Fatalf("%d errors, want %d: %v", len(me.Errors), tt.want, err)
			}
			for i, e := range me.Errors {
				var ke *sync.KeyError
				var se *sync.SideError
				switch {
				case i < 2 && errors.As(e, &ke):
				case i == 2 && errors.As(e, &se) && se.Side == sync.SideStore && se.Op == sync.OpSave && errors.Is(e, saveErr):
				default:
					t.Errorf("error %d is %T %v", i, e, e)
				}
			}
		})
	}
}

// lastSaveFails is a state store whose saves fail with err, if set, once
// the round has written (the save that commits it).
type lastSaveFails struct {
	state.Store
	err   error
	wrote bool
}

func (s *lastSaveFails) Save(ctx context.Context, name string, st *state.State) error {
	if s.err != nil && s.wrote {
		return s.err
	}
	return s.Store.Save(ctx, name, st)
}

// lossyLock is a state.Lock whose held context ends, with the cause a
// lock gives when it loses the lease, at the first write.
type lossyLock struct {
	mu     gosync.Mutex
	cancel context.CancelCauseFunc
}

func (l *lossyLock) Acquire(ctx context.Context, name string) (context.Context, func(), error) {
	return l.TryAcquire(ctx, name)
}

func (l *lossyLock) TryAcquire(ctx context.Context, _ string) (context.Context, func(), error) {
	held, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	l.mu.Lock()
	l.cancel = cancel
	l.mu.Unlock()
	return held, func() { cancel(errors.New("released")) }, nil
}

func (l *lossyLock) lose(cause error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cancel(cause)
}

// TestLostLockIsReported: a round whose lock is lost while it writes stops
// with an error wrapping state.ErrLockLost, whether the lock said why or
// not.
func TestLostLockIsReported(t *testing.T) {
	for _, tt := range []struct {
		name  string
		cause error
		says  string // in the message
	}{
		{"lock says why", errors.Join(errors.New("lease not renewed"), state.ErrLockLost), "lease not renewed"},
		{"lock says nothing", errors.New("gone"), "lock lost"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			lock := &lossyLock{}
			lose := func(ctx context.Context, c destination.Change) error {
				lock.lose(tt.cause)
				<-ctx.Done()
				return context.Cause(ctx)
			}
			s, err := sync.New(sync.Config{Name: "lossy", Source: memory.New(map[string]string{"A": "1"}),
				Destination: memory.NewWithOptions(nil, &memory.Options{BeforeApply: lose}), Lock: lock})
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Run(context.Background())
			if !errors.Is(err, state.ErrLockLost) || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("Run = %v, want an error wrapping state.ErrLockLost that says %q", err, tt.says)
			}
		})
	}
}
