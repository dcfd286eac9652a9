// Package destinationtest is a conformance suite for implementations of
// destination.Destination. Every implementation in this module passes it,
// and implementations elsewhere can run it from their own tests:
//
//	func TestConformance(t *testing.T) {
//		destinationtest.Run(t, destinationtest.Harness{
//			New: func(t *testing.T) destinationtest.Fixture {
//				d := newMyDestination(t) // empty, private to this subtest
//				return destinationtest.Fixture{Destination: d, Set: ..., Delete: ...}
//			},
//		})
//	}
//
// The suite checks creation, update and deletion with check-and-set,
// precondition failures, that keys a change does not name are untouched,
// ownership where the destination has it, values of every shape, keys
// that try to leave their place ("../x", "/x", "a//b"), a cancelled
// context, and concurrent use.
package destinationtest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/secretsync/secretsync/destination"
)

// Fixture is one empty destination, for one subtest, and the means to change
// it behind its back as another writer would.
type Fixture struct {
	Destination destination.Destination
	// Set writes key out of band, as another writer would; the key must
	// then be listed by the destination with that value.
	Set func(ctx context.Context, key, value string) error
	// Delete removes key out of band.
	Delete func(ctx context.Context, key string) error
	// SetUnowned, when the destination has a notion of ownership, creates
	// key out of band as something the destination does not own: it must
	// then refuse to overwrite or delete it (destination.ErrNotOwned)
	// and leave it as it was. Nil skips the ownership checks.
	SetUnowned func(ctx context.Context, key, value string) error
	// Get reads key out of band, for the ownership checks (needed with
	// SetUnowned, when the destination does not list unowned keys).
	Get func(ctx context.Context, key string) (value string, ok bool, err error)
}

// Harness describes the implementation under test.
type Harness struct {
	// New returns a fresh, empty fixture. It is called once per subtest;
	// use t.Cleanup to release it.
	New func(t *testing.T) Fixture
	// Keys are valid keys for the destination, at least three; the default
	// is {"DB_URL", "api-key.v2", "nested/path/KEY"}.
	Keys []string
	// Concurrency is how many goroutines the concurrency checks use;
	// default 8.
	Concurrency int
	// MaxValueBytes is the largest value the store holds, when it holds
	// less than 64 KiB (Azure Key Vault: 25 KiB). The suite then checks
	// that a larger value is refused with destination.ErrInvalidValue.
	MaxValueBytes int
	// Capabilities are what the store under test can do; they must equal
	// what the destination reports (destination.CapabilitiesOf). The
	// suite tests each promise they make and no more: a NoCheckAndSet
	// store is not held to strict check-and-set under concurrent writers,
	// and a WriteOnly store is tested for change detection by marker, its
	// values read out of band through Fixture.Get (which it then needs).
	Capabilities destination.Capabilities
}

const promptly = 10 * time.Second // a hang detector, not a performance target

// Run runs the suite as subtests of t.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.New == nil {
		t.Fatal("destinationtest: Harness.New is nil")
	}
	if len(h.Keys) == 0 {
		h.Keys = []string{"DB_URL", "api-key.v2", "nested/path/KEY"}
	}
	if len(h.Keys) < 3 {
		t.Fatal("destinationtest: Harness.Keys needs at least three keys")
	}
	if h.Concurrency <= 0 {
		h.Concurrency = 8
	}
	s := &suite{h: h}
	t.Run("Empty", s.empty)
	t.Run("CreateUpdateDelete", s.crud)
	t.Run("Preconditions", s.preconditions)
	t.Run("RecreateAfterDelete", s.recreate)
	t.Run("BatchResultsInOrder", s.batch)
	t.Run("OtherKeysUntouched", s.untouched)
	t.Run("OutOfBandChanges", s.outOfBand)
	t.Run("Values", s.values)
	t.Run("ValuesExactOrRefused", s.valuesExactOrRefused)
	if h.MaxValueBytes > 0 {
		t.Run("ValueOverLimitRefused", s.valueOverLimit)
	}
	t.Run("HostileKeys", s.hostileKeys)
	t.Run("Ownership", s.ownership)
	t.Run("CancelledContext", s.cancelled)
	t.Run("ConcurrentDistinctKeys", s.concurrentDistinct)
	t.Run("ConcurrentSameKey", s.concurrentSame)
	if h.Capabilities.WriteOnly {
		t.Run("WriteOnlyMarkers", s.writeOnlyMarkers)
	}
}

type suite struct{ h Harness }

func (s *suite) fixture(t *testing.T) Fixture {
	t.Helper()
	f := s.h.New(t)
	if f.Destination == nil || f.Set == nil || f.Delete == nil {
		t.Fatal("destinationtest: Fixture needs Destination, Set and Delete")
	}
	if s.h.Capabilities.WriteOnly && f.Get == nil {
		t.Fatal("destinationtest: a WriteOnly store's Fixture needs Get")
	}
	got, want := destination.CapabilitiesOf(f.Destination), s.h.Capabilities
	if got.NoCheckAndSet != want.NoCheckAndSet || got.WriteOnly != want.WriteOnly {
		t.Fatalf("the destination reports %+v, the harness declares %+v", got, want)
	}
	return f
}

func list(t *testing.T, d destination.Destination) map[string]destination.Secret {
	t.Helper()
	m, err := d.List(context.Background())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return m
}

// apply applies changes and fails the test on a call error.
func apply(t *testing.T, d destination.Destination, changes ...destination.Change) []error {
	t.Helper()
	errs, err := d.Apply(context.Background(), changes)
	if err != nil {
		t.Fatalf("Apply(%v): %v", changes, err)
	}
	if len(errs) != len(changes) {
		t.Fatalf("Apply(%v) returned %d results for %d changes", changes, len(errs), len(changes))
	}
	return errs
}

func mustApply(t *testing.T, d destination.Destination, changes ...destination.Change) {
	t.Helper()
	for i, err := range apply(t, d, changes...) {
		if err != nil {
			t.Fatalf("Apply(%v): change %d: %v", changes[i], i, err)
		}
	}
}

func wantConflict(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, destination.ErrConflict) {
		t.Fatalf("%s: got %v, want an error matching destination.ErrConflict", what, err)
	}
}

// wantValue checks that key is listed with value and a version, and
// returns what was listed. For a write-only store, the value is read out
// of band (Fixture.Get) and the listed value must be empty.
func (s *suite) wantValue(t *testing.T, f Fixture, key, value string) destination.Secret {
	t.Helper()
	got, ok := list(t, f.Destination)[key]
	if !ok {
		t.Fatalf("%q is not listed, want it with value of %d bytes", key, len(value))
	}
	if got.Version == "" {
		t.Fatalf("%q has an empty version", key)
	}
	if v := s.valueOf(t, f, key, got); v != value {
		t.Fatalf("%q has the wrong value (%d bytes, want %d)", key, len(v), len(value))
	}
	return got
}

// valueOf returns the value of a listed key: as listed, or for a
// write-only store, read out of band after checking that the listing holds
// no value.
func (s *suite) valueOf(t *testing.T, f Fixture, key string, listed destination.Secret) string {
	t.Helper()
	if !s.h.Capabilities.WriteOnly {
		return listed.Value
	}
	if listed.Value != "" {
		t.Fatalf("a write-only store listed a value for %q", key)
	}
	v, ok, err := f.Get(context.Background(), key)
	if err != nil || !ok {
		t.Fatalf("Fixture.Get(%q) = %v, %v for a listed key", key, ok, err)
	}
	return v
}

func wantAbsent(t *testing.T, d destination.Destination, key string) {
	t.Helper()
	if _, ok := list(t, d)[key]; ok {
		t.Fatalf("%q is listed, want it absent", key)
	}
}

func put(key, value, expect string) destination.Change {
	return destination.Change{Key: key, Value: value, Expect: expect}
}

func del(key, expect string) destination.Change {
	return destination.Change{Key: key, Delete: true, Expect: expect}
}

func (s *suite) empty(t *testing.T) {
	f := s.fixture(t)
	if m := list(t, f.Destination); len(m) != 0 {
		t.Fatalf("a new fixture lists %d keys", len(m))
	}
	if errs, err := f.Destination.Apply(context.Background(), nil); err != nil || len(errs) != 0 {
		t.Fatalf("Apply(nil) = %v, %v", errs, err)
	}
}

func (s *suite) crud(t *testing.T) {
	f := s.fixture(t)
	d, k := f.Destination, s.h.Keys[0]
	mustApply(t, d, put(k, "v1", ""))
	v1 := s.wantValue(t, f, k, "v1")
	mustApply(t, d, put(k, "v2", v1.Version))
	v2 := s.wantValue(t, f, k, "v2")
	if v2.Version == v1.Version {
		t.Fatalf("version did not change on update: %q", v2.Version)
	}
	// Writing the same value again is still a write with check-and-set.
	mustApply(t, d, put(k, "v2", v2.Version))
	v3 := s.wantValue(t, f, k, "v2")
	mustApply(t, d, del(k, v3.Version))
	wantAbsent(t, d, k)
	// Deleting what is already gone succeeds.
	mustApply(t, d, del(k, v3.Version), del(s.h.Keys[1], ""))
}

func (s *suite) preconditions(t *testing.T) {
	f := s.fixture(t)
	d, k, absent := f.Destination, s.h.Keys[0], s.h.Keys[1]
	mustApply(t, d, put(k, "v1", ""))
	v1 := s.wantValue(t, f, k, "v1")
	mustApply(t, d, put(k, "v2", v1.Version))
	v2 := s.wantValue(t, f, k, "v2")

	wantConflict(t, "create over an existing key", apply(t, d, put(k, "x", ""))[0])
	wantConflict(t, "update with a stale version", apply(t, d, put(k, "x", v1.Version))[0])
	wantConflict(t, "delete with a stale version", apply(t, d, del(k, v1.Version))[0])
	wantConflict(t, "delete with an empty version", apply(t, d, del(k, ""))[0])
	wantConflict(t, "update of an absent key", apply(t, d, put(absent, "x", v2.Version))[0])
	if got := s.wantValue(t, f, k, "v2"); got.Version != v2.Version {
		t.Fatalf("failed writes changed the version: %q, was %q", got.Version, v2.Version)
	}
	wantAbsent(t, d, absent)
}

func (s *suite) recreate(t *testing.T) {
	f := s.fixture(t)
	d, k := f.Destination, s.h.Keys[2]
	mustApply(t, d, put(k, "first", ""))
	old := s.wantValue(t, f, k, "first")
	mustApply(t, d, del(k, old.Version))
	wantAbsent(t, d, k)
	mustApply(t, d, put(k, "second", ""))
	now := s.wantValue(t, f, k, "second")
	// A writer that read the key before it was deleted must not win.
	wantConflict(t, "update with a version from before the delete", apply(t, d, put(k, "stale", old.Version))[0])
	s.wantValue(t, f, k, "second")
	mustApply(t, d, put(k, "third", now.Version))
	s.wantValue(t, f, k, "third")
}

func (s *suite) batch(t *testing.T) {
	f := s.fixture(t)
	d := f.Destination
	a, b, c := s.h.Keys[0], s.h.Keys[1], s.h.Keys[2]
	mustApply(t, d, put(a, "a1", ""))
	va := s.wantValue(t, f, a, "a1")
	errs := apply(t, d, put(a, "a2", va.Version), put(b, "b1", "no-such-version"), put(c, "c1", ""))
	if errs[0] != nil || errs[2] != nil {
		t.Fatalf("valid changes failed: %v", errs)
	}
	wantConflict(t, "second change of the batch", errs[1])
	s.wantValue(t, f, a, "a2")
	wantAbsent(t, d, b)
	s.wantValue(t, f, c, "c1")
}

func (s *suite) untouched(t *testing.T) {
	f := s.fixture(t)
	d, k, other := f.Destination, s.h.Keys[0], s.h.Keys[1]
	ctx := context.Background()
	if err := f.Set(ctx, other, "someone else's"); err != nil {
		t.Fatal(err)
	}
	before := s.wantValue(t, f, other, "someone else's")
	mustApply(t, d, put(k, "v1", ""))
	v := s.wantValue(t, f, k, "v1")
	mustApply(t, d, put(k, "v2", v.Version))
	v = s.wantValue(t, f, k, "v2")
	mustApply(t, d, del(k, v.Version))
	after := s.wantValue(t, f, other, "someone else's")
	// A destination that writes its keys as one unit has one version for
	// all of them; otherwise the other key's version must not move.
	if !destination.CapabilitiesOf(d).Atomic && after.Version != before.Version {
		t.Fatalf("writes to %q changed the version of %q: %q, was %q", k, other, after.Version, before.Version)
	}
}

func (s *suite) outOfBand(t *testing.T) {
	f := s.fixture(t)
	d, k := f.Destination, s.h.Keys[0]
	ctx := context.Background()
	mustApply(t, d, put(k, "ours", ""))
	read := s.wantValue(t, f, k, "ours")
	// Another writer changes the key after we read it.
	if err := f.Set(ctx, k, "theirs"); err != nil {
		t.Fatal(err)
	}
	wantConflict(t, "update after an out-of-band update", apply(t, d, put(k, "ours-2", read.Version))[0])
	wantConflict(t, "delete after an out-of-band update", apply(t, d, del(k, read.Version))[0])
	theirs := s.wantValue(t, f, k, "theirs")
	// And deletes it.
	if err := f.Delete(ctx, k); err != nil {
		t.Fatal(err)
	}
	wantAbsent(t, d, k)
	wantConflict(t, "update after an out-of-band delete", apply(t, d, put(k, "ours-3", theirs.Version))[0])
	wantAbsent(t, d, k)
}

func (s *suite) values(t *testing.T) {
	f := s.fixture(t)
	d := f.Destination
	values := map[string]string{
		"unicode":   "pässwörd ✓ 密码",
		"multiline": "-----BEGIN KEY-----\nabc\n-----END KEY-----\n",
		"json-like": `{"user":"u","n":1}`,
		"number":    "42",
		"spaces":    "  padded  ",
		"long":      strings.Repeat("0123456789abcdef", 4096)[:s.maxValue()], // 64 KiB, or the store's limit
	}
	i := 0
	for name, v := range values {
		k := s.derive(t, f.Destination, "%s_%d", s.h.Keys[0], i)
		i++
		mustApply(t, d, put(k, v, ""))
		s.wantValue(t, f, k, v)
		_ = name
	}
}

// valuesExactOrRefused puts values that a store may not hold exactly
// (invalid UTF-8, NUL and control bytes), each in one call with a plain
// change: each is listed back byte for byte, or refused with
// destination.ErrInvalidValue and absent; never altered. The plain change
// of the call is applied either way.
func (s *suite) valuesExactOrRefused(t *testing.T) {
	f := s.fixture(t)
	d := f.Destination
	values := map[string]string{
		"invalid-utf8": "p\xe4ss\xff\xfe word",
		"lone-cont":    "\x80",
		"truncated":    "密"[:2],
		"nul":          "a\x00b",
		"control":      "\x01\x07\x08\x1b[31m\x7f\t\r\n\v\f",
	}
	names := make([]string, 0, len(values))
	for name := range values {
		names = append(names, name)
	}
	sort.Strings(names)
	for i, name := range names {
		v := values[name]
		k := s.derive(t, d, "%s_%d", s.h.Keys[0], i)
		plain := s.derive(t, d, "%s_plain_%d", s.h.Keys[0], i)
		errs := apply(t, d, put(k, v, ""), put(plain, "plain", ""))
		if errs[1] != nil {
			t.Errorf("%s: the plain change of the call failed: %v", name, errs[1])
		}
		got, ok := list(t, d)[k]
		value := ""
		if ok {
			value = s.valueOf(t, f, k, got)
		}
		switch {
		case errs[0] == nil && (!ok || value != v):
			t.Errorf("%s: put succeeded, but the value is listed as %d bytes that differ from the %d put (listed: %v)", name, len(value), len(v), ok)
		case errs[0] != nil && !errors.Is(errs[0], destination.ErrInvalidValue):
			t.Errorf("%s: put = %v, want success or ErrInvalidValue", name, errs[0])
		case errs[0] != nil && ok:
			t.Errorf("%s: the put was refused, but the key is listed", name)
		case errs[0] != nil && strings.Contains(errs[0].Error(), v):
			t.Errorf("%s: the error holds the value", name)
		}
	}
}

// hostile are keys that would leave their place if a destination built
// a path from them as they are, and keys with bytes that a store may not
// hold exactly.
var hostile = []string{
	"", ".", "..", "../x", "../../x", "/x", "/", "a//b", "a/./b", "a/../b", "a/", "x/..",
	"..\\x", "%2e%2e/x", "a\x00b", "a\nb", "bad-utf8-\xff",
}

// hostileKeys puts each hostile key: it must be refused with
// destination.ErrInvalidKey, or be listed back under exactly that key;
// either way no other key appears or changes.
func (s *suite) hostileKeys(t *testing.T) {
	f := s.fixture(t)
	d := f.Destination
	mustApply(t, d, put(s.h.Keys[0], "bystander", ""))
	before := list(t, d)
	for _, k := range append(hostile, "../"+s.h.Keys[0], "x/../"+s.h.Keys[0]) {
		err := apply(t, d, put(k, "hostile", ""))[0]
		if err != nil && !errors.Is(err, destination.ErrInvalidKey) {
			t.Errorf("put %q = %v, want success or ErrInvalidKey", k, err)
			continue
		}
		after := list(t, d)
		if err == nil {
			got, ok := after[k]
			if !ok || s.valueOf(t, f, k, got) != "hostile" {
				t.Errorf("put %q succeeded, but the key is not listed back exactly (listed: %v)", k, ok)
				continue
			}
			delete(after, k)
		}
		atomic := destination.CapabilitiesOf(d).Atomic
		for key, was := range before {
			now, ok := after[key]
			switch {
			case !ok:
				t.Errorf("put %q removed %q", k, key)
			case s.valueOf(t, f, key, now) != s.valueOf(t, f, key, was):
				t.Errorf("put %q changed the value of %q", k, key)
			case !atomic && now.Version != was.Version:
				t.Errorf("put %q changed the version of %q", k, key)
			}
		}
		for key := range after {
			if _, ok := before[key]; !ok {
				t.Errorf("put %q made %q appear", k, key)
			}
		}
		if err == nil {
			// Remove it again, so that the next key starts from the same place.
			mustApply(t, d, del(k, list(t, d)[k].Version))
		}
		before = list(t, d)
	}
}

func (s *suite) ownership(t *testing.T) {
	f := s.fixture(t)
	if f.SetUnowned == nil {
		t.Skip("the destination has no notion of ownership (Fixture.SetUnowned is nil)")
	}
	if f.Get == nil {
		t.Fatal("destinationtest: Fixture.Get is needed with SetUnowned")
	}
	ctx := context.Background()
	d, k := f.Destination, s.h.Keys[0]
	if err := f.SetUnowned(ctx, k, "not ours"); err != nil {
		t.Fatal(err)
	}
	version := ""
	if sec, ok := list(t, d)[k]; ok {
		version = sec.Version
	}
	for _, c := range []destination.Change{put(k, "ours", version), put(k, "ours", ""), del(k, version)} {
		err := apply(t, d, c)[0]
		if !errors.Is(err, destination.ErrNotOwned) && !errors.Is(err, destination.ErrConflict) {
			t.Fatalf("%v on an unowned key = %v, want ErrNotOwned", c, err)
		}
		v, ok, err := f.Get(ctx, k)
		if err != nil || !ok || v != "not ours" {
			t.Fatalf("after %v the unowned key is %q, %v, %v", c, v, ok, err)
		}
	}
	if err := apply(t, d, put(k, "ours", version))[0]; !errors.Is(err, destination.ErrNotOwned) {
		t.Fatalf("put on an unowned key with its version = %v, want ErrNotOwned", err)
	}
}

func (s *suite) cancelled(t *testing.T) {
	f := s.fixture(t)
	d, k := f.Destination, s.h.Keys[0]
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan struct{})
	var listErr, applyErr error
	var errs []error
	go func() {
		defer close(done)
		_, listErr = d.List(ctx)
		errs, applyErr = d.Apply(ctx, []destination.Change{put(k, "v", "")})
	}()
	select {
	case <-done:
	case <-time.After(promptly):
		t.Fatalf("List and Apply with a cancelled context did not return within %v", promptly)
	}
	if !errors.Is(listErr, context.Canceled) {
		t.Fatalf("List with a cancelled context = %v, want context.Canceled", listErr)
	}
	if applyErr == nil && (len(errs) != 1 || !errors.Is(errs[0], context.Canceled)) {
		t.Fatalf("Apply with a cancelled context = %v, %v; want context.Canceled", errs, applyErr)
	}
	if applyErr != nil && !errors.Is(applyErr, context.Canceled) {
		t.Fatalf("Apply with a cancelled context = %v, want context.Canceled", applyErr)
	}
	wantAbsent(t, d, k)
}

// concurrentDistinct has goroutines create distinct keys at once. A
// destination that writes several keys as one unit may answer ErrConflict
// to all but one writer: each then reads again and retries, as the engine
// does next round.
func (s *suite) concurrentDistinct(t *testing.T) {
	f := s.fixture(t)
	d := f.Destination
	n := s.h.Concurrency
	keys := make([]string, n)
	for i := range keys {
		keys[i] = s.derive(t, d, "%s_%d", s.h.Keys[0], i)
	}
	var wg gosync.WaitGroup
	failures := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := keys[i]
			for attempt := 0; attempt < 20*n; attempt++ {
				errs, err := d.Apply(context.Background(), []destination.Change{put(k, fmt.Sprint(i), "")})
				if err != nil {
					failures <- fmt.Errorf("Apply %s: %w", k, err)
					return
				}
				if errs[0] == nil {
					return
				}
				if !errors.Is(errs[0], destination.ErrConflict) {
					failures <- fmt.Errorf("Apply %s: %w", k, errs[0])
					return
				}
				// Lost a race on a shared unit; if our key is there, the
				// write happened before a retry of ours failed.
				if m, err := d.List(context.Background()); err == nil {
					if _, ok := m[k]; ok {
						return
					}
				}
			}
			failures <- fmt.Errorf("Apply %s: no success after %d attempts", k, 20*n)
		}()
	}
	wg.Wait()
	close(failures)
	for err := range failures {
		t.Error(err)
	}
	m := list(t, d)
	for i := range n {
		k := keys[i]
		sec, ok := m[k]
		if !ok {
			t.Errorf("%s is not listed after concurrent creates", k)
			continue
		}
		if v := s.valueOf(t, f, k, sec); v != fmt.Sprint(i) {
			t.Errorf("%s = %q after concurrent creates, want %q", k, v, fmt.Sprint(i))
		}
	}
}

// concurrentSame has goroutines update one key from the same read: exactly
// one may win, the others get ErrConflict. A store without check-and-set
// may let several win (the window it documents), but each writer still
// gets success or ErrConflict, and the key ends with one writer's value.
func (s *suite) concurrentSame(t *testing.T) {
	f := s.fixture(t)
	d, k := f.Destination, s.h.Keys[1]
	mustApply(t, d, put(k, "base", ""))
	read := s.wantValue(t, f, k, "base")
	n := s.h.Concurrency
	var wg gosync.WaitGroup
	results := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs, err := d.Apply(context.Background(), []destination.Change{put(k, fmt.Sprint("writer-", i), read.Version)})
			if err != nil {
				results[i] = err
				return
			}
			results[i] = errs[0]
		}()
	}
	wg.Wait()
	winner := -1
	for i, err := range results {
		switch {
		case err == nil && winner >= 0 && !s.h.Capabilities.NoCheckAndSet:
			t.Fatalf("writers %d and %d both won a check-and-set on one version (a lost update)", winner, i)
		case err == nil && winner >= 0:
			// The window a store without check-and-set leaves.
		case err == nil:
			winner = i
		case !errors.Is(err, destination.ErrConflict):
			t.Fatalf("writer %d: %v, want success or ErrConflict", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no writer won")
	}
	if !s.h.Capabilities.NoCheckAndSet {
		s.wantValue(t, f, k, fmt.Sprint("writer-", winner))
		return
	}
	sec, ok := list(t, d)[k]
	v := ""
	if ok {
		v = s.valueOf(t, f, k, sec)
	}
	if !ok || !strings.HasPrefix(v, "writer-") || results[mustAtoi(t, strings.TrimPrefix(v, "writer-"))] != nil {
		t.Fatalf("after concurrent updates the key holds %d bytes that no winning writer wrote", len(v))
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatalf("not a writer number: %q", s)
	}
	return n
}

// writeOnlyMarkers tests what a write-only store promises: List shows no
// value; the marker of a key stays while nobody writes it, and changes
// when anyone does, the store's own writes and another writer's alike; a
// write that expects a marker that is no longer the key's is refused.
func (s *suite) writeOnlyMarkers(t *testing.T) {
	f := s.fixture(t)
	d, k := f.Destination, s.h.Keys[0]
	ctx := context.Background()
	mustApply(t, d, put(k, "ours", ""))
	m1 := s.wantValue(t, f, k, "ours")
	if again := s.wantValue(t, f, k, "ours"); again.Version != m1.Version {
		t.Fatalf("the marker moved with nobody writing: %q, was %q", again.Version, m1.Version)
	}
	mustApply(t, d, put(k, "ours-2", m1.Version))
	m2 := s.wantValue(t, f, k, "ours-2")
	if m2.Version == m1.Version {
		t.Fatalf("the marker did not change on our write: %q", m2.Version)
	}
	if err := f.Set(ctx, k, "theirs"); err != nil {
		t.Fatal(err)
	}
	m3 := s.wantValue(t, f, k, "theirs")
	if m3.Version == m2.Version {
		t.Fatalf("the marker did not change on another writer's write: %q", m3.Version)
	}
	wantConflict(t, "put expecting the marker from before another writer's write", apply(t, d, put(k, "ours-3", m2.Version))[0])
	s.wantValue(t, f, k, "theirs")
}

const longValue = 64 << 10

func (s *suite) maxValue() int {
	if s.h.MaxValueBytes > 0 && s.h.MaxValueBytes < longValue {
		return s.h.MaxValueBytes
	}
	return longValue
}

// derive returns a key made from a harness key, fitted to the store's
// naming rules when the destination has them (destination.KeyNormalizer).
func (s *suite) derive(t *testing.T, d destination.Destination, format string, args ...any) string {
	t.Helper()
	k := fmt.Sprintf(format, args...)
	if n, ok := d.(destination.KeyNormalizer); ok {
		nk, err := n.NormalizeKey(k)
		if err != nil {
			t.Fatalf("NormalizeKey(%q): %v", k, err)
		}
		if again, err := n.NormalizeKey(nk); err != nil || again != nk {
			t.Fatalf("NormalizeKey is not idempotent: %q gives %q, then %q, %v", k, nk, again, err)
		}
		return nk
	}
	return k
}

// valueOverLimit puts a value one byte over Harness.MaxValueBytes: it is
// refused with ErrInvalidValue and nothing is written; a value of exactly
// the limit is kept.
func (s *suite) valueOverLimit(t *testing.T) {
	f := s.fixture(t)
	d, k, other := f.Destination, s.h.Keys[0], s.h.Keys[1]
	big := strings.Repeat("x", s.h.MaxValueBytes+1)
	err := apply(t, d, put(k, big, ""))[0]
	if !errors.Is(err, destination.ErrInvalidValue) {
		t.Fatalf("put of %d bytes = %v, want ErrInvalidValue", len(big), err)
	}
	wantAbsent(t, d, k)
	mustApply(t, d, put(other, big[1:], ""))
	s.wantValue(t, f, other, big[1:])
}
