package sync

import (
	"context"
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/state"
)

// statusRefresh is how old the stored record of an operation may grow
// before a round that changed nothing saves its record anyway, so that
// readers of the store (other replicas, a status command) see a time at
// most this old for a sync that keeps running.
const statusRefresh = time.Hour

// replans bounds how many times one round reads both sides again and plans
// anew after every write it tried was refused by a check-and-set failure.
const replans = 3

// unsavedRecord is the record of the latest round of an operation that
// saved nothing because nothing changed, kept in memory for Status.
type unsavedRecord struct {
	rev int64 // the revision of the stored state it left as it was
	rec *state.Record
}

// setUnsaved keeps rec as the latest record of op, for the stored state of
// revision rev; a nil rec forgets it.
func (s *Syncer) setUnsaved(op string, rev int64, rec *state.Record) {
	s.smallMu.Lock()
	defer s.smallMu.Unlock()
	if rec == nil {
		delete(s.unsaved, op)
		return
	}
	if s.unsaved == nil {
		s.unsaved = make(map[string]unsavedRecord)
	}
	r := *rec
	s.unsaved[op] = unsavedRecord{rev: rev, rec: &r}
}

// withUnsaved replaces the records of st by those of later rounds that
// left st as it was: a record kept for another revision is older than what
// st holds (another replica, or a later round, saved since).
func (s *Syncer) withUnsaved(st *state.State) {
	s.smallMu.Lock()
	defer s.smallMu.Unlock()
	for op, u := range s.unsaved {
		if u.rev == st.Revision {
			r := *u.rec
			*record(st, op) = &r
		}
	}
}

// skipSave reports whether the final save of the round can be skipped: the
// state is what the store holds, apart from the operation's record, and
// the stored record, recent enough, has the status of the new one rec (and
// its message, unless both say succeeded: the message of a success only
// counts the keys of its round).
func (r *round) skipSave(rec *state.Record) bool {
	if r.saved == nil {
		return false // the store holds nothing for the sync yet
	}
	if rec != nil {
		old := *record(r.saved, r.op)
		if old == nil || old.Status != rec.Status || (rec.Status != state.Succeeded && old.Message != rec.Message) ||
			rec.Time.Sub(old.Time) >= statusRefresh {
			return false
		}
	}
	return sameState(r.st, r.saved, r.op)
}

// replan prepares the round to read both sides again and plan anew, when
// every write it tried was refused because a key changed since it was read
// (as happens to a destination written in one check-and-set, such as a
// Vault secret in the SecretPath layout, when any of its fields changes):
// nothing was written, so the round puts back the intents it recorded and
// starts over from its baselines. It reports whether it did. Resolve never
// replans: its resolution was chosen for what it read.
func (r *round) replan() bool {
	if r.op != OpSync && r.op != OpImport {
		return false
	}
	n := 0
	for i := range r.items {
		it := &r.items[i]
		for j := range it.writes[:it.nw] {
			w := &it.writes[j]
			if !w.done || !errors.Is(w.err, destination.ErrConflict) {
				return false
			}
			n++
		}
	}
	if n == 0 {
		return false
	}
	r.restorePending()
	r.items, r.unmgd, r.renderFailed, r.errs, r.landed = nil, nil, nil, nil, 0
	return true
}

// save records rec as the operation's record (unless it is nil) and saves
// the round's state at its end, even when the caller's context has ended,
// so that what was applied is not forgotten.
func (r *round) save(ctx context.Context, rec *state.Record) error {
	if rec != nil {
		*record(r.st, r.op) = rec
		r.s.setUnsaved(r.op, 0, nil)
	}
	saveCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), saveTimeout)
	defer cancel()
	return r.s.store.Save(saveCtx, r.s.cfg.Name, r.st)
}

// sameState reports whether a and b hold the same state, apart from their
// revisions and, when op is not empty, the record of op.
func sameState(a, b *state.State, op string) bool {
	if !maps.Equal(a.Baseline, b.Baseline) || !maps.Equal(a.Markers, b.Markers) || a.Initialized != b.Initialized ||
		!maps.EqualFunc(a.Conflicts, b.Conflicts, sameFlagged) || !maps.EqualFunc(a.Pending, b.Pending, samePending) {
		return false
	}
	for _, o := range []string{OpSync, OpImport, OpRemove} {
		if o != op && !sameRecord(*record(a, o), *record(b, o)) {
			return false
		}
	}
	return true
}

func sameFlagged(a, b state.FlaggedConflict) bool {
	return a.Class == b.Class && a.Source == b.Source && a.Destination == b.Destination && a.RunID == b.RunID && a.Time.Equal(b.Time)
}

func samePending(a, b state.PendingWrite) bool {
	return a.Value == b.Value && a.Destination == b.Destination && a.Source == b.Source && slices.EqualFunc(a.Earlier, b.Earlier, samePending)
}

func sameRecord(a, b *state.Record) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Status == b.Status && a.Message == b.Message && a.RunID == b.RunID && a.Time.Equal(b.Time)
}
