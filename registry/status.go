package registry

import (
	"context"
	"errors"
	"fmt"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/sync"
)

// SyncStatus is the state of an association's last operation, as Vault's
// /sys/sync API names it.
type SyncStatus string

// The statuses of an association. Each comes with a one-line message
// (Association.Message) that says why, and never holds a value.
const (
	// StatusSynced: the last sync wrote every key it had to; the
	// destination holds the secret.
	StatusSynced SyncStatus = "SYNCED"
	// StatusUnsynced: the association was removed and its entries deleted
	// from the destination (or kept there, with DisableDeletion), or it
	// never existed, or the secret was deleted in Vault (the association
	// stays, and syncs the secret again once it is written again).
	StatusUnsynced SyncStatus = "UNSYNCED"
	// StatusPending: an operation was started and has not finished (the
	// association was set or removed and its sync is running), or it
	// ended with work left for the next one: keys that changed during
	// the round and are read again, or a round cut short by its caller's
	// context.
	StatusPending SyncStatus = "PENDING"
	// StatusInternalVaultError: the source side failed: the associated
	// secret could not be opened or read from Vault.
	StatusInternalVaultError SyncStatus = "INTERNAL_VAULT_ERROR"
	// StatusClientSideError: this side failed: a configuration that
	// cannot be used, no driver for the destination type, a key or entry
	// name that the destination refuses, a value it cannot hold, a refusal
	// of the mass-deletion guard, or the state store or the auditor
	// failing.
	StatusClientSideError SyncStatus = "CLIENT_SIDE_ERROR"
	// StatusExternalServiceError: the destination store failed: it is
	// unavailable, it refused the sync's requests or some of its keys, an
	// entry is not the association's own, or conflicts were flagged (the
	// destination changed out of band: drift, which the sync does not
	// overwrite; see the Syncer's Status and Resolve).
	StatusExternalServiceError SyncStatus = "EXTERNAL_SERVICE_ERROR"
)

// Messages of the statuses that no error explains.
const (
	msgSyncing   = "syncing"
	msgUnsyncing = "unsyncing"
	msgNever     = "not associated"
	msgKept      = "unlinked; the destination's entries are kept (deletion disabled)"
	// With Options.Lock, when another replica runs the association's
	// rounds (it holds the sync's lock).
	msgSyncElsewhere   = "set; another replica runs this association's rounds and syncs it when it next reads the catalog"
	msgUnsyncElsewhere = "removal recorded; another replica runs this association's rounds and unsyncs it when it next reads the catalog"
	msgGone            = "the secret was deleted in Vault (or holds no keys); nothing is synced"
)

// openError is the failure to open one side of an association's sync.
type openError struct {
	side string // sync.SideSource or sync.SideDestination
	err  error
}

func (e *openError) Error() string { return e.err.Error() }
func (e *openError) Unwrap() error { return e.err }

// statusOf returns the status of an association after an operation
// (sync.OpSync or sync.OpRemove) that reported rep (nil when it did not
// run) and returned err, and its one-line message. It is a pure function
// of its arguments, and reads only the types of errors, never their text.
//
// When err holds several failures (a round's per-key errors, or a round's
// error joined with the store's), the status is that of the most basic
// one: the source first (nothing else can work without it), then this
// side, then the destination, then a round cut short.
func statusOf(op string, rep *sync.Report, err error) (SyncStatus, string) {
	if err != nil {
		st, why := StatusPending, ""
		eachError(err, func(e error) {
			s, w := classify(e)
			if rank(s) > rank(st) || why == "" {
				st, why = s, w
			}
		})
		return st, why + ": " + sync.OneLine(err)
	}
	var t sync.Totals
	flagged := 0
	if rep != nil {
		t = rep.Totals
		flagged = max(t.Conflicts, rep.Flagged)
	}
	switch {
	case op == sync.OpRemove && t.Retries > 0:
		return StatusPending, fmt.Sprintf("%d key(s) changed at the destination during the unsync and were not deleted; remove again", t.Retries)
	case op == sync.OpRemove:
		return StatusUnsynced, fmt.Sprintf("unsynced: %d deleted from the destination", t.Deleted)
	case flagged > 0:
		return StatusExternalServiceError, fmt.Sprintf("%d conflict(s) flagged: the destination changed out of band and was not overwritten; resolve them with the Syncer's Resolve", flagged)
	case t.Retries > 0:
		return StatusPending, fmt.Sprintf("%d key(s) changed during the round; they are read again next round", t.Retries)
	case rep != nil && t.Created+t.Updated+t.Unchanged+t.Skipped+t.Failed == 0:
		// The round read the secret and found no key: it was deleted
		// (or destroyed) in Vault, or never written.
		return StatusUnsynced, fmt.Sprintf("%s: %d deleted from the destination", msgGone, t.Deleted)
	}
	return StatusSynced, fmt.Sprintf("synced: %d created, %d updated, %d deleted, %d unchanged", t.Created, t.Updated, t.Deleted, t.Unchanged)
}

// rank orders statuses by how basic their failure is, for statusOf.
func rank(s SyncStatus) int {
	switch s {
	case StatusInternalVaultError:
		return 3
	case StatusClientSideError:
		return 2
	case StatusExternalServiceError:
		return 1
	}
	return 0
}

// eachError calls f for each failure that err holds: the errors of an
// errors.Join or a multi-error (such as a round's per-key errors), and err
// itself otherwise.
func eachError(err error, f func(error)) {
	switch e := err.(type) {
	case interface{ Unwrap() []error }:
		for _, x := range e.Unwrap() {
			eachError(x, f)
		}
	case interface{ WrappedErrors() []error }: // *multierror.Error
		for _, x := range e.WrappedErrors() {
			eachError(x, f)
		}
	default:
		f(err)
	}
}

// classify returns the status of one failure and a phrase that says what
// failed.
func classify(err error) (SyncStatus, string) {
	var (
		ke *sync.KeyError
		se *sync.SideError
		oe *openError
	)
	switch {
	case errors.As(err, &ke):
		switch {
		case ke.Side == sync.SideSource:
			return StatusClientSideError, "a key of the secret has no name the destination accepts"
		case ke.Op == "check", errors.Is(err, destination.ErrInvalidKey):
			return StatusClientSideError, "the destination refuses a key's name"
		case errors.Is(err, destination.ErrInvalidValue):
			return StatusClientSideError, "the destination cannot hold a value exactly"
		case errors.Is(err, destination.ErrNotOwned):
			return StatusExternalServiceError, "an entry at the destination is not this association's"
		}
		return StatusExternalServiceError, "the destination failed keys"
	case errors.As(err, &se):
		switch se.Side {
		case sync.SideSource:
			return StatusInternalVaultError, "reading the secret from Vault failed"
		case sync.SideStore:
			return StatusClientSideError, "the state store failed"
		}
		if se.Op == sync.OpApply {
			return StatusExternalServiceError, "the destination is unavailable"
		}
		return StatusExternalServiceError, "listing the destination failed"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return StatusPending, "cut short before it finished"
	case errors.As(err, &oe) && oe.side == sync.SideSource:
		return StatusInternalVaultError, "opening the secret in Vault failed"
	case errors.Is(err, destination.ErrUnavailable):
		return StatusExternalServiceError, "the destination is unavailable"
	case errors.Is(err, ErrNoDriver):
		return StatusClientSideError, "no driver for the destination type"
	case errors.Is(err, ErrInvalidConfig), errors.Is(err, sync.ErrInvalidConfig), errors.Is(err, ErrNoSource):
		return StatusClientSideError, "the configuration is not usable"
	case errors.Is(err, sync.ErrMassDeletion):
		return StatusClientSideError, "refused by the mass-deletion guard"
	case errors.Is(err, sync.ErrAudit):
		return StatusClientSideError, "the auditor failed"
	case errors.Is(err, sync.ErrDeletionDisabled):
		return StatusClientSideError, "deletion is disabled"
	case oe != nil:
		return StatusClientSideError, "the destination cannot be opened from its configuration"
	}
	return StatusClientSideError, "the operation failed"
}

// Failed reports whether the status says that the last operation failed:
// INTERNAL_VAULT_ERROR, CLIENT_SIDE_ERROR or EXTERNAL_SERVICE_ERROR.
func (s SyncStatus) Failed() bool {
	return s == StatusInternalVaultError || s == StatusClientSideError || s == StatusExternalServiceError
}
