package sync_test

import (
	"context"
	"errors"
	"fmt"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/state"
	"github.com/secretsync/secretsync/sync"
)

// eventually waits for cond; the limit only catches a hang.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// watch starts s.Watch and returns a function that stops it and returns
// its error.
func watch(t *testing.T, s *sync.Syncer) func() error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Watch(ctx) }()
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(20 * time.Second):
			t.Fatal("Watch did not return after its context ended")
			return nil
		}
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func TestWatchFollowsAnnouncedChangesWithDebounce(t *testing.T) {
	src := memory.New(map[string]string{"A": "1"})
	dst := memory.New(nil)
	s, err := sync.New(sync.Config{Name: "w", Source: src, Destination: dst,
		AutoSync: sync.AutoSync{Debounce: 300 * time.Millisecond, Interval: -1}})
	if err != nil {
		t.Fatal(err)
	}
	stop := watch(t, s)
	eventually(t, "the first round", func() bool { return dst.Len() == 1 })
	lists := dst.Stats().Lists
	for i := range 10 {
		src.Set(fmt.Sprintf("K%d", i), "v") // a burst: one round
	}
	eventually(t, "the burst to arrive", func() bool { return dst.Len() == 11 })
	time.Sleep(400 * time.Millisecond) // a second round would have run by now
	if n := dst.Stats().Lists - lists; n != 1 {
		t.Fatalf("a burst of 10 changes made %d rounds, want 1", n)
	}
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Watch = %v, want context.Canceled", err)
	}
}

func TestWatchTriggerAndReconcile(t *testing.T) {
	src := memory.New(map[string]string{"A": "1"})
	dst := memory.New(nil)
	// A read-only view announces nothing: only Trigger starts a round.
	s, err := sync.New(sync.Config{Name: "t", Source: src.Reader(), Destination: dst,
		AutoSync: sync.AutoSync{Debounce: time.Millisecond, Interval: -1}})
	if err != nil {
		t.Fatal(err)
	}
	watch(t, s)
	eventually(t, "the first round", func() bool { return dst.Len() == 1 })
	src.Set("B", "2")
	s.Trigger()
	eventually(t, "the triggered round", func() bool { return dst.Len() == 2 })

	// With a reconcile interval, out-of-band changes arrive with no trigger.
	src2 := memory.New(map[string]string{"A": "1"})
	dst2 := memory.New(nil)
	r, err := sync.New(sync.Config{Name: "r", Source: src2.Reader(), Destination: dst2,
		AutoSync: sync.AutoSync{Interval: 20 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	watch(t, r)
	eventually(t, "the first round", func() bool { return dst2.Len() == 1 })
	src2.Set("B", "2")
	eventually(t, "a reconcile round", func() bool { return dst2.Len() == 2 })
}

func TestWatchBacksOffAndRecordsStatus(t *testing.T) {
	var attempts atomic.Int32
	dst := memory.NewWithOptions(nil, &memory.Options{BeforeList: func(context.Context) error {
		if attempts.Add(1) <= 3 {
			return errors.New("vault unreachable")
		}
		return nil
	}})
	store := state.NewMemory()
	s, err := sync.New(sync.Config{Name: "b", Source: memory.New(map[string]string{"A": "1"}), Destination: dst, Store: store,
		AutoSync: sync.AutoSync{Interval: -1, MinBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	var sawFailed atomic.Bool
	stopPoll := make(chan struct{})
	go func() {
		for {
			select {
			case <-stopPoll:
				return
			default:
			}
			if st, err := s.Status(context.Background()); err == nil && st.Sync != nil && st.Sync.Status == state.Failed {
				sawFailed.Store(true)
			}
			time.Sleep(time.Millisecond)
		}
	}()
	watch(t, s)
	// The key lands before the round records its status: wait for both.
	eventually(t, "recovery after failures", func() bool {
		st, err := s.Status(context.Background())
		return dst.Len() == 1 && err == nil && st.Sync != nil && st.Sync.Status == state.Succeeded
	})
	close(stopPoll)
	if attempts.Load() != 4 {
		t.Fatalf("%d attempts, want 3 failures and a success", attempts.Load())
	}
	if !sawFailed.Load() {
		t.Fatal("the failed status of the failing rounds was never seen")
	}
}

func TestWatchRoundsNeverOverlap(t *testing.T) {
	var inFlight, most atomic.Int32
	dst := memory.NewWithOptions(nil, &memory.Options{BeforeApply: func(context.Context, destination.Change) error {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(time.Millisecond)
		return nil
	}})
	src := memory.New(nil)
	s, err := sync.New(sync.Config{Name: "o", Source: src, Destination: dst, Concurrency: 1,
		AutoSync: sync.AutoSync{Debounce: time.Millisecond, Interval: 5 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	watch(t, s)
	var wg gosync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				src.Set(fmt.Sprintf("G%dK%d", g, i), "v")
				s.Trigger()
				_, _ = s.Run(context.Background())
			}
		}()
	}
	wg.Wait()
	eventually(t, "convergence", func() bool { return dst.Len() == 80 })
	if most.Load() != 1 {
		t.Fatalf("%d writes were in flight at once: rounds overlapped", most.Load())
	}
}

func TestWatchDisabledAndTwice(t *testing.T) {
	off, err := sync.New(sync.Config{Name: "off", Source: memory.New(nil), Destination: memory.New(nil), AutoSync: sync.AutoSync{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	if err := off.Watch(context.Background()); !errors.Is(err, sync.ErrAutoSyncDisabled) {
		t.Fatalf("Watch = %v", err)
	}
	dst := memory.New(nil)
	s, err := sync.New(sync.Config{Name: "twice", Source: memory.New(map[string]string{"A": "1"}), Destination: dst})
	if err != nil {
		t.Fatal(err)
	}
	watch(t, s)
	eventually(t, "the first round", func() bool { return dst.Len() == 1 })
	if err := s.Watch(context.Background()); !errors.Is(err, sync.ErrWatching) {
		t.Fatalf("second Watch = %v", err)
	}
	for _, a := range []sync.AutoSync{{Debounce: -1}, {Jitter: 1}, {MinBackoff: time.Hour, MaxBackoff: time.Minute}} {
		_, err := sync.New(sync.Config{Name: "bad", Source: memory.New(nil), Destination: memory.New(nil), AutoSync: a})
		var ce *sync.ConfigError
		if !errors.As(err, &ce) {
			t.Errorf("AutoSync %+v accepted: %v", a, err)
		}
	}
}

// TestWatchWithLock: two replicas of one sync share a store and a lock;
// only the holder runs rounds, and the other takes over when it stops.
func TestWatchWithLock(t *testing.T) {
	store, lock := state.NewMemory(), state.NewMemoryLock()
	src := memory.New(map[string]string{"A": "1"})
	dst := memory.New(nil)
	var who atomic.Value
	replica := func(name string) *sync.Syncer {
		s, err := sync.New(sync.Config{Name: "shared", Source: src, Destination: tagged{dst, name, &who}, Store: store, Lock: lock,
			AutoSync: sync.AutoSync{Debounce: time.Millisecond, Interval: 10 * time.Millisecond}})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b := replica("a"), replica("b")
	stopA := watch(t, a)
	eventually(t, "a's first round", func() bool { return dst.Len() == 1 })
	watch(t, b)
	time.Sleep(50 * time.Millisecond)
	if who.Load() != "a" {
		t.Fatalf("rounds by %v while a holds the lock", who.Load())
	}
	// A manual Run on the standby is refused, not run alongside.
	if _, err := b.Run(context.Background()); !errors.Is(err, state.ErrHeld) {
		t.Fatalf("Run on the standby = %v, want state.ErrHeld", err)
	}
	_ = stopA()
	src.Set("B", "2")
	eventually(t, "b to take over", func() bool { return dst.Len() == 2 && who.Load() == "b" })
}

// tagged records which replica listed the destination last.
type tagged struct {
	*memory.Destination
	name string
	who  *atomic.Value
}

func (d tagged) List(ctx context.Context) (map[string]destination.Secret, error) {
	d.who.Store(d.name)
	return d.Destination.List(ctx)
}

// TestWatchFinishesTheRoundInFlight: when Watch's context ends during a
// round, the round completes (within StopGrace) before Watch returns.
func TestWatchFinishesTheRoundInFlight(t *testing.T) {
	started := make(chan struct{})
	var once gosync.Once
	dst := memory.NewWithOptions(nil, &memory.Options{BeforeApply: func(context.Context, destination.Change) error {
		once.Do(func() { close(started) })
		time.Sleep(2 * time.Millisecond)
		return nil
	}})
	src := map[string]string{}
	for i := range 100 {
		src[fmt.Sprintf("K%03d", i)] = "v"
	}
	var rounds []error
	var mu gosync.Mutex
	s, err := sync.New(sync.Config{Name: "g", Source: memory.New(src), Destination: dst, Concurrency: 1,
		OnRound: func(rep *sync.Report, err error) { mu.Lock(); rounds = append(rounds, err); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	stop := watch(t, s)
	<-started
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Watch = %v", err)
	}
	if dst.Len() != 100 {
		t.Fatalf("the round in flight was cut short: %d of 100 keys", dst.Len())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(rounds) != 1 || rounds[0] != nil {
		t.Fatalf("OnRound saw %v", rounds)
	}
}
