// Package conflict classifies one key of a sync by comparing both sides with
// the baseline they last agreed on, and decides what to do about conflicts.
//
// It is pure: no I/O, no clock, no values. Sides are described by a
// [Fingerprint] of their value (an HMAC computed by the caller), so secrets
// never reach this package.
//
// # Three-way classification
//
// [Classify] compares source and destination with the baseline:
//
//	baseline  source   destination  class
//	A         A        A            Unchanged
//	A         B        A            SourceChanged       (also created or deleted)
//	A         A        B            DestinationChanged  (also created or deleted)
//	A         B        B            Converged           (also deleted on both)
//	A         B        C            BothChanged         conflict
//	absent    B        C            BothCreated         conflict
//	A         absent   B            SourceDeleted       conflict (deleted at source, changed at destination)
//	A         B        absent       DestinationDeleted  conflict (changed at source, deleted at destination)
//
// # Resolution
//
// A [Policy] turns a [Conflict] into a [Resolution]: [Flag] (neither side is
// written and the key is reported), [KeepSource], [KeepDestination] or
// [UseValue]. The nil Policy flags every conflict; [PreferSource] and
// [PreferDestination] pick a side; any func with the Policy signature is a
// user policy. The same Resolution values resolve a flagged conflict
// deliberately later (see sync.Syncer.Resolve).
package conflict

import (
	"encoding/base64"
	"fmt"
)

// Fingerprint identifies a value without revealing it: an HMAC-SHA256 under a
// key that only the state store knows.
type Fingerprint [32]byte

// Side describes one side of a key, or the baseline: whether the key exists
// and, if it does, the fingerprint of its value.
type Side struct {
	Exists      bool
	Fingerprint Fingerprint
}

// Absent is the Side of a key that does not exist.
var Absent = Side{}

// Present returns the Side of a key that exists with the given fingerprint.
func Present(fp Fingerprint) Side { return Side{Exists: true, Fingerprint: fp} }

// Same reports whether a and b describe the same state: both absent, or both
// present with the same fingerprint.
func (a Side) Same(b Side) bool {
	return a.Exists == b.Exists && (!a.Exists || a.Fingerprint == b.Fingerprint)
}

// Class is the result of [Classify].
type Class uint8

// The classes. The conflict classes are the ones for which IsConflict holds.
const (
	// Unchanged: neither side changed since the baseline (this includes a
	// key absent everywhere).
	Unchanged Class = iota
	// SourceChanged: only the source changed (created, updated or deleted).
	SourceChanged
	// DestinationChanged: only the destination changed.
	DestinationChanged
	// Converged: both sides changed to the same state (same value, or both
	// deleted). Nothing needs writing; the baseline catches up.
	Converged
	// BothChanged: both sides changed the value, differently.
	BothChanged
	// BothCreated: the key is new on both sides, with different values.
	BothCreated
	// SourceDeleted: deleted at the source, changed at the destination.
	SourceDeleted
	// DestinationDeleted: changed at the source, deleted at the destination.
	DestinationDeleted
)

var classNames = [...]string{
	Unchanged:          "unchanged",
	SourceChanged:      "source-changed",
	DestinationChanged: "destination-changed",
	Converged:          "converged",
	BothChanged:        "both-changed",
	BothCreated:        "both-created",
	SourceDeleted:      "source-deleted",
	DestinationDeleted: "destination-deleted",
}

// String returns the class name in kebab case, for example "both-changed".
func (c Class) String() string {
	if int(c) < len(classNames) {
		return classNames[c]
	}
	return fmt.Sprintf("class(%d)", uint8(c))
}

// IsConflict reports whether c is one of the conflict classes.
func (c Class) IsConflict() bool { return c >= BothChanged && c <= DestinationDeleted }

// Classify compares source and destination with the baseline. It is a pure
// function and safe for concurrent use.
func Classify(baseline, source, destination Side) Class {
	srcChanged := !source.Same(baseline)
	dstChanged := !destination.Same(baseline)
	switch {
	case !srcChanged && !dstChanged:
		return Unchanged
	case !dstChanged:
		return SourceChanged
	case !srcChanged:
		return DestinationChanged
	case source.Same(destination):
		return Converged
	case !baseline.Exists:
		return BothCreated
	case !source.Exists:
		return SourceDeleted
	case !destination.Exists:
		return DestinationDeleted
	default:
		return BothChanged
	}
}

// Conflict describes one conflicting key, as a [Policy] sees it.
type Conflict struct {
	Key                           string
	Class                         Class
	Baseline, Source, Destination Side
}

// Kind says what a [Resolution] does.
type Kind uint8

// The kinds of resolution.
const (
	// KindFlag leaves both sides as they are and reports the key.
	KindFlag Kind = iota
	// KindKeepSource makes the destination what the source is (a put, or a
	// delete when the key was deleted at the source).
	KindKeepSource
	// KindKeepDestination makes the source what the destination is.
	KindKeepDestination
	// KindUseValue writes a given value to both sides.
	KindUseValue
)

var kindNames = [...]string{
	KindFlag:            "flag",
	KindKeepSource:      "keep-source",
	KindKeepDestination: "keep-destination",
	KindUseValue:        "use-value",
}

// String returns the kind name, for example "keep-source".
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Resolution is what to do about a conflict. The zero value is [Flag].
// Its String and GoString never show the value given to [UseValue].
type Resolution struct {
	kind  Kind
	value string
}

// The fixed resolutions.
var (
	Flag            = Resolution{kind: KindFlag}
	KeepSource      = Resolution{kind: KindKeepSource}
	KeepDestination = Resolution{kind: KindKeepDestination}
)

// UseValue returns the resolution that writes value to both sides.
func UseValue(value string) Resolution { return Resolution{kind: KindUseValue, value: value} }

// Kind returns what r does.
func (r Resolution) Kind() Kind { return r.kind }

// Value returns the value of a [UseValue] resolution, and false for the others.
func (r Resolution) Value() (string, bool) { return r.value, r.kind == KindUseValue }

// String returns the kind of r; never the value.
func (r Resolution) String() string { return r.kind.String() }

// GoString is like String.
func (r Resolution) GoString() string { return "conflict." + r.kind.String() }

// Policy decides how a conflict found during a sync is resolved. The nil
// Policy flags every conflict. A Policy must be a pure function of its
// argument; the engine may call it from any goroutine.
type Policy func(Conflict) Resolution

// FlagAll flags every conflict; it is what the nil Policy does.
func FlagAll(Conflict) Resolution { return Flag }

// PreferSource resolves every conflict in favour of the source.
func PreferSource(Conflict) Resolution { return KeepSource }

// PreferDestination resolves every conflict in favour of the destination.
func PreferDestination(Conflict) Resolution { return KeepDestination }

// Resolve applies p to c; a nil p flags.
func (p Policy) Resolve(c Conflict) Resolution {
	if p == nil {
		return Flag
	}
	return p(c)
}

// MarshalText encodes the fingerprint as unpadded base64.
func (f Fingerprint) MarshalText() ([]byte, error) {
	out := make([]byte, base64.RawStdEncoding.EncodedLen(len(f)))
	base64.RawStdEncoding.Encode(out, f[:])
	return out, nil
}

// UnmarshalText decodes a fingerprint written by MarshalText.
func (f *Fingerprint) UnmarshalText(text []byte) error {
	if base64.RawStdEncoding.DecodedLen(len(text)) != len(f) {
		return fmt.Errorf("conflict: fingerprint: want %d base64 characters, got %d", base64.RawStdEncoding.EncodedLen(len(f)), len(text))
	}
	_, err := base64.RawStdEncoding.Decode(f[:], text)
	if err != nil {
		return fmt.Errorf("conflict: fingerprint: %w", err)
	}
	return nil
}

// MarshalText encodes the class by name.
func (c Class) MarshalText() ([]byte, error) {
	if int(c) >= len(classNames) {
		return nil, fmt.Errorf("conflict: unknown class %d", uint8(c))
	}
	return []byte(classNames[c]), nil
}

// UnmarshalText decodes a class name written by MarshalText.
func (c *Class) UnmarshalText(text []byte) error {
	for i, n := range classNames {
		if n == string(text) {
			*c = Class(i)
			return nil
		}
	}
	return fmt.Errorf("conflict: unknown class %q", text)
}
