package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/secretsync/secretsync/audit"
	"github.com/secretsync/secretsync/conflict"
	"github.com/secretsync/secretsync/registry"
	"github.com/secretsync/secretsync/state"
	"github.com/secretsync/secretsync/sync"
)

// SyncPrefix is the path under which the handler serves the project's own
// sync resources (see "Sync resources" in the package documentation). It
// is outside Vault's /v1/sys/ tree, so it cannot collide with a path of
// Vault's.
const SyncPrefix = "/v1/secretsync/"

// Syncs is the set of syncs that the handler serves under SyncPrefix,
// supplied by the program (Options.Syncs). Its methods are called
// concurrently, once or more per request: a program whose syncs change
// (a reload) answers with the current ones.
type Syncs interface {
	// SyncNames returns the names of the syncs, in the order in which
	// they are listed.
	SyncNames(ctx context.Context) ([]string, error)
	// Syncer returns the sync named name; a nil Syncer and a nil error
	// when there is none (the handler answers 404).
	Syncer(ctx context.Context, name string) (*sync.Syncer, error)
}

// SyncMap is a fixed set of syncs by name, listed in the order of their
// names. It is safe for concurrent use as long as it is not modified.
type SyncMap map[string]*sync.Syncer

// SyncNames returns the names of m, sorted.
func (m SyncMap) SyncNames(context.Context) ([]string, error) {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names, nil
}

// Syncer returns m[name].
func (m SyncMap) Syncer(_ context.Context, name string) (*sync.Syncer, error) {
	return m[name], nil
}

// The JSON of the sync resources: snake_case names, times in RFC 3339
// (UTC), modes, actions, classes and statuses by the names the sync and
// conflict packages give them. None of them holds a value.

// SyncInfo is a sync as GET /v1/secretsync/syncs and
// GET /v1/secretsync/syncs/:name show it.
type SyncInfo struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Mode is "push", "pull" or "bidirectional".
	Mode string `json:"mode"`
	// AutoSync is true when the sync runs its rounds itself (Watch), false
	// when it runs only when triggered.
	AutoSync bool `json:"auto_sync"`
	// Sync, Import and Remove are the last record of each operation; null
	// when it never ran.
	Sync   *Record `json:"sync"`
	Import *Record `json:"import"`
	Remove *Record `json:"remove"`
	// LastRound is the latest of Sync, Import and Remove; null when none
	// ran.
	LastRound *Record `json:"last_round"`
	// Conflicts is how many conflicts are flagged, waiting for a
	// resolution.
	Conflicts int `json:"conflicts"`
	// Error, in a list, says why the sync's status could not be read (its
	// store failed); the other fields but Name, Mode and AutoSync are then
	// empty.
	Error string `json:"error,omitempty"`
}

// Record is the status of the last run of one operation.
type Record struct {
	// Operation is "sync", "import" or "remove".
	Operation string `json:"operation"`
	// Status is "pending", "running", "succeeded", "conflicts" or "failed".
	Status string `json:"status"`
	// Message says why, on one line.
	Message   string    `json:"message,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
	RunID     string    `json:"run_id,omitempty"`
}

// Conflict is a flagged conflict, as GET .../conflicts lists them.
type Conflict struct {
	Key            string `json:"key"`
	DestinationKey string `json:"destination_key,omitempty"`
	// Class is the conflict's class by name (conflict.Class), for example
	// "conflict" or "drift".
	Class     string    `json:"class"`
	RunID     string    `json:"run_id,omitempty"`
	FlaggedAt time.Time `json:"flagged_at"`
}

// Report is the report of a round (a trigger that ran one) or of a plan.
type Report struct {
	Sync      string `json:"sync"`
	RunID     string `json:"run_id"`
	Operation string `json:"operation"`
	Mode      string `json:"mode"`
	// DryRun is true for a plan: nothing was written.
	DryRun     bool        `json:"dry_run"`
	Initial    bool        `json:"initial"`
	StartedAt  time.Time   `json:"started_at"`
	FinishedAt time.Time   `json:"finished_at"`
	Keys       []KeyResult `json:"keys"`
	Totals     Totals      `json:"totals"`
	// Flagged is how many conflicts are flagged when the round ended;
	// null when it ended before it could read its state.
	Flagged *int `json:"flagged"`
}

// KeyResult is what a round did, or a plan would do, to one key: names
// and an action, never a value.
type KeyResult struct {
	// Key is the source key; empty for an unmanaged destination key.
	Key            string `json:"key,omitempty"`
	DestinationKey string `json:"destination_key"`
	// Action is the action by name (sync.Action): "unchanged",
	// "created", "updated", "deleted", "imported", "conflict",
	// "unmanaged", "skipped", "retry" or "failed".
	Action string `json:"action"`
	// Direction is the side written, "source" or "destination".
	Direction string `json:"direction,omitempty"`
	Class     string `json:"class"`
	Reason    string `json:"reason,omitempty"`
	Error     string `json:"error,omitempty"`
}

// Totals counts a round's keys by outcome.
type Totals struct {
	Created   int `json:"created"`
	Updated   int `json:"updated"`
	Deleted   int `json:"deleted"`
	Imported  int `json:"imported"`
	Unchanged int `json:"unchanged"`
	Conflicts int `json:"conflicts"`
	Unmanaged int `json:"unmanaged"`
	Skipped   int `json:"skipped"`
	Retries   int `json:"retries"`
	Failed    int `json:"failed"`
}

// TriggerResult answers POST .../trigger.
type TriggerResult struct {
	Sync string `json:"sync"`
	// Status is "triggered" when the sync's Watch was asked for a round
	// (202), "completed" when the round ran during the request (200).
	Status string `json:"status"`
	// Report is the round's, when it ran during the request.
	Report *Report `json:"report,omitempty"`
}

// ResolveRequest is the body of POST .../resolve.
type ResolveRequest struct {
	// Key is the source key of the flagged conflict.
	Key string `json:"key"`
	// Action is the resolution by name: "keep-source" or
	// "keep-destination" (conflict.Kind). Resolving with a value of one's
	// own is not offered: the value would travel in a request; call
	// sync.Syncer.Resolve with conflict.UseValue instead.
	Action string `json:"action"`
}

// ResolveResult answers POST .../resolve.
type ResolveResult struct {
	Sync   string `json:"sync"`
	Key    string `json:"key"`
	Action string `json:"action"`
	Status string `json:"status"` // "resolved"
}

// The types of the audit events of the sync resources.
const (
	// EventSyncTriggered: a round of a sync was asked for (Operation
	// "trigger"; Attrs["ran"] is "true" when it ran during the request,
	// and Outcome is then the round's).
	EventSyncTriggered audit.Type = "SYNC_TRIGGERED"
	// EventResolveRequested: a flagged conflict was resolved, or the
	// attempt failed (Operation "resolve", Key the key, Attrs["action"]
	// the resolution by name). The engine's own audit.ConflictResolved
	// (and the writes it made) come before it, without the actor.
	EventResolveRequested audit.Type = "CONFLICT_RESOLVE_REQUESTED"
)

// routeSyncs serves an authenticated request under SyncPrefix; segs are
// the unescaped path segments after it.
func (h *handler) routeSyncs(q *request, segs []string) {
	if segs[0] != "syncs" || (h.opts.Syncs == nil && !h.opts.RegistrySyncs) {
		writeError(q.w, http.StatusNotFound, "")
		return
	}
	m := q.r.Method
	get := m == http.MethodGet || m == http.MethodHead
	switch len(segs) {
	case 1:
		if !get {
			unsupported(q, "GET")
			return
		}
		h.listSyncs(q)
		return
	case 2:
		if !get {
			unsupported(q, "GET")
			return
		}
		h.syncStatus(q, segs[1])
		return
	case 3:
		name := segs[1]
		switch segs[2] {
		case "trigger":
			if m != http.MethodPost {
				unsupported(q, "POST")
				return
			}
			h.trigger(q, name)
			return
		case "resolve":
			if m != http.MethodPost {
				unsupported(q, "POST")
				return
			}
			h.resolve(q, name)
			return
		case "conflicts":
			if !get {
				unsupported(q, "GET")
				return
			}
			h.conflicts(q, name)
			return
		case "plan":
			if !get {
				unsupported(q, "GET")
				return
			}
			h.plan(q, name)
			return
		}
	}
	writeError(q.w, http.StatusNotFound, "")
}

// syncNames returns the names of the syncs served: Options.Syncs', then
// the registry's associations' not already among them.
func (h *handler) syncNames(ctx context.Context) ([]string, error) {
	var names []string
	if h.opts.Syncs != nil {
		n, err := h.opts.Syncs.SyncNames(ctx)
		if err != nil {
			return nil, err
		}
		names = append(names, n...)
	}
	if h.opts.RegistrySyncs {
		as, err := h.registryAssociations(ctx)
		if err != nil {
			return nil, err
		}
		for _, a := range as {
			if !slices.Contains(names, a.SyncName) {
				names = append(names, a.SyncName)
			}
		}
	}
	return names, nil
}

// registryAssociations returns every association of the registry, by
// destination type and name, then by secret.
func (h *handler) registryAssociations(ctx context.Context) ([]registry.Association, error) {
	list, err := h.reg.List(ctx)
	if err != nil {
		return nil, err
	}
	var out []registry.Association
	for _, typ := range registry.Types(list) {
		names := slices.Clone(list[typ])
		slices.Sort(names)
		for _, name := range names {
			as, err := h.reg.Associations(ctx, typ, name)
			if errors.Is(err, registry.ErrNotFound) {
				continue // deleted meanwhile
			}
			if err != nil {
				return nil, err
			}
			out = append(out, as...)
		}
	}
	return out, nil
}

// syncer returns the sync named name, or nil when there is none.
func (h *handler) syncer(ctx context.Context, name string) (*sync.Syncer, error) {
	if h.opts.Syncs != nil {
		s, err := h.opts.Syncs.Syncer(ctx, name)
		if s != nil || err != nil {
			return s, err
		}
	}
	if !h.opts.RegistrySyncs {
		return nil, nil
	}
	as, err := h.registryAssociations(ctx)
	if err != nil {
		return nil, err
	}
	for _, a := range as {
		if a.SyncName == name {
			s, err := h.reg.Syncer(ctx, a.Type, a.Destination, a.Secret)
			if errors.Is(err, registry.ErrNotFound) {
				return nil, nil // removed meanwhile
			}
			return s, err
		}
	}
	return nil, nil
}

// find returns the sync named name, or answers 404 (or 500) and returns
// nil. e, when not nil, is the audit event of a mutating call.
func (h *handler) find(q *request, name string, e *audit.Event) *sync.Syncer {
	s, err := h.syncer(q.r.Context(), name)
	var status int
	var msg string
	switch {
	case err != nil:
		status, msg = syncErrStatus(q.r.Context(), err)
	case s == nil:
		status, msg = http.StatusNotFound, fmt.Sprintf("no sync named %q", clip(name))
	default:
		return s
	}
	if e != nil {
		h.fail(q, *e, status, msg)
	} else {
		writeError(q.w, status, msg)
	}
	return nil
}

// syncErrStatus returns the status and the message of an error of a
// sync, in a request whose context is ctx: 409 for a lock another replica
// holds or a refused mass deletion, 500 when the request was cancelled,
// 502 otherwise (a side or the store failed, or timed out: its error may
// wrap context.DeadlineExceeded while the request goes on). The engine's
// errors hold no value.
func syncErrStatus(ctx context.Context, err error) (int, string) {
	switch {
	case ctx.Err() != nil:
		return http.StatusInternalServerError, "request cancelled"
	case errors.Is(err, state.ErrHeld), errors.Is(err, sync.ErrMassDeletion):
		return http.StatusConflict, sync.OneLine(err)
	case errors.Is(err, registry.ErrNotFound), errors.Is(err, registry.ErrNoSource):
		return errStatus(err, nil)
	}
	return http.StatusBadGateway, sync.OneLine(err)
}

// info returns the SyncInfo of s; a status that cannot be read is in its
// Error, and returned.
func info(ctx context.Context, name string, s *sync.Syncer) (SyncInfo, error) {
	cfg := s.Config()
	out := SyncInfo{Name: name, Description: cfg.Description, Mode: cfg.Mode.String(), AutoSync: !cfg.AutoSync.Disabled}
	st, err := s.Status(ctx)
	if err != nil {
		_, out.Error = syncErrStatus(ctx, err)
		return out, err
	}
	out.Sync = toRecord(sync.OpSync, st.Sync)
	out.Import = toRecord(sync.OpImport, st.Import)
	out.Remove = toRecord(sync.OpRemove, st.Remove)
	for _, r := range []*Record{out.Sync, out.Import, out.Remove} {
		if r != nil && (out.LastRound == nil || r.UpdatedAt.After(out.LastRound.UpdatedAt)) {
			out.LastRound = r
		}
	}
	out.Conflicts = len(st.Conflicts)
	return out, nil
}

func toRecord(op string, rec *state.Record) *Record {
	if rec == nil {
		return nil
	}
	return &Record{Operation: op, Status: string(rec.Status), Message: rec.Message, UpdatedAt: rec.Time.UTC(), RunID: rec.RunID}
}

// ToReport returns the JSON form of a sync.Report, as the handler answers
// it; nil for nil.
func ToReport(rep *sync.Report) *Report {
	if rep == nil {
		return nil
	}
	out := &Report{Sync: rep.Sync, RunID: rep.RunID, Operation: rep.Operation, Mode: rep.Mode.String(),
		DryRun: rep.DryRun, Initial: rep.Initial, StartedAt: rep.Started.UTC(), FinishedAt: rep.Finished.UTC(),
		Keys: make([]KeyResult, 0, len(rep.Keys))}
	for _, k := range rep.Keys {
		out.Keys = append(out.Keys, KeyResult{Key: k.Key, DestinationKey: k.DestinationKey, Action: k.Action.String(),
			Direction: string(k.Direction), Class: k.Class.String(), Reason: k.Reason, Error: sync.OneLine(k.Err)})
	}
	t := rep.Totals
	out.Totals = Totals{Created: t.Created, Updated: t.Updated, Deleted: t.Deleted, Imported: t.Imported, Unchanged: t.Unchanged,
		Conflicts: t.Conflicts, Unmanaged: t.Unmanaged, Skipped: t.Skipped, Retries: t.Retries, Failed: t.Failed}
	if rep.Flagged >= 0 {
		f := rep.Flagged
		out.Flagged = &f
	}
	return out
}

// listSyncs answers GET /v1/secretsync/syncs: data {"syncs": [...]}. A
// sync whose status cannot be read is listed with its error, and a
// warning.
func (h *handler) listSyncs(q *request) {
	ctx := q.r.Context()
	names, err := h.syncNames(ctx)
	if err != nil {
		status, msg := syncErrStatus(ctx, err)
		writeError(q.w, status, msg)
		return
	}
	out := make([]SyncInfo, 0, len(names))
	var warnings []string
	for _, n := range names {
		s, err := h.syncer(ctx, n)
		if err == nil && s == nil {
			continue // gone meanwhile
		}
		var si SyncInfo
		if err != nil {
			si = SyncInfo{Name: n}
			_, si.Error = syncErrStatus(ctx, err)
		} else {
			si, err = info(ctx, n, s)
		}
		if err != nil {
			if ctx.Err() != nil {
				writeError(q.w, http.StatusInternalServerError, "request cancelled")
				return
			}
			warnings = append(warnings, fmt.Sprintf("the status of sync %q cannot be read: %s", n, si.Error))
		}
		out = append(out, si)
	}
	writeData(q, map[string]any{"syncs": out}, warnings)
}

// syncStatus answers GET /v1/secretsync/syncs/:name.
func (h *handler) syncStatus(q *request, name string) {
	s := h.find(q, name, nil)
	if s == nil {
		return
	}
	si, err := info(q.r.Context(), name, s)
	if err != nil {
		status, msg := syncErrStatus(q.r.Context(), err)
		writeError(q.w, status, msg)
		return
	}
	writeData(q, si, nil)
}

// conflicts answers GET /v1/secretsync/syncs/:name/conflicts.
func (h *handler) conflicts(q *request, name string) {
	s := h.find(q, name, nil)
	if s == nil {
		return
	}
	st, err := s.Status(q.r.Context())
	if err != nil {
		status, msg := syncErrStatus(q.r.Context(), err)
		writeError(q.w, status, msg)
		return
	}
	out := make([]Conflict, 0, len(st.Conflicts))
	for _, c := range st.Conflicts {
		out = append(out, Conflict{Key: c.Key, DestinationKey: c.DestinationKey, Class: c.Class.String(), RunID: c.RunID, FlaggedAt: c.Time.UTC()})
	}
	writeData(q, map[string]any{"sync": name, "conflicts": out}, nil)
}

// plan answers GET /v1/secretsync/syncs/:name/plan: the report of a dry
// run. A plan the engine refuses (a mass deletion, a lock, a side that
// fails) answers its error with the report, when there is one, in data.
func (h *handler) plan(q *request, name string) {
	s := h.find(q, name, nil)
	if s == nil {
		return
	}
	rep, err := s.Plan(q.r.Context())
	if err != nil {
		status, msg := syncErrStatus(q.r.Context(), err)
		var data any
		if rep != nil {
			data = ToReport(rep)
		}
		writeErrorData(q.w, status, msg, data)
		return
	}
	writeData(q, ToReport(rep), nil)
}

// trigger answers POST /v1/secretsync/syncs/:name/trigger[?wait=true].
func (h *handler) trigger(q *request, name string) {
	e := audit.Event{Type: EventSyncTriggered, Operation: "trigger", Sync: name, Attrs: map[string]string{}}
	wait := false
	if v := q.r.URL.Query().Get("wait"); v != "" {
		var err error
		if wait, err = strconv.ParseBool(v); err != nil {
			h.fail(q, e, http.StatusBadRequest, "wait: not a boolean")
			return
		}
	}
	s := h.find(q, name, &e)
	if s == nil {
		return
	}
	if !wait && !s.Config().AutoSync.Disabled {
		e.Attrs["ran"] = "false"
		s.Trigger()
		var warnings []string
		h.emit(q, e, http.StatusAccepted, &warnings)
		writeJSON(q.w, http.StatusAccepted, response{RequestID: q.id, Data: TriggerResult{Sync: name, Status: "triggered"}, Warnings: warnings})
		return
	}
	e.Attrs["ran"] = "true"
	rep, err := s.Run(q.r.Context())
	if rep != nil {
		e.RunID = rep.RunID
	}
	result := TriggerResult{Sync: name, Status: "completed", Report: ToReport(rep)}
	if err != nil || (rep != nil && rep.Totals.Failed > 0) {
		status, msg := http.StatusBadGateway, ""
		if err != nil {
			status, msg = syncErrStatus(q.r.Context(), err)
		} else {
			msg = fmt.Sprintf("%d keys failed", rep.Totals.Failed)
		}
		e.Outcome, e.Message = audit.Failure, msg
		h.emit(q, e, status, nil)
		writeErrorData(q.w, status, msg, result)
		return
	}
	var warnings []string
	h.emit(q, e, http.StatusOK, &warnings)
	writeData(q, result, warnings)
}

// resolve answers POST /v1/secretsync/syncs/:name/resolve.
func (h *handler) resolve(q *request, name string) {
	e := audit.Event{Type: EventResolveRequested, Operation: "resolve", Sync: name, Attrs: map[string]string{}}
	body, ok := h.body(q, e)
	if !ok {
		return
	}
	var req ResolveRequest
	if err := decodeStrict(body, &req); err != nil {
		h.fail(q, e, http.StatusBadRequest, err.Error())
		return
	}
	e.Key, e.Attrs["action"] = req.Key, req.Action
	var res conflict.Resolution
	switch req.Action {
	case conflict.KindKeepSource.String():
		res = conflict.KeepSource
	case conflict.KindKeepDestination.String():
		res = conflict.KeepDestination
	default:
		delete(e.Attrs, "action") // not a name of ours: not recorded
		h.fail(q, e, http.StatusBadRequest, fmt.Sprintf("action: want %q or %q", conflict.KindKeepSource, conflict.KindKeepDestination))
		return
	}
	if req.Key == "" {
		h.fail(q, e, http.StatusBadRequest, "key: missing")
		return
	}
	s := h.find(q, name, &e)
	if s == nil {
		return
	}
	if err := s.Resolve(q.r.Context(), req.Key, res); err != nil {
		status, msg := syncErrStatus(q.r.Context(), err)
		switch {
		case errors.Is(err, sync.ErrNoConflict):
			status, msg = http.StatusNotFound, fmt.Sprintf("key %q of sync %q has no flagged conflict", clip(req.Key), name)
		case errors.Is(err, sync.ErrWriteOnly), errors.Is(err, sync.ErrReadOnlySource), errors.Is(err, sync.ErrDeletionDisabled):
			status = http.StatusConflict
		}
		h.fail(q, e, status, msg)
		return
	}
	var warnings []string
	h.emit(q, e, http.StatusOK, &warnings)
	writeData(q, ResolveResult{Sync: name, Key: req.Key, Action: req.Action, Status: "resolved"}, warnings)
}
