package state

import (
	"context"
	"errors"
	"fmt"
	gosync "sync"
)

// Lock gives one holder at a time the right to run a sync's rounds, across
// the processes that share a Store. A sync with a Lock takes it for every
// round, and its Watch holds it for as long as it runs rounds.
//
// Implementations must be safe for concurrent use.
type Lock interface {
	// Acquire blocks until the lock of the named sync is held, or ctx ends.
	// The returned context ends when the lock is lost (for example when
	// its lease could not be renewed in time) or released; work done
	// under the lock must stop then. When it is lost, context.Cause(held)
	// is an error wrapping ErrLockLost. release gives the lock up; it may
	// be called more than once.
	Acquire(ctx context.Context, name string) (held context.Context, release func(), err error)
	// TryAcquire is like Acquire but returns at once with an error for
	// which errors.Is(err, ErrHeld) holds when another holder has the lock.
	TryAcquire(ctx context.Context, name string) (held context.Context, release func(), err error)
}

// A Spreader is a Lock that spreads the syncs over the processes sharing
// it: for each sync one holder is preferred, and the others take its lock
// only when the preferred one does not. When the preferred holder changes
// (a process joined, say) while another holds the lock, the holder is
// asked, through HandOff, to give the lock up between rounds, never in the
// middle of one; sync.Syncer.Watch does so and then waits for the lock
// again. It is an optional interface, detected by type assertion: a Lock
// without it is held for as long as its holder runs.
//
// Implementations must be safe for concurrent use.
type Spreader interface {
	Lock
	// HandOff returns a channel that is closed when this holder should
	// release the named lock, which it took with Acquire and holds,
	// because another holder is preferred for it. Releasing it is safe at
	// any time; until then the lock stays held as usual. It returns nil
	// (a channel that is never closed) when the lock is not held through
	// Acquire.
	HandOff(name string) <-chan struct{}
}

// Errors of a Lock.
var (
	// ErrHeld reports a lock held by another holder.
	ErrHeld = errors.New("state: lock held by another holder")
	// ErrLockLost reports a lock lost while it was held: its lease could
	// not be renewed in time, or another holder took it over. The context
	// a Lock gives ends with a cause wrapping it (context.Cause), and an
	// operation of the sync engine cut short by it returns an error
	// wrapping it.
	ErrLockLost = errors.New("state: lock lost")
)

// MemoryLock is an in-process Lock, for tests and for several Syncers of
// one sync in one process. The zero value is ready to use.
type MemoryLock struct {
	mu      gosync.Mutex
	holders map[string]chan struct{} // closed on release
}

// NewMemoryLock returns an in-process Lock.
func NewMemoryLock() *MemoryLock { return &MemoryLock{} }

var _ Lock = (*MemoryLock)(nil)

// Acquire blocks until the named lock is free or ctx ends.
func (l *MemoryLock) Acquire(ctx context.Context, name string) (context.Context, func(), error) {
	for {
		held, release, err := l.TryAcquire(ctx, name)
		if !errors.Is(err, ErrHeld) {
			return held, release, err
		}
		l.mu.Lock()
		done := l.holders[name]
		l.mu.Unlock()
		if done == nil {
			continue
		}
		select {
		case <-ctx.Done():
			return nil, nil, context.Cause(ctx)
		case <-done:
		}
	}
}

// TryAcquire takes the named lock if it is free.
func (l *MemoryLock) TryAcquire(ctx context.Context, name string) (context.Context, func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.holders[name]; ok {
		return nil, nil, fmt.Errorf("%w: %q", ErrHeld, name)
	}
	if l.holders == nil {
		l.holders = make(map[string]chan struct{})
	}
	done := make(chan struct{})
	l.holders[name] = done
	held, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var once gosync.Once
	release := func() {
		once.Do(func() {
			cancel()
			l.mu.Lock()
			delete(l.holders, name)
			l.mu.Unlock()
			close(done)
		})
	}
	return held, release, nil
}
