package sync_test

import (
	"context"
	"errors"
	gosync "sync"
	"testing"
	"time"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/state"
	"github.com/secretsync/secretsync/sync"
)

// spreader is a state.Spreader over a MemoryLock whose HandOff channel the
// test closes; Acquire after the first waits until ctx ends, as for a
// holder that another one is preferred to.
type spreader struct {
	*state.MemoryLock
	handOff chan struct{}

	mu       gosync.Mutex
	acquires int
	releases int
}

var _ state.Spreader = (*spreader)(nil)

func (l *spreader) Acquire(ctx context.Context, name string) (context.Context, func(), error) {
	l.mu.Lock()
	l.acquires++
	n := l.acquires
	l.mu.Unlock()
	if n > 1 {
		<-ctx.Done()
		return nil, nil, context.Cause(ctx)
	}
	held, release, err := l.MemoryLock.Acquire(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	return held, func() {
		l.mu.Lock()
		l.releases++
		l.mu.Unlock()
		release()
	}, nil
}

func (l *spreader) HandOff(string) <-chan struct{} { return l.handOff }

func (l *spreader) counts() (acquires, releases int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.acquires, l.releases
}

// TestWatchHandsOff: when a state.Spreader asks for the lock during a
// round, Watch lets the round finish under the lock, then releases the
// lock and waits for it again.
func TestWatchHandsOff(t *testing.T) {
	inRound := make(chan struct{})
	gate := make(chan struct{})
	var once gosync.Once
	dst := memory.NewWithOptions(nil, &memory.Options{BeforeApply: func(context.Context, destination.Change) error {
		once.Do(func() { close(inRound) })
		<-gate
		return nil
	}})
	lock := &spreader{MemoryLock: state.NewMemoryLock(), handOff: make(chan struct{})}
	var mu gosync.Mutex
	var rounds []error
	s, err := sync.New(sync.Config{Name: "h", Source: memory.New(map[string]string{"A": "1"}), Destination: dst, Lock: lock,
		AutoSync: sync.AutoSync{Interval: -1},
		OnRound:  func(_ *sync.Report, err error) { mu.Lock(); rounds = append(rounds, err); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	watch(t, s)
	<-inRound
	close(lock.handOff)
	time.Sleep(50 * time.Millisecond)
	if _, _, err := lock.TryAcquire(context.Background(), "h"); !errors.Is(err, state.ErrHeld) {
		t.Fatalf("the lock was given up in the middle of a round: TryAcquire = %v", err)
	}
	close(gate)
	eventually(t, "the lock to be handed off", func() bool {
		acquires, releases := lock.counts()
		return acquires == 2 && releases == 1
	})
	mu.Lock()
	defer mu.Unlock()
	if len(rounds) != 1 || rounds[0] != nil {
		t.Fatalf("rounds %v, want the one round to succeed", rounds)
	}
	if dst.Len() != 1 {
		t.Fatalf("the round wrote %d keys, want 1", dst.Len())
	}
	_, release, err := lock.TryAcquire(context.Background(), "h")
	if err != nil {
		t.Fatalf("after the hand-off the lock is not free: %v", err)
	}
	release()
}
