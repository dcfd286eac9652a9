package main

import (
	"context"
	"errors"
	gosync "sync"
	"time"

	"github.com/secretsync/secretsync/state"
	"github.com/secretsync/secretsync/sync"
)

// lockRole is what this replica is for a sync whose rounds take a lock.
type lockRole uint8

const (
	// roleStarting: Watch has not asked for the lock yet.
	roleStarting lockRole = iota
	// roleLeader: this replica holds the lock and runs the rounds.
	roleLeader
	// roleStandby: another replica holds the lock; this one waits for it.
	roleStandby
	// roleLockFailed: asking for the lock failed (the store could not be
	// reached); Watch asks again after a backoff.
	roleLockFailed
)

// lockState is a sync's role, with the failure when it is roleLockFailed.
type lockState struct {
	role lockRole
	msg  string // one line, for roleLockFailed
	// failingSince is when asking for the lock first failed in a row.
	failingSince time.Time
}

// trackedLock is the state store's lock as the syncs' Watch takes it,
// remembering for each sync whether this replica leads it, stands by while
// another replica does, or cannot reach the lock. /readyz reads it: a
// standby replica is ready for that sync. Operations other than Watch
// (a manual round, a resolution) take the lock with TryAcquire, which
// passes through. It is safe for concurrent use.
type trackedLock struct {
	state.Lock

	mu    gosync.Mutex
	syncs map[string]lockState
}

var _ state.Lock = (*trackedLock)(nil)

func newTrackedLock(l state.Lock) *trackedLock {
	return &trackedLock{Lock: l, syncs: map[string]lockState{}}
}

func (l *trackedLock) set(name string, st lockState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if st.role == roleLockFailed {
		if prev := l.syncs[name]; prev.role == roleLockFailed {
			st.failingSince = prev.failingSince
		}
	}
	l.syncs[name] = st
}

// state returns the role of this replica for the named sync.
func (l *trackedLock) state(name string) lockState {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.syncs[name]
}

// Acquire tries the lock once, to tell a lock held by another replica
// (standby) from one that cannot be reached, then waits for it.
func (l *trackedLock) Acquire(ctx context.Context, name string) (context.Context, func(), error) {
	held, release, err := l.Lock.TryAcquire(ctx, name)
	if errors.Is(err, state.ErrHeld) {
		l.set(name, lockState{role: roleStandby})
		held, release, err = l.Lock.Acquire(ctx, name)
	}
	if err != nil {
		if ctx.Err() == nil {
			l.set(name, lockState{role: roleLockFailed, msg: sync.OneLine(err), failingSince: time.Now()})
		}
		return nil, nil, err
	}
	l.set(name, lockState{role: roleLeader})
	lost := func() { l.set(name, lockState{role: roleStarting}) }
	stop := context.AfterFunc(held, lost)
	return held, func() {
		release()
		if stop() {
			lost()
		}
	}, nil
}
