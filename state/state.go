// Package state keeps what a sync remembers between rounds: the baseline
// (per key, a fingerprint of the value both sides last agreed on), the status
// of the last sync, import and remove operations, and the conflicts still
// flagged.
//
// A baseline never holds a value: fingerprints are HMAC-SHA256 under a key
// that belongs to the store ([Store.FingerprintKey]).
//
// Implementations here: [Memory] for tests, and [File], the embedded default,
// which writes one file atomically with mode 0600. A File can keep its
// fingerprint key sealed by a [KeySealer] (for example a Vault Transit key,
// vaultkv.Transit), so that its files alone do not let anyone test guesses
// of a value.
package state

import (
	"context"
	"errors"
	"time"

	"github.com/secretsync/secretsync/conflict"
	"github.com/secretsync/secretsync/internal/fingerprint"
)

// Status is the status of an operation.
type Status string

// Statuses.
const (
	// Pending: a round is scheduled, or the last round left keys that
	// changed while it ran (they are read again next round).
	Pending Status = "pending"
	// Running: the operation is in progress (or its process died in it).
	Running Status = "running"
	// Succeeded: every planned write was applied; no key failed and no
	// conflict is flagged.
	Succeeded Status = "succeeded"
	// Conflicted: the operation wrote what it could, and conflicts are
	// flagged, waiting for a resolution. No key failed.
	Conflicted Status = "conflicts"
	// Failed: the operation failed, or at least one key failed.
	Failed Status = "failed"
)

// Record is the status of the last run of one operation.
type Record struct {
	Status  Status    `json:"status"`
	Message string    `json:"message,omitempty"` // value-free
	Time    time.Time `json:"time"`
	RunID   string    `json:"run_id,omitempty"`
}

// FlaggedConflict is a conflict left for a deliberate resolution.
type FlaggedConflict struct {
	Class       conflict.Class `json:"class"`
	Source      conflict.Side  `json:"source"`
	Destination conflict.Side  `json:"destination"`
	RunID       string         `json:"run_id,omitempty"`
	Time        time.Time      `json:"time"`
}

// PendingWrite is what a round was writing to a key when it saved its
// intents: the value's fingerprint (or Absent for a delete) and the sides
// written.
type PendingWrite struct {
	Value       conflict.Side `json:"value"`
	Destination bool          `json:"destination,omitempty"`
	Source      bool          `json:"source,omitempty"`
	// Earlier holds the intents of earlier rounds for the same key whose
	// outcome is still unknown (a write that timed out may land later),
	// newest first. Any of them found at its sides is the sync's own write.
	Earlier []PendingWrite `json:"earlier,omitempty"`
}

// Clone returns a deep copy of pw.
func (pw PendingWrite) Clone() PendingWrite {
	if pw.Earlier != nil {
		e := make([]PendingWrite, len(pw.Earlier))
		for i, x := range pw.Earlier {
			e[i] = x.Clone()
		}
		pw.Earlier = e
	}
	return pw
}

// State is what a store keeps for one sync.
type State struct {
	// Revision is maintained by the store: it is the revision Load returned,
	// and Save refuses (with ErrConflict) a state whose Revision is not the
	// stored one. Save sets it to the new revision.
	Revision int64 `json:"revision"`
	// Baseline maps each source key to the fingerprint of the value both
	// sides last agreed on. A key absent from it has no baseline.
	Baseline map[string]conflict.Fingerprint `json:"baseline,omitempty"`
	// Conflicts maps each flagged source key to its conflict.
	Conflicts map[string]FlaggedConflict `json:"conflicts,omitempty"`
	// Sync, Import and Remove are the last status of each operation; nil
	// when it never ran.
	Sync   *Record `json:"sync,omitempty"`
	Import *Record `json:"import,omitempty"`
	Remove *Record `json:"remove,omitempty"`
	// Pending maps each source key whose writes are in flight to what the
	// writes put there. The engine records it just before applying a
	// round's writes and clears it when the round ends, so that a round cut
	// short (a crash, a lost connection) is recognized by the next one: a
	// key whose written sides all hold the pending value gets that value as
	// its baseline, instead of being taken for a conflict.
	Pending map[string]PendingWrite `json:"pending,omitempty"`
	// Markers maps each source key to the version marker its destination
	// listed after the sync's own last write, for a destination that
	// cannot be read back (destination.Capabilities.WriteOnly): the same
	// marker later means the value is still the baseline, another one a
	// change made at the destination. Markers are update times or ids,
	// never values.
	Markers map[string]string `json:"markers,omitempty"`
	// Initialized is set once a first round has completed without a failed
	// key; until then the engine applies the initial-sync behaviour to keys
	// without a baseline. Remove clears it.
	Initialized bool `json:"initialized,omitempty"`
}

// Clone returns a deep copy of st.
func (st *State) Clone() *State {
	if st == nil {
		return nil
	}
	c := *st
	if st.Baseline != nil {
		c.Baseline = make(map[string]conflict.Fingerprint, len(st.Baseline))
		for k, v := range st.Baseline {
			c.Baseline[k] = v
		}
	}
	if st.Conflicts != nil {
		c.Conflicts = make(map[string]FlaggedConflict, len(st.Conflicts))
		for k, v := range st.Conflicts {
			c.Conflicts[k] = v
		}
	}
	if st.Markers != nil {
		c.Markers = make(map[string]string, len(st.Markers))
		for k, v := range st.Markers {
			c.Markers[k] = v
		}
	}
	if st.Pending != nil {
		c.Pending = make(map[string]PendingWrite, len(st.Pending))
		for k, v := range st.Pending {
			c.Pending[k] = v.Clone()
		}
	}
	for _, p := range []**Record{&c.Sync, &c.Import, &c.Remove} {
		if *p != nil {
			r := **p
			*p = &r
		}
	}
	return &c
}

// Store keeps the state of every sync, by sync name.
//
// Implementations must be safe for concurrent use.
type Store interface {
	// Load returns the state of the named sync, or an error for which
	// errors.Is(err, ErrNotFound) holds before the first Save. The returned
	// state belongs to the caller.
	Load(ctx context.Context, name string) (*State, error)
	// Save replaces the state of the named sync if st.Revision is the stored
	// revision (0 when there is none), and sets st.Revision to the new
	// revision. Otherwise it returns an error for which
	// errors.Is(err, ErrConflict) holds and changes nothing.
	Save(ctx context.Context, name string, st *State) error
	// FingerprintKey returns the store's secret HMAC key, creating it on
	// first use. It is the same for the life of the store.
	FingerprintKey(ctx context.Context) ([]byte, error)
}

// Sentinel errors.
var (
	// ErrNotFound: the sync has no saved state yet (its first round).
	ErrNotFound = errors.New("state: not found")
	// ErrConflict: the state was saved by someone else since it was loaded.
	ErrConflict = errors.New("state: revision conflict")
	// ErrCorrupt: the stored state cannot be read. The store never resets
	// it silently, since an empty baseline would turn every key into a
	// conflict or a deletion.
	ErrCorrupt = errors.New("state: corrupt state")
	// ErrKeySize: a fingerprint key that is not KeySize bytes long, given
	// (FileOptions.Key) or found in a key file or a store. It is the
	// error the engine's fingerprinting itself reports, so errors.Is
	// holds for it wherever such a key is refused.
	ErrKeySize = fingerprint.ErrKeySize
)

// KeySize is the size of a fingerprint key in bytes
// ([Store.FingerprintKey]).
const KeySize = fingerprint.KeySize
