package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/secretsync/secretsync/registry"
)

// server serves health, readiness and metrics over the daemon's current
// generation, without authentication: they are read-only, and change
// nothing. The syncs' API (status, trigger, conflicts, resolve, plan)
// needs a token: it is served by package httpapi on the api block's
// listener (apisvc.go).
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
	readyPending   = "pending"   // a registry association between operations, or handed over to another replica: ready
)

type readiness struct {
	Ready bool            `json:"ready"`
	Syncs []syncReadiness `json:"syncs"`
}

// syncReadiness is the state of one auto-synced sync.
type syncReadiness struct {
	Name string `json:"name"`
	// Association is the registry association the sync belongs to
	// ("<type>/<destination> <mount>/<secret>"); "" for a sync block.
	Association  string `json:"association,omitempty"`
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
// secretsync_flagged_conflicts). Every association of the registry counts
// too, by its status: a failed one (INTERNAL_VAULT_ERROR,
// CLIENT_SIDE_ERROR, EXTERNAL_SERVICE_ERROR) is failing since its first
// failure in a row, and not ready once that is ready_grace ago.
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
	if d.reg != nil {
		for _, a := range d.reg.associations() {
			sr := syncReadiness{Name: a.SyncName, Association: a.Type + "/" + a.Destination + " " + a.Secret.String(), LastRoundAt: rfc3339(a.UpdatedAt)}
			switch {
			case a.Status.Failed() || !a.FailingSince.IsZero():
				failing(&sr, a.FailingSince, a.Message)
			case a.Status == registry.StatusPending:
				sr.State, sr.Ready, sr.Message = readyPending, true, a.Message
			default:
				sr.State, sr.Ready = readySucceeded, true
			}
			out.Ready = out.Ready && sr.Ready
			out.Syncs = append(out.Syncs, sr)
		}
	}
	return out
}

// apiError is the error answer of the main listener's paths (a path it
// does not have, a method a path does not have).
type apiError struct {
	Error string `json:"error"`
}

// rfc3339 formats t in UTC; "" for the zero time.
func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
