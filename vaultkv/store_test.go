package vaultkv_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	gosync "sync"
	"testing"
	"time"

	"github.com/secretsync/secretsync/connection"
	"github.com/secretsync/secretsync/state"
	"github.com/secretsync/secretsync/vaultkv"
	"github.com/secretsync/secretsync/vaultkv/vaulttest"
)

// linkConn connects through p with the root token and no retries, so that
// a cut link fails fast.
func linkConn(t testing.TB, srv *vaulttest.Server, p *vaulttest.RequestProxy) *connection.Conn {
	t.Helper()
	return connThrough(t, p, srv.Token, -1, 2*time.Second)
}

// cut makes p drop every request, as a link to Vault that died.
func cut(p *vaulttest.RequestProxy) {
	p.Intercept(func(*http.Request) vaulttest.Verdict { return vaulttest.Drop })
}

func newStore(t testing.TB, srv *vaulttest.Server, conn *connection.Conn, mount string) *vaultkv.Store {
	t.Helper()
	s, err := vaultkv.NewStore(context.Background(), conn, &vaultkv.StoreOptions{Mount: mount})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestStore(t *testing.T) {
	srv := vaulttest.Get(t)
	mount := srv.NewMount(t)
	ctx := context.Background()
	a, b := newStore(t, srv, srv.Conn(t), mount), newStore(t, srv, srv.Conn(t), mount)

	if _, err := a.Load(ctx, "app"); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("Load before Save = %v, want ErrNotFound", err)
	}
	st := &state.State{Initialized: true, Sync: &state.Record{Status: state.Succeeded, RunID: "r1"}}
	if err := a.Save(ctx, "app", st); err != nil {
		t.Fatal(err)
	}
	got, err := b.Load(ctx, "app")
	if err != nil || got.Revision != st.Revision || !got.Initialized || got.Sync.RunID != "r1" {
		t.Fatalf("Load = %+v, %v", got, err)
	}
	// b saves; a's copy is now stale and refused.
	if err := b.Save(ctx, "app", got); err != nil {
		t.Fatal(err)
	}
	st.Initialized = false
	if err := a.Save(ctx, "app", st); !errors.Is(err, state.ErrConflict) {
		t.Fatalf("stale Save = %v, want ErrConflict", err)
	}
	if again, _ := a.Load(ctx, "app"); !again.Initialized {
		t.Fatal("a refused Save changed the state")
	}

	// Replicas creating the fingerprint key at once agree on one key.
	stores := make([]*vaultkv.Store, 4)
	keys := make([][]byte, len(stores))
	for i := range stores {
		stores[i] = newStore(t, srv, srv.Conn(t), mount)
	}
	var wg gosync.WaitGroup
	for i := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := stores[i].FingerprintKey(ctx)
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
		}()
	}
	wg.Wait()
	for i := range keys {
		if len(keys[i]) != 32 || !bytes.Equal(keys[i], keys[0]) {
			t.Fatalf("replicas disagree on the fingerprint key")
		}
	}

	// Bad input: a state written by a newer version is refused, not reset.
	if _, err := srv.Client(t).KVv2(mount).Put(ctx, "secretsync/state/future", map[string]any{"state": `{"format":99,"state":{}}`}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Load(ctx, "future"); !errors.Is(err, state.ErrCorrupt) {
		t.Fatalf("Load of an unknown format = %v, want ErrCorrupt", err)
	}
	if _, err := vaultkv.NewStore(ctx, srv.Conn(t), nil); !errors.Is(err, vaultkv.ErrInvalidOptions) {
		t.Fatalf("NewStore without a mount = %v", err)
	}
	// nil options are the zero Options: refused for want of a mount, never
	// a panic.
	if _, err := vaultkv.New(ctx, srv.Conn(t), nil); !errors.Is(err, vaultkv.ErrInvalidOptions) {
		t.Fatalf("New(nil) = %v, want ErrInvalidOptions", err)
	}
	if _, err := vaultkv.NewTransit(srv.Conn(t), nil); !errors.Is(err, vaultkv.ErrInvalidOptions) {
		t.Fatalf("NewTransit(nil) = %v, want ErrInvalidOptions", err)
	}
}

func TestLock(t *testing.T) {
	srv := vaulttest.Get(t)
	mount := srv.NewMount(t)
	ctx := context.Background()
	const ttl = 2 * time.Second
	la, lb := srv.RequestProxy(t), srv.RequestProxy(t)
	a, err := newStore(t, srv, linkConn(t, srv, la), mount).NewLock(&vaultkv.LockOptions{TTL: ttl, Holder: "a"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := newStore(t, srv, linkConn(t, srv, lb), mount).NewLock(&vaultkv.LockOptions{TTL: ttl, Holder: "b"})
	if err != nil {
		t.Fatal(err)
	}

	heldA, releaseA, err := a.TryAcquire(ctx, "sync1")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.TryAcquire(ctx, "sync1"); !errors.Is(err, state.ErrHeld) {
		t.Fatalf("second TryAcquire = %v, want ErrHeld", err)
	}
	// Other names are independent.
	_, releaseOther, err := b.TryAcquire(ctx, "sync2")
	if err != nil {
		t.Fatal(err)
	}
	releaseOther()
	// a keeps the lock across several TTLs by renewing it.
	time.Sleep(2 * ttl)
	if heldA.Err() != nil {
		t.Fatalf("a lost a lock it renews: %v", context.Cause(heldA))
	}
	if _, _, err := b.TryAcquire(ctx, "sync1"); !errors.Is(err, state.ErrHeld) {
		t.Fatalf("TryAcquire of a renewed lock = %v, want ErrHeld", err)
	}
	releaseA()
	if heldA.Err() == nil || errors.Is(context.Cause(heldA), state.ErrLockLost) {
		t.Fatalf("a released lock: held context %v (cause %v), want ended, not lost", heldA.Err(), context.Cause(heldA))
	}
	heldB, releaseB, err := b.TryAcquire(ctx, "sync1")
	if err != nil {
		t.Fatalf("TryAcquire after release = %v", err)
	}

	// b is cut off from Vault: it gives the lock up by itself, and a takes
	// it over within about a TTL of b's last renewal.
	cutAt := time.Now()
	cut(lb)
	done := make(chan time.Time, 1)
	go func() {
		held, release, err := a.Acquire(ctx, "sync1")
		if err != nil {
			t.Error(err)
			done <- time.Now()
			return
		}
		defer release()
		_ = held
		done <- time.Now()
	}()
	select {
	case <-heldB.Done():
	case <-time.After(5 * ttl):
		t.Fatal("a holder cut off from Vault kept its lock")
	}
	lostAfter := time.Since(cutAt)
	if cause := context.Cause(heldB); !errors.Is(cause, state.ErrLockLost) {
		t.Fatalf("the cut-off holder's lock ended with %v, want an error wrapping state.ErrLockLost", cause)
	}
	takenAt := <-done
	takeover := takenAt.Sub(cutAt)
	t.Logf("TTL %v: cut-off holder gave up after %v; takeover after %v", ttl, lostAfter.Round(time.Millisecond), takeover.Round(time.Millisecond))
	if takenAt.Before(cutAt.Add(lostAfter)) {
		t.Fatal("the lock was taken over before its holder gave it up")
	}
	releaseB()
}

// TestPollCost measures what one idle poll costs at 1,000 keys in each
// layout, and that a poll notices writes and deletes.
func TestPollCost(t *testing.T) {
	srv := vaulttest.Get(t)
	ctx := context.Background()
	for _, layout := range layouts {
		t.Run(layout.String(), func(t *testing.T) {
			mount := srv.NewMount(t)
			l := srv.RequestProxy(t)
			kv, err := vaultkv.New(ctx, linkConn(t, srv, l), &vaultkv.Options{Mount: mount, Path: "app", Layout: layout})
			if err != nil {
				t.Fatal(err)
			}
			c := srv.Client(t).KVv2(mount)
			const n = 1000
			if layout == vaultkv.SecretPath {
				data := map[string]any{}
				for i := range n {
					data[fmt.Sprintf("K%04d", i)] = "v"
				}
				if _, err := c.Put(ctx, "app", data); err != nil {
					t.Fatal(err)
				}
			} else {
				for i := range n {
					if _, err := c.Put(ctx, fmt.Sprintf("app/K%04d", i), map[string]any{"value": "v"}); err != nil {
						t.Fatal(err)
					}
				}
			}
			sig1, err := kv.Poll(ctx)
			if err != nil {
				t.Fatal(err)
			}
			before := l.Total()
			sig2, err := kv.Poll(ctx)
			if err != nil {
				t.Fatal(err)
			}
			cost := int64(l.Total() - before)
			t.Logf("%s: one idle poll at %d keys = %d requests", layout, n, cost)
			want := int64(1)
			if layout == vaultkv.SecretKey {
				want = n + 1 // one LIST, one metadata read per secret
			}
			if sig1 != sig2 || cost != want {
				t.Fatalf("idle poll: changed=%v, %d requests, want %d", sig1 != sig2, cost, want)
			}
			if layout == vaultkv.SecretPath {
				_, err = c.Patch(ctx, "app", map[string]any{"K0001": "w"})
			} else {
				_, err = c.Put(ctx, "app/K0001", map[string]any{"value": "w"})
			}
			if err != nil {
				t.Fatal(err)
			}
			sig3, _ := kv.Poll(ctx)
			if sig3 == sig2 {
				t.Fatal("a write went unnoticed")
			}
			p := "app"
			if layout == vaultkv.SecretKey {
				p = "app/K0002"
			}
			if err := c.Delete(ctx, p); err != nil {
				t.Fatal(err)
			}
			if sig4, _ := kv.Poll(ctx); sig4 == sig3 {
				t.Fatal("a soft delete went unnoticed")
			}
		})
	}
}

// Documents: check-and-set on the KV version, names checked, data kept
// exactly.
func TestStoreDocuments(t *testing.T) {
	srv := vaulttest.Get(t)
	ctx := context.Background()
	s := newStore(t, srv, srv.Conn(t), srv.NewMount(t, vaulttest.MountOptions{}))
	if _, err := s.LoadDocument(ctx, "catalog"); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("LoadDocument before a save = %v, want state.ErrNotFound", err)
	}
	doc := &state.Document{Data: []byte(`{"ü":"x y\n"}`)}
	if err := s.SaveDocument(ctx, "catalog", doc); err != nil {
		t.Fatal(err)
	}
	stale := &state.Document{Data: []byte("other")}
	if err := s.SaveDocument(ctx, "catalog", stale); !errors.Is(err, state.ErrConflict) {
		t.Fatalf("SaveDocument with revision 0 over an existing one = %v, want state.ErrConflict", err)
	}
	got, err := s.LoadDocument(ctx, "catalog")
	if err != nil || got.Revision != doc.Revision || string(got.Data) != string(doc.Data) {
		t.Fatalf("LoadDocument = %+v, %v; want %+v", got, err, doc)
	}
	if err := s.SaveDocument(ctx, "catalog", doc); err != nil || doc.Revision != got.Revision+1 {
		t.Fatalf("update: %v, revision %d", err, doc.Revision)
	}
	if err := s.SaveDocument(ctx, "../state/x", &state.Document{}); !errors.Is(err, state.ErrInvalidDocument) {
		t.Fatalf("a name that leaves the path: %v, want state.ErrInvalidDocument", err)
	}
}
