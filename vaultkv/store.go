package vaultkv

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"path"
	gosync "sync"
	"time"

	"github.com/secretsync/secretsync/connection"
	"github.com/secretsync/secretsync/internal/fingerprint"
	"github.com/secretsync/secretsync/state"
)

// StoreFormat is the format version of the state that Store writes.
const StoreFormat = 1

// StoreOptions configure a Store.
type StoreOptions struct {
	// Mount is the KV v2 mount; required. KV v1 is refused (no
	// check-and-set).
	Mount string
	// Path is the prefix under which the store keeps its secrets; default
	// "secretsync". A sync's state is at <Path>/state/<sync name>, the
	// fingerprint key at <Path>/fingerprint-key, locks at
	// <Path>/lock/<sync name> and documents (state.Documents) at
	// <Path>/documents/<name>.
	Path string
}

// Store is a state.Store kept in Vault KV v2, so that the replicas of a
// daemon share baselines and status with no other infrastructure. Every
// write is check-and-set: the state's Revision is the secret's KV version.
// The state holds no secret value, only HMAC fingerprints; the HMAC key is
// itself kept in Vault.
//
// A Store is safe for concurrent use.
type Store struct {
	conn  *connection.Conn
	mount string
	path  string

	mu  gosync.Mutex
	key []byte
}

var _ state.Store = (*Store)(nil)

// NewStore checks that options.Mount is a KV v2 mount (sharing the check with
// the KVs and stores of the connection, as New does) and returns the store.
// Every save is check-and-set, which KV version 1 cannot do: a KV v1 mount
// (or a mount that is not KV) is refused with a *MountError matching
// ErrNotKVv2.
// A nil options means the zero StoreOptions.
func NewStore(ctx context.Context, conn *connection.Conn, options *StoreOptions) (*Store, error) {
	var opt StoreOptions
	if options != nil {
		opt = *options
	}
	opt, err := opt.normalize()
	if err != nil {
		return nil, err
	}
	m, err := checkMount(ctx, conn, opt.Mount)
	if err != nil {
		return nil, err
	}
	if m.typ != "kv" || m.version != 2 {
		return nil, &MountError{Mount: opt.Mount, Type: m.typ, Version: m.version,
			Need: "a KV version 2 mount (the state store's saves and locks are check-and-set, which KV version 1 cannot do)"}
	}
	return &Store{conn: conn, mount: opt.Mount, path: opt.Path}, nil
}

func (s *Store) data(p string) string { return path.Join(s.mount, "data", s.path, p) }

// storedState is what the state secret holds.
type storedState struct {
	Format int          `json:"format"`
	State  *state.State `json:"state"`
}

// read returns the data and version of mount/data/<path>/p; nil data when
// absent or deleted.
func (s *Store) read(ctx context.Context, p string) (map[string]any, int, error) {
	body, err := read(ctx, s.conn, s.data(p))
	if err != nil {
		return nil, 0, err
	}
	st := decodeData(body)
	return st.data, st.version, nil
}

// write writes data at p with check-and-set against cas; a mismatch is
// reported as errCAS.
func (s *Store) write(ctx context.Context, p string, data map[string]any, cas int) (int, error) {
	capability := capUpdate
	if cas == 0 {
		capability = capCreate // a new secret
	}
	resp, err := write(ctx, s.conn, s.data(p), capability, map[string]any{"data": data, "options": map[string]any{"cas": cas}})
	if err != nil {
		if isCASMismatch(err) {
			return 0, errCAS
		}
		return 0, err
	}
	return decodeWrite(resp, cas), nil
}

var errCAS = errors.New("check-and-set mismatch")

// checkSyncName checks a sync's name, which is part of the paths of its
// state and lock: the error wraps destination.ErrInvalidKey.
func checkSyncName(name string) error {
	if err := checkName(name); err != nil {
		return fmt.Errorf("vaultkv: sync name: %w", err)
	}
	return nil
}

// Load returns the named sync's state; errors.Is(err, state.ErrNotFound)
// before its first Save. A name that would leave the store's Path (see
// destination.CheckKey) is refused with an error wrapping
// destination.ErrInvalidKey.
func (s *Store) Load(ctx context.Context, name string) (*state.State, error) {
	if err := checkSyncName(name); err != nil {
		return nil, err
	}
	p := path.Join("state", name)
	data, version, err := s.read(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("vaultkv: load state of %q: %w", name, err)
	}
	if data == nil {
		return nil, fmt.Errorf("%w: %q", state.ErrNotFound, name)
	}
	raw, _ := data["state"].(string)
	var st storedState
	if err := json.Unmarshal([]byte(raw), &st); err != nil || st.State == nil {
		return nil, &state.CorruptError{Path: s.data(p), Reason: "state is not readable", Err: err}
	}
	if st.Format != StoreFormat {
		return nil, &state.CorruptError{Path: s.data(p), Reason: fmt.Sprintf("unknown state format %d (this version reads %d)", st.Format, StoreFormat), Err: state.ErrUnknownFormat}
	}
	st.State.Revision = int64(version)
	return st.State, nil
}

// Save writes the named sync's state if st.Revision is the stored one;
// otherwise it returns an error matching state.ErrConflict. Names are
// checked as by Load.
func (s *Store) Save(ctx context.Context, name string, st *state.State) error {
	if err := checkSyncName(name); err != nil {
		return err
	}
	b, err := json.Marshal(storedState{Format: StoreFormat, State: st})
	if err != nil {
		return fmt.Errorf("vaultkv: save state of %q: %w", name, err)
	}
	v, err := s.write(ctx, path.Join("state", name), map[string]any{"state": string(b)}, int(st.Revision))
	if errors.Is(err, errCAS) {
		return fmt.Errorf("%w: %q was saved by someone else since revision %d", state.ErrConflict, name, st.Revision)
	}
	if err != nil {
		return fmt.Errorf("vaultkv: save state of %q: %w", name, err)
	}
	st.Revision = int64(v)
	return nil
}

// FingerprintKey returns the store's HMAC key, creating it (check-and-set,
// so that replicas agree on one key) on first use.
func (s *Store) FingerprintKey(ctx context.Context) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.key != nil {
		return append([]byte(nil), s.key...), nil
	}
	for attempt := 0; attempt < 3; attempt++ {
		data, version, err := s.read(ctx, "fingerprint-key")
		if err != nil {
			return nil, fmt.Errorf("vaultkv: fingerprint key: %w", err)
		}
		if data != nil {
			enc, _ := data["key"].(string)
			k, err := base64.StdEncoding.DecodeString(enc)
			if err != nil || len(k) != fingerprint.KeySize {
				return nil, &state.CorruptError{Path: s.data("fingerprint-key"), Reason: "fingerprint key is not readable", Err: state.ErrKeySize}
			}
			s.key = k
			return append([]byte(nil), k...), nil
		}
		k, err := fingerprint.NewKey()
		if err != nil {
			return nil, err
		}
		_, err = s.write(ctx, "fingerprint-key", map[string]any{"key": base64.StdEncoding.EncodeToString(k)}, version)
		if errors.Is(err, errCAS) {
			continue // another replica made it first: read theirs
		}
		if err != nil {
			return nil, fmt.Errorf("vaultkv: fingerprint key: %w", err)
		}
		s.key = k
		return append([]byte(nil), k...), nil
	}
	return nil, errors.New("vaultkv: fingerprint key: kept changing while being created")
}

// LockOptions configure a Lock.
type LockOptions struct {
	// TTL is the lease: a holder that stops renewing loses the lock after
	// it. Default 15 s; at least 1 s.
	TTL time.Duration
	// Holder names this holder in the lease, for operators; default a
	// random id.
	Holder string
}

// Lock is a state.Lock kept in the Store's mount: a lease per sync at
// <Path>/lock/<sync name>, taken and renewed with check-and-set writes.
//
// The holder renews the lease every TTL/3, and gives it up (its held
// context ends, with a cause wrapping state.ErrLockLost) when it has not
// renewed it for 3/4 of the TTL or finds it taken over. Another
// replica takes a lease over when it has seen the lease's version unchanged
// for a whole TTL by its own clock, so no two clocks are compared. A
// replica that dies thus loses the lock about one TTL after its last
// renewal.
//
// # Spreading the syncs
//
// A Lock is also a state.Spreader: the replicas that share a Store divide
// the syncs among themselves. While a Lock has an Acquire in progress or
// holds a lock it took with Acquire, it is a member: it keeps a lease at
// <Path>/members/<holder>, renewed every TTL/3, and reads the others'
// leases as often. A member is live while its lease changes within its
// TTL (by the reader's clock); one that leaves deletes its lease (see
// Close), and a lease unchanged for 5 TTLs is deleted by the members that
// see it. For each sync, rendezvous hashing of the sync's name over the
// live members names one preferred holder, the same for every member that
// knows the same members; a member joining or leaving moves only the syncs
// it gains or loses.
//
// In Acquire, the preferred holder takes the lock as TryAcquire does
// (free, released, or unchanged for a TTL), polling every TTL/4. Any
// other waits until the lock's lease has not changed for three TTLs
// (released and not taken, or expired for two TTLs), polling every TTL, so
// that a sync still runs when its preferred holder does not take it; it
// waits that long so that, when a member dies, the member now preferred
// (which notices the death about a TTL after it, and then takes the
// expired lock) comes first. When
// the members change, a waiting Acquire that becomes preferred polls at
// once, and a holder that took a lock as the preferred one, and is no
// longer, closes the lock's HandOff channel: sync.Syncer.Watch releases
// the lock after the round in flight and waits again, so that the
// preferred holder takes it. TryAcquire, for one-off rounds, neither joins
// the members nor looks at preference.
//
// Holders should have distinct names (LockOptions.Holder): two Locks with
// one name share a membership lease and prefer the same syncs (which
// stays safe, only less spread).
type Lock struct {
	store  *Store
	ttl    time.Duration
	holder string
	member string

	mu       gosync.Mutex
	seen     map[string]observation
	acquired map[string]*acquisition // locks taken with Acquire and held

	m membership
}

// acquisition is a lock taken with Acquire.
type acquisition struct {
	handOff   chan struct{}
	preferred bool   // this holder was preferred when it took the lock
	gen       uint64 // generation of the members then
}

var _ state.Spreader = (*Lock)(nil)

type observation struct {
	version int
	since   time.Time
}

// NewLock returns a Lock kept with the store.
// A nil options means the zero LockOptions.
func (s *Store) NewLock(options *LockOptions) (*Lock, error) {
	var opt LockOptions
	if options != nil {
		opt = *options
	}
	if opt.TTL == 0 {
		opt.TTL = 15 * time.Second
	}
	if opt.TTL < time.Second {
		return nil, fmt.Errorf("vaultkv: %w: lock TTL %v is under 1s", ErrInvalidOptions, opt.TTL)
	}
	if opt.Holder == "" {
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		opt.Holder = hex.EncodeToString(b)
	}
	return &Lock{store: s, ttl: opt.TTL, holder: opt.Holder, member: memberID(opt.Holder),
		seen: map[string]observation{}, acquired: map[string]*acquisition{}}, nil
}

// Acquire waits until the named lock is taken, as a member that spreads
// the syncs with the other members (see Lock): as the preferred holder it
// polls every TTL/4 and takes the lock as TryAcquire does, as another it
// polls every TTL and takes the lock only when its lease has not changed
// for three TTLs. Names are checked as by Store.Load.
func (l *Lock) Acquire(ctx context.Context, name string) (context.Context, func(), error) {
	if err := checkSyncName(name); err != nil {
		return nil, nil, err
	}
	l.join(ctx)
	for {
		pref, gen, changed := l.preferred(name)
		wait, minFree := l.ttl/4, time.Duration(0)
		if !pref {
			// Standing by: a lock that is not ours to take costs one
			// read a TTL (with 10% of jitter), not four.
			wait = l.ttl + time.Duration((mrand.Float64()-0.5)*0.2*float64(l.ttl))
			minFree = standbyTTLs * l.ttl
		}
		held, release, err := l.tryAcquire(ctx, name, minFree, &acquisition{preferred: pref, gen: gen})
		if err == nil {
			return held, release, nil
		}
		if !errors.Is(err, state.ErrHeld) {
			l.unjoin()
			return nil, nil, err
		}
		t := time.NewTimer(wait)
	waiting:
		for {
			select {
			case <-ctx.Done():
				t.Stop()
				l.unjoin()
				return nil, nil, context.Cause(ctx)
			case <-t.C:
				break waiting
			case <-changed:
				var now bool
				now, _, changed = l.preferred(name)
				if now != pref {
					t.Stop()
					break waiting
				}
			}
		}
	}
}

// standbyTTLs is how many TTLs a lock's lease must stay unchanged before a
// member that is not preferred for it takes it. Less than 3 lets it race
// the preferred member after a death: the preferred one sees the lock
// unchanged for a TTL from its own first sight of the last renewal (up to
// a TTL after it) once it has noticed the death (about a TTL after it).
const standbyTTLs = 3

// HandOff returns a channel that is closed when the named lock, taken with
// Acquire as the preferred holder (or taken otherwise, after the members
// changed), should go to another member now preferred for it (see Lock);
// nil when the lock is not held through Acquire.
func (l *Lock) HandOff(name string) <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if a := l.acquired[name]; a != nil {
		return a.handOff
	}
	return nil
}

// TryAcquire takes the named lock if it is free, released, or expired.
// Names are checked as by Store.Load.
func (l *Lock) TryAcquire(ctx context.Context, name string) (context.Context, func(), error) {
	if err := checkSyncName(name); err != nil {
		return nil, nil, err
	}
	return l.tryAcquire(ctx, name, 0, nil)
}

// tryAcquire takes the named lock if it is free, released, or expired,
// and its lease has not changed for minFree. With acq (from Acquire), the
// lock is a member's: it is recorded for HandOff, and its release ends the
// membership use that Acquire began.
func (l *Lock) tryAcquire(ctx context.Context, name string, minFree time.Duration, acq *acquisition) (context.Context, func(), error) {
	p := path.Join("lock", name)
	data, version, err := l.store.read(ctx, p)
	if err != nil {
		return nil, nil, fmt.Errorf("vaultkv: lock %q: %w", name, err)
	}
	l.mu.Lock()
	o, ok := l.seen[name]
	if !ok || o.version != version {
		o = observation{version: version, since: time.Now()}
		l.seen[name] = o
	}
	l.mu.Unlock()
	holder, _ := data["holder"].(string)
	if holder != "" {
		ttl := time.Duration(intOf(data["ttl_ms"])) * time.Millisecond
		if ttl <= 0 {
			ttl = l.ttl
		}
		if time.Since(o.since) < ttl {
			return nil, nil, fmt.Errorf("%w: %q by %s", state.ErrHeld, name, holder)
		}
	}
	if time.Since(o.since) < minFree {
		return nil, nil, fmt.Errorf("%w: %q is left to its preferred holder", state.ErrHeld, name)
	}
	lease := func() map[string]any {
		return map[string]any{"holder": l.holder, "ttl_ms": l.ttl.Milliseconds(), "renewed": time.Now().UTC().Format(time.RFC3339Nano)}
	}
	start := time.Now()
	v, err := l.store.write(ctx, p, lease(), version)
	if errors.Is(err, errCAS) {
		return nil, nil, fmt.Errorf("%w: %q was taken meanwhile", state.ErrHeld, name)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("vaultkv: lock %q: %w", name, err)
	}

	held, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	var (
		vmu     gosync.Mutex
		current = v
		stop    = make(chan struct{})
		done    = make(chan struct{})
	)
	var changed <-chan struct{} // the members, for a lock taken with Acquire
	if acq != nil {
		acq.handOff = make(chan struct{})
		_, _, changed = l.preferred(name)
		l.mu.Lock()
		l.acquired[name] = acq
		l.mu.Unlock()
	}
	handedOff := false
	checkHandOff := func() {
		var pref bool
		var gen uint64
		pref, gen, changed = l.preferred(name)
		if !handedOff && !pref && (acq.preferred || gen != acq.gen) {
			handedOff = true
			close(acq.handOff)
		}
	}
	go func() {
		defer close(done)
		lastOK := start
		tick := time.NewTicker(l.ttl / 3)
		defer tick.Stop()
		for {
			deadline := lastOK.Add(l.ttl * 3 / 4)
			giveUp := time.NewTimer(time.Until(deadline))
			select {
			case <-stop:
				giveUp.Stop()
				return
			case <-changed:
				giveUp.Stop()
				checkHandOff()
				continue
			case <-giveUp.C:
				cancel(fmt.Errorf("vaultkv: lock %q: lease not renewed for %v: %w", name, time.Since(lastOK).Round(time.Millisecond), state.ErrLockLost))
				return
			case <-tick.C:
				giveUp.Stop()
				vmu.Lock()
				cas := current
				vmu.Unlock()
				began := time.Now()
				rctx, rcancel := context.WithDeadline(held, deadline)
				nv, err := l.store.write(rctx, p, lease(), cas)
				rcancel()
				switch {
				case err == nil:
					vmu.Lock()
					current = nv
					vmu.Unlock()
					lastOK = began
					if acq != nil {
						checkHandOff()
					}
				case errors.Is(err, errCAS):
					cancel(fmt.Errorf("vaultkv: lock %q: taken over by another holder: %w", name, state.ErrLockLost))
					return
				}
			}
		}
	}()
	var once gosync.Once
	release := func() {
		once.Do(func() {
			close(stop)
			<-done
			if acq != nil {
				l.mu.Lock()
				if l.acquired[name] == acq {
					delete(l.acquired, name)
				}
				l.mu.Unlock()
				defer l.unjoin()
			}
			lost := held.Err() != nil
			cancel(errors.New("vaultkv: lock released"))
			if lost {
				return
			}
			vmu.Lock()
			cas := current
			vmu.Unlock()
			rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer rcancel()
			_, _ = l.store.write(rctx, p, map[string]any{"holder": "", "released": time.Now().UTC().Format(time.RFC3339Nano)}, cas)
		})
	}
	return held, release, nil
}
