package sync

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	gosync "sync"
	"time"

	multierror "github.com/hashicorp/go-multierror"
	"golang.org/x/sync/errgroup"

	"github.com/secretsync/secretsync/audit"
	"github.com/secretsync/secretsync/conflict"
	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/internal/fingerprint"
	"github.com/secretsync/secretsync/state"
)

// side names, as used in errors.
const (
	sideDst = SideDestination
	sideSrc = SideSource
)

// write is one planned change on one side for one item.
type write struct {
	toSrc  bool
	change destination.Change
	action Action
	done   bool // Apply was called for it
	err    error
}

// outcome is what is known of a write after the round applied it.
type outcome uint8

const (
	notSent outcome = iota // never handed to the side
	applied                // the side applied it
	refused                // the side certainly did not apply it
	unknown                // it failed, and may or may not have been applied
)

func (w *write) outcome() outcome {
	switch {
	case !w.done:
		return notSent
	case w.err == nil:
		return applied
	case errors.Is(w.err, destination.ErrConflict), errors.Is(w.err, destination.ErrNotOwned),
		errors.Is(w.err, destination.ErrInvalidKey), errors.Is(w.err, destination.ErrInvalidValue):
		return refused
	}
	return unknown
}

// item is one managed key in a round.
type item struct {
	key, dkey        string
	src, dst         destination.Secret
	srcSide, dstSide conflict.Side
	base             conflict.Side
	hasBase          bool // base comes from the stored baseline
	// confirmed is the write of an earlier round, cut short, that this
	// round found applied.
	confirmed *state.PendingWrite
	class     conflict.Class
	// adopt: a write-only destination's marker is taken as the sync's own
	// (see read).
	adopt bool
	// marker is the version marker a write-only destination listed after
	// this round's put of the key; hasMarker says whether it listed one.
	marker    string
	hasMarker bool

	res     KeyResult
	writes  [2]write
	nw      int
	setBase bool          // record newBase when every write succeeded
	newBase conflict.Side // baseline after the writes
	flag    bool          // flagged conflict
}

func (it *item) addWrite(w write) { it.writes[it.nw] = w; it.nw++ }

// round is one operation in progress.
type round struct {
	s       *Syncer
	op      string
	opts    options
	resolve *resolveReq
	st      *state.State
	rep     *Report
	h       *fingerprint.Hasher

	initial bool // apply the initial-sync behaviour to keys without baseline

	items        []item
	unmgd        []KeyResult
	renderFailed []KeyResult
	errs         *multierror.Error

	// landed counts pending writes found landed while reading, whose
	// baselines were folded into st: they are saved with the intents.
	landed int
	// prevPending holds, per key given a new intent, the pending write it
	// replaced (zero Value.Exists and no sides when there was none), to be
	// put back when the new write certainly did not happen.
	prevPending map[string]state.PendingWrite
	// refused holds the keys refused by refuseKey.
	refused map[string]struct{}
	// flagged holds the indexes in items of the conflicts this round
	// flags anew, for Config.OnConflict.
	flagged []int
	// stopped is set when the round stopped before applying every write:
	// the caller's context ended, the store became unavailable, or the
	// auditor failed with AuditFailClosed.
	stopped bool
	// srcUnknown is set when a Remove could not list the source: it goes
	// on from the saved state alone (see removeFromState).
	srcUnknown bool
	// saved is a copy of what the store holds for the sync, as loaded or
	// last saved by the round; nil when it holds nothing.
	saved *state.State
	// replans counts the times the round read again and planned anew.
	replans int
}

// operate runs one operation under the Syncer's lock.
func (s *Syncer) operate(ctx context.Context, op string, o options, rr *resolveReq) (*Report, error) {
	var flagged []FlaggedConflict
	defer func(ctx context.Context) { s.notifyConflicts(ctx, flagged) }(ctx) // once the locks are released
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.cfg.Lock != nil && !o.dryRun {
		held, release, err := s.holdLock(ctx)
		if err != nil {
			return nil, fmt.Errorf("sync: %s: %w", s.cfg.Name, err)
		}
		defer release()
		var stop func() bool
		ctx, stop = withDone(ctx, held)
		defer stop()
	}
	r := &round{s: s, op: op, opts: o, resolve: rr}
	r.rep = &Report{Sync: s.cfg.Name, RunID: newRunID(), Operation: op, Mode: s.cfg.Mode, DryRun: o.dryRun, Started: s.now(), Flagged: -1}
	if op == OpResolve {
		r.rep.Operation = OpResolve
	}
	err := r.run(ctx)
	flagged = r.recordedFlags(err)
	r.rep.Finished = s.now()
	if s.cfg.OnRound != nil && !o.dryRun {
		s.cfg.OnRound(r.rep, err)
	}
	return r.rep, err
}

// Lock handling of operate (Config.Lock): the operation runs under the
// lock that Watch holds, when it does, or takes it for itself.

// setLeader records the lock's context that Watch holds (nil when none).
func (s *Syncer) setLeader(held context.Context) {
	s.smallMu.Lock()
	s.leader = held
	s.smallMu.Unlock()
}

// holdLock returns the lock for one operation: the one Watch holds, if it
// does, or the lock taken for this operation alone.
func (s *Syncer) holdLock(ctx context.Context) (context.Context, func(), error) {
	s.smallMu.Lock()
	leader := s.leader
	s.smallMu.Unlock()
	if leader != nil && leader.Err() == nil {
		return leader, func() {}, nil
	}
	return s.cfg.Lock.TryAcquire(ctx, s.cfg.Name)
}

// withDone returns a context that ends when ctx or other ends.
func withDone(ctx, other context.Context) (context.Context, func() bool) {
	c, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(other, func() { cancel(lockLost(other)) })
	return c, func() bool { cancel(nil); return stop() }
}

func (r *round) run(ctx context.Context) error {
	s := r.s
	st, err := s.store.Load(ctx, s.cfg.Name)
	switch {
	case errors.Is(err, state.ErrNotFound):
		st = &state.State{}
	case err != nil:
		return r.failRound(ctx, &SideError{Side: SideStore, Op: OpLoad, Err: err}, false)
	default:
		r.saved = st.Clone()
	}
	r.st = st
	if st.Baseline == nil {
		st.Baseline = make(map[string]conflict.Fingerprint)
	}
	if err := r.checkFlagged(); err != nil {
		return err
	}
	key, err := s.store.FingerprintKey(ctx)
	if err != nil {
		return r.failRound(ctx, &SideError{Side: SideStore, Op: OpFingerprintKey, Err: err}, false)
	}
	if r.h, err = fingerprint.New(key); err != nil {
		return r.failRound(ctx, &SideError{Side: SideStore, Op: OpFingerprintKey, Err: err}, false)
	}

	r.initial = r.op == OpSync && !st.Initialized
	r.rep.Initial = r.initial

	// A round whose every write was refused by check-and-set starts over
	// from here (see replan).
readAgain:
	if err := r.read(ctx); err != nil {
		return r.failRound(ctx, err, true)
	}
	out := plan(planInput{
		op: r.op, mode: s.cfg.Mode, initialSync: s.initial, initial: r.initial,
		sourceWritable: s.srcW != nil, disableDeletion: s.cfg.DisableDeletion, writeOnly: s.wo,
		srcUnknown: r.srcUnknown, resolve: r.resolve, policy: s.cfg.ConflictPolicy, hasher: r.h,
		force: r.opts.force, maxDelete: s.maxDeleteFraction(),
		items: r.items,
	})
	if out.err != nil {
		return out.err
	}
	guardErr := out.guard
	if r.opts.dryRun {
		r.finishReport(ctx, false)
		return guardErr
	}
	if guardErr != nil {
		r.refuseWrites("refused by the mass-deletion guard; nothing was written (Force applies it)")
		r.finishReport(ctx, false)
		return r.failRound(ctx, guardErr, true)
	}

	if err := r.recordIntents(ctx); err != nil {
		// Nothing was written: the report says so, never what was planned.
		r.stopped = true
		r.finishReport(ctx, true)
		return r.failRound(ctx, err, true)
	}
	if err := r.confirmEvents(ctx); err != nil {
		r.stopped = true
		r.finishReport(ctx, true)
		return r.failRound(ctx, err, true)
	}
	applyErr := r.apply(ctx)
	if applyErr == nil && ctx.Err() == nil && r.replans < replans && r.replan() {
		r.replans++
		s.log.DebugContext(ctx, "secretsync: every write refused by check-and-set; reading again", "sync", s.cfg.Name, "run_id", r.rep.RunID, "replan", r.replans)
		goto readAgain
	}
	r.stopped = applyErr != nil
	r.finishReport(ctx, true)
	r.noteFlagged()
	if err := r.conflictEvents(ctx); err != nil && applyErr == nil {
		applyErr = err
	}
	return r.commit(ctx, applyErr)
}

// refuseWrites marks every planned write of the round as not done, for a
// round refused before its writes: skipped, with no side written.
func (r *round) refuseWrites(reason string) {
	for i := range r.items {
		it := &r.items[i]
		if it.nw > 0 {
			it.res.Action, it.res.Direction, it.res.Reason = Skipped, "", reason
		}
	}
}

// landed returns the newest write among pw and its earlier intents that
// reached every side it was for, if any did.
// A write to the source counts as reached only when srcKnown: a Remove
// that could not list the source cannot tell.
func landed(pw state.PendingWrite, it *item, srcKnown bool) (state.PendingWrite, bool) {
	reached := func(p state.PendingWrite) bool {
		return (p.Destination || p.Source) &&
			(!p.Destination || it.dstSide.Same(p.Value)) && (!p.Source || srcKnown && it.srcSide.Same(p.Value))
	}
	if reached(pw) {
		return pw, true
	}
	for _, e := range pw.Earlier {
		if reached(e) {
			return e, true
		}
	}
	return state.PendingWrite{}, false
}

// maxEarlier bounds the earlier intents kept per key.
const maxEarlier = 3

// recordIntents saves what the round is about to write, so that a round cut
// short between its writes and its final save is recognized next round. An
// intent whose outcome is still unknown is kept as an earlier one: a write
// that timed out may land later, and is then still the sync's own. The same
// save makes durable the baselines of pending writes found landed.
func (r *round) recordIntents(ctx context.Context) error {
	n := 0
	for i := range r.items {
		it := &r.items[i]
		if it.nw == 0 || !it.setBase {
			continue
		}
		pw := state.PendingWrite{Value: it.newBase}
		for _, w := range it.writes[:it.nw] {
			if w.toSrc {
				pw.Source = true
			} else {
				pw.Destination = true
			}
		}
		if r.st.Pending == nil {
			r.st.Pending = make(map[string]state.PendingWrite)
		}
		prev, had := r.st.Pending[it.key]
		if had {
			pw.Earlier = append([]state.PendingWrite{{Value: prev.Value, Destination: prev.Destination, Source: prev.Source}}, prev.Earlier...)
			if len(pw.Earlier) > maxEarlier {
				pw.Earlier = pw.Earlier[:maxEarlier]
			}
		}
		if r.prevPending == nil {
			r.prevPending = make(map[string]state.PendingWrite)
		}
		r.prevPending[it.key] = prev
		r.st.Pending[it.key] = pw
		n++
	}
	if n == 0 && r.landed == 0 {
		return nil
	}
	// The same save says that the operation is running: a round that
	// writes nothing saves no such record.
	if rec := record(r.st, r.op); r.op != OpResolve && (*rec == nil || (*rec).RunID != r.rep.RunID) {
		*rec = &state.Record{Status: state.Running, Time: r.s.now(), RunID: r.rep.RunID}
	}
	if r.saved != nil && sameState(r.st, r.saved, "") {
		return nil // a replanned round whose intents are saved already
	}
	if err := r.s.store.Save(ctx, r.s.cfg.Name, r.st); err != nil {
		// Nothing is written: what is pending stays as it was loaded.
		r.restorePending()
		return &SideError{Side: SideStore, Op: OpSave, Err: err}
	}
	r.saved = r.st.Clone()
	return nil
}

// restorePending puts back the pending writes that recordIntents replaced.
func (r *round) restorePending() {
	for k, prev := range r.prevPending {
		if prev.Destination || prev.Source {
			r.st.Pending[k] = prev
		} else {
			delete(r.st.Pending, k)
		}
	}
	r.prevPending = nil
}

// read lists both sides and builds the items.
func (r *round) read(ctx context.Context) error {
	var (
		srcMap, dstMap map[string]destination.Secret
		srcErr, dstErr error
		wg             gosync.WaitGroup
	)
	wg.Add(1)
	go func() { defer wg.Done(); dstMap, dstErr = r.s.dst.List(ctx) }()
	srcMap, srcErr = r.s.src.List(ctx)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	if srcErr != nil && r.op != OpRemove {
		return &SideError{Side: SideSource, Op: OpList, Err: srcErr}
	}
	if dstErr != nil {
		return &SideError{Side: SideDestination, Op: OpList, Err: dstErr}
	}
	if srcErr != nil {
		r.removeFromState(ctx, srcErr)
		srcMap = nil
	}

	only := ""
	if r.resolve != nil {
		only = r.resolve.key
	}
	items := make([]item, 0, max(len(srcMap), len(dstMap)))
	index := make(map[string]int, len(srcMap)+len(dstMap)/4)
	refusedKeys := make(map[string]struct{})
	r.refused = refusedKeys
	render, match := r.s.schema.Render, r.s.schema.Match
	if r.s.cfg.KeyNamer != nil {
		var pending map[string]state.PendingWrite
		if r.op == OpRemove {
			pending = r.st.Pending
		}
		render, match = nameKeys(r.s.cfg.KeyNamer, srcMap, r.st.Baseline, pending)
	}
	for k, sec := range srcMap {
		if only != "" && k != only {
			continue
		}
		dk, err := render(k)
		if err != nil {
			r.fail(KeyResult{Key: k, Action: Failed, Reason: "key not valid under the key schema"},
				&KeyError{Key: k, Op: "render", Side: sideSrc, Err: err})
			continue
		}
		if r.refuseKey(k, dk, sideSrc) {
			continue
		}
		index[k] = len(items)
		items = append(items, item{key: k, dkey: dk, src: sec, srcSide: conflict.Present(r.h.Sum(sec.Value))})
	}
	for dk, sec := range dstMap {
		k, ok := match(dk)
		if !ok {
			if only == "" {
				r.unmgd = append(r.unmgd, KeyResult{DestinationKey: dk, Action: Unmanaged})
			}
			continue
		}
		if only != "" && k != only {
			continue
		}
		i, ok := index[k]
		if !ok {
			if _, bad := refusedKeys[k]; bad || r.refuseKey(k, dk, sideDst) {
				continue
			}
			i = len(items)
			index[k] = i
			items = append(items, item{key: k, dkey: dk})
		}
		items[i].dst = sec
		items[i].dstSide = conflict.Present(r.h.Sum(sec.Value))
		if r.s.wo {
			items[i].dstSide = writeOnlySide(r.st.Markers, r.st.Baseline, k, sec.Version)
		}
	}
	for k := range r.st.Baseline {
		if _, ok := index[k]; ok || (only != "" && k != only) {
			continue
		}
		if _, bad := refusedKeys[k]; bad {
			continue
		}
		dk, err := render(k)
		if err != nil || destination.CheckKey(k) != nil || destination.CheckKey(dk) != nil {
			continue // reported with the source keys, or no longer usable
		}
		index[k] = len(items)
		items = append(items, item{key: k, dkey: dk})
	}
	for i := range items {
		it := &items[i]
		if fp, ok := r.st.Baseline[it.key]; ok {
			it.base, it.hasBase = conflict.Present(fp), true
		}
		if pw, ok := r.st.Pending[it.key]; ok {
			if r.s.wo && it.dstSide.Exists && pw.Destination && pw.Value.Exists {
				if m, ok := r.st.Markers[it.key]; !ok || m != it.dst.Version {
					// A write-only destination holds a value written after
					// the sync's last known one, and a write of the sync's
					// own was cut short with its outcome unknown: the write
					// is taken to have landed, and the marker as ours.
					it.dstSide = pw.Value
					it.adopt = true
				}
			}
			if w, ok := landed(pw, it, !r.srcUnknown); ok {
				v := w.Value
				it.confirmed = &w
				if it.adopt {
					r.setMarker(it.key, it.dst.Version)
				}
				// The writes of a round that was cut short reached every
				// side they were for: that value is what both sides agreed
				// on. It becomes the baseline now, saved with this round's
				// intents or status, so that a new intent for the key can
				// never hide it.
				it.base, it.hasBase = v, v.Exists
				if v.Exists {
					r.st.Baseline[it.key] = v.Fingerprint
				} else {
					delete(r.st.Baseline, it.key)
				}
				delete(r.st.Pending, it.key)
				r.landed++
			}
		}
		it.res = KeyResult{Key: it.key, DestinationKey: it.dkey}
	}
	sortByKey(items)
	r.items = items
	slices.SortFunc(r.unmgd, func(a, b KeyResult) int { return cmp.Compare(a.DestinationKey, b.DestinationKey) })
	return nil
}

// sortByKey sorts items by key. Items are large, so it sorts their indices
// and then moves each item once, following the cycles of the permutation.
func sortByKey(items []item) {
	order := make([]int32, len(items))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int { return cmp.Compare(items[a].key, items[b].key) })
	// items[i] must become items[order[i]]; order[i] = -1 marks a done slot.
	for i := range order {
		if order[i] < 0 || int(order[i]) == i {
			continue
		}
		tmp := items[i]
		j := i
		for {
			k := int(order[j])
			order[j] = -1
			if k == i {
				items[j] = tmp
				break
			}
			items[j] = items[k]
			j = k
		}
	}
}

// removeFromState makes a Remove whose source could not be listed go on
// without it. What a Remove deletes is what the sync wrote, which its
// state records: the baseline's keys, the pending writes found landed,
// and, for a KeyNamer, the names rendered from those keys. Only the
// destination keys that the source holds and the state does not (a sync
// whose state was lost) need the source; they are left in place.
func (r *round) removeFromState(ctx context.Context, srcErr error) {
	r.srcUnknown = true
	r.s.log.WarnContext(ctx, "secretsync: remove goes on from the saved state: listing the source failed",
		"sync", r.s.cfg.Name, "run_id", r.rep.RunID, "error", OneLine(srcErr))
}

// ref points at one write of one item.
type ref struct{ item, write int }

// apply writes the planned changes, destination first, then source.
func (r *round) apply(ctx context.Context) error {
	var dst, src []ref
	for i := range r.items {
		it := &r.items[i]
		for j := 0; j < it.nw; j++ {
			if it.writes[j].toSrc {
				src = append(src, ref{i, j})
			} else {
				dst = append(dst, ref{i, j})
			}
		}
	}
	if err := r.applySide(ctx, r.s.dst, dst); err != nil {
		return err
	}
	if r.s.wo {
		r.readMarkers(ctx, dst)
	}
	if len(src) == 0 {
		return nil
	}
	return r.applySide(ctx, r.s.srcW, src)
}

// applySide applies the writes refs on one side in batches, with up to
// Concurrency batches in flight, and audits each batch as it completes. It
// stops early on a cancelled context or, when failing closed, an audit error.
func (r *round) applySide(ctx context.Context, d destination.Destination, refs []ref) error {
	if len(refs) == 0 {
		return nil
	}
	changes := make([]destination.Change, len(refs))
	for i, rf := range refs {
		changes[i] = r.items[rf.item].writes[rf.write].change
	}
	size := len(changes)
	workers := 1
	if !destination.CapabilitiesOf(d).Atomic {
		workers = min(r.s.concurrency(), len(changes))
		size = min(maxBatch, (len(changes)+workers-1)/workers)
		if r.s.cfg.AuditFailClosed {
			// Events follow writes, so bound what can be written before an
			// audit failure stops the round.
			size = min(size, failClosedBatch)
		}
	}
	nb := (len(changes) + size - 1) / size
	if nb == 1 {
		// One batch (always, on an atomic side) runs here: a goroutine and
		// a group per round would cost thousands of syncs a goroutine each
		// in their first rounds.
		if ctx.Err() == nil {
			errs, callErr := d.Apply(ctx, changes)
			if err := r.record(ctx, refs, errs, callErr); err != nil {
				return err
			}
		}
		return context.Cause(ctx)
	}

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	var mu gosync.Mutex // serializes record
	for b := 0; b < nb && gctx.Err() == nil; b++ {
		g.Go(func() error {
			if gctx.Err() != nil {
				return nil
			}
			lo, hi := b*size, min((b+1)*size, len(changes))
			errs, callErr := d.Apply(gctx, changes[lo:hi])
			mu.Lock()
			defer mu.Unlock()
			return r.record(gctx, refs[lo:hi], errs, callErr) // an error stops the other batches
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return context.Cause(ctx) // nil unless the caller's context ended
}

// readMarkers lists a write-only destination after the round's puts to it,
// and keeps the marker of each key put, which the commit records as the
// sync's own. When the listing fails the markers stay unknown; the commit
// then keeps the intents, and the next round takes the markers it lists as
// the sync's own (see read).
func (r *round) readMarkers(ctx context.Context, refs []ref) {
	put := false
	for _, rf := range refs {
		w := &r.items[rf.item].writes[rf.write]
		put = put || (!w.change.Delete && w.outcome() == applied)
	}
	if !put {
		return
	}
	listed, err := r.s.dst.List(ctx)
	if err != nil {
		r.s.log.DebugContext(ctx, "secretsync: listing write-only destination markers failed", "sync", r.s.cfg.Name, "error", OneLine(err))
		return
	}
	for _, rf := range refs {
		it := &r.items[rf.item]
		if sec, ok := listed[it.dkey]; ok {
			it.marker, it.hasMarker = sec.Version, true
		}
	}
}

// maxBatch bounds the changes of one Apply call on a non-atomic side, and
// failClosedBatch does when the sync fails closed on audit errors.
const (
	maxBatch        = 256
	failClosedBatch = 16
)

// record stores the outcome of one Apply call and audits it. It returns an
// error that must stop the round: the side is unavailable (the first
// such error), or the auditor failed with AuditFailClosed.
//
// Every write that reached the side gets its event, even when the round is
// stopping: events are sent with a context that the caller's cancellation
// does not end.
func (r *round) record(ctx context.Context, refs []ref, errs []error, callErr error) error {
	perChange := len(errs) == len(refs)
	var stop error
	for i, rf := range refs {
		w := &r.items[rf.item].writes[rf.write]
		w.done = true
		switch {
		case perChange:
			w.err = errs[i]
		case callErr != nil:
			w.err = callErr
		default:
			w.err = fmt.Errorf("sync: %s returned %d results for %d changes", sideOf(w.toSrc), len(errs), len(refs))
		}
		if stop == nil && w.err != nil && errors.Is(w.err, destination.ErrUnavailable) {
			stop = &SideError{Side: sideOf(w.toSrc), Op: OpApply, Err: w.err}
		}
	}
	actx := context.WithoutCancel(ctx)
	stopping := ctx.Err() != nil || stop != nil
	for _, rf := range refs {
		it := &r.items[rf.item]
		w := &it.writes[rf.write]
		e := audit.Event{RunID: r.rep.RunID, Key: it.key, DestinationKey: it.dkey, Direction: direction(w.toSrc), Operation: r.op, Outcome: audit.Success}
		switch {
		case errors.Is(w.err, destination.ErrConflict):
			continue // reported as Retry; the next round reads the key again
		case w.err != nil && (errors.Is(w.err, destination.ErrUnavailable) || (stopping && isContextErr(w.err))):
			continue // the round's own failure, audited once for the round
		case w.err != nil:
			e.Type, e.Outcome, e.Message = audit.SyncFailed, audit.Failure, OneLine(w.err)
		case w.action == Deleted:
			e.Type = audit.SecretDeleted
		case w.action == Imported:
			e.Type = audit.SecretImported
		default:
			e.Type = audit.SecretSynced
		}
		if err := r.s.emit(actx, e); err != nil && stop == nil {
			stop = err
		}
	}
	return stop
}

// finishReport sets each item's final action from its writes and fills the
// report. wrote says whether writes were attempted.
func (r *round) finishReport(ctx context.Context, wrote bool) {
	rep := r.rep
	stopped := r.stopped || ctx.Err() != nil
	rep.Keys = make([]KeyResult, 0, len(r.unmgd)+len(r.items)+len(r.renderFailed))
	rep.Keys = append(rep.Keys, r.unmgd...)
	rep.Keys = append(rep.Keys, r.renderFailed...)
	for i := range r.items {
		it := &r.items[i]
		if wrote {
			for j := range it.writes[:it.nw] {
				w := &it.writes[j]
				if it.res.Action == Failed {
					break
				}
				switch w.outcome() {
				case applied:
				case notSent:
					it.res.Action, it.res.Reason = Retry, "not attempted: the round stopped"
				case refused:
					if errors.Is(w.err, destination.ErrConflict) {
						it.res.Action, it.res.Err = Retry, w.err
						it.res.Reason = "changed during the round; read again next round"
						continue
					}
					r.failWrite(it, w)
				case unknown:
					if stopped && isContextErr(w.err) {
						// The caller's cancellation, not a failure of the key.
						it.res.Action, it.res.Err = Retry, w.err
						it.res.Reason = "the round stopped before the write was confirmed"
						continue
					}
					// A timeout of the side's own client is a failure of
					// the key, like any other error.
					r.failWrite(it, w)
				}
			}
		}
		if it.confirmed != nil && it.res.Reason == "" {
			it.res.Reason = confirmedWrite
		}
		rep.Keys = append(rep.Keys, it.res)
	}
	slices.SortStableFunc(rep.Keys, func(a, b KeyResult) int {
		if c := cmp.Compare(a.Key, b.Key); c != 0 {
			return c
		}
		return cmp.Compare(a.DestinationKey, b.DestinationKey)
	})
	rep.Totals = Totals{}
	for _, k := range rep.Keys {
		rep.Totals.add(k.Action)
	}
}

// failWrite marks an item failed by one of its writes.
func (r *round) failWrite(it *item, w *write) {
	ke := &KeyError{Key: it.key, DestinationKey: it.dkey, Op: opName(w.change), Side: sideOf(w.toSrc), Err: w.err}
	it.res.Action, it.res.Err, it.res.Reason = Failed, ke, OneLine(w.err)
	r.errs = multierror.Append(r.errs, ke)
}

// fail records a per-key failure found before any write.
func (r *round) fail(res KeyResult, err error) {
	res.Err = err
	r.renderFailed = append(r.renderFailed, res)
	r.errs = multierror.Append(r.errs, err)
}

// refuseKey reports a key, or its rendering under the key schema, that
// could make a write land outside the place it is meant for (see
// destination.CheckKey): it is failed with a *KeyError wrapping
// destination.ErrInvalidKey, and the rest of the round goes on.
func (r *round) refuseKey(key, dkey, side string) bool {
	err := destination.CheckKey(key)
	if err == nil {
		err = destination.CheckKey(dkey)
	}
	if err == nil {
		return false
	}
	r.refused[key] = struct{}{}
	r.fail(KeyResult{Key: key, DestinationKey: dkey, Action: Failed, Reason: "unsafe key: " + err.Error()},
		&KeyError{Key: key, DestinationKey: dkey, Op: "check", Side: side, Err: err})
	return true
}

// confirmEvents audits the writes of earlier rounds, cut short before they
// could audit them (a crash, a lost answer), that this round found
// applied and made baselines of: every write that reached a side has its
// event, at least once. (A write that its own round audited just before
// being cut short is audited again here.)
func (r *round) confirmEvents(ctx context.Context) error {
	for i := range r.items {
		it := &r.items[i]
		w := it.confirmed
		if w == nil {
			continue
		}
		for _, toSrc := range []bool{false, true} {
			if (toSrc && !w.Source) || (!toSrc && !w.Destination) {
				continue
			}
			e := audit.Event{Type: audit.SecretSynced, RunID: r.rep.RunID, Key: it.key, DestinationKey: it.dkey,
				Direction: direction(toSrc), Operation: r.op, Outcome: audit.Success, Message: confirmedWrite}
			if !w.Value.Exists {
				e.Type = audit.SecretDeleted
			}
			if err := r.s.emit(context.WithoutCancel(ctx), e); err != nil {
				return err
			}
		}
	}
	return nil
}

// confirmedWrite is the message of a write confirmed by a later round.
const confirmedWrite = "confirmed by this round: a write of an earlier round that was cut short before it could record it"

// conflictEvents audits newly flagged conflicts.
func (r *round) conflictEvents(ctx context.Context) error {
	for i := range r.items {
		it := &r.items[i]
		if !r.flaggedAnew(it) {
			continue // not flagged, or already reported
		}
		err := r.s.emit(context.WithoutCancel(ctx), audit.Event{
			Type: audit.ConflictDetected, RunID: r.rep.RunID, Key: it.key, DestinationKey: it.dkey,
			Operation: r.op, Outcome: audit.Flagged, Message: it.res.Reason,
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// commit records baselines, pending writes, conflicts and status, and
// saves the state. It saves even when the caller's context has ended, so
// that what was applied is not forgotten.
//
// A key's baseline advances when every write planned for it was applied.
// Its pending write is cleared then, put back to what it was before the
// round when the writes certainly did not happen (not sent, or refused),
// and kept when the outcome of a write is unknown (a timeout, an
// unavailable side, a stopped round): a write that lands later is then
// still recognized as the sync's own.
func (r *round) commit(ctx context.Context, applyErr error) error {
	s, st := r.s, r.st
	conflicts := make(map[string]state.FlaggedConflict)
	if r.resolve != nil || r.op == OpImport {
		for k, c := range st.Conflicts {
			conflicts[k] = c
		}
	}
	clean := true
	for i := range r.items {
		it := &r.items[i]
		if it.res.Action == Failed || it.res.Action == Retry {
			clean = false
		}
		allApplied, anyUnknown, putDst := true, false, false
		for j := range it.writes[:it.nw] {
			w := &it.writes[j]
			switch w.outcome() {
			case applied:
				putDst = putDst || (!w.toSrc && !w.change.Delete)
			case unknown:
				anyUnknown, allApplied = true, false
			default:
				allApplied = false
			}
		}
		// A put to a write-only destination whose marker is unknown keeps
		// its intent, for the next round to take the marker as the sync's.
		markerUnknown := r.s.wo && putDst && !it.hasMarker
		if it.nw > 0 {
			switch {
			case allApplied && markerUnknown:
			case allApplied:
				delete(st.Pending, it.key)
			case anyUnknown:
				// keep the intent recorded for this round
			default:
				if prev := r.prevPending[it.key]; prev.Destination || prev.Source {
					st.Pending[it.key] = prev
				} else {
					delete(st.Pending, it.key)
				}
			}
		}
		if it.flag {
			old, ok := st.Conflicts[it.key]
			if !ok || old.Class != it.class || !old.Source.Same(it.srcSide) || !old.Destination.Same(it.dstSide) {
				old = state.FlaggedConflict{Class: it.class, Source: it.srcSide, Destination: it.dstSide, RunID: r.rep.RunID, Time: s.now()}
			}
			conflicts[it.key] = old
			continue
		}
		if r.resolve != nil && (it.res.Action == Retry || it.res.Action == Failed) {
			// The resolution did not land (the key changed since it was
			// read, or a side failed): the conflict stays flagged, and
			// Resolve again reads anew.
			continue
		}
		delete(conflicts, it.key)
		if !it.setBase || !allApplied || it.res.Action == Failed || it.res.Action == Retry {
			continue
		}
		if it.newBase.Exists {
			st.Baseline[it.key] = it.newBase.Fingerprint
		} else {
			delete(st.Baseline, it.key)
		}
		if r.s.wo {
			switch {
			case !it.newBase.Exists:
				delete(st.Markers, it.key)
			case putDst && it.hasMarker:
				r.setMarker(it.key, it.marker)
			case !putDst && it.dstSide.Exists:
				r.setMarker(it.key, it.dst.Version)
			}
		}
	}
	for k := range st.Markers {
		if _, ok := st.Baseline[k]; !ok {
			delete(st.Markers, k)
		}
	}
	if len(st.Markers) == 0 {
		st.Markers = nil
	}
	if r.errs != nil {
		clean = false
	}
	st.Conflicts = conflicts
	if len(st.Conflicts) == 0 {
		st.Conflicts = nil
	}
	if len(st.Pending) == 0 {
		st.Pending = nil
	}
	switch r.op {
	case OpSync:
		if r.initial && clean && applyErr == nil {
			st.Initialized = true
		}
	case OpRemove:
		if len(st.Baseline) == 0 {
			st.Initialized = false
		}
	}

	err := applyErr
	if err == nil && r.errs != nil {
		err = r.errs.ErrorOrNil()
	}
	var rec *state.Record
	if r.op != OpResolve {
		rec = r.statusRecord(err)
	}
	r.rep.Flagged = len(st.Conflicts)
	if r.skipSave(rec) {
		// Nothing changed: the store keeps what it holds, and Status shows
		// this round's record.
		if rec != nil {
			s.setUnsaved(r.op, st.Revision, rec)
		}
	} else if serr := r.save(ctx, rec); serr != nil {
		serr = &SideError{Side: SideStore, Op: OpSave, Err: serr}
		r.auditFailure(ctx, serr)
		if err == nil {
			return serr
		}
		return multierror.Append(err, serr)
	}
	if r.resolve != nil && err == nil {
		if err := r.resolved(ctx); err != nil {
			return err
		}
	}
	if err != nil && !isContextErr(err) && !errors.Is(err, ErrAudit) {
		r.auditFailure(ctx, err)
	}
	s.log.DebugContext(ctx, "secretsync: round done", "sync", s.cfg.Name, "op", r.op, "run_id", r.rep.RunID, "summary", r.rep.String())
	return err
}

// statusRecord is the record of an operation that ended with err: failed
// when err is set or a key failed, "conflicts" when conflicts were flagged,
// pending when keys changed during the round and are read again next
// round, and succeeded only when every planned write was applied. Its
// message is one line.
func (r *round) statusRecord(err error) *state.Record {
	rec := &state.Record{Status: state.Succeeded, Message: r.rep.String(), Time: r.s.now(), RunID: r.rep.RunID}
	t := r.rep.Totals
	switch {
	case err != nil:
		rec.Status, rec.Message = state.Failed, OneLine(err)
	case t.Failed > 0:
		rec.Status = state.Failed
	case t.Conflicts > 0:
		rec.Status = state.Conflicted
	case t.Retries > 0:
		rec.Status = state.Pending
		rec.Message += fmt.Sprintf(" (%d keys changed during the round; read again next round)", t.Retries)
	}
	return rec
}

// saveTimeout bounds the final state save of a round whose context ended.
const saveTimeout = 30 * time.Second

// failRound records a failed operation and audits it. saveStatus says
// whether the state was loaded and the failure can be recorded.
func (r *round) failRound(ctx context.Context, err error, saveStatus bool) error {
	if r.st != nil {
		r.rep.Flagged = len(r.st.Conflicts)
	}
	if !r.opts.dryRun && r.op != OpResolve {
		r.s.setUnsaved(r.op, 0, nil)
	}
	if saveStatus && !r.opts.dryRun && r.op != OpResolve {
		rec := &state.Record{Status: state.Failed, Message: OneLine(err), Time: r.s.now(), RunID: r.rep.RunID}
		if serr := r.save(ctx, rec); serr != nil {
			err = multierror.Append(err, &SideError{Side: SideStore, Op: OpSave, Err: serr})
		}
	}
	if !r.opts.dryRun {
		r.auditFailure(ctx, err)
	}
	return err
}

func (r *round) auditFailure(ctx context.Context, err error) {
	if isContextErr(err) {
		return
	}
	_ = r.s.emit(context.WithoutCancel(ctx), audit.Event{Type: audit.SyncFailed, RunID: r.rep.RunID, Operation: r.op, Outcome: audit.Failure, Message: OneLine(err)})
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

func createOrUpdate(to conflict.Side) Action {
	if to.Exists {
		return Updated
	}
	return Created
}

func sideOf(toSrc bool) string {
	if toSrc {
		return sideSrc
	}
	return sideDst
}

func direction(toSrc bool) audit.Direction {
	if toSrc {
		return audit.ToSource
	}
	return audit.ToDestination
}

func opName(c destination.Change) string {
	if c.Delete {
		return "delete"
	}
	return "put"
}

func sortFlagged(fs []FlaggedConflict) {
	slices.SortFunc(fs, func(a, b FlaggedConflict) int { return cmp.Compare(a.Key, b.Key) })
}

// setMarker records m as the marker of k's own value at a write-only
// destination.
func (r *round) setMarker(k, m string) {
	if r.st.Markers == nil {
		r.st.Markers = make(map[string]string)
	}
	r.st.Markers[k] = m
}
