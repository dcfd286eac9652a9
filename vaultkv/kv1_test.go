package vaultkv_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"path"
	"sort"
	"strings"
	gosync "sync"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/secretsync/secretsync/conflict"
	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/destinationtest"
	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/sync"
	"github.com/secretsync/secretsync/vaultkv"
	"github.com/secretsync/secretsync/vaultkv/vaulttest"
)

// v1Mount makes a fresh KV version 1 mount.
func v1Mount(t testing.TB, srv *vaulttest.Server) string {
	t.Helper()
	return srv.NewMount(t, vaulttest.MountOptions{Version: 1})
}

// v1Backdoor changes a KV v1 mount behind the store's back, with the root
// token, as another writer would: `vault kv put` replaces the whole
// secret, so an out-of-band write of a key drops the ownership marker.
type v1Backdoor struct {
	c     *api.Client
	mount string
	path  string
	field string // "" for the SecretPath layout
}

func newV1Backdoor(t testing.TB, srv *vaulttest.Server, mount, p, field string) *v1Backdoor {
	return &v1Backdoor{c: srv.Client(t), mount: mount, path: p, field: field}
}

func (b *v1Backdoor) at(p string) string { return path.Join(b.mount, p) }

func (b *v1Backdoor) read(ctx context.Context, p string) (map[string]any, error) {
	s, err := b.c.Logical().ReadWithContext(ctx, b.at(p))
	if err != nil || s == nil {
		return nil, err
	}
	return s.Data, nil
}

func (b *v1Backdoor) write(ctx context.Context, p string, data map[string]any) error {
	if len(data) == 0 {
		_, err := b.c.Logical().DeleteWithContext(ctx, b.at(p))
		return err
	}
	_, err := b.c.Logical().WriteWithContext(ctx, b.at(p), data)
	return err
}

func (b *v1Backdoor) setKey(ctx context.Context, k, v string) error {
	return b.write(ctx, path.Join(b.path, k), map[string]any{b.field: v})
}

func (b *v1Backdoor) deleteKey(ctx context.Context, k string) error {
	_, err := b.c.Logical().DeleteWithContext(ctx, b.at(path.Join(b.path, k)))
	return err
}

func (b *v1Backdoor) getKey(ctx context.Context, k string) (string, bool, error) {
	d, err := b.read(ctx, path.Join(b.path, k))
	if err != nil || d == nil {
		return "", false, err
	}
	v, ok := d[b.field].(string)
	return v, ok, nil
}

func (b *v1Backdoor) setField(ctx context.Context, k, v string) error {
	d, err := b.read(ctx, b.path)
	if err != nil {
		return err
	}
	if d == nil {
		d = map[string]any{}
	}
	d[k] = v
	return b.write(ctx, b.path, d)
}

func (b *v1Backdoor) deleteField(ctx context.Context, k string) error {
	d, err := b.read(ctx, b.path)
	if err != nil {
		return err
	}
	delete(d, k)
	return b.write(ctx, b.path, d)
}

// snapshot returns the values at the side, read with the root token: the
// fields of the secret (SecretPath), or each secret's value field.
func (b *v1Backdoor) snapshot(t testing.TB) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	if b.field == "" {
		d, err := b.read(ctx, b.path)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range d {
			out[k] = fmt.Sprint(v)
		}
		return out
	}
	for _, k := range b.secrets(t) {
		v, _, err := b.getKey(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		out[k] = v
	}
	return out
}

// secrets lists every secret under the side's path, recursively.
func (b *v1Backdoor) secrets(t testing.TB) []string {
	t.Helper()
	var out []string
	var walk func(dir string)
	walk = func(dir string) {
		l, err := b.c.Logical().ListWithContext(context.Background(), b.at(path.Join(b.path, dir)))
		if err != nil {
			t.Fatal(err)
		}
		if l == nil {
			return
		}
		for _, k := range l.Data["keys"].([]any) {
			name := dir + k.(string)
			if strings.HasSuffix(name, "/") {
				walk(name)
				continue
			}
			out = append(out, name)
		}
	}
	walk("")
	sort.Strings(out)
	return out
}

// v1Fixture returns a conformance fixture on a fresh KV v1 mount, the KV
// made over conn (the root token's when nil).
func v1Fixture(t *testing.T, srv *vaulttest.Server, mount string, layout vaultkv.Layout, kv *vaultkv.KV) destinationtest.Fixture {
	if layout == vaultkv.SecretPath {
		b := newV1Backdoor(t, srv, mount, "apps/web", "")
		return destinationtest.Fixture{Destination: kv, Set: b.setField, Delete: b.deleteField}
	}
	b := newV1Backdoor(t, srv, mount, "team", "value")
	return destinationtest.Fixture{Destination: kv, Set: b.setKey, Delete: b.deleteKey, SetUnowned: b.setKey, Get: b.getKey}
}

func v1Options(mount string, layout vaultkv.Layout) vaultkv.Options {
	if layout == vaultkv.SecretPath {
		return vaultkv.Options{Mount: mount, Path: "apps/web", Layout: layout}
	}
	return vaultkv.Options{Mount: mount, Path: "team", Layout: layout, Owner: "conformance"}
}

// KV v1 passes the conformance suite in both layouts as a store without
// check-and-set.
func TestKVv1Conformance(t *testing.T) {
	srv := vaulttest.Get(t)
	for _, layout := range layouts {
		t.Run(layout.String(), func(t *testing.T) {
			destinationtest.Run(t, destinationtest.Harness{
				Capabilities: destination.Capabilities{NoCheckAndSet: true, Atomic: layout == vaultkv.SecretPath},
				New: func(t *testing.T) destinationtest.Fixture {
					mount := v1Mount(t, srv)
					return v1Fixture(t, srv, mount, layout, newKV(t, srv, v1Options(mount, layout)))
				},
			})
		})
	}
}

// New detects the version and reads the accessor; the capabilities follow.
func TestKVv1DetectedWithAccessor(t *testing.T) {
	srv := vaulttest.Get(t)
	ctx := context.Background()
	plain := ""
	for _, version := range []int{1, 2} {
		mount := srv.NewMount(t, vaulttest.MountOptions{Version: version})
		mounts, err := srv.Client(t).Sys().ListMountsWithContext(ctx)
		if err != nil {
			t.Fatal(err)
		}
		accessor := mounts[mount+"/"].Accessor
		plain = mount + "-plain"
		for _, layout := range layouts {
			kv := newKV(t, srv, vaultkv.Options{Mount: mount, Path: "app", Layout: layout})
			if kv.KVVersion() != version || kv.MountAccessor() != accessor || accessor == "" {
				t.Errorf("v%d %s: KVVersion %d, MountAccessor %q; want %d, %q", version, layout, kv.KVVersion(), kv.MountAccessor(), version, accessor)
			}
			want := destination.Capabilities{Atomic: layout == vaultkv.SecretPath, NoCheckAndSet: version == 1}
			if got := destination.CapabilitiesOf(kv); got != want {
				t.Errorf("v%d %s: capabilities %+v, want %+v", version, layout, got, want)
			}
			if !strings.Contains(kv.String(), fmt.Sprintf("kv-v%d", version)) {
				t.Errorf("String() = %q", kv.String())
			}
		}
	}
	// A KV v1 mount made without a version option is KV v1 too.
	c := srv.Client(t)
	if err := c.Sys().MountWithContext(ctx, plain, &api.MountInput{Type: "kv"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Sys().UnmountWithContext(context.Background(), plain) })
	if kv := newKV(t, srv, vaultkv.Options{Mount: plain, Path: "app"}); kv.KVVersion() != 1 {
		t.Fatalf("a kv mount without options: KVVersion %d, want 1", kv.KVVersion())
	}
}

// The state store needs check-and-set: NewStore refuses KV v1 with a
// *MountError; New and NewStore refuse a mount that is not KV.
func TestKVv1RefusedByStore(t *testing.T) {
	srv := vaulttest.Get(t)
	ctx := context.Background()
	mount := v1Mount(t, srv)
	_, err := vaultkv.NewStore(ctx, srv.Conn(t), &vaultkv.StoreOptions{Mount: mount})
	var me *vaultkv.MountError
	if !errors.As(err, &me) || me.Version != 1 || me.Type != "kv" || me.Mount != mount || !errors.Is(err, vaultkv.ErrNotKVv2) || errors.Is(err, vaultkv.ErrNotKV) {
		t.Fatalf("NewStore on KV v1 = %v, want a *MountError for KV version 1 matching ErrNotKVv2 only", err)
	}
	if !strings.Contains(err.Error(), "KV version 1") || !strings.Contains(err.Error(), "check-and-set") {
		t.Fatalf("the error does not say why: %v", err)
	}
	transit := srv.NewTransitKey(t).Mount
	if _, err := vaultkv.New(ctx, srv.Conn(t), &vaultkv.Options{Mount: transit, Path: "x"}); !errors.As(err, &me) || me.Type != "transit" || !errors.Is(err, vaultkv.ErrNotKV) {
		t.Fatalf("New on a transit mount = %v, want a *MountError matching ErrNotKV", err)
	}
	if _, err := vaultkv.NewStore(ctx, srv.Conn(t), &vaultkv.StoreOptions{Mount: transit}); !errors.Is(err, vaultkv.ErrNotKV) || !errors.Is(err, vaultkv.ErrNotKVv2) {
		t.Fatalf("NewStore on a transit mount = %v, want ErrNotKV and ErrNotKVv2", err)
	}
	// Field and OwnerField are both fields of a KV v1 secret: they differ.
	if _, err := vaultkv.New(ctx, srv.Conn(t), &vaultkv.Options{Mount: mount, Layout: vaultkv.SecretKey, Field: "owner", OwnerField: "owner"}); !errors.Is(err, vaultkv.ErrInvalidOptions) {
		t.Fatalf("New with Field = OwnerField = %v, want ErrInvalidOptions", err)
	}
}

// isV1Write reports a request that changes a KV v1 mount.
func isV1Write(r vaulttest.Request, mount string) bool {
	return strings.HasPrefix(r.Path, mount+"/") && r.Method != http.MethodGet && r.Method != "LIST"
}

// counts tallies the requests to mount since n: all of them, and the writes.
func counts(p *vaulttest.RequestProxy, n int, mount string) (all, writes int) {
	for _, r := range p.Log()[n:] {
		if strings.HasPrefix(r.Path, mount+"/") || r.Path == mount {
			all++
			if isV1Write(r, mount) {
				writes++
			}
		}
	}
	return all, writes
}

// A push from a memory source into KV v1 converges in both layouts, idle
// rounds send no write, and the requests per key are as documented.
func TestKVv1Push(t *testing.T) {
	srv := vaulttest.Get(t)
	const n = 10
	for _, layout := range layouts {
		t.Run(layout.String(), func(t *testing.T) {
			mount := v1Mount(t, srv)
			p := srv.RequestProxy(t)
			field := "value"
			if layout == vaultkv.SecretPath {
				field = ""
			}
			b := newV1Backdoor(t, srv, mount, "app", field)
			// A neighbour the sync does not manage: a field of the secret,
			// or a secret of its own.
			set := b.setField
			if layout == vaultkv.SecretKey {
				set = b.setKey
			}
			if err := set(context.Background(), "OTHER", "unmanaged"); err != nil {
				t.Fatal(err)
			}
			kv, err := vaultkv.New(context.Background(), connThrough(t, p, srv.Token, 0, 0), &vaultkv.Options{Mount: mount, Path: "app", Layout: layout, Owner: "e2e"})
			if err != nil {
				t.Fatal(err)
			}
			keys := map[string]string{}
			for i := range n {
				keys[fmt.Sprintf("K%02d", i)] = fmt.Sprint("v1-", i)
			}
			src := memory.New(keys)
			s := newSyncer(t, sync.Config{Source: src, Destination: kv, KeySchema: "APP_{{secretKey}}"})
			wantVault := func() map[string]string {
				w := map[string]string{"OTHER": "unmanaged"}
				for k, v := range src.Snapshot() {
					w["APP_"+k] = v
				}
				return w
			}
			round := func(what string, check func(*sync.Report) bool) (all, writes int) {
				t.Helper()
				before := p.Total()
				rep := run(t, s)
				if !check(rep) {
					t.Fatalf("%s: %v", what, rep)
				}
				want(t, "vault after "+what, b.snapshot(t), wantVault())
				all, writes = counts(p, before, mount)
				t.Logf("%s: %d requests (%.1f per key), %d writes", what, all, float64(all)/n, writes)
				return all, writes
			}
			all, writes := round("create", func(r *sync.Report) bool { return r.Totals.Created == n })
			if layout == vaultkv.SecretKey {
				if all != 2+2*n || writes != n { // LIST and a read of OTHER; per key a read and a write
					t.Errorf("create round: %d requests, %d writes; want %d, %d", all, writes, 2+2*n, n)
				}
				// The value and the marker are fields of each secret; the
				// neighbour has none.
				d, _ := b.read(context.Background(), "app/APP_K00")
				if d["value"] != "v1-0" || d[vaultkv.OwnerKey] != "e2e" || len(d) != 2 {
					t.Errorf("APP_K00 holds %v", d)
				}
				if d, _ := b.read(context.Background(), "app/OTHER"); len(d) != 1 {
					t.Errorf("OTHER holds %v", d)
				}
			} else if all != 3 || writes != 1 { // List; the read before the write; the write
				t.Errorf("create round: %d requests, %d writes; want 3, 1", all, writes)
			}
			for k := range keys {
				src.Set(k, "v2-"+k)
			}
			all, writes = round("update", func(r *sync.Report) bool { return r.Totals.Updated == n })
			if layout == vaultkv.SecretKey && (all != 1+(n+1)+2*n || writes != n) {
				t.Errorf("update round: %d requests, %d writes; want %d, %d", all, writes, 1+(n+1)+2*n, n)
			}
			for range 3 {
				all, writes = round("idle", func(r *sync.Report) bool { return r.Totals.Changed() == 0 && r.Totals.Conflicts == 0 })
				if writes != 0 {
					t.Fatalf("an idle round sent %d writes", writes)
				}
			}
			if layout == vaultkv.SecretKey && all != 1+(n+1) {
				t.Errorf("idle round: %d requests, want %d", all, 1+(n+1))
			}
			const deletes = 3
			for i := range deletes {
				src.Delete(fmt.Sprintf("K%02d", i))
			}
			round("delete", func(r *sync.Report) bool { return r.Totals.Deleted == deletes })
			if layout == vaultkv.SecretKey && len(b.secrets(t)) != 1+n-deletes {
				t.Fatalf("after the deletes the mount holds %v", b.secrets(t))
			}
		})
	}
}

// A value changed out of band between List and Apply is caught by the
// read just before the write: ErrConflict, and the other writer's value
// stays, for a put and a delete, in both layouts; a sync round reports
// the key for retry and leaves the value alone.
func TestKVv1ChangeBeforeWriteIsConflict(t *testing.T) {
	srv := vaulttest.Get(t)
	ctx := context.Background()
	for _, layout := range layouts {
		t.Run(layout.String(), func(t *testing.T) {
			mount := v1Mount(t, srv)
			p := srv.RequestProxy(t)
			opt := v1Options(mount, layout)
			kv, err := vaultkv.New(ctx, connThrough(t, p, srv.Token, 0, 0), &opt)
			if err != nil {
				t.Fatal(err)
			}
			f := v1Fixture(t, srv, mount, layout, kv)
			target := path.Join(mount, opt.Path, "K") // the secret read before the write
			if layout == vaultkv.SecretPath {
				target = path.Join(mount, opt.Path)
			}
			// Once armed, the read of target after skip others is preceded
			// by another writer's write of value.
			var trap struct {
				gosync.Mutex
				value string
				skip  int
				armed bool
			}
			arm := func(value string, skip int) {
				trap.Lock()
				defer trap.Unlock()
				trap.value, trap.skip, trap.armed = value, skip, true
			}
			sprung := func() bool {
				trap.Lock()
				defer trap.Unlock()
				return !trap.armed
			}
			p.Intercept(func(r *http.Request) vaulttest.Verdict {
				if r.Method != http.MethodGet || strings.TrimPrefix(r.URL.Path, "/v1/") != target {
					return vaulttest.Forward
				}
				trap.Lock()
				defer trap.Unlock()
				if !trap.armed {
					return vaulttest.Forward
				}
				if trap.skip > 0 {
					trap.skip--
					return vaulttest.Forward
				}
				trap.armed = false
				if err := f.Set(context.Background(), "K", trap.value); err != nil {
					t.Error(err)
				}
				return vaulttest.Forward
			})
			res, err := kv.Apply(ctx, []destination.Change{{Key: "K", Value: "ours"}})
			if err != nil || res[0] != nil {
				t.Fatal(res, err)
			}
			listed, err := kv.List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []destination.Change{
				{Key: "K", Value: "ours-2", Expect: listed["K"].Version},
				{Key: "K", Delete: true, Expect: listed["K"].Version},
			} {
				theirs := "theirs-" + c.String()
				arm(theirs, 0)
				res, err := kv.Apply(ctx, []destination.Change{c})
				if err != nil || !errors.Is(res[0], destination.ErrConflict) {
					t.Fatalf("%v after an out-of-band write = %v, %v; want ErrConflict", c, res, err)
				}
				if !sprung() {
					t.Fatal("the read before the write was not seen")
				}
				if got := mustList(t, kv)["K"].Value; got != theirs {
					t.Fatalf("%v: K = %q, want the other writer's value", c, got)
				}
				// Put our value back for the next change.
				if err := f.Set(ctx, "K", "ours"); err != nil {
					t.Fatal(err)
				}
			}

			// The same in a sync round: the write is refused, the round
			// reads K again and flags it (changed on both sides since the
			// baseline), and the value stays theirs.
			src := memory.New(map[string]string{"K": "from-source"})
			s := newSyncer(t, sync.Config{Source: src, Destination: kv})
			// K exists out of band: the secret-key layout must adopt it.
			if layout == vaultkv.SecretKey {
				opt.AdoptUnowned = true
				kv, err = vaultkv.New(ctx, connThrough(t, p, srv.Token, 0, 0), &opt)
				if err != nil {
					t.Fatal(err)
				}
				s = newSyncer(t, sync.Config{Source: src, Destination: kv})
			}
			if err := f.Set(ctx, "K", "from-source"); err != nil { // agreed: a baseline
				t.Fatal(err)
			}
			run(t, s, sync.Force())
			src.Set("K", "source-2")
			theirs := "theirs-during-round"
			arm(theirs, 1) // the round's List reads it first
			rep := run(t, s)
			if !sprung() {
				t.Fatal("the read before the write was not seen")
			}
			if r, _ := rep.Result("K"); r.Action != sync.Conflict || r.Class != conflict.BothChanged {
				t.Fatalf("K in the round: %+v, want a conflict, both changed", r)
			}
			if got := mustList(t, kv)["K"].Value; got != theirs {
				t.Fatalf("K = %q after the round, want the other writer's value", got)
			}
		})
	}
}

func mustList(t testing.TB, kv *vaultkv.KV) map[string]destination.Secret {
	t.Helper()
	m, err := kv.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// The window that the package documentation admits: a write by another
// client that lands after the read before the write, and before the
// write, is overwritten without notice (KV v1 has no check-and-set and no
// history). If this test fails, KV v1 narrowed the window further: update
// the documentation ("KV version 1") and this test.
func TestKVv1WindowIsAsDocumented(t *testing.T) {
	srv := vaulttest.Get(t)
	ctx := context.Background()
	mount := v1Mount(t, srv)
	p := srv.RequestProxy(t)
	opt := v1Options(mount, vaultkv.SecretKey)
	kv, err := vaultkv.New(ctx, connThrough(t, p, srv.Token, 0, 0), &opt)
	if err != nil {
		t.Fatal(err)
	}
	b := newV1Backdoor(t, srv, mount, opt.Path, "value")
	if res, err := kv.Apply(ctx, []destination.Change{{Key: "K", Value: "ours"}}); err != nil || res[0] != nil {
		t.Fatal(res, err)
	}
	version := mustList(t, kv)["K"].Version
	target := path.Join(mount, opt.Path, "K")
	// The read before the write is the first read of target from now on
	// (Intercept sees requests as they arrive; OnAnswered may still run
	// for the List's read, answered already).
	var readBefore, sprung atomic.Pointer[http.Request]
	p.Intercept(func(r *http.Request) vaulttest.Verdict {
		if r.Method == http.MethodGet && strings.TrimPrefix(r.URL.Path, "/v1/") == target {
			readBefore.CompareAndSwap(nil, r)
		}
		return vaulttest.Forward
	})
	p.OnAnswered(func(r *http.Request) {
		if readBefore.Load() == r && sprung.CompareAndSwap(nil, r) {
			if err := b.setKey(context.Background(), "K", "theirs"); err != nil {
				t.Error(err)
			}
		}
	})
	res, err := kv.Apply(ctx, []destination.Change{{Key: "K", Value: "ours-2", Expect: version}})
	if err != nil || res[0] != nil {
		t.Fatalf("Apply = %v, %v", res, err)
	}
	if v, _, _ := b.getKey(ctx, "K"); v != "ours-2" || sprung.Load() == nil {
		t.Fatalf("K = %q: the write in the window was not overwritten as documented", v)
	}
}

// An unowned KV v1 secret is neither overwritten nor deleted; with
// AdoptUnowned it is taken, and gets the marker beside its other fields.
func TestKVv1Ownership(t *testing.T) {
	srv := vaulttest.Get(t)
	ctx := context.Background()
	mount := v1Mount(t, srv)
	b := newV1Backdoor(t, srv, mount, "app", "value")
	if err := b.write(ctx, "app/APP_A", map[string]any{"value": "someone else's", "team": "payments"}); err != nil {
		t.Fatal(err)
	}
	// Another sync's secret carries another owner in the marker field.
	if err := b.write(ctx, "app/APP_B", map[string]any{"value": "other sync's", vaultkv.OwnerKey: "other-sync"}); err != nil {
		t.Fatal(err)
	}
	kv := newKV(t, srv, vaultkv.Options{Mount: mount, Path: "app", Layout: vaultkv.SecretKey, Owner: "e2e"})
	host := memory.New(map[string]string{"A": "ours", "B": "ours"})
	s := newSyncer(t, sync.Config{Source: host, Destination: kv, KeySchema: "APP_{{secretKey}}", InitialSync: sync.OverwriteDestination})
	_, err := s.Run(ctx, sync.Force())
	if !errors.Is(err, destination.ErrNotOwned) {
		t.Fatalf("Run = %v, want ErrNotOwned", err)
	}
	want(t, "vault", b.snapshot(t), map[string]string{"APP_A": "someone else's", "APP_B": "other sync's"})
	l := mustList(t, kv)
	for _, c := range []destination.Change{{Key: "APP_B", Delete: true, Expect: l["APP_B"].Version}} {
		if res, err := kv.Apply(ctx, []destination.Change{c}); err != nil || !errors.Is(res[0], destination.ErrNotOwned) {
			t.Fatalf("%v = %v, %v; want ErrNotOwned", c, res, err)
		}
	}

	adopt := newKV(t, srv, vaultkv.Options{Mount: mount, Path: "app", Layout: vaultkv.SecretKey, Owner: "e2e", AdoptUnowned: true, OwnerField: "managed_by"})
	s = newSyncer(t, sync.Config{Name: "adopt", Source: host, Destination: adopt, KeySchema: "APP_{{secretKey}}", InitialSync: sync.OverwriteDestination})
	run(t, s, sync.Force())
	d, _ := b.read(ctx, "app/APP_A")
	if !maps.Equal(d, map[string]any{"value": "ours", "team": "payments", "managed_by": "e2e"}) {
		t.Fatalf("adopted APP_A holds %v", d)
	}
	if rep := run(t, s); rep.Totals.Changed() != 0 {
		t.Fatalf("round after adoption: %v", rep)
	}
}

// Keys never leave Mount/Path on KV v1 either; KV v2's reserved segments
// (data/, metadata/) are ordinary names there; fields Vault reads as a
// lease (ttl, lease) round-trip as values.
func TestKVv1HostileKeys(t *testing.T) {
	srv := vaulttest.Get(t)
	ctx := context.Background()
	mount := v1Mount(t, srv)
	kv := newKV(t, srv, vaultkv.Options{Mount: mount, Path: "team", Layout: vaultkv.SecretKey})
	changes := []destination.Change{
		{Key: "../../other-team/DB_PASSWORD", Value: "stolen"},
		{Key: "../other-team/API_KEY", Value: "stolen"},
		{Key: "ok/../../x", Value: "stolen"},
		{Key: "/x", Value: "stolen"},
		{Key: "a\nb", Value: "stolen"},
		{Key: "data/K", Value: "d"},
		{Key: "metadata/K", Value: "m"},
		{Key: "OK", Value: "fine"},
	}
	errs, err := kv.Apply(ctx, changes)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range errs[:5] {
		if !errors.Is(e, destination.ErrInvalidKey) {
			t.Errorf("%q: %v, want ErrInvalidKey", changes[i].Key, e)
		}
	}
	for _, e := range errs[5:] {
		if e != nil {
			t.Fatal(e)
		}
	}
	b := newV1Backdoor(t, srv, mount, "", "value")
	if got := strings.Join(b.secrets(t), ","); got != "team/OK,team/data/K,team/metadata/K" {
		t.Fatalf("the mount holds %s", got)
	}

	kp := newKV(t, srv, vaultkv.Options{Mount: mount, Path: "app"})
	fields := []destination.Change{{Key: "ttl", Value: "not a duration"}, {Key: "lease", Value: "1h"}, {Key: "../x", Value: "a field"}, {Key: "bad\xff", Value: "x"}}
	errs, err = kp.Apply(ctx, fields)
	if err != nil || errs[0] != nil || errs[1] != nil || errs[2] != nil || !errors.Is(errs[3], destination.ErrInvalidKey) {
		t.Fatalf("Apply fields = %v, %v", errs, err)
	}
	got := map[string]string{}
	for k, s := range mustList(t, kp) {
		got[k] = s.Value
	}
	want(t, "fields", got, map[string]string{"ttl": "not a duration", "lease": "1h", "../x": "a field"})
}

// Poll on KV v1 fingerprints the secrets: an idle poll sees no change, an
// out-of-band write does, and the signature holds no value.
func TestKVv1Poll(t *testing.T) {
	srv := vaulttest.Get(t)
	ctx := context.Background()
	for _, layout := range layouts {
		t.Run(layout.String(), func(t *testing.T) {
			mount := v1Mount(t, srv)
			kv := newKV(t, srv, v1Options(mount, layout))
			f := v1Fixture(t, srv, mount, layout, kv)
			if res, err := kv.Apply(ctx, []destination.Change{{Key: "A", Value: "canary-1"}, {Key: "nested/B", Value: "canary-2"}}); err != nil || res[0] != nil || res[1] != nil {
				t.Fatal(res, err)
			}
			first, err := kv.Poll(ctx)
			if err != nil {
				t.Fatal(err)
			}
			again, _ := kv.Poll(ctx)
			if again != first {
				t.Fatal("an idle poll changed the signature")
			}
			if err := f.Set(ctx, "nested/B", "canary-3"); err != nil {
				t.Fatal(err)
			}
			changed, _ := kv.Poll(ctx)
			if changed == first {
				t.Fatal("an out-of-band write did not change the signature")
			}
			if strings.Contains(first+changed, "canary") {
				t.Fatal("the signature holds a value")
			}
		})
	}
}
