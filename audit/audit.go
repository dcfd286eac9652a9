// Package audit defines the events a sync emits and the Auditor that receives
// them, with implementations: a log/slog auditor, a JSON-lines writer, an
// in-memory recorder for tests, and a fan-out.
//
// An event names what happened to which key of which sync, in which
// direction, in which run, and with what outcome. It never holds a secret
// value: the engine only ever puts names, versions and error classes in it.
package audit

import (
	"context"
	"time"
)

// Type names an event. The names are stable and meant for alerting rules.
type Type string

// Event types.
const (
	// ConnectionCreated: a connection to a secret store was set up.
	ConnectionCreated Type = "CONNECTION_CREATED"
	// SecretSynced: a key was created or updated on the receiving side.
	SecretSynced Type = "SECRET_SYNCED"
	// SecretImported: a destination key was imported into the source.
	SecretImported Type = "SECRET_IMPORTED"
	// SecretDeleted: a key was deleted on the receiving side.
	SecretDeleted Type = "SECRET_DELETED"
	// ConflictDetected: a key changed on both sides since the last sync.
	ConflictDetected Type = "CONFLICT_DETECTED"
	// ConflictResolved: a flagged conflict was resolved deliberately.
	ConflictResolved Type = "CONFLICT_RESOLVED"
	// SyncFailed: a key, or a whole round, failed.
	SyncFailed Type = "SYNC_FAILED"
)

// Direction says which way a change flowed.
type Direction string

// Directions.
const (
	ToDestination Direction = "to-destination"
	ToSource      Direction = "to-source"
)

// Outcome says how an event ended.
type Outcome string

// Outcomes.
const (
	Success Outcome = "success"
	Failure Outcome = "failure"
	Flagged Outcome = "flagged"
)

// Event is one audit record. It never holds a secret value.
type Event struct {
	Type  Type      `json:"type"`
	Time  time.Time `json:"time"`
	Sync  string    `json:"sync,omitempty"`
	RunID string    `json:"run_id,omitempty"`
	// Key is the source key; DestinationKey the key it maps to at the
	// destination under the key schema.
	Key            string    `json:"key,omitempty"`
	DestinationKey string    `json:"destination_key,omitempty"`
	Direction      Direction `json:"direction,omitempty"`
	Outcome        Outcome   `json:"outcome"`
	// Operation is "sync", "import", "remove" or "resolve".
	Operation string `json:"operation,omitempty"`
	// Message is a short, value-free explanation (for example an error class
	// or a conflict class).
	Message string `json:"message,omitempty"`
	// Attrs holds further value-free details (for example a connection's
	// address and auth method).
	Attrs map[string]string `json:"attrs,omitempty"`
}

// Auditor receives events.
//
// Implementations must be safe for concurrent use. Audit should return
// promptly; an error tells the caller the event may be lost, and a sync
// configured to fail closed stops when it sees one.
type Auditor interface {
	Audit(ctx context.Context, e Event) error
}

// AuditorFunc adapts a function to the Auditor interface.
type AuditorFunc func(ctx context.Context, e Event) error

// Audit calls f.
func (f AuditorFunc) Audit(ctx context.Context, e Event) error { return f(ctx, e) }

// Discard is an Auditor that drops every event.
var Discard Auditor = AuditorFunc(func(context.Context, Event) error { return nil })
