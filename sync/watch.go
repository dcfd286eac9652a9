package sync

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/state"
)

// ErrAutoSyncDisabled is returned by Watch for a sync whose AutoSync is
// disabled.
var ErrAutoSyncDisabled = errors.New("sync: auto-sync is disabled for this sync")

// ErrWatching is returned by Watch when the Syncer is being watched already.
var ErrWatching = errors.New("sync: Watch is already running for this Syncer")

// Trigger asks a running Watch for a round soon (after the debounce
// window). It never blocks; triggers while a round is pending collapse into
// it. Without a running Watch it does nothing.
func (s *Syncer) Trigger() {
	select {
	case s.trigger <- struct{}{}:
	default:
	}
}

// Watch runs rounds until ctx ends: one at once, then one after each change
// announced by a side that implements destination.Notifier or by Trigger
// (a burst of changes within AutoSync.Debounce makes one round), and a
// reconcile round every AutoSync.Interval (with jitter) that catches
// changes made out of band. Rounds never overlap, with each other or with
// Run. A failed round is retried after a backoff that doubles up to
// AutoSync.MaxBackoff; a round that left keys to retry (they changed while
// it ran) is followed by another after AutoSync.MinBackoff. The status
// records show each round as for Run. Every wait (debounce, interval,
// backoff, StopGrace) is measured on Config.Clock.
//
// With a Config.Lock, Watch first waits for the lock and runs rounds only
// while it holds it; if the lock is lost, it stops and waits for it again.
// A Lock that is a state.Spreader may ask for the lock to go to another
// holder (state.Spreader.HandOff): Watch then releases it after the round
// in flight, if any, and waits for it again.
//
// Watch returns context.Cause(ctx) when ctx ends, ErrAutoSyncDisabled when
// auto-sync is disabled, and ErrWatching when another Watch of this Syncer
// runs.
func (s *Syncer) Watch(ctx context.Context) error {
	if s.cfg.AutoSync.Disabled {
		return ErrAutoSyncDisabled
	}
	if !s.watching.CompareAndSwap(false, true) {
		return ErrWatching
	}
	defer s.watching.Store(false)
	for {
		if s.cfg.Lock == nil {
			s.watchLoop(ctx, nil, nil)
			return context.Cause(ctx)
		}
		held, release, err := s.cfg.Lock.Acquire(ctx, s.cfg.Name)
		if err != nil {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			s.log.WarnContext(ctx, "secretsync: cannot take the sync's lock", "sync", s.cfg.Name, "error", err)
			if !sleep(ctx, s.clock, s.backoff(1)) {
				return context.Cause(ctx)
			}
			continue
		}
		s.log.InfoContext(ctx, "secretsync: took the sync's lock; running rounds", "sync", s.cfg.Name)
		var handOff <-chan struct{}
		if sp, ok := s.cfg.Lock.(state.Spreader); ok {
			handOff = sp.HandOff(s.cfg.Name)
		}
		s.setLeader(held)
		handed := s.watchLoop(ctx, held, handOff)
		s.setLeader(nil)
		release()
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if handed {
			s.log.InfoContext(ctx, "secretsync: handed the sync's lock over to the preferred holder; standing by", "sync", s.cfg.Name)
			continue
		}
		s.log.WarnContext(ctx, "secretsync: lost the sync's lock; standing by", "sync", s.cfg.Name)
	}
}

// watchLoop runs rounds until ctx or held (the lock, when not nil) ends,
// or handOff is closed, which it checks only between rounds; it reports
// whether it returned for handOff. A round in flight when ctx ends may
// finish, for up to AutoSync.StopGrace; one in flight when held ends is
// cancelled at once.
func (s *Syncer) watchLoop(outer, held context.Context, handOff <-chan struct{}) bool {
	ctx := outer
	if held != nil {
		var stop func() bool
		ctx, stop = withDone(outer, held)
		defer stop()
	}
	// The sides' notifications are received here, on Watch's own
	// goroutine: an idle watched sync costs one goroutine.
	var srcChanges, dstChanges <-chan struct{}
	if n, ok := s.src.(destination.Notifier); ok {
		srcChanges = n.Notify(ctx)
	}
	if n, ok := s.dst.(destination.Notifier); ok && any(s.dst) != any(s.src) {
		dstChanges = n.Notify(ctx)
	}

	// Every wait is on s.clock (Config.Clock).
	wake := newAlarm(s.clock)
	defer wake.halt()
	wake.ring() // the first round runs at once
	next := s.clock.Now()
	failures := 0
	var retryAt time.Time // no round before this after a failure
	schedule := func(at time.Time) {
		if at.Before(retryAt) {
			at = retryAt
		}
		if at.Before(next) {
			next = at
			wake.reset(next.Sub(s.clock.Now()))
		}
	}
	for {
		select {
		case <-ctx.Done():
			return false
		case <-handOff:
			return true
		case <-srcChanges:
			s.markPending(ctx, "change announced")
			schedule(s.clock.Now().Add(s.auto.Debounce))
			continue
		case <-dstChanges:
			s.markPending(ctx, "change announced")
			schedule(s.clock.Now().Add(s.auto.Debounce))
			continue
		case <-s.trigger:
			s.markPending(ctx, "triggered")
			schedule(s.clock.Now().Add(s.auto.Debounce))
			continue
		case <-wake.c:
			if now := s.clock.Now(); now.Before(next) {
				wake.reset(next.Sub(now)) // a late firing of a replaced wait
				continue
			}
		}
		rep, err := s.runGraceful(outer, held)
		if ctx.Err() != nil {
			return false
		}
		now := s.clock.Now()
		switch {
		case err == nil && rep != nil && rep.Totals.Retries > 0:
			// Keys changed while the round ran: read them again soon,
			// without counting a failure.
			failures, retryAt = 0, time.Time{}
			next = now.Add(s.auto.MinBackoff)
		case err != nil:
			failures++
			retryAt = now.Add(s.backoff(failures))
			next = retryAt
			s.log.WarnContext(ctx, "secretsync: round failed; retrying after backoff", "sync", s.cfg.Name,
				"failures", failures, "retry_in", retryAt.Sub(now).String(), "error", err)
		default:
			failures, retryAt = 0, time.Time{}
			next = now.Add(s.reconcileIn())
		}
		wake.reset(next.Sub(now))
	}
}

// runGraceful runs one round that outlives outer by up to StopGrace, and
// ends at once with held.
func (s *Syncer) runGraceful(outer, held context.Context) (*Report, error) {
	rctx, cancel := context.WithCancelCause(context.WithoutCancel(outer))
	defer cancel(nil)
	stopOuter := context.AfterFunc(outer, func() {
		stop := s.clock.AfterFunc(s.auto.StopGrace, func() { cancel(context.Cause(outer)) })
		context.AfterFunc(rctx, func() { stop() })
	})
	defer stopOuter()
	if held != nil {
		stopHeld := context.AfterFunc(held, func() { cancel(lockLost(held)) })
		defer stopHeld()
	}
	return s.Run(rctx)
}

// never is how far "no reconcile" pushes the next round.
const never = 100 * 365 * 24 * time.Hour

func (s *Syncer) reconcileIn() time.Duration {
	if s.auto.Interval < 0 {
		return never
	}
	f := 1 + s.auto.Jitter*(2*rand.Float64()-1)
	return time.Duration(float64(s.auto.Interval) * f)
}

// backoff returns the wait after n failures in a row: MinBackoff doubled
// n-1 times, up to MaxBackoff, less up to 20% of jitter.
func (s *Syncer) backoff(n int) time.Duration {
	d := s.auto.MinBackoff
	for i := 1; i < n && d < s.auto.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, s.auto.MaxBackoff)
	return d - time.Duration(rand.Float64()*0.2*float64(d))
}

// markPending records that a round is scheduled, unless the latest record
// says so already. The record is kept in memory only (Status shows it while
// the store holds the state it was made for), so that an announced change
// adds no store write: the round that follows saves what it changes. It is
// best effort: a failure to read the state is logged.
func (s *Syncer) markPending(ctx context.Context, why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.store.Load(ctx, s.cfg.Name)
	switch {
	case errors.Is(err, state.ErrNotFound):
		st = &state.State{}
	case err != nil:
		s.log.WarnContext(ctx, "secretsync: cannot record a pending round", "sync", s.cfg.Name, "error", err)
		return
	}
	s.withUnsaved(st)
	if st.Sync != nil && st.Sync.Status == state.Pending {
		return
	}
	s.setUnsaved(OpSync, st.Revision, &state.Record{Status: state.Pending, Message: "round scheduled: " + why, Time: s.now()})
}
