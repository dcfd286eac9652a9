package registry_test

import (
	"context"
	"errors"
	"strings"
	gosync "sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/registry"
	"github.com/secretsync/secretsync/sync/clocktest"
)

// pollOnly is a secret that does not announce its changes (no
// destination.Notifier), as Vault Community Edition: changes arrive by
// polling alone.
type pollOnly struct {
	d     *memory.Destination
	lists atomic.Int64
	fail  atomic.Bool
}

var _ destination.Reader = (*pollOnly)(nil)

func (p *pollOnly) List(ctx context.Context) (map[string]destination.Secret, error) {
	p.lists.Add(1)
	if p.fail.Load() {
		return nil, errors.New("vault: 503 sealed")
	}
	return p.d.List(ctx)
}

type watchFixture struct {
	reg     *registry.Registry
	dst     *memory.Destination
	mu      gosync.Mutex
	secrets map[registry.SecretRef]*pollOnly
}

const pollEvery = 20 * time.Millisecond

func newWatchFixture(t *testing.T) *watchFixture { return newWatchFixtureWith(t, nil) }

// newWatchFixtureWith is newWatchFixture with options changed by mod.
func newWatchFixtureWith(t *testing.T, mod func(*registry.Options)) *watchFixture {
	f := &watchFixture{dst: memory.New(nil), secrets: map[registry.SecretRef]*pollOnly{}}
	opts := &registry.Options{
		Drivers: map[string]registry.Driver{"test-kv": func(context.Context, registry.Target) (destination.Destination, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			return f.dst, nil
		}},
		Source: func(_ context.Context, mount, name string) (destination.Reader, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			return f.secrets[registry.SecretRef{Mount: mount, Name: name}], nil
		},
		PollInterval: pollEvery,
	}
	if mod != nil {
		mod(opts)
	}
	f.reg = registry.New(opts)
	if _, err := f.reg.Put(context.Background(), "repo", testKV{Token: "t"}); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *watchFixture) secret(name string, kv map[string]string) (registry.SecretRef, *pollOnly) {
	ref := registry.SecretRef{Mount: "kv", Name: name}
	p := &pollOnly{d: memory.New(kv)}
	f.mu.Lock()
	f.secrets[ref] = p
	f.mu.Unlock()
	return ref, p
}

// watch runs the registry's Watch until the test ends, and checks that it
// returns then.
func (f *watchFixture) watch(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.reg.Watch(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Watch returned %v, want context.Canceled", err)
			}
		case <-time.After(hang):
			t.Error("Watch did not return after its context ended")
		}
	})
}

// hang bounds every wait for a polled change: far more than any number of
// poll intervals, so that it only catches a hang.
const hang = 20 * time.Second

// eventually waits for cond, failing the test as hung after hang.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hang)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("hung waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (f *watchFixture) assoc(t *testing.T, ref registry.SecretRef) registry.Association {
	t.Helper()
	as, err := f.reg.Associations(context.Background(), "test-kv", "repo")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		if a.Secret == ref {
			return a
		}
	}
	t.Fatalf("no association of %s", ref)
	return registry.Association{}
}

func TestWatchPollsChanges(t *testing.T) {
	ctx := context.Background()
	f := newWatchFixture(t)
	ref, src := f.secret("app", map[string]string{"db": "v1"})
	set, err := f.reg.Set(ctx, "test-kv", "repo", ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.watch(t)

	src.d.Set("db", "v2")
	eventually(t, "the change to arrive by polling", func() bool { return values(t, f.dst)["kv_app_db"] == "v2" })
	eventually(t, "the round's status", func() bool {
		a := f.assoc(t, ref)
		return a.Status == registry.StatusSynced && a.Totals.Updated == 1 && a.UpdatedAt.After(set.UpdatedAt)
	})

	// Rounds with nothing to do update the time too.
	before := f.assoc(t, ref).UpdatedAt
	eventually(t, "a later round", func() bool { return f.assoc(t, ref).UpdatedAt.After(before) })
	if a := f.assoc(t, ref); a.Status != registry.StatusSynced || a.Totals.Unchanged != 1 {
		t.Errorf("after an idle round: %s %q %+v", a.Status, a.Message, a.Totals)
	}

	// An association set while Watch runs is watched too.
	ref2, src2 := f.secret("web", map[string]string{"token": "a"})
	if _, err := f.reg.Set(ctx, "test-kv", "repo", ref2, nil); err != nil {
		t.Fatal(err)
	}
	src2.d.Set("token", "b")
	eventually(t, "the new association's change", func() bool { return values(t, f.dst)["kv_web_token"] == "b" })

	if err := f.reg.Watch(ctx); !errors.Is(err, registry.ErrWatching) {
		t.Errorf("a second Watch: %v, want ErrWatching", err)
	}
}

func TestWatchStopsOnRemove(t *testing.T) {
	ctx := context.Background()
	f := newWatchFixture(t)
	ref, src := f.secret("app", map[string]string{"db": "v1"})
	if _, err := f.reg.Set(ctx, "test-kv", "repo", ref, nil); err != nil {
		t.Fatal(err)
	}
	f.watch(t)
	n := src.lists.Load()
	eventually(t, "Watch rounds", func() bool { return src.lists.Load() > n+2 })

	a, err := f.reg.Remove(ctx, "test-kv", "repo", ref)
	if err != nil || a.Status != registry.StatusUnsynced {
		t.Fatalf("Remove: %v %+v", err, a)
	}
	// Remove returns once the association's watch has: no round reads
	// the secret, or writes it back, after it.
	n = src.lists.Load()
	src.d.Set("db", "v2")
	time.Sleep(10 * pollEvery)
	if got := src.lists.Load(); got != n {
		t.Errorf("the secret was read %d time(s) after Remove", got-n)
	}
	if v := values(t, f.dst); len(v) != 0 {
		t.Errorf("destination after Remove: %v", v)
	}
}

func TestWatchUnsyncsDeletedSecret(t *testing.T) {
	ctx := context.Background()
	f := newWatchFixture(t)
	ref, src := f.secret("app", map[string]string{"db": "v1", "user": "u"})
	other, _ := f.secret("other", map[string]string{"k": "v"})
	for _, r := range []registry.SecretRef{ref, other} {
		if _, err := f.reg.Set(ctx, "test-kv", "repo", r, nil); err != nil {
			t.Fatal(err)
		}
	}
	f.watch(t)

	// A failure to read the secret never unsyncs.
	src.fail.Store(true)
	eventually(t, "the read failure's status", func() bool {
		return f.assoc(t, ref).Status == registry.StatusInternalVaultError
	})
	if v := values(t, f.dst); len(v) != 3 {
		t.Errorf("after a read failure the destination holds %v", v)
	}
	src.fail.Store(false)

	// The secret deleted in Vault: the source reads empty.
	src.d.Delete("db")
	src.d.Delete("user")
	eventually(t, "the unsync", func() bool {
		a := f.assoc(t, ref)
		return a.Status == registry.StatusUnsynced && strings.Contains(a.Message, "deleted in Vault")
	})
	want := map[string]string{"kv_other_k": "v"}
	if v := values(t, f.dst); len(v) != 1 || v["kv_other_k"] != "v" {
		t.Errorf("destination after the secret's deletion: %v, want %v", v, want)
	}
	if a := f.assoc(t, other); a.Status != registry.StatusSynced {
		t.Errorf("the other association: %s %q", a.Status, a.Message)
	}

	// Written again, it syncs again.
	src.d.Set("db", "v3")
	eventually(t, "the secret written again", func() bool {
		return values(t, f.dst)["kv_app_db"] == "v3" && f.assoc(t, ref).Status == registry.StatusSynced
	})
}

func TestSetOnDeletedSecretUnsyncs(t *testing.T) {
	ctx := context.Background()
	f := newWatchFixture(t)
	ref, src := f.secret("app", map[string]string{"db": "v1"})
	if _, err := f.reg.Set(ctx, "test-kv", "repo", ref, nil); err != nil {
		t.Fatal(err)
	}
	src.d.Delete("db")
	a, err := f.reg.Set(ctx, "test-kv", "repo", ref, nil)
	if err != nil || a.Status != registry.StatusUnsynced || !strings.Contains(a.Message, "deleted in Vault") || a.Totals.Deleted != 1 {
		t.Fatalf("Set after the secret's deletion: %v %s %q %+v", err, a.Status, a.Message, a.Totals)
	}
	if v := values(t, f.dst); len(v) != 0 {
		t.Errorf("destination: %v", v)
	}
}

func TestWatchFollowsReplacedConfig(t *testing.T) {
	ctx := context.Background()
	f := newWatchFixture(t)
	ref, src := f.secret("app", map[string]string{"db": "v1"})
	if _, err := f.reg.Set(ctx, "test-kv", "repo", ref, nil); err != nil {
		t.Fatal(err)
	}
	f.watch(t)
	// The driver opens the new destination (the same store, a new
	// client: a copy) once the Config changed; the association's watch
	// stops and starts again on it.
	old := f.dst
	dst := memory.New(values(t, old))
	f.mu.Lock()
	f.dst = dst
	f.mu.Unlock()
	if _, err := f.reg.Put(ctx, "repo", testKV{Token: "t2"}); err != nil {
		t.Fatal(err)
	}
	src.d.Set("db", "v2")
	eventually(t, "the change at the new destination", func() bool { return values(t, dst)["kv_app_db"] == "v2" })
	if v := values(t, old)["kv_app_db"]; v != "v1" {
		t.Errorf("the old destination was written after its Config was replaced: %q", v)
	}
}

// TestWatchPollsOnTheConfiguredClock: the associations' rounds are
// scheduled on Options.Clock (here a manual one, inside a synctest bubble
// whose own time stands still while the test waits), and their status
// times come from it.
func TestWatchPollsOnTheConfiguredClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		clock := clocktest.New(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC))
		f := newWatchFixtureWith(t, func(o *registry.Options) { o.Clock, o.PollInterval = clock, time.Minute })
		ref, src := f.secret("app", map[string]string{"db": "v1"})
		if _, err := f.reg.Set(ctx, "test-kv", "repo", ref, nil); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		var werr error
		go func() { werr = f.reg.Watch(ctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
		synctest.Wait()
		if got := values(t, f.dst)["kv_app_db"]; got != "v1" {
			t.Fatalf("after the first round: %q", got)
		}
		src.d.Set("db", "v2")
		clock.Advance(50 * time.Second) // before the poll, jitter included
		synctest.Wait()
		if got := values(t, f.dst)["kv_app_db"]; got != "v1" {
			t.Fatalf("a round ran before the poll interval: %q", got)
		}
		clock.Advance(20 * time.Second)
		synctest.Wait()
		if got := values(t, f.dst)["kv_app_db"]; got != "v2" {
			t.Fatalf("no round after the poll interval: %q", got)
		}
		if a := f.assoc(t, ref); a.Status != registry.StatusSynced || !a.UpdatedAt.Equal(clock.Now()) {
			t.Fatalf("association %s at %v, want synced at %v", a.Status, a.UpdatedAt, clock.Now())
		}
		cancel()
		<-done
		if !errors.Is(werr, context.Canceled) {
			t.Fatalf("Watch = %v", werr)
		}
	})
}
