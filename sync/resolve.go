package sync

import (
	"context"
	"fmt"

	"github.com/secretsync/secretsync/audit"
	"github.com/secretsync/secretsync/conflict"
)

// Resolve's path through a round: it runs as an operation of its own
// (OpResolve) that reads only the key resolved, plans the resolution given
// instead of the policy's (see plan), never replans, and keeps the other
// flagged conflicts as they are (see commit).

// Resolve resolves the flagged conflict of a source key deliberately:
// conflict.KeepSource makes the destination what the source is,
// conflict.KeepDestination the reverse, and conflict.UseValue writes a value
// to both sides. Writes are check-and-set against what Resolve reads, so a
// key that changes meanwhile makes Resolve fail with an error for which
// errors.Is(err, destination.ErrConflict) holds; calling it again is safe.
// It returns ErrNoConflict when the key is not flagged, ErrReadOnlySource
// when it would have to write a read-only source, and ErrDeletionDisabled
// when it would have to delete with deletion disabled.
func (s *Syncer) Resolve(ctx context.Context, key string, r conflict.Resolution) error {
	if r.Kind() == conflict.KindFlag {
		return nil
	}
	if s.wo && r.Kind() == conflict.KindKeepDestination {
		return fmt.Errorf("%w: resolving %q with %s needs the destination's value", ErrWriteOnly, key, r)
	}
	_, err := s.operate(ctx, OpResolve, options{}, &resolveReq{key: key, res: r})
	return err
}

// resolveReq is the key and resolution given to Resolve.
type resolveReq struct {
	key string
	res conflict.Resolution
}

// checkFlagged refuses to resolve a key that is not flagged in the state
// loaded; it does nothing for the other operations.
func (r *round) checkFlagged() error {
	if r.resolve == nil {
		return nil
	}
	if _, ok := r.st.Conflicts[r.resolve.key]; !ok {
		return fmt.Errorf("%w: %q", ErrNoConflict, r.resolve.key)
	}
	return nil
}

// checkResolve turns a resolution that cannot be applied into an error.
func (p *planner) checkResolve() error {
	for i := range p.items {
		it := &p.items[i]
		switch it.res.Action {
		case Conflict:
			if p.resolve.res.Kind() == conflict.KindKeepDestination || p.resolve.res.Kind() == conflict.KindUseValue {
				return fmt.Errorf("%w: resolving %q with %s writes the source", ErrReadOnlySource, it.key, p.resolve.res)
			}
			return fmt.Errorf("sync: cannot resolve %q with %s", it.key, p.resolve.res)
		case Skipped:
			return fmt.Errorf("%w: resolving %q with %s deletes it", ErrDeletionDisabled, it.key, p.resolve.res)
		}
	}
	return nil
}

// resolved ends a Resolve whose round succeeded and was saved: it fails
// when a write of it was refused because the key changed since it was
// read, and audits the resolution otherwise.
//
// A refused resolution is no resolution: the conflict stays flagged (see
// commit), the failure is audited, and no CONFLICT_RESOLVED is recorded.
func (r *round) resolved(ctx context.Context) error {
	for i := range r.items {
		if a := r.items[i].res.Action; a == Retry {
			err := fmt.Errorf("sync: resolve %q: %w", r.items[i].key, r.items[i].res.Err)
			r.auditFailure(ctx, err)
			return err
		}
	}
	return r.s.emit(context.WithoutCancel(ctx), audit.Event{Type: audit.ConflictResolved, RunID: r.rep.RunID, Key: r.resolve.key,
		Operation: OpResolve, Outcome: audit.Success, Message: r.resolve.res.String()})
}
