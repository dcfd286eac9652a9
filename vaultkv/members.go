package vaultkv

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	gosync "sync"
	"time"

	"github.com/secretsync/secretsync/internal/rendezvous"
)

// This file is the membership of the Locks that share a Store: each Lock
// that waits for or holds a lock through Acquire keeps a lease at
// <Path>/members/<member>, and the live members spread the syncs among
// themselves by rendezvous hashing (see Lock).

// pruneAfter is how many TTLs a member's lease may stay unchanged before
// another member deletes it (a replica that died without leaving).
const pruneAfter = 5

// membership is a Lock's view of the members and its own lease.
type membership struct {
	// joinMu serialises the writing of the lease when joining with its
	// deletion when leaving.
	joinMu gosync.Mutex

	mu      gosync.Mutex
	refs    int  // Acquire calls in progress and locks they took, not yet released
	running bool // the lease is kept by a goroutine
	ready   bool // running, and the first lease written and members read
	stop    chan struct{}
	done    chan struct{}
	version int // of this member's lease
	live    []string
	others  map[string]observation
	gen     uint64        // counts the changes of live
	changed chan struct{} // closed and replaced when live changes
}

var memberRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// memberID returns the name of holder's lease: holder itself when it is a
// plain path segment, else a hash of it.
func memberID(holder string) string {
	if memberRE.MatchString(holder) && holder != "." && holder != ".." {
		return holder
	}
	sum := sha256.Sum256([]byte(holder))
	return hex.EncodeToString(sum[:8])
}

func (l *Lock) memberData(id string) string { return path.Join("members", id) }

func (l *Lock) memberMeta(id string) string {
	return path.Join(l.store.mount, kindMetadata, l.store.path, "members", id)
}

// join counts one more user of the membership and, for the first, writes
// the lease, reads the other members and starts renewing. Failures are
// left to the renewals that follow: until the members are known, this
// Lock prefers itself for every sync, as a Lock did before membership.
func (l *Lock) join(ctx context.Context) {
	m := &l.m
	m.mu.Lock()
	m.refs++
	ready := m.ready
	m.mu.Unlock()
	if ready {
		return
	}
	// Wait for a join in progress, so that no Acquire judges preference
	// before the members are read.
	m.joinMu.Lock()
	defer m.joinMu.Unlock()
	m.mu.Lock()
	if m.running {
		m.mu.Unlock()
		return
	}
	m.running = true
	m.stop, m.done = make(chan struct{}), make(chan struct{})
	stop, done := m.stop, m.done
	m.mu.Unlock()
	jctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.ttl/2)
	defer cancel()
	if l.renewMember(jctx) == nil {
		_ = l.refreshMembers(jctx)
	}
	m.mu.Lock()
	m.ready = m.running
	m.mu.Unlock()
	go l.keepMember(stop, done)
}

// unjoin counts one user of the membership less; the lease is deleted at
// the next renewal that finds none.
func (l *Lock) unjoin() {
	l.m.mu.Lock()
	l.m.refs--
	l.m.mu.Unlock()
}

// keepMember renews the lease and reads the members every TTL/3 until
// stop, or until the membership has no user, when it leaves.
func (l *Lock) keepMember(stop, done chan struct{}) {
	defer close(done)
	tick := time.NewTicker(l.ttl / 3)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		m := &l.m
		m.mu.Lock()
		if m.refs == 0 {
			m.running, m.ready = false, false
			m.mu.Unlock()
			m.joinMu.Lock()
			_ = l.leave()
			m.joinMu.Unlock()
			return
		}
		m.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), l.ttl/3)
		if l.renewMember(ctx) == nil {
			_ = l.refreshMembers(ctx)
		}
		cancel()
	}
}

// leave deletes the lease, with its history, and forgets the members.
func (l *Lock) leave() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := remove(ctx, l.store.conn, l.memberMeta(l.member))
	m := &l.m
	m.mu.Lock()
	m.version = 0
	m.others = nil
	m.setLive(nil)
	m.mu.Unlock()
	if err != nil {
		return fmt.Errorf("vaultkv: lock members: delete the lease of %s: %w", l.member, err)
	}
	return nil
}

// Close makes this holder leave the members at once: its lease is deleted,
// so the other replicas take its preferred syncs over as their own without
// waiting for the lease to expire. Locks it holds stay held until
// released; a later Acquire joins again. Without Close, a holder leaves
// about TTL/3 after its last Acquire ended and its last lock was released.
// Close reports a failure to delete the lease, which then expires.
func (l *Lock) Close() error {
	m := &l.m
	m.joinMu.Lock()
	defer m.joinMu.Unlock()
	m.mu.Lock()
	if !m.running {
		m.mu.Unlock()
		return nil
	}
	m.running, m.ready = false, false
	stop, done := m.stop, m.done
	m.mu.Unlock()
	close(stop)
	<-done
	return l.leave()
}

// renewMember writes this member's lease, check-and-set against the
// version it wrote last; when the lease was deleted or rewritten meanwhile
// (pruned by a member that thought it dead), it writes over what is there.
func (l *Lock) renewMember(ctx context.Context) error {
	lease := map[string]any{"holder": l.holder, "ttl_ms": l.ttl.Milliseconds(), "renewed": time.Now().UTC().Format(time.RFC3339Nano)}
	p := l.memberData(l.member)
	l.m.mu.Lock()
	cas := l.m.version
	l.m.mu.Unlock()
	v, err := l.store.write(ctx, p, lease, cas)
	if errors.Is(err, errCAS) {
		var current int
		if _, current, err = l.store.read(ctx, p); err == nil {
			v, err = l.store.write(ctx, p, lease, current)
		}
	}
	if err != nil {
		return err
	}
	l.m.mu.Lock()
	l.m.version = v
	l.m.mu.Unlock()
	return nil
}

// refreshMembers lists and reads the other members' leases. A member is
// live while its lease's version has changed within its TTL, by this
// process's clock (as for the locks, no two clocks are compared); one
// seen for the first time is taken as live. A lease unchanged for
// pruneAfter TTLs is deleted. On a failure the view stays as it was.
func (l *Lock) refreshMembers(ctx context.Context) error {
	names, err := list(ctx, l.store.conn, path.Join(l.store.mount, kindMetadata, l.store.path, "members"))
	if err != nil {
		return fmt.Errorf("vaultkv: lock members: %w", err)
	}
	var pruneErr error
	now := time.Now()
	live := []string{l.member}
	seen := map[string]observation{}
	l.m.mu.Lock()
	prev := l.m.others
	l.m.mu.Unlock()
	for _, id := range names {
		if id == l.member || !memberRE.MatchString(id) {
			continue
		}
		data, version, err := l.store.read(ctx, l.memberData(id))
		if err != nil {
			return fmt.Errorf("vaultkv: lock members: %w", err)
		}
		o, ok := prev[id]
		if !ok || o.version != version {
			o = observation{version: version, since: now}
		}
		seen[id] = o
		ttl := time.Duration(intOf(data["ttl_ms"])) * time.Millisecond
		if ttl <= 0 {
			ttl = l.ttl
		}
		holder, _ := data["holder"].(string)
		switch {
		case now.Sub(o.since) >= pruneAfter*ttl:
			if err := remove(ctx, l.store.conn, l.memberMeta(id)); err != nil && pruneErr == nil {
				pruneErr = fmt.Errorf("vaultkv: lock members: delete the lease of %s: %w", id, err)
			}
		case holder != "" && now.Sub(o.since) < ttl:
			live = append(live, id)
		}
	}
	slices.Sort(live)
	l.m.mu.Lock()
	defer l.m.mu.Unlock()
	if !l.m.running {
		return pruneErr // left meanwhile
	}
	l.m.others = seen
	l.m.setLive(live)
	return pruneErr
}

// setLive records the live members, announcing a change. m.mu is held.
func (m *membership) setLive(live []string) {
	if m.changed == nil {
		m.changed = make(chan struct{})
	}
	if slices.Equal(live, m.live) {
		return
	}
	m.live = live
	m.gen++
	close(m.changed)
	m.changed = make(chan struct{})
}

// preferred reports whether this holder is the preferred one for the
// named sync among the live members (always, while it knows none), with
// the generation of the members it judged by and a channel closed when
// they change.
func (l *Lock) preferred(name string) (bool, uint64, <-chan struct{}) {
	m := &l.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.changed == nil {
		m.changed = make(chan struct{})
	}
	pref := len(m.live) == 0 || rendezvous.Pick(name, m.live) == l.member
	return pref, m.gen, m.changed
}

// Members renews this holder's membership lease and reads the others'
// now, as is otherwise done every TTL/3, and returns the live members,
// itself included, sorted: the holders' names when these are plain path
// segments (letters, digits, '.', '_', '-'), else hashes of them. It
// returns nil and no error while this Lock is not a member (no Acquire in
// progress, no lock taken with Acquire held). It is for operators and
// tests; errors name the request that failed.
func (l *Lock) Members(ctx context.Context) ([]string, error) {
	l.m.mu.Lock()
	running := l.m.running
	l.m.mu.Unlock()
	if !running {
		return nil, nil
	}
	if err := l.renewMember(ctx); err != nil {
		return nil, fmt.Errorf("vaultkv: lock members: renew the lease of %s: %w", l.member, err)
	}
	err := l.refreshMembers(ctx)
	l.m.mu.Lock()
	defer l.m.mu.Unlock()
	return slices.Clone(l.m.live), err
}
