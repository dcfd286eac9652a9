package sync_test

import (
	"context"
	"errors"
	gosync "sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/sync"
	"github.com/secretsync/secretsync/sync/clocktest"
)

// clockedWatch is a Syncer watched on a fake clock inside a synctest
// bubble: synctest.Wait lets Watch react to what the test did, and only
// the fake clock's Advance moves Watch's time. A Watch that waited on the
// wall clock would see no time pass at all (the bubble's time stands still
// while the test waits), so these tests fail if Watch stops honouring
// Config.Clock.
type clockedWatch struct {
	t     *testing.T
	clock *clocktest.Clock
	s     *sync.Syncer
	src   *memory.Destination
	fail  atomic.Bool // the destination's List fails while set
	block chan struct{}

	mu     gosync.Mutex
	rounds []error // by OnRound
}

func newClockedWatch(t *testing.T, auto sync.AutoSync) *clockedWatch {
	w := &clockedWatch{t: t, clock: clocktest.New(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)), src: memory.New(map[string]string{"A": "1"})}
	dst := memory.NewWithOptions(nil, &memory.Options{BeforeList: func(ctx context.Context) error {
		if w.block != nil {
			<-ctx.Done()
			return context.Cause(ctx)
		}
		if w.fail.Load() {
			return errors.New("destination unreachable")
		}
		return nil
	}})
	var err error
	// The source's read-only view announces nothing: rounds come from the
	// clock and Trigger only.
	w.s, err = sync.New(sync.Config{Name: "clocked", Source: w.src.Reader(), Destination: dst, Clock: w.clock, AutoSync: auto,
		OnRound: func(_ *sync.Report, err error) { w.mu.Lock(); w.rounds = append(w.rounds, err); w.mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// advance moves the fake clock on and lets Watch react.
func (w *clockedWatch) advance(d time.Duration) {
	w.clock.Advance(d)
	synctest.Wait()
}

// want checks the number of rounds so far.
func (w *clockedWatch) want(what string, rounds int) {
	w.t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.rounds) != rounds {
		w.t.Fatalf("%s: %d rounds (%v), want %d", what, len(w.rounds), w.rounds, rounds)
	}
}

// lastFailed reports whether the latest round failed.
func (w *clockedWatch) lastFailed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.rounds) > 0 && w.rounds[len(w.rounds)-1] != nil
}

// start runs Watch until stop or the end of the test, and lets it run
// its first round.
func (w *clockedWatch) start() (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var err error
	go func() { err = w.s.Watch(ctx); close(done) }()
	stop = func() error { cancel(); <-done; return err }
	w.t.Cleanup(func() { _ = stop() })
	synctest.Wait()
	return stop
}

// TestWatchOnTheConfiguredClock: the first round runs at once, a
// reconcile round after Interval (with its jitter) and not before, a burst
// of Triggers makes one round after Debounce, and failed rounds are
// retried after a backoff that doubles, with triggers unable to cut it
// short, all on Config.Clock.
func TestWatchOnTheConfiguredClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const (
			interval = 10 * time.Minute
			debounce = time.Second
			minB     = 4 * time.Second
		)
		w := newClockedWatch(t, sync.AutoSync{Interval: interval, Jitter: 0.01, Debounce: debounce, MinBackoff: minB, MaxBackoff: time.Hour})
		w.start()
		w.want("at start, with no time passed", 1)

		w.advance(interval * 98 / 100) // before the earliest jittered reconcile
		w.want("before Interval", 1)
		w.advance(interval * 4 / 100) // past the latest
		w.want("after Interval", 2)

		// A burst of triggers spread over less than Debounce: one round,
		// Debounce after the first.
		for range 4 {
			w.s.Trigger()
			synctest.Wait()
			w.advance(debounce / 5)
		}
		w.want("during the burst", 2)
		w.advance(debounce / 5)
		w.want("Debounce after the burst began", 3)
		w.advance(3 * debounce)
		w.want("after the burst's round", 3)

		// Failures: each retry waits MinBackoff doubled per failure in a
		// row, less at most 20% of jitter.
		w.fail.Store(true)
		w.s.Trigger()
		synctest.Wait()
		w.advance(debounce)
		w.want("the first failure", 4)
		if !w.lastFailed() {
			t.Fatal("the round with an unreachable destination succeeded")
		}
		rounds := 4
		for n := 1; n <= 3; n++ {
			wait := minB << (n - 1)
			w.advance(wait / 2)
			w.s.Trigger() // its round would come before the backoff's end
			synctest.Wait()
			w.advance(debounce + debounce/10)
			w.want("during the backoff", rounds)
			w.advance(wait - wait/2 - debounce - debounce/10)
			rounds++
			w.want("after the backoff", rounds)
		}
		w.fail.Store(false)
		w.advance(minB << 3)
		rounds++
		w.want("the retry that succeeds", rounds)
		if w.lastFailed() {
			t.Fatal("the retry failed")
		}
		// After a success, the reconcile interval again.
		w.advance(interval * 95 / 100)
		w.want("before Interval after the recovery", rounds)
		w.advance(interval * 7 / 100)
		w.want("Interval after the recovery", rounds+1)
	})
}

// TestWatchStopGraceOnTheConfiguredClock: a round in flight when Watch's
// context ends is cancelled once StopGrace has passed on Config.Clock, and
// not before.
func TestWatchStopGraceOnTheConfiguredClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newClockedWatch(t, sync.AutoSync{Interval: -1, StopGrace: time.Minute})
		w.block = make(chan struct{})
		stop := w.start()
		ended := make(chan error, 1)
		go func() { ended <- stop() }()
		synctest.Wait()
		select {
		case err := <-ended:
			t.Fatalf("Watch returned %v with its round in flight and no time passed", err)
		default:
		}
		w.advance(time.Minute - time.Second)
		select {
		case err := <-ended:
			t.Fatalf("Watch returned %v before StopGrace", err)
		default:
		}
		w.advance(time.Second)
		select {
		case err := <-ended:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Watch = %v, want context.Canceled", err)
			}
		default:
			t.Fatal("Watch still runs StopGrace after its context ended")
		}
		w.want("the round cut short", 1)
		if !w.lastFailed() {
			t.Fatal("the round cut short by StopGrace succeeded")
		}
	})
}
