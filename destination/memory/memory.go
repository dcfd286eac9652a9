// Package memory is an in-memory destination with versions and
// check-and-set, for unit tests of sync logic and for examples.
//
// A *Destination is both a source and a destination of a sync. Its Set and
// Delete methods play the part of a user or another system changing the
// store out of band; Options hooks inject failures and races.
package memory

import (
	"context"
	"fmt"
	"strconv"
	gosync "sync"

	"github.com/secretsync/secretsync/destination"
)

// Options adjusts a Destination for tests.
type Options struct {
	// BeforeApply, when set, is called for each change of an Apply before
	// it is applied, without any lock held (so it may call Set or Delete
	// to simulate a concurrent writer). A non-nil error becomes that
	// change's result and the change is not applied.
	BeforeApply func(ctx context.Context, c destination.Change) error
	// BeforeList, when set, is called at the start of List; a non-nil error
	// is returned by List.
	BeforeList func(ctx context.Context) error
	// WriteOnly makes the destination behave as a store whose values
	// cannot be read back (destination.Capabilities.WriteOnly), such as
	// GitHub Actions secrets: List returns every key with an empty value
	// and its version as the marker of its last write. Get and Snapshot
	// still show the values, for tests.
	WriteOnly bool
}

// Stats counts calls and writes, so tests can assert that an idle round
// wrote nothing.
type Stats struct {
	Lists   int // List calls
	Applies int // Apply calls
	Puts    int // puts applied
	Deletes int // deletes applied (of keys that existed)
}

type entry struct {
	value   string
	version uint64
}

// Destination is an in-memory destination.Destination. Versions come from
// one counter, so a key deleted and created again never gets back a version
// it had. It is safe for concurrent use. The zero value is not usable; use
// New or NewWithOptions.
type Destination struct {
	opts  Options
	mu    gosync.Mutex
	data  map[string]entry
	next  uint64
	stats Stats
	subs  map[chan struct{}]struct{}
}

var (
	_ destination.Destination = (*Destination)(nil)
	_ destination.Describer   = (*Destination)(nil)
	_ destination.Notifier    = (*Destination)(nil)
)

// Notify returns a channel that receives a value after each change made
// out of band (Set or Delete), coalesced while the receiver is busy, until
// ctx ends. Writes by Apply are not announced: they are the sync's own, and
// announcing them would only make a watching sync run an idle round.
func (d *Destination) Notify(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	d.mu.Lock()
	if d.subs == nil {
		d.subs = make(map[chan struct{}]struct{})
	}
	d.subs[ch] = struct{}{}
	d.mu.Unlock()
	context.AfterFunc(ctx, func() {
		d.mu.Lock()
		delete(d.subs, ch)
		d.mu.Unlock()
	})
	return ch
}

// notifyLocked tells subscribers about a change; d.mu is held.
func (d *Destination) notifyLocked() {
	for ch := range d.subs {
		select {
		case ch <- struct{}{}:
		default: // one is pending already
		}
	}
}

// New returns a Destination holding a copy of initial (which may be nil).
func New(initial map[string]string) *Destination {
	return NewWithOptions(initial, nil)
}

// NewWithOptions is like New, with hooks for tests.
// A nil options means the zero Options.
func NewWithOptions(initial map[string]string, options *Options) *Destination {
	var opts Options
	if options != nil {
		opts = *options
	}
	d := &Destination{opts: opts, data: make(map[string]entry, len(initial))}
	for k, v := range initial {
		d.next++
		d.data[k] = entry{value: v, version: d.next}
	}
	return d
}

func version(v uint64) string { return strconv.FormatUint(v, 10) }

// List returns every key with its value and version.
func (d *Destination) List(ctx context.Context) (map[string]destination.Secret, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if d.opts.BeforeList != nil {
		if err := d.opts.BeforeList(ctx); err != nil {
			return nil, err
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stats.Lists++
	out := make(map[string]destination.Secret, len(d.data))
	for k, e := range d.data {
		v := e.value
		if d.opts.WriteOnly {
			v = ""
		}
		out[k] = destination.Secret{Value: v, Version: version(e.version)}
	}
	return out, nil
}

// Apply applies each change if its key still has the expected version. A
// context cancelled before the call returns the context's error for the
// call; cancelled during the call, it stops between changes, and the changes
// not applied get the context's error as their result.
func (d *Destination) Apply(ctx context.Context, changes []destination.Change) ([]error, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.stats.Applies++
	d.mu.Unlock()
	errs := make([]error, len(changes))
	for i, c := range changes {
		if err := ctx.Err(); err != nil {
			for j := i; j < len(changes); j++ {
				errs[j] = opError(changes[j], err)
			}
			return errs, nil
		}
		if d.opts.BeforeApply != nil {
			if err := d.opts.BeforeApply(ctx, c); err != nil {
				errs[i] = opError(c, err)
				continue
			}
		}
		errs[i] = d.apply(c)
	}
	return errs, nil
}

func opError(c destination.Change, err error) error {
	op := "put"
	if c.Delete {
		op = "delete"
	}
	return &destination.KeyError{Op: op, Key: c.Key, Err: err}
}

func (d *Destination) apply(c destination.Change) error {
	if c.Key == "" {
		return opError(c, destination.ErrInvalidKey)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.data[c.Key]
	if c.Delete {
		if !ok {
			return nil // already gone: the goal is reached
		}
		if c.Expect != version(e.version) {
			return opError(c, fmt.Errorf("%w: have version %d, expected %q", destination.ErrConflict, e.version, c.Expect))
		}
		delete(d.data, c.Key)
		d.stats.Deletes++
		return nil
	}
	switch {
	case !ok && c.Expect != "":
		return opError(c, fmt.Errorf("%w: key is absent, expected version %q", destination.ErrConflict, c.Expect))
	case ok && c.Expect != version(e.version):
		return opError(c, fmt.Errorf("%w: have version %d, expected %q", destination.ErrConflict, e.version, c.Expect))
	}
	d.next++
	d.data[c.Key] = entry{value: c.Value, version: d.next}
	d.stats.Puts++
	return nil
}

// Capabilities reports that Apply is not atomic (concurrent calls with
// disjoint keys are fine), and WriteOnly when Options say so.
func (d *Destination) Capabilities() destination.Capabilities {
	return destination.Capabilities{WriteOnly: d.opts.WriteOnly}
}

// Set writes a value out of band, as another writer would, and returns the
// new version. It is not counted in Stats.
func (d *Destination) Set(key, value string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.next++
	d.data[key] = entry{value: value, version: d.next}
	d.notifyLocked()
	return version(d.next)
}

// Delete removes a key out of band. It is not counted in Stats.
func (d *Destination) Delete(key string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.data[key]; ok {
		delete(d.data, key)
		d.notifyLocked()
	}
}

// Get returns a key's value and version.
func (d *Destination) Get(key string) (destination.Secret, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.data[key]
	if !ok {
		return destination.Secret{}, false
	}
	return destination.Secret{Value: e.value, Version: version(e.version)}, true
}

// Snapshot returns a copy of every key and value.
func (d *Destination) Snapshot() map[string]string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]string, len(d.data))
	for k, e := range d.data {
		out[k] = e.value
	}
	return out
}

// Len returns the number of keys.
func (d *Destination) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.data)
}

// Stats returns the counts of calls and writes so far.
func (d *Destination) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}

// String describes the destination without any value.
func (d *Destination) String() string {
	return fmt.Sprintf("memory.Destination(%d keys)", d.Len())
}

// GoString is like String, so that %#v prints no value either.
func (d *Destination) GoString() string { return d.String() }

// Format prints the destination as String does for every verb, so that
// %v and %+v print no value either.
func (d *Destination) Format(f fmt.State, verb rune) { fmt.Fprint(f, d.String()) }

// Reader returns a read-only view of d: a source that a sync cannot write
// to, for testing push-only configurations.
func (d *Destination) Reader() destination.Reader { return readOnly{d} }

type readOnly struct{ d *Destination }

func (r readOnly) List(ctx context.Context) (map[string]destination.Secret, error) {
	return r.d.List(ctx)
}
