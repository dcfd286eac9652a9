package sync

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/secretsync/secretsync/audit"
	"github.com/secretsync/secretsync/conflict"
	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/keyschema"
	"github.com/secretsync/secretsync/state"
)

// Operation names, as they appear in reports, status records and audit
// events.
const (
	OpSync    = "sync"
	OpImport  = "import"
	OpRemove  = "remove"
	OpResolve = "resolve"
)

// Syncer runs one configured sync. Build it with New.
//
// A Syncer is safe for concurrent use; its operations (Run, Plan, Import,
// Remove, Resolve) are serialized, so rounds of one Syncer never overlap.
// Several Syncers (or processes) running the same sync need a shared store
// and an external lock.
type Syncer struct {
	cfg     Config
	schema  keyschema.Bound // unused when cfg.KeyNamer is set
	src     destination.Reader
	srcW    destination.Destination // nil when the source is read-only
	dst     destination.Destination
	store   state.Store
	auditor audit.Auditor
	log     *slog.Logger
	clock   Clock // cfg.Clock, or WallClock

	auto    AutoSync      // cfg.AutoSync with defaults
	trigger chan struct{} // Trigger's signal to Watch

	mu gosync.Mutex // serializes operations

	// smallMu guards unsaved and leader, each held for a moment.
	smallMu gosync.Mutex
	unsaved map[string]unsavedRecord // by operation: see setUnsaved
	leader  context.Context          // while Watch holds cfg.Lock: its held context

	// The fields are ordered so that a Syncer fits a smaller allocation
	// class (thousands of syncs share a process): the small ones last.
	watching atomic.Bool
	wo       bool        // the destination is write-only
	initial  InitialSync // cfg.InitialSync with Auto resolved for the mode
}

// New validates cfg and returns a Syncer. An invalid Config is refused with
// a *ConfigError naming the field (errors.Is(err, ErrInvalidConfig)).
func New(cfg Config) (*Syncer, error) {
	bad := func(field, reason string, err error) (*Syncer, error) {
		return nil, &ConfigError{Field: field, Reason: reason, Err: err}
	}
	if !ValidName(cfg.Name) {
		return bad("Name", fmt.Sprintf("%q is not a valid name: want 1 to 64 lower-case letters, digits, '-' or '_', starting with a letter or digit", cfg.Name), nil)
	}
	if cfg.Source == nil {
		return bad("Source", "missing", nil)
	}
	if cfg.Destination == nil {
		return bad("Destination", "missing", nil)
	}
	if cfg.Mode > Bidirectional {
		return bad("Mode", fmt.Sprintf("unknown mode %d", cfg.Mode), nil)
	}
	srcW, _ := cfg.Source.(destination.Destination)
	if cfg.Mode != Push && srcW == nil {
		return bad("Source", fmt.Sprintf("%s needs a writable source (a destination.Destination)", cfg.Mode), nil)
	}
	initial := cfg.InitialSync
	switch cfg.InitialSync {
	case InitialSyncAuto:
		switch cfg.Mode {
		case Push:
			initial = OverwriteDestination
		case Bidirectional:
			initial = ImportPreferSource
		}
	case OverwriteDestination:
		if cfg.Mode == Pull {
			return bad("InitialSync", "overwrite-destination does not apply to pull, which never writes the destination", nil)
		}
	case ImportPreferSource, ImportPreferDestination:
		if cfg.Mode == Pull {
			return bad("InitialSync", fmt.Sprintf("%s does not apply to pull; pull's first round mirrors the destination", cfg.InitialSync), nil)
		}
		if srcW == nil {
			return bad("InitialSync", fmt.Sprintf("%s needs a writable source (a destination.Destination)", cfg.InitialSync), nil)
		}
	default:
		return bad("InitialSync", fmt.Sprintf("unknown behaviour %d", cfg.InitialSync), nil)
	}
	wo := destination.CapabilitiesOf(cfg.Destination).WriteOnly
	if wo {
		if cfg.Mode != Push {
			return bad("Mode", fmt.Sprintf("%s reads values from the destination, which is write-only (its values cannot be read back): only push can sync to it", cfg.Mode), ErrWriteOnly)
		}
		if initial == ImportPreferSource || initial == ImportPreferDestination {
			return bad("InitialSync", fmt.Sprintf("%s imports values from the destination, which is write-only", cfg.InitialSync), ErrWriteOnly)
		}
	}
	tmpl := cfg.KeySchema
	if cfg.KeyNamer != nil {
		if cfg.KeySchema != "" || cfg.Environment != "" {
			return bad("KeySchema", "set together with KeyNamer, which names the destination keys instead", nil)
		}
	}
	var schema *keyschema.Schema
	var err error
	if tmpl == "" || tmpl == DefaultKeySchema {
		schema, err = defaultSchema()
	} else {
		schema, err = keyschema.Parse(tmpl)
	}
	if err != nil {
		return bad("KeySchema", "cannot parse", err)
	}
	bound, err := schema.Bind(cfg.Environment)
	if err != nil {
		return bad("Environment", "not usable with the key schema", err)
	}
	frac := cfg.MaxDeleteFraction
	if math.IsNaN(frac) || frac < 0 || frac > 1 {
		return bad("MaxDeleteFraction", fmt.Sprintf("%g is outside [0, 1]", frac), nil)
	}
	conc := cfg.Concurrency
	if conc < 0 {
		return bad("Concurrency", fmt.Sprintf("%d is negative", conc), nil)
	}
	auto, aerr := cfg.AutoSync.withDefaults()
	if aerr != nil {
		return nil, aerr
	}
	s := &Syncer{
		cfg: cfg, schema: bound, wo: wo, src: cfg.Source, srcW: srcW, dst: cfg.Destination,
		store: cfg.Store, auditor: cfg.Auditor, log: cfg.Logger, clock: cfg.Clock,
		initial: initial, auto: auto,
		trigger: make(chan struct{}, 1),
	}
	if s.store == nil {
		s.store = state.NewMemory()
	}
	if s.auditor == nil {
		s.auditor = audit.Discard
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.clock == nil {
		s.clock = WallClock{}
	}
	return s, nil
}

// maxDeleteFraction is cfg.MaxDeleteFraction, or its default.
func (s *Syncer) maxDeleteFraction() float64 {
	if s.cfg.MaxDeleteFraction == 0 {
		return DefaultMaxDeleteFraction
	}
	return s.cfg.MaxDeleteFraction
}

// concurrency is cfg.Concurrency, or its default.
func (s *Syncer) concurrency() int {
	if s.cfg.Concurrency == 0 {
		return DefaultConcurrency
	}
	return s.cfg.Concurrency
}

// defaultSchema is DefaultKeySchema parsed, once: a Schema is never
// changed once parsed, so the Syncers that use the default share it.
var defaultSchema = gosync.OnceValues(func() (*keyschema.Schema, error) { return keyschema.Parse(DefaultKeySchema) })

// Name returns the sync's name.
func (s *Syncer) Name() string { return s.cfg.Name }

// Config returns the Config the Syncer was built from.
func (s *Syncer) Config() Config { return s.cfg }

// Option modifies one call of Run, Plan, Import or Remove.
type Option func(*options)

type options struct {
	force  bool
	dryRun bool
}

// Force lets a round delete more than MaxDeleteFraction of a side's managed
// keys, or empty a side facing an empty one.
func Force() Option { return func(o *options) { o.force = true } }

// DryRun makes an operation plan without writing anything: no side, store
// or audit write. Plan is Run with DryRun.
func DryRun() Option { return func(o *options) { o.dryRun = true } }

func collect(opts []Option) options {
	var o options
	for _, f := range opts {
		if f != nil {
			f(&o)
		}
	}
	return o
}

// Run does one round of the sync and reports what it did for every key.
//
// Keys whose check-and-set precondition failed (the key changed during the
// round) are reported with action Retry and are read again next round; they
// do not fail the round. When every write of the round failed so, Run first
// reads both sides again and plans anew, up to 3 times (see "Rounds" in the
// package documentation). Other per-key failures, a timeout of a side's own
// client among them, are collected into the returned error, a
// *multierror.Error (github.com/hashicorp/go-multierror) whose Errors are
// *KeyError, one per failed key, and the report is still returned; the
// baseline advances only for keys that were applied. A key that could make a
// write land outside its place (see destination.CheckKey), as a source key
// or rendered by the key schema, is such a failure, wrapping
// destination.ErrInvalidKey; nothing is written for it.
//
// When a side reports that it is unavailable (destination.ErrUnavailable:
// unreachable, sealed, rate limited), the round stops at once and returns
// that one error, a *SideError with Op OpApply; keys not attempted are
// reported with action Retry. A side that cannot be listed, or a state
// store that fails, ends the round with a *SideError naming it. When the
// state cannot be saved at the end of a round that failed otherwise, the
// *SideError (Side SideStore, Op OpSave) is added to a *multierror.Error
// with the round's errors: errors are combined this one way, never with
// errors.Join. With Config.Lock, a round whose lock is lost while it runs
// stops at once with an error wrapping state.ErrLockLost. A
// round that would delete too much returns an error for which
// errors.Is(err, ErrMassDeletion) holds, and writes nothing. A cancelled
// context stops the round; its error is returned as is. In every case, each
// write that reached a side is audited, reported and recorded, and a write
// whose outcome is unknown is recognized as the sync's own if it lands
// later.
//
// The status record says what happened: failed when the round failed or a
// key did, "conflicts" when conflicts are flagged, pending when keys are to
// be retried, and succeeded only when every planned write was applied.
func (s *Syncer) Run(ctx context.Context, opts ...Option) (*Report, error) {
	return s.operate(ctx, OpSync, collect(opts), nil)
}

// Plan reports what Run would do, without writing anything (a dry run).
func (s *Syncer) Plan(ctx context.Context, opts ...Option) (*Report, error) {
	return s.operate(ctx, OpSync, collect(append(opts, DryRun())), nil)
}

// Import writes the destination's changed and new managed keys into the
// source, and nothing else: it never writes the destination and never
// deletes. Conflicts are handled by the conflict policy. It needs a writable
// source (ErrReadOnlySource otherwise).
func (s *Syncer) Import(ctx context.Context, opts ...Option) (*Report, error) {
	if s.srcW == nil {
		return nil, ErrReadOnlySource
	}
	if s.wo {
		return nil, ErrWriteOnly
	}
	return s.operate(ctx, OpImport, collect(opts), nil)
}

// Remove (unsync) deletes from the destination the managed keys this sync
// keeps there: keys that match the key schema (or that the KeyNamer names)
// and that are in the baseline, were written by a pending write found
// landed, or are at the source. Other destination keys are left alone.
// Keys already gone count as removed. The baseline of removed keys is
// dropped, so the next Run is a first round again. Remove is refused with
// ErrDeletionDisabled when the Config disables deletion.
//
// Remove does not need the source: when listing it fails (a Vault mount
// disabled, a token that may no longer read it, a source unavailable),
// Remove goes on from the sync's saved state, which records what the sync
// wrote, and logs a warning. It then deletes the keys of the baseline and
// of the pending writes found landed (named by the key schema, or by the
// KeyNamer from those keys); a destination key that only the source could
// vouch for (at the source, with no baseline) is left in place and
// reported Skipped. A destination that cannot be listed, or a state store
// that fails, still fails the operation.
//
// Each deletion is check-and-set against the version listed in the same
// operation, so a key written at the destination meanwhile is not deleted:
// it is reported Retry and kept in the baseline, and a second Remove reads
// it again. The mass-deletion guard does not apply: deleting every managed
// key is what Remove is for. Each deletion is audited, and the status of
// the operation is recorded (Status.Remove), as for Run.
func (s *Syncer) Remove(ctx context.Context, opts ...Option) (*Report, error) {
	if s.cfg.DisableDeletion {
		return nil, ErrDeletionDisabled
	}
	return s.operate(ctx, OpRemove, collect(opts), nil)
}

// Status is the recorded state of a sync's operations.
type Status struct {
	// Sync, Import and Remove are the last record of each operation; nil
	// when it never ran.
	Sync, Import, Remove *state.Record
	// Conflicts lists the flagged conflicts, sorted by key.
	Conflicts []FlaggedConflict
}

// FlaggedConflict is a conflict waiting for Resolve.
type FlaggedConflict struct {
	Key            string
	DestinationKey string
	Class          conflict.Class
	RunID          string
	Time           time.Time
}

// Status returns the last sync, import and remove records and the flagged
// conflicts, as kept in the store; the record of this Syncer's latest round
// comes from memory when that round changed nothing and so saved nothing
// (see "Store writes" in the package documentation).
func (s *Syncer) Status(ctx context.Context) (*Status, error) {
	st, err := s.store.Load(ctx, s.cfg.Name)
	if errors.Is(err, state.ErrNotFound) {
		return &Status{}, nil
	}
	if err != nil {
		return nil, err
	}
	s.withUnsaved(st)
	out := &Status{Sync: st.Sync, Import: st.Import, Remove: st.Remove}
	for k, c := range st.Conflicts {
		dk, _ := s.destKey(k)
		out.Conflicts = append(out.Conflicts, FlaggedConflict{Key: k, DestinationKey: dk, Class: c.Class, RunID: c.RunID, Time: c.Time})
	}
	sortFlagged(out.Conflicts)
	return out, nil
}

func newRunID() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Sprintf("run-%d", time.Now().UnixNano())
	}
	return hex.EncodeToString(b[:])
}

// emit sends an event to the auditor, filling the common fields.
func (s *Syncer) emit(ctx context.Context, e audit.Event) error {
	e.Sync = s.cfg.Name
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	err := s.auditor.Audit(ctx, e)
	if err != nil {
		s.log.WarnContext(ctx, "secretsync: audit failed", "sync", s.cfg.Name, "event", string(e.Type), "error", err)
		if s.cfg.AuditFailClosed {
			return fmt.Errorf("%w: %w", ErrAudit, err)
		}
	}
	return nil
}

func record(st *state.State, op string) **state.Record {
	switch op {
	case OpImport:
		return &st.Import
	case OpRemove:
		return &st.Remove
	default:
		return &st.Sync
	}
}

// destKey returns the destination key of source key k.
func (s *Syncer) destKey(k string) (string, error) {
	if s.cfg.KeyNamer != nil {
		return s.cfg.KeyNamer.DestinationKey(k)
	}
	return s.schema.Render(k)
}
