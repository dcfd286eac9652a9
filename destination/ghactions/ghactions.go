package ghactions

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/google/go-github/v84/github"
	"golang.org/x/crypto/nacl/box"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/internal/keylock"
)

// Location says where the secrets of a Destination are.
type Location string

// The places GitHub keeps Actions secrets.
const (
	// RepositorySecrets are a repository's secrets (the default).
	RepositorySecrets Location = "repository"
	// EnvironmentSecrets are the secrets of one of a repository's
	// environments.
	EnvironmentSecrets Location = "environment"
	// OrganizationSecrets are an organization's secrets.
	OrganizationSecrets Location = "organization"
)

// Visibilities of organization secrets.
const (
	VisibilityAll      = "all"
	VisibilityPrivate  = "private"
	VisibilitySelected = "selected"
)

// Options configure a Destination.
type Options struct {
	// Token is the access token: a fine-grained or classic personal
	// access token, or an installation token of a GitHub App (see the
	// package documentation for the permissions it needs). Required.
	// String and GoString print it as "*****".
	Token string
	// Location is where the secrets are; empty means RepositorySecrets.
	Location Location
	// Owner and Repository name the repository, for RepositorySecrets
	// and EnvironmentSecrets.
	Owner, Repository string
	// Environment is the repository's environment, for
	// EnvironmentSecrets.
	Environment string
	// Organization is the organization, for OrganizationSecrets.
	Organization string
	// Visibility of the organization secrets written: VisibilityAll,
	// VisibilityPrivate (the default) or VisibilitySelected.
	Visibility string
	// SelectedRepositoryIDs are the repositories that may use the
	// organization secrets written, with VisibilitySelected.
	SelectedRepositoryIDs []int64
	// BaseURL is the root of the REST API, with or without a trailing
	// slash; empty means https://api.github.com/. For GitHub Enterprise
	// Server it is https://HOST/api/v3/; for tests, the URL of a
	// ghactionstest.Server.
	BaseURL string
	// HTTPClient sends the requests; nil means a client of the
	// destination's own, with a 30-second timeout and no proxy (pass a
	// client of yours to use a proxy). The client must not add an
	// Authorization header of its own: the destination sets one with
	// Token.
	HTTPClient *http.Client
}

// String prints the options with the token redacted.
func (o Options) String() string {
	tok := ""
	if o.Token != "" {
		tok = "*****"
	}
	loc := o.Location
	if loc == "" {
		loc = RepositorySecrets
	}
	switch loc {
	case OrganizationSecrets:
		return fmt.Sprintf("ghactions.Options{Token:%q Location:%s Organization:%q Visibility:%q SelectedRepositoryIDs:%v BaseURL:%q}",
			tok, loc, o.Organization, o.Visibility, o.SelectedRepositoryIDs, o.BaseURL)
	case EnvironmentSecrets:
		return fmt.Sprintf("ghactions.Options{Token:%q Location:%s Owner:%q Repository:%q Environment:%q BaseURL:%q}",
			tok, loc, o.Owner, o.Repository, o.Environment, o.BaseURL)
	default:
		return fmt.Sprintf("ghactions.Options{Token:%q Location:%s Owner:%q Repository:%q BaseURL:%q}",
			tok, loc, o.Owner, o.Repository, o.BaseURL)
	}
}

// GoString is like String, so that %#v does not print the token either.
func (o Options) GoString() string { return o.String() }

// ErrInvalidOptions reports Options that New cannot use.
var ErrInvalidOptions = errors.New("ghactions: invalid options")

// ErrClosed is returned by the methods of a closed Destination.
var ErrClosed = errors.New("ghactions: destination closed")

// GitHub's account, organization and repository names: letters, digits,
// '-', '_' and '.'. Checked so that no name can change the request path.
var ownerName = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

func (o *Options) check() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidOptions, fmt.Sprintf(format, args...))
	}
	if o.Token == "" {
		return bad("Token is missing")
	}
	if o.Location == "" {
		o.Location = RepositorySecrets
	}
	switch o.Location {
	case RepositorySecrets, EnvironmentSecrets:
		switch {
		case !ownerName.MatchString(o.Owner) || o.Owner == "." || o.Owner == "..":
			return bad("Owner %q is not a GitHub account name", o.Owner)
		case !ownerName.MatchString(o.Repository) || o.Repository == "." || o.Repository == "..":
			return bad("Repository %q is not a GitHub repository name", o.Repository)
		case o.Location == EnvironmentSecrets && o.Environment == "":
			return bad("Environment is missing")
		case o.Location == EnvironmentSecrets && (o.Environment == "." || o.Environment == ".." || len(o.Environment) > 255):
			// "." and ".." would be resolved away in the request path.
			return bad("Environment %q is not an environment name GitHub allows", o.Environment)
		case o.Location == RepositorySecrets && o.Environment != "":
			return bad("Environment is set for repository secrets")
		case o.Organization != "" || o.Visibility != "" || len(o.SelectedRepositoryIDs) > 0:
			return bad("organization fields are set for %s secrets", o.Location)
		}
	case OrganizationSecrets:
		switch {
		case !ownerName.MatchString(o.Organization) || o.Organization == "." || o.Organization == "..":
			return bad("Organization %q is not a GitHub organization name", o.Organization)
		case o.Owner != "" || o.Repository != "" || o.Environment != "":
			return bad("repository fields are set for organization secrets")
		}
		if o.Visibility == "" {
			o.Visibility = VisibilityPrivate
		}
		switch o.Visibility {
		case VisibilityAll, VisibilityPrivate:
			if len(o.SelectedRepositoryIDs) > 0 {
				return bad("SelectedRepositoryIDs are set with visibility %q", o.Visibility)
			}
		case VisibilitySelected:
		default:
			return bad("Visibility %q is none of all, private, selected", o.Visibility)
		}
	default:
		return bad("Location %q is none of repository, environment, organization", o.Location)
	}
	return nil
}

// Destination is GitHub Actions secrets of one repository, environment or
// organization, as a destination.Destination. It is write-only: List
// returns names and update times, never values. It is safe for concurrent
// use.
type Destination struct {
	opts   Options
	gh     *github.Client
	own    *http.Transport // the transport of the destination's own client, closed by Close
	closed atomic.Bool

	keySem chan struct{} // serializes fetching the public key and the repository id
	mu     gosync.Mutex
	key    *sealKey // the cached public key
	repoID int64    // for EnvironmentSecrets, once known
	// locks serializes the changes of one key within this Destination,
	// so that two of them never both pass the read before either writes.
	locks keylock.Map
}

var (
	_ destination.Destination   = (*Destination)(nil)
	_ destination.Describer     = (*Destination)(nil)
	_ destination.KeyNormalizer = (*Destination)(nil)
)

// sealKey is a public key of the place, to seal values to.
type sealKey struct {
	id  string
	key [32]byte
}

// New returns a Destination for the secrets that options name. It sends no
// request: the first List or Apply finds out whether the place exists and
// the token may use it. It returns an error matching ErrInvalidOptions
// for unusable options.
// A nil options means the zero Options.
func New(ctx context.Context, options *Options) (*Destination, error) {
	var opts Options
	if options != nil {
		opts = *options
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	opts.SelectedRepositoryIDs = append([]int64(nil), opts.SelectedRepositoryIDs...)
	if err := opts.check(); err != nil {
		return nil, err
	}
	d := &Destination{opts: opts, keySem: make(chan struct{}, 1)}
	hc := opts.HTTPClient
	if hc == nil {
		d.own = http.DefaultTransport.(*http.Transport).Clone()
		d.own.Proxy = nil // no environment reads: a proxy comes with Options.HTTPClient
		hc = &http.Client{Transport: d.own, Timeout: 30 * time.Second}
	}
	gh := github.NewClient(hc).WithAuthToken(opts.Token)
	if opts.BaseURL != "" {
		u, err := url.Parse(opts.BaseURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("%w: BaseURL is not an http(s) URL", ErrInvalidOptions)
		}
		if !strings.HasSuffix(u.Path, "/") {
			u.Path += "/"
		}
		gh.BaseURL = u
	}
	gh.UserAgent = "secretsync-ghactions"
	d.gh = gh
	return d, nil
}

// Capabilities reports that GitHub Actions secrets cannot be read back
// (WriteOnly) and that no write can be made conditional (NoCheckAndSet).
func (d *Destination) Capabilities() destination.Capabilities {
	return destination.Capabilities{WriteOnly: true, NoCheckAndSet: true}
}

// Close releases the idle connections of the destination's own HTTP
// client (none when Options.HTTPClient was given). Later calls of List
// and Apply fail with ErrClosed. Close is safe to call more than once.
func (d *Destination) Close() error {
	if d.closed.Swap(true) {
		return nil
	}
	if d.own != nil {
		d.own.CloseIdleConnections()
	}
	return nil
}

// String describes the destination without its token.
func (d *Destination) String() string {
	switch d.opts.Location {
	case OrganizationSecrets:
		return "GitHub Actions secrets of organization " + d.opts.Organization
	case EnvironmentSecrets:
		return fmt.Sprintf("GitHub Actions secrets of environment %q of %s/%s", d.opts.Environment, d.opts.Owner, d.opts.Repository)
	default:
		return "GitHub Actions secrets of " + d.opts.Owner + "/" + d.opts.Repository
	}
}

// markerOf returns the version marker of a secret as GitHub lists it: its
// updated_at in RFC 3339, as GitHub sends it ("2024-05-01T12:00:00Z").
func markerOf(s *github.Secret) string { return s.UpdatedAt.UTC().Format(time.RFC3339) }

// perPage is GitHub's largest page.
const perPage = 100

// List returns every secret of the place (for organization secrets, all
// of the organization's, whatever their visibility), each with an empty
// Value and its updated_at as Version.
// GitHub keeps no marker of who wrote a secret, so List cannot tell the
// sync's own secrets from others': the engine manages only the names its
// naming produces (see the package documentation).
func (d *Destination) List(ctx context.Context) (map[string]destination.Secret, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if d.closed.Load() {
		return nil, ErrClosed
	}
	out := map[string]destination.Secret{}
	opt := &github.ListOptions{PerPage: perPage, Page: 1}
	for {
		page, resp, err := d.listPage(ctx, opt)
		if err != nil {
			return nil, d.wrap(ctx, "list secrets", err)
		}
		for _, s := range page.Secrets {
			if s != nil {
				out[s.Name] = destination.Secret{Version: markerOf(s)}
			}
		}
		if resp.NextPage == 0 || resp.NextPage <= opt.Page {
			return out, nil
		}
		opt.Page = resp.NextPage
	}
}

// Apply applies each change in order, as the package documentation
// describes: before a put it reads the secret's updated_at and refuses
// (destination.ErrConflict) when it is not Expect, then seals the value
// with the place's public key and writes it; before a delete it reads the
// same way, and a secret already gone counts as deleted.
//
// A key that is not a GitHub secret name as GitHub would store it gets
// destination.ErrInvalidKey (see NormalizeKey), a value over 48 KB or not
// valid UTF-8 destination.ErrInvalidValue; neither is sent. Apply stops
// at a cancelled ctx, at an error matching destination.ErrUnavailable
// (5xx, rate limits, unreachable) and at a refused token (401 or 403):
// the change in flight gets its error and the changes not attempted get
// the stopping error, which Apply also returns.
func (d *Destination) Apply(ctx context.Context, changes []destination.Change) ([]error, error) {
	return destination.ApplyEach(ctx, changes, d.applyOne, stops)
}

// stops reports an error that stops Apply although it does not match
// destination.ErrUnavailable: a closed Destination, or a refused token.
func stops(err error) bool { return errors.Is(err, ErrClosed) || refused(err) }

func (d *Destination) applyOne(ctx context.Context, c destination.Change) error {
	if d.closed.Load() {
		return ErrClosed
	}
	if c.Delete {
		return d.delete(ctx, c)
	}
	return d.put(ctx, c)
}

func (d *Destination) put(ctx context.Context, c destination.Change) error {
	if err := checkName(c.Key); err != nil {
		return err
	}
	if err := checkValue(c.Value); err != nil {
		return err
	}
	unlock, err := d.locks.Lock(ctx, c.Key)
	if err != nil {
		return err
	}
	defer unlock()
	key, err := d.sealKey(ctx, "")
	if err != nil {
		return err
	}
	version, exists, err := d.read(ctx, c.Key)
	if err != nil {
		return err
	}
	switch {
	case c.Expect == "" && exists:
		return fmt.Errorf("%w: a secret named %s exists (updated %s)", destination.ErrConflict, c.Key, version)
	case c.Expect != "" && !exists:
		return fmt.Errorf("%w: %s no longer exists", destination.ErrConflict, c.Key)
	case c.Expect != "" && version != c.Expect:
		return fmt.Errorf("%w: %s was updated %s, not %s", destination.ErrConflict, c.Key, version, c.Expect)
	}
	status, err := d.send(ctx, c, key)
	if err != nil {
		return err
	}
	// GitHub answers 201 for a secret it created and 204 for one it
	// updated: either tells whether someone else created or deleted the
	// secret between the read and the write.
	switch {
	case c.Expect == "" && status != http.StatusCreated:
		return fmt.Errorf("%w: %s was created by someone else between the read and the write, and the write replaced it", destination.ErrConflict, c.Key)
	case c.Expect != "" && status == http.StatusCreated:
		return fmt.Errorf("%w: %s was deleted by someone else between the read and the write, and the write created it again", destination.ErrConflict, c.Key)
	}
	return nil
}

// send seals the value with key and writes it. When GitHub refuses the
// value with 422 (the key was rotated), it fetches the public key again
// and, when it changed, writes once more with it. It returns the status
// of the write.
func (d *Destination) send(ctx context.Context, c destination.Change, key sealKey) (int, error) {
	resp, err := d.putSealed(ctx, c, key)
	if status(err) == http.StatusUnprocessableEntity {
		fresh, kerr := d.sealKey(ctx, key.id)
		if kerr != nil {
			return 0, kerr
		}
		if fresh.id != key.id {
			resp, err = d.putSealed(ctx, c, fresh)
		}
	}
	if err != nil {
		return 0, d.wrap(ctx, "write", err)
	}
	return resp.StatusCode, nil
}

func (d *Destination) putSealed(ctx context.Context, c destination.Change, key sealKey) (*github.Response, error) {
	sealed, err := box.SealAnonymous(nil, []byte(c.Value), &key.key, rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ghactions: sealing the value: %w", err)
	}
	es := &github.EncryptedSecret{Name: c.Key, KeyID: key.id, EncryptedValue: base64.StdEncoding.EncodeToString(sealed)}
	switch d.opts.Location {
	case OrganizationSecrets:
		es.Visibility = d.opts.Visibility
		if es.Visibility == VisibilitySelected {
			es.SelectedRepositoryIDs = d.opts.SelectedRepositoryIDs
		}
		return d.gh.Actions.CreateOrUpdateOrgSecret(ctx, d.opts.Organization, es)
	case EnvironmentSecrets:
		id, err := d.repositoryID(ctx)
		if err != nil {
			return nil, err
		}
		return d.gh.Actions.CreateOrUpdateEnvSecret(ctx, int(id), url.PathEscape(d.opts.Environment), es)
	default:
		return d.gh.Actions.CreateOrUpdateRepoSecret(ctx, d.opts.Owner, d.opts.Repository, es)
	}
}

func (d *Destination) delete(ctx context.Context, c destination.Change) error {
	if err := checkName(c.Key); err != nil {
		return err
	}
	unlock, err := d.locks.Lock(ctx, c.Key)
	if err != nil {
		return err
	}
	defer unlock()
	// The public key is fetched (once) for deletes too: it proves that
	// the place exists and the token may use it, which a 404 for the
	// secret alone would not.
	if _, err := d.sealKey(ctx, ""); err != nil {
		return err
	}
	version, exists, err := d.read(ctx, c.Key)
	switch {
	case err != nil:
		return err
	case !exists:
		return nil
	case version != c.Expect:
		return fmt.Errorf("%w: %s was updated %s, not %q", destination.ErrConflict, c.Key, version, c.Expect)
	}
	switch d.opts.Location {
	case OrganizationSecrets:
		_, err = d.gh.Actions.DeleteOrgSecret(ctx, d.opts.Organization, c.Key)
	case EnvironmentSecrets:
		var id int64
		if id, err = d.repositoryID(ctx); err == nil {
			_, err = d.gh.Actions.DeleteEnvSecret(ctx, int(id), url.PathEscape(d.opts.Environment), c.Key)
		}
	default:
		_, err = d.gh.Actions.DeleteRepoSecret(ctx, d.opts.Owner, d.opts.Repository, c.Key)
	}
	if gone(err) {
		return nil // deleted meanwhile: gone is gone
	}
	if err != nil {
		return d.wrap(ctx, "delete", err)
	}
	return nil
}

// read returns the version of secret name, or exists false when GitHub
// answers 404.
func (d *Destination) read(ctx context.Context, name string) (marker string, exists bool, err error) {
	var s *github.Secret
	switch d.opts.Location {
	case OrganizationSecrets:
		s, _, err = d.gh.Actions.GetOrgSecret(ctx, d.opts.Organization, name)
	case EnvironmentSecrets:
		var id int64
		if id, err = d.repositoryID(ctx); err == nil {
			s, _, err = d.gh.Actions.GetEnvSecret(ctx, int(id), url.PathEscape(d.opts.Environment), name)
		}
	default:
		s, _, err = d.gh.Actions.GetRepoSecret(ctx, d.opts.Owner, d.opts.Repository, name)
	}
	if gone(err) {
		return "", false, nil
	}
	if err != nil {
		return "", false, d.wrap(ctx, "read", err)
	}
	return markerOf(s), true, nil
}

func (d *Destination) listPage(ctx context.Context, opt *github.ListOptions) (*github.Secrets, *github.Response, error) {
	switch d.opts.Location {
	case OrganizationSecrets:
		return d.gh.Actions.ListOrgSecrets(ctx, d.opts.Organization, opt)
	case EnvironmentSecrets:
		id, err := d.repositoryID(ctx)
		if err != nil {
			return nil, nil, err
		}
		return d.gh.Actions.ListEnvSecrets(ctx, int(id), url.PathEscape(d.opts.Environment), opt)
	default:
		return d.gh.Actions.ListRepoSecrets(ctx, d.opts.Owner, d.opts.Repository, opt)
	}
}

// acquire takes keySem, or gives up when ctx ends.
func (d *Destination) acquire(ctx context.Context) error {
	select {
	case d.keySem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sealKey returns the place's public key, fetching it once and then from
// the cache. With stale set to a key id, it fetches the key again unless
// the cache already holds another id (someone else refetched it).
func (d *Destination) sealKey(ctx context.Context, stale string) (sealKey, error) {
	d.mu.Lock()
	k := d.key
	d.mu.Unlock()
	if k != nil && k.id != stale {
		return *k, nil
	}
	if err := d.acquire(ctx); err != nil {
		return sealKey{}, err
	}
	defer func() { <-d.keySem }()
	d.mu.Lock()
	k = d.key
	d.mu.Unlock()
	if k != nil && k.id != stale {
		return *k, nil
	}
	var (
		pk  *github.PublicKey
		err error
	)
	switch d.opts.Location {
	case OrganizationSecrets:
		pk, _, err = d.gh.Actions.GetOrgPublicKey(ctx, d.opts.Organization)
	case EnvironmentSecrets:
		var id int64
		if id, err = d.repositoryIDLocked(ctx); err == nil {
			pk, _, err = d.gh.Actions.GetEnvPublicKey(ctx, int(id), url.PathEscape(d.opts.Environment))
		}
	default:
		pk, _, err = d.gh.Actions.GetRepoPublicKey(ctx, d.opts.Owner, d.opts.Repository)
	}
	if err != nil {
		return sealKey{}, d.wrap(ctx, "get the public key", err)
	}
	raw, derr := base64.StdEncoding.DecodeString(pk.GetKey())
	if derr != nil || len(raw) != 32 || pk.GetKeyID() == "" {
		return sealKey{}, fmt.Errorf("ghactions: %s answered a public key that is not a base64 32-byte key with an id", d)
	}
	nk := &sealKey{id: pk.GetKeyID()}
	copy(nk.key[:], raw)
	d.mu.Lock()
	d.key = nk
	d.mu.Unlock()
	return *nk, nil
}

// repositoryID returns the id of the repository, for environment
// secrets, asking GitHub once.
func (d *Destination) repositoryID(ctx context.Context) (int64, error) {
	d.mu.Lock()
	id := d.repoID
	d.mu.Unlock()
	if id != 0 {
		return id, nil
	}
	if err := d.acquire(ctx); err != nil {
		return 0, err
	}
	defer func() { <-d.keySem }()
	return d.repositoryIDLocked(ctx)
}

// repositoryIDLocked is repositoryID with keySem held.
func (d *Destination) repositoryIDLocked(ctx context.Context) (int64, error) {
	d.mu.Lock()
	id := d.repoID
	d.mu.Unlock()
	if id != 0 {
		return id, nil
	}
	repo, _, err := d.gh.Repositories.Get(ctx, d.opts.Owner, d.opts.Repository)
	if err != nil {
		return 0, d.wrap(ctx, "get the repository", err)
	}
	if repo.GetID() == 0 {
		return 0, fmt.Errorf("ghactions: GitHub answered no id for %s/%s", d.opts.Owner, d.opts.Repository)
	}
	d.mu.Lock()
	d.repoID = repo.GetID()
	d.mu.Unlock()
	return repo.GetID(), nil
}
