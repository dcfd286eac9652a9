package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	gosync "sync"
	"time"

	"github.com/secretsync/secretsync/audit"
	"github.com/secretsync/secretsync/connection"
	"github.com/secretsync/secretsync/state"
	"github.com/secretsync/secretsync/sync"
	"github.com/secretsync/secretsync/vaultkv"
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

var _ state.Spreader = (*trackedLock)(nil)

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

// standbyAfter is how long a spreading lock's Acquire waits before the
// replica counts as standing by for the sync.
const standbyAfter = time.Second

// Acquire tries the lock once, to tell a lock held by another replica
// (standby) from one that cannot be reached, then waits for it. A lock
// that spreads the syncs over the replicas (state.Spreader, as the Vault
// store's) decides itself which replica takes a free lock, which a
// TryAcquire would take at once: its Acquire, which returns at once when
// the lock cannot be read, is called directly, and the replica counts as
// standing by once it has waited standbyAfter.
func (l *trackedLock) Acquire(ctx context.Context, name string) (context.Context, func(), error) {
	var (
		held    context.Context
		release func()
		err     error
	)
	if _, ok := l.Lock.(state.Spreader); ok {
		var mu gosync.Mutex
		returned := false
		t := time.AfterFunc(standbyAfter, func() {
			mu.Lock()
			defer mu.Unlock()
			if !returned {
				l.set(name, lockState{role: roleStandby})
			}
		})
		held, release, err = l.Lock.Acquire(ctx, name)
		mu.Lock()
		returned = true
		mu.Unlock()
		t.Stop()
	} else {
		held, release, err = l.Lock.TryAcquire(ctx, name)
		if errors.Is(err, state.ErrHeld) {
			l.set(name, lockState{role: roleStandby})
			held, release, err = l.Lock.Acquire(ctx, name)
		}
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

// HandOff passes state.Spreader's HandOff through, so that Watch hands a
// spreading lock over between rounds; nil for a lock that does not spread.
func (l *trackedLock) HandOff(name string) <-chan struct{} {
	if sp, ok := l.Lock.(state.Spreader); ok {
		return sp.HandOff(name)
	}
	return nil
}

// processLock is the lock of a Vault state store that a daemon with a
// registry keeps for its whole life. The registry's associations and every
// generation's syncs take their locks through it, so that the process is
// one member of the replicas that spread the syncs among themselves
// (vaultkv.Lock keeps one membership lease per Lock): with a Lock each, the
// process would be two members, and the syncs that hash to one of them
// would wait for the other's fallback. It has a connection of its own, made
// like the registry's, so that it outlives reloads, which keep the state
// block and the registry's connection unchanged while a registry runs.
type processLock struct {
	conn *connection.Conn
	lock *vaultkv.Lock
}

// openProcessLock opens the lock of cfg's Vault state store over a new
// connection of the registry's.
func openProcessLock(ctx context.Context, cfg *Config, log *slog.Logger, auditor audit.Auditor) (*processLock, error) {
	sc := cfg.State
	cc := cfg.conns[cfg.Registry.Connection]
	conn, err := connection.New(ctx, connConfig(cc), &connection.Options{Name: cc.Name, Auditor: auditor, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("state: lock: connection %q: %w", cc.Name, err)
	}
	st, err := vaultkv.NewStore(ctx, conn, &vaultkv.StoreOptions{Mount: sc.Mount, Path: sc.Path})
	if err != nil {
		_ = conn.Close(ctx)
		return nil, fmt.Errorf("state: %w", err)
	}
	ttl, _ := time.ParseDuration(sc.LockTTL) // validated
	l, err := st.NewLock(&vaultkv.LockOptions{TTL: ttl})
	if err != nil {
		_ = conn.Close(ctx)
		return nil, fmt.Errorf("state: %w", err)
	}
	return &processLock{conn: conn, lock: l}, nil
}

// close leaves the members and closes the connection.
func (p *processLock) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = p.lock.Close()
	_ = p.conn.Close(ctx)
}
