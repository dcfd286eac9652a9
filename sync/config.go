package sync

import (
	"fmt"
	"log/slog"
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
	// Bidirectional only.
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

	// Logger receives value-free debug and warning records. Nil discards.
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now. For tests.
	Now func() time.Time
}

// ConfigError reports an invalid Config field. errors.Is(err,
// ErrInvalidConfig) holds for it.
type ConfigError struct {
	Field  string
	Reason string
	Err    error // underlying error, if any
}

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
