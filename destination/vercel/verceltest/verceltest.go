// Package verceltest is a local fake of Vercel's REST API for project
// environment variables, on net/http/httptest (loopback, plain HTTP), for
// the tests of package vercel and for users' own tests.
//
// It speaks the endpoints that the official clients (the @vercel/sdk
// TypeScript SDK and the Vercel CLI) send, with their shapes:
//
//	GET    /v10/projects/{idOrName}/env          list (decrypt, until, limit)
//	GET    /v1/projects/{idOrName}/env/{id}      one variable, decrypted
//	POST   /v10/projects/{idOrName}/env          create one or more (upsert)
//	PATCH  /v9/projects/{idOrName}/env/{id}      edit
//	DELETE /v9/projects/{idOrName}/env/{id}      delete
//
// Every request must carry "Authorization: Bearer <Options.Token>" and,
// when the project belongs to a team (Options.TeamID), "teamId=<team>" in
// the query; errors have Vercel's shape, {"error":{"code":...,
// "message":...}}, with the statuses Vercel answers: 400 (bad_request,
// ENV_CONFLICT, RESERVED_ENV_VARIABLE), 403 (forbidden: no or a wrong
// token, or a team the token cannot reach), 404 (not_found: no such
// project, or no such variable), 429 (rate_limited, with
// X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset in epoch
// seconds) and 500. (An overlapping create is 400 ENV_CONFLICT, as
// Vercel answers today; older API versions answered 409
// ENV_ALREADY_EXISTS, which clients should take alike.)
//
// # Semantics
//
// A variable has an id, a key, a value, a type (plain, encrypted,
// sensitive, secret or system), targets (development, preview,
// production), an optional git branch (preview only), a comment, and
// createdAt / updatedAt in milliseconds since the epoch. Two variables may
// share a key when their targets (or git branches) do not overlap; a
// create that overlaps an existing variable is refused with 400
// ENV_CONFLICT, unless it has upsert=true and the existing variable has
// exactly the same targets and branch, which is then updated in place
// (same id, new updatedAt). updatedAt strictly increases with every write
// of a variable, even within one millisecond.
//
// Values travel encrypted unless asked for: list answers encrypted
// variables with an opaque ciphertext and decrypted=false, unless
// decrypt=true (Options.ListIgnoresDecrypt makes list ignore it, as the
// deprecation of that parameter announces); get by id decrypts. A
// sensitive variable's value is never returned, by any endpoint. Plain
// values are always returned as they are. The server keeps every value in
// plain text in memory, for the out-of-band helpers.
//
// Names must be letters, digits and '_' and not start with a digit; the
// names Vercel reserves for its runtimes are refused (ReservedNames);
// values are at most MaxValueBytes; comments at most MaxCommentBytes.
//
// # Helpers
//
// Create, Update, Delete, Find, Get and Vars change and read the store out
// of band, as a user in the dashboard would. Count and Requests tell what
// arrived, per operation; FailNext, RateLimitNext and Delay inject faults.
// A Server is safe for concurrent use.
package verceltest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	gosync "sync"
	"testing"
	"time"
	"unicode/utf8"
)

// Operations, as Count and Request name them.
const (
	OpList   = "list"
	OpGet    = "get"
	OpCreate = "create"
	OpEdit   = "edit"
	OpDelete = "delete"
)

// Variable types.
const (
	TypePlain     = "plain"
	TypeEncrypted = "encrypted"
	TypeSensitive = "sensitive"
	TypeSecret    = "secret"
	TypeSystem    = "system"
)

// Targets.
const (
	Development = "development"
	Preview     = "preview"
	Production  = "production"
)

// Limits the server enforces.
const (
	// MaxValueBytes is the largest value a variable may hold: Vercel
	// allows 64 KB of variables per deployment, so no single value can be
	// larger.
	MaxValueBytes = 64 << 10
	// MaxCommentBytes is the longest comment.
	MaxCommentBytes = 1000
)

// ReservedNames are the names Vercel reserves for its function runtimes
// (its "Reserved environment variables" page); a create or an edit to one
// of them is refused with 400 RESERVED_ENV_VARIABLE.
var ReservedNames = []string{
	"AWS_SECRET_KEY",
	"AWS_EXECUTION_ENV",
	"AWS_LAMBDA_LOG_GROUP_NAME",
	"AWS_LAMBDA_LOG_STREAM_NAME",
	"AWS_LAMBDA_FUNCTION_NAME",
	"AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
	"AWS_LAMBDA_FUNCTION_VERSION",
	"NOW_REGION",
	"TZ",
	"LAMBDA_TASK_ROOT",
	"LAMBDA_RUNTIME_DIR",
}

var keyPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Options configures a Server. The zero value is usable.
type Options struct {
	// Token is the bearer token the server accepts; default "test-token".
	Token string
	// TeamID is the team that owns the project; "" puts the project in
	// the token's personal account. Requests for a team project must
	// carry teamId, requests for a personal project must not.
	TeamID string
	// ProjectID and ProjectName name the project (either may be used in
	// a path); defaults "prj_test" and "test-project".
	ProjectID   string
	ProjectName string
	// PageSize, when positive, makes list answer at most that many
	// variables per page (newest first), with pagination.next set to the
	// cursor of the next page (passed back as until). Zero answers every
	// variable in one page. A limit in the query lowers it.
	PageSize int
	// ListIgnoresDecrypt makes list answer encrypted values encrypted even
	// with decrypt=true, so that a client must read them one by one.
	ListIgnoresDecrypt bool
}

// Var is an environment variable as the server holds it: Value is in
// plain text.
type Var struct {
	ID                   string
	Key                  string
	Value                string
	Type                 string
	Target               []string
	GitBranch            string
	CustomEnvironmentIDs []string
	Comment              string
	CreatedAt            int64 // ms since the epoch
	UpdatedAt            int64 // ms since the epoch
}

// String returns the variable without its value.
func (v Var) String() string {
	return fmt.Sprintf("{ID:%s Key:%s Type:%s Target:%v GitBranch:%q Comment:%q UpdatedAt:%d Value:*****}",
		v.ID, v.Key, v.Type, v.Target, v.GitBranch, v.Comment, v.UpdatedAt)
}

// GoString is like String.
func (v Var) GoString() string { return v.String() }

// Request is one request as the server saw it.
type Request struct {
	Op        string // one of the Op constants, or "" for an unknown route
	Method    string
	Path      string
	TeamID    string // the teamId query parameter ("" when absent)
	HasTeamID bool
	Upsert    bool
	Status    int // the status answered
}

// Server is a running fake. Close it when done (New does that at the end
// of the test).
type Server struct {
	// URL is the base URL to give a client (http://127.0.0.1:port).
	URL string

	opts Options
	hs   *httptest.Server

	mu       gosync.Mutex
	vars     map[string]*Var // by id
	lastTime int64
	requests []Request
	faults   []fault
	delay    time.Duration
}

type fault struct {
	op     string // "" for any
	status int
	reset  time.Duration // for 429
}

// New starts a Server closed at the end of the test.
// A nil options means the zero Options.
func New(t testing.TB, options *Options) *Server {
	var opts Options
	if options != nil {
		opts = *options
	}
	t.Helper()
	s := NewServer(&opts)
	t.Cleanup(s.Close)
	return s
}

// NewServer starts a Server that the caller closes.
// A nil options means the zero Options.
func NewServer(options *Options) *Server {
	var opts Options
	if options != nil {
		opts = *options
	}
	if opts.Token == "" {
		opts.Token = "test-token"
	}
	if opts.ProjectID == "" {
		opts.ProjectID = "prj_test"
	}
	if opts.ProjectName == "" {
		opts.ProjectName = "test-project"
	}
	s := &Server{opts: opts, vars: map[string]*Var{}}
	s.hs = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.hs.URL
	return s
}

// Close shuts the server down.
func (s *Server) Close() { s.hs.Close() }

// Token returns the bearer token the server accepts.
func (s *Server) Token() string { return s.opts.Token }

// TeamID returns the team of the project ("" for a personal project).
func (s *Server) TeamID() string { return s.opts.TeamID }

// ProjectID returns the project's id.
func (s *Server) ProjectID() string { return s.opts.ProjectID }

// Client returns an *http.Client for the server.
func (s *Server) Client() *http.Client { return s.hs.Client() }

// ---- out-of-band helpers ----

// Create adds a variable as another writer would, with the checks of the
// API (names, reserved names, types, targets, conflicts); the new
// variable's id and times are set by the server. It returns the variable
// as stored.
func (s *Server) Create(v Var) (Var, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := input{Key: v.Key, Value: &v.Value, Type: v.Type, Target: v.Target, GitBranch: v.GitBranch, Comment: &v.Comment, CustomEnvironmentIDs: v.CustomEnvironmentIDs}
	if in.Type == "" {
		in.Type = TypeEncrypted
	}
	if e := s.checkInput(in, true); e != nil {
		return Var{}, e
	}
	if other := s.overlapping(in.Key, in.Target, in.CustomEnvironmentIDs, in.GitBranch, ""); other != nil {
		return Var{}, conflictErr(in, other)
	}
	return *s.insert(in), nil
}

// Update sets the value of the variable id as another writer would (its
// updatedAt moves). It reports whether the variable exists.
func (s *Server) Update(id, value string) bool {
	return s.Edit(id, func(v *Var) { v.Value = value })
}

// Edit changes the variable id with f as another writer would (its
// updatedAt moves; its id and createdAt stay). It reports whether the
// variable exists.
func (s *Server) Edit(id string, f func(*Var)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.vars[id]
	if v == nil {
		return false
	}
	keep := v.ID
	created := v.CreatedAt
	f(v)
	v.ID, v.CreatedAt = keep, created
	v.UpdatedAt = s.tick(v.UpdatedAt)
	return true
}

// Delete removes the variable id; it reports whether it existed.
func (s *Server) Delete(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.vars[id]
	delete(s.vars, id)
	return ok
}

// Get returns the variable id.
func (s *Server) Get(id string) (Var, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.vars[id]
	if v == nil {
		return Var{}, false
	}
	return clone(v), true
}

// Find returns the variable with key and exactly the targets given (in
// any order) and no git branch.
func (s *Server) Find(key string, target []string) (Var, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range s.vars {
		if v.Key == key && v.GitBranch == "" && sameSet(v.Target, target) {
			return clone(v), true
		}
	}
	return Var{}, false
}

// Vars returns every variable, sorted by key and then id.
func (s *Server) Vars() []Var {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Var, 0, len(s.vars))
	for _, v := range s.vars {
		out = append(out, clone(v))
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Key != out[j].Key {
			return out[i].Key < out[j].Key
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Count returns how many requests of op (one of the Op constants) arrived,
// whatever their answer; "" counts every request.
func (s *Server) Count(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.requests {
		if op == "" || r.Op == op {
			n++
		}
	}
	return n
}

// Counts returns the number of requests per operation.
func (s *Server) Counts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for _, r := range s.requests {
		out[r.Op]++
	}
	return out
}

// Requests returns every request that arrived, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// ResetCounts forgets the requests seen so far.
func (s *Server) ResetCounts() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
}

// FailNext makes the next n requests of op ("" for any operation) fail
// with status (500, 502, 503, ...) before they change anything.
func (s *Server) FailNext(op string, n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults = append(s.faults, fault{op: op, status: status})
	}
}

// RateLimitNext makes the next n requests of op ("" for any) answer 429
// rate_limited, with X-RateLimit-Reset set to reset from now (rounded up
// to the next second, as the header is in epoch seconds).
func (s *Server) RateLimitNext(op string, n int, reset time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults = append(s.faults, fault{op: op, status: http.StatusTooManyRequests, reset: reset})
	}
}

// Delay makes every request wait d before it is served (0 to stop).
func (s *Server) Delay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// ---- serving ----

type apiError struct {
	status int
	body   map[string]any
	header http.Header
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %v", e.status, e.body["error"]) }

func errBody(status int, code, message string) *apiError {
	return &apiError{status: status, body: map[string]any{"error": map[string]any{"code": code, "message": message}}}
}

var route = regexp.MustCompile(`^/(v[0-9]+)/projects/([^/]+)/env(?:/([^/]+))?$`)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	req := Request{Method: r.Method, Path: r.URL.Path}
	q := r.URL.Query()
	req.TeamID, req.HasTeamID = q.Get("teamId"), q.Has("teamId")
	req.Upsert = q.Get("upsert") == "true"
	m := route.FindStringSubmatch(r.URL.Path)
	var version, project, id string
	if m != nil {
		version, project, id = m[1], m[2], m[3]
		switch {
		case r.Method == http.MethodGet && id == "" && version == "v10":
			req.Op = OpList
		case r.Method == http.MethodGet && id != "" && version == "v1":
			req.Op = OpGet
		case r.Method == http.MethodPost && id == "" && version == "v10":
			req.Op = OpCreate
		case r.Method == http.MethodPatch && id != "" && version == "v9":
			req.Op = OpEdit
		case r.Method == http.MethodDelete && id != "" && version == "v9":
			req.Op = OpDelete
		}
	}

	s.mu.Lock()
	delay := s.delay
	var injected *fault
	for i, f := range s.faults {
		if f.op == "" || f.op == req.Op {
			injected = &f
			s.faults = slices.Delete(s.faults, i, i+1)
			break
		}
	}
	s.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
		}
	}

	status, body, header := s.handle(r, req, project, id, injected)
	req.Status = status
	s.mu.Lock()
	s.requests = append(s.requests, req)
	s.mu.Unlock()

	for k, vs := range header {
		w.Header()[k] = vs
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func (s *Server) handle(r *http.Request, req Request, project, id string, injected *fault) (int, any, http.Header) {
	if req.Op == "" {
		e := errBody(http.StatusNotFound, "not_found", "The requested API endpoint was not found.")
		return e.status, e.body, nil
	}
	// Authentication comes first, as in Vercel: no token, or a wrong one,
	// is 403 forbidden.
	auth := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(auth, "Bearer ")
	switch {
	case auth == "":
		return http.StatusForbidden, map[string]any{"error": map[string]any{
			"code": "forbidden", "message": "The request is missing an authentication token", "missingToken": true}}, nil
	case !ok || token != s.opts.Token:
		return http.StatusForbidden, map[string]any{"error": map[string]any{
			"code": "forbidden", "message": "Not authorized", "invalidToken": true}}, nil
	}
	if injected != nil {
		if injected.status == http.StatusTooManyRequests {
			return rateLimited(injected.reset)
		}
		e := errBody(injected.status, "internal_server_error", "An unexpected internal error occurred")
		return e.status, e.body, nil
	}
	if req.HasTeamID && req.TeamID != s.opts.TeamID {
		e := errBody(http.StatusForbidden, "forbidden", "You don't have permission to access this team.")
		return e.status, e.body, nil
	}
	if project != s.opts.ProjectID && project != s.opts.ProjectName || req.TeamID != s.opts.TeamID {
		// A team project asked for without teamId is looked up in the
		// personal account, where it is not.
		e := errBody(http.StatusNotFound, "not_found", "Project not found")
		return e.status, e.body, nil
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	var (
		out any
		err *apiError
	)
	switch req.Op {
	case OpList:
		out, err = s.list(r)
	case OpGet:
		out, err = s.get(id)
	case OpCreate:
		var status int
		status, out, err = s.create(r, req.Upsert)
		if err == nil {
			return status, out, nil
		}
	case OpEdit:
		out, err = s.edit(r, id)
	case OpDelete:
		out, err = s.remove(id)
	}
	if err != nil {
		return err.status, err.body, err.header
	}
	return http.StatusOK, out, nil
}

func rateLimited(reset time.Duration) (int, any, http.Header) {
	at := time.Now().Add(reset)
	secs := at.Unix()
	if at.Nanosecond() > 0 {
		secs++
	}
	h := http.Header{}
	h.Set("X-RateLimit-Limit", "100")
	h.Set("X-RateLimit-Remaining", "0")
	h.Set("X-RateLimit-Reset", strconv.FormatInt(secs, 10))
	return http.StatusTooManyRequests, map[string]any{"error": map[string]any{
		"code":    "rate_limited",
		"message": "Rate limit exceeded",
		"limit":   map[string]any{"remaining": 0, "reset": secs, "resetMs": secs * 1000, "total": 100},
	}}, h
}

// wire is a variable as the API answers it.
type wire struct {
	ID                   string   `json:"id"`
	Key                  string   `json:"key"`
	Value                string   `json:"value,omitempty"`
	Type                 string   `json:"type"`
	Target               []string `json:"target"`
	GitBranch            string   `json:"gitBranch,omitempty"`
	CustomEnvironmentIDs []string `json:"customEnvironmentIds"`
	Comment              string   `json:"comment,omitempty"`
	ConfigurationID      *string  `json:"configurationId"`
	CreatedAt            int64    `json:"createdAt"`
	UpdatedAt            int64    `json:"updatedAt"`
	CreatedBy            string   `json:"createdBy"`
	UpdatedBy            *string  `json:"updatedBy"`
	Decrypted            bool     `json:"decrypted"`
}

// toWire renders v, with its value decrypted when decrypt is set (never
// for sensitive variables).
func toWire(v *Var, decrypt bool) wire {
	w := wire{
		ID: v.ID, Key: v.Key, Type: v.Type, Target: slices.Clone(v.Target), GitBranch: v.GitBranch,
		CustomEnvironmentIDs: slices.Clone(v.CustomEnvironmentIDs), Comment: v.Comment,
		CreatedAt: v.CreatedAt, UpdatedAt: v.UpdatedAt, CreatedBy: "user_test",
	}
	if w.Target == nil {
		w.Target = []string{}
	}
	if w.CustomEnvironmentIDs == nil {
		w.CustomEnvironmentIDs = []string{}
	}
	switch v.Type {
	case TypeSensitive:
		// Never readable.
	case TypePlain, TypeSystem:
		w.Value = v.Value
	default: // encrypted, secret
		if decrypt {
			w.Value, w.Decrypted = v.Value, true
		} else {
			w.Value = ciphertext(v)
		}
	}
	return w
}

// ciphertext stands for Vercel's encrypted value: opaque, and different
// for each write.
func ciphertext(v *Var) string {
	h := sha256.Sum256([]byte(v.ID + "\x00" + strconv.FormatInt(v.UpdatedAt, 10) + "\x00" + v.Value))
	return "enc_" + hex.EncodeToString(h[:24])
}

func (s *Server) list(r *http.Request) (any, *apiError) {
	q := r.URL.Query()
	decrypt := q.Get("decrypt") == "true" && !s.opts.ListIgnoresDecrypt
	all := make([]*Var, 0, len(s.vars))
	for _, v := range s.vars {
		if b := q.Get("gitBranch"); b != "" && v.GitBranch != b {
			continue
		}
		all = append(all, v)
	}
	// Newest first, by creation: createdAt is the page cursor.
	sort.Slice(all, func(i, j int) bool { return all[i].CreatedAt > all[j].CreatedAt })
	if u := q.Get("until"); u != "" {
		until, err := strconv.ParseInt(u, 10, 64)
		if err != nil {
			return nil, errBody(http.StatusBadRequest, "bad_request", "Invalid request: `until` should be a number.")
		}
		i := 0
		for i < len(all) && all[i].CreatedAt >= until {
			i++
		}
		all = all[i:]
	}
	size := s.opts.PageSize
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n <= 0 {
			return nil, errBody(http.StatusBadRequest, "bad_request", "Invalid request: `limit` should be a positive number.")
		}
		if size <= 0 || n < size {
			size = n
		}
	}
	var next *int64
	if size > 0 && len(all) > size {
		all = all[:size]
		c := all[len(all)-1].CreatedAt
		next = &c
	}
	envs := make([]wire, 0, len(all))
	for _, v := range all {
		envs = append(envs, toWire(v, decrypt))
	}
	var prev *int64
	if len(all) > 0 {
		p := all[0].CreatedAt
		prev = &p
	}
	return map[string]any{"envs": envs, "pagination": map[string]any{"count": len(envs), "next": next, "prev": prev}}, nil
}

func (s *Server) get(id string) (any, *apiError) {
	v := s.vars[id]
	if v == nil {
		return nil, errBody(http.StatusNotFound, "not_found", "Environment Variable not found")
	}
	return toWire(v, true), nil
}

// input is a variable as a create or an edit sends it.
type input struct {
	Key                  string   `json:"key"`
	Value                *string  `json:"value"`
	Type                 string   `json:"type"`
	Target               []string `json:"target"`
	GitBranch            string   `json:"gitBranch"`
	Comment              *string  `json:"comment"`
	CustomEnvironmentIDs []string `json:"customEnvironmentIds"`
}

func (s *Server) create(r *http.Request, upsert bool) (int, any, *apiError) {
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		return 0, nil, errBody(http.StatusBadRequest, "bad_request", "Invalid request body")
	}
	raw = []byte(strings.TrimSpace(string(raw)))
	var ins []input
	array := len(raw) > 0 && raw[0] == '['
	if array {
		err = strictDecode(raw, &ins)
	} else {
		var in input
		err = strictDecode(raw, &in)
		ins = []input{in}
	}
	if err != nil {
		return 0, nil, errBody(http.StatusBadRequest, "bad_request", "Invalid request: "+err.Error())
	}
	var created []wire
	var failed []map[string]any
	var firstErr *apiError
	for _, in := range ins {
		v, e := s.createOne(in, upsert)
		if e != nil {
			if firstErr == nil {
				firstErr = e
			}
			failed = append(failed, map[string]any{"error": e.body["error"]})
			continue
		}
		created = append(created, toWire(v, false))
	}
	if !array {
		if firstErr != nil {
			// A single create that fails answers its error, and the same
			// error in failed.
			firstErr.body["failed"] = failed
			return 0, nil, firstErr
		}
		return http.StatusCreated, map[string]any{"created": created[0], "failed": []any{}}, nil
	}
	if len(created) == 0 && firstErr != nil {
		firstErr.body["failed"] = failed
		return 0, nil, firstErr
	}
	if failed == nil {
		failed = []map[string]any{}
	}
	return http.StatusCreated, map[string]any{"created": created, "failed": failed}, nil
}

func strictDecode(raw []byte, v any) error {
	if !utf8.Valid(raw) {
		return errors.New("body is not valid UTF-8")
	}
	return json.Unmarshal(raw, v)
}

func (s *Server) createOne(in input, upsert bool) (*Var, *apiError) {
	if in.Value == nil {
		return nil, errBody(http.StatusBadRequest, "bad_request", "Invalid request: missing required property `value`.")
	}
	if e := s.checkInput(in, true); e != nil {
		return nil, e
	}
	other := s.overlapping(in.Key, in.Target, in.CustomEnvironmentIDs, in.GitBranch, "")
	if other == nil {
		return s.insert(in), nil
	}
	if !upsert || !sameSet(other.Target, in.Target) || !sameSet(other.CustomEnvironmentIDs, in.CustomEnvironmentIDs) || other.GitBranch != in.GitBranch {
		return nil, conflictErr(in, other)
	}
	if other.Type == TypeSensitive && in.Type != TypeSensitive {
		return nil, errBody(http.StatusBadRequest, "bad_request", "A sensitive Environment Variable cannot be changed to another type.")
	}
	other.Value, other.Type = *in.Value, in.Type
	if in.Comment != nil {
		other.Comment = *in.Comment
	}
	other.UpdatedAt = s.tick(other.UpdatedAt)
	return other, nil
}

func conflictErr(in input, other *Var) *apiError {
	target := strings.Join(other.Target, ", ")
	msg := fmt.Sprintf("A variable with the name `%s` already exists for the target %s", in.Key, target)
	if in.GitBranch != "" {
		msg += " on branch " + in.GitBranch
	}
	e := map[string]any{
		"code": "ENV_CONFLICT", "message": msg, "key": in.Key, "envVarKey": in.Key,
		"envVarId": other.ID, "target": other.Target,
	}
	if other.GitBranch != "" {
		e["gitBranch"] = other.GitBranch
	}
	return &apiError{status: http.StatusBadRequest, body: map[string]any{"error": e}}
}

// checkInput checks the fields of a create (full) or of an edit (only the
// fields it sets).
func (s *Server) checkInput(in input, full bool) *apiError {
	bad := func(msg string) *apiError { return errBody(http.StatusBadRequest, "bad_request", msg) }
	if full || in.Key != "" {
		switch {
		case in.Key == "":
			return bad("Invalid request: missing required property `key`.")
		case !keyPattern.MatchString(in.Key):
			return bad("The name contains invalid characters. Only letters, digits, and underscores are allowed. Furthermore, the name should not start with a digit.")
		case slices.Contains(ReservedNames, in.Key):
			return errBody(http.StatusBadRequest, "RESERVED_ENV_VARIABLE", "The name of your Environment Variable is reserved. Please choose another name.")
		}
	}
	if full || in.Type != "" {
		switch in.Type {
		case TypePlain, TypeEncrypted, TypeSensitive:
		case TypeSystem:
			if in.Value != nil && *in.Value != "" {
				return errBody(http.StatusBadRequest, "SYSTEM_ENV_WITH_VALUE", "A System Environment Variable cannot have a value.")
			}
		default:
			return bad(fmt.Sprintf("Invalid request: `type` should be equal to one of the allowed values \"system\", \"encrypted\", \"plain\", \"sensitive\"."))
		}
	}
	if in.Value != nil {
		if len(*in.Value) > MaxValueBytes {
			return bad(fmt.Sprintf("The value of an Environment Variable must not be larger than %d bytes.", MaxValueBytes))
		}
	}
	if in.Comment != nil && len(*in.Comment) > MaxCommentBytes {
		return bad(fmt.Sprintf("Invalid request: `comment` should NOT be longer than %d characters.", MaxCommentBytes))
	}
	if full || in.Target != nil {
		if len(in.Target) == 0 && len(in.CustomEnvironmentIDs) == 0 {
			return bad("Invalid request: at least one `target` or `customEnvironmentIds` is required.")
		}
		seen := map[string]bool{}
		for _, t := range in.Target {
			if t != Development && t != Preview && t != Production {
				return bad("Invalid request: `target` should be equal to one of the allowed values \"production\", \"preview\", \"development\".")
			}
			if seen[t] {
				return bad("Invalid request: `target` should NOT have duplicate items.")
			}
			seen[t] = true
		}
		if in.Type == TypeSensitive && seen[Development] {
			return bad("Sensitive Environment Variables cannot be created in the Development Environment.")
		}
	}
	if in.GitBranch != "" && !(len(in.Target) == 1 && in.Target[0] == Preview) {
		return bad("Invalid request: `gitBranch` requires the only target to be `preview`.")
	}
	return nil
}

// overlapping returns a variable other than except with key whose targets
// (or custom environments) overlap, on the same git branch.
func (s *Server) overlapping(key string, target, custom []string, branch, except string) *Var {
	for _, v := range s.vars {
		if v.ID == except || v.Key != key || v.GitBranch != branch {
			continue
		}
		if overlaps(v.Target, target) || overlaps(v.CustomEnvironmentIDs, custom) {
			return v
		}
	}
	return nil
}

func (s *Server) insert(in input) *Var {
	now := s.tick(0)
	v := &Var{
		ID: newID(), Key: in.Key, Type: in.Type, Target: slices.Clone(in.Target), GitBranch: in.GitBranch,
		CustomEnvironmentIDs: slices.Clone(in.CustomEnvironmentIDs), CreatedAt: now, UpdatedAt: now,
	}
	if in.Value != nil {
		v.Value = *in.Value
	}
	if in.Comment != nil {
		v.Comment = *in.Comment
	}
	s.vars[v.ID] = v
	return v
}

func (s *Server) edit(r *http.Request, id string) (any, *apiError) {
	v := s.vars[id]
	if v == nil {
		return nil, errBody(http.StatusNotFound, "not_found", "Environment Variable not found")
	}
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, errBody(http.StatusBadRequest, "bad_request", "Invalid request body")
	}
	var in input
	if err := strictDecode(raw, &in); err != nil {
		return nil, errBody(http.StatusBadRequest, "bad_request", "Invalid request: "+err.Error())
	}
	// What the variable will be, to check as a whole.
	next := input{Key: v.Key, Value: &v.Value, Type: v.Type, Target: v.Target, GitBranch: v.GitBranch, Comment: &v.Comment, CustomEnvironmentIDs: v.CustomEnvironmentIDs}
	if in.Key != "" {
		next.Key = in.Key
	}
	if in.Value != nil {
		next.Value = in.Value
	}
	if in.Type != "" {
		if v.Type == TypeSensitive && in.Type != TypeSensitive {
			return nil, errBody(http.StatusBadRequest, "bad_request", "A sensitive Environment Variable cannot be changed to another type.")
		}
		next.Type = in.Type
	}
	if in.Target != nil {
		next.Target = in.Target
	}
	if in.CustomEnvironmentIDs != nil {
		next.CustomEnvironmentIDs = in.CustomEnvironmentIDs
	}
	if in.GitBranch != "" {
		next.GitBranch = in.GitBranch
	}
	if in.Comment != nil {
		next.Comment = in.Comment
	}
	if e := s.checkInput(next, true); e != nil {
		return nil, e
	}
	if other := s.overlapping(next.Key, next.Target, next.CustomEnvironmentIDs, next.GitBranch, v.ID); other != nil {
		return nil, conflictErr(next, other)
	}
	v.Key, v.Value, v.Type = next.Key, *next.Value, next.Type
	v.Target, v.CustomEnvironmentIDs = slices.Clone(next.Target), slices.Clone(next.CustomEnvironmentIDs)
	v.GitBranch, v.Comment = next.GitBranch, *next.Comment
	v.UpdatedAt = s.tick(v.UpdatedAt)
	return toWire(v, false), nil
}

func (s *Server) remove(id string) (any, *apiError) {
	v := s.vars[id]
	if v == nil {
		return nil, errBody(http.StatusNotFound, "not_found", "Environment Variable not found")
	}
	delete(s.vars, id)
	return toWire(v, false), nil
}

// tick returns a time in ms after both now and after, and after every
// time handed out before, so that creation times are unique cursors and a
// variable's updatedAt moves on every write.
func (s *Server) tick(after int64) int64 {
	t := time.Now().UnixMilli()
	t = max(t, after+1, s.lastTime+1)
	s.lastTime = t
	return t
}

func newID() string {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	b := make([]byte, 16)
	for i := range b {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			panic(err)
		}
		b[i] = alphabet[n.Int64()]
	}
	return string(b)
}

func clone(v *Var) Var {
	c := *v
	c.Target = slices.Clone(v.Target)
	c.CustomEnvironmentIDs = slices.Clone(v.CustomEnvironmentIDs)
	return c
}

func overlaps(a, b []string) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}
