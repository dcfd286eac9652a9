// Package crashtest simulates a sync process that dies at a chosen instant,
// for tests of what a crash leaves behind.
//
// A [Process] counts fault points as the code under test reaches them:
// before and after each save of a state store, and after each write of a
// destination. At the chosen point the process dies: from then on nothing
// it does has any effect on the store or the sides (every call fails with
// [ErrDead] and changes nothing), exactly as if the operating system had
// killed it there. A test then starts a new "process" (a new Syncer over the
// same store and sides) and checks that it converges.
package crashtest

import (
	"context"
	"errors"
	"fmt"
	gosync "sync"

	"github.com/secretsync/secretsync/audit"
	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/state"
)

// ErrDead is what every call of a dead process returns.
var ErrDead = errors.New("crashtest: the process died")

// Process is one incarnation of a process that dies at fault point CrashAt
// (counted from 0; negative: never). It is safe for concurrent use.
type Process struct {
	crashAt int

	mu    gosync.Mutex
	steps int
	dead  bool
	where string
}

// NewProcess returns a process that dies at fault point crashAt (negative:
// never).
func NewProcess(crashAt int) *Process { return &Process{crashAt: crashAt} }

// Dead reports whether the process died.
func (p *Process) Dead() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dead
}

// Steps returns the number of fault points reached.
func (p *Process) Steps() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.steps
}

// Where names the fault point at which the process died ("" if alive).
func (p *Process) Where() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.where
}

// alive reports whether the process is still alive.
func (p *Process) alive() bool { return !p.Dead() }

// point records a fault point and reports whether the process is still
// alive after it.
func (p *Process) point(name string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dead {
		return false
	}
	if p.steps == p.crashAt {
		p.dead = true
		p.where = fmt.Sprintf("%s (fault point %d)", name, p.steps)
	}
	p.steps++
	return !p.dead
}

// Store wraps s: the process may die just before or just after each Save.
func (p *Process) Store(s state.Store) state.Store { return &store{p: p, s: s} }

type store struct {
	p *Process
	s state.Store
}

func (s *store) Load(ctx context.Context, name string) (*state.State, error) {
	if !s.p.alive() {
		return nil, ErrDead
	}
	return s.s.Load(ctx, name)
}

func (s *store) Save(ctx context.Context, name string, st *state.State) error {
	if !s.p.point("before save") {
		return ErrDead
	}
	if err := s.s.Save(ctx, name, st); err != nil {
		return err
	}
	if !s.p.point("after save") {
		return ErrDead
	}
	return nil
}

func (s *store) FingerprintKey(ctx context.Context) ([]byte, error) {
	if !s.p.alive() {
		return nil, ErrDead
	}
	return s.s.FingerprintKey(ctx)
}

// Auditor wraps a: a dead process sends no event.
func (p *Process) Auditor(a audit.Auditor) audit.Auditor {
	return audit.AuditorFunc(func(ctx context.Context, e audit.Event) error {
		if !p.alive() {
			return ErrDead
		}
		return a.Audit(ctx, e)
	})
}

// Destination wraps d: the process may die after each write. A side that is
// not atomic is written one change per call, so that the process can die
// between any two writes; an atomic side is written in one call.
func (p *Process) Destination(d destination.Destination) destination.Destination {
	return &dest{p: p, d: d}
}

type dest struct {
	p *Process
	d destination.Destination
}

func (d *dest) Capabilities() destination.Capabilities { return destination.CapabilitiesOf(d.d) }

func (d *dest) List(ctx context.Context) (map[string]destination.Secret, error) {
	if !d.p.alive() {
		return nil, ErrDead
	}
	return d.d.List(ctx)
}

func (d *dest) Apply(ctx context.Context, changes []destination.Change) ([]error, error) {
	errs := make([]error, len(changes))
	if destination.CapabilitiesOf(d.d).Atomic {
		if !d.p.alive() {
			return nil, ErrDead
		}
		res, err := d.d.Apply(ctx, changes)
		if !d.p.point("after write") {
			return nil, ErrDead
		}
		return res, err
	}
	for i, c := range changes {
		if !d.p.alive() {
			errs[i] = ErrDead
			continue
		}
		res, err := d.d.Apply(ctx, []destination.Change{c})
		switch {
		case err != nil:
			errs[i] = err
		case len(res) == 1:
			errs[i] = res[0]
		default:
			errs[i] = fmt.Errorf("crashtest: %d results for 1 change", len(res))
		}
		if !d.p.point("after write") {
			errs[i] = ErrDead
		}
	}
	return errs, nil
}

var (
	_ destination.Destination = (*dest)(nil)
	_ destination.Describer   = (*dest)(nil)
	_ state.Store             = (*store)(nil)
)
