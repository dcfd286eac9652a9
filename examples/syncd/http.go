package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/secretsync/secretsync/conflict"
	"github.com/secretsync/secretsync/state"
	"github.com/secretsync/secretsync/sync"
)

// server serves health, readiness, metrics and the JSON API over the
// daemon's current generation.
type server struct {
	d *daemon
}

func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.ready)
	mux.Handle("GET /metrics", s.d.metrics.handler())
	mux.HandleFunc("GET /v1/syncs", s.list)
	mux.HandleFunc("POST /v1/syncs/{name}/trigger", s.trigger)
	mux.HandleFunc("GET /v1/syncs/{name}/conflicts", s.conflicts)
	mux.HandleFunc("POST /v1/syncs/{name}/conflicts/{key...}", s.resolve)
	return jsonErrors(mux)
}

// jsonErrors answers the requests that match no route (404, or 405 with
// its Allow header) in the API's JSON error style instead of the mux's text.
func jsonErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(&errorWriter{ResponseWriter: w}, r)
	})
}

// errorWriter turns an error status written in text into a JSON error
// body; other answers (a redirect to the cleaned path) pass unchanged.
type errorWriter struct {
	http.ResponseWriter
	replaced bool
}

func (e *errorWriter) WriteHeader(code int) {
	if code < 400 {
		e.ResponseWriter.WriteHeader(code)
		return
	}
	e.replaced = true
	writeJSON(e.ResponseWriter, code, apiError{Error: strings.ToLower(http.StatusText(code))})
}

func (e *errorWriter) Write(p []byte) (int, error) {
	if e.replaced {
		return len(p), nil
	}
	return e.ResponseWriter.Write(p)
}

// ready answers 200 when every auto-synced sync is ready (see readiness),
// 503 otherwise, with each sync's state.
func (s *server) ready(w http.ResponseWriter, r *http.Request) {
	rd := s.d.readiness(time.Now())
	code := http.StatusOK
	if !rd.Ready {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, rd)
}

// The states of a sync in /readyz.
const (
	readyWaiting   = "waiting"   // no round has finished yet (or Watch has not asked for the lock): not ready
	readyStandby   = "standby"   // another replica holds the sync's lock: ready
	readySucceeded = "succeeded" // the latest round succeeded: ready
	readyFailing   = "failing"   // failing for less than ready_grace: ready
	readyFailed    = "failed"    // failing for ready_grace or longer: not ready
)

type readiness struct {
	Ready bool            `json:"ready"`
	Syncs []syncReadiness `json:"syncs"`
}

// syncReadiness is the state of one auto-synced sync.
type syncReadiness struct {
	Name         string `json:"name"`
	Ready        bool   `json:"ready"`
	State        string `json:"state"`
	Message      string `json:"message,omitempty"`
	LastRoundAt  string `json:"last_round_at,omitempty"`
	FailingSince string `json:"failing_since,omitempty"`
}

// readiness tells whether every auto-synced sync of the running
// configuration is ready at now: its latest round succeeded, or it has been
// failing (rounds, or taking its lock) for less than ready_grace, or
// another replica holds its lock. Before its first round a sync is not
// ready. Manual syncs do not count; neither do flagged conflicts (see
// secretsync_flagged_conflicts).
func (d *daemon) readiness(now time.Time) readiness {
	g := d.current()
	var grace time.Duration
	if g.cfg != nil {
		grace = g.cfg.readyGrace
	}
	out := readiness{Ready: true, Syncs: []syncReadiness{}}
	failing := func(sr *syncReadiness, since time.Time, msg string) {
		sr.FailingSince, sr.Message = rfc3339(since), msg
		if now.Sub(since) < grace {
			sr.State, sr.Ready = readyFailing, true
		} else {
			sr.State = readyFailed
		}
	}
	for _, n := range g.names {
		if !g.syncs[n].auto {
			continue
		}
		sr := syncReadiness{Name: n}
		o, ran := d.metrics.outcome(n)
		if ran {
			sr.LastRoundAt = rfc3339(o.at)
		}
		var ls lockState
		if g.lock != nil {
			ls = g.lock.state(n)
		}
		switch {
		case g.lock != nil && ls.role == roleStandby:
			sr.State, sr.Ready, sr.Message = readyStandby, true, "another replica holds the sync's lock"
		case g.lock != nil && ls.role == roleLockFailed:
			failing(&sr, ls.failingSince, "cannot take the sync's lock: "+ls.msg)
		case g.lock != nil && ls.role == roleStarting:
			sr.State, sr.Message = readyWaiting, "waiting for the sync's lock"
		case !ran:
			sr.State, sr.Message = readyWaiting, "waiting for a first round"
		case o.ok:
			sr.State, sr.Ready = readySucceeded, true
		default:
			failing(&sr, o.failingSince, o.msg)
		}
		out.Ready = out.Ready && sr.Ready
		out.Syncs = append(out.Syncs, sr)
	}
	return out
}

// The API's JSON style: snake_case fields, times in RFC 3339 (UTC), modes,
// actions, classes and statuses by name, errors as one line.

// apiSync is a sync in GET /v1/syncs.
type apiSync struct {
	Name        string     `json:"name"`
	Description string     `json:"description,omitempty"`
	Mode        string     `json:"mode"`
	AutoSync    bool       `json:"auto_sync"`
	Sync        *apiRecord `json:"sync,omitempty"`
	Import      *apiRecord `json:"import,omitempty"`
	Remove      *apiRecord `json:"remove,omitempty"`
	Conflicts   int        `json:"conflicts"`
}

// apiRecord is the status record of an operation.
type apiRecord struct {
	Status    string `json:"status"`
	Message   string `json:"message,omitempty"`
	UpdatedAt string `json:"updated_at"`
	RunID     string `json:"run_id,omitempty"`
}

// apiConflict is a flagged conflict.
type apiConflict struct {
	Key            string `json:"key"`
	DestinationKey string `json:"destination_key,omitempty"`
	Class          string `json:"class"`
	RunID          string `json:"run_id,omitempty"`
	FlaggedAt      string `json:"flagged_at"`
}

// apiReport is the report of a round.
type apiReport struct {
	Sync       string         `json:"sync"`
	RunID      string         `json:"run_id"`
	Operation  string         `json:"operation"`
	Mode       string         `json:"mode"`
	DryRun     bool           `json:"dry_run"`
	Initial    bool           `json:"initial"`
	StartedAt  string         `json:"started_at"`
	FinishedAt string         `json:"finished_at"`
	Keys       []apiKeyResult `json:"keys"`
	Totals     apiTotals      `json:"totals"`
	// Flagged is null when the round ended before it could read its state.
	Flagged *int `json:"flagged"`
}

type apiKeyResult struct {
	Key            string `json:"key,omitempty"` // empty for an unmanaged destination key
	DestinationKey string `json:"destination_key"`
	Action         string `json:"action"`
	Direction      string `json:"direction,omitempty"`
	Class          string `json:"class"`
	Reason         string `json:"reason,omitempty"`
	Error          string `json:"error,omitempty"`
}

type apiTotals struct {
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

// apiError is every error answer; Report is set for a manual round that
// failed.
type apiError struct {
	Error  string     `json:"error"`
	Report *apiReport `json:"report,omitempty"`
}

// apiStatus answers a trigger or a resolution.
type apiStatus struct {
	Status string `json:"status"`
	Sync   string `json:"sync"`
	Key    string `json:"key,omitempty"`
	Kept   string `json:"kept,omitempty"`
}

// rfc3339 formats t in UTC; "" for the zero time.
func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func toRecord(rec *state.Record) *apiRecord {
	if rec == nil {
		return nil
	}
	// Every status passes as recorded: pending, running, succeeded,
	// conflicts or failed; the engine keeps messages on one line.
	return &apiRecord{Status: string(rec.Status), Message: rec.Message, UpdatedAt: rfc3339(rec.Time), RunID: rec.RunID}
}

func toReport(rep *sync.Report) *apiReport {
	if rep == nil {
		return nil
	}
	out := &apiReport{Sync: rep.Sync, RunID: rep.RunID, Operation: rep.Operation, Mode: rep.Mode.String(),
		DryRun: rep.DryRun, Initial: rep.Initial, StartedAt: rfc3339(rep.Started), FinishedAt: rfc3339(rep.Finished),
		Keys: make([]apiKeyResult, 0, len(rep.Keys))}
	for _, k := range rep.Keys {
		out.Keys = append(out.Keys, apiKeyResult{Key: k.Key, DestinationKey: k.DestinationKey, Action: k.Action.String(),
			Direction: string(k.Direction), Class: k.Class.String(), Reason: k.Reason, Error: sync.OneLine(k.Err)})
	}
	t := rep.Totals
	out.Totals = apiTotals{Created: t.Created, Updated: t.Updated, Deleted: t.Deleted, Imported: t.Imported, Unchanged: t.Unchanged,
		Conflicts: t.Conflicts, Unmanaged: t.Unmanaged, Skipped: t.Skipped, Retries: t.Retries, Failed: t.Failed}
	if rep.Flagged >= 0 {
		f := rep.Flagged
		out.Flagged = &f
	}
	return out
}

func (s *server) list(w http.ResponseWriter, r *http.Request) {
	g := s.d.current()
	out := []apiSync{}
	for _, n := range g.names {
		m := g.syncs[n]
		st, err := m.syncer.Status(r.Context())
		if err != nil {
			writeError(w, http.StatusBadGateway, fmt.Errorf("sync %q: status: %w", n, err))
			return
		}
		out = append(out, apiSync{Name: n, Description: m.cfg.Description, Mode: m.syncer.Config().Mode.String(), AutoSync: m.auto,
			Sync: toRecord(st.Sync), Import: toRecord(st.Import), Remove: toRecord(st.Remove), Conflicts: len(st.Conflicts)})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) find(w http.ResponseWriter, r *http.Request) *managed {
	m := s.d.current().syncs[r.PathValue("name")]
	if m == nil {
		writeError(w, http.StatusNotFound, fmt.Errorf("%w: %q", errNoSuchSync, r.PathValue("name")))
	}
	return m
}

// trigger asks an auto-synced sync for a round (202), or runs a round of a
// manual one and returns its report (200). A manual round that failed, or
// in which any key failed, answers {"error": …, "report": …}: 409 when
// another replica holds the sync's lock or the round refused a mass
// deletion, 502 otherwise (a side or the store failed).
func (s *server) trigger(w http.ResponseWriter, r *http.Request) {
	m := s.find(w, r)
	if m == nil {
		return
	}
	name := m.cfg.Name
	if m.auto {
		m.syncer.Trigger()
		writeJSON(w, http.StatusAccepted, apiStatus{Status: "triggered", Sync: name})
		return
	}
	rep, err := m.syncer.Run(r.Context())
	if !failed(rep, err) {
		writeJSON(w, http.StatusOK, toReport(rep))
		return
	}
	code := http.StatusBadGateway
	if errors.Is(err, state.ErrHeld) || errors.Is(err, sync.ErrMassDeletion) {
		code = http.StatusConflict
	}
	writeJSON(w, code, apiError{Error: roundMessage(rep, err), Report: toReport(rep)})
}

func (s *server) conflicts(w http.ResponseWriter, r *http.Request) {
	m := s.find(w, r)
	if m == nil {
		return
	}
	st, err := m.syncer.Status(r.Context())
	if err != nil {
		writeError(w, http.StatusBadGateway, err)
		return
	}
	out := make([]apiConflict, 0, len(st.Conflicts))
	for _, c := range st.Conflicts {
		out = append(out, apiConflict{Key: c.Key, DestinationKey: c.DestinationKey, Class: c.Class.String(), RunID: c.RunID, FlaggedAt: rfc3339(c.Time)})
	}
	writeJSON(w, http.StatusOK, out)
}

// resolve settles a flagged conflict: body {"keep": "source"} or
// {"keep": "destination"}. (Giving a value would put a secret in a request
// log; use the library's Resolve with conflict.UseValue for that.)
func (s *server) resolve(w http.ResponseWriter, r *http.Request) {
	m := s.find(w, r)
	if m == nil {
		return
	}
	var body struct {
		Keep string `json:"keep"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("body: want {\"keep\": \"source\"|\"destination\"}: %w", err))
		return
	}
	var res conflict.Resolution
	switch body.Keep {
	case "source":
		res = conflict.KeepSource
	case "destination":
		res = conflict.KeepDestination
	default:
		writeError(w, http.StatusBadRequest, fmt.Errorf("keep: %q: want \"source\" or \"destination\"", body.Keep))
		return
	}
	key := r.PathValue("key")
	if err := m.syncer.Resolve(r.Context(), key, res); err != nil {
		code := http.StatusConflict
		if errors.Is(err, sync.ErrNoConflict) {
			code = http.StatusNotFound
		}
		writeError(w, code, err)
		return
	}
	writeJSON(w, http.StatusOK, apiStatus{Status: "resolved", Sync: m.cfg.Name, Key: key, Kept: body.Keep})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, apiError{Error: sync.OneLine(err)})
}
