package registry

import (
	"context"
	"errors"
	gosync "sync"
	"time"

	"github.com/secretsync/secretsync/sync"
)

// Watch keeps every association syncing until ctx ends: it runs the
// Watch of each association's sync.Syncer (see sync.Syncer.Watch), which
// runs a round at once, a round every Options.PollInterval, and a round
// soon after each change that a source implementing destination.Notifier
// announces. Associations set while Watch runs are watched too; one that
// is removed, or whose destination is deleted, stops being watched
// before its unsync. When a destination's Config or an association's
// options change, its watch stops and starts again on the new sides.
//
// Every round, those Watch runs included, updates the association's
// status and UpdatedAt (see SyncStatus); a round that fails is retried
// after a backoff, as sync.Syncer.Watch does. When the associated secret
// is gone from Vault (deleted or destroyed: the source reads without an
// error and holds no key), a round would empty the destination, which
// the mass-deletion guard refuses; the association then unsyncs instead,
// with a round run with sync.Force, and records StatusUnsynced with a
// message that says the secret was deleted. A failure to read the
// secret never unsyncs, and neither does a mount disabled (or a path made
// unreadable) under a source opened before, which reads as empty: the
// secret is taken for deleted only when a source opened anew (opening
// checks the mount) reads it without an error and finds it empty.
//
// Watch returns context.Cause(ctx) once ctx has ended and every watch it
// started has returned (a round in flight may finish first, for up to
// sync.DefaultStopGrace). It returns ErrWatching at once when another
// Watch of the registry runs. Watch is safe to call concurrently with
// every other method; Close while Watch runs closes the sides, and the
// watches open them again. With Options.Catalog, Watch also reloads the
// catalog every PollInterval (see Reload), so that what other replicas
// change arrives.
func (r *Registry) Watch(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	wg := new(gosync.WaitGroup)
	r.mu.Lock()
	if r.watchCtx != nil {
		r.mu.Unlock()
		return ErrWatching
	}
	r.watchCtx, r.watchWG = ctx, wg
	for _, d := range r.dests {
		for _, a := range d.assocs {
			r.startWatch(d, a)
		}
	}
	r.mu.Unlock()
	if r.opts.Catalog != nil {
		// What other processes save in the catalog arrives here.
		wg.Add(1)
		go func() {
			defer wg.Done()
			for sleep(ctx, r.opts.Clock, r.pollInterval()) {
				_ = r.Reload(ctx) // a failed read is tried again next time
				// Removals recorded by a replica that could not run
				// them, and not done yet (a replica died meanwhile).
				r.unsyncLater(r.pendingRemovals())
			}
		}()
	}
	<-ctx.Done()
	r.mu.Lock()
	r.watchCtx, r.watchWG = nil, nil
	r.mu.Unlock()
	wg.Wait()
	return context.Cause(ctx)
}

// startWatch starts watching the association a of d, when Watch runs.
// r.mu is held.
func (r *Registry) startWatch(d *dest, a *assoc) {
	if r.watchCtx == nil || a.removing {
		return
	}
	ctx, wg := r.watchCtx, r.watchWG
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.watchAssoc(ctx, d, a)
	}()
}

// pollInterval returns Options.PollInterval or its default.
func (r *Registry) pollInterval() time.Duration {
	if r.opts.PollInterval > 0 {
		return r.opts.PollInterval
	}
	return DefaultPollInterval
}

// Backoff of watchAssoc when the association's sync cannot be built, or
// is watched by someone else.
const (
	watchMinBackoff = time.Second
	watchMaxBackoff = 5 * time.Minute
)

// watchAssoc runs the Watch of the association's Syncer until ctx ends or
// the association is removed, building the Syncer again each time it is
// replaced (its watch is then stopped by closeSides).
func (r *Registry) watchAssoc(ctx context.Context, d *dest, a *assoc) {
	failures := 0
	backoff := func() bool {
		failures++
		wait := watchMinBackoff
		for i := 1; i < failures && wait < watchMaxBackoff; i++ {
			wait *= 2
		}
		return sleep(ctx, r.opts.Clock, min(wait, watchMaxBackoff))
	}
	for {
		a.mu.Lock()
		r.mu.Lock()
		removing := a.removing
		r.mu.Unlock()
		if a.removed || removing || ctx.Err() != nil {
			a.mu.Unlock()
			return
		}
		s, err := r.syncerOf(ctx, d, a)
		if err != nil {
			r.record(a, sync.OpSync, nil, err)
			a.mu.Unlock()
			if !backoff() {
				return
			}
			continue
		}
		wctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		a.watchStop, a.watchDone = cancel, done
		gen := a.gen
		a.mu.Unlock()
		// A Put that found a.mu held (by this loop) left the Syncer to
		// the holder: close it now if it is stale, as other operations
		// do when they end. A later Put closes it itself.
		r.mu.Lock()
		stale := gen != d.gen
		r.mu.Unlock()
		if stale {
			a.mu.Lock()
			r.dropStale(d, a)
			a.mu.Unlock()
		}

		werr := make(chan error, 1)
		go func() { werr <- s.Watch(wctx) }()
		var watchErr error
	wait:
		for {
			select {
			case watchErr = <-werr:
				break wait
			case <-a.gone:
				r.unsyncGone(wctx, a, s)
			}
		}
		cancel()
		close(done)
		if errors.Is(watchErr, sync.ErrWatching) {
			// The caller watches the Syncer itself (Registry.Syncer).
			if !backoff() {
				return
			}
			continue
		}
		failures = 0
	}
}

// stopWatch stops the watch of the association's Syncer, if one runs,
// and waits for it to return. a.mu is held.
func (a *assoc) stopWatch() {
	if a.watchStop == nil {
		return
	}
	a.watchStop()
	<-a.watchDone
	a.watchStop, a.watchDone = nil, nil
}

// onRound is the Config.OnRound of the association's Syncer: it records
// the outcome of every round but an unsync (Remove records that itself,
// once its rounds are done), and asks the watch to unsync when the secret
// is gone from Vault.
func (r *Registry) onRound(a *assoc, rep *sync.Report, err error) {
	if rep != nil && rep.Operation == sync.OpRemove {
		return
	}
	r.record(a, sync.OpSync, rep, err)
	if sourceGone(err) {
		select {
		case a.gone <- struct{}{}:
		default:
		}
	}
}

// sourceGone reports whether err is the mass-deletion guard's refusal of
// a round that read the secret without an error and found no key in it:
// the secret was deleted (or destroyed) in Vault.
func sourceGone(err error) bool {
	var me *sync.MassDeletionError
	return errors.As(err, &me) && me.Empty && me.Side == sync.SideDestination
}

// unsyncGone checks with a Plan that the secret is still gone and that
// a source opened anew finds it empty too (a KV mount that was disabled,
// or a path the token may no longer read, can read as empty through a
// source opened before: opening checks the mount), and if so runs a round
// with sync.Force, which deletes the association's entries from the
// destination. ran is false when the secret is back, or the Plan or the
// new source failed, and nothing ran.
func (r *Registry) unsyncGone(ctx context.Context, a *assoc, s *sync.Syncer) (rep *sync.Report, ran bool, err error) {
	if _, perr := s.Plan(ctx); !sourceGone(perr) {
		return nil, false, nil
	}
	if !r.confirmGone(ctx, a) {
		return nil, false, nil
	}
	rep, err = s.Run(ctx, sync.Force())
	return rep, true, err
}

// confirmGone opens the association's secret anew and reports whether it
// opens and lists without an error and holds no key.
func (r *Registry) confirmGone(ctx context.Context, a *assoc) bool {
	r.mu.Lock()
	ref := a.a.Secret
	r.mu.Unlock()
	src, err := r.opts.Source(ctx, ref.Mount, ref.Name)
	if err != nil {
		return false
	}
	defer closeIfCloser(src)
	items, err := src.List(ctx)
	return err == nil && len(items) == 0
}

// sleep waits for d on clock; it reports false when ctx ends first.
func sleep(ctx context.Context, clock sync.Clock, d time.Duration) bool {
	done := make(chan struct{})
	stop := clock.AfterFunc(d, func() { close(done) })
	defer stop()
	select {
	case <-ctx.Done():
		return false
	case <-done:
		return true
	}
}
