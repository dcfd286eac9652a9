// Package ghactionstest is a local GitHub REST API for GitHub Actions
// secrets, for tests of code that writes them with go-github: a loopback
// HTTP server that answers as api.github.com does, with NaCl sealed boxes,
// pagination, rate limits and GitHub's error shapes, and keeps every
// secret's plaintext in memory so that a test can look behind the API.
//
// # What it serves
//
// The requests of go-github's ActionsService for repository, environment
// and organization secrets, and the repository lookup that environment
// secrets need:
//
//	GET    /repos/{owner}/{repo}
//	GET    /repos/{owner}/{repo}/actions/secrets/public-key
//	GET    /repos/{owner}/{repo}/actions/secrets?per_page=&page=
//	GET    /repos/{owner}/{repo}/actions/secrets/{name}
//	PUT    /repos/{owner}/{repo}/actions/secrets/{name}
//	DELETE /repos/{owner}/{repo}/actions/secrets/{name}
//	       /repositories/{repository_id}/environments/{env}/secrets[...]
//	       /repos/{owner}/{repo}/environments/{env}/secrets[...]
//	       /orgs/{org}/actions/secrets[...]
//
// (the same five secret operations under each prefix). Paths may also
// start with /api/v3, as GitHub Enterprise Server's do. Nothing else is
// served (404).
//
// # Behaviour modelled on GitHub
//
//   - Every request needs "Authorization: Bearer <token>" or
//     "token <token>" with the server's token or one registered with
//     [Server.AddToken]; otherwise 401 {"message":"Bad credentials"}.
//   - Token permissions: a token registered with AddToken carries a
//     [Grant], the fine-grained permissions of a fine-grained personal
//     access token or GitHub App installation, or the scopes of a
//     classic token, and each request is checked against what GitHub's
//     REST documentation says its endpoint needs (the table is on
//     Grant). A fine-grained token without them gets 403 "Resource not
//     accessible by personal access token" (or "by integration") and the
//     X-Accepted-GitHub-Permissions header naming what was needed; a
//     classic token without the scope gets 404 for a repository's
//     secrets (GitHub does not confirm that a private repository
//     exists) and 403 "Must have admin rights to Repository." for an
//     organization's, with X-OAuth-Scopes and X-Accepted-OAuth-Scopes.
//     The server's own token may do anything, unless AddToken restricts
//     it too.
//   - Each place of secrets (a repository, an environment, an
//     organization) has its own NaCl key pair and key id. A PUT must name
//     the current key id and carry a value sealed to its public key
//     (box.SealAnonymous, base64): the server opens it with the private
//     key and keeps the plaintext. A value that does not open, or an old
//     key id after [Secrets.RotateKey], gets 422 "Bad request - validation
//     failed due to an improperly encrypted secret"; a missing field or a
//     value that is not base64 gets 422 "Invalid request." as GitHub
//     words it.
//   - Names: letters, digits and '_', not starting with a digit nor with
//     GITHUB_, case-insensitive and stored upper-case (a PUT of "db_url"
//     creates DB_URL). Others get 422.
//   - Values up to 48 KB (49,152 bytes of plaintext), 422 beyond.
//   - At most 100 repository secrets, 100 secrets per environment and
//     1,000 organization secrets (GitHub's documented limits; Options can
//     change them), 422 beyond.
//   - A PUT answers 201 when it creates the secret and 204 when it
//     updates it; DELETE answers 204, and 404 for a secret that does not
//     exist, as GET does.
//   - created_at and updated_at have one-second resolution, as GitHub's
//     do: two writes within one second leave the same updated_at. Options
//     can set the clock (see [TickingClock]).
//   - Lists are sorted by name, 30 per page by default and at most 100
//     (per_page), with total_count and a Link header (next, last, first,
//     prev) as GitHub sends them.
//   - Organization secrets carry visibility (all, private, selected;
//     required on PUT) and, with selected, the repository ids.
//   - A primary rate limit (5,000 requests an hour unless Options say
//     otherwise): every answer carries x-ratelimit-limit, -remaining,
//     -used, -reset and -resource; beyond the limit GitHub's 403 with
//     x-ratelimit-remaining: 0, which go-github turns into a
//     *github.RateLimitError.
//
// Not modelled: which repositories or organizations a token may reach
// (a fine-grained token's repository selection, an App's installation:
// every token reaches every place), Metadata being granted with every
// fine-grained token, the role of the token's user (collaborator,
// organization owner), the selected-repositories sub-resources of
// organization secrets, Dependabot and Codespaces secrets, variables,
// conditional requests (ETag), and GitHub's exact wording of the errors
// it does not document (too large a value, too many secrets).
//
// # Looking behind the API
//
// [Secrets] is one place of secrets as the server holds it: a test reads
// the plaintext GitHub would never return ([Secrets.Get]), writes or
// deletes a secret as another writer would ([Secrets.Set],
// [Secrets.Delete]), rotates the key pair, reads the private key and
// every PUT body received ([Secrets.Received]) to check what a client
// sent on the wire. [Server.Count] counts requests per operation, and
// [Server.FailNext] and [Server.OnRequest] inject faults (5xx, rate
// limits, hang-ups, delays) and interleave other writers.
//
// A Server is safe for concurrent use.
package ghactionstest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	gosync "sync"
	"time"

	"golang.org/x/crypto/nacl/box"
)

// DefaultToken is the token a Server accepts when Options.Token is empty.
const DefaultToken = "ghp_ghactionstest0000000000000000000000"

// MaxValueSize is the largest secret value GitHub accepts: 48 KB of
// plaintext.
const MaxValueSize = 48 * 1024

// GitHub's documented limits on the number of secrets.
const (
	DefaultMaxRepositorySecrets   = 100
	DefaultMaxEnvironmentSecrets  = 100
	DefaultMaxOrganizationSecrets = 1000
)

// DefaultRateLimit is the primary rate limit of an authenticated user:
// requests an hour.
const DefaultRateLimit = 5000

// Op names an operation of the API, for counting and for faults.
type Op string

// The operations the server answers.
const (
	OpGetRepository Op = "get-repository" // GET /repos/{owner}/{repo}
	OpGetPublicKey  Op = "get-public-key" // GET .../secrets/public-key
	OpListSecrets   Op = "list-secrets"   // GET .../secrets
	OpGetSecret     Op = "get-secret"     // GET .../secrets/{name}
	OpPutSecret     Op = "put-secret"     // PUT .../secrets/{name}
	OpDeleteSecret  Op = "delete-secret"  // DELETE .../secrets/{name}
	OpUnknown       Op = "unknown"        // any other request (answered 404)
)

// Options configure a Server. The zero value is usable.
type Options struct {
	// Token is the token every request must carry; empty means
	// DefaultToken.
	Token string
	// Clock gives the time stamped on secrets (created_at, updated_at),
	// which the server truncates to the second as GitHub does; nil means
	// time.Now. See TickingClock.
	Clock func() time.Time
	// RateLimit is the primary rate limit, in requests an hour; 0 means
	// DefaultRateLimit.
	RateLimit int
	// MaxRepositorySecrets, MaxEnvironmentSecrets and
	// MaxOrganizationSecrets bound the number of secrets of each place;
	// 0 means GitHub's documented limit.
	MaxRepositorySecrets, MaxEnvironmentSecrets, MaxOrganizationSecrets int
	// TLS serves HTTPS with a self-signed certificate; use
	// Server.Client's transport to reach it.
	TLS bool
}

// TickingClock returns a clock for Options.Clock that starts at start and
// advances by one second on every reading, so that every write gets an
// updated_at of its own, as writes more than a second apart would on
// GitHub. It is safe for concurrent use.
func TickingClock(start time.Time) func() time.Time {
	var mu gosync.Mutex
	t := start.Truncate(time.Second)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Second)
		return t
	}
}

// Server is a local GitHub REST API for Actions secrets. Create it with
// NewServer and stop it with Close.
type Server struct {
	// URL is the base URL of the API, with a trailing slash, as
	// go-github's Client.BaseURL takes it (for example
	// "http://127.0.0.1:41234/").
	URL string
	// Token is the token requests must carry.
	Token string

	hs   *httptest.Server
	opts Options
	mux  *http.ServeMux

	mu        gosync.Mutex
	repos     map[string]*Repository // by lower-case "owner/name"
	reposByID map[int64]*Repository
	orgs      map[string]*Secrets // by lower-case name
	nextID    int64
	counts    map[Op]int
	faults    []*pendingFault
	hooks     []func(Request)
	grants    map[string]*Grant // by token
	rate      struct {
		used  int
		reset time.Time
	}
}

// NewServer starts a Server on a loopback port. Close it when done (for
// example with t.Cleanup(srv.Close)).
// A nil options means the zero Options.
func NewServer(options *Options) *Server {
	var opts Options
	if options != nil {
		opts = *options
	}
	if opts.Token == "" {
		opts.Token = DefaultToken
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.RateLimit <= 0 {
		opts.RateLimit = DefaultRateLimit
	}
	if opts.MaxRepositorySecrets <= 0 {
		opts.MaxRepositorySecrets = DefaultMaxRepositorySecrets
	}
	if opts.MaxEnvironmentSecrets <= 0 {
		opts.MaxEnvironmentSecrets = DefaultMaxEnvironmentSecrets
	}
	if opts.MaxOrganizationSecrets <= 0 {
		opts.MaxOrganizationSecrets = DefaultMaxOrganizationSecrets
	}
	s := &Server{
		Token:     opts.Token,
		opts:      opts,
		repos:     map[string]*Repository{},
		reposByID: map[int64]*Repository{},
		orgs:      map[string]*Secrets{},
		nextID:    1296269, // as GitHub's example repository "octocat/Hello-World"
		counts:    map[Op]int{},
		grants:    map[string]*Grant{},
	}
	s.routes()
	if opts.TLS {
		s.hs = httptest.NewTLSServer(http.HandlerFunc(s.serve))
	} else {
		s.hs = httptest.NewServer(http.HandlerFunc(s.serve))
	}
	s.URL = s.hs.URL + "/"
	return s
}

// Client returns an HTTP client that trusts the server's certificate
// (with Options.TLS) and reaches it; without TLS any client does.
func (s *Server) Client() *http.Client { return s.hs.Client() }

// Close stops the server and closes its connections.
func (s *Server) Close() { s.hs.Close() }

// Repository is a repository of the server, with its secrets and its
// environments.
type Repository struct {
	// ID is the repository's id, as GET /repos/{owner}/{repo} reports it
	// and environment secrets' paths use it.
	ID int64
	// Owner and Name are as AddRepository was given them; GitHub compares
	// them case-insensitively.
	Owner, Name string

	secrets *Secrets
	envs    map[string]*Secrets // by name, as GitHub compares them: case-insensitively
}

// AddRepository creates the repository owner/name, or returns it when it
// exists (owner and name are case-insensitive, as on GitHub).
func (s *Server) AddRepository(owner, name string) *Repository {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := strings.ToLower(owner + "/" + name)
	if r := s.repos[k]; r != nil {
		return r
	}
	id := s.nextID
	s.nextID++
	r := &Repository{ID: id, Owner: owner, Name: name, envs: map[string]*Secrets{}}
	r.secrets = newSecrets(s, "repository "+owner+"/"+name, s.opts.MaxRepositorySecrets, placeRepository)
	s.repos[k] = r
	s.reposByID[id] = r
	return r
}

// Secrets returns the repository's secrets.
func (r *Repository) Secrets() *Secrets { return r.secrets }

// AddEnvironment creates the repository's environment name, or returns it
// when it exists, and returns its secrets.
func (r *Repository) AddEnvironment(name string) *Secrets {
	s := r.secrets.srv
	s.mu.Lock()
	defer s.mu.Unlock()
	k := strings.ToLower(name)
	if e := r.envs[k]; e != nil {
		return e
	}
	e := newSecrets(s, "environment "+name+" of "+r.Owner+"/"+r.Name, s.opts.MaxEnvironmentSecrets, placeEnvironment)
	r.envs[k] = e
	return e
}

// AddOrganization creates the organization name, or returns it when it
// exists, and returns its secrets.
func (s *Server) AddOrganization(name string) *Secrets {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := strings.ToLower(name)
	if o := s.orgs[k]; o != nil {
		return o
	}
	o := newSecrets(s, "organization "+name, s.opts.MaxOrganizationSecrets, placeOrganization)
	o.org = name
	s.orgs[k] = o
	return o
}

// Secrets is one place of secrets: a repository's, an environment's or an
// organization's, with its key pair. Its methods look behind the API, as
// GitHub itself would; they are safe for concurrent use.
type Secrets struct {
	srv   *Server
	label string
	max   int
	org   string // the organization's name, for organization secrets
	isOrg bool
	kind  place

	// Guarded by srv.mu.
	keyID    string
	pub      *[32]byte
	priv     *[32]byte
	items    map[string]*entry // by upper-case name
	received []Put
}

type entry struct {
	name             string
	value            string
	created, updated time.Time
	visibility       string
	selected         []int64
}

func newSecrets(s *Server, label string, limit int, kind place) *Secrets {
	sc := &Secrets{srv: s, label: label, max: limit, isOrg: kind == placeOrganization, kind: kind, items: map[string]*entry{}}
	sc.newKey()
	return sc
}

// newKey makes a new key pair and key id. srv.mu is held (or sc is new).
func (sc *Secrets) newKey() {
	pub, priv, err := box.GenerateKey(rand.Reader)
	if err != nil {
		panic(fmt.Sprintf("ghactionstest: generating a key pair: %v", err))
	}
	// GitHub's key ids are decimal numbers of about 18 digits.
	n, err := rand.Int(rand.Reader, big.NewInt(9e17))
	if err != nil {
		panic(fmt.Sprintf("ghactionstest: generating a key id: %v", err))
	}
	sc.keyID = strconv.FormatInt(n.Int64()+1e17, 10)
	sc.pub, sc.priv = pub, priv
}

// Secret is a secret as the server holds it, with the plaintext value that
// GitHub never returns.
type Secret struct {
	Name      string // as stored: upper-case
	Value     string
	CreatedAt time.Time
	UpdatedAt time.Time
	// Visibility and SelectedRepositoryIDs are set for organization
	// secrets.
	Visibility            string
	SelectedRepositoryIDs []int64
}

// String returns the secret without its value.
func (s Secret) String() string {
	return fmt.Sprintf("{Name:%s Value:***** UpdatedAt:%s}", s.Name, s.UpdatedAt.Format(time.RFC3339))
}

// GoString is like String.
func (s Secret) GoString() string { return s.String() }

// Put is the body of one PUT request received, as it came, and the status
// the server answered.
type Put struct {
	Name                  string // as in the path
	KeyID                 string
	EncryptedValue        string // base64 of the sealed box
	Visibility            string
	SelectedRepositoryIDs []int64
	Status                int
}

// Get returns the secret name (case-insensitive) with its plaintext.
func (sc *Secrets) Get(name string) (Secret, bool) {
	sc.srv.mu.Lock()
	defer sc.srv.mu.Unlock()
	e := sc.items[strings.ToUpper(name)]
	if e == nil {
		return Secret{}, false
	}
	return e.secret(), true
}

func (e *entry) secret() Secret {
	return Secret{Name: e.name, Value: e.value, CreatedAt: e.created, UpdatedAt: e.updated,
		Visibility: e.visibility, SelectedRepositoryIDs: slices.Clone(e.selected)}
}

// List returns every secret, sorted by name.
func (sc *Secrets) List() []Secret {
	sc.srv.mu.Lock()
	defer sc.srv.mu.Unlock()
	out := make([]Secret, 0, len(sc.items))
	for _, e := range sc.sorted() {
		out = append(out, e.secret())
	}
	return out
}

// Values returns every secret's plaintext by name.
func (sc *Secrets) Values() map[string]string {
	sc.srv.mu.Lock()
	defer sc.srv.mu.Unlock()
	out := make(map[string]string, len(sc.items))
	for k, e := range sc.items {
		out[k] = e.value
	}
	return out
}

// Set creates or updates the secret name as another writer would through
// the API: the name follows GitHub's rules (stored upper-case) and the
// value its size limit; updated_at is set from the clock. Organization
// secrets set so have visibility "private".
func (sc *Secrets) Set(name, value string) error {
	if msg := checkName(name); msg != "" {
		return errors.New("ghactionstest: " + msg)
	}
	if len(value) > MaxValueSize {
		return fmt.Errorf("ghactionstest: value of %d bytes is over GitHub's limit of %d", len(value), MaxValueSize)
	}
	sc.srv.mu.Lock()
	defer sc.srv.mu.Unlock()
	vis := ""
	if sc.isOrg {
		vis = "private"
	}
	if _, err := sc.store(name, value, vis, nil); err != "" {
		return errors.New("ghactionstest: " + err)
	}
	return nil
}

// Delete deletes the secret name, as another writer would, and reports
// whether it existed.
func (sc *Secrets) Delete(name string) bool {
	sc.srv.mu.Lock()
	defer sc.srv.mu.Unlock()
	k := strings.ToUpper(name)
	_, ok := sc.items[k]
	delete(sc.items, k)
	return ok
}

// RotateKey replaces the key pair with a new one, under a new key id, and
// returns the id. PUTs sealed to the old key are refused from then on.
func (sc *Secrets) RotateKey() string {
	sc.srv.mu.Lock()
	defer sc.srv.mu.Unlock()
	sc.newKey()
	return sc.keyID
}

// KeyID returns the current key id.
func (sc *Secrets) KeyID() string {
	sc.srv.mu.Lock()
	defer sc.srv.mu.Unlock()
	return sc.keyID
}

// PublicKey returns the current public key.
func (sc *Secrets) PublicKey() *[32]byte {
	sc.srv.mu.Lock()
	defer sc.srv.mu.Unlock()
	k := *sc.pub
	return &k
}

// PrivateKey returns the current private key, so that a test can open
// what a client sealed (box.OpenAnonymous).
func (sc *Secrets) PrivateKey() *[32]byte {
	sc.srv.mu.Lock()
	defer sc.srv.mu.Unlock()
	k := *sc.priv
	return &k
}

// Open opens a base64 sealed box with the current key pair, as the server
// does with a PUT's encrypted_value.
func (sc *Secrets) Open(encryptedValue string) (string, error) {
	sc.srv.mu.Lock()
	pub, priv := sc.pub, sc.priv
	sc.srv.mu.Unlock()
	return open(encryptedValue, pub, priv)
}

func open(encryptedValue string, pub, priv *[32]byte) (string, error) {
	ct, err := base64.StdEncoding.DecodeString(encryptedValue)
	if err != nil {
		return "", fmt.Errorf("ghactionstest: encrypted value is not base64: %w", err)
	}
	pt, ok := box.OpenAnonymous(nil, ct, pub, priv)
	if !ok {
		return "", errors.New("ghactionstest: encrypted value does not open with the key pair")
	}
	return string(pt), nil
}

// Received returns the body of every PUT received for these secrets whose
// JSON parsed, in order, including the ones refused.
func (sc *Secrets) Received() []Put {
	sc.srv.mu.Lock()
	defer sc.srv.mu.Unlock()
	out := make([]Put, len(sc.received))
	for i, p := range sc.received {
		p.SelectedRepositoryIDs = slices.Clone(p.SelectedRepositoryIDs)
		out[i] = p
	}
	return out
}

// sorted returns the entries sorted by name. srv.mu is held.
func (sc *Secrets) sorted() []*entry {
	out := make([]*entry, 0, len(sc.items))
	for _, e := range sc.items {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b *entry) int { return strings.Compare(a.name, b.name) })
	return out
}

// store creates or updates a secret; it reports whether it created it, or
// why not. srv.mu is held.
func (sc *Secrets) store(name, value, visibility string, selected []int64) (created bool, refusal string) {
	k := strings.ToUpper(name)
	now := sc.srv.opts.Clock().UTC().Truncate(time.Second)
	e := sc.items[k]
	if e == nil {
		if len(sc.items) >= sc.max {
			return false, fmt.Sprintf("the %s already holds the maximum of %d secrets", sc.label, sc.max)
		}
		e = &entry{name: k, created: now}
		sc.items[k] = e
		created = true
	}
	e.value, e.updated = value, now
	e.visibility = visibility
	e.selected = nil
	if visibility == "selected" {
		e.selected = slices.Clone(selected)
	}
	return created, ""
}

var nameChars = regexp.MustCompile(`^[A-Za-z0-9_]+$`)

// checkName returns why GitHub would refuse the secret name, or "".
func checkName(name string) string {
	switch {
	case !nameChars.MatchString(name):
		return "Secret names can only contain alphanumeric characters ([a-z], [A-Z], [0-9]) or underscores (_). Spaces are not allowed."
	case name[0] >= '0' && name[0] <= '9':
		return "Secret names must not start with a number."
	case strings.HasPrefix(strings.ToUpper(name), "GITHUB_"):
		return "Secret names must not start with GITHUB_."
	}
	return ""
}

// Count returns how many requests of op the server received, answered
// or refused.
func (s *Server) Count(op Op) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[op]
}

// Counts returns the number of requests received per operation.
func (s *Server) Counts() map[Op]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[Op]int, len(s.counts))
	for k, v := range s.counts {
		out[k] = v
	}
	return out
}

// Requests returns the number of requests received.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, v := range s.counts {
		n += v
	}
	return n
}

// ResetCounts sets every request counter to zero.
func (s *Server) ResetCounts() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.counts)
}

// Fault is how the server fails a request (see FailNext).
type Fault struct {
	// Ops limits the fault to requests of these operations; empty means
	// every request.
	Ops []Op
	// Delay holds the answer back this long (less if the client gives
	// up). A Fault with nothing else set then answers normally.
	Delay time.Duration
	// Status is the status of the answer: 500 when zero, 403 with
	// RateLimit or SecondaryRateLimit.
	Status int
	// RateLimit answers as GitHub does when the primary rate limit is
	// exhausted: x-ratelimit-remaining: 0 and x-ratelimit-reset = Reset
	// (now when zero, so that go-github does not hold back the requests
	// that follow). go-github returns a *github.RateLimitError.
	RateLimit bool
	Reset     time.Time
	// SecondaryRateLimit answers as GitHub's secondary (abuse) rate
	// limit does, with Retry-After in whole seconds of RetryAfter. go-github
	// returns a *github.AbuseRateLimitError.
	SecondaryRateLimit bool
	RetryAfter         time.Duration
	// Hangup closes the connection without an answer.
	Hangup bool
}

type pendingFault struct {
	n int
	f Fault
}

func (f Fault) answersNormally() bool {
	return f.Status == 0 && !f.RateLimit && !f.SecondaryRateLimit && !f.Hangup && f.Delay > 0
}

func (f Fault) matches(op Op) bool { return len(f.Ops) == 0 || slices.Contains(f.Ops, op) }

// FailNext makes the next n requests that f matches fail as f says.
// Faults queue in order; a request takes the first one that matches it.
func (s *Server) FailNext(n int, f Fault) {
	if n <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &pendingFault{n: n, f: f})
}

// Request describes a request for OnRequest hooks.
type Request struct {
	Op     Op
	Method string
	Path   string // unescaped, without any /api/v3 prefix
	// Secrets is the place of secrets the request is for (nil for
	// OpGetRepository and unknown places), and Name the secret's name as
	// in the path ("" when none).
	Secrets *Secrets
	Name    string
}

// OnRequest registers fn to run at the start of every request, before
// the request is authenticated or answered, with no lock held: a test
// can write a secret "concurrently" at a precise point. Hooks run in the
// order registered.
func (s *Server) OnRequest(fn func(Request)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks = append(s.hooks, fn)
}

// ---- HTTP ----

type ctxKey struct{}

// reqInfo is what the router learned of a request.
type reqInfo struct {
	op      Op
	secrets *Secrets
	repo    *Repository
	name    string
	escPath string // the request's escaped path, prefix included, for Link
}

type handler func(w http.ResponseWriter, r *http.Request, in *reqInfo)

func (s *Server) routes() {
	s.mux = http.NewServeMux()
	repoSecrets := func(r *http.Request) *Secrets {
		if repo := s.repo(r.PathValue("owner"), r.PathValue("repo")); repo != nil {
			return repo.secrets
		}
		return nil
	}
	envByID := func(r *http.Request) *Secrets {
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil {
			return nil
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if repo := s.reposByID[id]; repo != nil {
			return repo.envs[strings.ToLower(r.PathValue("env"))]
		}
		return nil
	}
	envByName := func(r *http.Request) *Secrets {
		repo := s.repo(r.PathValue("owner"), r.PathValue("repo"))
		if repo == nil {
			return nil
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		return repo.envs[strings.ToLower(r.PathValue("env"))]
	}
	orgSecrets := func(r *http.Request) *Secrets {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.orgs[strings.ToLower(r.PathValue("org"))]
	}
	for prefix, find := range map[string]func(*http.Request) *Secrets{
		"/repos/{owner}/{repo}/actions/secrets":            repoSecrets,
		"/repositories/{id}/environments/{env}/secrets":    envByID,
		"/repos/{owner}/{repo}/environments/{env}/secrets": envByName,
		"/orgs/{org}/actions/secrets":                      orgSecrets,
	} {
		s.handle("GET "+prefix+"/public-key", OpGetPublicKey, find, s.getPublicKey)
		s.handle("GET "+prefix, OpListSecrets, find, s.listSecrets)
		s.handle("GET "+prefix+"/{name}", OpGetSecret, find, s.getSecret)
		s.handle("PUT "+prefix+"/{name}", OpPutSecret, find, s.putSecret)
		s.handle("DELETE "+prefix+"/{name}", OpDeleteSecret, find, s.deleteSecret)
	}
	s.handle("GET /repos/{owner}/{repo}", OpGetRepository, nil, s.getRepository)
	s.handle("/", OpUnknown, nil, func(w http.ResponseWriter, r *http.Request, in *reqInfo) {
		writeError(w, http.StatusNotFound, "Not Found", docsREST)
	})
}

func (s *Server) repo(owner, name string) *Repository {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.repos[strings.ToLower(owner+"/"+name)]
}

// handle registers h for pattern: it counts the request, runs the hooks,
// injects faults, checks the token and the rate limit, finds the place of
// secrets (404 when there is none), and calls h.
func (s *Server) handle(pattern string, op Op, find func(*http.Request) *Secrets, h handler) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		in := r.Context().Value(ctxKey{}).(*reqInfo)
		in.op = op
		in.name = r.PathValue("name")
		if find != nil {
			in.secrets = find(r)
		}
		s.mu.Lock()
		s.counts[op]++
		hooks := slices.Clone(s.hooks)
		var fault *Fault
		for i, pf := range s.faults {
			if pf.f.matches(op) {
				f := pf.f
				fault = &f
				if pf.n--; pf.n == 0 {
					s.faults = slices.Delete(s.faults, i, i+1)
				}
				break
			}
		}
		s.mu.Unlock()
		for _, fn := range hooks {
			fn(Request{Op: op, Method: r.Method, Path: r.URL.Path, Secrets: in.secrets, Name: in.name})
		}
		if fault != nil {
			if fault.Delay > 0 {
				t := time.NewTimer(fault.Delay)
				select {
				case <-t.C:
				case <-r.Context().Done():
					t.Stop()
					return
				}
			}
			if !fault.answersNormally() {
				s.fail(w, *fault)
				return
			}
		}
		grant, ok := s.authorized(r)
		if !ok {
			writeError(w, http.StatusUnauthorized, "Bad credentials", docsREST)
			return
		}
		if !s.rateLimit(w) {
			return
		}
		if find != nil && in.secrets == nil {
			writeError(w, http.StatusNotFound, "Not Found", docsSecrets)
			return
		}
		if grant != nil && !s.permit(w, r, op, in, grant) {
			return
		}
		h(w, r, in)
	})
}

// serve strips an /api/v3 prefix (GitHub Enterprise Server's) and routes.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	in := &reqInfo{escPath: r.URL.EscapedPath()}
	if rest, ok := strings.CutPrefix(r.URL.Path, "/api/v3"); ok && (rest == "" || rest[0] == '/') {
		r2 := r.Clone(r.Context())
		r2.URL.Path = rest
		r2.URL.RawPath = strings.TrimPrefix(r.URL.RawPath, "/api/v3")
		r = r2
	}
	w.Header().Set("X-GitHub-Media-Type", "github.v3; format=json")
	w.Header().Set("X-GitHub-Api-Version-Selected", "2022-11-28")
	s.mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, in)))
}

// authorized returns the grant of the request's token (nil for the
// server's own token when AddToken did not restrict it: it may do
// anything), or false when the server does not know the token.
func (s *Server) authorized(r *http.Request) (*Grant, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || (!strings.EqualFold(scheme, "Bearer") && !strings.EqualFold(scheme, "token")) {
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if g, ok := s.grants[token]; ok {
		return g, true
	}
	return nil, token == s.Token
}

// rateLimit counts the request against the primary rate limit and sets
// the rate headers; beyond the limit it answers 403 and returns false.
func (s *Server) rateLimit(w http.ResponseWriter) bool {
	s.mu.Lock()
	now := time.Now()
	if !now.Before(s.rate.reset) {
		s.rate.used, s.rate.reset = 0, now.Add(time.Hour).Truncate(time.Second)
	}
	s.rate.used++
	used, reset, limit := s.rate.used, s.rate.reset, s.opts.RateLimit
	s.mu.Unlock()
	remaining := max(limit-used, 0)
	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
	h.Set("X-RateLimit-Used", strconv.Itoa(min(used, limit)))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
	h.Set("X-RateLimit-Resource", "core")
	if used > limit {
		writeError(w, http.StatusForbidden, "API rate limit exceeded for user ID 1. If you reach out to GitHub Support for help, please include the request ID.", docsRateLimits+"#about-rate-limits")
		return false
	}
	return true
}

// fail answers as f says.
func (s *Server) fail(w http.ResponseWriter, f Fault) {
	if f.Hangup {
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
				return
			}
		}
		panic(http.ErrAbortHandler) // closes the connection without an answer
	}
	status := f.Status
	switch {
	case f.RateLimit:
		if status == 0 {
			status = http.StatusForbidden
		}
		reset := f.Reset
		if reset.IsZero() {
			reset = time.Now()
		}
		h := w.Header()
		h.Set("X-RateLimit-Limit", strconv.Itoa(s.opts.RateLimit))
		h.Set("X-RateLimit-Remaining", "0")
		h.Set("X-RateLimit-Used", strconv.Itoa(s.opts.RateLimit))
		h.Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
		h.Set("X-RateLimit-Resource", "core")
		writeError(w, status, "API rate limit exceeded for user ID 1. If you reach out to GitHub Support for help, please include the request ID.", docsRateLimits+"#about-rate-limits")
	case f.SecondaryRateLimit:
		if status == 0 {
			status = http.StatusForbidden
		}
		w.Header().Set("Retry-After", strconv.Itoa(int(f.RetryAfter/time.Second)))
		writeError(w, status, "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID.", docsRateLimits+"#about-secondary-rate-limits")
	default:
		if status == 0 {
			status = http.StatusInternalServerError
		}
		msg := http.StatusText(status)
		if status >= 500 {
			msg = "Server Error"
		}
		writeError(w, status, msg, "")
	}
}

const (
	docsREST       = "https://docs.github.com/rest"
	docsSecrets    = "https://docs.github.com/rest/actions/secrets"
	docsRateLimits = "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api"
)

// writeError writes GitHub's error shape.
func writeError(w http.ResponseWriter, status int, message, docs string) {
	body := map[string]string{"message": message, "status": strconv.Itoa(status)}
	if docs != "" {
		body["documentation_url"] = docs
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func timestamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func (s *Server) getRepository(w http.ResponseWriter, r *http.Request, in *reqInfo) {
	repo := s.repo(r.PathValue("owner"), r.PathValue("repo"))
	if repo == nil {
		writeError(w, http.StatusNotFound, "Not Found", "https://docs.github.com/rest/repos/repos#get-a-repository")
		return
	}
	full := repo.Owner + "/" + repo.Name
	writeJSON(w, http.StatusOK, map[string]any{
		"id":        repo.ID,
		"node_id":   base64.StdEncoding.EncodeToString([]byte("010:Repository" + strconv.FormatInt(repo.ID, 10))),
		"name":      repo.Name,
		"full_name": full,
		"private":   true,
		"owner":     map[string]any{"login": repo.Owner, "type": "Organization"},
		"html_url":  "https://github.com/" + full,
		"url":       "https://api.github.com/repos/" + full,
	})
}

func (s *Server) getPublicKey(w http.ResponseWriter, r *http.Request, in *reqInfo) {
	s.mu.Lock()
	body := map[string]string{"key_id": in.secrets.keyID, "key": base64.StdEncoding.EncodeToString(in.secrets.pub[:])}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, body)
}

type secretJSON struct {
	Name                    string `json:"name"`
	CreatedAt               string `json:"created_at"`
	UpdatedAt               string `json:"updated_at"`
	Visibility              string `json:"visibility,omitempty"`
	SelectedRepositoriesURL string `json:"selected_repositories_url,omitempty"`
}

func (s *Server) secretJSON(r *http.Request, sc *Secrets, e *entry) secretJSON {
	out := secretJSON{Name: e.name, CreatedAt: timestamp(e.created), UpdatedAt: timestamp(e.updated), Visibility: e.visibility}
	if e.visibility == "selected" {
		out.SelectedRepositoriesURL = s.baseURL(r) + "orgs/" + url.PathEscape(sc.org) + "/actions/secrets/" + e.name + "/repositories"
	}
	return out
}

// baseURL is the API's base URL as the client reached it.
func (s *Server) baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	base := scheme + "://" + r.Host + "/"
	if in, _ := r.Context().Value(ctxKey{}).(*reqInfo); in != nil && strings.HasPrefix(in.escPath, "/api/v3/") {
		base += "api/v3/"
	}
	return base
}

func (s *Server) listSecrets(w http.ResponseWriter, r *http.Request, in *reqInfo) {
	q := r.URL.Query()
	perPage, err := strconv.Atoi(q.Get("per_page"))
	if err != nil || perPage <= 0 {
		perPage = 30
	}
	perPage = min(perPage, 100)
	page, err := strconv.Atoi(q.Get("page"))
	if err != nil || page <= 0 {
		page = 1
	}
	s.mu.Lock()
	all := in.secrets.sorted()
	lo, hi := min((page-1)*perPage, len(all)), min(page*perPage, len(all))
	list := make([]secretJSON, 0, hi-lo)
	for _, e := range all[lo:hi] {
		list = append(list, s.secretJSON(r, in.secrets, e))
	}
	total := len(all)
	s.mu.Unlock()

	last := max((total+perPage-1)/perPage, 1)
	if last > 1 {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		link := func(p int, rel string) string {
			v := url.Values{}
			v.Set("per_page", strconv.Itoa(perPage))
			v.Set("page", strconv.Itoa(p))
			return fmt.Sprintf(`<%s://%s%s?%s>; rel="%s"`, scheme, r.Host, in.escPath, v.Encode(), rel)
		}
		var links []string
		if page > 1 {
			links = append(links, link(min(page-1, last), "prev"))
		}
		if page < last {
			links = append(links, link(page+1, "next"), link(last, "last"))
		}
		if page > 1 {
			links = append(links, link(1, "first"))
		}
		w.Header().Set("Link", strings.Join(links, ", "))
	}
	writeJSON(w, http.StatusOK, map[string]any{"total_count": total, "secrets": list})
}

func (s *Server) getSecret(w http.ResponseWriter, r *http.Request, in *reqInfo) {
	s.mu.Lock()
	e := in.secrets.items[strings.ToUpper(in.name)]
	var body secretJSON
	if e != nil {
		body = s.secretJSON(r, in.secrets, e)
	}
	s.mu.Unlock()
	if e == nil {
		writeError(w, http.StatusNotFound, "Not Found", docsSecrets)
		return
	}
	writeJSON(w, http.StatusOK, body)
}

var base64Pattern = `/^(?:[A-Za-z0-9+\/]{4})*(?:[A-Za-z0-9+\/]{2}==|[A-Za-z0-9+\/]{3}=|[A-Za-z0-9+\/]{4})$/`

func (s *Server) putSecret(w http.ResponseWriter, r *http.Request, in *reqInfo) {
	var body struct {
		EncryptedValue        *string `json:"encrypted_value"`
		KeyID                 *string `json:"key_id"`
		Visibility            *string `json:"visibility"`
		SelectedRepositoryIDs []int64 `json:"selected_repository_ids"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "Problems parsing JSON", docsSecrets)
		return
	}
	sc := in.secrets
	put := Put{Name: in.name, SelectedRepositoryIDs: body.SelectedRepositoryIDs}
	if body.KeyID != nil {
		put.KeyID = *body.KeyID
	}
	if body.EncryptedValue != nil {
		put.EncryptedValue = *body.EncryptedValue
	}
	if body.Visibility != nil {
		put.Visibility = *body.Visibility
	}
	status, msg := s.validatePut(sc, in.name, body.EncryptedValue, body.KeyID, body.Visibility)
	var value string
	if status == 0 {
		s.mu.Lock()
		pub, priv, keyID := sc.pub, sc.priv, sc.keyID
		s.mu.Unlock()
		var err error
		if put.KeyID != keyID {
			status, msg = http.StatusUnprocessableEntity, "Bad request - validation failed due to an improperly encrypted secret"
		} else if value, err = open(put.EncryptedValue, pub, priv); err != nil {
			status, msg = http.StatusUnprocessableEntity, "Bad request - validation failed due to an improperly encrypted secret"
		} else if len(value) > MaxValueSize {
			status, msg = http.StatusUnprocessableEntity, fmt.Sprintf("Invalid request.\n\nSecret value is too large: the maximum is %d bytes.", MaxValueSize)
		}
	}
	s.mu.Lock()
	if status == 0 && put.KeyID != sc.keyID {
		// Rotated while the value was being opened.
		status, msg = http.StatusUnprocessableEntity, "Bad request - validation failed due to an improperly encrypted secret"
	}
	if status == 0 {
		vis, ids := "", []int64(nil)
		if sc.isOrg {
			vis, ids = put.Visibility, put.SelectedRepositoryIDs
		}
		created, refusal := sc.store(in.name, value, vis, ids)
		switch {
		case refusal != "":
			status, msg = http.StatusUnprocessableEntity, "Invalid request.\n\n"+refusal+"."
		case created:
			status = http.StatusCreated
		default:
			status = http.StatusNoContent
		}
	}
	put.Status = status
	sc.received = append(sc.received, put)
	s.mu.Unlock()
	switch status {
	case http.StatusCreated:
		writeJSON(w, status, struct{}{})
	case http.StatusNoContent:
		w.WriteHeader(status)
	default:
		writeError(w, status, msg, docsSecrets)
	}
}

// validatePut checks a PUT as GitHub does before opening the value.
func (s *Server) validatePut(sc *Secrets, name string, value, keyID, visibility *string) (int, string) {
	const invalid = "Invalid request.\n\n"
	if msg := checkName(name); msg != "" {
		return http.StatusUnprocessableEntity, invalid + msg
	}
	switch {
	case value == nil:
		return http.StatusUnprocessableEntity, invalid + `"encrypted_value" wasn't supplied.`
	case keyID == nil:
		return http.StatusUnprocessableEntity, invalid + `"key_id" wasn't supplied.`
	}
	if _, err := base64.StdEncoding.Strict().DecodeString(*value); err != nil || *value == "" {
		return http.StatusUnprocessableEntity, invalid + "encrypted_value does not match " + base64Pattern + "."
	}
	if sc.isOrg {
		switch {
		case visibility == nil:
			return http.StatusUnprocessableEntity, invalid + `"visibility" wasn't supplied.`
		case *visibility != "all" && *visibility != "private" && *visibility != "selected":
			return http.StatusUnprocessableEntity, invalid + fmt.Sprintf("%q is not a member of [\"all\", \"private\", \"selected\"].", *visibility)
		}
	}
	return 0, ""
}

func (s *Server) deleteSecret(w http.ResponseWriter, r *http.Request, in *reqInfo) {
	s.mu.Lock()
	k := strings.ToUpper(in.name)
	_, ok := in.secrets.items[k]
	delete(in.secrets.items, k)
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "Not Found", docsSecrets)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
