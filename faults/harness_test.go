package faults_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"golang.org/x/sync/errgroup"

	"github.com/secretsync/secretsync/audit"
	"github.com/secretsync/secretsync/connection"
	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/state"
	"github.com/secretsync/secretsync/sync"
	"github.com/secretsync/secretsync/vaultkv"
	"github.com/secretsync/secretsync/vaultkv/vaulttest"
)

const (
	// nKeys is how many keys a scenario's source starts with.
	nKeys = 300
	// syncName names every scenario's sync.
	syncName = "faults"
	// clientTimeout and clientRetries configure the connection of the code
	// under test: short, so that a fault costs seconds, not minutes.
	clientTimeout = 2 * time.Second
	clientRetries = 1
	// roundLimit bounds a round facing a fault. Every request has a
	// client timeout of 2 s, so a round that takes longer than 15 of them
	// is going key by key through an unavailable server instead of
	// stopping: for a user, that is a hang.
	roundLimit = 15 * clientTimeout
)

var layouts = []vaultkv.Layout{vaultkv.SecretKey, vaultkv.SecretPath}

// forEachLayout runs f as a subtest for each Vault layout.
func forEachLayout(t *testing.T, f func(t *testing.T, layout vaultkv.Layout)) {
	for _, l := range layouts {
		t.Run(l.String(), func(t *testing.T) { f(t, l) })
	}
}

// fastConfig returns a connection config for the code under test, with the
// root token of srv at addr.
func fastConfig(addr, token string) connection.Config {
	return connection.Config{Address: addr, Timeout: clientTimeout, MaxRetries: clientRetries,
		Token: &connection.Token{Token: connection.Credential{Value: token}}}
}

// faultDest wraps the sync's destination and hands the round over to the
// test just before a given change, with no other change in flight: every
// change numbered below the trigger was sent before the fault, every other
// one after it. A side that is not atomic gets its changes one at a time
// (as the Vault secret-key layout writes them anyway), so that the split is
// exact; an atomic side (secret-path) gets its one write after the fault.
type faultDest struct {
	destination.Destination

	gate  gosync.RWMutex // changes in flight hold it shared; the fault, exclusively
	next  atomic.Int64   // number of the next change
	at    atomic.Int64   // number of the change the fault comes before; -1: none
	fired chan struct{}  // closed once the fault is in place

	req chan struct{} // the round asks the test to inject the fault
	ack chan struct{} // the test has injected it

	mu     gosync.Mutex
	passed []string // keys of the changes sent before the fault
}

func newFaultDest(d destination.Destination) *faultDest {
	f := &faultDest{Destination: d, req: make(chan struct{}), ack: make(chan struct{})}
	f.at.Store(-1)
	return f
}

// Capabilities passes on the wrapped side's capabilities.
func (f *faultDest) Capabilities() destination.Capabilities {
	return destination.CapabilitiesOf(f.Destination)
}

// arm sets the fault before change number at of the next round (-1: none).
func (f *faultDest) arm(at int) {
	f.next.Store(0)
	f.at.Store(int64(at))
	f.fired = make(chan struct{})
	f.mu.Lock()
	f.passed = nil
	f.mu.Unlock()
}

// hasFired reports whether the armed fault was injected.
func (f *faultDest) hasFired() bool {
	select {
	case <-f.fired:
		return true
	default:
		return false
	}
}

// passedKeys returns the keys of the changes sent before the fault.
func (f *faultDest) passedKeys() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.passed)
}

// inject asks the test to inject the fault and waits until it has.
func (f *faultDest) inject(ctx context.Context) error {
	f.gate.Lock()
	defer f.gate.Unlock()
	select {
	case f.req <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-f.ack:
	case <-ctx.Done():
		return ctx.Err()
	}
	close(f.fired)
	return nil
}

// enter lets one change through, after the fault if its number calls for
// it. The returned function ends the change.
func (f *faultDest) enter(ctx context.Context, n int, key string) (func(), error) {
	f.gate.RLock()
	first := f.next.Add(int64(n)) - int64(n)
	at := f.at.Load()
	if at < 0 || first+int64(n) <= at {
		f.mu.Lock()
		f.passed = append(f.passed, key)
		f.mu.Unlock()
		return f.gate.RUnlock, nil
	}
	f.gate.RUnlock()
	if first <= at {
		if err := f.inject(ctx); err != nil {
			return nil, err
		}
	} else {
		select {
		case <-f.fired:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.gate.RLock()
	return f.gate.RUnlock, nil
}

// Apply passes the changes on, injecting the fault at its place. When it
// stops part way (a cancelled round), the changes sent have their results
// and the others the stopping error, as the destination contract asks.
func (f *faultDest) Apply(ctx context.Context, changes []destination.Change) ([]error, error) {
	if destination.CapabilitiesOf(f.Destination).Atomic {
		release, err := f.enter(ctx, len(changes), "")
		if err != nil {
			return nil, err
		}
		defer release()
		return f.Destination.Apply(ctx, changes)
	}
	errs := make([]error, len(changes))
	stop := func(i int, err error) ([]error, error) {
		for j := i; j < len(changes); j++ {
			errs[j] = err
		}
		return errs, err
	}
	for i := range changes {
		if err := ctx.Err(); err != nil {
			return stop(i, err)
		}
		release, err := f.enter(ctx, 1, changes[i].Key)
		if err != nil {
			return stop(i, err)
		}
		res, callErr := f.Destination.Apply(ctx, changes[i:i+1])
		release()
		switch {
		case callErr != nil:
			return stop(i, callErr)
		case len(res) != 1:
			errs[i] = fmt.Errorf("faults: the destination returned %d results for 1 change", len(res))
		default:
			errs[i] = res[0]
		}
	}
	return errs, nil
}

// vaultEntry is what Vault holds for a key.
type vaultEntry struct {
	value   string
	live    bool // false: deleted (soft) or never written
	version int  // secret-key: the secret's current version; secret-path: the secret's
}

// scenario is one sync under test: a source, Vault behind a faultDest, a
// file state store and an audit recorder.
type scenario struct {
	t      *testing.T
	layout vaultkv.Layout
	mount  string
	path   string
	// behind returns a root client that reaches Vault without any proxy,
	// to look at what Vault holds independently of the code under test.
	behind func() *api.Client

	conn      *connection.Conn
	src       destination.Reader
	mem       *memory.Destination // src, when it is in memory
	dest      *faultDest
	storePath string
	store     *state.File
	rec       *audit.Recorder
	syncer    *sync.Syncer
	round     int
	// unconfirmed holds the keys that the last round changed in Vault
	// without auditing them, as it could not know (their answers were
	// lost): the next round must confirm them.
	unconfirmed map[string]bool
}

// scenarioOptions configure newScenario.
type scenarioOptions struct {
	srv    *vaulttest.Server        // for fixtures (the mount)
	behind func() *vaulttest.Server // root access without proxy; nil: srv
	mount  string                   // the KV v2 mount; "": a new one
	conn   connection.Config        // the connection of the code under test
	layout vaultkv.Layout
	// source returns the sync's source; nil: a memory source with nKeys
	// keys.
	source func(t *testing.T) destination.Reader
	// stateDir is where the state file lives; "": a new temporary
	// directory.
	stateDir string
}

func newScenario(t *testing.T, o scenarioOptions) *scenario {
	t.Helper()
	ctx := context.Background()
	if o.behind == nil {
		o.behind = func() *vaulttest.Server { return o.srv }
	}
	if o.mount == "" {
		o.mount = o.srv.NewMount(t)
	}
	s := &scenario{t: t, layout: o.layout, mount: o.mount, path: "app",
		behind: func() *api.Client {
			c := o.behind().Client(t)
			c.SetMaxRetries(0)
			return c
		},
		rec: audit.NewRecorder()}
	conn, err := connection.New(ctx, o.conn, nil)
	if err != nil {
		t.Fatalf("connection: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	s.conn = conn
	kv, err := vaultkv.New(ctx, conn, &vaultkv.Options{Mount: s.mount, Path: s.path, Layout: o.layout, Owner: syncName})
	if err != nil {
		t.Fatalf("vaultkv.New: %v", err)
	}
	s.dest = newFaultDest(kv)
	if o.source != nil {
		s.src = o.source(t)
	} else {
		s.mem = memory.New(initialValues(nKeys))
		s.src = s.mem
	}
	if o.stateDir == "" {
		o.stateDir = t.TempDir()
	}
	s.storePath = path.Join(o.stateDir, "state.json")
	s.openStore()
	return s
}

// openStore opens the state file and builds the Syncer on it.
func (s *scenario) openStore() {
	s.t.Helper()
	st, err := state.OpenFile(s.storePath, nil)
	if err != nil {
		s.t.Fatalf("state.OpenFile: %v", err)
	}
	s.store = st
	s.t.Cleanup(func() { _ = st.Close() })
	s.syncer, err = sync.New(sync.Config{
		Name: syncName, Source: s.src, Destination: s.dest, Mode: sync.Push,
		Store: st, Auditor: s.rec,
	})
	if err != nil {
		s.t.Fatalf("sync.New: %v", err)
	}
}

func keyName(i int) string { return fmt.Sprintf("KEY_%04d", i) }

func initialValues(n int) map[string]string {
	m := make(map[string]string, n)
	for i := range n {
		m[keyName(i)] = fmt.Sprintf("v1-%d-%s", i, strings.Repeat("x", i%7))
	}
	return m
}

// mutate changes the memory source for an update round: every even key is
// updated, every tenth odd one deleted, and a tenth as many keys created.
// It returns how many writes the round will make.
func (s *scenario) mutate() int {
	s.t.Helper()
	n := 0
	for k := range s.sourceValues() {
		var i int
		if _, err := fmt.Sscanf(k, "KEY_%d", &i); err != nil {
			continue
		}
		switch {
		case i%2 == 0:
			s.mem.Set(k, fmt.Sprintf("v2-%d", i))
			n++
		case i%10 == 1:
			s.mem.Delete(k)
			n++
		}
	}
	for i := range nKeys / 10 {
		s.mem.Set(keyName(10000+i), fmt.Sprintf("new-%d", i))
		n++
	}
	return n
}

// sourceValues returns what the source holds.
func (s *scenario) sourceValues() map[string]string {
	s.t.Helper()
	m, err := s.src.List(context.Background())
	if err != nil {
		s.t.Fatalf("list source: %v", err)
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v.Value
	}
	return out
}

// vault returns what Vault holds under the sync's path, read with the root
// token, deleted secrets included (not live).
func (s *scenario) vault() map[string]vaultEntry {
	s.t.Helper()
	ctx := context.Background()
	c := s.behind()
	out := map[string]vaultEntry{}
	read := func(p string) (*api.Secret, error) {
		for attempt := 0; ; attempt++ {
			sec, err := c.Logical().ReadWithContext(ctx, path.Join(s.mount, "data", p))
			if err == nil || attempt == 20 {
				return sec, err
			}
			time.Sleep(250 * time.Millisecond) // a server still electing itself after an unseal
		}
	}
	if s.layout == vaultkv.SecretPath {
		sec, err := read(s.path)
		if err != nil {
			s.t.Fatalf("read %s: %v", s.path, err)
		}
		if sec == nil || sec.Data == nil {
			return out
		}
		meta, _ := sec.Data["metadata"].(map[string]any)
		v := versionOf(meta)
		data, _ := sec.Data["data"].(map[string]any)
		for k, x := range data {
			out[k] = vaultEntry{value: fmt.Sprint(x), live: true, version: v}
		}
		return out
	}
	l, err := c.Logical().ListWithContext(ctx, path.Join(s.mount, "metadata", s.path))
	if err != nil {
		s.t.Fatalf("list %s: %v", s.path, err)
	}
	if l == nil {
		return out
	}
	keys, _ := l.Data["keys"].([]any)
	var mu gosync.Mutex
	var g errgroup.Group
	g.SetLimit(16)
	for _, x := range keys {
		k, _ := x.(string)
		g.Go(func() error {
			sec, err := read(path.Join(s.path, k))
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			e := vaultEntry{}
			if sec != nil && sec.Data != nil {
				meta, _ := sec.Data["metadata"].(map[string]any)
				e.version = versionOf(meta)
				data, _ := sec.Data["data"].(map[string]any)
				dt, _ := meta["deletion_time"].(string)
				if data != nil && dt == "" {
					e.value, e.live = fmt.Sprint(data["value"]), true
				}
			}
			out[k] = e
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		s.t.Fatalf("read Vault: %v", err)
	}
	return out
}

func versionOf(meta map[string]any) int {
	switch v := meta["version"].(type) {
	case float64:
		return int(v)
	case interface{ Int64() (int64, error) }:
		n, _ := v.Int64()
		return int(n)
	}
	return 0
}

func live(m map[string]vaultEntry) map[string]string {
	out := map[string]string{}
	for k, e := range m {
		if e.live {
			out[k] = e.value
		}
	}
	return out
}

// outcome is one round as the test saw it.
type outcome struct {
	rep    *sync.Report
	err    error
	status *sync.Status
	events []audit.Event // this round's events
	before map[string]vaultEntry
	after  map[string]vaultEntry
	want   map[string]string // the source during the round
}

// run runs one round. With a fault (fire non-nil), the faultDest hands the
// round over to fire just before change number at, on the test goroutine;
// lift, when set, runs after the round ends, before Vault is read again.
// A round that does not end within roundLimit of the fault is stopped and
// reported as hanging.
func (s *scenario) run(at int, fire, lift func()) *outcome {
	s.t.Helper()
	s.round++
	o := &outcome{before: s.vault(), want: s.sourceValues()}
	if fire != nil {
		s.dest.arm(at)
	} else {
		s.dest.arm(-1)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		rep *sync.Report
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := s.syncer.Run(ctx)
		done <- result{rep, err}
	}()
	limit := time.NewTimer(time.Hour)
	defer limit.Stop()
	var firedAt time.Time
	var res result
wait:
	for {
		select {
		case <-s.dest.req:
			fire()
			firedAt = time.Now()
			limit.Reset(roundLimit)
			s.dest.ack <- struct{}{}
		case res = <-done:
			break wait
		case <-limit.C:
			s.t.Errorf("round %d: still running %v after the fault (client timeout %v): a round facing an unavailable server must stop, not go on key by key",
				s.round, roundLimit, clientTimeout)
			cancel()
			res = <-done
			break wait
		}
	}
	if fire != nil {
		if !s.dest.hasFired() {
			s.t.Fatalf("round %d: the fault was never injected (the round made fewer than %d writes)", s.round, at+1)
		}
		s.t.Logf("round %d: fault before write %d; the round ended %v later", s.round, at, time.Since(firedAt).Round(time.Millisecond))
	}
	if lift != nil {
		lift()
	}
	o.rep, o.err = res.rep, res.err
	if o.rep == nil {
		s.t.Fatalf("round %d: Run returned no report (error %v)", s.round, o.err)
	}
	s.t.Logf("round %d: %s; error: %v", s.round, o.rep, firstLine(o.err))
	st, err := s.syncer.Status(context.Background())
	if err != nil {
		s.t.Fatalf("round %d: Status: %v", s.round, err)
	}
	o.status = st
	for _, e := range s.rec.Events() {
		if e.RunID == o.rep.RunID {
			o.events = append(o.events, e)
		}
	}
	o.after = s.vault()
	return o
}

func firstLine(err error) string {
	if err == nil {
		return "none"
	}
	msg := err.Error()
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		return msg[:i] + " …"
	}
	return msg
}

// checkTruth checks that Run's error and the status record agree with the
// report: failed keys fail the round, "succeeded" means every write was
// made and nothing is flagged, and the message is one line.
func (s *scenario) checkTruth(o *outcome) {
	s.t.Helper()
	t, rep, rec := s.t, o.rep, o.status.Sync
	if rec == nil {
		t.Errorf("round %d: no status record", s.round)
		return
	}
	if rec.RunID != rep.RunID {
		t.Errorf("round %d: status record of run %s, the round was run %s", s.round, rec.RunID, rep.RunID)
	}
	tot := rep.Totals
	if tot.Failed > 0 && o.err == nil {
		t.Errorf("round %d: %d keys failed, yet Run returned nil", s.round, tot.Failed)
	}
	if (tot.Failed > 0 || o.err != nil) && rec.Status != state.Failed {
		t.Errorf("round %d: %d failed keys, error %v, yet the status is %q", s.round, tot.Failed, firstLine(o.err), rec.Status)
	}
	if rec.Status == state.Succeeded && (tot.Failed > 0 || tot.Retries > 0 || tot.Conflicts > 0 || len(o.status.Conflicts) > 0) {
		t.Errorf("round %d: status %q with %d failed keys, %d keys to retry, %d conflicts",
			s.round, rec.Status, tot.Failed, tot.Retries, tot.Conflicts)
	}
	if strings.ContainsAny(rec.Message, "\r\n") {
		t.Errorf("round %d: the status message is not one line (%d lines, %d bytes), it begins %q",
			s.round, strings.Count(rec.Message, "\n")+1, len(rec.Message), firstLine(errors.New(rec.Message)))
	}
	if rep.Flagged >= 0 && rep.Flagged != len(o.status.Conflicts) {
		t.Errorf("round %d: the report counts %d flagged conflicts, the store %d", s.round, rep.Flagged, len(o.status.Conflicts))
	}
}

// checkWrites checks every difference between what Vault held before and
// after the round against the source, the report and the audit events:
// Vault only ever gets the source's value of a key (or loses a key the
// source no longer has), and each such write has its line in the report
// and its audit event. Keys in others were written by someone else
// meanwhile and are left out.
//
// A write whose outcome the round could not know (its answer never came)
// may be audited by the round (as a failure of the key) or by the next
// one, which finds it landed and confirms it with a success event. So a
// change without an event is remembered and must be confirmed by the next
// round; and a success event of this round for a key that did not change
// is a lie, unless it confirms such a write of the previous round.
func (s *scenario) checkWrites(o *outcome, others map[string]bool) {
	s.t.Helper()
	t := s.t
	events := map[string][]audit.Event{}
	for _, e := range o.events {
		if e.Key != "" {
			events[e.Key] = append(events[e.Key], e)
		}
	}
	has := func(k string, types ...audit.Type) bool {
		for _, e := range events[k] {
			if slices.Contains(types, e.Type) {
				return true
			}
		}
		return false
	}
	var bad []string
	report := func(format string, args ...any) {
		if len(bad) < 10 {
			bad = append(bad, fmt.Sprintf(format, args...))
		} else if len(bad) == 10 {
			bad = append(bad, "…")
		}
	}
	toConfirm := s.unconfirmed
	s.unconfirmed = map[string]bool{}
	for _, k := range slices.Sorted(maps.Keys(toConfirm)) {
		if !has(k, audit.SecretSynced, audit.SecretDeleted) {
			report("%s: changed in Vault by round %d without an audit event (its outcome unknown to that round), and not confirmed by this one either", k, s.round-1)
		}
	}
	keys := map[string]bool{}
	for k := range o.before {
		keys[k] = true
	}
	for k := range o.after {
		keys[k] = true
	}
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		if others[k] {
			continue
		}
		b, a := o.before[k], o.after[k]
		changed := b.live != a.live || (a.live && b.value != a.value)
		if s.layout == vaultkv.SecretKey && a.version != b.version {
			changed = true
		}
		want, inSource := o.want[k]
		res, _ := o.rep.Result(k)
		if !changed {
			if has(k, audit.SecretSynced, audit.SecretDeleted) && !toConfirm[k] && !confirms(events[k]) {
				report("%s: audited as written, but Vault did not change", k)
			}
			continue
		}
		switch {
		case a.live && !inSource:
			report("%s: Vault holds a value the source does not have", k)
		case a.live && a.value != want:
			report("%s: Vault holds a value that is neither its old one nor the source's", k)
		case !a.live && inSource && b.live:
			report("%s: deleted from Vault although the source has it", k)
		case !a.live && inSource:
			report("%s: written but not live", k)
		}
		// The report may say the write failed, or that the round stopped
		// before it was confirmed (a Retry with the write's error), but
		// never that it was not attempted.
		switch {
		case slices.Contains([]sync.Action{sync.Created, sync.Updated, sync.Deleted, sync.Failed}, res.Action):
		case res.Action == sync.Retry && res.Err != nil:
		default:
			report("%s: Vault changed (%s) but the report says %q (%s)", k, describe(b, a), res.Action, res.Reason)
		}
		switch {
		case has(k, audit.SecretSynced, audit.SecretDeleted, audit.SyncFailed):
		case res.Action == sync.Failed || res.Action == sync.Retry:
			s.unconfirmed[k] = true // the next round must confirm it
		default:
			report("%s: Vault changed (%s) but the round has no audit event for it", k, describe(b, a))
		}
	}
	for _, line := range bad {
		t.Errorf("round %d: %s", s.round, line)
	}
	if s.layout == vaultkv.SecretPath && len(others) == 0 && len(o.before) > 0 && len(o.after) > 0 {
		bv, av := anyVersion(o.before), anyVersion(o.after)
		if av != bv && len(events) == 0 && len(s.unconfirmed) == 0 {
			t.Errorf("round %d: the secret went from version %d to %d, but the round has no audit event", s.round, bv, av)
		}
	}
}

// confirms reports whether events confirm a write of an earlier round that
// was cut short before it could record it: the sync audits such a write
// when it finds it applied (at least once: again, if the round that made
// it audited it before being cut short).
func confirms(events []audit.Event) bool {
	for _, e := range events {
		if strings.HasPrefix(e.Message, "confirmed by this round") {
			return true
		}
	}
	return false
}

func anyVersion(m map[string]vaultEntry) int {
	for _, e := range m {
		return e.version
	}
	return 0
}

func describe(b, a vaultEntry) string {
	switch {
	case !b.live && a.live:
		return "created"
	case b.live && !a.live:
		return "deleted"
	}
	return fmt.Sprintf("version %d to %d", b.version, a.version)
}

// checkNoConflict checks that the round flagged nothing.
func (s *scenario) checkNoConflict(o *outcome) {
	s.t.Helper()
	if n := o.rep.Totals.Conflicts; n > 0 || len(o.status.Conflicts) > 0 {
		var keys []string
		for _, c := range o.status.Conflicts {
			keys = append(keys, c.Key+" ("+c.Class.String()+")")
		}
		s.t.Errorf("round %d: %d conflicts in the report, flagged: %v; nobody else writes Vault", s.round, n, keys)
	}
}

// faultRound runs a round with a fault before change number at, lifts the
// fault, and checks the round: truthful status, writes audited and
// reported, nothing lost, no conflict. expect checks Run's error.
func (s *scenario) faultRound(at int, fire, lift func(), expect func(o *outcome)) *outcome {
	s.t.Helper()
	o := s.run(at, fire, lift)
	s.checkTruth(o)
	s.checkWrites(o, nil)
	s.checkNoConflict(o)
	if expect != nil {
		expect(o)
	}
	return o
}

// converge checks that, with the fault lifted, the next round succeeds and
// leaves Vault holding exactly the source's values, and that the round
// after it writes nothing and reports every key unchanged. It returns the
// first of the two rounds.
func (s *scenario) converge() *outcome {
	s.t.Helper()
	t := s.t
	o := s.run(0, nil, nil)
	s.checkTruth(o)
	s.checkWrites(o, nil)
	s.checkNoConflict(o)
	if o.err != nil || o.rep.Totals.Failed > 0 || o.rep.Totals.Retries > 0 || o.status.Sync == nil || o.status.Sync.Status != state.Succeeded {
		t.Errorf("round %d (fault lifted): error %v, %d failed, %d to retry, status %v; want a clean success",
			s.round, firstLine(o.err), o.rep.Totals.Failed, o.rep.Totals.Retries, statusOf(o))
	}
	s.checkMirror(o)

	q := s.run(0, nil, nil)
	s.checkTruth(q)
	s.checkWrites(q, nil)
	s.checkNoConflict(q)
	s.checkQuiet(q)
	s.checkMirror(q)
	return o
}

// checkNotRewritten checks that the round next does not write again a key
// that the fault round left holding the source's value in Vault, whatever
// the fault round reported for it (a write whose answer was lost included).
func (s *scenario) checkNotRewritten(fault, next *outcome) {
	s.t.Helper()
	var again []string
	for k, a := range fault.after {
		want, inSource := next.want[k]
		if fault.before[k] == a || a.live != inSource || (a.live && a.value != want) {
			continue // unchanged, or not what the source holds now
		}
		if r, ok := next.rep.Result(k); ok && r.Action != sync.Unchanged {
			again = append(again, k+" ("+r.Action.String()+")")
		}
	}
	if len(again) > 0 {
		s.t.Errorf("round %d: wrote again %d keys that Vault already held from round %d: %v",
			s.round-1, len(again), s.round-2, head(again))
	}
}

// checkQuiet checks that a round wrote nothing and reported every source
// key unchanged, with no new Vault version and no write event.
func (s *scenario) checkQuiet(q *outcome) {
	s.t.Helper()
	t := s.t
	if q.err != nil || q.rep.Totals.Changed() != 0 || q.rep.Totals.Unchanged != len(q.want) || statusOf(q) != state.Succeeded {
		t.Errorf("round %d (after convergence): error %v, %s, status %v; want nothing written and all %d keys unchanged",
			s.round, firstLine(q.err), q.rep, statusOf(q), len(q.want))
	}
	for _, e := range q.events {
		switch e.Type {
		case audit.SecretSynced, audit.SecretDeleted, audit.SecretImported, audit.SyncFailed:
			t.Errorf("round %d (after convergence): audit event %s for %q", s.round, e.Type, e.Key)
		}
	}
	if !maps.EqualFunc(q.before, q.after, func(a, b vaultEntry) bool { return a == b }) {
		t.Errorf("round %d (after convergence): Vault changed in a round with nothing to do", s.round)
	}
}

// checkMirror checks that Vault holds exactly the source's values.
func (s *scenario) checkMirror(o *outcome) {
	s.t.Helper()
	got := live(o.after)
	if maps.Equal(got, o.want) {
		return
	}
	var missing, extra, differ []string
	for k, v := range o.want {
		g, ok := got[k]
		switch {
		case !ok:
			missing = append(missing, k)
		case g != v:
			differ = append(differ, k)
		}
	}
	for k := range got {
		if _, ok := o.want[k]; !ok {
			extra = append(extra, k)
		}
	}
	s.t.Errorf("round %d: Vault does not hold the source's values: %d missing %v, %d extra %v, %d differ %v",
		s.round, len(missing), head(missing), len(extra), head(extra), len(differ), head(differ))
}

func head(keys []string) []string {
	slices.Sort(keys)
	if len(keys) > 5 {
		return append(keys[:5:5], "…")
	}
	return keys
}

func statusOf(o *outcome) state.Status {
	if o.status == nil || o.status.Sync == nil {
		return ""
	}
	return o.status.Sync.Status
}

// expectUnavailable checks that the round failed with an error that says
// the store as a whole is unavailable.
func expectUnavailable(s *scenario) func(o *outcome) {
	return func(o *outcome) {
		s.t.Helper()
		if o.err == nil || !errors.Is(o.err, destination.ErrUnavailable) {
			s.t.Errorf("round %d: Run's error is %v; want one matching destination.ErrUnavailable", s.round, firstLine(o.err))
		}
		if statusOf(o) != state.Failed {
			s.t.Errorf("round %d: status %q, want %q", s.round, statusOf(o), state.Failed)
		}
	}
}

// trigger returns where in a round of n writes to inject a fault: a third
// of the way in, or before the only write of an atomic side.
func (s *scenario) trigger(n int) int {
	if s.layout == vaultkv.SecretPath {
		return 0
	}
	return n / 3
}

// standard runs the usual two fault rounds of a test: a first round
// (every key created) and, after convergence, an update round (updates,
// creates and deletes), each with the fault, each followed by convergence.
// A key that the fault round left holding the source's value is not
// written again.
func (s *scenario) standard(fire, lift func(), expect func(o *outcome)) {
	s.t.Helper()
	o := s.faultRound(s.trigger(nKeys), fire, lift, expect)
	s.checkNotRewritten(o, s.converge())
	n := s.mutate()
	o = s.faultRound(s.trigger(n), fire, lift, expect)
	s.checkNotRewritten(o, s.converge())
}
