package registry_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/registry"
	"github.com/secretsync/secretsync/state"
)

// world is what several registries (replicas) share: the secrets, the
// destinations' stores, the sync state and the catalog.
type world struct {
	t       *testing.T
	mu      gosync.Mutex
	secrets map[registry.SecretRef]*memory.Destination
	dests   map[string]*memory.Destination
	tokens  []string // the credentials the driver was given
	store   *state.Memory
	catalog state.Documents
	sealer  state.KeySealer
}

func newWorld(t *testing.T, catalog state.Documents) *world {
	return &world{t: t, secrets: map[registry.SecretRef]*memory.Destination{}, dests: map[string]*memory.Destination{},
		store: state.NewMemory(), catalog: catalog, sealer: registry.KeyFileSealer(filepath.Join(t.TempDir(), "catalog.key"))}
}

func (w *world) options() *registry.Options {
	return &registry.Options{
		Drivers: map[string]registry.Driver{
			"test-kv": func(ctx context.Context, tg registry.Target) (destination.Destination, error) {
				w.mu.Lock()
				defer w.mu.Unlock()
				w.tokens = append(w.tokens, tg.Config.(testKV).Token.Reveal())
				d := w.dests[tg.Name]
				if d == nil {
					d = memory.New(nil)
					w.dests[tg.Name] = d
				}
				return d, nil
			},
		},
		Source: func(ctx context.Context, mount, name string) (destination.Reader, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			s := w.secrets[registry.SecretRef{Mount: mount, Name: name}]
			if s == nil {
				return nil, fmt.Errorf("no secret %s/%s", mount, name)
			}
			return s, nil
		},
		Store:   w.store,
		Catalog: w.catalog,
		Sealer:  w.sealer,
		Types:   map[string]registry.Config{"test-kv": testKV{}},
	}
}

func (w *world) open(t *testing.T) *registry.Registry {
	t.Helper()
	r, err := registry.Open(context.Background(), w.options())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func (w *world) secret(mount, name string, kv map[string]string) registry.SecretRef {
	w.mu.Lock()
	defer w.mu.Unlock()
	ref := registry.SecretRef{Mount: mount, Name: name}
	w.secrets[ref] = memory.New(kv)
	return ref
}

// catalogData returns the catalog document's text.
func catalogData(t *testing.T, c state.Documents) string {
	t.Helper()
	d, err := c.LoadDocument(context.Background(), registry.DefaultCatalogName)
	if err != nil {
		t.Fatal(err)
	}
	return string(d.Data)
}

// A registry opened on a state.File finds every destination, association
// and sync name again, with its credentials, which the files on disk hold
// only sealed.
func TestCatalogOutlivesTheProcess(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	f, err := state.OpenFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, f)
	w.sealer = registry.KeyFileSealer(filepath.Join(dir, "catalog.key"))
	r := w.open(t)
	if _, err := r.Put(ctx, "repo", testKV{Token: canary}); err != nil {
		t.Fatal(err)
	}
	refs := []registry.SecretRef{w.secret("kv", "App/Prod", map[string]string{"A": "1"}), w.secret("kv", "app/prod", map[string]string{"B": "2"})}
	var names []string
	for _, ref := range refs {
		a, err := r.Set(ctx, "test-kv", "repo", ref, &registry.AssociationOptions{KeySchema: strings.ToUpper(ref.Name[:1]) + strings.ReplaceAll(ref.Name[1:], "/", "_") + "_{{secretKey}}"})
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, a.SyncName)
	}
	if names[0] == names[1] {
		t.Fatalf("two associations have the sync name %s", names[0])
	}
	r.Close()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path + ".docs", filepath.Join(dir, "catalog.key")} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(canary)) {
			t.Errorf("%s holds the credential in plain text", p)
		}
		if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v", p, fi.Mode().Perm())
		}
	}

	// A new process: the same files.
	f2, err := state.OpenFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f2.Close()
	w2 := newWorld(t, f2)
	w2.sealer = registry.KeyFileSealer(filepath.Join(dir, "catalog.key"))
	w2.secrets, w2.dests = w.secrets, w.dests
	r2 := w2.open(t)
	info, err := r2.Get(ctx, "test-kv", "repo")
	if err != nil || info.Associations != 2 {
		t.Fatalf("Get after a restart = %+v, %v; want the destination with 2 associations", info, err)
	}
	as, err := r2.Associations(ctx, "test-kv", "repo")
	if err != nil {
		t.Fatal(err)
	}
	// Set again in the other order: the names are those of the catalog.
	for i := len(refs) - 1; i >= 0; i-- {
		if as[i].SyncName != names[i] || as[i].Status != registry.StatusPending {
			t.Errorf("association %s after a restart: %s %s, want %s PENDING", refs[i], as[i].SyncName, as[i].Status, names[i])
		}
		a, err := r2.Set(ctx, "test-kv", "repo", refs[i], &registry.AssociationOptions{KeySchema: as[i].KeySchema})
		if err != nil || a.SyncName != names[i] || a.Status != registry.StatusSynced {
			t.Errorf("Set after a restart: %s %s %v, want %s SYNCED", a.SyncName, a.Status, err, names[i])
		}
	}
	if got := w2.tokens; len(got) == 0 || got[0] != canary {
		t.Errorf("the driver got the credentials %q after a restart, want the original", got)
	}
}

// Without a Sealer, a credential is refused and nothing changes; a Config
// without one is kept.
func TestCatalogNeedsASealer(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, state.NewMemory())
	w.sealer = nil
	r := w.open(t)
	if _, err := r.Put(ctx, "repo", testKV{Token: canary}); !errors.Is(err, registry.ErrNoSealer) {
		t.Fatalf("Put with a credential and no Sealer = %v, want ErrNoSealer", err)
	}
	if l, _ := r.List(ctx); len(l) != 0 {
		t.Fatalf("a refused Put left %v", l)
	}
	if _, err := w.catalog.LoadDocument(ctx, registry.DefaultCatalogName); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("a refused Put saved the catalog: %v", err)
	}
	if _, err := r.Put(ctx, "kv", registry.VaultKV{Connection: "prod", Mount: "kv"}); err != nil {
		t.Fatal(err)
	}
	if got := catalogData(t, w.catalog); !strings.Contains(got, `"connection":"prod"`) {
		t.Errorf("catalog = %s", got)
	}
}

// Types the catalog could not read back, and credentials it could not
// seal, are refused at Put.
func TestCatalogRefusesWhatItCannotKeep(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, state.NewMemory())
	r := w.open(t)
	for _, cfg := range []registry.Config{&withNested{Inner: inner{Key: canary}}} {
		_, err := r.Put(ctx, "d", cfg)
		var ce *registry.ConfigError
		if !errors.As(err, &ce) {
			t.Errorf("Put(%T) = %v, want a *ConfigError", cfg, err)
		}
	}
	opts := w.options()
	opts.Types["custom"] = &withNested{}
	r2, err := registry.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r2.Put(ctx, "d", &withNested{Inner: inner{Key: canary}}); err == nil || !strings.Contains(err.Error(), "Inner") {
		t.Errorf("a credential nested in a field: %v, want an error naming it", err)
	}
}

// What one replica changes, the other sees after Reload; their changes
// at the same time are both kept.
func TestCatalogReplicas(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, state.NewMemory())
	a, b := w.open(t), w.open(t)
	if _, err := a.Put(ctx, "repo", testKV{Token: "t1"}); err != nil {
		t.Fatal(err)
	}
	ref := w.secret("kv", "app", map[string]string{"K": "v"})
	if _, err := a.Set(ctx, "test-kv", "repo", ref, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	as, err := b.Associations(ctx, "test-kv", "repo")
	if err != nil || len(as) != 1 {
		t.Fatalf("b sees %v, %v", as, err)
	}
	// b changes the Config; a picks it up (and its sides reopen).
	if _, err := b.Put(ctx, "repo", testKV{Token: "t2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Set(ctx, "test-kv", "repo", ref, nil); err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	last := w.tokens[len(w.tokens)-1]
	w.mu.Unlock()
	if last != "t2" {
		t.Errorf("a synced with the credential %q, want b's new one", last)
	}
	// b removes it; a drops it on its next reload without an unsync.
	if _, err := b.Remove(ctx, "test-kv", "repo", ref); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if as, _ := a.Associations(ctx, "test-kv", "repo"); len(as) != 0 {
		t.Fatalf("a still has %v", as)
	}
	// Both add destinations at once: every one is kept.
	var wg gosync.WaitGroup
	var failed atomic.Int32
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reg := a
			if i%2 == 1 {
				reg = b
			}
			if _, err := reg.Put(ctx, fmt.Sprintf("d%d", i), registry.VaultKV{Connection: "c", Mount: "kv"}); err != nil {
				t.Errorf("Put d%d: %v", i, err)
				failed.Add(1)
			}
		}()
	}
	wg.Wait()
	c := w.open(t)
	l, _ := c.List(ctx)
	if got := len(l[registry.TypeVaultKV]); got != 8 {
		t.Errorf("after concurrent Puts from two replicas the catalog holds %d destinations, want 8", got)
	}
	// Delete on one is seen by the other.
	if err := a.Delete(ctx, registry.TypeVaultKV, "d0", nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, registry.TypeVaultKV, "d0"); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("b still has d0: %v", err)
	}
}

// failingDocs fails every SaveDocument while fail is set.
type failingDocs struct {
	state.Documents
	fail atomic.Bool
}

func (f *failingDocs) SaveDocument(ctx context.Context, name string, d *state.Document) error {
	if f.fail.Load() {
		return errors.New("disk full")
	}
	return f.Documents.SaveDocument(ctx, name, d)
}

// A change whose save fails is undone, and its error returned.
func TestCatalogSaveFailureChangesNothing(t *testing.T) {
	ctx := context.Background()
	docs := &failingDocs{Documents: state.NewMemory()}
	w := newWorld(t, docs)
	r := w.open(t)
	if _, err := r.Put(ctx, "repo", testKV{Token: "t"}); err != nil {
		t.Fatal(err)
	}
	ref := w.secret("kv", "app", map[string]string{"K": "v"})
	docs.fail.Store(true)
	if _, err := r.Put(ctx, "other", testKV{Token: "t"}); err == nil {
		t.Fatal("Put succeeded though the catalog could not be saved")
	}
	if _, err := r.Get(ctx, "test-kv", "other"); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("a Put that was not saved is there: %v", err)
	}
	if _, err := r.Set(ctx, "test-kv", "repo", ref, nil); err == nil {
		t.Fatal("Set succeeded though the catalog could not be saved")
	}
	if as, _ := r.Associations(ctx, "test-kv", "repo"); len(as) != 0 {
		t.Errorf("a Set that was not saved is there: %v", as)
	}
	if vs := values(t, w.destination("repo")); len(vs) != 0 {
		t.Errorf("a Set that was not saved synced: %v", vs)
	}
	docs.fail.Store(false)
	if _, err := r.Set(ctx, "test-kv", "repo", ref, nil); err != nil {
		t.Fatal(err)
	}
	docs.fail.Store(true)
	if err := r.Delete(ctx, "test-kv", "repo", &registry.DeleteOptions{Force: true}); err == nil {
		t.Fatal("Delete succeeded though the catalog could not be saved")
	}
	if info, err := r.Get(ctx, "test-kv", "repo"); err != nil || info.Associations != 1 {
		t.Errorf("a Delete that was not saved took effect: %+v, %v", info, err)
	}
}

func (w *world) destination(name string) *memory.Destination {
	w.mu.Lock()
	defer w.mu.Unlock()
	d := w.dests[name]
	if d == nil {
		d = memory.New(nil)
		w.dests[name] = d
	}
	return d
}

// A sealed credential does not open once altered or moved to another
// destination, and a catalog sealed by another sealer is refused.
func TestCatalogSealedTextIsBound(t *testing.T) {
	ctx := context.Background()
	mem := state.NewMemory()
	w := newWorld(t, mem)
	r := w.open(t)
	for _, n := range []string{"a", "b"} {
		if _, err := r.Put(ctx, n, testKV{Token: registry.Credential(canary + n)}); err != nil {
			t.Fatal(err)
		}
	}
	doc, err := mem.LoadDocument(ctx, registry.DefaultCatalogName)
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc.Data)
	i := strings.Index(text, `"token":"sealed:v1:`)
	j := strings.LastIndex(text, `"token":"sealed:v1:`)
	if i < 0 || i == j {
		t.Fatalf("the catalog does not hold two sealed tokens: %s", text)
	}
	end := func(k int) int { return k + len(`"token":"`) + strings.Index(text[k+len(`"token":"`):], `"`) }
	first, second := text[i:end(i)], text[j:end(j)]
	swapped := strings.Replace(strings.Replace(text, first, "\x00", 1), second, first, 1)
	swapped = strings.Replace(swapped, "\x00", second, 1)
	tampered := strings.Replace(text, first, first[:len(first)-2]+"AA", 1)
	for name, data := range map[string]string{"swapped": swapped, "altered": tampered} {
		m := state.NewMemory()
		if err := m.SaveDocument(ctx, registry.DefaultCatalogName, &state.Document{Data: []byte(data)}); err != nil {
			t.Fatal(err)
		}
		w2 := newWorld(t, m)
		w2.sealer = w.sealer
		if _, err := registry.Open(ctx, w2.options()); !errors.Is(err, registry.ErrSealed) {
			t.Errorf("%s: Open = %v, want ErrSealed", name, err)
		}
	}
	w3 := newWorld(t, mem) // another key file
	if _, err := registry.Open(ctx, w3.options()); !errors.Is(err, registry.ErrSealed) {
		t.Errorf("another sealer's key: Open = %v, want ErrSealed", err)
	}
	w4 := newWorld(t, mem)
	w4.sealer = nil
	if _, err := registry.Open(ctx, w4.options()); !errors.Is(err, registry.ErrSealed) {
		t.Errorf("no sealer: Open = %v, want ErrSealed", err)
	}
}

// While Watch runs, an association that another replica sets is watched:
// a change of its secret arrives without a call to this replica.
func TestCatalogWatchPicksUpOtherReplicas(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, state.NewMemory())
	opts := w.options()
	opts.PollInterval = 20 * time.Millisecond
	watcher, err := registry.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Close()
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- watcher.Watch(wctx) }()
	defer func() {
		cancel()
		<-done
	}()
	admin := w.open(t)
	if _, err := admin.Put(ctx, "repo", testKV{Token: "t"}); err != nil {
		t.Fatal(err)
	}
	ref := w.secret("kv", "app", map[string]string{"K": "v1"})
	if _, err := admin.Set(ctx, "test-kv", "repo", ref, &registry.AssociationOptions{KeySchema: "{{secretKey}}"}); err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	src := w.secrets[ref]
	w.mu.Unlock()
	if _, err := src.Apply(ctx, []destination.Change{{Key: "K", Value: "v2", Expect: mustVersion(t, src, "K")}}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		if values(t, w.destination("repo"))["K"] == "v2" {
			as, _ := watcher.Associations(ctx, "test-kv", "repo")
			if len(as) == 1 && as[0].Status == registry.StatusSynced {
				return
			}
		}
		if time.Now().After(deadline) {
			as, _ := watcher.Associations(ctx, "test-kv", "repo")
			t.Fatalf("the watcher did not sync the other replica's association: %v, %+v", values(t, w.destination("repo")), as)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func mustVersion(t *testing.T, d *memory.Destination, key string) string {
	t.Helper()
	m, err := d.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return m[key].Version
}

// racingDocs lets another replica save just before the first save it
// forwards, so that the save is refused with state.ErrConflict.
type racingDocs struct {
	state.Documents
	once   gosync.Once
	before func()
}

func (d *racingDocs) SaveDocument(ctx context.Context, name string, doc *state.Document) error {
	d.once.Do(d.before)
	return d.Documents.SaveDocument(ctx, name, doc)
}

// A save refused because another replica saved in between is done again
// on top of what that replica saved: neither change is lost.
func TestCatalogConflictIsRetried(t *testing.T) {
	ctx := context.Background()
	mem := state.NewMemory()
	other := newWorld(t, mem).open(t)
	docs := &racingDocs{Documents: mem, before: func() {
		if _, err := other.Put(ctx, "theirs", registry.VaultKV{Connection: "c", Mount: "kv"}); err != nil {
			t.Error(err)
		}
	}}
	r := newWorld(t, docs).open(t)
	if _, err := r.Put(ctx, "ours", registry.VaultKV{Connection: "c", Mount: "kv"}); err != nil {
		t.Fatalf("Put after a concurrent save: %v", err)
	}
	l, _ := newWorld(t, mem).open(t).List(ctx)
	if got := strings.Join(l[registry.TypeVaultKV], ","); got != "ours,theirs" {
		t.Errorf("the catalog holds %q, want both destinations", got)
	}
	if l, _ := r.List(ctx); len(l[registry.TypeVaultKV]) != 2 {
		t.Errorf("the registry that retried sees %v", l)
	}
}

// KeyFileSealer: sealers opened on one path at once agree on one key,
// made atomically with mode 0600; a key file that holds no key is an
// error and is left as it is.
func TestKeyFileSealer(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "catalog.key")
	sealers := make([]state.KeySealer, 8)
	sealed := make([]string, len(sealers))
	var wg gosync.WaitGroup
	for i := range sealers {
		sealers[i] = registry.KeyFileSealer(path)
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := sealers[i].Seal(ctx, []byte("0123456789abcdef0123456789abcdef"))
			if err != nil {
				t.Error(err)
			}
			sealed[i] = s
		}()
	}
	wg.Wait()
	for i := range sealers {
		got, err := sealers[(i+1)%len(sealers)].Unseal(ctx, sealed[i])
		if err != nil || string(got) != "0123456789abcdef0123456789abcdef" {
			t.Fatalf("sealer %d's text does not open with another sealer of the file: %v", i, err)
		}
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v", fi, err)
	}
	bad := filepath.Join(t.TempDir(), "bad.key")
	if err := os.WriteFile(bad, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := registry.KeyFileSealer(bad).Seal(ctx, make([]byte, 32)); err == nil {
		t.Fatal("a key file without a key sealed")
	}
	if b, _ := os.ReadFile(bad); string(b) != "not a key\n" {
		t.Fatalf("the bad key file was replaced: %q", b)
	}
}

// failingLoad fails every LoadDocument while fail is set.
type failingLoad struct {
	state.Documents
	fail atomic.Bool
}

func (f *failingLoad) LoadDocument(ctx context.Context, name string) (*state.Document, error) {
	if f.fail.Load() {
		return nil, errors.New("store unavailable")
	}
	return f.Documents.LoadDocument(ctx, name)
}

// A catalog that cannot be read or decoded fails Open, and Reload and
// every change with an error, leaving the registry as it was.
func TestCatalogUnreadable(t *testing.T) {
	ctx := context.Background()
	for name, data := range map[string]string{"not JSON": "{", "another format": `{"format":99,"destinations":[]}`} {
		m := state.NewMemory()
		if err := m.SaveDocument(ctx, registry.DefaultCatalogName, &state.Document{Data: []byte(data)}); err != nil {
			t.Fatal(err)
		}
		_, err := registry.Open(ctx, newWorld(t, m).options())
		if err == nil || (name == "another format" && !errors.Is(err, state.ErrUnknownFormat)) {
			t.Errorf("%s: Open = %v", name, err)
		}
	}
	docs := &failingLoad{Documents: state.NewMemory()}
	w := newWorld(t, docs)
	r := w.open(t)
	if _, err := r.Put(ctx, "kv", registry.VaultKV{Connection: "c", Mount: "kv"}); err != nil {
		t.Fatal(err)
	}
	docs.fail.Store(true)
	if err := r.Reload(ctx); err == nil {
		t.Fatal("Reload of an unreadable catalog succeeded")
	}
	if _, err := r.Put(ctx, "other", registry.VaultKV{Connection: "c", Mount: "kv"}); err == nil {
		t.Fatal("Put with an unreadable catalog succeeded")
	}
	l, _ := r.List(ctx)
	if got := strings.Join(l[registry.TypeVaultKV], ","); got != "kv" {
		t.Fatalf("after the failures the registry holds %q, want what it had", got)
	}
	if _, err := registry.Open(ctx, w.options()); err == nil {
		t.Fatal("Open of an unreadable catalog succeeded")
	}
}
