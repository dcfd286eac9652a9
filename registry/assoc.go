package registry

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/keyschema"
	"github.com/secretsync/secretsync/state"
	"github.com/secretsync/secretsync/sync"
)

// SecretRef names a KV v2 secret: the mount, and the secret's path under
// it (what `vault kv get -mount=Mount Name` reads).
type SecretRef struct {
	Mount string `json:"mount"`
	Name  string `json:"secret_name"`
}

// String returns "mount/name".
func (s SecretRef) String() string { return s.Mount + "/" + s.Name }

func (s SecretRef) check() error {
	switch {
	case s.Mount == "" || strings.Trim(s.Mount, "/") != s.Mount:
		return &ConfigError{Field: "mount", Reason: "missing, or with a leading or trailing '/'"}
	case s.Name == "" || strings.Trim(s.Name, "/") != s.Name:
		return &ConfigError{Field: "secret_name", Reason: "missing, or with a leading or trailing '/'"}
	}
	return nil
}

// Association links a secret to a destination.
type Association struct {
	Type        string    `json:"store_type"`
	Destination string    `json:"store_name"`
	Secret      SecretRef `json:"secret"`
	// KeySchema names the destination keys the association manages.
	KeySchema       string `json:"key_schema"`
	DisableDeletion bool   `json:"disable_deletion,omitempty"`
	// SyncName is the name of the association's sync in the Store and in
	// audit events.
	SyncName string `json:"sync_name"`
	// Status is the outcome of the last operation (see SyncStatus), and
	// Message says why, on one line that never holds a value.
	Status  SyncStatus `json:"sync_status"`
	Message string     `json:"message,omitempty"`
	// UpdatedAt is when the last operation or round ended (Set, Remove,
	// and every round that Registry.Watch runs).
	UpdatedAt time.Time `json:"updated_at"`
	// Totals counts the keys of the last operation by outcome.
	Totals sync.Totals `json:"totals"`
	// FailingSince is when the operations of the association began to
	// fail (the first of the failed statuses in a row, see
	// SyncStatus.Failed); zero once one succeeds (SYNCED or UNSYNCED).
	// A PENDING status in between keeps it. Health checks use it with a
	// grace period.
	FailingSince time.Time `json:"failing_since,omitzero"`
}

// AssociationOptions are the settings of one association.
type AssociationOptions struct {
	// KeySchema maps the secret's keys to destination keys (see package
	// keyschema), for a destination named by key schema (vault-kv, and a
	// program's own types without SyncOptions). Empty means
	// "<mount>_<secret>_{{secretKey}}", with every character other than a
	// letter, a digit or '_' replaced by '_'. The schema has no
	// {{environment}}: an association has none.
	//
	// The schemas of two associations of one destination may not overlap:
	// no destination key may match both (keyschema.Overlap), or each sync
	// would write, and delete, the other's keys. "APP_{{secretKey}}" and
	// "APP_X_{{secretKey}}" overlap ("APP_X_DB" is the first's "X_DB"), and
	// so do the defaults of the secrets "app" and "app/prod"; Set refuses
	// the second with a *ConfigError that names the first.
	KeySchema string
	// DisableDeletion keeps the association from deleting destination
	// keys, in syncs and on removal.
	DisableDeletion bool
}

// DefaultKeySchema returns the key schema of an association set with no
// KeySchema.
func DefaultKeySchema(ref SecretRef) string {
	clean := func(s string) string {
		return strings.Map(func(r rune) rune {
			if r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
				return r
			}
			return '_'
		}, s)
	}
	return clean(ref.Mount) + "_" + clean(ref.Name) + "_{{secretKey}}"
}

// bindSchema parses an association's key schema and binds it to the
// empty environment, as its sync does.
func bindSchema(schema string) (keyschema.Bound, error) {
	sc, err := keyschema.Parse(schema)
	if err != nil {
		return keyschema.Bound{}, err
	}
	return sc.Bind("")
}

// overlapping returns a *ConfigError when the key schema b of the
// association of ref overlaps that of another association of d. r.mu is
// held.
func overlapping(d *dest, ref SecretRef, b keyschema.Bound) error {
	others := slices.SortedFunc(maps.Keys(d.assocs), func(x, y SecretRef) int {
		return cmp.Or(cmp.Compare(x.Mount, y.Mount), cmp.Compare(x.Name, y.Name))
	})
	for _, other := range others {
		o := d.assocs[other].a
		if other == ref {
			continue
		}
		ob, err := bindSchema(o.KeySchema)
		if err != nil {
			continue // never set: Set refuses a schema that does not bind
		}
		var ce *keyschema.CollisionError
		if errors.As(keyschema.Overlap(b, ob), &ce) {
			return &ConfigError{Type: o.Type, Field: "key_schema", Reason: fmt.Sprintf(
				"%q overlaps %q, the key schema of the association of %s (sync %s) on this destination: the key %q is the secret key %q under the first and %q under the second",
				b.Schema().String(), o.KeySchema, other, o.SyncName, ce.DestinationKey, ce.Keys[0], ce.Keys[1])}
		}
	}
	return nil
}

// Set associates the secret with the destination typ/name and syncs it
// at once; when the association exists, Set syncs it again (a refresh,
// which also retries a failed sync). New options replace the old ones.
//
// A bad reference or option gets a *ConfigError and changes nothing; an
// unknown destination an error matching ErrNotFound. Once the association
// is recorded, a failure to open either side or to sync is returned and
// recorded in the association's status; calling Set again retries.
// A nil options means the zero AssociationOptions.
func (r *Registry) Set(ctx context.Context, typ, name string, ref SecretRef, options *AssociationOptions) (Association, error) {
	var opts AssociationOptions
	if options != nil {
		opts = *options
	}
	if err := ctx.Err(); err != nil {
		return Association{}, err
	}
	if err := ref.check(); err != nil {
		return Association{}, err
	}
	if r.opts.Source == nil {
		return Association{}, ErrNoSource
	}
	r.mu.Lock()
	d := r.dests[destKey{typ, name}]
	if d == nil {
		r.mu.Unlock()
		return Association{}, notFound(typ, name)
	}
	_, named := d.cfg.(SyncConfig)
	r.mu.Unlock()
	schema := opts.KeySchema
	switch {
	case named && schema != "":
		return Association{}, &ConfigError{Type: typ, Field: "key_schema",
			Reason: "this destination names its entries by template (secret_name_template), not by key schema"}
	case !named && schema == "":
		schema = DefaultKeySchema(ref)
	}
	var bound keyschema.Bound
	if !named {
		var err error
		if bound, err = bindSchema(schema); err != nil {
			return Association{}, &ConfigError{Type: typ, Field: "key_schema", Reason: err.Error()}
		}
	}

	var a *assoc
	err := r.change(ctx, func() error {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.dests[destKey{typ, name}] != d {
			return errMoved
		}
		if !named {
			if err := overlapping(d, ref, bound); err != nil {
				return err
			}
		}
		a = d.assocs[ref]
		if a == nil {
			a = &assoc{a: Association{Type: typ, Destination: name, Secret: ref, SyncName: r.newSyncName(typ, name, ref)}, gone: make(chan struct{}, 1)}
			d.assocs[ref] = a
			r.startWatch(d, a)
		}
		a.a.KeySchema, a.a.DisableDeletion = schema, opts.DisableDeletion
		a.a.Status, a.a.Message, a.a.UpdatedAt = StatusPending, msgSyncing, r.opts.Clock.Now()
		if a.removing { // set again while its removal waits
			a.removing = false
			r.startWatch(d, a)
		}
		return nil
	})
	if errors.Is(err, errMoved) {
		return r.Set(ctx, typ, name, ref, &opts) // replaced or deleted meanwhile
	}
	if err != nil {
		return Association{}, err
	}

	a.mu.Lock()
	if a.removed {
		// A Remove that was running unlinked it meanwhile: link anew.
		a.mu.Unlock()
		return r.Set(ctx, typ, name, ref, &opts)
	}
	defer a.mu.Unlock()
	s, err := r.syncerOf(ctx, d, a)
	if err != nil {
		return r.record(a, sync.OpSync, nil, err), err
	}
	rep, err := s.Run(ctx)
	if sourceGone(err) {
		if frep, ran, ferr := r.unsyncGone(ctx, a, s); ran {
			rep, err = frep, ferr
		}
	}
	r.dropStale(d, a)
	if errors.Is(err, state.ErrHeld) && r.opts.Catalog != nil {
		// Another replica runs the association's rounds (it holds the
		// sync's lock): it reads the catalog and syncs.
		return r.note(a, StatusPending, msgSyncElsewhere), nil
	}
	return r.record(a, sync.OpSync, rep, err), err
}

// note sets the association's status and message, and returns a copy.
func (r *Registry) note(a *assoc, st SyncStatus, msg string) Association {
	r.mu.Lock()
	defer r.mu.Unlock()
	a.a.Status, a.a.Message, a.a.UpdatedAt = st, msg, r.opts.Clock.Now()
	return a.a
}

// syncerOf returns the association's Syncer, building it anew when it has
// none, or when the destination's Config or the association's options
// changed since. a.mu is held.
func (r *Registry) syncerOf(ctx context.Context, d *dest, a *assoc) (*sync.Syncer, error) {
	r.mu.Lock()
	cfg, gen, want := d.cfg, d.gen, a.a
	r.mu.Unlock()
	if a.syncer != nil && a.gen == gen {
		if c := a.syncer.Config(); c.KeySchema == want.KeySchema && c.DisableDeletion == want.DisableDeletion {
			return a.syncer, nil
		}
	}
	src, err := r.opts.Source(ctx, want.Secret.Mount, want.Secret.Name)
	if err != nil {
		return nil, &openError{side: sync.SideSource, err: fmt.Errorf("registry: open secret %s: %w", want.Secret, err)}
	}
	s, sides, err := r.build(ctx, a, cfg, want, src)
	if err != nil {
		return nil, err
	}
	acc := ""
	if m, ok := src.(MountAccessor); ok {
		acc = m.MountAccessor()
	}
	r.mu.Lock()
	learnt := !a.accessorKnown || a.accessor != acc
	a.accessor, a.accessorKnown = acc, true
	r.mu.Unlock()
	if learnt && r.opts.Catalog != nil {
		// Kept in the catalog, for an unsync after a restart that cannot
		// open the secret; a failure to save is not the sync's.
		_ = r.change(ctx, func() error { return nil })
	}
	a.closeSides()
	a.syncer, a.gen = s, gen
	a.sides = sides
	return s, nil
}

// build builds the Syncer of the association want, of a destination with
// Config cfg, over src, and returns it with its sides. On error it closes
// src and what it opened.
func (r *Registry) build(ctx context.Context, a *assoc, cfg Config, want Association, src destination.Reader) (*sync.Syncer, []any, error) {
	dst, err := r.open(ctx, Target{Name: want.Destination, Config: cfg, Owner: want.SyncName})
	if err != nil {
		closeIfCloser(src)
		return nil, nil, &openError{side: sync.SideDestination, err: err}
	}
	sc := sync.Config{
		Name:            want.SyncName,
		Description:     fmt.Sprintf("%s to %s/%s", want.Secret, want.Type, want.Destination),
		Source:          src,
		Destination:     dst,
		Mode:            sync.Push,
		KeySchema:       want.KeySchema,
		DisableDeletion: want.DisableDeletion,
		Store:           r.store,
		Lock:            r.opts.Lock,
		Auditor:         r.opts.Auditor,
		AutoSync:        sync.AutoSync{Interval: r.pollInterval()},
		OnRound:         func(rep *sync.Report, err error) { r.onRound(a, rep, err) },
		Clock:           r.opts.Clock,
	}
	if c, ok := cfg.(SyncConfig); ok {
		sc.Source, sc.KeyNamer, err = entryNaming(c, want, src, dst)
	}
	var s *sync.Syncer
	if err == nil {
		s, err = sync.New(sc)
	}
	if err != nil {
		closeIfCloser(src)
		closeIfCloser(dst)
		return nil, nil, err
	}
	return s, []any{src, dst}, nil
}

// unsyncer builds, for an unsync, the Syncer of an association whose
// secret cannot be opened (oe says why): its source fails to list with
// oe, so that its Remove works from the sync's saved state alone (see
// sync.Syncer.Remove). The Syncer is for this one unsync: the caller
// closes its sides. a.mu is held.
//
// A destination named by template whose names use the mount's accessor
// needs the accessor that a source of the association reported; when no
// source was opened since the registry started, unsyncer returns oe with
// the reason, and nothing is unsynced.
func (r *Registry) unsyncer(ctx context.Context, d *dest, a *assoc, oe *openError) (*sync.Syncer, []any, error) {
	r.mu.Lock()
	cfg, want := d.cfg, a.a
	accessor, known := a.accessor, a.accessorKnown
	r.mu.Unlock()
	if c, ok := cfg.(SyncConfig); ok && !known {
		if t, err := nameTemplate(c); err == nil && t.usesAccessor() {
			return nil, nil, &openError{side: sync.SideSource, err: fmt.Errorf(
				"%w; the names of the association's entries depend on the mount's accessor, which only the mount can tell (it was not opened since the registry started), so they are not unsynced", oe.err)}
		}
	}
	return r.build(ctx, a, cfg, want, unreadable{err: oe, accessor: accessor})
}

// unreadable stands for a secret that cannot be opened, in the Syncer of
// an unsync: List fails with err, and MountAccessor gives the accessor
// that a source of the association reported before.
type unreadable struct {
	err      error
	accessor string
}

// List fails: the secret cannot be read.
func (u unreadable) List(context.Context) (map[string]destination.Secret, error) { return nil, u.err }

// MountAccessor returns the accessor a source of the association gave.
func (u unreadable) MountAccessor() string { return u.accessor }

// closeSides stops the Watch of the association's Syncer, if one runs,
// and closes the sides of the Syncer that hold resources (io.Closer), once
// it is replaced or removed. a.mu is held.
func (a *assoc) closeSides() {
	a.stopWatch()
	for _, c := range a.sides {
		closeIfCloser(c)
	}
	a.sides = nil
}

// drop closes the association's Syncer and its sides; the next operation
// builds them anew. a.mu is held.
func (a *assoc) drop() {
	a.closeSides()
	a.syncer = nil
}

// unlink marks the association removed, and drops its Syncer. a.mu is
// held.
func (a *assoc) unlink() {
	a.removed = true
	a.drop()
}

// dropStale drops the association's Syncer when the destination's Config
// changed since it was built, at the end of an operation that used it
// (Put could not close it while the operation ran). a.mu is held.
func (r *Registry) dropStale(d *dest, a *assoc) {
	r.mu.Lock()
	stale := a.gen != d.gen
	r.mu.Unlock()
	if stale {
		a.drop()
	}
}

func closeIfCloser(v any) {
	if c, ok := v.(io.Closer); ok {
		_ = c.Close()
	}
}

// record sets the association's status from the outcome of an operation
// (sync.OpSync or sync.OpRemove; see statusOf) and returns a copy.
func (r *Registry) record(a *assoc, op string, rep *sync.Report, err error) Association {
	st, msg := statusOf(op, rep, err)
	r.mu.Lock()
	defer r.mu.Unlock()
	a.a.UpdatedAt = r.opts.Clock.Now()
	if rep != nil {
		a.a.Totals = rep.Totals
	}
	a.a.Status, a.a.Message = st, msg
	switch {
	case st.Failed() && a.a.FailingSince.IsZero():
		a.a.FailingSince = a.a.UpdatedAt
	case st == StatusSynced || st == StatusUnsynced:
		a.a.FailingSince = time.Time{}
	}
	return a.a
}

// removeAttempts bounds the unsync rounds of one Remove while keys change
// at the destination during them (check-and-set failures, action Retry).
const removeAttempts = 3

// Remove unlinks the secret from the destination typ/name and deletes the
// keys the association manages from the destination (an unsync). It
// succeeds, with StatusUnsynced, when the association does not exist or
// its keys are already gone. With DisableDeletion set on the association,
// the link is removed and the destination keys are left in place.
//
// When the unsync fails the association stays, with the failure's status
// (see SyncStatus), and the error is returned; calling Remove again
// retries. Keys that change at the destination during the unsync are read
// again and deleted in another round, a few times; when they keep
// changing, the association stays with StatusPending and the error
// matches destination.ErrConflict.
//
// An unsync does not need the secret: it deletes what the association's
// sync wrote, which the sync's state in Options.Store records (see
// sync.Syncer.Remove). While the secret's mount cannot be read (disabled,
// or the token lost its policy) or the secret cannot be opened, Remove
// still deletes those entries and succeeds with StatusUnsynced; an entry
// under the association's key schema that the state does not record (one
// the sync never wrote) is then left in place. The one
// exception is a destination named by a template that uses
// {{ .MountAccessor }}, when no source of the association was opened
// since the registry started: the names of its entries are unknown, and
// Remove fails with StatusInternalVaultError (Delete with
// DeleteOptions.Force drops such an association, leaving its entries).
func (r *Registry) Remove(ctx context.Context, typ, name string, ref SecretRef) (Association, error) {
	if err := ctx.Err(); err != nil {
		return Association{}, err
	}
	if err := ref.check(); err != nil {
		return Association{}, err
	}
	r.mu.Lock()
	d := r.dests[destKey{typ, name}]
	if d == nil {
		r.mu.Unlock()
		return Association{}, notFound(typ, name)
	}
	a := d.assocs[ref]
	r.mu.Unlock()
	if a == nil {
		return Association{Type: typ, Destination: name, Secret: ref, SyncName: syncName(typ, name, ref),
			Status: StatusUnsynced, Message: msgNever, UpdatedAt: r.opts.Clock.Now()}, nil
	}
	return r.remove(ctx, d, a)
}

// remove unsyncs and unlinks the association a of d.
func (r *Registry) remove(ctx context.Context, d *dest, a *assoc) (Association, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	defer func() {
		r.mu.Lock()
		a.unsyncing = false
		r.mu.Unlock()
	}()
	r.mu.Lock()
	if a.removed {
		// A concurrent Remove did it.
		out := a.a
		r.mu.Unlock()
		return out, nil
	}
	a.a.Status, a.a.Message, a.a.UpdatedAt = StatusPending, msgUnsyncing, r.opts.Clock.Now()
	out := a.a
	r.mu.Unlock()
	if out.DisableDeletion {
		r.mu.Lock()
		a.a.Status, a.a.Message, a.a.UpdatedAt = StatusUnsynced, msgKept, r.opts.Clock.Now()
		out = a.a
		r.mu.Unlock()
	} else {
		// Recorded first: while the removal waits, no replica syncs the
		// association again, and the one that runs its rounds unsyncs it.
		err := r.change(ctx, func() error {
			r.mu.Lock()
			defer r.mu.Unlock()
			if d.assocs[out.Secret] != a || a.removing {
				return errUnchanged
			}
			a.removing, a.unsyncing = true, true
			return nil
		})
		if err != nil {
			return r.record(a, sync.OpRemove, nil, err), err
		}
		s, err := r.syncerOf(ctx, d, a)
		if oe := (*openError)(nil); errors.As(err, &oe) && oe.side == sync.SideSource {
			// An unsync does not need the secret: it deletes what the
			// sync wrote, which its state records.
			var sides []any
			s, sides, err = r.unsyncer(ctx, d, a, oe)
			defer func() {
				for _, c := range sides {
					closeIfCloser(c)
				}
			}()
		}
		if err != nil {
			return r.record(a, sync.OpRemove, nil, err), err
		}
		var (
			rep     *sync.Report
			deleted int
		)
		// No Watch round may sync the secret again meanwhile; the
		// association's Watch starts again if the unsync fails.
		a.stopWatch()
		for range removeAttempts {
			if rep, err = s.Remove(ctx); rep != nil {
				deleted += rep.Totals.Deleted
			}
			if err != nil || rep.Totals.Retries == 0 {
				break
			}
		}
		if rep != nil {
			rep.Totals.Deleted = deleted
		}
		r.dropStale(d, a)
		if errors.Is(err, state.ErrHeld) && r.opts.Catalog != nil {
			return r.note(a, StatusPending, msgUnsyncElsewhere), nil
		}
		out = r.record(a, sync.OpRemove, rep, err)
		if err == nil && rep.Totals.Retries > 0 {
			err = fmt.Errorf("registry: unsync %s from %s/%s: %d key(s) kept changing at the destination: %w",
				out.Secret, out.Type, out.Destination, rep.Totals.Retries, destination.ErrConflict)
		}
		if err != nil {
			return out, err
		}
	}
	err := r.change(ctx, func() error {
		r.mu.Lock()
		defer r.mu.Unlock()
		if d.assocs[out.Secret] != a {
			return errUnchanged
		}
		delete(d.assocs, out.Secret)
		return nil
	})
	if err != nil {
		return out, err
	}
	a.unlink()
	return out, nil
}

// errMoved: the destination was replaced or deleted during a change.
var errMoved = errors.New("registry: destination replaced meanwhile")

// Associations returns the associations of the destination typ/name,
// sorted by mount and secret name, or an error matching ErrNotFound.
func (r *Registry) Associations(ctx context.Context, typ, name string) ([]Association, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r.mu.Lock()
	d := r.dests[destKey{typ, name}]
	var out []Association
	if d != nil {
		out = make([]Association, 0, len(d.assocs))
		for _, a := range d.assocs {
			out = append(out, a.a)
		}
	}
	r.mu.Unlock()
	if d == nil {
		return nil, notFound(typ, name)
	}
	slices.SortFunc(out, func(x, y Association) int {
		return cmp.Or(cmp.Compare(x.Secret.Mount, y.Secret.Mount), cmp.Compare(x.Secret.Name, y.Secret.Name))
	})
	return out, nil
}

// Syncer returns the sync.Syncer of an association, built if needed, for
// what the registry does not do itself: Plan, Status and Resolve (and
// Watch, for a program that does not run Registry.Watch: while that runs
// the Syncer's Watch returns sync.ErrWatching). Its rounds update the
// association's status, as Set's do (Config.OnRound). It is
// usable until the destination's Config is replaced, the association's
// options change, or it is removed or its destination deleted: the
// registry then closes its sides.
func (r *Registry) Syncer(ctx context.Context, typ, name string, ref SecretRef) (*sync.Syncer, error) {
	r.mu.Lock()
	d := r.dests[destKey{typ, name}]
	var a *assoc
	if d != nil {
		a = d.assocs[ref]
	}
	r.mu.Unlock()
	if d == nil {
		return nil, notFound(typ, name)
	}
	if a != nil {
		a.mu.Lock()
		defer a.mu.Unlock()
	}
	if a == nil || a.removed {
		return nil, fmt.Errorf("%w: association of %s with %s/%s", ErrNotFound, ref, typ, name)
	}
	return r.syncerOf(ctx, d, a)
}
