// Package registry keeps named destinations and their associations, in the
// shape of Vault Enterprise's /sys/sync API: a destination is a name, a
// type (vault-kv, aws-sm, azure-kv, gcp-sm, gh, vercel-project, or one of
// the program's own) and a typed Config; an association links a KV v2
// secret (mount and secret name) to a destination, and carries the status
// of its last sync.
//
// The registry is a convenience over package sync, never the only way in:
// each association is a push sync.Syncer from the secret to the
// destination, which the registry builds, runs when the association is set
// (Vault's "set" also syncs at once) and runs as a removal (unsync) when it
// is removed. Registry.Watch keeps every association syncing: it polls
// each secret (Options.PollInterval), syncs its changes, and unsyncs an
// association whose secret was deleted in Vault.
//
// # Names of entries
//
// The external types (aws-sm, azure-kv, gcp-sm, gh, vercel-project, and a
// program's own types that embed SyncOptions) name their entries as Vault's
// Secrets Sync does. Granularity secret-path writes the whole secret as one
// entry, a JSON object of its keys (the default for aws-sm, azure-kv and
// gcp-sm); secret-key writes one entry per key (the default for gh and
// vercel-project). A name template (NameTemplate, with Vault's fields and
// the filters uppercase, lowercase and replace) renders each name, which
// the destination then fits to its store's rules (destination.KeyNormalizer);
// a name that still breaks them fails that key alone, and two keys given
// one name both fail. Each association's sync manages the names it rendered
// and no others, and the driver marks the entries it creates with the
// association (Target.Owner) where the store can hold a marker. Other
// types (vault-kv, and a program's own types without SyncOptions) map keys
// with an association's key schema instead, and the schemas of two
// associations of one destination may not overlap (see
// AssociationOptions.KeySchema).
//
// # Sync names
//
// Each association's sync has a name that says what it links: the type,
// the destination, the mount and the secret, as "gh-my-repo-kv-app-prod",
// at most 63 characters of [a-z0-9_-], ended with a short hash when it has
// to be cut or when another association has it already. The name keys the
// association's state in Options.Store, names it in audit events, and is
// the ownership marker on its entries (an AWS or Azure tag, a GCP label, a
// Vercel comment, Vault custom_metadata).
//
// # Status
//
// An association carries the status of its last operation, as Vault
// names them (see SyncStatus): SYNCED, UNSYNCED, PENDING, and, when it
// failed, which side failed: INTERNAL_VAULT_ERROR (reading the secret),
// CLIENT_SIDE_ERROR (this side: configuration, driver, names, the state
// store) or EXTERNAL_SERVICE_ERROR (the destination store, and flagged
// conflicts), with a one-line message that holds no value. The status
// comes from the types of the errors (sync.SideError, sync.KeyError,
// destination.ErrUnavailable and the like), never from their text.
//
// # Closing and deleting
//
// Destinations and sources that hold resources (io.Closer) are closed when
// the destination's Config is replaced, when the association is removed,
// when the destination is deleted, and by Close. Delete refuses a
// destination with associations unless told to purge them (unsync each
// first) or to force (drop them and leave their entries in the store).
//
// The registry sits above package sync and imports it; sync, destination,
// vaultkv, state and connection never import the registry. Package
// registry/kv joins it to Vault: the source that reads associated KV v2
// secrets, and the vault-kv driver.
//
// This package holds no SDK for any external store. A destination type is
// usable once the program registers a Driver for it in Options.Drivers;
// opening a destination of a type with no driver fails with ErrNoDriver.
// Listing, reading and deleting destinations work for every type.
//
// Reading a destination never returns its credentials: Info shows every
// Credential field as "*****", as Vault does. The registry is safe for
// concurrent use. The sync state of each association (baselines and
// status) lives in Options.Store and so survives restarts.
//
// # Persistence
//
// Without Options.Catalog the registry is kept in memory: a program
// declares its destinations and associations at start. With one, every
// Put, Delete, Set and Remove is saved in it (one document, written with
// check-and-set) and Open reads it back: a state.File keeps it on one
// host (in a file beside the state file), a vaultkv.Store in Vault KV, for
// replicas that share it. Each change reads the catalog again first and
// is saved on top of what other replicas saved; a save refused because
// another replica saved in between is done again, and a failed save
// undoes the change (the error is returned). Watch reloads the catalog
// every PollInterval, so that a replica's changes reach the others;
// Options.Lock makes replicas take turns, both for the catalog and for
// each association's rounds.
//
// The catalog holds every Config with its credentials sealed, never in
// plain text: each credential is encrypted (AES-256-GCM, bound to its
// destination and field) under a data key that Options.Sealer seals (a
// Vault Transit key with vaultkv.Transit, or KeyFileSealer's key file on
// one host), and the catalog keeps only the sealed data key. A registry
// with a Catalog and no Sealer refuses a Config that holds a credential
// (ErrNoSealer). The catalog also keeps each association's sync name, so that names stay
// what they were across restarts, whatever the order of Set.
package registry

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	gosync "sync"
	"time"

	"github.com/secretsync/secretsync/audit"
	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/state"
	"github.com/secretsync/secretsync/sync"
)

// Sentinel errors of this package.
var (
	// ErrInvalidConfig: a destination's name or Config, or an association's
	// options, are unusable. The error is a *ConfigError.
	ErrInvalidConfig = errors.New("registry: invalid configuration")
	// ErrNotFound: no destination, or no association, by that name.
	ErrNotFound = errors.New("registry: not found")
	// ErrInUse: the destination still has associations and cannot be
	// deleted. The error is an *InUseError.
	ErrInUse = errors.New("registry: destination has associations")
	// ErrNoDriver: no Driver is registered for the destination's type.
	ErrNoDriver = errors.New("registry: no driver for the destination type")
	// ErrNoSource: associations need Options.Source.
	ErrNoSource = errors.New("registry: no Source in Options")
	// ErrWatching: Watch is running already.
	ErrWatching = errors.New("registry: Watch is already running")
)

// ConfigError reports an unusable name, Config field or association
// option, without its value. errors.Is(err, ErrInvalidConfig) holds for it.
type ConfigError struct {
	Type   string // the destination type, when known
	Field  string // the field, under its JSON name
	Reason string
}

// Error describes the field and the reason, never the value.
func (e *ConfigError) Error() string {
	if e.Type == "" {
		return fmt.Sprintf("registry: %s: %s", e.Field, e.Reason)
	}
	return fmt.Sprintf("registry: %s destination: %s: %s", e.Type, e.Field, e.Reason)
}

// Is reports whether target is ErrInvalidConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// InUseError is returned by Delete, without Purge or Force, for a
// destination with associations.
// errors.Is(err, ErrInUse) holds for it.
type InUseError struct {
	Type, Name   string
	Associations int
}

// Error names the destination and counts its associations.
func (e *InUseError) Error() string {
	return fmt.Sprintf("registry: destination %s/%s has %d association(s); remove them first, or delete with Purge (unsync them) or Force (leave their entries)", e.Type, e.Name, e.Associations)
}

// Is reports whether target is ErrInUse.
func (e *InUseError) Is(target error) bool { return target == ErrInUse }

// Target is what a Driver opens: one destination of the registry, for one
// association (or for Registry.Open, for none).
type Target struct {
	// Name is the destination's name in the registry.
	Name string
	// Config is the destination's Config, of the Driver's type.
	Config Config
	// Owner identifies the association whose sync will use the
	// destination ("" for Registry.Open). Where the store can keep a
	// marker on an entry (a tag, a label, a comment), the destination
	// marks every entry it creates with Owner, lists only entries so
	// marked, and neither overwrites nor deletes an entry without the
	// marker: it reports destination.ErrNotOwned. With Owner "" it marks
	// entries as the library's without naming an association.
	Owner string
}

// Driver opens a destination from its Target. The registry calls it when
// an association of the destination first needs it, and again after the
// destination's Config changed. A destination that implements io.Closer
// is closed by the registry when it is replaced or its association
// removed.
type Driver func(ctx context.Context, t Target) (destination.Destination, error)

// SourceFunc opens the KV v2 secret an association names, as the source of
// its sync. Package registry/kv has the one that reads Vault
// (kv.SecretSource); tests use in-memory secrets.
type SourceFunc func(ctx context.Context, mount, secret string) (destination.Reader, error)

// Options configures a Registry. The zero value is usable for destinations;
// associations need Source.
type Options struct {
	// Drivers open destinations, by type.
	Drivers map[string]Driver
	// Source opens the secrets that associations name.
	Source SourceFunc
	// Store keeps the sync state of every association; nil keeps it in
	// memory.
	Store state.Store
	// Auditor receives the events of every association's sync.
	Auditor audit.Auditor
	// Clock gives the time of associations' status and of their syncs'
	// records, and schedules Watch (its syncs' rounds, its catalog polls
	// and its backoff); nil means the real clock (sync.WallClock). See
	// sync.Clock.
	Clock sync.Clock
	// PollInterval is how often Watch runs a round of each association
	// (a reconcile that reads the secret and the destination) besides
	// the rounds that follow a change announced by a source that is a
	// destination.Notifier (registry/kv's sources poll Vault's metadata
	// for that, every few seconds). Vault Community Edition has no
	// events, so polling is how changes arrive. 0 means
	// DefaultPollInterval.
	PollInterval time.Duration

	// Catalog keeps the destinations and associations (see
	// "Persistence"), so that they outlive the process and replicas that
	// share it see each other's: a state.File on one host, a
	// vaultkv.Store for replicas (usually the Store of Options.Store).
	// Nil keeps them in memory only. Use Open (or Reload) to read it.
	Catalog state.Documents
	// CatalogName is the name of the registry's document in Catalog;
	// empty means DefaultCatalogName.
	CatalogName string
	// Sealer seals the credentials of the destinations kept in Catalog
	// (vaultkv.Transit, or KeyFileSealer on one host): the catalog holds
	// them only as ciphertext. Without it, Put refuses a Config that holds
	// a credential with ErrNoSealer while a Catalog is set.
	Sealer state.KeySealer
	// Types are the program's own Config types, by type name, each as its
	// zero value (a struct, or a pointer to one), so that the catalog can
	// read them back. The built-in types need no entry.
	Types map[string]Config
	// Lock, when set, is the Lock of every association's sync
	// (sync.Config.Lock), so that replicas sharing Store and Catalog run
	// each association's rounds one at a time; every change of the
	// catalog takes it too, under the name "registry-catalog-" and
	// CatalogName. A vaultkv.Store's NewLock is one.
	Lock state.Lock
}

// DefaultPollInterval is the PollInterval of Options that set none.
const DefaultPollInterval = time.Minute

// Registry holds named destinations and their associations.
type Registry struct {
	opts  Options
	store state.Store

	mu    gosync.Mutex
	dests map[destKey]*dest
	// While Watch runs: its context, and the association watchers it
	// started.
	watchCtx context.Context
	watchWG  *gosync.WaitGroup

	// The catalog (Options.Catalog): catMu serializes the changes of
	// the registry that are saved in it, and guards catRev, the revision
	// last read or written, and catLoaded.
	catMu     gosync.Mutex
	catRev    int64
	catLoaded bool
	seal      *sealer
}

type destKey struct{ typ, name string }

type dest struct {
	cfg    Config
	gen    int // bumped on each Put, so that associations reopen
	assocs map[SecretRef]*assoc
}

type assoc struct {
	a Association // guarded by Registry.mu, so that listing never waits for a sync

	// removing: a Remove was recorded in the catalog and has not ended
	// (see Remove); guarded by Registry.mu. unsyncing: this process runs
	// that removal; guarded by Registry.mu.
	removing, unsyncing bool

	mu      gosync.Mutex // serializes the association's operations; guards the rest
	syncer  *sync.Syncer
	gen     int   // the destination's gen when syncer was built
	sides   []any // the source and destination of syncer, closed with it
	removed bool  // unlinked by Remove
	// accessor is what the last source opened for the association gave as
	// its mount's accessor ("" when it could not tell), and accessorKnown
	// says whether one was opened: an unsync without the secret names the
	// entries of a destination named by template with it. Guarded by
	// Registry.mu; kept in the catalog.
	accessor      string
	accessorKnown bool

	// The Watch of syncer that Registry.Watch runs, if any: watchStop
	// cancels it and watchDone is closed once it returned.
	watchStop func()
	watchDone chan struct{}
	// gone receives a value after a round found the secret gone from
	// Vault and refused to empty the destination (see onRound).
	gone chan struct{}
}

// New returns an empty Registry.
// A nil options means the zero Options.
func New(options *Options) *Registry {
	var opts Options
	if options != nil {
		opts = *options
	}
	if opts.Clock == nil {
		opts.Clock = sync.WallClock{}
	}
	st := opts.Store
	if st == nil {
		st = state.NewMemory()
	}
	return &Registry{opts: opts, store: st, dests: map[destKey]*dest{}, seal: &sealer{ks: opts.Sealer}}
}

// Info is a destination as the registry shows it: credentials are
// obfuscated.
type Info struct {
	Name string `json:"name"`
	Type string `json:"type"`
	// ConnectionDetails holds the Config's fields under their JSON names,
	// with every Credential shown as "*****".
	ConnectionDetails map[string]any `json:"connection_details"`
	// Associations is the number of secrets associated with it.
	Associations int `json:"associations"`
}

var (
	namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
	typePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)
)

func checkName(typ, name string) error {
	if !namePattern.MatchString(name) {
		return &ConfigError{Type: typ, Field: "name", Reason: "must be 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit"}
	}
	return nil
}

// Put creates the destination name of cfg's type, or replaces its Config.
// A bad name or Config gets a *ConfigError and changes nothing. Replacing
// a Config closes the sides that the destination's associations opened
// with the old one (io.Closer; an association busy with an operation
// closes them when it ends), and they open it again on their next
// operation.
func (r *Registry) Put(ctx context.Context, name string, cfg Config) (Info, error) {
	if err := ctx.Err(); err != nil {
		return Info{}, err
	}
	if cfg == nil {
		return Info{}, &ConfigError{Field: "config", Reason: "missing"}
	}
	typ := cfg.Type()
	if !typePattern.MatchString(typ) {
		return Info{}, &ConfigError{Field: "type", Reason: fmt.Sprintf("%q is not a type name (lower-case letters, digits and '-')", typ)}
	}
	if err := checkName(typ, name); err != nil {
		return Info{}, err
	}
	if err := cfg.Validate(); err != nil {
		var ce *ConfigError
		if !errors.As(err, &ce) {
			err = &ConfigError{Type: typ, Field: "config", Reason: err.Error()}
		}
		return Info{}, err
	}
	if c, ok := cfg.(SyncConfig); ok {
		if _, err := nameTemplate(c); err != nil {
			return Info{}, err
		}
	}
	if err := r.persistable(cfg); err != nil {
		return Info{}, err
	}
	k := destKey{typ, name}
	var (
		d   *dest
		out Info
		as  []*assoc
	)
	err := r.change(ctx, func() error {
		r.mu.Lock()
		defer r.mu.Unlock()
		d = r.dests[k]
		if d == nil {
			d = &dest{assocs: map[SecretRef]*assoc{}}
			r.dests[k] = d
		}
		if len(d.assocs) > 0 && naming(d.cfg) != naming(cfg) {
			return &ConfigError{Type: typ, Field: "secret_name_template",
				Reason: "granularity and name template cannot change while the destination has associations (their entries have the old names); remove them first"}
		}
		d.cfg = cfg
		d.gen++
		out = info(k, d)
		as = slices.Collect(maps.Values(d.assocs))
		return nil
	})
	if err != nil {
		return Info{}, err
	}
	// Close what the associations opened with the old Config. One that is
	// busy closes it when its operation ends (see dropStale).
	for _, a := range as {
		if a.mu.TryLock() {
			r.dropStale(d, a)
			a.mu.Unlock()
		}
	}
	return out, nil
}

func info(k destKey, d *dest) Info {
	return Info{Name: k.name, Type: k.typ, ConnectionDetails: details(d.cfg), Associations: len(d.assocs)}
}

// Get returns the destination typ/name, with its credentials obfuscated,
// or an error matching ErrNotFound.
func (r *Registry) Get(ctx context.Context, typ, name string) (Info, error) {
	if err := ctx.Err(); err != nil {
		return Info{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	k := destKey{typ, name}
	d := r.dests[k]
	if d == nil {
		return Info{}, notFound(typ, name)
	}
	return info(k, d), nil
}

func notFound(typ, name string) error {
	return fmt.Errorf("%w: destination %s/%s", ErrNotFound, typ, name)
}

// List returns the names of the destinations grouped by type, each list
// sorted. Types with no destination are absent.
func (r *Registry) List(ctx context.Context) (map[string][]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string][]string{}
	for k := range r.dests {
		out[k.typ] = append(out[k.typ], k.name)
	}
	for _, names := range out {
		slices.Sort(names)
	}
	return out, nil
}

// Types returns the sorted keys of a List result, as Vault lists them.
func Types(list map[string][]string) []string {
	return slices.Sorted(maps.Keys(list))
}

// DeleteOptions are the options of Delete. The zero value deletes only a
// destination without associations.
type DeleteOptions struct {
	// Purge unsyncs every association of the destination first, one by
	// one as Remove does (sorted as Associations lists them), and then
	// deletes the destination. The first failure stops it: the
	// association that failed keeps its status, it and the associations
	// not reached yet stay with the destination, and the error is
	// returned; Delete again resumes. Associations with DisableDeletion
	// are unlinked and their entries kept, as Remove does.
	Purge bool
	// Force drops the associations and the destination without touching
	// the store: every entry the associations wrote stays at the
	// destination, with its ownership marker, synced and deleted by
	// nothing any more (delete them by hand, or set the associations
	// again later and remove them). Their sync state stays in
	// Options.Store, so that an association set again on a destination of
	// the same type and name takes those entries back as its own.
	Force bool
}

// Delete deletes the destination typ/name. Without options it is refused
// with an *InUseError while the destination has associations; with
// DeleteOptions.Purge it unsyncs them first, with DeleteOptions.Force it
// drops them and leaves their entries in the store. Either way the sides
// the associations opened are closed (io.Closer), after the operations in
// flight on them. Delete returns an error matching ErrNotFound when there
// is no such destination, and ErrInvalidConfig when both options are set.
// A nil options means the zero DeleteOptions.
func (r *Registry) Delete(ctx context.Context, typ, name string, options *DeleteOptions) error {
	var opts DeleteOptions
	if options != nil {
		opts = *options
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if opts.Purge && opts.Force {
		return &ConfigError{Type: typ, Field: "force", Reason: "set together with purge; choose one"}
	}
	k := destKey{typ, name}
	var (
		d     *dest
		as    []*assoc
		purge bool
	)
	err := r.change(ctx, func() error {
		r.mu.Lock()
		defer r.mu.Unlock()
		if d = r.dests[k]; d == nil {
			return notFound(typ, name)
		}
		switch n := len(d.assocs); {
		case n == 0 || opts.Force:
			delete(r.dests, k)
			as = slices.Collect(maps.Values(d.assocs))
		case !opts.Purge:
			return &InUseError{Type: typ, Name: name, Associations: n}
		default:
			purge = true
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !purge {
		for _, a := range as {
			a.mu.Lock()
			a.unlink()
			a.mu.Unlock()
		}
		return nil
	}

	// Purge: remove the associations until none is left (a Set may add
	// one meanwhile), then delete the destination.
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		done := false
		err := r.change(ctx, func() error {
			r.mu.Lock()
			defer r.mu.Unlock()
			if r.dests[k] != d {
				return notFound(typ, name) // deleted meanwhile
			}
			if len(d.assocs) == 0 {
				delete(r.dests, k)
				done = true
				return nil
			}
			return errUnchanged
		})
		if err != nil || done {
			return err
		}
		r.mu.Lock()
		as := slices.SortedFunc(maps.Values(d.assocs), func(x, y *assoc) int {
			return cmp.Or(cmp.Compare(x.a.Secret.Mount, y.a.Secret.Mount), cmp.Compare(x.a.Secret.Name, y.a.Secret.Name))
		})
		r.mu.Unlock()
		for _, a := range as {
			if _, err := r.remove(ctx, d, a); err != nil {
				return fmt.Errorf("registry: purge destination %s/%s: %w", typ, name, err)
			}
		}
	}
}

// Open opens the destination typ/name with the Driver of its type, for no
// association (Target.Owner is ""). The destination is the caller's: close
// it when it is an io.Closer. Open returns an error matching ErrNotFound or
// ErrNoDriver, or the driver's.
func (r *Registry) Open(ctx context.Context, typ, name string) (destination.Destination, error) {
	r.mu.Lock()
	d := r.dests[destKey{typ, name}]
	var cfg Config
	if d != nil {
		cfg = d.cfg
	}
	r.mu.Unlock()
	if d == nil {
		return nil, notFound(typ, name)
	}
	return r.open(ctx, Target{Name: name, Config: cfg})
}

func (r *Registry) open(ctx context.Context, t Target) (destination.Destination, error) {
	typ := t.Config.Type()
	drv := r.opts.Drivers[typ]
	if drv == nil {
		return nil, fmt.Errorf("%w: %q (destination %s)", ErrNoDriver, typ, t.Name)
	}
	dst, err := drv(ctx, t)
	if err != nil {
		return nil, fmt.Errorf("registry: open destination %s/%s: %w", typ, t.Name, err)
	}
	return dst, nil
}

// maxSyncName is the longest sync name the registry gives an association:
// shorter than sync.ValidName allows, so that it is also a valid GCP label
// value (at most 63 characters), where gcp-sm keeps the ownership marker.
const maxSyncName = 63

// syncHashLen is the number of hex digits of the hash that keeps a sync
// name unique when it has to be cut, or when another association has it.
const syncHashLen = 8

// syncName returns the readable sync name of the association of the
// secret ref with the destination typ/name: the type, the destination's
// name, the mount and the secret's name, joined by '-', in lower case,
// with every run of characters other than a letter, a digit or '_' made
// one '-' (so gh, my-repo, kv, app/prod gives "gh-my-repo-kv-app-prod").
// A name longer than maxSyncName is cut, and ends with '-' and a short
// hash of the four parts, which keeps it unique.
//
// Association.SyncName is syncName's result, unless another association
// of the registry already had that name when the association was first
// set (the readable form folds case and punctuation, so "App/Prod" and
// "app/prod" meet): then it is cut as needed and ends with the hash.
// An association keeps its sync name for as long as it exists: the name
// keys its state in Options.Store and marks its entries at the
// destination (Target.Owner).
func syncName(typ, name string, ref SecretRef) string {
	r := readableSyncName(typ, name, ref)
	if r == "" || len(r) > maxSyncName {
		return hashedSyncName(r, typ, name, ref, syncHashLen)
	}
	return r
}

// readableSyncName joins the parts of a sync name, uncut.
func readableSyncName(typ, name string, ref SecretRef) string {
	var b strings.Builder
	dash := false
	for _, part := range []string{typ, name, ref.Mount, ref.Name} {
		for _, r := range strings.ToLower(part) {
			switch {
			case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_':
				if dash && b.Len() > 0 {
					b.WriteByte('-')
				}
				b.WriteRune(r)
				dash = false
			default:
				dash = true
			}
		}
		dash = true
	}
	return b.String()
}

// hashedSyncName cuts readable to leave room for the hash of the
// association's parts, and appends it.
func hashedSyncName(readable, typ, name string, ref SecretRef, n int) string {
	h := sha256.Sum256([]byte(typ + "\x00" + name + "\x00" + ref.Mount + "\x00" + ref.Name))
	sum := hex.EncodeToString(h[:])[:n]
	if readable == "" {
		return sum
	}
	readable = readable[:min(len(readable), maxSyncName-n-1)]
	return strings.TrimRight(readable, "-") + "-" + sum
}

// newSyncName returns the sync name of a new association: its syncName,
// or a hashed form when another association has that. r.mu is held.
func (r *Registry) newSyncName(typ, name string, ref SecretRef) string {
	n := syncName(typ, name, ref)
	taken := func(n string) bool {
		for _, d := range r.dests {
			for _, a := range d.assocs {
				if a.a.SyncName == n {
					return true
				}
			}
		}
		return false
	}
	// Longer hashes, should a shorter one meet another name too.
	for l := syncHashLen; taken(n) && l <= 2*syncHashLen; l *= 2 {
		n = hashedSyncName(readableSyncName(typ, name, ref), typ, name, ref, l)
	}
	return n
}

// Close closes every destination and source that the registry opened for
// its associations and that holds resources (an io.Closer). The registry
// stays usable: associations open their sides again when next used.
func (r *Registry) Close() error {
	r.mu.Lock()
	var as []*assoc
	for _, d := range r.dests {
		for _, a := range d.assocs {
			as = append(as, a)
		}
	}
	r.mu.Unlock()
	for _, a := range as {
		a.mu.Lock()
		a.drop()
		a.mu.Unlock()
	}
	return nil
}

// naming returns what names a Config's entries: its effective granularity
// and name template, or "" for a Config named by key schema.
func naming(c Config) string {
	sc, ok := c.(SyncConfig)
	if !ok || c == nil {
		return ""
	}
	o := sc.SyncSettings()
	g := cmp.Or(o.Granularity, DefaultGranularity(c.Type()))
	return g + "\x00" + cmp.Or(o.SecretNameTemplate, DefaultNameTemplate(g))
}
