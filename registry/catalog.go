package registry

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"time"

	"github.com/secretsync/secretsync/state"
	"github.com/secretsync/secretsync/sync"
)

// DefaultCatalogName is the name of the registry's document in
// Options.Catalog when Options.CatalogName is empty.
const DefaultCatalogName = "registry"

// CatalogFormat is the format of the catalog document that this version
// writes and reads.
const CatalogFormat = 1

// catalogAttempts bounds the saves of one change when another process
// saves the catalog in between (each attempt loads it again first, after
// a short random wait).
const catalogAttempts = 8

const msgLoaded = "loaded from the catalog; no round has run in this process yet"

// storedCatalog is the catalog document.
type storedCatalog struct {
	Format int `json:"format"`
	// Sealer is the Kind of the Options.Sealer that sealed Key, the data
	// key that seals every credential.
	Sealer       string       `json:"sealer,omitempty"`
	Key          string       `json:"sealed_key,omitempty"`
	Destinations []storedDest `json:"destinations"`
}

type storedDest struct {
	Type         string          `json:"type"`
	Name         string          `json:"name"`
	Config       json.RawMessage `json:"config"`
	Associations []storedAssoc   `json:"associations,omitempty"`
}

type storedAssoc struct {
	Secret          SecretRef `json:"secret"`
	KeySchema       string    `json:"key_schema,omitempty"`
	DisableDeletion bool      `json:"disable_deletion,omitempty"`
	SyncName        string    `json:"sync_name"`
	// Removing: a Remove was asked for, and the replica that runs the
	// association's rounds unsyncs it.
	Removing bool `json:"removing,omitempty"`
	// Accessor is the accessor of the secret's mount, as a source last
	// reported it; nil before one was opened. An unsync after a restart
	// that cannot open the secret names template entries with it.
	Accessor *string `json:"accessor,omitempty"`
}

// loadedDest is a destination read from the catalog.
type loadedDest struct {
	key    destKey
	cfg    Config
	assocs []storedAssoc
}

// Open returns a Registry with the destinations and associations that
// options.Catalog holds (see Reload); without a Catalog it is New.
// A nil options means the zero Options.
func Open(ctx context.Context, options *Options) (*Registry, error) {
	var opts Options
	if options != nil {
		opts = *options
	}
	r := New(&opts)
	if err := r.Reload(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// Reload makes the registry's destinations and associations those of
// Options.Catalog, when the catalog changed since the registry last read
// or wrote it (another replica changed it): new destinations and
// associations appear (and are watched, while Watch runs), changed
// Configs and options take effect, and those gone from the catalog are
// dropped without touching their entries (the process that removed them
// unsynced them). An association read from the catalog has StatusPending
// until its first round in this process. Watch calls Reload every
// PollInterval; every change (Put, Delete, Set, Remove) reloads first.
//
// Reload returns the catalog's errors: an error matching ErrSealed when a
// credential does not open, a *ConfigError for a type with no entry in
// Options.Types, and the store's; the registry is then left as it was.
// Without a Catalog it does nothing.
func (r *Registry) Reload(ctx context.Context) error {
	if r.opts.Catalog == nil {
		return ctx.Err()
	}
	r.catMu.Lock()
	defer r.catMu.Unlock()
	return r.reload(ctx, false)
}

func (r *Registry) catalogName() string { return cmp.Or(r.opts.CatalogName, DefaultCatalogName) }

// reload reads the catalog and applies it, unless its revision is the one
// last seen (force: in any case). r.catMu is held.
func (r *Registry) reload(ctx context.Context, force bool) error {
	doc, err := r.opts.Catalog.LoadDocument(ctx, r.catalogName())
	var cat storedCatalog
	rev := int64(0)
	switch {
	case errors.Is(err, state.ErrNotFound):
	case err != nil:
		return fmt.Errorf("registry: load the catalog: %w", err)
	default:
		rev = doc.Revision
		if err := json.Unmarshal(doc.Data, &cat); err != nil {
			return fmt.Errorf("registry: the catalog %q is not readable: %w", r.catalogName(), err)
		}
		if cat.Format != CatalogFormat {
			return fmt.Errorf("registry: the catalog %q has format %d, this version reads %d: %w", r.catalogName(), cat.Format, CatalogFormat, state.ErrUnknownFormat)
		}
	}
	if !force && r.catLoaded && rev == r.catRev {
		return nil
	}
	want, err := r.decodeCatalog(ctx, &cat)
	if err != nil {
		return err
	}
	r.apply(want)
	r.catRev, r.catLoaded = rev, true
	return nil
}

// decodeCatalog returns the destinations of cat, with their credentials
// opened.
func (r *Registry) decodeCatalog(ctx context.Context, cat *storedCatalog) ([]loadedDest, error) {
	out := make([]loadedDest, 0, len(cat.Destinations))
	for _, sd := range cat.Destinations {
		zero := r.configType(sd.Type)
		if zero == nil {
			return nil, &ConfigError{Type: sd.Type, Field: "type", Reason: fmt.Sprintf("the catalog holds destination %s of this type, which Options.Types does not declare", sd.Name)}
		}
		cfg, err := r.decodeConfig(ctx, cat, sd, zero)
		if err != nil {
			return nil, err
		}
		out = append(out, loadedDest{key: destKey{sd.Type, sd.Name}, cfg: cfg, assocs: sd.Associations})
	}
	return out, nil
}

// configType returns the zero Config of a type: a built-in one or one of
// Options.Types; nil when unknown.
func (r *Registry) configType(typ string) Config {
	if c, ok := r.opts.Types[typ]; ok {
		return c
	}
	switch typ {
	case TypeVaultKV:
		return VaultKV{}
	case TypeAWSSecretsManager:
		return AWSSecretsManager{}
	case TypeAzureKeyVault:
		return AzureKeyVault{}
	case TypeGCPSecretManager:
		return GCPSecretManager{}
	case TypeGitHubRepository:
		return GitHubRepository{}
	case TypeVercelProject:
		return VercelProject{}
	}
	return nil
}

// structOf returns an addressable copy of the struct that c is or points
// to, and a function that turns it back into a Config of c's type.
func structOf(c Config) (reflect.Value, func() Config, bool) {
	t := reflect.TypeOf(c)
	ptr := t.Kind() == reflect.Pointer
	if ptr {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return reflect.Value{}, nil, false
	}
	p := reflect.New(t)
	if v := reflect.ValueOf(c); ptr {
		if !v.IsNil() {
			p.Elem().Set(v.Elem())
		}
	} else {
		p.Elem().Set(v)
	}
	back := func() Config {
		if ptr {
			return p.Interface().(Config)
		}
		return p.Elem().Interface().(Config)
	}
	return p.Elem(), back, true
}

func (r *Registry) decodeConfig(ctx context.Context, cat *storedCatalog, sd storedDest, zero Config) (Config, error) {
	v, back, ok := structOf(zero)
	if !ok {
		return nil, &ConfigError{Type: sd.Type, Field: "type", Reason: "Options.Types holds a Config that is not a struct"}
	}
	if err := json.Unmarshal(sd.Config, v.Addr().Interface()); err != nil {
		return nil, fmt.Errorf("registry: the catalog's destination %s/%s is not readable: %w", sd.Type, sd.Name, err)
	}
	err := credentialFields(v, func(field string, c *Credential) error {
		if *c == "" {
			return nil
		}
		if cat.Key == "" {
			return fmt.Errorf("%w: the catalog holds a credential of %s/%s and no sealed key", ErrSealed, sd.Type, sd.Name)
		}
		aead, _, err := r.seal.key(ctx, cat.Sealer, cat.Key)
		if errors.Is(err, ErrNoSealer) {
			return fmt.Errorf("%w: the catalog holds sealed credentials and Options.Sealer is not set", ErrSealed)
		}
		if err != nil {
			return err
		}
		plain, err := open(aead, place(sd.Type, sd.Name, field), c.Reveal())
		if err != nil {
			return err
		}
		*c = Credential(plain)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return back(), nil
}

// place names where a credential is kept, which its sealed text is bound
// to.
func place(typ, name, field string) string { return typ + "/" + name + "/" + field }

// apply makes the registry's destinations and associations those of want.
func (r *Registry) apply(want []loadedDest) {
	var gone []*assoc
	var stale, removals []pair
	r.mu.Lock()
	seen := map[destKey]bool{}
	for _, ld := range want {
		seen[ld.key] = true
		d := r.dests[ld.key]
		switch {
		case d == nil:
			d = &dest{cfg: ld.cfg, gen: 1, assocs: map[SecretRef]*assoc{}}
			r.dests[ld.key] = d
		case !reflect.DeepEqual(d.cfg, ld.cfg):
			d.cfg = ld.cfg
			d.gen++
			for _, a := range d.assocs {
				stale = append(stale, pair{d, a})
			}
		}
		in := map[SecretRef]bool{}
		for _, sa := range ld.assocs {
			in[sa.Secret] = true
			a := d.assocs[sa.Secret]
			if a != nil && a.a.SyncName != sa.SyncName {
				// Another name: another sync. Drop this one.
				delete(d.assocs, sa.Secret)
				gone = append(gone, a)
				a = nil
			}
			if a == nil {
				a = &assoc{a: Association{Type: ld.key.typ, Destination: ld.key.name, Secret: sa.Secret, SyncName: sa.SyncName,
					Status: StatusPending, Message: msgLoaded, UpdatedAt: r.opts.Clock.Now()}, gone: make(chan struct{}, 1), removing: sa.Removing}
				d.assocs[sa.Secret] = a
				r.startWatch(d, a)
			}
			if a.a.KeySchema != sa.KeySchema || a.a.DisableDeletion != sa.DisableDeletion {
				a.a.KeySchema, a.a.DisableDeletion = sa.KeySchema, sa.DisableDeletion
				stale = append(stale, pair{d, a})
			}
			if sa.Accessor != nil && !a.accessorKnown {
				a.accessor, a.accessorKnown = *sa.Accessor, true
			}
			a.removing = sa.Removing
			if a.removing && !a.unsyncing {
				a.unsyncing = true
				removals = append(removals, pair{d, a})
			}
		}
		for ref, a := range d.assocs {
			if !in[ref] {
				delete(d.assocs, ref)
				gone = append(gone, a)
			}
		}
	}
	for k, d := range r.dests {
		if !seen[k] {
			delete(r.dests, k)
			gone = slices.AppendSeq(gone, maps.Values(d.assocs))
		}
	}
	r.mu.Unlock()
	for _, a := range gone {
		if a.mu.TryLock() {
			a.unlink()
			a.mu.Unlock()
			continue
		}
		// Busy (possibly with the very change that reloads): unlink it
		// once its operation ends.
		go func() {
			a.mu.Lock()
			a.unlink()
			a.mu.Unlock()
		}()
	}
	for _, p := range stale {
		if p.a.mu.TryLock() {
			p.a.drop() // built anew, with the new Config or options, when next used
			p.a.mu.Unlock()
		}
	}
	r.unsyncLater(removals)
}

// unsyncLater runs the removals that another replica recorded (see
// Remove), each on a goroutine of its own: the replica that runs the
// association's rounds does them, the others find its lock held.
// unsyncing is set on each.
func (r *Registry) unsyncLater(removals []pair) {
	for _, p := range removals {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), removalTimeout)
			defer cancel()
			_, _ = r.remove(ctx, p.d, p.a)
		}()
	}
}

// pendingRemovals returns the associations whose removal is recorded and
// that no goroutine of this process unsyncs, marked unsyncing.
func (r *Registry) pendingRemovals() []pair {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []pair
	for _, d := range r.dests {
		for _, a := range d.assocs {
			if a.removing && !a.unsyncing && !a.removed {
				a.unsyncing = true
				out = append(out, pair{d, a})
			}
		}
	}
	return out
}

// pair is an association with its destination.
type pair struct {
	d *dest
	a *assoc
}

// removalTimeout bounds an unsync that a replica runs for a Remove that
// another one recorded.
const removalTimeout = 5 * time.Minute

// change runs mutate, which changes the registry in memory, and saves the
// result in the catalog: after reading the catalog again (so that what
// other processes saved is there), under Options.Lock when set. When the
// save fails the registry is made the catalog's again, which undoes
// mutate; a save refused because another process saved meanwhile is
// tried again from the start, a few times. Without a catalog, change runs
// mutate alone.
func (r *Registry) change(ctx context.Context, mutate func() error) error {
	if r.opts.Catalog == nil {
		if err := mutate(); !errors.Is(err, errUnchanged) {
			return err
		}
		return nil
	}
	r.catMu.Lock()
	defer r.catMu.Unlock()
	if r.opts.Lock != nil {
		held, release, err := r.opts.Lock.Acquire(ctx, r.catalogLockName())
		if err != nil {
			return fmt.Errorf("registry: lock the catalog: %w", err)
		}
		defer release()
		ctx = held
	}
	var err error
	for attempt := range catalogAttempts {
		if err = r.reload(ctx, false); err != nil {
			return err
		}
		if err = mutate(); errors.Is(err, errUnchanged) {
			return nil
		}
		if err != nil {
			return err
		}
		if err = r.save(ctx); err == nil {
			return nil
		}
		// Undo mutate: the catalog is what holds.
		if rerr := r.reload(ctx, true); rerr != nil {
			return errors.Join(err, rerr)
		}
		if !errors.Is(err, state.ErrConflict) {
			break
		}
		// Another replica saved in between: wait a little (random, and
		// longer each time), so that busy replicas take turns. A wait
		// for the store, not a schedule: on the real clock.
		if !sleep(ctx, sync.WallClock{}, time.Duration(1+rand.IntN(5*(attempt+1)))*time.Millisecond) {
			return context.Cause(ctx)
		}
	}
	return fmt.Errorf("registry: save the catalog: %w", err)
}

// errUnchanged is what a mutate function of change returns when it
// changed nothing: change then saves nothing.
var errUnchanged = errors.New("registry: unchanged")

// catalogLockName is the name of the catalog's lock in Options.Lock.
func (r *Registry) catalogLockName() string { return "registry-catalog-" + r.catalogName() }

// save writes the registry's destinations and associations to the
// catalog, with check-and-set on the revision last read. r.catMu is held.
func (r *Registry) save(ctx context.Context) error {
	type entry struct {
		k  destKey
		c  Config
		as []storedAssoc
	}
	r.mu.Lock()
	entries := make([]entry, 0, len(r.dests))
	for k, d := range r.dests {
		e := entry{k: k, c: d.cfg}
		for _, a := range d.assocs {
			sa := storedAssoc{Secret: a.a.Secret, KeySchema: a.a.KeySchema, DisableDeletion: a.a.DisableDeletion, SyncName: a.a.SyncName, Removing: a.removing}
			if a.accessorKnown {
				acc := a.accessor
				sa.Accessor = &acc
			}
			e.as = append(e.as, sa)
		}
		entries = append(entries, e)
	}
	r.mu.Unlock()
	slices.SortFunc(entries, func(x, y entry) int {
		return cmp.Or(cmp.Compare(x.k.typ, y.k.typ), cmp.Compare(x.k.name, y.k.name))
	})
	cat := storedCatalog{Format: CatalogFormat, Destinations: []storedDest{}}
	for _, e := range entries {
		slices.SortFunc(e.as, func(x, y storedAssoc) int {
			return cmp.Or(cmp.Compare(x.Secret.Mount, y.Secret.Mount), cmp.Compare(x.Secret.Name, y.Secret.Name))
		})
		raw, err := r.encodeConfig(ctx, &cat, e.k, e.c)
		if err != nil {
			return err
		}
		cat.Destinations = append(cat.Destinations, storedDest{Type: e.k.typ, Name: e.k.name, Config: raw, Associations: e.as})
	}
	data, err := json.Marshal(cat)
	if err != nil {
		return err
	}
	doc := &state.Document{Revision: r.catRev, Data: data}
	if err := r.opts.Catalog.SaveDocument(ctx, r.catalogName(), doc); err != nil {
		return err
	}
	r.catRev, r.catLoaded = doc.Revision, true
	return nil
}

// encodeConfig returns the JSON of c with every credential sealed.
func (r *Registry) encodeConfig(ctx context.Context, cat *storedCatalog, k destKey, c Config) (json.RawMessage, error) {
	v, _, ok := structOf(c)
	if !ok {
		return nil, &ConfigError{Type: k.typ, Field: "config", Reason: "a Config kept in a catalog must be a struct"}
	}
	sealed := map[string]string{}
	err := credentialFields(v, func(field string, cr *Credential) error {
		if *cr == "" {
			return nil
		}
		aead, key, err := r.seal.key(ctx, "", "")
		if err != nil {
			return err
		}
		cat.Sealer, cat.Key = r.opts.Sealer.Kind(), key
		s, err := seal(aead, place(k.typ, k.name, field), cr.Reveal())
		if err != nil {
			return err
		}
		sealed[field] = s
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Credentials encode as "*****": put the sealed texts in their place.
	raw, err := json.Marshal(v.Addr().Interface())
	if err != nil {
		return nil, err
	}
	if len(sealed) == 0 {
		return raw, nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, err
	}
	for f, s := range sealed {
		fields[f], _ = json.Marshal(s)
	}
	return json.Marshal(fields)
}

// persistable reports why cfg cannot be kept in the catalog: a type the
// catalog could not read back, a credential it could not seal.
func (r *Registry) persistable(cfg Config) error {
	if r.opts.Catalog == nil {
		return nil
	}
	typ := cfg.Type()
	zero := r.configType(typ)
	if zero == nil || reflect.TypeOf(zero) != reflect.TypeOf(cfg) {
		return &ConfigError{Type: typ, Field: "type", Reason: "the registry keeps a catalog, and Options.Types does not declare this Config type, so it could not be read back"}
	}
	v, _, ok := structOf(cfg)
	if !ok {
		return &ConfigError{Type: typ, Field: "config", Reason: "a Config kept in a catalog must be a struct"}
	}
	if p := nestedCredential(v.Type()); p != "" {
		return &ConfigError{Type: typ, Field: "config", Reason: fmt.Sprintf("a Credential at %s cannot be sealed in the catalog: credentials must be fields of the Config", p)}
	}
	holds := false
	_ = credentialFields(v, func(_ string, c *Credential) error {
		holds = holds || *c != ""
		return nil
	})
	if holds && r.opts.Sealer == nil {
		return fmt.Errorf("%w: destination type %s holds a credential", ErrNoSealer, typ)
	}
	return nil
}
