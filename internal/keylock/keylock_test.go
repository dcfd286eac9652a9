package keylock

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// size returns how many keys l holds an entry for.
func (l *Map) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

func mustLock(t *testing.T, l *Map, key string) func() {
	t.Helper()
	unlock, err := l.Lock(context.Background(), key)
	if err != nil {
		t.Fatalf("Lock(%q) = %v", key, err)
	}
	return unlock
}

// Holders of one key take turns: a counter per key, incremented under the
// key's lock without other synchronization, ends exact (and -race sees no
// race).
func TestOneHolderPerKey(t *testing.T) {
	var l Map
	const goroutines, rounds = 8, 200
	counts := map[string]*int{"a": new(int), "b": new(int)} // only read concurrently
	var wg sync.WaitGroup
	for g := range goroutines {
		key := []string{"a", "b"}[g%2]
		wg.Go(func() {
			for range rounds {
				unlock, err := l.Lock(context.Background(), key)
				if err != nil {
					t.Error(err)
					return
				}
				n := *counts[key]
				time.Sleep(time.Microsecond) // let another holder in, if the lock would
				*counts[key] = n + 1
				unlock()
			}
		})
	}
	wg.Wait()
	if want := goroutines / 2 * rounds; *counts["a"] != want || *counts["b"] != want {
		t.Fatalf("counts a=%d b=%d, want %d each", *counts["a"], *counts["b"], want)
	}
	if n := l.size(); n != 0 {
		t.Fatalf("%d entries left after every unlock", n)
	}
}

// Different keys do not wait for each other.
func TestKeysIndependent(t *testing.T) {
	var l Map
	unlockA := mustLock(t, &l, "a")
	defer unlockA()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	unlockB, err := l.Lock(ctx, "b")
	if err != nil {
		t.Fatalf("Lock(b) while a is held = %v", err)
	}
	unlockB()
	if n := l.size(); n != 1 {
		t.Fatalf("%d entries while only a is held, want 1", n)
	}
}

// A waiter gets the lock once its holder frees it, not before.
func TestWaiterGetsLockAfterUnlock(t *testing.T) {
	var l Map
	unlock := mustLock(t, &l, "k")
	got := make(chan func())
	go func() {
		u, err := l.Lock(context.Background(), "k")
		if err != nil {
			t.Errorf("waiter: %v", err)
		}
		got <- u
	}()
	select {
	case <-got:
		t.Fatal("the waiter took a held lock")
	case <-time.After(20 * time.Millisecond):
	}
	unlock()
	select {
	case u := <-got:
		u()
	case <-time.After(5 * time.Second):
		t.Fatal("the waiter did not get the freed lock")
	}
	if n := l.size(); n != 0 {
		t.Fatalf("%d entries left", n)
	}
}

// A context that ends while waiting returns its error at once, without
// the lock, and leaves no entry behind once the holder is done.
func TestContextEndsWhileWaiting(t *testing.T) {
	for _, tt := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{"cancelled", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(20*time.Millisecond, cancel)
			return ctx, cancel
		}, context.Canceled},
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 20*time.Millisecond)
		}, context.DeadlineExceeded},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var l Map
			unlock := mustLock(t, &l, "k")
			ctx, cancel := tt.ctx()
			defer cancel()
			start := time.Now()
			u, err := l.Lock(ctx, "k")
			if err != tt.want || u != nil {
				t.Fatalf("Lock = %v, %v; want nil, %v", u != nil, err, tt.want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("Lock returned %v after its context ended", d)
			}
			if n := l.size(); n != 1 {
				t.Fatalf("%d entries while k is held, want 1 (the waiter's is gone)", n)
			}
			unlock()
			if n := l.size(); n != 0 {
				t.Fatalf("%d entries left", n)
			}
			// The lock is free again.
			mustLock(t, &l, "k")()
		})
	}
}

// A context that has ended already never takes the lock, even a free one.
func TestContextEndedBefore(t *testing.T) {
	var l Map
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 100 {
		if u, err := l.Lock(ctx, "k"); !errors.Is(err, context.Canceled) || u != nil {
			t.Fatalf("Lock with a cancelled context = %v, %v", u != nil, err)
		}
	}
	if n := l.size(); n != 0 {
		t.Fatalf("%d entries left", n)
	}
}
