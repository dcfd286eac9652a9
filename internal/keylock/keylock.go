// Package keylock serializes work on one key among the goroutines of one
// process: the destinations use it so that two of their own writers of a
// key never both pass the read before either writes.
package keylock

import (
	"context"
	"sync"
)

// Map is a set of locks, one per key. A key's lock exists only while it is
// held or waited for, so a Map holds no memory for keys no longer in use.
// The zero value is ready to use. A Map is safe for concurrent use and must
// not be copied after first use.
type Map struct {
	mu sync.Mutex
	m  map[string]*entry
}

type entry struct {
	sem   chan struct{} // holds a value while the lock is held
	users int           // the holder and the waiters
}

// Lock waits until key's lock is free, takes it, and returns the function
// that frees it, which must be called exactly once. When ctx ends first,
// or has ended already, Lock returns ctx.Err() without taking the lock.
func (l *Map) Lock(ctx context.Context, key string) (unlock func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]*entry{}
	}
	e := l.m[key]
	if e == nil {
		e = &entry{sem: make(chan struct{}, 1)}
		l.m[key] = e
	}
	e.users++
	l.mu.Unlock()
	release := func() {
		l.mu.Lock()
		if e.users--; e.users == 0 {
			delete(l.m, key)
		}
		l.mu.Unlock()
	}
	select {
	case e.sem <- struct{}{}:
		return func() { <-e.sem; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}
