package main

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/secretsync/secretsync/state"
)

// spreadingLock is a state.Spreader whose Acquire waits until ctx ends
// (another replica is preferred) and whose TryAcquire is counted.
type spreadingLock struct {
	*state.MemoryLock
	handOff chan struct{}
	tries   atomic.Int32
}

func (l *spreadingLock) Acquire(ctx context.Context, name string) (context.Context, func(), error) {
	<-ctx.Done()
	return nil, nil, context.Cause(ctx)
}

func (l *spreadingLock) TryAcquire(ctx context.Context, name string) (context.Context, func(), error) {
	l.tries.Add(1)
	return l.MemoryLock.TryAcquire(ctx, name)
}

func (l *spreadingLock) HandOff(string) <-chan struct{} { return l.handOff }

// With a lock that spreads the syncs, the tracked lock passes HandOff
// through (so that Watch hands the lock over), never probes with
// TryAcquire (which would take back a lock just handed over), and counts
// the replica as standing by once it has waited.
func TestTrackedSpreadingLock(t *testing.T) {
	inner := &spreadingLock{MemoryLock: state.NewMemoryLock(), handOff: make(chan struct{})}
	l := newTrackedLock(inner)
	if l.HandOff("s") != (<-chan struct{})(inner.handOff) {
		t.Fatal("HandOff is not passed through")
	}
	if newTrackedLock(state.NewMemoryLock()).HandOff("s") != nil {
		t.Fatal("HandOff of a lock that does not spread is not nil")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _, _ = l.Acquire(ctx, "s")
	}()
	deadline := time.Now().Add(10 * time.Second)
	for l.state("s").role != roleStandby {
		if time.Now().After(deadline) {
			t.Fatalf("role %v, want standby", l.state("s").role)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if n := inner.tries.Load(); n != 0 {
		t.Fatalf("the lock was probed with TryAcquire %d times", n)
	}
}
