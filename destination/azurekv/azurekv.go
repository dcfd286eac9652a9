package azurekv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	gosync "sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"golang.org/x/sync/errgroup"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/internal/keylock"
	"github.com/secretsync/secretsync/registry"
)

// The ownership marker: tags on every version this package writes.
const (
	// TagManagedBy is set to ManagedBy on every version written.
	TagManagedBy = "managed-by"
	// ManagedBy is the value of TagManagedBy.
	ManagedBy = "secretsync"
	// TagOwner is set to Options.Owner (when not empty) on every version
	// written.
	TagOwner = "secretsync-owner"
)

// Key Vault's limits, as this package enforces them before any request.
const (
	// MaxNameLength is the longest secret name.
	MaxNameLength = 127
	// MaxValueBytes is the largest value, in bytes of UTF-8 (25 KiB).
	MaxValueBytes = 25 * 1024
	// MaxTags is the most tags a version can have, the marker included.
	MaxTags = 15
	// MaxTagNameLength and MaxTagValueLength limit each tag, in
	// characters.
	MaxTagNameLength  = 512
	MaxTagValueLength = 256
)

// Defaults of Options.
const (
	DefaultPollInterval = time.Second
	DefaultWaitTimeout  = 2 * time.Minute
	DefaultConcurrency  = 8
)

var (
	// ErrInvalidOptions reports unusable Options (or a registry config
	// that makes them); New returns it, wrapped, before any request.
	ErrInvalidOptions = errors.New("azurekv: invalid options")
	// ErrClosed is returned by List and Apply after Close.
	ErrClosed = errors.New("azurekv: destination closed")
)

// Options opens a Key Vault as a destination. VaultURL and the credentials
// are required; the zero value of every other field means its default.
type Options struct {
	// VaultURL is the vault's URL, https://<vault>.vault.azure.net (or the
	// vault suffix of another cloud).
	VaultURL string
	// TenantID, ClientID and ClientSecret are an app registration's
	// client credentials (azidentity.ClientSecretCredential). They are
	// ignored when Credential is set.
	TenantID     string
	ClientID     string
	ClientSecret registry.Credential
	// Credential, when set, is used instead of the client credentials
	// (for example an azidentity.ManagedIdentityCredential).
	Credential azcore.TokenCredential
	// Cloud is the Azure cloud of the credentials: "" or "AzurePublic"
	// (the default), "AzureChina" or "AzureUSGovernment" (also accepted:
	// the names with a "Cloud" suffix, AzureGovernment, case ignored).
	Cloud string
	// AuthorityHost overrides the cloud's Microsoft Entra authority host
	// (https://login.microsoftonline.com/ for the public cloud), for
	// private clouds and tests.
	AuthorityHost string
	// Owner names the association whose entries these are (see
	// registry.Target.Owner); it is kept in the TagOwner tag. Empty marks
	// entries as the library's without naming an association.
	Owner string
	// Tags are set on every version written, beside the ownership marker
	// (registry.SyncOptions.CustomTags). With the marker they may number
	// at most MaxTags; they may not use the marker's names.
	Tags map[string]string
	// Purge purges a secret after deleting it, so that nothing can be
	// recovered (the vault must allow purging, and the credentials need
	// the purge permission).
	Purge bool
	// HTTPClient carries every request, to Key Vault and to Microsoft
	// Entra; nil means the SDK's default transport.
	HTTPClient *http.Client
	// Retry tunes the SDK's retries (by default 3, with exponential
	// backoff from 800ms, honouring Retry-After).
	Retry policy.RetryOptions
	// PollInterval is how often a soft delete, recovery or purge in
	// progress is checked; default DefaultPollInterval.
	PollInterval time.Duration
	// WaitTimeout bounds the wait for one of them to complete; default
	// DefaultWaitTimeout.
	WaitTimeout time.Duration
	// Concurrency is how many secrets List reads at once; default
	// DefaultConcurrency.
	Concurrency int
	// DisableChallengeResourceVerification lets the vault's bearer
	// challenge name a resource whose host is not a suffix of VaultURL's
	// (azsecrets.ClientOptions); only for a vault behind another name.
	DisableChallengeResourceVerification bool
	// DisableInstanceDiscovery skips MSAL's instance discovery
	// (azidentity.ClientSecretCredentialOptions), for disconnected and
	// private clouds.
	DisableInstanceDiscovery bool
}

// Destination is an Azure Key Vault's secrets as a destination.Destination.
// It is safe for concurrent use. See the package documentation.
type Destination struct {
	client   *azsecrets.Client
	vaultURL string
	owner    string
	tags     map[string]string // the marker and Options.Tags
	purge    bool
	poll     time.Duration
	wait     time.Duration
	conc     int
	hc       *http.Client
	closed   atomic.Bool

	// locks serializes the changes of this Destination to one name. It
	// is keyed by lower-case name: Key Vault names ignore case, and so
	// does the lock.
	locks keylock.Map
}

var (
	_ destination.Destination   = (*Destination)(nil)
	_ destination.Describer     = (*Destination)(nil)
	_ destination.KeyNormalizer = (*Destination)(nil)
	_ io.Closer                 = (*Destination)(nil)
)

// New opens the vault of options. It checks options and builds the SDK's client
// and credential; it sends no request (the first List or Apply
// authenticates). It returns an error wrapping ErrInvalidOptions for
// unusable options.
// A nil options means the zero Options.
func New(ctx context.Context, options *Options) (*Destination, error) {
	var opts Options
	if options != nil {
		opts = *options
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidOptions, fmt.Sprintf(format, args...))
	}
	u, err := url.Parse(opts.VaultURL)
	if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return nil, invalid("VaultURL %q is not https://<vault host>", opts.VaultURL)
	}
	cc, err := cloudOf(opts.Cloud)
	if err != nil {
		return nil, invalid("%v", err)
	}
	if opts.AuthorityHost != "" {
		a, err := url.Parse(opts.AuthorityHost)
		if err != nil || a.Scheme != "https" || a.Host == "" {
			return nil, invalid("AuthorityHost %q is not an https URL", opts.AuthorityHost)
		}
		cc.ActiveDirectoryAuthorityHost = opts.AuthorityHost
	}
	if opts.Credential == nil {
		switch {
		case opts.TenantID == "":
			return nil, invalid("TenantID is missing")
		case opts.ClientID == "":
			return nil, invalid("ClientID is missing")
		case opts.ClientSecret == "":
			return nil, invalid("ClientSecret is missing")
		}
	}
	tags, err := markerTags(opts.Owner, opts.Tags)
	if err != nil {
		return nil, invalid("%v", err)
	}
	if opts.PollInterval < 0 || opts.WaitTimeout < 0 || opts.Concurrency < 0 {
		return nil, invalid("PollInterval, WaitTimeout and Concurrency may not be negative")
	}
	co := azcore.ClientOptions{Cloud: cc, Retry: opts.Retry}
	co.Telemetry.ApplicationID = "secretsync"
	if opts.HTTPClient != nil {
		co.Transport = opts.HTTPClient
	}
	cred := opts.Credential
	if cred == nil {
		// Always with an explicit cloud, so that the SDK reads no
		// AZURE_AUTHORITY_HOST from the environment.
		cred, err = azidentity.NewClientSecretCredential(opts.TenantID, opts.ClientID, opts.ClientSecret.Reveal(),
			&azidentity.ClientSecretCredentialOptions{ClientOptions: co, DisableInstanceDiscovery: opts.DisableInstanceDiscovery})
		if err != nil {
			return nil, invalid("credentials: %v", err)
		}
	}
	client, err := azsecrets.NewClient(strings.TrimSuffix(opts.VaultURL, "/"), cred,
		&azsecrets.ClientOptions{ClientOptions: co, DisableChallengeResourceVerification: opts.DisableChallengeResourceVerification})
	if err != nil {
		return nil, invalid("%v", err)
	}
	d := &Destination{
		client:   client,
		vaultURL: strings.TrimSuffix(opts.VaultURL, "/"),
		owner:    opts.Owner,
		tags:     tags,
		purge:    opts.Purge,
		poll:     opts.PollInterval,
		wait:     opts.WaitTimeout,
		conc:     opts.Concurrency,
		hc:       opts.HTTPClient,
	}
	if d.poll == 0 {
		d.poll = DefaultPollInterval
	}
	if d.wait == 0 {
		d.wait = DefaultWaitTimeout
	}
	if d.conc == 0 {
		d.conc = DefaultConcurrency
	}
	return d, nil
}

// cloudOf returns the cloud configuration named name.
func cloudOf(name string) (cloud.Configuration, error) {
	switch strings.ToLower(name) {
	case "", "azurepublic", "azurepubliccloud", "azurecloud", "public":
		return cloud.AzurePublic, nil
	case "azurechina", "azurechinacloud", "china":
		return cloud.AzureChina, nil
	case "azureusgovernment", "azureusgovernmentcloud", "azuregovernment", "usgovernment":
		return cloud.AzureGovernment, nil
	}
	return cloud.Configuration{}, fmt.Errorf("unknown cloud %q (AzurePublic, AzureChina or AzureUSGovernment)", name)
}

// markerTags returns the tags of every version written: the marker and
// custom.
func markerTags(owner string, custom map[string]string) (map[string]string, error) {
	tags := map[string]string{TagManagedBy: ManagedBy}
	if owner != "" {
		tags[TagOwner] = owner
	}
	for k, v := range custom {
		switch {
		case k == "":
			return nil, errors.New("a tag has an empty name")
		case k == TagManagedBy || k == TagOwner:
			return nil, fmt.Errorf("tag %q is the ownership marker's", k)
		case utf8.RuneCountInString(k) > MaxTagNameLength:
			return nil, fmt.Errorf("tag name %.20q... is longer than %d characters", k, MaxTagNameLength)
		case utf8.RuneCountInString(v) > MaxTagValueLength:
			return nil, fmt.Errorf("the value of tag %q is longer than %d characters", k, MaxTagValueLength)
		}
		tags[k] = v
	}
	if utf8.RuneCountInString(owner) > MaxTagValueLength {
		return nil, fmt.Errorf("Owner is longer than %d characters", MaxTagValueLength)
	}
	if len(tags) > MaxTags {
		return nil, fmt.Errorf("%d tags with the ownership marker; Key Vault allows %d", len(tags), MaxTags)
	}
	return tags, nil
}

// String names the vault; it never shows credentials.
func (d *Destination) String() string { return "azurekv.Destination(" + d.vaultURL + ")" }

// GoString is like String.
func (d *Destination) GoString() string { return d.String() }

// Capabilities reports that Key Vault cannot make a write conditional
// (destination.Capabilities.NoCheckAndSet); see "Check-and-set" in the
// package documentation for how the race is narrowed.
func (d *Destination) Capabilities() destination.Capabilities {
	return destination.Capabilities{NoCheckAndSet: true}
}

// NormalizeKey maps key onto Key Vault's naming rules: every character
// other than an ASCII letter, a digit or '-' becomes '-' (one per
// character, so "vault/kv_1/app" becomes "vault-kv-1-app"). A key that is
// empty, or longer than MaxNameLength once mapped, is refused with an
// error wrapping destination.ErrInvalidKey. Distinct keys can map to one
// name ("a/b" and "a_b"), and Key Vault compares names without regard to
// case.
func (d *Destination) NormalizeKey(key string) (string, error) {
	return NormalizeKey(key)
}

// NormalizeKey is Destination.NormalizeKey, for use without a Destination.
func NormalizeKey(key string) (string, error) {
	var b strings.Builder
	for _, r := range key {
		if validRune(r) {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	n := b.String()
	if err := checkName(n); err != nil {
		return "", err
	}
	return n, nil
}

func validRune(r rune) bool {
	return r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
}

// checkName reports whether name is a Key Vault secret name: 1 to 127
// letters, digits and '-'.
func checkName(name string) error {
	if err := destination.CheckKey(name); err != nil {
		return err
	}
	if len(name) > MaxNameLength {
		return fmt.Errorf("%w: %d characters, Key Vault allows %d", destination.ErrInvalidKey, len(name), MaxNameLength)
	}
	for _, r := range name {
		if !validRune(r) {
			return fmt.Errorf("%w: %q: Key Vault names hold only letters, digits and '-'", destination.ErrInvalidKey, name)
		}
	}
	return nil
}

// checkValue reports whether Key Vault can hold v exactly.
func checkValue(v string) error {
	if !utf8.ValidString(v) {
		return fmt.Errorf("%w: not valid UTF-8 (Key Vault's JSON cannot carry it)", destination.ErrInvalidValue)
	}
	if len(v) > MaxValueBytes {
		return fmt.Errorf("%w: %d bytes, Key Vault holds at most %d", destination.ErrInvalidValue, len(v), MaxValueBytes)
	}
	return nil
}

// Close ends the use of the destination: List and Apply then return
// ErrClosed. It closes the idle connections of Options.HTTPClient. It
// always returns nil.
func (d *Destination) Close() error {
	if !d.closed.Swap(true) && d.hc != nil {
		d.hc.CloseIdleConnections()
	}
	return nil
}

// owns reports whether tags carry this destination's ownership marker.
func (d *Destination) owns(tags map[string]*string) bool {
	return tag(tags, TagManagedBy) == ManagedBy && tag(tags, TagOwner) == d.owner
}

func tag(tags map[string]*string, k string) string {
	if v := tags[k]; v != nil {
		return *v
	}
	return ""
}

// List returns every secret of the vault that carries this destination's
// ownership marker (enabled ones: Key Vault does not return the value of
// a disabled secret), by name, with its value and its current version id
// as Version. It lists the vault (one request per 25 secrets) and reads
// the marked secrets, Options.Concurrency at a time. An error that means
// the vault cannot serve matches destination.ErrUnavailable; a cancelled
// ctx returns ctx's error.
func (d *Destination) List(ctx context.Context) (map[string]destination.Secret, error) {
	if d.closed.Load() {
		return nil, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var names []string
	for p := d.client.NewListSecretPropertiesPager(nil); p.More(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, d.fail(ctx, "list secrets", err)
		}
		for _, it := range page.Value {
			if it == nil || it.ID == nil || !d.owns(it.Tags) {
				continue
			}
			if it.Attributes != nil && it.Attributes.Enabled != nil && !*it.Attributes.Enabled {
				continue
			}
			names = append(names, it.ID.Name())
		}
	}
	out := make(map[string]destination.Secret, len(names))
	var mu gosync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(d.conc)
	for _, name := range names {
		g.Go(func() error {
			s, err := d.get(gctx, name)
			if err != nil {
				return d.fail(gctx, "read "+name, err)
			}
			if s == nil || !d.owns(s.Tags) || s.Value == nil {
				return nil // deleted or changed hands since the listing
			}
			mu.Lock()
			out[s.ID.Name()] = destination.Secret{Value: *s.Value, Version: s.ID.Version()}
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		return nil, err
	}
	return out, nil
}

// Apply applies each change and returns one result per change, in order:
// nil, or a *destination.KeyError wrapping destination.ErrConflict (the
// secret's version was not Expect before the write, or another write
// raced this one: see "Check-and-set"), destination.ErrNotOwned (a secret
// without this destination's marker, live or soft-deleted),
// destination.ErrInvalidKey, destination.ErrInvalidValue (over 25 KiB or
// not valid UTF-8; no request is sent), or the error of the request. When
// the vault cannot serve (destination.ErrUnavailable) or ctx ends, Apply
// stops: the remaining changes get that error, and it is returned as the
// call's error too.
func (d *Destination) Apply(ctx context.Context, changes []destination.Change) ([]error, error) {
	return destination.ApplyEach(ctx, changes, d.applyOne, isClosed)
}

// isClosed reports the error of a closed Destination, which stops Apply.
func isClosed(err error) bool { return errors.Is(err, ErrClosed) }

// applyOne checks c, then applies it while holding its name's lock, so
// that the changes of this Destination to one name never overlap: each
// sees the versions of the one before.
func (d *Destination) applyOne(ctx context.Context, c destination.Change) error {
	if d.closed.Load() {
		return ErrClosed
	}
	if err := checkName(c.Key); err != nil {
		return err
	}
	if !c.Delete {
		if err := checkValue(c.Value); err != nil {
			return err
		}
	}
	unlock, err := d.locks.Lock(ctx, strings.ToLower(c.Key)) // names ignore case
	if err != nil {
		return err
	}
	defer unlock()
	if c.Delete {
		return d.delete(ctx, c)
	}
	return d.put(ctx, c)
}

// get reads the current version of name; nil when there is none.
func (d *Destination) get(ctx context.Context, name string) (*azsecrets.Secret, error) {
	res, err := d.client.GetSecret(ctx, name, "", nil)
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if res.ID == nil {
		return nil, localf("the answer names no version")
	}
	return &res.Secret, nil
}

// versionInfo is a version's id and creation time, Unix seconds.
type versionInfo struct {
	id      string
	created int64
}

// versions lists every version of name (none when there is no such
// secret).
func (d *Destination) versions(ctx context.Context, name string) ([]versionInfo, error) {
	var out []versionInfo
	for p := d.client.NewListSecretPropertiesVersionsPager(name, nil); p.More(); {
		page, err := p.NextPage(ctx)
		if isNotFound(err) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		for _, it := range page.Value {
			if it == nil || it.ID == nil {
				continue
			}
			v := versionInfo{id: it.ID.Version()}
			if it.Attributes != nil && it.Attributes.Created != nil {
				v.created = it.Attributes.Created.Unix()
			}
			out = append(out, v)
		}
	}
	return out, nil
}

// put writes c.Value to c.Key, if the key still has version c.Expect.
func (d *Destination) put(ctx context.Context, c destination.Change) error {
	if c.Expect == "" {
		return d.wrap(ctx, d.create(ctx, c.Key, c.Value))
	}
	return d.wrap(ctx, d.update(ctx, c.Key, c.Value, c.Expect))
}

// update writes a new version of name over version expect: it lists the
// versions there are, reads the current one (refusing an unowned secret
// and a version that is not expect), writes, and checks the versions
// again (see check).
func (d *Destination) update(ctx context.Context, name, value, expect string) error {
	vs, err := d.versions(ctx, name)
	if err != nil {
		return err
	}
	before := make(map[string]bool, len(vs))
	for _, v := range vs {
		before[v.id] = true
	}
	cur, err := d.get(ctx, name)
	switch {
	case err != nil:
		return err
	case cur == nil:
		return fmt.Errorf("%w: the secret no longer exists (expected version %s)", destination.ErrConflict, expect)
	case !d.owns(cur.Tags):
		return destination.ErrNotOwned
	case cur.ID.Version() != expect:
		return fmt.Errorf("%w: the current version is %s, not %s", destination.ErrConflict, cur.ID.Version(), expect)
	}
	res, err := d.set(ctx, name, value, cur)
	if err != nil {
		if code := innerCode(err); code != "" {
			// Deleted or being deleted since it was read.
			return fmt.Errorf("%w: %s since it was read", destination.ErrConflict, code)
		}
		return err
	}
	return d.check(ctx, name, res, before)
}

// create writes the first version of name, which must not exist. A name
// soft-deleted by this destination is recovered first and then written
// over; one being deleted or purged is waited for.
func (d *Destination) create(ctx context.Context, name, value string) error {
	deadline := time.Now().Add(d.wait)
	for {
		cur, err := d.get(ctx, name)
		switch {
		case err != nil:
			return err
		case cur != nil && !d.owns(cur.Tags):
			return destination.ErrNotOwned
		case cur != nil:
			return fmt.Errorf("%w: the secret exists (version %s)", destination.ErrConflict, cur.ID.Version())
		}
		res, err := d.set(ctx, name, value, nil)
		if err == nil {
			return d.check(ctx, name, res, nil)
		}
		switch innerCode(err) {
		case "ObjectIsDeletedButRecoverable":
			v, err := d.recover(ctx, name)
			if errors.Is(err, errGone) {
				break // purged or recovered by someone else meanwhile: again
			}
			if err != nil {
				return err
			}
			return d.update(ctx, name, value, v)
		case "ObjectIsBeingDeleted":
			// A delete or purge in progress: wait for it.
		case "ObjectIsBeingRecovered":
			return fmt.Errorf("%w: the secret is being recovered by another writer", destination.ErrConflict)
		default:
			return err
		}
		if time.Now().After(deadline) {
			return localf("the name is still being deleted or purged after %v", d.wait)
		}
		if err := sleep(ctx, d.poll); err != nil {
			return err
		}
	}
}

// errGone reports a soft-deleted secret that vanished while this
// destination was about to recover it.
var errGone = errors.New("the deleted secret is gone")

// recover recovers the soft-deleted secret name, if it carries this
// destination's marker, and waits until it can be read; it returns its
// current version.
func (d *Destination) recover(ctx context.Context, name string) (string, error) {
	ds, err := d.client.GetDeletedSecret(ctx, name, nil)
	if isNotFound(err) {
		return "", errGone
	}
	if err != nil {
		return "", err
	}
	if !d.owns(ds.Tags) {
		return "", fmt.Errorf("%w: the name is held by a soft-deleted secret of someone else", destination.ErrNotOwned)
	}
	return d.recoverAndWait(ctx, name)
}

// recoverAndWait recovers the soft-deleted secret name and waits until it
// can be read again (Key Vault recovers asynchronously); it returns its
// current version.
func (d *Destination) recoverAndWait(ctx context.Context, name string) (string, error) {
	deadline := time.Now().Add(d.wait)
	for {
		_, err := d.client.RecoverDeletedSecret(ctx, name, nil)
		if err == nil {
			break
		}
		if isNotFound(err) {
			return "", errGone
		}
		if innerCode(err) != "ObjectIsBeingDeleted" {
			return "", err
		}
		if time.Now().After(deadline) {
			return "", localf("the secret is still being deleted after %v", d.wait)
		}
		if err := sleep(ctx, d.poll); err != nil {
			return "", err
		}
	}
	for {
		cur, err := d.get(ctx, name)
		if err != nil {
			return "", err
		}
		if cur != nil {
			return cur.ID.Version(), nil
		}
		if time.Now().After(deadline) {
			return "", localf("the recovered secret cannot be read after %v", d.wait)
		}
		if err := sleep(ctx, d.poll); err != nil {
			return "", err
		}
	}
}

// set writes a new version of name. Over cur, it keeps cur's content type
// and the tags that others set on it, beside this destination's.
func (d *Destination) set(ctx context.Context, name, value string, cur *azsecrets.Secret) (*azsecrets.Secret, error) {
	tags := make(map[string]*string, len(d.tags))
	var contentType *string
	if cur != nil {
		for k, v := range cur.Tags {
			tags[k] = v
		}
		contentType = cur.ContentType
	}
	for k, v := range d.tags {
		tags[k] = &v
	}
	if len(tags) > MaxTags {
		return nil, localf("the secret would have %d tags, Key Vault allows %d (tags set by others are kept)", len(tags), MaxTags)
	}
	res, err := d.client.SetSecret(ctx, name, azsecrets.SetSecretParameters{Value: &value, Tags: tags, ContentType: contentType}, nil)
	if err != nil {
		return nil, err
	}
	if res.ID == nil {
		return nil, localf("the answer names no version")
	}
	return &res.Secret, nil
}

// check lists the versions of name after this destination wrote ours,
// and reports destination.ErrConflict when another writer's version came
// in between: a version that was not there before the write (not in
// before) and was created no later than ours. Key Vault keeps creation
// times to the second, so a version of the same second as ours counts as
// in between: a race is reported rather than missed.
func (d *Destination) check(ctx context.Context, name string, ours *azsecrets.Secret, before map[string]bool) error {
	vs, err := d.versions(ctx, name)
	if err != nil {
		return fmt.Errorf("written as version %s, but the versions could not be checked: %w", ours.ID.Version(), err)
	}
	created := int64(math.MaxInt64) // unknown: every new version counts
	if ours.Attributes != nil && ours.Attributes.Created != nil {
		created = ours.Attributes.Created.Unix()
	}
	for _, v := range vs {
		if v.id == ours.ID.Version() || before[v.id] || v.created > created {
			continue
		}
		return fmt.Errorf("%w: written as version %s, but version %s was written by another writer at the same time; this write may have replaced it", destination.ErrConflict, ours.ID.Version(), v.id)
	}
	return nil
}

// delete soft-deletes c.Key, if it still has version c.Expect, and purges
// it with Options.Purge.
func (d *Destination) delete(ctx context.Context, c destination.Change) error {
	return d.wrap(ctx, d.remove(ctx, c.Key, c.Expect))
}

func (d *Destination) remove(ctx context.Context, name, expect string) error {
	cur, err := d.get(ctx, name)
	switch {
	case err != nil:
		return err
	case cur == nil:
		// Already gone. With Purge, a secret of ours deleted but not
		// purged (a crash in between) is purged now.
		if d.purge {
			return d.purgeOurs(ctx, name)
		}
		return nil
	case !d.owns(cur.Tags):
		return destination.ErrNotOwned
	case cur.ID.Version() != expect:
		return fmt.Errorf("%w: the current version is %s, not %q", destination.ErrConflict, cur.ID.Version(), expect)
	}
	res, err := d.client.DeleteSecret(ctx, name, nil)
	if isNotFound(err) {
		return nil // deleted by someone else meanwhile
	}
	if err != nil {
		return err
	}
	if res.ID != nil && res.ID.Version() != expect {
		// Another writer wrote between the read and the delete: undo the
		// delete, so that its version stays.
		if _, err := d.recoverAndWait(ctx, name); err != nil && !errors.Is(err, errGone) {
			return fmt.Errorf("%w: deleted version %s, written by another writer after version %s was read; recovering it failed: %w", destination.ErrConflict, res.ID.Version(), expect, err)
		}
		return fmt.Errorf("%w: version %s was written by another writer after version %s was read; the delete was undone", destination.ErrConflict, res.ID.Version(), expect)
	}
	if d.purge {
		return d.purgeDeleted(ctx, name)
	}
	return nil
}

// purgeOurs purges the soft-deleted secret name if it carries this
// destination's marker.
func (d *Destination) purgeOurs(ctx context.Context, name string) error {
	ds, err := d.client.GetDeletedSecret(ctx, name, nil)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if !d.owns(ds.Tags) {
		return nil
	}
	return d.purgeDeleted(ctx, name)
}

// purgeDeleted waits until the secret name has reached the deleted state
// (Key Vault deletes asynchronously) and purges it.
func (d *Destination) purgeDeleted(ctx context.Context, name string) error {
	deadline := time.Now().Add(d.wait)
	for {
		_, err := d.client.GetDeletedSecret(ctx, name, nil)
		if err == nil {
			_, err = d.client.PurgeDeletedSecret(ctx, name, nil)
			if err == nil {
				return nil
			}
		}
		if !isNotFound(err) && innerCode(err) != "ObjectIsBeingDeleted" {
			return fmt.Errorf("deleted, but not purged: %w", err)
		}
		if time.Now().After(deadline) {
			return localf("deleted, but not purged: the delete did not complete within %v", d.wait)
		}
		if err := sleep(ctx, d.poll); err != nil {
			return err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
