// Package funcs makes a side of a sync out of two functions: one that
// lists what a store holds and one that applies a change to it. It is for
// a service that keeps its secrets in a store of its own, such as a table
// of its database, and wants to sync them with Vault without writing a
// whole [destination.Destination]:
//
//	db := funcs.New(listSecrets, applySecret, nil)
//	s, err := sync.New(sync.Config{Name: "app", Source: db, Destination: vault})
//
// The adapter does the shared work: it checks the context, copies the
// listed map, applies the changes of one call one after the other through
// [destination.ApplyEach] (which wraps each failure in a
// *[destination.KeyError] and stops at an unavailable store), and reports
// the store's [destination.Capabilities]. The two functions only read and
// write.
//
// # Versions
//
// List returns, with each value, a version of the key: a text that changes
// whenever the key is written, by anyone. A revision number taken from one
// sequence for the whole store, a row version, or a random id written
// with each value all do; a modification time does only if two writes can
// never get the same one. A counter kept per key that starts again at 1
// when a key is deleted and created again does not: a stale version could
// then match a newer value.
//
// # Check-and-set
//
// Apply is given each [destination.Change] with Expect, the version the
// engine read. The apply function must make the write conditional on it,
// in one step the store guarantees (a transaction, or a conditional
// statement), and return an error wrapping [destination.ErrConflict] when
// the condition fails, having written nothing:
//
//   - a put with Expect "" creates the key and fails if it exists
//     (INSERT ... that fails on the primary key: ErrConflict);
//   - a put with Expect set updates the key only if it still has that
//     version (UPDATE secrets SET value = $1, version = nextval('v')
//     WHERE key = $2 AND version = $3; no row updated: ErrConflict);
//   - a delete removes the key only if it still has that version, and
//     succeeds when the key no longer exists, whatever Expect is (DELETE
//     ... WHERE key = $1 AND version = $2; no row deleted but the key
//     exists: ErrConflict).
//
// This is what lets the engine promise that no concurrent write is ever
// overwritten blindly: a write that lost the race is reported, read again
// and planned again by the next round. A store that cannot make a write
// conditional must say so with Options.Capabilities (NoCheckAndSet) and
// narrow the race as far as it can (see [destination.Capabilities]).
//
// The error of the apply function is wrapped, never printed with a value:
// it must not contain the change's Value. Return an error wrapping
// [destination.ErrInvalidKey] or [destination.ErrInvalidValue] for a key or
// value the store cannot hold exactly, and one wrapping
// [destination.ErrUnavailable] when the store as a whole cannot serve (the
// rest of the call is then not attempted).
//
// # Concurrency
//
// A *Destination is safe for concurrent use when its functions are: the
// engine calls List and Apply from several goroutines at once (Apply with
// disjoint sets of keys), and the adapter adds no locking of its own.
package funcs

import (
	"context"
	"maps"

	"github.com/secretsync/secretsync/destination"
)

// ListFunc lists every key of a store with its value and version. The
// adapter hands the caller a copy of the map it returns, so it may return a
// map it keeps, provided nothing writes that map until it is replaced.
type ListFunc func(ctx context.Context) (map[string]destination.Secret, error)

// ApplyFunc applies one change, conditional on its Expect (see the package
// documentation), and returns an error wrapping destination.ErrConflict
// when the key no longer has the expected version.
type ApplyFunc func(ctx context.Context, c destination.Change) error

// Options are the optional parts of a Destination. The zero value
// describes a readable store with check-and-set.
type Options struct {
	// Capabilities are what the store can do; see destination.Capabilities.
	Capabilities destination.Capabilities
	// Stop, when set, reports an error of the apply function after which
	// no other change of the call can succeed either (refused credentials,
	// say), so that the rest of the call is not attempted. Errors wrapping
	// destination.ErrUnavailable stop the call anyway.
	Stop func(error) bool
}

// Destination is a destination.Destination made of a ListFunc and an
// ApplyFunc. It is safe for concurrent use when they are.
type Destination struct {
	list  ListFunc
	apply ApplyFunc
	opts  Options
}

var (
	_ destination.Destination = (*Destination)(nil)
	_ destination.Describer   = (*Destination)(nil)
	_ destination.Reader      = ListFunc(nil)
)

// New returns the side made of list and apply. opts may be nil. It panics
// when list or apply is nil, a programming error; for a side that is only
// read, use a ListFunc as a destination.Reader.
func New(list ListFunc, apply ApplyFunc, opts *Options) *Destination {
	if list == nil || apply == nil {
		panic("funcs: New needs both a list and an apply function")
	}
	d := &Destination{list: list, apply: apply}
	if opts != nil {
		d.opts = *opts
	}
	return d
}

// List returns what the list function returns, in a map of the caller's
// own. It returns ctx's error, without calling the function, when ctx has
// ended.
func (d *Destination) List(ctx context.Context) (map[string]destination.Secret, error) {
	return d.list.List(ctx)
}

// Apply calls the apply function for each change, in order, as
// destination.ApplyEach describes: one result per change, each failure a
// *destination.KeyError wrapping the function's error, and the call
// stopped when ctx ends or the store is unavailable.
func (d *Destination) Apply(ctx context.Context, changes []destination.Change) ([]error, error) {
	return destination.ApplyEach(ctx, changes, d.apply, d.opts.Stop)
}

// Capabilities returns Options.Capabilities.
func (d *Destination) Capabilities() destination.Capabilities { return d.opts.Capabilities }

// List calls f, unless ctx has ended, and returns a copy of its map, so
// that a ListFunc is a destination.Reader: a read-only side, such as the
// source of a push.
func (f ListFunc) List(ctx context.Context) (map[string]destination.Secret, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m, err := f(ctx)
	if err != nil {
		return nil, err
	}
	if m == nil {
		return map[string]destination.Secret{}, nil
	}
	return maps.Clone(m), nil
}
