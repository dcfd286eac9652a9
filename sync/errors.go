package sync

import (
	"context"
	"errors"
	"fmt"
	"strings"

	multierror "github.com/hashicorp/go-multierror"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/state"
)

// Sentinel errors. Check them with errors.Is.
var (
	// ErrInvalidConfig: New refused the Config; the error is a *ConfigError.
	ErrInvalidConfig = errors.New("sync: invalid config")
	// ErrMassDeletion: the round would delete more than the allowed share of
	// a side's managed keys, or empty a side; nothing was written. The error
	// is a *MassDeletionError. Run again with Force to apply it anyway.
	ErrMassDeletion = errors.New("sync: refused mass deletion")
	// ErrDeletionDisabled: the operation needs deletion, which the Config
	// disables.
	ErrDeletionDisabled = errors.New("sync: deletion is disabled")
	// ErrReadOnlySource: the operation needs to write the source, which is
	// not a destination.Destination.
	ErrReadOnlySource = errors.New("sync: source is read-only")
	// ErrWriteOnly: the operation needs to read values from a destination
	// that cannot be read back (destination.Capabilities.WriteOnly): an
	// import, or a resolution that keeps or copies the destination's
	// value.
	ErrWriteOnly = errors.New("sync: destination is write-only")
	// ErrNoConflict: Resolve was called for a key that is not flagged.
	ErrNoConflict = errors.New("sync: key has no flagged conflict")
	// ErrAudit: the Auditor failed and the sync fails closed.
	ErrAudit = errors.New("sync: audit failed")
)

// MassDeletionError gives the numbers behind ErrMassDeletion.
type MassDeletionError struct {
	Side     string  // "destination" or "source"
	Deletes  int     // deletions the round planned on Side
	Managed  int     // managed keys on Side
	Fraction float64 // the configured maximum fraction
	Empty    bool    // the other side is empty
}

// Error gives the numbers and says that Force applies the deletions.
func (e *MassDeletionError) Error() string {
	if e.Empty {
		return fmt.Sprintf("sync: refused to delete %d of %d managed %s keys: the other side is empty (use Force to apply)", e.Deletes, e.Managed, e.Side)
	}
	return fmt.Sprintf("sync: refused to delete %d of %d managed %s keys: more than %g of them (use Force to apply)", e.Deletes, e.Managed, e.Side, e.Fraction)
}

// Is reports whether target is ErrMassDeletion.
func (e *MassDeletionError) Is(target error) bool { return target == ErrMassDeletion }

// The parts of a sync that an error can come from: the sides, as
// KeyError.Side and SideError.Side name them, and the state store.
const (
	SideSource      = "source"
	SideDestination = "destination"
	SideStore       = "store"
)

// Operations of a SideError.
const (
	// OpList: listing a side failed, and the round wrote nothing.
	OpList = "list"
	// OpApply: a side reported itself unavailable
	// (destination.ErrUnavailable) while the round wrote to it, and the
	// round stopped.
	OpApply = "apply"
	// OpLoad, OpSave and OpFingerprintKey: the state store failed to load
	// or save the sync's state, or to give its fingerprint key.
	OpLoad           = "load state"
	OpSave           = "save state"
	OpFingerprintKey = "fingerprint key"
)

// SideError reports the failure of a whole part of a round rather than of
// one key: listing the source or the destination (OpList), a side that
// became unavailable while the round wrote to it (OpApply), or the state
// store (Side SideStore). It tells a caller which part failed without
// parsing messages; Err says why, and errors.Is sees through it (for
// destination.ErrUnavailable, say). It never holds a value.
type SideError struct {
	Side string // SideSource, SideDestination or SideStore
	Op   string // OpList or OpApply for a side; OpLoad, OpSave or OpFingerprintKey for the store
	Err  error
}

// Error names the part that failed and the operation, then the cause.
func (e *SideError) Error() string {
	switch {
	case e.Side == SideStore:
		return fmt.Sprintf("sync: %s: %v", e.Op, e.Err)
	case e.Op == OpApply:
		return fmt.Sprintf("sync: %s unavailable, round stopped: %v", e.Side, e.Err)
	}
	return fmt.Sprintf("sync: %s %s: %v", e.Op, e.Side, e.Err)
}

// Unwrap returns the underlying error.
func (e *SideError) Unwrap() error { return e.Err }

// KeyError reports the failure of one key in a round. It carries the keys
// and the operation, never a value. Err is the side's error for the key as
// the side gave it, often a *destination.KeyError, which errors.As still
// finds through a KeyError.
type KeyError struct {
	Key            string
	DestinationKey string
	Op             string // "put", "delete", "render", or "check" for an unsafe key
	Side           string // SideDestination or SideSource
	Err            error
}

// Error names the operation, the key and the side, then the cause; the key
// is named once: when Err is a *destination.KeyError, its cause is given
// without repeating the key. A destination key other than Key is named
// too, in parentheses.
func (e *KeyError) Error() string {
	cause := e.Err
	if dke, ok := cause.(*destination.KeyError); ok && dke != nil {
		cause = dke.Err
	}
	dk := ""
	if e.DestinationKey != "" && e.DestinationKey != e.Key {
		dk = fmt.Sprintf(" (destination key %q)", e.DestinationKey)
	}
	return fmt.Sprintf("sync: %s %q%s at %s: %v", e.Op, e.Key, dk, e.Side, cause)
}

// Unwrap returns the underlying error.
func (e *KeyError) Unwrap() error { return e.Err }

// OneLine returns err's message on one line, as status records and audit
// events hold it: the errors of a multi-error (such as Run returns) are
// counted and the first three joined, and the line breaks of joined errors
// become "; ". It returns "" for a nil error.
func OneLine(err error) string {
	if err == nil {
		return ""
	}
	var me *multierror.Error
	if errors.As(err, &me) && len(me.Errors) > 0 {
		const show = 3
		parts := make([]string, 0, show)
		for _, e := range me.Errors[:min(show, len(me.Errors))] {
			parts = append(parts, flatten(e.Error()))
		}
		msg := strings.Join(parts, "; ")
		if len(me.Errors) == 1 {
			return msg
		}
		if n := len(me.Errors) - show; n > 0 {
			msg += fmt.Sprintf("; and %d more", n)
		}
		return fmt.Sprintf("%d errors: %s", len(me.Errors), msg)
	}
	return flatten(err.Error())
}

// flatten joins the lines of s with "; ", dropping blank ones and
// leading white space.
func flatten(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	var parts []string
	for line := range strings.FieldsFuncSeq(s, func(r rune) bool { return r == '\n' || r == '\r' }) {
		if line = strings.TrimSpace(line); line != "" {
			parts = append(parts, line)
		}
	}
	return strings.Join(parts, "; ")
}

// errLockLost ends an operation whose lock ended without saying why.
var errLockLost = fmt.Errorf("sync: %w", state.ErrLockLost)

// lockLost returns the cause with which an operation stops when its lock's
// context, held, ends: the lock's own cause when it wraps
// state.ErrLockLost, so that it says why, and errLockLost otherwise.
func lockLost(held context.Context) error {
	if c := context.Cause(held); errors.Is(c, state.ErrLockLost) {
		return c
	}
	return errLockLost
}
