package sync

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/secretsync/secretsync/audit"
	"github.com/secretsync/secretsync/conflict"
	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/internal/fingerprint"
	"github.com/secretsync/secretsync/state"
)

// planHasher fingerprints the values of the planner's tables.
var planHasher = func() *fingerprint.Hasher {
	h, err := fingerprint.New(make([]byte, fingerprint.KeySize))
	if err != nil {
		panic(err)
	}
	return h
}()

// side returns the side of value v; "" is absent.
func side(v string) conflict.Side {
	if v == "" {
		return conflict.Absent
	}
	return conflict.Present(planHasher.Sum(v))
}

// planItem builds the item of key k as read: base is its baseline (""
// none), src and dst its values ("" absent). The source lists it at
// version "s1", the destination at "d1", under the name "app/"+k.
func planItem(k, base, src, dst string) item {
	it := item{key: k, dkey: "app/" + k, srcSide: side(src), dstSide: side(dst)}
	if src != "" {
		it.src = destination.Secret{Value: src, Version: "s1"}
	}
	if dst != "" {
		it.dst = destination.Secret{Value: dst, Version: "d1"}
	}
	if base != "" {
		it.base, it.hasBase = side(base), true
	}
	it.res = KeyResult{Key: it.key, DestinationKey: it.dkey}
	return it
}

// writesOf describes an item's planned writes as "dst put v", "src del",
// checking that each goes to the side's name with the version read.
func writesOf(t *testing.T, it *item) []string {
	t.Helper()
	var out []string
	for _, w := range it.writes[:it.nw] {
		name, key, expect := "dst", it.dkey, it.dst.Version
		if w.toSrc {
			name, key, expect = "src", it.key, it.src.Version
		}
		if w.change.Key != key || w.change.Expect != expect {
			t.Errorf("%s write %+v: want key %q and expect %q", name, w.change, key, expect)
		}
		if w.change.Delete {
			out = append(out, name+" del")
		} else {
			out = append(out, name+" put "+w.change.Value)
		}
	}
	return out
}

// baseOf describes the baseline an item is to get: "" none, "-" absent,
// or the value whose fingerprint it is.
func baseOf(it *item, values ...string) string {
	if !it.setBase {
		return ""
	}
	if !it.newBase.Exists {
		return "-"
	}
	for _, v := range values {
		if v != "" && it.newBase.Same(side(v)) {
			return v
		}
	}
	return "?"
}

// bidi, push, pull, imp, rm and res are the rules of the tables' usual
// operations, without their items; force keeps the mass-deletion guard
// out of the tables of single keys (it has its own).
var (
	bidi = planInput{op: OpSync, mode: Bidirectional, initialSync: ImportPreferSource, sourceWritable: true, force: true, maxDelete: 0.5}
	push = planInput{op: OpSync, mode: Push, initialSync: OverwriteDestination, force: true, maxDelete: 0.5}
	pull = planInput{op: OpSync, mode: Pull, sourceWritable: true, force: true, maxDelete: 0.5}
	imp  = planInput{op: OpImport, mode: Push, initialSync: OverwriteDestination, sourceWritable: true, force: true, maxDelete: 0.5}
	rm   = planInput{op: OpRemove, mode: Push, initialSync: OverwriteDestination, force: true, maxDelete: 0.5}
)

// with returns in changed by the options.
func with(in planInput, opts ...func(*planInput)) planInput {
	for _, o := range opts {
		o(&in)
	}
	return in
}

func initial(is InitialSync) func(*planInput) {
	return func(in *planInput) { in.initial, in.initialSync = true, is }
}
func policy(p conflict.Policy) func(*planInput) { return func(in *planInput) { in.policy = p } }
func noDelete(in *planInput)                    { in.disableDeletion = true }
func readOnlySource(in *planInput)              { in.sourceWritable = false }
func writeOnly(in *planInput)                   { in.writeOnly = true }
func srcUnknown(in *planInput)                  { in.srcUnknown = true }
func resolving(r conflict.Resolution) func(*planInput) {
	return func(in *planInput) { in.op, in.resolve = OpResolve, &resolveReq{key: "k", res: r} }
}
func useValue(conflict.Conflict) conflict.Resolution { return conflict.UseValue("v") }

// TestPlanTable plans one key at a time: every class of the three-way
// classification under every mode, the first round's behaviours, the
// policies, deletion control, Import, Remove and Resolve.
func TestPlanTable(t *testing.T) {
	const (
		toDst = audit.ToDestination
		toSrc = audit.ToSource
		none  = audit.Direction("")
	)
	type row struct {
		name           string
		in             planInput
		base, src, dst string // the key's baseline and sides; "" absent
		class          conflict.Class
		action         Action
		dir            audit.Direction
		reason         string
		writes         []string
		newBase        string // "" none, "-" absent, else its value
		flag           bool
		err            error // from plan (Resolve)
	}
	const (
		unchanged = conflict.Unchanged
		srcCh     = conflict.SourceChanged
		dstCh     = conflict.DestinationChanged
		conv      = conflict.Converged
		bothCh    = conflict.BothChanged
		bothNew   = conflict.BothCreated
		srcDel    = conflict.SourceDeleted
		dstDel    = conflict.DestinationDeleted
	)
	rows := []row{
		// Bidirectional: each class.
		{name: "bidi/unchanged", in: bidi, base: "a", src: "a", dst: "a", class: unchanged, action: Unchanged, newBase: "a"},
		{name: "bidi/absent everywhere", in: bidi, class: unchanged, action: Unchanged, newBase: "-"},
		{name: "bidi/converged on a value", in: bidi, base: "a", src: "b", dst: "b", class: conv, action: Unchanged, newBase: "b"},
		{name: "bidi/deleted on both", in: bidi, base: "a", class: conv, action: Unchanged, newBase: "-"},
		{name: "bidi/source updated", in: bidi, base: "a", src: "b", dst: "a", class: srcCh, action: Updated, dir: toDst, writes: []string{"dst put b"}, newBase: "b"},
		{name: "bidi/source created", in: bidi, src: "b", class: srcCh, action: Created, dir: toDst, writes: []string{"dst put b"}, newBase: "b"},
		{name: "bidi/source deleted", in: bidi, base: "a", dst: "a", class: srcCh, action: Deleted, dir: toDst, writes: []string{"dst del"}, newBase: "-"},
		{name: "bidi/destination updated", in: bidi, base: "a", src: "a", dst: "c", class: dstCh, action: Updated, dir: toSrc, writes: []string{"src put c"}, newBase: "c"},
		{name: "bidi/destination created", in: bidi, dst: "c", class: dstCh, action: Created, dir: toSrc, writes: []string{"src put c"}, newBase: "c"},
		{name: "bidi/destination deleted", in: bidi, base: "a", src: "a", class: dstCh, action: Deleted, dir: toSrc, writes: []string{"src del"}, newBase: "-"},
		{name: "bidi/both changed", in: bidi, base: "a", src: "b", dst: "c", class: bothCh, action: Conflict, reason: "both-changed", flag: true},
		{name: "bidi/both created", in: bidi, src: "b", dst: "c", class: bothNew, action: Conflict, reason: "both-created", flag: true},
		{name: "bidi/deleted at source, changed at destination", in: bidi, base: "a", dst: "c", class: srcDel, action: Conflict, reason: "source-deleted", flag: true},
		{name: "bidi/changed at source, deleted at destination", in: bidi, base: "a", src: "b", class: dstDel, action: Conflict, reason: "destination-deleted", flag: true},

		// Bidirectional: policies.
		{name: "bidi/both changed, prefer source", in: with(bidi, policy(conflict.PreferSource)), base: "a", src: "b", dst: "c", class: bothCh, action: Updated, dir: toDst, reason: "policy: keep-source", writes: []string{"dst put b"}, newBase: "b"},
		{name: "bidi/both changed, prefer destination", in: with(bidi, policy(conflict.PreferDestination)), base: "a", src: "b", dst: "c", class: bothCh, action: Updated, dir: toSrc, reason: "policy: keep-destination", writes: []string{"src put c"}, newBase: "c"},
		{name: "bidi/both changed, use value", in: with(bidi, policy(useValue)), base: "a", src: "b", dst: "c", class: bothCh, action: Updated, dir: toDst, reason: "policy: use-value", writes: []string{"dst put v", "src put v"}, newBase: "v"},
		{name: "bidi/both changed, use the destination's value", in: with(bidi, policy(useValue)), base: "a", src: "b", dst: "v", class: bothCh, action: Updated, dir: toSrc, reason: "policy: use-value", writes: []string{"src put v"}, newBase: "v"},
		{name: "bidi/both created, use value", in: with(bidi, policy(useValue)), src: "b", dst: "c", class: bothNew, action: Updated, dir: toDst, reason: "policy: use-value", writes: []string{"dst put v", "src put v"}, newBase: "v"},
		{name: "bidi/deleted at source, prefer source", in: with(bidi, policy(conflict.PreferSource)), base: "a", dst: "c", class: srcDel, action: Deleted, dir: toDst, reason: "policy: keep-source", writes: []string{"dst del"}, newBase: "-"},
		{name: "bidi/deleted at destination, prefer destination", in: with(bidi, policy(conflict.PreferDestination)), base: "a", src: "b", class: dstDel, action: Deleted, dir: toSrc, reason: "policy: keep-destination", writes: []string{"src del"}, newBase: "-"},
		{name: "bidi/deleted at destination, prefer source", in: with(bidi, policy(conflict.PreferSource)), base: "a", src: "b", class: dstDel, action: Created, dir: toDst, reason: "policy: keep-source", writes: []string{"dst put b"}, newBase: "b"},

		// Bidirectional over a source that cannot be written.
		{name: "bidi read-only source/destination updated is drift", in: with(bidi, readOnlySource), base: "a", src: "a", dst: "c", class: dstCh, action: Conflict, reason: "drift: destination changed out of band", flag: true},
		{name: "bidi read-only source/prefer destination needs the source", in: with(bidi, readOnlySource, policy(conflict.PreferDestination)), base: "a", src: "b", dst: "c", class: bothCh, action: Conflict, reason: "both-changed; policy: keep-destination needs a side this operation does not write", flag: true},
		{name: "bidi read-only source/use value needs the source", in: with(bidi, readOnlySource, policy(useValue)), base: "a", src: "b", dst: "c", class: bothCh, action: Conflict, reason: "both-changed; policy: use-value needs a side this operation does not write", flag: true},

		// Push: the source's changes go to the destination; the
		// destination's are drift.
		{name: "push/unchanged", in: push, base: "a", src: "a", dst: "a", class: unchanged, action: Unchanged, newBase: "a"},
		{name: "push/source updated", in: push, base: "a", src: "b", dst: "a", class: srcCh, action: Updated, dir: toDst, writes: []string{"dst put b"}, newBase: "b"},
		{name: "push/source created", in: push, src: "b", class: srcCh, action: Created, dir: toDst, writes: []string{"dst put b"}, newBase: "b"},
		{name: "push/source deleted", in: push, base: "a", dst: "a", class: srcCh, action: Deleted, dir: toDst, writes: []string{"dst del"}, newBase: "-"},
		{name: "push/converged", in: push, base: "a", src: "b", dst: "b", class: conv, action: Unchanged, newBase: "b"},
		{name: "push/destination updated is drift", in: push, base: "a", src: "a", dst: "c", class: dstCh, action: Conflict, reason: "drift: destination changed out of band", flag: true},
		{name: "push/destination deleted is drift", in: push, base: "a", src: "a", class: dstCh, action: Conflict, reason: "drift: destination changed out of band", flag: true},
		{name: "push/destination created is drift", in: push, dst: "c", class: dstCh, action: Conflict, reason: "drift: destination changed out of band", flag: true},
		{name: "push/drift, prefer source overwrites", in: with(push, policy(conflict.PreferSource)), base: "a", src: "a", dst: "c", class: dstCh, action: Updated, dir: toDst, reason: "drift, policy: keep-source", writes: []string{"dst put a"}, newBase: "a"},
		{name: "push/drift, prefer source restores", in: with(push, policy(conflict.PreferSource)), base: "a", src: "a", class: dstCh, action: Created, dir: toDst, reason: "drift, policy: keep-source", writes: []string{"dst put a"}, newBase: "a"},
		{name: "push/drift, prefer source deletes", in: with(push, policy(conflict.PreferSource)), dst: "c", class: dstCh, action: Deleted, dir: toDst, reason: "drift, policy: keep-source", writes: []string{"dst del"}, newBase: "-"},
		{name: "push/drift, prefer destination needs the source", in: with(push, policy(conflict.PreferDestination)), base: "a", src: "a", dst: "c", class: dstCh, action: Conflict, reason: "destination-changed; drift, policy: keep-destination needs a side this operation does not write", flag: true},
		{name: "push/drift, writable source, prefer destination", in: with(push, func(in *planInput) { in.sourceWritable = true }, policy(conflict.PreferDestination)), base: "a", src: "a", dst: "c", class: dstCh, action: Conflict, reason: "destination-changed; drift, policy: keep-destination needs a side this operation does not write", flag: true},
		{name: "push/both changed", in: push, base: "a", src: "b", dst: "c", class: bothCh, action: Conflict, reason: "both-changed", flag: true},
		{name: "push/both changed, prefer source", in: with(push, policy(conflict.PreferSource)), base: "a", src: "b", dst: "c", class: bothCh, action: Updated, dir: toDst, reason: "policy: keep-source", writes: []string{"dst put b"}, newBase: "b"},
		{name: "push/deleted at source, changed at destination", in: push, base: "a", dst: "c", class: srcDel, action: Conflict, reason: "source-deleted", flag: true},
		{name: "push/use value needs the source", in: with(push, policy(useValue)), base: "a", src: "b", dst: "c", class: bothCh, action: Conflict, reason: "both-changed; policy: use-value needs a side this operation does not write", flag: true},

		// Pull: the destination's changes go to the source; the source's
		// are drift.
		{name: "pull/unchanged", in: pull, base: "a", src: "a", dst: "a", class: unchanged, action: Unchanged, newBase: "a"},
		{name: "pull/destination updated", in: pull, base: "a", src: "a", dst: "c", class: dstCh, action: Updated, dir: toSrc, writes: []string{"src put c"}, newBase: "c"},
		{name: "pull/destination created", in: pull, dst: "c", class: dstCh, action: Created, dir: toSrc, writes: []string{"src put c"}, newBase: "c"},
		{name: "pull/destination deleted", in: pull, base: "a", src: "a", class: dstCh, action: Deleted, dir: toSrc, writes: []string{"src del"}, newBase: "-"},
		{name: "pull/source updated is drift", in: pull, base: "a", src: "b", dst: "a", class: srcCh, action: Conflict, reason: "drift: source changed out of band", flag: true},
		{name: "pull/source created is drift", in: pull, src: "b", class: srcCh, action: Conflict, reason: "drift: source changed out of band", flag: true},
		{name: "pull/drift, prefer destination overwrites the source", in: with(pull, policy(conflict.PreferDestination)), base: "a", src: "b", dst: "a", class: srcCh, action: Updated, dir: toSrc, reason: "drift, policy: keep-destination", writes: []string{"src put a"}, newBase: "a"},
		{name: "pull/drift, prefer source needs the destination", in: with(pull, policy(conflict.PreferSource)), base: "a", src: "b", dst: "a", class: srcCh, action: Conflict, reason: "source-changed; drift, policy: keep-source needs a side this operation does not write", flag: true},
		{name: "pull/both changed", in: pull, base: "a", src: "b", dst: "c", class: bothCh, action: Conflict, reason: "both-changed", flag: true},

		// Deletion control.
		{name: "no deletion/source deleted keeps the baseline", in: with(bidi, noDelete), base: "a", dst: "a", class: srcCh, action: Skipped, reason: "deletion disabled", newBase: "a"},
		{name: "no deletion/destination deleted keeps the baseline", in: with(bidi, noDelete), base: "a", src: "a", class: dstCh, action: Skipped, reason: "deletion disabled", newBase: "a"},
		{name: "no deletion/push source deleted", in: with(push, noDelete), base: "a", dst: "a", class: srcCh, action: Skipped, reason: "deletion disabled", newBase: "a"},
		{name: "no deletion/policy's deletion", in: with(bidi, noDelete, policy(conflict.PreferSource)), base: "a", dst: "c", class: srcDel, action: Skipped, reason: "deletion disabled", newBase: "a"},
		{name: "no deletion/puts go on", in: with(bidi, noDelete), base: "a", src: "b", dst: "a", class: srcCh, action: Updated, dir: toDst, writes: []string{"dst put b"}, newBase: "b"},
		{name: "no deletion/initial overwrite keeps what the source lacks", in: with(push, noDelete, initial(OverwriteDestination)), dst: "c", class: srcCh, action: Skipped, reason: "deletion disabled", newBase: "c"},

		// The first round, without baseline.
		{name: "initial overwrite/destination's own key is deleted", in: with(push, initial(OverwriteDestination)), dst: "c", class: srcCh, action: Deleted, dir: toDst, writes: []string{"dst del"}, newBase: "-"},
		{name: "initial overwrite/differing value is overwritten", in: with(push, initial(OverwriteDestination)), src: "b", dst: "c", class: srcCh, action: Updated, dir: toDst, writes: []string{"dst put b"}, newBase: "b"},
		{name: "initial overwrite/source's key is created", in: with(push, initial(OverwriteDestination)), src: "b", class: srcCh, action: Created, dir: toDst, writes: []string{"dst put b"}, newBase: "b"},
		{name: "initial overwrite/same value", in: with(push, initial(OverwriteDestination)), src: "b", dst: "b", class: unchanged, action: Unchanged, newBase: "b"},
		{name: "initial overwrite/bidirectional", in: with(bidi, initial(OverwriteDestination)), src: "b", dst: "c", class: srcCh, action: Updated, dir: toDst, writes: []string{"dst put b"}, newBase: "b"},
		{name: "initial overwrite/a baseline kept from a failed first round", in: with(push, initial(OverwriteDestination)), base: "a", src: "a", dst: "c", class: dstCh, action: Conflict, reason: "drift: destination changed out of band", flag: true},
		{name: "initial mirror/pull makes the source the destination", in: with(pull, initial(InitialSyncAuto)), src: "b", dst: "c", class: dstCh, action: Updated, dir: toSrc, writes: []string{"src put c"}, newBase: "c"},
		{name: "initial mirror/pull deletes the source's own key", in: with(pull, initial(InitialSyncAuto)), src: "b", class: dstCh, action: Deleted, dir: toSrc, writes: []string{"src del"}, newBase: "-"},
		{name: "initial mirror/pull creates at the source", in: with(pull, initial(InitialSyncAuto)), dst: "c", class: dstCh, action: Created, dir: toSrc, writes: []string{"src put c"}, newBase: "c"},
		{name: "initial prefer source/clash keeps the source", in: with(bidi, initial(ImportPreferSource)), src: "b", dst: "c", class: bothNew, action: Updated, dir: toDst, reason: "initial sync: import-prefer-source", writes: []string{"dst put b"}, newBase: "b"},
		{name: "initial prefer source/destination's key is imported", in: with(bidi, initial(ImportPreferSource)), dst: "c", class: dstCh, action: Imported, dir: toSrc, writes: []string{"src put c"}, newBase: "c"},
		{name: "initial prefer source/source's key is created", in: with(bidi, initial(ImportPreferSource)), src: "b", class: srcCh, action: Created, dir: toDst, writes: []string{"dst put b"}, newBase: "b"},
		{name: "initial prefer source/same value", in: with(bidi, initial(ImportPreferSource)), src: "b", dst: "b", class: conv, action: Unchanged, newBase: "b"},
		{name: "initial prefer source/push imports too", in: with(push, func(in *planInput) { in.sourceWritable = true }, initial(ImportPreferSource)), dst: "c", class: dstCh, action: Imported, dir: toSrc, writes: []string{"src put c"}, newBase: "c"},
		{name: "initial prefer source/push clash keeps the source", in: with(push, func(in *planInput) { in.sourceWritable = true }, initial(ImportPreferSource)), src: "b", dst: "c", class: bothNew, action: Updated, dir: toDst, reason: "initial sync: import-prefer-source", writes: []string{"dst put b"}, newBase: "b"},
		{name: "initial prefer destination/clash keeps the destination", in: with(bidi, initial(ImportPreferDestination)), src: "b", dst: "c", class: bothNew, action: Imported, dir: toSrc, reason: "initial sync: import-prefer-destination", writes: []string{"src put c"}, newBase: "c"},
		{name: "initial prefer destination/push clash imports", in: with(push, func(in *planInput) { in.sourceWritable = true }, initial(ImportPreferDestination)), src: "b", dst: "c", class: bothNew, action: Imported, dir: toSrc, reason: "initial sync: import-prefer-destination", writes: []string{"src put c"}, newBase: "c"},
		{name: "initial prefer destination/destination's key is imported", in: with(bidi, initial(ImportPreferDestination)), dst: "c", class: dstCh, action: Imported, dir: toSrc, writes: []string{"src put c"}, newBase: "c"},
		{name: "initial import/a baseline kept from a failed first round", in: with(bidi, initial(ImportPreferSource)), base: "a", src: "b", dst: "c", class: bothCh, action: Conflict, reason: "both-changed", flag: true},
		{name: "initial import/only for Run", in: with(imp, initial(ImportPreferDestination)), src: "b", dst: "c", class: bothNew, action: Conflict, reason: "both-created", flag: true},

		// A write-only destination: its keys the sync never wrote are
		// someone else's, whatever the initial behaviour.
		{name: "write-only initial/destination's own key is flagged", in: with(push, writeOnly, initial(OverwriteDestination)), dst: "c", class: dstCh, action: Conflict, reason: "drift: destination changed out of band", flag: true},
		{name: "write-only initial/clash is flagged", in: with(push, writeOnly, initial(OverwriteDestination)), src: "b", dst: "c", class: bothNew, action: Conflict, reason: "both-created", flag: true},
		{name: "write-only initial/source's key is created", in: with(push, writeOnly, initial(OverwriteDestination)), src: "b", class: srcCh, action: Created, dir: toDst, writes: []string{"dst put b"}, newBase: "b"},
		{name: "write-only initial/clash, prefer source", in: with(push, writeOnly, initial(OverwriteDestination), policy(conflict.PreferSource)), src: "b", dst: "c", class: bothNew, action: Updated, dir: toDst, reason: "policy: keep-source", writes: []string{"dst put b"}, newBase: "b"},

		// Import writes only the source, and never deletes.
		{name: "import/destination created", in: imp, dst: "c", class: dstCh, action: Imported, dir: toSrc, writes: []string{"src put c"}, newBase: "c"},
		{name: "import/destination updated", in: imp, base: "a", src: "a", dst: "c", class: dstCh, action: Imported, dir: toSrc, writes: []string{"src put c"}, newBase: "c"},
		{name: "import/destination deleted", in: imp, base: "a", src: "a", class: dstCh, action: Skipped, reason: "import never deletes", newBase: "a"},
		{name: "import/source changed", in: imp, base: "a", src: "b", dst: "a", class: srcCh, action: Skipped, reason: "changed at the source; import writes only the source"},
		{name: "import/unchanged", in: imp, base: "a", src: "a", dst: "a", class: unchanged, action: Unchanged, newBase: "a"},
		{name: "import/both changed", in: imp, base: "a", src: "b", dst: "c", class: bothCh, action: Conflict, reason: "both-changed", flag: true},
		{name: "import/both changed, prefer destination", in: with(imp, policy(conflict.PreferDestination)), base: "a", src: "b", dst: "c", class: bothCh, action: Imported, dir: toSrc, reason: "policy: keep-destination", writes: []string{"src put c"}, newBase: "c"},
		{name: "import/both changed, prefer source", in: with(imp, policy(conflict.PreferSource)), base: "a", src: "b", dst: "c", class: bothCh, action: Conflict, reason: "both-changed; policy: keep-source needs a side this operation does not write", flag: true},

		// Remove deletes at the destination what the sync keeps.
		{name: "remove/kept key", in: rm, base: "a", src: "a", dst: "a", class: unchanged, action: Deleted, dir: toDst, writes: []string{"dst del"}, newBase: "-"},
		{name: "remove/changed on both sides", in: rm, base: "a", src: "b", dst: "c", class: bothCh, action: Deleted, dir: toDst, writes: []string{"dst del"}, newBase: "-"},
		{name: "remove/source's key without baseline", in: rm, src: "b", dst: "c", class: bothNew, action: Deleted, dir: toDst, writes: []string{"dst del"}, newBase: "-"},
		{name: "remove/already absent", in: rm, base: "a", src: "a", class: dstCh, action: Unchanged, reason: "already absent", newBase: "-"},
		{name: "remove/someone else's key", in: rm, dst: "c", class: dstCh, action: Skipped, reason: "not kept by this sync"},
		{name: "remove/source unknown, kept key", in: with(rm, srcUnknown), base: "a", dst: "a", class: unchanged, action: Deleted, dir: toDst, writes: []string{"dst del"}, newBase: "-"},
		{name: "remove/source unknown, someone else's key", in: with(rm, srcUnknown), dst: "c", class: dstCh, action: Skipped, reason: "not in this sync's state (the source could not be read)"},

		// Resolve applies the resolution given, whatever the policy.
		{name: "resolve/keep source", in: with(bidi, resolving(conflict.KeepSource)), base: "a", src: "b", dst: "c", class: bothCh, action: Updated, dir: toDst, reason: "resolved: keep-source", writes: []string{"dst put b"}, newBase: "b"},
		{name: "resolve/keep destination", in: with(bidi, resolving(conflict.KeepDestination)), base: "a", src: "b", dst: "c", class: bothCh, action: Updated, dir: toSrc, reason: "resolved: keep-destination", writes: []string{"src put c"}, newBase: "c"},
		{name: "resolve/use value", in: with(bidi, resolving(conflict.UseValue("v"))), base: "a", src: "b", dst: "c", class: bothCh, action: Updated, dir: toDst, reason: "resolved: use-value", writes: []string{"dst put v", "src put v"}, newBase: "v"},
		{name: "resolve/keep source deletes", in: with(bidi, resolving(conflict.KeepSource)), base: "a", dst: "c", class: srcDel, action: Deleted, dir: toDst, reason: "resolved: keep-source", writes: []string{"dst del"}, newBase: "-"},
		{name: "resolve/push drift, keep source", in: with(push, resolving(conflict.KeepSource)), base: "a", src: "a", dst: "c", class: dstCh, action: Updated, dir: toDst, reason: "resolved: keep-source", writes: []string{"dst put a"}, newBase: "a"},
		{name: "resolve/keep destination, read-only source", in: with(push, resolving(conflict.KeepDestination)), base: "a", src: "a", dst: "c", class: dstCh, action: Conflict, reason: "destination-changed; resolved: keep-destination needs a side this operation does not write", flag: true, err: ErrReadOnlySource},
		{name: "resolve/use value, read-only source", in: with(push, resolving(conflict.UseValue("v"))), base: "a", src: "a", dst: "c", class: dstCh, action: Conflict, reason: "destination-changed; resolved: use-value needs a side this operation does not write", flag: true, err: ErrReadOnlySource},
		{name: "resolve/deletion disabled", in: with(bidi, noDelete, resolving(conflict.KeepSource)), base: "a", dst: "c", class: srcDel, action: Skipped, reason: "deletion disabled", newBase: "a", err: ErrDeletionDisabled},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			in := r.in
			in.hasher = planHasher
			in.items = []item{planItem("k", r.base, r.src, r.dst)}
			out := plan(in)
			if r.err == nil && out.err != nil || r.err != nil && !errors.Is(out.err, r.err) {
				t.Fatalf("plan error %v, want %v", out.err, r.err)
			}
			if out.guard != nil {
				t.Fatalf("guard %v with Force", out.guard)
			}
			it := &in.items[0]
			got := fmt.Sprintf("class %v, action %v, direction %q, reason %q, writes %q, baseline %q, flag %v",
				it.res.Class, it.res.Action, it.res.Direction, it.res.Reason, writesOf(t, it), baseOf(it, "a", "b", "c", "v", r.base), it.flag)
			want := fmt.Sprintf("class %v, action %v, direction %q, reason %q, writes %q, baseline %q, flag %v",
				r.class, r.action, r.dir, r.reason, r.writes, r.newBase, r.flag)
			if got != want {
				t.Errorf("\n got %s\nwant %s", got, want)
			}
			if it.class != it.res.Class && in.op != OpRemove {
				t.Errorf("item class %v, result class %v", it.class, it.res.Class)
			}
			// A flagged key is never written and gets no new baseline.
			if it.flag && (it.nw > 0 || it.setBase) {
				t.Errorf("flagged with %d writes, baseline set %v", it.nw, it.setBase)
			}
		})
	}
	t.Logf("%d rows", len(rows))
}

// TestPlanConfirmedWriteKeepsItsBaseline: a key whose earlier write was
// found landed has the baseline of that write, which the first round's
// behaviour does not replace.
func TestPlanConfirmedWriteKeepsItsBaseline(t *testing.T) {
	in := with(bidi, initial(OverwriteDestination))
	in.hasher = planHasher
	landed := planItem("k", "", "", "c")
	landed.confirmed = &state.PendingWrite{Value: conflict.Absent, Destination: true}
	fresh := planItem("l", "", "", "c")
	in.items = []item{landed, fresh}
	plan(in)
	if got := in.items[0]; got.res.Action != Created || got.res.Direction != audit.ToSource {
		t.Errorf("confirmed key: %v %v, want created at the source", got.res.Action, got.res.Direction)
	}
	if got := in.items[1]; got.res.Action != Deleted || got.res.Direction != audit.ToDestination {
		t.Errorf("key without baseline: %v %v, want deleted at the destination", got.res.Action, got.res.Direction)
	}
}

// TestPlanGuardTable: the mass-deletion guard counts the plan's deletions
// on each side against the keys that side holds.
func TestPlanGuardTable(t *testing.T) {
	// keys builds n items: "kept" ones present everywhere, "gone" ones
	// deleted at the source, "lost" ones deleted at the destination.
	keys := func(kept, gone, lost int) []item {
		var items []item
		for i := range kept {
			items = append(items, planItem(fmt.Sprintf("kept%d", i), "a", "a", "a"))
		}
		for i := range gone {
			items = append(items, planItem(fmt.Sprintf("gone%d", i), "a", "", "a"))
		}
		for i := range lost {
			items = append(items, planItem(fmt.Sprintf("lost%d", i), "a", "a", ""))
		}
		return items
	}
	noForce := func(in *planInput) { in.force = false }
	rows := []struct {
		name  string
		in    planInput
		items []item
		want  *MassDeletionError // nil: allowed
	}{
		{"nothing deleted", with(push, noForce), keys(4, 0, 0), nil},
		{"half the destination", with(push, noForce), keys(2, 2, 0), nil},
		{"over half the destination", with(push, noForce), keys(1, 3, 0), &MassDeletionError{Side: sideDst, Deletes: 3, Managed: 4, Fraction: 0.5}},
		{"a fraction of 0.8", with(push, noForce, func(in *planInput) { in.maxDelete = 0.8 }), keys(1, 3, 0), nil},
		{"an empty source empties the destination", with(push, noForce), keys(0, 2, 0), &MassDeletionError{Side: sideDst, Deletes: 2, Managed: 2, Fraction: 0.5, Empty: true}},
		{"over half the source", with(bidi, noForce), keys(1, 0, 3), &MassDeletionError{Side: sideSrc, Deletes: 3, Managed: 4, Fraction: 0.5}},
		{"an empty destination empties the source", with(bidi, noForce), keys(0, 0, 1), &MassDeletionError{Side: sideSrc, Deletes: 1, Managed: 1, Fraction: 0.5, Empty: true}},
		{"Force", push, keys(0, 2, 0), nil},
		{"deletion disabled deletes nothing", with(push, noForce, noDelete), keys(0, 2, 0), nil},
		{"Remove is not guarded", with(rm, noForce), keys(0, 0, 0)[:0], nil},
		{"Remove of every key", with(rm, noForce), keys(3, 0, 0), nil},
		{"Resolve is not guarded", with(bidi, noForce, resolving(conflict.KeepSource)), []item{planItem("k", "a", "", "c")}, nil},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			in := r.in
			in.hasher = planHasher
			in.items = r.items
			out := plan(in)
			if out.err != nil {
				t.Fatal(out.err)
			}
			if r.want == nil {
				if out.guard != nil {
					t.Fatalf("guard %v, want none", out.guard)
				}
				return
			}
			var got *MassDeletionError
			if !errors.As(out.guard, &got) || !errors.Is(out.guard, ErrMassDeletion) {
				t.Fatalf("guard %v, want %+v", out.guard, r.want)
			}
			if *got != *r.want {
				t.Fatalf("guard %+v, want %+v", got, r.want)
			}
			// The plan stays, for Plan to show what was refused.
			n := 0
			for i := range in.items {
				n += in.items[i].nw
			}
			if n == 0 {
				t.Fatal("the refused plan has no writes")
			}
		})
	}
}

// TestNameKeysTable: with a KeyNamer, the names the sync manages are those
// rendered from the source's keys, the baseline's and, for Remove, the
// pending writes'; two keys named alike are both refused.
func TestNameKeysTable(t *testing.T) {
	upper := KeyNamerFunc(func(k string) (string, error) {
		if strings.HasPrefix(k, "bad") {
			return "", destination.ErrInvalidKey
		}
		return "APP_" + strings.ToUpper(strings.ReplaceAll(k, "-", "_")), nil
	})
	set := func(keys ...string) map[string]destination.Secret {
		m := make(map[string]destination.Secret)
		for _, k := range keys {
			m[k] = destination.Secret{}
		}
		return m
	}
	base := func(keys ...string) map[string]conflict.Fingerprint {
		m := make(map[string]conflict.Fingerprint)
		for _, k := range keys {
			m[k] = conflict.Fingerprint{}
		}
		return m
	}
	type want struct {
		key, name string // name "" when the key fails to render
		err       string // part of the error
	}
	rows := []struct {
		name    string
		src     map[string]destination.Secret
		base    map[string]conflict.Fingerprint
		pending map[string]state.PendingWrite
		render  []want
		match   map[string]string // destination name -> key ("" unmanaged)
	}{
		{
			name: "source keys", src: set("db-url", "token"),
			render: []want{{key: "db-url", name: "APP_DB_URL"}, {key: "token", name: "APP_TOKEN"}},
			match:  map[string]string{"APP_DB_URL": "db-url", "APP_TOKEN": "token", "APP_OTHER": "", "db-url": ""},
		},
		{
			name: "a key gone from the source keeps its name", src: set("token"), base: base("db-url", "token"),
			render: []want{{key: "db-url", name: "APP_DB_URL"}},
			match:  map[string]string{"APP_DB_URL": "db-url"},
		},
		{
			name: "two source keys named alike", src: set("db-url", "db_url", "token"),
			render: []want{{key: "db-url", err: `"db-url" and "db_url" are both named "APP_DB_URL"`}, {key: "db_url", err: "both named"}, {key: "token", name: "APP_TOKEN"}},
			match:  map[string]string{"APP_DB_URL": "", "APP_TOKEN": "token"},
		},
		{
			name: "a renamed key leaves its name to the source's", src: set("db_url"), base: base("db-url"),
			render: []want{{key: "db_url", name: "APP_DB_URL"}, {key: "db-url", err: `"APP_DB_URL" is now the name of "db_url"`}},
			match:  map[string]string{"APP_DB_URL": "db_url"},
		},
		{
			name: "two keys gone from the source named alike (a changed namer)", src: set("token"), base: base("db-url", "db_url", "token"),
			render: []want{{key: "db-url", err: `"db-url" and "db_url" are both named "APP_DB_URL"`}, {key: "db_url", err: "both named"}, {key: "token", name: "APP_TOKEN"}},
			match:  map[string]string{"APP_DB_URL": "", "APP_TOKEN": "token"},
		},
		{
			name: "a baseline key and a pending one named alike", src: set(), base: base("db-url"), pending: map[string]state.PendingWrite{"db_url": {Destination: true}},
			render: []want{{key: "db-url", err: "both named"}, {key: "db_url", err: "both named"}},
			match:  map[string]string{"APP_DB_URL": ""},
		},
		{
			name: "three source keys named alike", src: set("db-url", "db_url", "DB_URL"),
			render: []want{{key: "db-url", err: `3 keys ("DB_URL", "db-url", ...) are all named "APP_DB_URL"`}, {key: "db_url", err: "all named"}, {key: "DB_URL", err: "all named"}},
			match:  map[string]string{"APP_DB_URL": ""},
		},
		{
			name: "a key the namer refuses", src: set("bad-one", "token"),
			render: []want{{key: "bad-one", err: "invalid"}, {key: "token", name: "APP_TOKEN"}},
			match:  map[string]string{"APP_BAD_ONE": ""},
		},
		{
			name: "pending writes name keys too", src: set(), pending: map[string]state.PendingWrite{"cut-short": {Destination: true}},
			render: []want{{key: "cut-short", name: "APP_CUT_SHORT"}},
			match:  map[string]string{"APP_CUT_SHORT": "cut-short"},
		},
		{
			name: "a key named on demand is not managed", src: set("token"),
			render: []want{{key: "later", name: "APP_LATER"}},
			match:  map[string]string{"APP_LATER": ""},
		},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			render, match := nameKeys(upper, r.src, r.base, r.pending)
			for _, w := range r.render {
				got, err := render(w.key)
				switch {
				case w.err == "" && (err != nil || got != w.name):
					t.Errorf("render(%q) = %q, %v; want %q", w.key, got, err, w.name)
				case w.err != "" && (err == nil || !errors.Is(err, destination.ErrInvalidKey) || !strings.Contains(err.Error(), w.err)):
					t.Errorf("render(%q) = %q, %v; want an invalid key error with %q", w.key, got, err, w.err)
				}
			}
			for dk, want := range r.match {
				k, ok := match(dk)
				if ok != (want != "") || k != want {
					t.Errorf("match(%q) = %q, %v; want %q", dk, k, ok, want)
				}
			}
		})
	}
}

// TestWriteOnlySideTable: a write-only destination's key has the baseline's
// value while it lists the marker recorded after the sync's write, and
// otherwise a value of its own, unknown and unlike any other.
func TestWriteOnlySideTable(t *testing.T) {
	baseline := map[string]conflict.Fingerprint{"k": side("a").Fingerprint, "nomarker": side("a").Fingerprint}
	markers := map[string]string{"k": "m1", "orphan": "m1"}
	a := side("a")
	rows := []struct {
		name, key, marker string
		same              bool // the side is the baseline's
	}{
		{"the sync's own marker", "k", "m1", true},
		{"another marker", "k", "m2", false},
		{"no marker recorded", "nomarker", "m1", false},
		{"a marker without baseline", "orphan", "m1", false},
		{"a key the sync never wrote", "new", "m1", false},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			got := writeOnlySide(markers, baseline, r.key, r.marker)
			if !got.Exists {
				t.Fatal("a listed key is absent")
			}
			if got.Same(a) != r.same {
				t.Fatalf("same as the baseline: %v, want %v", got.Same(a), r.same)
			}
		})
	}
	if writeOnlySide(nil, nil, "k", "m1").Same(writeOnlySide(nil, nil, "k", "m2")) {
		t.Error("two markers have one value")
	}
	if !writeOnlySide(nil, nil, "k", "m1").Same(writeOnlySide(nil, nil, "k", "m1")) {
		t.Error("one marker has two values")
	}

	// Planned: the sync's own marker is unchanged; another one is drift.
	in := with(push, writeOnly)
	in.hasher = planHasher
	own, other := planItem("k", "a", "a", ""), planItem("k", "a", "a", "")
	own.dstSide = writeOnlySide(markers, baseline, "k", "m1")
	other.dstSide = writeOnlySide(markers, baseline, "k", "m2")
	own.dst.Version, other.dst.Version = "m1", "m2"
	in.items = []item{own}
	plan(in)
	if got := in.items[0].res; got.Action != Unchanged {
		t.Errorf("own marker: %v (%s), want unchanged", got.Action, got.Reason)
	}
	in.items = []item{other}
	plan(in)
	if got := in.items[0].res; got.Action != Conflict || got.Reason != "drift: destination changed out of band" {
		t.Errorf("another marker: %v (%s), want drift flagged", got.Action, got.Reason)
	}
}

// TestPlanInvariants plans one key under every combination of operation,
// mode, initial behaviour, policy (or resolution), deletion control,
// writable source, write-only destination, and baseline and sides drawn
// from three values, and checks planInvariants on each.
func TestPlanInvariants(t *testing.T) {
	n := 0
	for op := range uint8(4) {
		for mode := range uint8(3) {
			for is := range uint8(4) {
				for pol := range uint8(4) {
					for flags := range uint8(32) {
						for kv := range uint16(64) {
							planInvariants(t, op, mode, is, pol, flags, uint8(kv), uint8(kv>>2), uint8(kv>>4))
							n++
						}
					}
				}
			}
		}
	}
	t.Logf("%d plans", n)
}

// FuzzPlan is TestPlanInvariants for the fuzzer.
func FuzzPlan(f *testing.F) {
	f.Add(uint8(0), uint8(0), uint8(0), uint8(0), uint8(0), uint8(1), uint8(2), uint8(3))
	f.Add(uint8(2), uint8(2), uint8(2), uint8(1), uint8(3), uint8(0), uint8(1), uint8(2))
	f.Fuzz(planInvariants)
}

// planInvariants checks what holds for every plan of one key: a flagged
// key is not written; a side is written only when the operation may write
// it, and deleted only when it may delete; and once the writes are
// applied, the sides agree on the new baseline (unless a deletion was
// skipped, which keeps the old one); the report shows a direction exactly
// when a side is written, that of the first write.
func planInvariants(t *testing.T, op, mode, initialSync, pol, flags, base, src, dst uint8) {
	values := []string{"", "a", "b", "v"}
	ops := []string{OpSync, OpImport, OpRemove, OpResolve}
	resolutions := []conflict.Resolution{conflict.KeepSource, conflict.KeepDestination, conflict.UseValue("v")}
	policies := []conflict.Policy{nil, conflict.PreferSource, conflict.PreferDestination, useValue}
	in := planInput{
		op: ops[op%4], mode: Mode(mode % 3), initialSync: InitialSync(initialSync % 4),
		initial:        flags&1 != 0,
		sourceWritable: flags&2 != 0, disableDeletion: flags&4 != 0, writeOnly: flags&8 != 0,
		srcUnknown: flags&16 != 0 && ops[op%4] == OpRemove,
		policy:     policies[pol%4], hasher: planHasher, force: true, maxDelete: 0.5,
	}
	if in.op == OpResolve {
		in.resolve = &resolveReq{key: "k", res: resolutions[pol%3]}
	}
	in.items = []item{planItem("k", values[base%4], values[src%4], values[dst%4])}
	out := plan(in)
	it := &in.items[0]
	if out.err != nil {
		if in.op != OpResolve {
			t.Fatalf("%s: plan error %v", in.op, out.err)
		}
		return
	}
	what := func() string {
		return fmt.Sprintf("%s %s initial %v (%s), flags %05b, %v: %v %q, writes %q",
			in.op, in.mode, in.initial, in.initialSync, flags, it.res.Class, it.res.Action, it.res.Reason, writesOf(t, it))
	}
	p := newPlanner(in)
	srcNow, dstNow := it.srcSide, it.dstSide
	for _, w := range it.writes[:it.nw] {
		if w.toSrc && !p.canSrc || !w.toSrc && !p.canDst {
			t.Fatalf("%s: writes a side it may not", what())
		}
		if w.change.Delete && !p.canDelete {
			t.Fatalf("%s: deletes with deletion disabled", what())
		}
		to := &dstNow
		if w.toSrc {
			to = &srcNow
		}
		if w.change.Delete {
			*to = conflict.Absent
		} else {
			*to = side(w.change.Value)
		}
	}
	switch {
	case it.flag:
		if it.nw > 0 || it.setBase || it.res.Action != Conflict {
			t.Fatalf("%s: flagged, but written or given a baseline", what())
		}
	case !it.setBase:
		if it.nw > 0 {
			t.Fatalf("%s: writes without a new baseline", what())
		}
	case it.res.Action == Skipped:
		if it.nw > 0 || !it.newBase.Same(it.base) {
			t.Fatalf("%s: a skipped write moved the baseline", what())
		}
	case in.op == OpRemove:
		if dstNow.Exists || it.newBase.Exists {
			t.Fatalf("%s: the destination key stays", what())
		}
	default:
		if !srcNow.Same(it.newBase) || !dstNow.Same(it.newBase) {
			t.Fatalf("%s: after the writes the sides differ from the new baseline", what())
		}
	}
	if it.res.Action == Unchanged && it.nw > 0 {
		t.Fatalf("%s: unchanged, with writes", what())
	}
	if it.nw > 0 && it.res.Direction != direction(it.writes[0].toSrc) || it.nw == 0 && it.res.Direction != "" {
		t.Fatalf("%s: reported direction %q", what(), it.res.Direction)
	}
}
