package sync

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/secretsync/secretsync/audit"
	"github.com/secretsync/secretsync/conflict"
)

// Action says what a round did, or would do in a plan, for one key.
type Action uint8

// Actions.
const (
	// Unchanged: both sides agree; nothing written.
	Unchanged Action = iota
	// Created: the key was created on the receiving side.
	Created
	// Updated: the key's value was replaced on the receiving side.
	Updated
	// Deleted: the key was deleted on the receiving side.
	Deleted
	// Imported: a destination key was written into the source by an import.
	Imported
	// Conflict: the key changed on both sides (or drifted on a side the
	// mode does not write from); it is flagged and neither side written.
	Conflict
	// Unmanaged: a destination key that does not match the key schema; it
	// is never touched.
	Unmanaged
	// Skipped: a change that the configuration forbids, such as a deletion
	// with DisableDeletion.
	Skipped
	// Retry: the key changed while the round ran (a check-and-set
	// precondition failed); nothing was overwritten and the next round
	// reads it again.
	Retry
	// Failed: the write failed; Err says why.
	Failed
)

var actionNames = [...]string{
	Unchanged: "unchanged",
	Created:   "created",
	Updated:   "updated",
	Deleted:   "deleted",
	Imported:  "imported",
	Conflict:  "conflict",
	Unmanaged: "unmanaged",
	Skipped:   "skipped",
	Retry:     "retry",
	Failed:    "failed",
}

// String returns the action name, for example "created".
func (a Action) String() string {
	if int(a) < len(actionNames) {
		return actionNames[a]
	}
	return fmt.Sprintf("action(%d)", uint8(a))
}

// MarshalText encodes the action by name.
func (a Action) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// KeyResult is what happened to one key. It never holds a value.
type KeyResult struct {
	// Key is the source key; empty for an unmanaged destination key.
	Key string
	// DestinationKey is the key at the destination under the key schema.
	DestinationKey string
	Action         Action
	// Direction is the side written (or that would be written in a
	// plan), the destination's first when a resolution writes both; empty
	// when no side is, as for Unchanged, Conflict, Skipped (a deletion
	// that DisableDeletion forbids included) and Unmanaged keys.
	Direction audit.Direction
	// Class is the three-way classification of the key.
	Class conflict.Class
	// Reason explains Conflict, Skipped, Retry and Failed results, and
	// resolutions made by a policy.
	Reason string
	// Err is the error of a Failed or Retry result.
	Err error
}

// Totals counts the results of a round by action.
type Totals struct {
	Created, Updated, Deleted, Imported int
	Unchanged, Conflicts, Unmanaged     int
	Skipped, Retries, Failed            int
}

// Changed returns the number of writes: created, updated, deleted and
// imported keys.
func (t Totals) Changed() int { return t.Created + t.Updated + t.Deleted + t.Imported }

func (t *Totals) add(a Action) {
	switch a {
	case Unchanged:
		t.Unchanged++
	case Created:
		t.Created++
	case Updated:
		t.Updated++
	case Deleted:
		t.Deleted++
	case Imported:
		t.Imported++
	case Conflict:
		t.Conflicts++
	case Unmanaged:
		t.Unmanaged++
	case Skipped:
		t.Skipped++
	case Retry:
		t.Retries++
	case Failed:
		t.Failed++
	}
}

// Report is the outcome of one operation (Run, Plan, Import or Remove).
type Report struct {
	Sync      string
	RunID     string
	Operation string // "sync", "import" or "remove"
	Mode      Mode
	// DryRun is true for a Plan: nothing was written.
	DryRun bool
	// Initial is true when the round applied the initial-sync behaviour.
	Initial  bool
	Started  time.Time
	Finished time.Time
	// Keys holds one result per key, sorted by source key, then by
	// destination key for unmanaged keys (which sort first).
	Keys   []KeyResult
	Totals Totals
	// Flagged is how many conflicts are flagged for the sync when the
	// operation ended, as recorded in its store, including those flagged by
	// earlier rounds and not resolved yet; -1 when the operation ended
	// before it could read the store.
	Flagged int
}

// Result returns the result for a source key.
func (r *Report) Result(key string) (KeyResult, bool) {
	for _, k := range r.Keys {
		if k.Key == key && k.Action != Unmanaged {
			return k, true
		}
	}
	return KeyResult{}, false
}

// Conflicts returns the results whose action is Conflict.
func (r *Report) Conflicts() []KeyResult { return r.filter(Conflict) }

func (r *Report) filter(a Action) []KeyResult {
	var out []KeyResult
	for _, k := range r.Keys {
		if k.Action == a {
			out = append(out, k)
		}
	}
	return out
}

// String summarises the report on one line.
func (r *Report) String() string {
	t := r.Totals
	dry := ""
	if r.DryRun {
		dry = " (plan)"
	}
	return fmt.Sprintf("%s %s%s: %d created, %d updated, %d deleted, %d imported, %d unchanged, %d conflicts, %d unmanaged, %d skipped, %d retries, %d failed",
		r.Sync, r.Operation, dry, t.Created, t.Updated, t.Deleted, t.Imported, t.Unchanged, t.Conflicts, t.Unmanaged, t.Skipped, t.Retries, t.Failed)
}

// WriteTable writes one line per key that is not unchanged, as an aligned
// table, followed by the summary line. It never writes a value.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tDESTINATION KEY\tACTION\tDIRECTION\tREASON")
	for _, k := range r.Keys {
		if k.Action == Unchanged {
			continue
		}
		dir := string(k.Direction)
		if dir == "" {
			dir = "-"
		}
		reason := k.Reason
		if reason == "" {
			reason = "-"
		}
		key := k.Key
		if key == "" {
			key = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", key, k.DestinationKey, k.Action, dir, reason)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, r.String())
	return err
}
