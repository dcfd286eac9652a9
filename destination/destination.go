// Package destination defines the contract between the sync engine and the
// systems it keeps in step: a side of a sync can list what it holds and, when
// writable, apply puts and deletes with check-and-set.
//
// The contract is small on purpose. The engine (package sync) does the shared
// work: planning, key schemas, retries, audit, status and safety checks. A
// destination only reads and writes.
//
// # Check-and-set
//
// Every [Secret] carries the side's own version of what was read. Every
// [Change] carries that version back as Expect; an implementation applies the
// change only if the key still has that version, and otherwise reports
// [ErrConflict] for the change. An empty Expect means "the key must not exist
// yet". This is how the engine guarantees that no concurrent write is ever
// overwritten blindly.
//
// # Stores without check-and-set, stores that cannot be read back
//
// Not every store is like Vault KV v2. A destination says what its store
// cannot do through [Capabilities]: NoCheckAndSet for a store that cannot
// make a write conditional (it narrows the race as far as the store allows
// and documents what remains), WriteOnly for a store whose values cannot be
// read back (it lists version markers instead, and the engine detects
// changes made at the destination by those markers).
//
// A destination that holds resources, such as an SDK client with its
// connections, implements io.Closer. Whoever opened it closes it once it is
// no longer used; package registry closes the destinations it opens when it
// replaces or removes them.
//
// # Implementations
//
// Package destination/memory is an in-memory implementation for unit tests;
// package vaultkv implements the contract over HashiCorp Vault KV v2. Every
// implementation passes the conformance suite in destination/destinationtest.
package destination

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Secret is one value held by a side of a sync, as it was read.
type Secret struct {
	// Value is opaque text. It is a secret: never log it or put it in an error.
	Value string
	// Version is the side's own version of what was read. It is opaque to the
	// engine, which only passes it back as [Change.Expect].
	Version string
}

// String returns the version only; the value is never printed.
func (s Secret) String() string { return fmt.Sprintf("{Value:***** Version:%q}", s.Version) }

// GoString is like String, so that %#v does not print the value either.
func (s Secret) GoString() string { return s.String() }

// Change is one write to apply: a put of Value, or a delete.
type Change struct {
	Key    string
	Value  string // for a put; ignored for a delete; never logged
	Delete bool
	// Expect is the version read for Key; "" means the key must not exist.
	// A delete of a key that no longer exists succeeds whatever Expect is.
	Expect string
}

// String returns the change without its value.
func (c Change) String() string {
	op := "put"
	if c.Delete {
		op = "delete"
	}
	return fmt.Sprintf("%s %q (expect %q)", op, c.Key, c.Expect)
}

// GoString is like String, so that %#v does not print the value either.
func (c Change) GoString() string { return c.String() }

// Reader is a side that can be read: every sync source is at least a Reader.
//
// Implementations must be safe for concurrent use.
type Reader interface {
	// List returns every key the side holds, with its value and version.
	// The returned map belongs to the caller.
	List(ctx context.Context) (map[string]Secret, error)
}

// Destination is a side that can be read and written. Pull and bidirectional
// syncs need a Destination on both sides.
//
// Implementations must be safe for concurrent use; the engine may call Apply
// from several goroutines at once with disjoint sets of keys.
type Destination interface {
	Reader
	// Apply applies each change only if its key still has the expected
	// version. It returns one error per change (nil for success), in the
	// order of changes; a precondition failure is an error for which
	// errors.Is(err, ErrConflict) holds.
	//
	// The second result reports a failure of the call as a whole (for
	// example a cancelled context). When the call stops part way, it still
	// returns one result per change if it can: nil for each change that was
	// applied, and for the others the error that stopped them, so that the
	// caller can record and audit every write that reached the store. When
	// the per-change results are nil or short, any change may or may not
	// have been applied.
	//
	// A change whose value the store cannot hold exactly is refused with
	// ErrInvalidValue, a key that would not stay inside the store's
	// configured place with ErrInvalidKey (see CheckKey); neither is ever
	// written in an altered form. An error that says the store as a whole
	// cannot be reached or is refusing service matches ErrUnavailable; the
	// engine then stops the round instead of trying every other key.
	Apply(ctx context.Context, changes []Change) ([]error, error)
}

// Capabilities describes optional behaviour of a destination. The zero
// value describes a store like Vault KV v2: readable, with check-and-set.
type Capabilities struct {
	// Atomic reports that one Apply call is written as a single unit (for
	// example all fields of one Vault secret): the engine then sends all of a
	// round's changes for that side in one call instead of splitting them
	// across concurrent calls, which would only conflict with each other.
	Atomic bool
	// NoCheckAndSet reports that the store cannot make a write conditional
	// on the version read (KV v1, AWS Secrets Manager, Azure Key Vault, GCP
	// Secret Manager, Vercel). Such a destination still honours Expect as
	// far as its store allows: it reads the key's version just before
	// writing and reports ErrConflict when that differs from Expect (a
	// create finding the key present included); it uses the store's
	// idempotency token where there is one; and where the store keeps
	// version history it checks after the write that the version it
	// replaced was the one it read, reporting ErrConflict if not. A write
	// by someone else between that read and the write can still be
	// overwritten: each implementation documents the window that remains.
	NoCheckAndSet bool
	// WriteOnly reports that values cannot be read back (GitHub Actions
	// secrets, Vercel sensitive variables). List then returns every key
	// with an empty Value and, as Version, a marker of the key's last write
	// (an update time or an id) that changes whenever anyone writes the
	// key. The engine remembers the marker it lists after its own writes;
	// any other marker is a change made at the destination. A write-only
	// side can only be the destination of a push.
	WriteOnly bool
}

// Describer is an optional interface for a Reader or Destination that reports
// its [Capabilities]. A side that does not implement it has the zero value.
type Describer interface {
	Capabilities() Capabilities
}

// CapabilitiesOf returns the capabilities of r, or the zero value when r does
// not implement [Describer].
func CapabilitiesOf(r Reader) Capabilities {
	if d, ok := r.(Describer); ok {
		return d.Capabilities()
	}
	return Capabilities{}
}

// KeyNormalizer is an optional interface for a destination whose store
// restricts the names of its entries (Azure Key Vault allows letters,
// digits and '-'; GitHub upper-case letters, digits and '_'). Package
// registry passes every name it renders from a name template through it.
type KeyNormalizer interface {
	// NormalizeKey returns key changed to fit the store's naming rules,
	// or an error wrapping ErrInvalidKey when no change makes it fit (too
	// long, say, or a reserved prefix). It is deterministic and
	// idempotent: a normalized key normalizes to itself.
	NormalizeKey(key string) (string, error)
}

// Notifier is an optional interface for a side that announces its changes,
// so that an auto-sync (sync.Syncer.Watch) runs a round soon after a change
// instead of waiting for its periodic reconcile.
type Notifier interface {
	// Notify returns a channel that receives a value after the side may
	// have changed, until ctx ends. Notifications may be coalesced: one
	// value can stand for several changes, and a change may be announced
	// without a visible difference. The channel is never closed.
	// Implementations give it a buffer of one and send without blocking,
	// so that a change announced while the receiver is busy waits for it.
	Notify(ctx context.Context) <-chan struct{}
}

// Sentinel errors. Implementations wrap them, so check with errors.Is.
var (
	// ErrConflict reports that a key changed since it was read: the write
	// was not applied. Reading again and retrying is safe.
	ErrConflict = errors.New("destination: precondition failed: key changed since it was read")
	// ErrInvalidKey reports a key the destination cannot hold. Retrying is
	// not useful.
	ErrInvalidKey = errors.New("destination: invalid key")
	// ErrNotOwned reports a key that exists at the destination but was not
	// created by this sync, so it is neither overwritten nor deleted.
	ErrNotOwned = errors.New("destination: key not owned by this sync")
	// ErrInvalidValue reports a value the destination cannot hold exactly
	// (for example text that is not valid UTF-8, for a store that keeps
	// JSON strings). The value is refused rather than stored in an altered
	// form. Retrying is not useful.
	ErrInvalidValue = errors.New("destination: value cannot be stored exactly")
	// ErrUnavailable reports that the store as a whole cannot serve
	// requests now: unreachable, sealed, not answering in time, or refusing
	// with a rate limit after retries. Retrying later is safe. The outcome
	// of a write that failed with it is unknown: it may have been applied.
	ErrUnavailable = errors.New("destination: store unavailable")
)

// CheckKey reports whether key is safe to use as a path below a prefix: it
// returns an error wrapping ErrInvalidKey when key is empty, starts with
// '/', or has an empty segment ("a//b", "a/") or a "." or ".." segment, any
// of which could make a write land outside the place the key is meant for.
// Keys without '/' pass unless they are empty, "." or "..".
func CheckKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty key", ErrInvalidKey)
	}
	if key[0] == '/' {
		return fmt.Errorf("%w: %q starts with '/'", ErrInvalidKey, key)
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch seg {
		case "":
			return fmt.Errorf("%w: %q has an empty path segment", ErrInvalidKey, key)
		case ".", "..":
			return fmt.Errorf("%w: %q has a %q path segment", ErrInvalidKey, key, seg)
		}
	}
	return nil
}

// KeyError is the typed error for a change that failed. It names the
// operation and the key, never the value.
type KeyError struct {
	Op  string // "put" or "delete"
	Key string
	Err error
}

func (e *KeyError) Error() string { return fmt.Sprintf("%s %q: %v", e.Op, e.Key, e.Err) }

// Unwrap returns the underlying error.
func (e *KeyError) Unwrap() error { return e.Err }
