package vercel

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/sync/errgroup"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/internal/keylock"
	"github.com/secretsync/secretsync/registry"
)

// Limits.
const (
	// DefaultMaxValueBytes is the largest value Apply writes unless
	// Options.MaxValueBytes says otherwise: Vercel allows 64 KB of
	// variables per deployment, so no single value can be larger.
	DefaultMaxValueBytes = 64 << 10
	// EdgeMaxValueBytes is the largest value a variable read by Edge
	// Functions or Edge Middleware may hold (5 KB); set it as
	// Options.MaxValueBytes for a project that runs on the edge runtime.
	EdgeMaxValueBytes = 5 << 10
	// MaxCommentBytes is the longest comment Vercel keeps, and so the
	// longest ownership marker.
	MaxCommentBytes = 1000
)

// ReservedNames are the names Vercel reserves for its function runtimes
// and refuses for project variables (its "Reserved environment variables"
// page). NormalizeKey and Apply refuse them with destination.ErrInvalidKey.
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

// ErrInvalidOptions reports Options that New cannot use.
var ErrInvalidOptions = errors.New("vercel: invalid options")

// MarkerPrefix starts the comment of every variable this package creates.
const MarkerPrefix = "managed-by: secretsync"

// Marker returns the comment that marks the variables of owner:
// "managed-by: secretsync owner=<owner>", or MarkerPrefix alone for an
// empty owner.
func Marker(owner string) string {
	if owner == "" {
		return MarkerPrefix
	}
	return MarkerPrefix + " owner=" + owner
}

// Options opens a Destination directly, without a registry.
type Options struct {
	// Token is a Vercel access token with access to the project (see the
	// package documentation for its scope). Required.
	Token registry.Credential
	// ProjectID is the project's id or name. Required.
	ProjectID string
	// TeamID is the team that owns the project; empty for a project of
	// the token's personal account.
	TeamID string
	// Targets are the deployment environments of every variable: some of
	// Development, Preview and Production. Required.
	Targets []string
	// Type is the type of the variables created: TypeEncrypted (the
	// default; values can be read back) or TypeSensitive (values cannot
	// be read back: the destination is then write-only). Sensitive
	// variables cannot target Development.
	Type string
	// Owner names the sync that owns the variables; it goes into the
	// marker kept in each variable's comment (see Marker).
	Owner string
	// MaxValueBytes is the largest value written; default
	// DefaultMaxValueBytes. EdgeMaxValueBytes suits projects on the edge
	// runtime.
	MaxValueBytes int

	// BaseURL is the API's base URL; default DefaultBaseURL. Tests point
	// it at a verceltest.Server.
	BaseURL string
	// HTTPClient sends the requests; default a client with a 30 s
	// timeout.
	HTTPClient *http.Client
	// MaxRetries, MinBackoff and MaxWait tune the client's retries (see
	// ClientOptions).
	MaxRetries int
	MinBackoff time.Duration
	MaxWait    time.Duration
}

// Destination keeps the environment variables of a Vercel project: one
// variable per key, with the key as its name, exactly Options.Targets as
// its targets, no git branch, and the owner's marker as its comment. It
// implements destination.Destination, destination.Describer,
// destination.KeyNormalizer and io.Closer, and is safe for concurrent
// use.
type Destination struct {
	c        *Client
	project  string
	targets  []string
	typ      string
	marker   string
	maxValue int

	locks keylock.Map // by key, so that this process's writers of one key take turns
}

var (
	_ destination.Destination   = (*Destination)(nil)
	_ destination.Describer     = (*Destination)(nil)
	_ destination.KeyNormalizer = (*Destination)(nil)
)

// New returns a Destination for options. It sends no request; a wrong token
// or project shows on the first List or Apply. Options it cannot use are
// refused with an error matching ErrInvalidOptions.
// A nil options means the zero Options.
func New(ctx context.Context, options *Options) (*Destination, error) {
	var opts Options
	if options != nil {
		opts = *options
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidOptions, fmt.Sprintf(format, a...))
	}
	switch {
	case opts.Token == "":
		return nil, bad("Token is empty")
	case opts.ProjectID == "":
		return nil, bad("ProjectID is empty")
	case len(opts.Targets) == 0:
		return nil, bad("Targets is empty")
	case opts.MaxValueBytes < 0:
		return nil, bad("MaxValueBytes is negative")
	}
	seen := map[string]bool{}
	for _, t := range opts.Targets {
		if t != Development && t != Preview && t != Production {
			return nil, bad("target %q is none of development, preview, production", t)
		}
		if seen[t] {
			return nil, bad("target %q is given twice", t)
		}
		seen[t] = true
	}
	typ := opts.Type
	switch typ {
	case "":
		typ = TypeEncrypted
	case TypeEncrypted, TypeSensitive:
	default:
		return nil, bad("Type %q is neither encrypted nor sensitive", opts.Type)
	}
	if typ == TypeSensitive && seen[Development] {
		return nil, bad("sensitive variables cannot target development")
	}
	marker := Marker(opts.Owner)
	if len(marker) > MaxCommentBytes || !utf8.ValidString(opts.Owner) || strings.IndexFunc(opts.Owner, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return nil, bad("Owner must be printable text, its marker at most %d bytes", MaxCommentBytes)
	}
	c, err := NewClient(&ClientOptions{
		Token: opts.Token, TeamID: opts.TeamID, BaseURL: opts.BaseURL, HTTPClient: opts.HTTPClient,
		MaxRetries: opts.MaxRetries, MinBackoff: opts.MinBackoff, MaxWait: opts.MaxWait,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidOptions, err)
	}
	maxValue := opts.MaxValueBytes
	if maxValue == 0 {
		maxValue = DefaultMaxValueBytes
	}
	targets := slices.Clone(opts.Targets)
	slices.Sort(targets)
	return &Destination{c: c, project: opts.ProjectID, targets: targets, typ: typ, marker: marker, maxValue: maxValue}, nil
}

// Client returns the REST client the destination uses.
func (d *Destination) Client() *Client { return d.c }

// Capabilities reports NoCheckAndSet, and WriteOnly for sensitive
// variables.
func (d *Destination) Capabilities() destination.Capabilities {
	return destination.Capabilities{NoCheckAndSet: true, WriteOnly: d.typ == TypeSensitive}
}

// Close closes the client's idle connections. It always returns nil.
func (d *Destination) Close() error {
	d.c.CloseIdleConnections()
	return nil
}

var keyPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// checkKey reports whether key is a name Vercel accepts.
func checkKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: empty name", destination.ErrInvalidKey)
	case !keyPattern.MatchString(key):
		return fmt.Errorf("%w: %q: a Vercel variable name is letters, digits and '_', not starting with a digit", destination.ErrInvalidKey, key)
	case slices.Contains(ReservedNames, key):
		return fmt.Errorf("%w: %q is reserved by Vercel", destination.ErrInvalidKey, key)
	}
	return nil
}

// NormalizeKey maps key onto Vercel's naming rules: every character other
// than an ASCII letter, a digit or '_' becomes '_', and a name that starts
// with a digit gets a leading '_'. An empty key, and a name Vercel
// reserves (ReservedNames), get an error wrapping
// destination.ErrInvalidKey. It is deterministic and idempotent.
func (d *Destination) NormalizeKey(key string) (string, error) {
	return NormalizeKey(key)
}

// NormalizeKey is Destination.NormalizeKey, for callers without a
// Destination.
func NormalizeKey(key string) (string, error) {
	var b strings.Builder
	for _, r := range key {
		if r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	out := b.String()
	if out != "" && out[0] >= '0' && out[0] <= '9' {
		out = "_" + out
	}
	if err := checkKey(out); err != nil {
		return "", err
	}
	return out, nil
}

// checkValue reports whether value can be written exactly.
func (d *Destination) checkValue(value string) error {
	switch {
	case !utf8.ValidString(value):
		return fmt.Errorf("%w: not valid UTF-8 (Vercel's API carries JSON text)", destination.ErrInvalidValue)
	case strings.IndexByte(value, 0) >= 0:
		return fmt.Errorf("%w: holds a NUL byte, which no process environment can hold", destination.ErrInvalidValue)
	case len(value) > d.maxValue:
		return fmt.Errorf("%w: %d bytes, over the limit of %d", destination.ErrInvalidValue, len(value), d.maxValue)
	}
	return nil
}

// version is a variable's marker: its id and its updatedAt.
func version(v EnvVar) string { return v.ID + ":" + strconv.FormatInt(v.UpdatedAt, 10) }

func parseVersion(s string) (id string, updated int64, ok bool) {
	id, at, found := strings.Cut(s, ":")
	if !found || id == "" {
		return "", 0, false
	}
	n, err := strconv.ParseInt(at, 10, 64)
	if err != nil {
		return "", 0, false
	}
	return id, n, true
}

// ours reports whether v is an entry of this destination: its marker,
// exactly its targets, no branch and no custom environment.
func (d *Destination) ours(v EnvVar) bool {
	return v.Comment == d.marker && d.exact(v)
}

// exact reports whether v has exactly the destination's targets, no git
// branch and no custom environment.
func (d *Destination) exact(v EnvVar) bool {
	if v.GitBranch != "" || len(v.CustomEnvironmentIDs) > 0 || len(v.Target) != len(d.targets) {
		return false
	}
	for _, t := range v.Target {
		if !slices.Contains(d.targets, t) {
			return false
		}
	}
	return true
}

// blocks reports whether v keeps the destination from creating key: the
// same key, on no git branch, with a target in common.
func (d *Destination) blocks(v EnvVar, key string) bool {
	if v.Key != key || v.GitBranch != "" {
		return false
	}
	for _, t := range v.Target {
		if slices.Contains(d.targets, t) {
			return true
		}
	}
	return false
}

// List returns every variable of the destination (see Destination), by
// name, with its value (empty when write-only) and as Version its id and
// updatedAt. Encrypted values that the list does not answer decrypted are
// read by id, four at a time. Errors: destination.ErrUnavailable (429
// after retries, 5xx, no connection), a context error, or the API's
// *APIError.
func (d *Destination) List(ctx context.Context) (map[string]destination.Secret, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	writeOnly := d.typ == TypeSensitive
	vars, err := d.c.ListEnv(ctx, d.project, &ListOptions{Decrypt: !writeOnly})
	if err != nil {
		return nil, d.wrap(ctx, err)
	}
	out := make(map[string]destination.Secret)
	var unread []EnvVar // encrypted values the list did not decrypt
	for _, v := range vars {
		if !d.ours(v) {
			continue
		}
		s := destination.Secret{Version: version(v)}
		switch {
		case writeOnly, v.Type == TypeSensitive:
			// Never readable.
		case v.Decrypted || v.Type == TypePlain:
			s.Value = v.Value
		default:
			unread = append(unread, v)
			continue
		}
		out[v.Key] = s
	}
	if len(unread) == 0 {
		return out, nil
	}
	read := make([]*destination.Secret, len(unread))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(listReaders)
	for i, v := range unread {
		g.Go(func() error {
			full, err := d.c.GetEnv(gctx, d.project, v.ID)
			var ae *APIError
			switch {
			case errors.As(err, &ae) && ae.NotFound():
				return nil // deleted since the list
			case err != nil:
				return err
			case !d.ours(full) || !full.Decrypted && full.Type != TypePlain:
				return nil
			}
			read[i] = &destination.Secret{Value: full.Value, Version: version(full)}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, d.wrap(ctx, err)
	}
	for i, s := range read {
		if s != nil {
			out[unread[i].Key] = *s
		}
	}
	return out, nil
}

// listReaders bounds the reads by id that List makes at once.
const listReaders = 4

// Apply applies each change, in order, and returns one result per change:
// nil, or a *destination.KeyError wrapping destination.ErrConflict (the
// variable's id or updatedAt is not Expect, or a create found it
// present), destination.ErrNotOwned (a variable with the key and a target
// in common exists without this destination's marker, or with other
// targets), destination.ErrInvalidKey, destination.ErrInvalidValue, or the
// API's error. It stops at a cancelled context, at an error matching
// destination.ErrUnavailable, and at an answer that no request can
// succeed (403: the token or team; 404 on the project): the change in
// flight gets that error, the changes not attempted get it too, and it is
// returned as the call's error.
func (d *Destination) Apply(ctx context.Context, changes []destination.Change) ([]error, error) {
	return destination.ApplyEach(ctx, changes, func(ctx context.Context, c destination.Change) error {
		err := d.apply(ctx, c)
		if cerr := ctx.Err(); err != nil && cerr != nil {
			return cerr // the change in flight gets the error that stops Apply
		}
		return err
	}, refusing)
}

// refusing reports an answer that no request can succeed after, which
// stops Apply: 401 or 403 (the token or the team), or a 404 of the
// project (to a list or a create).
func refusing(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && (ae.Status == http.StatusUnauthorized || ae.Status == http.StatusForbidden ||
		ae.NotFound() && (ae.Op == "list" || ae.Op == "create"))
}

// wrap makes an error of the client match destination.ErrUnavailable
// when it says that Vercel as a whole cannot serve: 429 after the
// client's retries, 5xx, or no answer. A context error of ctx is returned
// as it is.
func (d *Destination) wrap(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	var ae *APIError
	if errors.As(err, &ae) && !ae.Temporary() {
		return err
	}
	return fmt.Errorf("%w: %w", destination.ErrUnavailable, err)
}

func (d *Destination) apply(ctx context.Context, c destination.Change) error {
	if err := checkKey(c.Key); err != nil {
		return err
	}
	if !c.Delete {
		if err := d.checkValue(c.Value); err != nil {
			return err
		}
	}
	unlock, err := d.locks.Lock(ctx, c.Key)
	if err != nil {
		return err
	}
	defer unlock()
	switch {
	case c.Delete:
		return d.remove(ctx, c)
	case c.Expect == "":
		return d.create(ctx, c)
	default:
		return d.update(ctx, c)
	}
}

// create creates the variable. Vercel refuses a create that overlaps a
// variable with the same key (ENV_CONFLICT), which makes "must not exist"
// hold on the server's side; the refusal is then told apart by a list.
func (d *Destination) create(ctx context.Context, c destination.Change) error {
	_, err := d.c.CreateEnv(ctx, d.project, NewEnvVar{
		Key: c.Key, Value: c.Value, Type: d.typ, Target: d.targets, Comment: d.marker,
	}, nil)
	var ae *APIError
	if errors.As(err, &ae) && ae.Conflict() {
		if err := d.present(ctx, c.Key); err != nil {
			return err
		}
		// Gone again by the time of the list.
		return fmt.Errorf("%w: a variable with the key existed at the create", destination.ErrConflict)
	}
	return d.wrap(ctx, err)
}

// present lists the variables to say why key cannot be created or
// deleted: nil when no variable blocks it, destination.ErrConflict when
// the destination's own variable is there, destination.ErrNotOwned when
// another one is.
func (d *Destination) present(ctx context.Context, key string) error {
	vars, err := d.c.ListEnv(ctx, d.project, nil)
	if err != nil {
		return d.wrap(ctx, err)
	}
	var other *EnvVar
	for i, v := range vars {
		if !d.blocks(v, key) {
			continue
		}
		if d.ours(v) {
			return fmt.Errorf("%w: the variable exists (id %s, updated at %d)", destination.ErrConflict, v.ID, v.UpdatedAt)
		}
		other = &vars[i]
	}
	if other != nil {
		return notOwned(*other)
	}
	return nil
}

func notOwned(v EnvVar) error {
	why := "without this sync's marker in its comment"
	if strings.HasPrefix(v.Comment, MarkerPrefix) {
		why = "marked for another owner or other targets"
	}
	return fmt.Errorf("%w: variable %s (targets %v) exists %s", destination.ErrNotOwned, v.ID, []string(v.Target), why)
}

// update reads the variable that Expect names and edits its value when it
// is still the one read.
func (d *Destination) update(ctx context.Context, c destination.Change) error {
	id, at, ok := parseVersion(c.Expect)
	if !ok {
		return fmt.Errorf("%w: %q is not a version of this destination", destination.ErrConflict, c.Expect)
	}
	v, err := d.c.GetEnv(ctx, d.project, id)
	var ae *APIError
	if errors.As(err, &ae) && ae.NotFound() {
		return fmt.Errorf("%w: the variable was deleted", destination.ErrConflict)
	}
	if err != nil {
		return d.wrap(ctx, err)
	}
	switch {
	case v.Key != c.Key || !d.exact(v):
		return fmt.Errorf("%w: the version names another variable", destination.ErrConflict)
	case v.Comment != d.marker:
		return notOwned(v)
	case v.UpdatedAt != at:
		return fmt.Errorf("%w: updated at %d, read at %d", destination.ErrConflict, v.UpdatedAt, at)
	}
	value, marker := c.Value, d.marker
	_, err = d.c.EditEnv(ctx, d.project, id, EnvVarEdit{Value: &value, Comment: &marker})
	switch {
	case errors.As(err, &ae) && ae.NotFound():
		return fmt.Errorf("%w: the variable was deleted", destination.ErrConflict)
	case errors.As(err, &ae) && ae.Conflict():
		return fmt.Errorf("%w: %w", destination.ErrConflict, err)
	}
	return d.wrap(ctx, err)
}

// remove deletes the variable that Expect names when it is still the one
// read; a variable already gone is a success.
func (d *Destination) remove(ctx context.Context, c destination.Change) error {
	id, at, ok := parseVersion(c.Expect)
	if !ok {
		return d.present(ctx, c.Key)
	}
	v, err := d.c.GetEnv(ctx, d.project, id)
	var ae *APIError
	if errors.As(err, &ae) && ae.NotFound() || err == nil && (v.Key != c.Key || !d.exact(v)) {
		// That variable is gone: the key may be there anew.
		return d.present(ctx, c.Key)
	}
	if err != nil {
		return d.wrap(ctx, err)
	}
	switch {
	case v.Comment != d.marker:
		return notOwned(v)
	case v.UpdatedAt != at:
		return fmt.Errorf("%w: updated at %d, read at %d", destination.ErrConflict, v.UpdatedAt, at)
	}
	err = d.c.DeleteEnv(ctx, d.project, id)
	if errors.As(err, &ae) && ae.NotFound() {
		return nil
	}
	return d.wrap(ctx, err)
}

// DriverOptions are what Driver adds to a registry.VercelProject: where
// the API is and how to reach it, for tests.
type DriverOptions struct {
	// BaseURL is the API's base URL; default DefaultBaseURL.
	BaseURL string
	// HTTPClient sends the requests; default a client with a 30 s
	// timeout.
	HTTPClient *http.Client
	// MaxRetries, MinBackoff and MaxWait tune the client's retries (see
	// ClientOptions).
	MaxRetries int
	MinBackoff time.Duration
	MaxWait    time.Duration
	// MaxValueBytes is Options.MaxValueBytes.
	MaxValueBytes int
}

// Driver returns the registry.Driver of registry.TypeVercelProject: it
// opens a Destination from a registry.VercelProject (access token,
// project, team, deployment environments, variable type) with the
// association's owner.
// A nil options means the zero DriverOptions.
func Driver(options *DriverOptions) registry.Driver {
	var o DriverOptions
	if options != nil {
		o = *options
	}
	return func(ctx context.Context, t registry.Target) (destination.Destination, error) {
		var cfg registry.VercelProject
		switch c := t.Config.(type) {
		case registry.VercelProject:
			cfg = c
		case *registry.VercelProject:
			if c == nil {
				return nil, fmt.Errorf("%w: nil config", ErrInvalidOptions)
			}
			cfg = *c
		default:
			return nil, fmt.Errorf("%w: config of type %T, want registry.VercelProject", ErrInvalidOptions, t.Config)
		}
		return New(ctx, &Options{
			Token: cfg.AccessToken, ProjectID: cfg.ProjectID, TeamID: cfg.TeamID,
			Targets: cfg.DeploymentEnvironments, Type: cfg.VariableType, Owner: t.Owner,
			MaxValueBytes: o.MaxValueBytes, BaseURL: o.BaseURL, HTTPClient: o.HTTPClient,
			MaxRetries: o.MaxRetries, MinBackoff: o.MinBackoff, MaxWait: o.MaxWait,
		})
	}
}
