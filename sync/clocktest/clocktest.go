// Package clocktest provides a manual [sync.Clock] for tests: its time
// moves only when the test says, so that a test of Syncer.Watch (or of
// code built on it) sees a reconcile interval, a debounce or a backoff
// pass without waiting for it.
//
// A test tells Watch's reaction apart from its own steps with
// testing/synctest: inside a bubble, synctest.Wait returns once Watch has
// done what the last Advance or Trigger asked and waits again.
//
//	synctest.Test(t, func(t *testing.T) {
//		clock := clocktest.New(time.Now())
//		s, _ := sync.New(sync.Config{..., Clock: clock})
//		go s.Watch(ctx)
//		synctest.Wait() // the first round has run
//		clock.Advance(time.Minute)
//		synctest.Wait() // and the reconcile round
//	})
//
// (Inside a bubble the real clock is a fake as well; Clock lets a test
// choose the instants itself and keep its other timers real.)
package clocktest

import (
	"slices"
	gosync "sync"
	"time"

	"github.com/secretsync/secretsync/sync"
)

// Clock is a sync.Clock whose time moves only by Advance and Set. It is
// safe for concurrent use.
type Clock struct {
	mu     gosync.Mutex
	now    time.Time
	timers []*timer
}

type timer struct {
	at time.Time
	f  func()
}

var _ sync.Clock = (*Clock)(nil)

// New returns a Clock that reads start until it is moved.
func New(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the Clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc arranges for f to be called once the Clock has moved on by d:
// on the goroutine of the Advance or Set that moves it there, or, for
// d <= 0, at once on a goroutine of its own (as time.AfterFunc does).
func (c *Clock) AfterFunc(d time.Duration, f func()) (stop func() bool) {
	if d <= 0 {
		go f()
		return func() bool { return false }
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &timer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		n := len(c.timers)
		c.timers = slices.DeleteFunc(c.timers, func(o *timer) bool { return o == t })
		return len(c.timers) < n
	}
}

// Advance moves the time on by d. The functions whose time comes are
// called one by one, in order of their time (then of their AfterFunc
// calls), each with the Clock reading its time; the Clock then reads the
// time it was moved to. A function may call AfterFunc: it runs in the same
// Advance if its time comes too.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	for {
		i := -1
		for j, t := range c.timers {
			if !t.at.After(end) && (i < 0 || t.at.Before(c.timers[i].at)) {
				i = j
			}
		}
		if i < 0 {
			break
		}
		t := c.timers[i]
		c.timers = slices.Delete(c.timers, i, i+1)
		c.now = t.at
		c.mu.Unlock()
		t.f()
		c.mu.Lock()
	}
	if end.After(c.now) {
		c.now = end
	}
	c.mu.Unlock()
}

// Set moves the time to at, as Advance does; a time before the Clock's
// leaves it where it is (a Clock never goes back).
func (c *Clock) Set(at time.Time) { c.Advance(at.Sub(c.Now())) }

// Timers returns the number of functions waiting for their time.
func (c *Clock) Timers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}
