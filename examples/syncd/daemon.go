package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"
	"sort"
	gosync "sync"
	"time"

	"github.com/secretsync/secretsync/audit"
	"github.com/secretsync/secretsync/connection"
	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/dotenv"
	"github.com/secretsync/secretsync/state"
	"github.com/secretsync/secretsync/sync"
	"github.com/secretsync/secretsync/vaultkv"
)

// generation is everything built from one configuration: connections, the
// state store, and the syncs. A reload builds a new generation and, once it
// is built, stops the old one.
type generation struct {
	cfg     *Config
	conns   map[string]*connection.Conn
	store   state.Store
	closeSt func()
	lock    *trackedLock  // nil without a Vault state store
	ownLock *vaultkv.Lock // the lock under lock when g made it (not the process's)
	audit   *auditFile    // nil without an audit block
	syncs   map[string]*managed
	names   []string
	auditor audit.Auditor // where the generation's events go

	cancel context.CancelFunc
	wg     gosync.WaitGroup
}

// managed is one running sync.
type managed struct {
	cfg    *SyncConfig
	syncer *sync.Syncer
	auto   bool
}

// build makes a generation from cfg. It connects nothing yet but checks the
// Vault mounts it uses. reuse, when not nil, is the running generation: its
// state store is kept when the state file did not change (a state file can
// be open only once), and so is its audit file when the path is the same.
//
// When cfg cannot be built, build closes what it built itself (connections,
// a state store or an audit file it opened) and returns the error; reuse is
// left untouched, its state store and audit file included, so that a
// refused reload changes nothing.
func build(ctx context.Context, cfg *Config, log *slog.Logger, m *metrics, reuse *generation) (*generation, error) {
	g := &generation{cfg: cfg, conns: map[string]*connection.Conn{}, syncs: map[string]*managed{}}
	if err := g.build(ctx, log, m, reuse); err != nil {
		g.close(reuse) // reuse's store, when g took it, stays open
		return nil, err
	}
	return g, nil
}

// build fills g from g.cfg; on an error, g holds what was built so far.
func (g *generation) build(ctx context.Context, log *slog.Logger, m *metrics, reuse *generation) error {
	cfg := g.cfg
	auditor := audit.NewSlog(log, nil)
	if a := cfg.Audit; a != nil {
		if reuse != nil && sameAuditFile(reuse.audit, a) {
			g.audit = reuse.audit
		} else {
			f, err := openAuditFile(a.File)
			if err != nil {
				return err
			}
			g.audit = f
		}
		auditor = audit.NewJSONLines(g.audit)
	}
	g.auditor = auditor
	for i := range cfg.Connections {
		cc := &cfg.Connections[i]
		c, err := connection.New(ctx, connConfig(cc), &connection.Options{Name: cc.Name, Auditor: auditor, Logger: log})
		if err != nil {
			return fmt.Errorf("connection %q: %w", cc.Name, err)
		}
		g.conns[cc.Name] = c
	}

	if reuse != nil && sameStateFile(reuse.cfg.State, cfg.State) {
		// A state file can be open only once: keep the running one. Its
		// key is sealed (or not) as it was opened, so a change of the
		// transit block cannot take effect without a restart.
		if !reflect.DeepEqual(reuse.cfg.State.Transit, cfg.State.Transit) {
			return errors.New("state: the transit block of a state file that is open cannot change on reload; restart syncd to seal or unseal its key differently")
		}
		g.store, g.closeSt = reuse.store, reuse.closeSt
	} else if err := g.openState(ctx, cfg.State); err != nil {
		return err
	}

	for i := range cfg.Syncs {
		sc := &cfg.Syncs[i]
		p := cfg.parsed[sc.Name]
		src, err := g.side(ctx, sc.Name, sc.Source, p.srcLay, p.srcPoll)
		if err != nil {
			return fmt.Errorf("sync %q: source: %w", sc.Name, err)
		}
		dst, err := g.side(ctx, sc.Name, sc.Destination, p.dstLay, p.dstPoll)
		if err != nil {
			return fmt.Errorf("sync %q: destination: %w", sc.Name, err)
		}
		sa := auditor
		if sc.Destination.Vault != nil {
			sa = audit.Prefix(connection.EventPrefix, auditor) // HCV_SECRET_SYNCED, as Vault's own sync names it
		}
		name := sc.Name
		scfg := syncConfig(sc, p, src, dst)
		scfg.Store, scfg.Lock, scfg.Auditor, scfg.Logger = g.store, g.stateLock(), sa, log
		scfg.OnRound = func(rep *sync.Report, err error) { m.observe(name, rep, err) }
		s, err := sync.New(scfg)
		if err != nil {
			return fmt.Errorf("sync %q: %w", sc.Name, err)
		}
		g.syncs[sc.Name] = &managed{cfg: sc, syncer: s, auto: !p.auto.Disabled}
		g.names = append(g.names, sc.Name)
	}
	sort.Strings(g.names)
	return nil
}

// syncConfig returns the engine's configuration of the sync sc between src
// and dst, without its store, lock, auditor, logger and OnRound.
func syncConfig(sc *SyncConfig, p parsed, src, dst destination.Destination) sync.Config {
	return sync.Config{
		Name: sc.Name, Description: sc.Description, Source: src, Destination: dst,
		Mode: p.mode, InitialSync: p.initial, KeySchema: sc.KeySchema, Environment: sc.Environment,
		DisableDeletion: sc.DisableDeletion, MaxDeleteFraction: p.fraction, AutoSync: p.auto,
	}
}

// sameStateFile reports whether a and b are both a state file, the same.
func sameStateFile(a, b *StateConfig) bool {
	if a == nil || b == nil || a.File == "" || b.File == "" {
		return false
	}
	pa, erra := filepath.Abs(a.File)
	pb, errb := filepath.Abs(b.File)
	return erra == nil && errb == nil && pa == pb
}

func connConfig(cc *ConnConfig) connection.Config {
	c := connection.Config{
		Address: cc.Address, Namespace: cc.Namespace,
		TLS: connection.TLS{CACert: cc.CACert, CAPath: cc.CAPath, ClientCert: cc.ClientCert, ClientKey: cc.ClientKey,
			ServerName: cc.ServerName, InsecureSkipVerify: cc.TLSSkipVerify},
	}
	if cc.Timeout != "" {
		c.Timeout, _ = time.ParseDuration(cc.Timeout) // validated
	}
	if a := cc.AppRole; a != nil {
		c.AppRole = &connection.AppRole{RoleID: a.RoleID, SecretID: connection.Credential{File: a.SecretIDFile, Env: a.SecretIDEnv},
			Wrapped: a.Wrapped, MountPath: a.Mount}
	}
	if t := cc.Token; t != nil {
		c.Token = &connection.Token{Token: connection.Credential{File: t.File, Env: t.Env}}
	}
	return c
}

func (g *generation) openState(ctx context.Context, sc *StateConfig) error {
	switch {
	case sc == nil:
		g.store = state.NewMemory()
	case sc.File != "":
		var opts *state.FileOptions
		if tr := sc.Transit; tr != nil {
			sealer, err := vaultkv.NewTransit(g.conns[tr.Connection], &vaultkv.TransitOptions{Mount: tr.Mount, Key: tr.Key})
			if err != nil {
				return fmt.Errorf("state: transit: %w", err)
			}
			opts = &state.FileOptions{Sealer: sealer}
		}
		f, err := state.OpenFile(sc.File, opts)
		if err != nil {
			return err // "state: …", with the path
		}
		if opts != nil {
			// Unseal now: a daemon that cannot open its own state refuses
			// to start (or to reload), and the key it keeps in memory
			// outlives the connection of this generation.
			if _, err := f.FingerprintKey(ctx); err != nil {
				_ = f.Close()
				return err
			}
		}
		g.store, g.closeSt = f, func() { _ = f.Close() }
	default:
		st, err := vaultkv.NewStore(ctx, g.conns[sc.Connection], &vaultkv.StoreOptions{Mount: sc.Mount, Path: sc.Path})
		if err != nil {
			return fmt.Errorf("state: %w", err)
		}
		if pl := g.cfg.lock; pl != nil {
			g.store, g.lock = st, newTrackedLock(pl.lock)
			return nil
		}
		ttl, _ := time.ParseDuration(sc.LockTTL)
		lock, err := st.NewLock(&vaultkv.LockOptions{TTL: ttl})
		if err != nil {
			return fmt.Errorf("state: %w", err)
		}
		g.store, g.lock, g.ownLock = st, newTrackedLock(lock), lock
	}
	return nil
}

// stateLock returns the lock of the state store, nil when it has none.
func (g *generation) stateLock() state.Lock {
	if g.lock == nil {
		return nil // not a nil *trackedLock in an interface
	}
	return g.lock
}

func (g *generation) side(ctx context.Context, syncName string, s SideConfig, layout vaultkv.Layout, poll time.Duration) (destination.Destination, error) {
	if d := s.Dotenv; d != nil {
		return dotenv.Open(d.Path, &dotenv.Options{CreateIfMissing: true})
	}
	v := s.Vault
	return vaultkv.New(ctx, g.conns[v.Connection], &vaultkv.Options{
		Mount: v.Mount, Path: v.Path, Layout: layout, Field: v.Field,
		Owner: "syncd-" + syncName, AdoptUnowned: v.AdoptUnowned, PollInterval: poll,
	})
}

// start runs Watch for every sync with auto-sync.
func (g *generation) start(log *slog.Logger) {
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	for _, name := range g.names {
		m := g.syncs[name]
		if !m.auto {
			continue
		}
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			err := m.syncer.Watch(ctx)
			if err != nil && !errors.Is(err, context.Canceled) {
				log.Error("watch stopped", "sync", name, "error", err)
			}
		}()
	}
}

// stop ends the watches, letting rounds in flight finish, then closes the
// connections (revoking their tokens) and, unless next keeps it, the store.
func (g *generation) stop(next *generation) {
	if g.cancel != nil {
		g.cancel()
	}
	g.wg.Wait()
	g.close(next)
}

func (g *generation) close(next *generation) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if g.ownLock != nil {
		// Leave the members now, while the connection works, so that the
		// next generation's lock (or the other replicas) need not wait for
		// this one's lease to expire.
		_ = g.ownLock.Close()
	}
	for _, c := range g.conns {
		_ = c.Close(ctx)
	}
	if g.closeSt != nil && (next == nil || next.store != g.store) {
		g.closeSt()
	}
	if g.audit != nil && (next == nil || next.audit != g.audit) {
		_ = g.audit.Close()
	}
}
