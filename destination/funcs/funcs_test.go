package funcs_test

import (
	"context"
	"errors"
	"strconv"
	"testing"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/destinationtest"
	"github.com/secretsync/secretsync/destination/funcs"
)

// set writes key out of band, as the service itself would.
func (t *table) set(key, value string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.seq++
	t.rows[key] = destination.Secret{Value: value, Version: strconv.Itoa(t.seq)}
}

func (t *table) del(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.rows, key)
}

// TestConformance runs the conformance suite on a side backed by a map,
// written as the package documentation tells a user to write one.
func TestConformance(t *testing.T) {
	destinationtest.Run(t, destinationtest.Harness{
		New: func(t *testing.T) destinationtest.Fixture {
			db := &table{rows: map[string]destination.Secret{}}
			return destinationtest.Fixture{
				Destination: funcs.New(db.list, db.apply, nil),
				Set:         func(_ context.Context, k, v string) error { db.set(k, v); return nil },
				Delete:      func(_ context.Context, k string) error { db.del(k); return nil },
			}
		},
		Concurrency: 32,
	})
}

// TestListCopies checks that the map List returns is the caller's own, and
// that a nil map from the function lists as empty.
func TestListCopies(t *testing.T) {
	ctx := context.Background()
	own := map[string]destination.Secret{"A": {Value: "1", Version: "v1"}}
	d := funcs.New(func(context.Context) (map[string]destination.Secret, error) { return own, nil },
		func(context.Context, destination.Change) error { return nil }, nil)
	got, err := d.List(ctx)
	if err != nil || len(got) != 1 || got["A"].Version != "v1" {
		t.Fatalf("List = %v, %v", got, err)
	}
	delete(got, "A")
	if len(own) != 1 {
		t.Fatal("deleting from the listed map changed the function's map")
	}
	got, err = funcs.ListFunc(func(context.Context) (map[string]destination.Secret, error) { return nil, nil }).List(ctx)
	if err != nil || got == nil || len(got) != 0 {
		t.Fatalf("List of a nil map = %v, %v; want an empty map", got, err)
	}
}

// TestEndedContext checks that neither function is called once the
// context has ended, and that the context's error comes back unwrapped.
func TestEndedContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	called := 0
	d := funcs.New(
		func(context.Context) (map[string]destination.Secret, error) { called++; return nil, nil },
		func(context.Context, destination.Change) error { called++; return nil }, nil)
	if _, err := d.List(ctx); err != context.Canceled {
		t.Fatalf("List = %v, want context.Canceled", err)
	}
	errs, err := d.Apply(ctx, []destination.Change{{Key: "A", Value: "v"}})
	if err != context.Canceled || len(errs) != 1 || !errors.Is(errs[0], context.Canceled) {
		t.Fatalf("Apply = %v, %v; want context.Canceled for the call and the change", errs, err)
	}
	if called != 0 {
		t.Fatalf("functions called %d times after the context ended", called)
	}
}

// TestApplyStops checks the per-change results: each failure a KeyError
// naming operation and key, and the call stopped by ErrUnavailable or by
// Options.Stop, the rest not attempted.
func TestApplyStops(t *testing.T) {
	ctx := context.Background()
	errDenied := errors.New("credentials refused")
	var seen []string
	apply := func(_ context.Context, c destination.Change) error {
		seen = append(seen, c.Key)
		switch c.Key {
		case "CONFLICT":
			return destination.ErrConflict
		case "DENIED":
			return errDenied
		case "DOWN":
			return destination.ErrUnavailable
		}
		return nil
	}
	list := func(context.Context) (map[string]destination.Secret, error) { return nil, nil }
	changes := []destination.Change{{Key: "A", Value: "1"}, {Key: "CONFLICT", Delete: true, Expect: "3"}, {Key: "DENIED", Value: "x"}, {Key: "B", Value: "2"}}

	errs, err := funcs.New(list, apply, nil).Apply(ctx, changes)
	if err != nil || errs[0] != nil || errs[3] != nil || !errors.Is(errs[1], destination.ErrConflict) || !errors.Is(errs[2], errDenied) {
		t.Fatalf("Apply without Stop = %v, %v", errs, err)
	}
	var ke *destination.KeyError
	if !errors.As(errs[1], &ke) || ke.Op != "delete" || ke.Key != "CONFLICT" {
		t.Fatalf("error of a delete = %#v, want a KeyError for delete CONFLICT", errs[1])
	}

	seen = nil
	stop := &funcs.Options{Stop: func(err error) bool { return errors.Is(err, errDenied) }}
	errs, err = funcs.New(list, apply, stop).Apply(ctx, changes)
	if !errors.Is(err, errDenied) || !errors.Is(errs[3], errDenied) || len(seen) != 3 {
		t.Fatalf("Apply with Stop = %v, %v after %v; want B not attempted", errs, err, seen)
	}

	seen = nil
	errs, err = funcs.New(list, apply, nil).Apply(ctx, []destination.Change{{Key: "DOWN", Value: "1"}, {Key: "A", Value: "1"}})
	if !errors.Is(err, destination.ErrUnavailable) || !errors.Is(errs[1], destination.ErrUnavailable) || len(seen) != 1 {
		t.Fatalf("Apply of an unavailable store = %v, %v after %v", errs, err, seen)
	}
}

// TestCapabilities checks that the side reports the capabilities it was
// given, and the zero value (check-and-set, readable) otherwise.
func TestCapabilities(t *testing.T) {
	list := func(context.Context) (map[string]destination.Secret, error) { return nil, nil }
	apply := func(context.Context, destination.Change) error { return nil }
	if c := destination.CapabilitiesOf(funcs.New(list, apply, nil)); c != (destination.Capabilities{}) {
		t.Fatalf("capabilities = %+v, want the zero value", c)
	}
	want := destination.Capabilities{NoCheckAndSet: true}
	if c := destination.CapabilitiesOf(funcs.New(list, apply, &funcs.Options{Capabilities: want})); c != want {
		t.Fatalf("capabilities = %+v, want %+v", c, want)
	}
}

// TestNewNil checks that a missing function is refused at once rather than
// at the first round.
func TestNewNil(t *testing.T) {
	list := func(context.Context) (map[string]destination.Secret, error) { return nil, nil }
	for name, f := range map[string]func(){
		"list":  func() { funcs.New(nil, func(context.Context, destination.Change) error { return nil }, nil) },
		"apply": func() { funcs.New(list, nil, nil) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New with a nil %s function did not panic", name)
				}
			}()
			f()
		}()
	}
}
