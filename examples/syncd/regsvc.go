package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	gosync "sync"
	"time"

	"github.com/secretsync/secretsync/audit"
	"github.com/secretsync/secretsync/connection"
	"github.com/secretsync/secretsync/destination/awssm"
	"github.com/secretsync/secretsync/destination/azurekv"
	"github.com/secretsync/secretsync/destination/gcpsm"
	"github.com/secretsync/secretsync/destination/ghactions"
	"github.com/secretsync/secretsync/destination/vercel"
	"github.com/secretsync/secretsync/registry"
	"github.com/secretsync/secretsync/registry/kv"
	"github.com/secretsync/secretsync/state"
	"github.com/secretsync/secretsync/vaultkv"
)

// regService is the registry of the registry block. It is built once, at
// start, and outlives reloads: a reload keeps it running, with what was
// created over the API (and refuses a configuration whose registry block,
// registry connection or state block changed: those take a restart). The
// API serves it (see apiService). Stop ends it.
type regService struct {
	reg  *registry.Registry
	conn *connection.Conn // the registry's own, closed by stop

	cancel    context.CancelFunc
	watchDone chan struct{}
}

// startRegistry builds the registry of cfg.Registry over a connection of
// its own and g's state store (a Vault state store is opened again over
// that connection, so that it outlives g's connections), declares its
// destinations and associations and runs its Watch. The
// registry's events go to whichever generation d runs (auditor).
//
// An association whose first sync fails is logged and left to Watch,
// which retries it; a declaration the registry refuses fails the start.
func startRegistry(ctx context.Context, cfg *Config, g *generation, log *slog.Logger, auditor audit.Auditor) (_ *regService, err error) {
	rc := cfg.Registry
	cc := cfg.conns[rc.Connection]
	conn, err := connection.New(ctx, connConfig(cc), &connection.Options{Name: cc.Name, Auditor: auditor, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("registry: connection %q: %w", cc.Name, err)
	}
	s := &regService{conn: conn}
	defer func() {
		if err != nil {
			s.stop() // what was built so far, never a nil result
		}
	}()

	var (
		store   state.Store
		catalog state.Documents
		sealer  state.KeySealer
		lock    state.Lock
	)
	switch st := cfg.State; {
	case st == nil:
		store = state.NewMemory()
	case st.File != "":
		store = g.store // one file, one open: shared; reloads keep it
		catalog, _ = g.store.(state.Documents)
		sealer = registry.KeyFileSealer(st.File + ".catalog-key")
	default:
		vs, err := vaultkv.NewStore(ctx, conn, &vaultkv.StoreOptions{Mount: st.Mount, Path: st.Path})
		if err != nil {
			return nil, fmt.Errorf("registry: state: %w", err)
		}
		store, catalog = vs, vs
		if pl := cfg.lock; pl != nil {
			lock = pl.lock
		} else {
			ttl, _ := time.ParseDuration(st.LockTTL)
			vl, err := vs.NewLock(&vaultkv.LockOptions{TTL: ttl})
			if err != nil {
				return nil, fmt.Errorf("registry: state: %w", err)
			}
			lock = vl
		}
	}
	if tr := rc.Transit; tr != nil && catalog != nil {
		t, err := vaultkv.NewTransit(conn, &vaultkv.TransitOptions{Mount: tr.Mount, Key: tr.Key})
		if err != nil {
			return nil, fmt.Errorf("registry: transit: %w", err)
		}
		sealer = t
	}
	drivers := newExternalDrivers()
	drivers[registry.TypeVaultKV] = kv.Driver(map[string]*connection.Conn{rc.Connection: conn}, "")
	s.reg, err = registry.Open(ctx, &registry.Options{
		Drivers:      drivers,
		Source:       kv.SecretSource(conn),
		Store:        store,
		Catalog:      catalog,
		Sealer:       sealer,
		Lock:         lock,
		Auditor:      auditor,
		PollInterval: cfg.registryPoll,
	})
	if err != nil {
		return nil, fmt.Errorf("registry: catalog: %w", err)
	}

	for _, d := range rc.Destinations {
		dc, err := declaredConfig(rc, d)
		if err != nil {
			return nil, fmt.Errorf("registry: destination %s/%s: %w", d.Type, d.Name, err)
		}
		if _, err := s.reg.Put(ctx, d.Name, dc); errors.Is(err, registry.ErrNoSealer) {
			return nil, fmt.Errorf("registry: destination %s/%s holds a credential, which the catalog in Vault keeps only sealed: give the registry block a transit block", d.Type, d.Name)
		} else if err != nil {
			return nil, fmt.Errorf("registry: destination %s/%s: %w", d.Type, d.Name, err)
		}
	}
	for _, a := range rc.Associations {
		ref := registry.SecretRef{Mount: a.Mount, Name: a.SecretName}
		as, err := s.reg.Set(ctx, a.Type, a.Destination, ref, &registry.AssociationOptions{KeySchema: a.KeySchema, DisableDeletion: a.DisableDeletion})
		switch {
		case err != nil && as.SyncName == "":
			return nil, fmt.Errorf("registry: association of %s with %s/%s: %w", ref, a.Type, a.Destination, err)
		case err != nil:
			log.Warn("registry: the first sync of an association failed; Watch retries it",
				"destination", a.Type+"/"+a.Destination, "secret", ref.String(), "status", string(as.Status), "message", as.Message)
		}
	}

	wctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.watchDone = cancel, make(chan struct{})
	go func() {
		defer close(s.watchDone)
		if err := s.reg.Watch(wctx); err != nil && !errors.Is(err, context.Canceled) {
			log.Error("registry: watch stopped", "error", err)
		}
	}()
	return s, nil
}

// stop ends Watch (letting rounds in flight finish), closes the registry
// and its destinations, and closes the connection.
func (s *regService) stop() {
	if s.cancel != nil {
		s.cancel()
		<-s.watchDone
	}
	if s.reg != nil {
		_ = s.reg.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = s.conn.Close(ctx)
}

// accessors returns the httpapi Accessor over conn: each mount's accessor,
// read once (vaultkv.New reads it) and cached.
func accessors(conn *connection.Conn) func(ctx context.Context, mount string) (string, error) {
	var mu gosync.Mutex
	cache := map[string]string{}
	return func(ctx context.Context, mount string) (string, error) {
		mu.Lock()
		acc, ok := cache[mount]
		mu.Unlock()
		if ok {
			return acc, nil
		}
		m, err := vaultkv.New(ctx, conn, &vaultkv.Options{Mount: mount, Layout: vaultkv.SecretKey})
		if err != nil {
			return "", err
		}
		acc = m.MountAccessor()
		mu.Lock()
		cache[mount] = acc
		mu.Unlock()
		return acc, nil
	}
}

// registryUnchanged reports why next cannot replace cur on reload while a
// registry runs: the registry block, its connection and the state block
// must stay as they are. It returns nil when they did.
func registryUnchanged(cur, next *Config) error {
	if cur.Registry == nil && next.Registry == nil {
		return nil
	}
	if !reflect.DeepEqual(registryForCompare(cur.Registry), registryForCompare(next.Registry)) {
		return errors.New("registry: the registry block cannot change on reload (its destinations and associations live in memory); restart syncd")
	}
	name := cur.Registry.Connection
	if !reflect.DeepEqual(*cur.conns[name], *next.conns[name]) {
		return fmt.Errorf("registry: connection %q, the registry's, cannot change on reload; restart syncd", name)
	}
	if !reflect.DeepEqual(cur.State, next.State) {
		return errors.New("registry: the state block cannot change on reload while a registry runs; restart syncd")
	}
	return nil
}

// registryForCompare returns a copy of rc without the parse trees of its
// destinations (their positions change with any edit of the file), with
// what was decoded from them instead.
func registryForCompare(rc *RegistryConfig) any {
	if rc == nil {
		return nil
	}
	c := *rc
	c.Destinations = nil
	for _, d := range rc.Destinations {
		d.Remain = nil
		c.Destinations = append(c.Destinations, d)
	}
	return c
}

// newExternalDrivers returns the drivers of the external destination
// types, with their default DriverOptions (each reaches the cloud's own
// API). Tests replace it to reach local servers.
var newExternalDrivers = func() map[string]registry.Driver {
	return map[string]registry.Driver{
		registry.TypeAWSSecretsManager: awssm.Driver(nil),
		registry.TypeAzureKeyVault:     azurekv.Driver(nil),
		registry.TypeGCPSecretManager:  gcpsm.Driver(nil),
		registry.TypeGitHubRepository:  ghactions.Driver(nil),
		registry.TypeVercelProject:     vercel.Driver(nil),
	}
}

// associations returns every association of the registry, by destination.
func (s *regService) associations() []registry.Association {
	ctx := context.Background()
	list, err := s.reg.List(ctx)
	if err != nil {
		return nil
	}
	var out []registry.Association
	for _, typ := range registry.Types(list) {
		for _, name := range list[typ] {
			as, err := s.reg.Associations(ctx, typ, name)
			if err == nil {
				out = append(out, as...)
			}
		}
	}
	return out
}
