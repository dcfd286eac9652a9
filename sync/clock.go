package sync

import (
	"context"
	"time"
)

// Clock is the time as a Syncer sees it: the timestamps of its reports,
// status records and audit events, and the scheduling of Watch (the
// debounce, the reconcile interval, the backoff after failures and
// AutoSync.StopGrace) all come from it. Config.Clock nil means the real
// clock.
//
// Package clocktest has one for tests, whose time moves only when the
// test says; a fake of one's own takes a few lines: Now returns a field,
// AfterFunc appends (time, f) to a list, and an Advance method moves the
// time and calls the functions whose time has come. (Under
// testing/synctest the real clock is a fake already, so a nil Clock
// serves there too.)
//
// A Clock is used from several goroutines at once.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// AfterFunc calls f, on a goroutine of the Clock's choosing, once d
	// has passed (at once when d <= 0), unless stop is called first. stop
	// reports whether it prevented the call: false when f has run or
	// begun already, or stop was called before. f must not block for
	// long.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// WallClock is the real clock, what a nil Config.Clock means. Its zero
// value is ready to use.
type WallClock struct{}

// Now returns time.Now().
func (WallClock) Now() time.Time { return time.Now() }

// AfterFunc calls f after d with time.AfterFunc and returns the timer's
// Stop method.
func (WallClock) AfterFunc(d time.Duration, f func()) (stop func() bool) {
	return time.AfterFunc(d, f).Stop
}

var _ Clock = WallClock{}

// now returns the Syncer's time.
func (s *Syncer) now() time.Time { return s.clock.Now() }

// alarm is a timer on a Clock whose firing is received on c. A firing
// from an earlier reset can still arrive after a reset (its function had
// begun when it was stopped): receivers compare the Clock's time with the
// time they waited for.
type alarm struct {
	clock Clock
	c     chan struct{}
	stop  func() bool
}

func newAlarm(clock Clock) *alarm {
	return &alarm{clock: clock, c: make(chan struct{}, 1)}
}

// reset makes the alarm fire once d has passed, and not before.
func (a *alarm) reset(d time.Duration) {
	a.halt()
	a.stop = a.clock.AfterFunc(d, a.ring)
}

func (a *alarm) ring() {
	select {
	case a.c <- struct{}{}:
	default:
	}
}

// halt stops the alarm and drops a firing not yet received.
func (a *alarm) halt() {
	if a.stop != nil {
		a.stop()
		a.stop = nil
	}
	select {
	case <-a.c:
	default:
	}
}

// sleep waits for d on clock; it reports false when ctx ends first.
func sleep(ctx context.Context, clock Clock, d time.Duration) bool {
	a := newAlarm(clock)
	a.reset(d)
	defer a.halt()
	select {
	case <-ctx.Done():
		return false
	case <-a.c:
		return true
	}
}
