package destination_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/secretsync/secretsync/destination"
)

func TestApplyEach(t *testing.T) {
	var (
		errRefused = errors.New("credentials refused")
		errOther   = errors.New("some error of the key")
		unavail    = fmt.Errorf("%w: no answer", destination.ErrUnavailable)
	)
	put := func(k string) destination.Change { return destination.Change{Key: k, Value: "v"} }
	del := func(k string) destination.Change { return destination.Change{Key: k, Delete: true} }
	changes := []destination.Change{put("A"), del("B"), put("C"), del("D")}

	// A result: nil, or a *KeyError wrapping want; notAttempted says that
	// its message marks it so.
	type result struct {
		want         error
		notAttempted bool
	}
	ok := result{}
	failed := func(err error) result { return result{want: err} }
	skipped := func(err error) result { return result{want: err, notAttempted: true} }
	for _, tt := range []struct {
		name    string
		fail    map[string]error // apply's error by key
		cancel  string           // the key during whose apply ctx is cancelled
		cancel0 bool             // ctx cancelled before the call
		stop    func(error) bool
		called  []string // the keys apply was called for
		results []result
		callErr error // nil, or what the call error wraps
		exact   bool  // the call error is callErr itself, unwrapped
	}{{
		name:    "all applied",
		called:  []string{"A", "B", "C", "D"},
		results: []result{ok, ok, ok, ok},
	}, {
		name:    "errors of keys do not stop",
		fail:    map[string]error{"A": destination.ErrConflict, "C": errOther},
		called:  []string{"A", "B", "C", "D"},
		results: []result{failed(destination.ErrConflict), ok, failed(errOther), ok},
	}, {
		name:    "unavailable stops",
		fail:    map[string]error{"B": unavail},
		called:  []string{"A", "B"},
		results: []result{ok, failed(unavail), skipped(unavail), skipped(unavail)},
		callErr: unavail,
	}, {
		name:    "unavailable at the last change",
		fail:    map[string]error{"D": unavail},
		called:  []string{"A", "B", "C", "D"},
		results: []result{ok, ok, ok, failed(unavail)},
		callErr: unavail,
	}, {
		name:    "stop reports an error that stops",
		fail:    map[string]error{"A": errOther, "B": errRefused},
		stop:    func(err error) bool { return errors.Is(err, errRefused) },
		called:  []string{"A", "B"},
		results: []result{failed(errOther), failed(errRefused), skipped(errRefused), skipped(errRefused)},
		callErr: errRefused,
	}, {
		name:    "stop does not replace unavailable",
		fail:    map[string]error{"A": unavail},
		stop:    func(error) bool { return false },
		called:  []string{"A"},
		results: []result{failed(unavail), skipped(unavail), skipped(unavail), skipped(unavail)},
		callErr: unavail,
	}, {
		name:    "cancelled before the call",
		cancel0: true,
		results: []result{failed(context.Canceled), failed(context.Canceled), failed(context.Canceled), failed(context.Canceled)},
		callErr: context.Canceled,
		exact:   true,
	}, {
		name:    "cancelled during a change that fails: it keeps its own error",
		fail:    map[string]error{"B": unavail},
		cancel:  "B",
		called:  []string{"A", "B"},
		results: []result{ok, failed(unavail), failed(context.Canceled), failed(context.Canceled)},
		callErr: context.Canceled,
		exact:   true,
	}, {
		name:    "cancelled during a change that is applied",
		cancel:  "B",
		called:  []string{"A", "B"},
		results: []result{ok, ok, failed(context.Canceled), failed(context.Canceled)},
		callErr: context.Canceled,
		exact:   true,
	}} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.cancel0 {
				cancel()
			}
			var called []string
			errs, err := destination.ApplyEach(ctx, changes, func(actx context.Context, c destination.Change) error {
				if actx != ctx {
					t.Errorf("apply of %s got another context", c.Key)
				}
				called = append(called, c.Key)
				if c.Key == tt.cancel {
					cancel()
				}
				return tt.fail[c.Key]
			}, tt.stop)
			if !slices.Equal(called, tt.called) {
				t.Errorf("apply called for %v, want %v", called, tt.called)
			}
			if len(errs) != len(changes) {
				t.Fatalf("%d results for %d changes: %v", len(errs), len(changes), errs)
			}
			for i, r := range tt.results {
				e := errs[i]
				if r.want == nil {
					if e != nil {
						t.Errorf("result %d = %v, want nil", i, e)
					}
					continue
				}
				var ke *destination.KeyError
				if !errors.As(e, &ke) || ke.Key != changes[i].Key || ke.Op != []string{"put", "delete"}[i%2] {
					t.Errorf("result %d = %#v, want a *KeyError for %v", i, e, changes[i])
					continue
				}
				if !errors.Is(e, r.want) {
					t.Errorf("result %d = %v, want it to wrap %v", i, e, r.want)
				}
				if got := strings.Contains(e.Error(), "not attempted"); got != r.notAttempted {
					t.Errorf("result %d = %q: marked not attempted %v, want %v", i, e, got, r.notAttempted)
				}
			}
			switch {
			case tt.callErr == nil && err != nil:
				t.Errorf("call error %v, want nil", err)
			case tt.exact && err != tt.callErr:
				t.Errorf("call error %v, want %v itself", err, tt.callErr)
			case !errors.Is(err, tt.callErr):
				t.Errorf("call error %v, want it to wrap %v", err, tt.callErr)
			}
		})
	}
}

func TestApplyEachNoChanges(t *testing.T) {
	errs, err := destination.ApplyEach(context.Background(), nil, func(context.Context, destination.Change) error {
		t.Fatal("apply called without changes")
		return nil
	}, nil)
	if errs == nil || len(errs) != 0 || err != nil {
		t.Fatalf("ApplyEach of no changes = %#v, %v; want an empty slice, nil", errs, err)
	}
}

// A store written one key at a time implements Apply with ApplyEach and a
// function that writes one change. This one holds B already, and stops
// answering at C.
func ExampleApplyEach() {
	store := map[string]string{"B": "old"}
	apply := func(ctx context.Context, c destination.Change) error {
		_, exists := store[c.Key]
		switch {
		case c.Key == "C":
			return fmt.Errorf("%w: no answer", destination.ErrUnavailable)
		case c.Delete:
			delete(store, c.Key)
		case c.Expect == "" && exists:
			return destination.ErrConflict
		default:
			store[c.Key] = c.Value
		}
		return nil
	}
	changes := []destination.Change{
		{Key: "A", Value: "a"},
		{Key: "B", Value: "b"},
		{Key: "C", Delete: true},
		{Key: "D", Value: "d"},
	}
	errs, err := destination.ApplyEach(context.Background(), changes, apply, nil)
	for i, e := range errs {
		fmt.Printf("%s: %v\n", changes[i].Key, e)
	}
	fmt.Println("call:", err)
	fmt.Println("store:", store)
	// Output:
	// A: <nil>
	// B: put "B": destination: precondition failed: key changed since it was read
	// C: delete "C": destination: store unavailable: no answer
	// D: put "D": not attempted: destination: store unavailable: no answer
	// call: apply stopped: destination: store unavailable: no answer
	// store: map[A:a B:old]
}
