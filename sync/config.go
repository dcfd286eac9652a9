package sync

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"regexp"
	"time"

	"github.com/secretsync/secretsync/audit"
	"github.com/secretsync/secretsync/conflict"
	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/state"
)

// Mode says which way a sync writes.
type Mode uint8

// Modes. The zero value is Push.
const (
	// Push writes the source's managed keys to the destination.
	Push Mode = iota
	// Pull writes the destination's managed keys to the source, which must
	// be a [destination.Destination].
	Pull
	// Bidirectional writes both ways; a key changed on both sides since the
	// last round is a conflict. The source must be a [destination.Destination].
	Bidirectional
)

var modeNames = [...]string{Push: "push", Pull: "pull", Bidirectional: "bidirectional"}

// String returns "push", "pull" or "bidirectional".
func (m Mode) String() string {
	if int(m) < len(modeNames) {
		return modeNames[m]
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// MarshalText encodes the mode by name.
func (m Mode) MarshalText() ([]byte, error) {
	if int(m) >= len(modeNames) {
		return nil, fmt.Errorf("sync: unknown mode %d", uint8(m))
	}
	return []byte(modeNames[m]), nil
}

// UnmarshalText decodes a mode name.
func (m *Mode) UnmarshalText(b []byte) error {
	for i, n := range modeNames {
		if n == string(b) {
			*m = Mode(i)
			return nil
		}
	}
	return fmt.Errorf("sync: unknown mode %q (want push, pull or bidirectional)", b)
}

// InitialSync says how the first round of a sync treats keys that both
// sides already hold, since there is no baseline yet to compare with.
type InitialSync uint8

// Initial-sync behaviours. The zero value, InitialSyncAuto, picks the usual
// behaviour for the mode.
const (
	// InitialSyncAuto is OverwriteDestination for Push, ImportPreferSource
	// for Bidirectional, and for Pull a mirror: the source is made what the
	// destination is (source keys the destination lacks are deleted, unless
	// deletion is disabled).
	InitialSyncAuto InitialSync = iota
	// OverwriteDestination makes the destination's managed keys what the
	// source is: keys the source lacks are deleted (unless deletion is
	// disabled) and differing values are overwritten. Push and
	// Bidirectional only. A write-only destination's values cannot be
	// compared: its keys that the sync never wrote are flagged as
	// conflicts instead, neither overwritten nor deleted, until resolved.
	OverwriteDestination
	// ImportPreferSource first imports destination keys the source lacks
	// into the source, and on a clash keeps the source's value. Needs a
	// writable source; not for Pull.
	ImportPreferSource
	// ImportPreferDestination is like ImportPreferSource, but on a clash
	// keeps the destination's value. Needs a writable source; not for Pull.
	ImportPreferDestination
)

var initialNames = [...]string{
	InitialSyncAuto:         "auto",
	OverwriteDestination:    "overwrite-destination",
	ImportPreferSource:      "import-prefer-source",
	ImportPreferDestination: "import-prefer-destination",
}

// String returns the behaviour's name, for example "overwrite-destination".
func (i InitialSync) String() string {
	if int(i) < len(initialNames) {
		return initialNames[i]
	}
	return fmt.Sprintf("initial-sync(%d)", uint8(i))
}

// MarshalText encodes the behaviour by name.
func (i InitialSync) MarshalText() ([]byte, error) {
	if int(i) >= len(initialNames) {
		return nil, fmt.Errorf("sync: unknown initial-sync behaviour %d", uint8(i))
	}
	return []byte(initialNames[i]), nil
}

// UnmarshalText decodes a behaviour name.
func (i *InitialSync) UnmarshalText(b []byte) error {
	for n, name := range initialNames {
		if name == string(b) {
			*i = InitialSync(n)
			return nil
		}
	}
	return fmt.Errorf("sync: unknown initial-sync behaviour %q", b)
}

// Defaults used for zero Config fields.
const (
	DefaultMaxDeleteFraction = 0.5
	DefaultConcurrency       = 4
	DefaultKeySchema         = "{{secretKey}}"
)

// Config describes one sync. Required: Name, Source and Destination. Every
// other field has a usable zero value.
type Config struct {
	// Name identifies the sync in the store, in audit events and in
	// reports: 1 to 64 characters, lower-case letters, digits, '-' and '_',
	// starting with a letter or digit.
	Name        string
	Description string

	// Source is where secrets come from. Pull and Bidirectional, and the
	// import behaviours, need it to be a destination.Destination as well.
	Source destination.Reader
	// Destination is where secrets go.
	Destination destination.Destination

	Mode        Mode
	InitialSync InitialSync

	// KeySchema maps each source key to a destination key (see package
	// keyschema); destination keys that do not match it are unmanaged and
	// never touched. Empty means "{{secretKey}}".
	KeySchema   string
	Environment string
	// KeyNamer, when set, names destination keys instead of KeySchema
	// (which must then be empty, as must Environment). It need not be
	// invertible: the sync manages the destination keys it names from the
	// source's keys and from the keys it already synced, and no others.
	// Package registry names the entries of external stores with it.
	KeyNamer KeyNamer

	// DisableDeletion stops the sync from deleting anything, at the
	// destination and, in Pull and Bidirectional, at the source. Remove is
	// refused.
	DisableDeletion bool

	// ConflictPolicy decides conflicts, and drift on a side the mode does
	// not write from. Nil flags them: neither side is written and the key is
	// reported until Syncer.Resolve is called.
	ConflictPolicy conflict.Policy

	// MaxDeleteFraction is the largest fraction of a side's managed keys
	// that one round may delete without the Force option; 0 means 0.5, and
	// values outside [0, 1] are refused. A round that would empty a side
	// because the other side is empty is refused whatever the fraction.
	MaxDeleteFraction float64

	// Store keeps baselines and status. Nil keeps them in memory only,
	// which suits tests and one-shot programs: a restarted program then
	// sees its next round as a first round.
	Store state.Store
	// Auditor receives an event for each change, conflict and failure. Nil
	// discards them.
	Auditor audit.Auditor
	// AuditFailClosed stops a round, before any further write, when the
	// Auditor returns an error, and fails the round. Events are emitted
	// after each Apply call, so with it set a side that is not atomic is
	// written in calls of at most 16 changes: at most Concurrency*16 writes
	// can happen between the failed event and the stop.
	AuditFailClosed bool

	// Concurrency limits the Apply calls in flight per side; 0 means 4.
	Concurrency int

	// AutoSync configures Watch: when a round runs by itself.
	AutoSync AutoSync
	// OnRound, when set, is called after each round of Run, Import,
	// Remove and Resolve (also the rounds that Watch runs; not Plan) with
	// its report and error.
	// It runs on the goroutine of the operation; it must not call the
	// Syncer's operations. Daemons use it for metrics.
	OnRound func(rep *Report, err error)
	// OnConflict, when set, is called once for each conflict that a round
	// of Run, Import, Remove or Resolve (or of Watch) newly flags and
	// records, so that a program can react without polling Status. See
	// the package documentation's "Reacting to conflicts".
	OnConflict func(ctx context.Context, c FlaggedConflict)
	// Lock, when set, makes the rounds of this sync mutually exclusive
	// across the processes that share the Store: every operation takes it
	// (Run returns an error matching state.ErrHeld when another process
	// holds it), and Watch holds it while it runs rounds, so that one
	// replica of a daemon runs the sync and the others stand by.
	Lock state.Lock

	// Logger receives value-free debug and warning records. Nil discards.
	Logger *slog.Logger
	// Clock gives the time of reports, status records and audit events,
	// and schedules Watch's rounds; nil means the real clock (WallClock).
	// Tests set a fake to drive Watch without waiting (see Clock).
	Clock Clock
}

// AutoSync configures Syncer.Watch. The zero value is the default: rounds
// after announced changes (debounced by 200 ms), a reconcile every minute
// (with 10% jitter) to catch changes made out of band, and backoff from 1 s
// to 5 min after failures.
type AutoSync struct {
	// Disabled makes the sync manual: Watch returns ErrAutoSyncDisabled.
	Disabled bool
	// Debounce is how long a round waits after the first of a burst of
	// changes, so that the burst makes one round; 0 means 200 ms.
	Debounce time.Duration
	// Interval is the period of the reconcile round; 0 means 1 minute and a
	// negative value disables it (rounds then follow announced changes and
	// Trigger only).
	Interval time.Duration
	// Jitter spreads reconcile rounds by up to this fraction of Interval
	// either way, so that replicas and syncs do not run in step; 0 means
	// 0.1. It must be in [0, 1).
	Jitter float64
	// MinBackoff and MaxBackoff bound the wait after a failed round, which
	// doubles with each failure in a row; 0 means 1 s and 5 min.
	MinBackoff, MaxBackoff time.Duration
	// StopGrace is how long a round in flight when Watch's context ends may
	// go on to finish; 0 means 30 s. (A round in flight when the lock is
	// lost is stopped at once.)
	StopGrace time.Duration
}

// Defaults of AutoSync.
const (
	DefaultDebounce   = 200 * time.Millisecond
	DefaultInterval   = time.Minute
	DefaultJitter     = 0.1
	DefaultMinBackoff = time.Second
	DefaultMaxBackoff = 5 * time.Minute
	DefaultStopGrace  = 30 * time.Second
)

// withDefaults validates a and fills in its defaults.
func (a AutoSync) withDefaults() (AutoSync, *ConfigError) {
	bad := func(field, reason string) (AutoSync, *ConfigError) {
		return a, &ConfigError{Field: "AutoSync." + field, Reason: reason}
	}
	switch {
	case a.Debounce < 0:
		return bad("Debounce", "negative")
	case math.IsNaN(a.Jitter) || a.Jitter < 0 || a.Jitter >= 1:
		return bad("Jitter", fmt.Sprintf("%g is outside [0, 1)", a.Jitter))
	case a.MinBackoff < 0 || a.MaxBackoff < 0:
		return bad("MinBackoff", "negative")
	case a.StopGrace < 0:
		return bad("StopGrace", "negative")
	}
	if a.StopGrace == 0 {
		a.StopGrace = DefaultStopGrace
	}
	if a.Debounce == 0 {
		a.Debounce = DefaultDebounce
	}
	if a.Interval == 0 {
		a.Interval = DefaultInterval
	}
	if a.Jitter == 0 {
		a.Jitter = DefaultJitter
	}
	if a.MinBackoff == 0 {
		a.MinBackoff = DefaultMinBackoff
	}
	if a.MaxBackoff == 0 {
		a.MaxBackoff = DefaultMaxBackoff
	}
	if a.MinBackoff > a.MaxBackoff {
		return bad("MinBackoff", fmt.Sprintf("%v is more than MaxBackoff %v", a.MinBackoff, a.MaxBackoff))
	}
	return a, nil
}

// ConfigError reports an invalid Config field. errors.Is(err,
// ErrInvalidConfig) holds for it.
type ConfigError struct {
	Field  string
	Reason string
	Err    error // underlying error, if any
}

// Error names the field and the reason.
func (e *ConfigError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("sync: invalid config: %s: %s: %v", e.Field, e.Reason, e.Err)
	}
	return fmt.Sprintf("sync: invalid config: %s: %s", e.Field, e.Reason)
}

// Is reports whether target is ErrInvalidConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// Unwrap returns the underlying error.
func (e *ConfigError) Unwrap() error { return e.Err }

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// ValidName reports whether name is a valid sync name.
func ValidName(name string) bool { return nameRE.MatchString(name) }

// KeyNamer names the destination key of each source key, for a sync whose
// destination keys come from a function rather than a key schema (see
// Config.KeyNamer).
type KeyNamer interface {
	// DestinationKey returns the destination key of sourceKey, or an error
	// when it has none the destination can hold (one wrapping
	// destination.ErrInvalidKey, say); the key then fails alone. It must
	// be deterministic.
	DestinationKey(sourceKey string) (string, error)
}

// KeyNamerFunc turns a function into a KeyNamer.
type KeyNamerFunc func(sourceKey string) (string, error)

// DestinationKey returns f(sourceKey).
func (f KeyNamerFunc) DestinationKey(sourceKey string) (string, error) { return f(sourceKey) }
