package sync

import (
	"crypto/sha256"
	"fmt"
	"slices"

	"github.com/secretsync/secretsync/audit"
	"github.com/secretsync/secretsync/conflict"
	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/internal/fingerprint"
	"github.com/secretsync/secretsync/state"
)

// planInput is everything planning reads: the round's items, each with
// both sides and its baseline as fingerprints (see read), and the rules
// of the operation. Planning reads nothing else: no side, no store, no
// clock.
type planInput struct {
	op          string      // OpSync, OpImport, OpRemove or OpResolve
	mode        Mode        // Config.Mode
	initialSync InitialSync // Config.InitialSync, Auto resolved for the mode
	// initial: the sync has no baseline yet (OpSync only); InitialSync
	// applies to the keys without one.
	initial         bool
	sourceWritable  bool // the source can be written (Config.Source is a Destination)
	disableDeletion bool // Config.DisableDeletion
	writeOnly       bool // the destination is write-only
	// srcUnknown: a Remove could not list the source and goes on from the
	// saved state.
	srcUnknown bool
	resolve    *resolveReq         // the resolution of OpResolve
	policy     conflict.Policy     // Config.ConflictPolicy
	hasher     *fingerprint.Hasher // for the fingerprint of a UseValue resolution
	force      bool                // Force: the mass-deletion guard does not apply
	maxDelete  float64             // Config.MaxDeleteFraction, defaulted

	// items are the round's keys, sorted by key. plan reads each one's
	// names (key, dkey), sides (src, dst, srcSide, dstSide), baseline
	// (base, hasBase) and confirmed write; it fills in what it decides
	// (class, res, writes, setBase and newBase, flag), and gives a key
	// without baseline the one that InitialSync implies.
	items []item
}

// planOutput is what planning decides besides each item's writes.
type planOutput struct {
	// err: a resolution that this operation cannot apply (OpResolve
	// only). Nothing is to be written.
	err error
	// guard: the plan deletes more than the mass-deletion guard allows
	// (a *MassDeletionError). What would be written stays planned, for
	// Plan to show it.
	guard error
}

// planner is a planInput with the rules derived from it.
type planner struct {
	planInput
	importInitial bool // initial and InitialSync is an import behaviour
	canDst        bool // this operation may write the destination
	canSrc        bool // this operation may write the source
	canDelete     bool
}

// plan classifies every item against its baseline and plans the writes
// that the operation, the mode and the policy allow. It is a pure
// function of in, which it changes only in the decisions it fills in on
// in.items.
func plan(in planInput) planOutput {
	p := newPlanner(in)
	for i := range p.items {
		it := &p.items[i]
		if p.op == OpRemove {
			p.decideRemove(it)
			continue
		}
		p.initialBase(it)
		p.decide(it)
	}
	if p.resolve != nil {
		if err := p.checkResolve(); err != nil {
			return planOutput{err: err}
		}
	}
	return planOutput{guard: p.guard()}
}

// newPlanner derives which sides the operation may write and delete.
func newPlanner(in planInput) *planner {
	p := &planner{planInput: in}
	p.initial = p.initial && p.op == OpSync
	p.importInitial = p.initial && (p.initialSync == ImportPreferSource || p.initialSync == ImportPreferDestination)
	switch p.op {
	case OpSync:
		p.canDst = p.mode != Pull
		p.canSrc = p.sourceWritable && (p.mode != Push || p.importInitial)
		p.canDelete = !p.disableDeletion
	case OpImport:
		p.canSrc = true
	case OpRemove:
		p.canDst, p.canDelete = true, true
	case OpResolve:
		p.canDst = true
		p.canSrc = p.sourceWritable
		p.canDelete = !p.disableDeletion
	}
	return p
}

// initialBase gives a key without baseline, in the first round, the
// baseline that InitialSync implies. A key whose baseline was set by a
// landed write of an earlier round (it.confirmed) keeps it.
func (p *planner) initialBase(it *item) {
	if !p.initial || it.hasBase || it.confirmed != nil {
		return
	}
	switch {
	case p.writeOnly:
		// A write-only destination's key that this sync never wrote
		// cannot be compared with the source: it is someone else's,
		// flagged rather than overwritten or deleted.
		it.base = conflict.Absent
	case p.importInitial:
		it.base = conflict.Absent
	case p.mode == Pull:
		it.base = it.srcSide // mirror: the source becomes the destination
	default:
		it.base = it.dstSide // overwrite: the destination becomes the source
	}
}

// decide classifies an item and plans its writes.
func (p *planner) decide(it *item) {
	it.class = conflict.Classify(it.base, it.srcSide, it.dstSide)
	it.res.Class = it.class
	if p.resolve != nil {
		p.resolveWith(it, p.resolve.res, "resolved: "+p.resolve.res.String())
		return
	}
	switch it.class {
	case conflict.Unchanged, conflict.Converged:
		it.res.Action = Unchanged
		it.setBase, it.newBase = true, it.srcSide
	case conflict.SourceChanged:
		p.propagate(it, false)
	case conflict.DestinationChanged:
		p.propagate(it, true)
	default:
		res, why := p.policyFor(it, it.class)
		p.resolveWith(it, res, why)
	}
}

// policyFor returns the resolution for a conflict (or drift) and its reason.
func (p *planner) policyFor(it *item, class conflict.Class) (conflict.Resolution, string) {
	if p.importInitial && !it.hasBase && class == conflict.BothCreated {
		if p.initialSync == ImportPreferSource {
			return conflict.KeepSource, "initial sync: import-prefer-source"
		}
		return conflict.KeepDestination, "initial sync: import-prefer-destination"
	}
	res := p.policy.Resolve(conflict.Conflict{
		Key: it.key, Class: class, Baseline: it.base, Source: it.srcSide, Destination: it.dstSide,
	})
	return res, "policy: " + res.String()
}

// propagate copies the side that changed onto the other one; toSrc says the
// destination changed and the source is to be written.
func (p *planner) propagate(it *item, toSrc bool) {
	allowed := p.canDst
	if toSrc {
		allowed = p.canSrc
	}
	if allowed {
		p.copyOver(it, toSrc, "")
		return
	}
	if p.op == OpImport {
		it.res.Action = Skipped
		it.res.Reason = "changed at the source; import writes only the source"
		return
	}
	// Drift: the side this mode does not write from changed out of band.
	res, why := p.policyFor(it, it.class)
	if res.Kind() == conflict.KindFlag {
		it.flag = true
		it.res.Action = Conflict
		if toSrc {
			it.res.Reason = "drift: destination changed out of band"
		} else {
			it.res.Reason = "drift: source changed out of band"
		}
		return
	}
	p.resolveWith(it, res, "drift, "+why)
}

// resolveWith plans the writes of a resolution.
func (p *planner) resolveWith(it *item, res conflict.Resolution, why string) {
	switch res.Kind() {
	case conflict.KindKeepSource:
		if p.canDst {
			p.copyOver(it, false, why)
			return
		}
	case conflict.KindKeepDestination:
		if p.canSrc {
			p.copyOver(it, true, why)
			return
		}
	case conflict.KindUseValue:
		if p.canDst && p.canSrc {
			v, _ := res.Value()
			fp := conflict.Present(p.hasher.Sum(v))
			it.res.Reason = why
			it.setBase, it.newBase = true, fp
			if !it.dstSide.Same(fp) {
				it.addWrite(write{change: destination.Change{Key: it.dkey, Value: v, Expect: it.dst.Version}, action: createOrUpdate(it.dstSide)})
			}
			if !it.srcSide.Same(fp) {
				it.addWrite(write{toSrc: true, change: destination.Change{Key: it.key, Value: v, Expect: it.src.Version}, action: createOrUpdate(it.srcSide)})
			}
			it.res.Action = Unchanged
			if it.nw > 0 {
				it.res.Action, it.res.Direction = it.writes[0].action, direction(it.writes[0].toSrc)
			}
			return
		}
	}
	it.flag = true
	it.res.Action = Conflict
	it.res.Reason = it.class.String()
	if res.Kind() != conflict.KindFlag {
		it.res.Reason += "; " + why + " needs a side this operation does not write"
	}
}

// copyOver makes the receiving side what the other side is; toSrc says
// the source receives.
func (p *planner) copyOver(it *item, toSrc bool, why string) {
	from, fromSide, to, toSide, key := it.src, it.srcSide, it.dst, it.dstSide, it.dkey
	if toSrc {
		from, fromSide, to, toSide, key = it.dst, it.dstSide, it.src, it.srcSide, it.key
	}
	it.res.Reason = why
	if fromSide.Same(toSide) {
		it.res.Action = Unchanged
		it.setBase, it.newBase = true, fromSide
		return
	}
	if !fromSide.Exists {
		if !p.canDelete {
			// Nothing is written: no direction.
			it.res.Action = Skipped
			it.res.Reason = "deletion disabled"
			if p.op == OpImport {
				it.res.Reason = "import never deletes"
			}
			// Keep the baseline where it is, so the key stays a pending
			// deletion rather than becoming a key created out of band.
			it.setBase, it.newBase = true, it.base
			return
		}
		it.addWrite(write{toSrc: toSrc, change: destination.Change{Key: key, Delete: true, Expect: to.Version}, action: Deleted})
	} else {
		a := createOrUpdate(toSide)
		if toSrc && (p.op == OpImport || p.importInitial) {
			a = Imported
		}
		it.addWrite(write{toSrc: toSrc, change: destination.Change{Key: key, Value: from.Value, Expect: to.Version}, action: a})
	}
	it.res.Action, it.res.Direction = it.writes[it.nw-1].action, direction(toSrc)
	it.setBase, it.newBase = true, fromSide
}

// decideRemove plans the deletion of a destination key for Remove.
func (p *planner) decideRemove(it *item) {
	src := it.srcSide
	if p.srcUnknown {
		src = it.base // unknown: classified as unchanged since the baseline
	}
	it.res.Class = conflict.Classify(it.base, src, it.dstSide)
	if !it.dstSide.Exists {
		it.res.Action = Unchanged
		it.res.Reason = "already absent"
		it.setBase, it.newBase = true, conflict.Absent
		return
	}
	if !it.hasBase && !it.srcSide.Exists {
		it.res.Action = Skipped
		it.res.Reason = "not kept by this sync"
		if p.srcUnknown {
			it.res.Reason = "not in this sync's state (the source could not be read)"
		}
		return
	}
	it.addWrite(write{change: destination.Change{Key: it.dkey, Delete: true, Expect: it.dst.Version}, action: Deleted})
	it.res.Action, it.res.Direction = Deleted, audit.ToDestination
	it.setBase, it.newBase = true, conflict.Absent
}

// guard refuses a plan that would delete too much.
func (p *planner) guard() error {
	if p.force || p.op == OpRemove || p.op == OpResolve {
		return nil
	}
	var delDst, delSrc, nDst, nSrc int
	for i := range p.items {
		it := &p.items[i]
		if it.dstSide.Exists {
			nDst++
		}
		if it.srcSide.Exists {
			nSrc++
		}
		for _, w := range it.writes[:it.nw] {
			if w.change.Delete {
				if w.toSrc {
					delSrc++
				} else {
					delDst++
				}
			}
		}
	}
	check := func(side string, del, managed, other int) error {
		switch {
		case del == 0:
			return nil
		case other == 0:
			return &MassDeletionError{Side: side, Deletes: del, Managed: managed, Fraction: p.maxDelete, Empty: true}
		case float64(del) > p.maxDelete*float64(managed):
			return &MassDeletionError{Side: side, Deletes: del, Managed: managed, Fraction: p.maxDelete}
		}
		return nil
	}
	if err := check(sideDst, delDst, nDst, nSrc); err != nil {
		return err
	}
	return check(sideSrc, delSrc, nSrc, nDst)
}

// nameKeys returns the render and match functions of a round of a sync
// with a KeyNamer: the destination keys it manages are those named from
// the source's keys and from the baseline's, and, for a Remove, from the
// keys of its pending writes (a write whose outcome is unknown may have
// created its key; pending is nil otherwise).
//
// A name belongs to one key, or to none, whatever the order of the maps:
// a source key's name is its own, and a key gone from the source (of the
// baseline or of a pending write) that is given the same name fails to
// render (a renamed key: the name is the new key's). Two source keys named
// alike both fail, and so do two keys gone from the source named alike
// that no source key's name is (a changed namer): neither is written or
// deleted over the other, and the entry at the name is unmanaged.
func nameKeys(namer KeyNamer, srcMap map[string]destination.Secret, baseline map[string]conflict.Fingerprint, pending map[string]state.PendingWrite) (render func(string) (string, error), match func(string) (string, bool)) {
	type named struct {
		dk  string
		err error
	}
	fwd := make(map[string]named, len(srcMap)+len(baseline))
	// The keys given each name, from the source and from the state.
	type claims struct{ src, gone []string }
	byName := make(map[string]*claims, len(srcMap)+len(baseline))
	name := func(k string, fromSource bool) {
		if _, ok := fwd[k]; ok {
			return
		}
		dk, err := namer.DestinationKey(k)
		fwd[k] = named{dk, err}
		if err != nil {
			return
		}
		c := byName[dk]
		if c == nil {
			c = &claims{}
			byName[dk] = c
		}
		if fromSource {
			c.src = append(c.src, k)
		} else {
			c.gone = append(c.gone, k)
		}
	}
	for k := range srcMap {
		name(k, true)
	}
	for k := range baseline {
		name(k, false)
	}
	for k := range pending {
		name(k, false)
	}
	rev := make(map[string]string, len(byName))
	collide := func(dk string, keys []string) {
		slices.Sort(keys)
		err := fmt.Errorf("%w: %q and %q are both named %q at the destination", destination.ErrInvalidKey, keys[0], keys[1], dk)
		if len(keys) > 2 {
			err = fmt.Errorf("%w: %d keys (%q, %q, ...) are all named %q at the destination", destination.ErrInvalidKey, len(keys), keys[0], keys[1], dk)
		}
		for _, k := range keys {
			fwd[k] = named{err: err}
		}
	}
	for dk, c := range byName {
		switch {
		case len(c.src) > 1:
			collide(dk, c.src)
		case len(c.src) == 1:
			rev[dk] = c.src[0]
		case len(c.gone) > 1:
			collide(dk, c.gone)
		default:
			rev[dk] = c.gone[0]
		}
		if len(c.src) > 0 {
			// Renamed keys: the name is the source's.
			slices.Sort(c.src)
			for _, k := range c.gone {
				fwd[k] = named{err: fmt.Errorf("%w: %q is now the name of %q", destination.ErrInvalidKey, dk, c.src[0])}
			}
		}
	}
	render = func(k string) (string, error) {
		n, ok := fwd[k]
		if !ok {
			return namer.DestinationKey(k)
		}
		return n.dk, n.err
	}
	match = func(dk string) (string, bool) {
		k, ok := rev[dk]
		return k, ok
	}
	return render, match
}

// writeOnlySide returns the side of key k at a write-only destination that
// lists it with marker m: the baseline's value while m is the marker the
// sync recorded (in markers) after its own write, and otherwise a value
// nobody can know, which differs from every other.
func writeOnlySide(markers map[string]string, baseline map[string]conflict.Fingerprint, k, m string) conflict.Side {
	if stored, ok := markers[k]; ok && stored == m {
		if fp, ok := baseline[k]; ok {
			return conflict.Present(fp)
		}
	}
	return conflict.Present(sha256.Sum256([]byte("secretsync: write-only marker\x00" + m)))
}
