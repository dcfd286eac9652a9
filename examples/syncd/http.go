package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	gosync "sync"
	"time"

	"github.com/secretsync/secretsync/conflict"
	"github.com/secretsync/secretsync/state"
	"github.com/secretsync/secretsync/sync"
)

// metrics counts rounds per sync, for /metrics in the Prometheus text
// format.
type metrics struct {
	mu    gosync.Mutex
	syncs map[string]*syncMetrics
}

type syncMetrics struct {
	rounds, failedRounds int64
	duration             float64 // seconds, sum
	changed, failedKeys  int64
	conflicts            int // flagged in the store, waiting for a resolution
	lastRound            time.Time
}

func newMetrics() *metrics { return &metrics{syncs: map[string]*syncMetrics{}} }

func (m *metrics) observe(name string, rep *sync.Report, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	sm := m.syncs[name]
	if sm == nil {
		sm = &syncMetrics{}
		m.syncs[name] = sm
	}
	sm.rounds++
	if err != nil {
		sm.failedRounds++
	}
	if rep != nil {
		sm.duration += rep.Finished.Sub(rep.Started).Seconds()
		sm.changed += int64(rep.Totals.Changed())
		sm.failedKeys += int64(rep.Totals.Failed)
		// Flagged counts every conflict flagged in the store when the
		// round ended, earlier rounds' included; it is -1 when the round
		// could not read the store, and then the gauge keeps its value: a
		// round that failed resolved nothing. The round's own conflicts
		// are flagged too, so they are a floor.
		if rep.Flagged >= 0 {
			sm.conflicts = max(rep.Flagged, rep.Totals.Conflicts)
		}
	}
	sm.lastRound = time.Now()
}

// ran reports whether the named sync has finished a round.
func (m *metrics) ran(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.syncs[name] != nil
}

func (m *metrics) write(w io.Writer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	names := make([]string, 0, len(m.syncs))
	for n := range m.syncs {
		names = append(names, n)
	}
	sort.Strings(names)
	family := func(name, typ, help string, value func(*syncMetrics) string) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
		for _, n := range names {
			fmt.Fprintf(w, "%s{sync=%q} %s\n", name, n, value(m.syncs[n]))
		}
	}
	family("secretsync_rounds_total", "counter", "Rounds run.", func(s *syncMetrics) string { return fmt.Sprint(s.rounds) })
	family("secretsync_round_failures_total", "counter", "Rounds that failed.", func(s *syncMetrics) string { return fmt.Sprint(s.failedRounds) })
	family("secretsync_round_duration_seconds_sum", "counter", "Total time spent in rounds.", func(s *syncMetrics) string { return fmt.Sprintf("%g", s.duration) })
	family("secretsync_keys_changed_total", "counter", "Keys created, updated, deleted or imported.", func(s *syncMetrics) string { return fmt.Sprint(s.changed) })
	family("secretsync_key_failures_total", "counter", "Keys that failed.", func(s *syncMetrics) string { return fmt.Sprint(s.failedKeys) })
	family("secretsync_conflicts", "gauge", "Conflicts flagged and waiting for a resolution.", func(s *syncMetrics) string { return fmt.Sprint(s.conflicts) })
}

// server serves health, metrics and the JSON API over the daemon's current
// generation.
type server struct {
	d *daemon
}

func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", s.ready)
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		s.d.metrics.write(w)
	})
	mux.HandleFunc("GET /v1/syncs", s.list)
	mux.HandleFunc("POST /v1/syncs/{name}/trigger", s.trigger)
	mux.HandleFunc("GET /v1/syncs/{name}/conflicts", s.conflicts)
	mux.HandleFunc("POST /v1/syncs/{name}/conflicts/{key...}", s.resolve)
	return mux
}

// ready: every auto-synced sync has finished a round.
func (s *server) ready(w http.ResponseWriter, r *http.Request) {
	g := s.d.current()
	var waiting []string
	for _, n := range g.names {
		if g.syncs[n].auto && !s.d.metrics.ran(n) {
			waiting = append(waiting, n)
		}
	}
	if len(waiting) > 0 {
		http.Error(w, "waiting for a first round of: "+strings.Join(waiting, ", "), http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ready")
}

type syncInfo struct {
	Name        string        `json:"name"`
	Description string        `json:"description,omitempty"`
	Mode        sync.Mode     `json:"mode"`
	AutoSync    bool          `json:"auto_sync"`
	Sync        *state.Record `json:"sync,omitempty"`
	Import      *state.Record `json:"import,omitempty"`
	Remove      *state.Record `json:"remove,omitempty"`
	Conflicts   int           `json:"conflicts"`
}

func (s *server) list(w http.ResponseWriter, r *http.Request) {
	g := s.d.current()
	out := []syncInfo{}
	for _, n := range g.names {
		m := g.syncs[n]
		st, err := m.syncer.Status(r.Context())
		if err != nil {
			writeError(w, http.StatusBadGateway, fmt.Errorf("sync %q: status: %w", n, err))
			return
		}
		out = append(out, syncInfo{Name: n, Description: m.cfg.Description, Mode: m.syncer.Config().Mode, AutoSync: m.auto,
			Sync: shown(st.Sync), Import: shown(st.Import), Remove: shown(st.Remove), Conflicts: len(st.Conflicts)})
	}
	writeJSON(w, http.StatusOK, out)
}

// shown returns a copy of a status record for the API. Every status passes
// as recorded: pending, running, succeeded, conflicts or failed; the
// engine keeps messages on one line.
func shown(rec *state.Record) *state.Record {
	if rec == nil {
		return nil
	}
	c := *rec
	return &c
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
	if m.auto {
		m.syncer.Trigger()
		writeJSON(w, http.StatusAccepted, map[string]string{"status": "triggered"})
		return
	}
	rep, err := m.syncer.Run(r.Context())
	if err == nil && (rep == nil || rep.Totals.Failed == 0) {
		writeJSON(w, http.StatusOK, rep)
		return
	}
	code := http.StatusBadGateway
	if errors.Is(err, state.ErrHeld) || errors.Is(err, sync.ErrMassDeletion) {
		code = http.StatusConflict
	}
	msg := fmt.Sprintf("%d keys failed", rep.Totals.Failed)
	if err != nil {
		msg = sync.OneLine(err)
	}
	writeJSON(w, code, struct {
		Error  string       `json:"error"`
		Report *sync.Report `json:"report,omitempty"`
	}{msg, rep})
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
	out := st.Conflicts
	if out == nil {
		out = []sync.FlaggedConflict{}
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
	writeJSON(w, http.StatusOK, map[string]string{"status": "resolved", "key": key, "kept": body.Keep})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": sync.OneLine(err)})
}
