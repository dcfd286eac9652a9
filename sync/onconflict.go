package sync

import (
	"context"
	"errors"
)

// flaggedAnew reports whether the round flags it as a conflict that is not
// already recorded as flagged (with the same class and sides): a conflict
// still flagged from an earlier round is neither audited nor notified
// again.
func (r *round) flaggedAnew(it *item) bool {
	if !it.flag {
		return false
	}
	old, ok := r.st.Conflicts[it.key]
	return !ok || old.Class != it.class || !old.Source.Same(it.srcSide) || !old.Destination.Same(it.dstSide)
}

// noteFlagged records the items the round flags anew, before commit
// replaces the recorded conflicts with the round's.
func (r *round) noteFlagged() {
	if r.s.cfg.OnConflict == nil {
		return
	}
	for i := range r.items {
		if it := &r.items[i]; r.flaggedAnew(it) {
			r.flagged = append(r.flagged, i)
		}
	}
}

// recordedFlags returns the conflicts noted by noteFlagged as the state
// records them, once the round has ended with err; none when the state
// could not be saved, since the next round then flags them anew.
func (r *round) recordedFlags(err error) []FlaggedConflict {
	if len(r.flagged) == 0 || r.st == nil {
		return nil
	}
	var se *SideError
	if errors.As(err, &se) && se.Side == SideStore && se.Op == OpSave {
		return nil
	}
	out := make([]FlaggedConflict, 0, len(r.flagged))
	for _, i := range r.flagged {
		it := &r.items[i]
		if c, ok := r.st.Conflicts[it.key]; ok {
			out = append(out, FlaggedConflict{Key: it.key, DestinationKey: it.dkey, Class: c.Class, RunID: c.RunID, Time: c.Time})
		}
	}
	sortFlagged(out)
	return out
}

// notifyConflicts calls Config.OnConflict for each conflict in fs, in
// order of key.
func (s *Syncer) notifyConflicts(ctx context.Context, fs []FlaggedConflict) {
	for _, c := range fs {
		s.cfg.OnConflict(ctx, c)
	}
}
