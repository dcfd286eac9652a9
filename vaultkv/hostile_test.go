package vaultkv_test

import (
	"context"
	"errors"
	"path"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/state"
	"github.com/secretsync/secretsync/vaultkv"
	"github.com/secretsync/secretsync/vaultkv/vaulttest"
)

// allSecrets lists every secret of a mount, with the root token.
func allSecrets(t *testing.T, c *api.Client, mount string) []string {
	t.Helper()
	var out []string
	var walk func(dir string)
	walk = func(dir string) {
		l, err := c.Logical().ListWithContext(context.Background(), path.Join(mount, "metadata", dir))
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

// No key makes a write land outside Mount/Path: a traversal key is refused
// for its change alone, and the rest of the batch is written (issue #10,
// defect 4).
func TestPathTraversal(t *testing.T) {
	srv := vaulttest.Get(t)
	ctx := context.Background()
	mount := srv.NewMount(t)
	kv := newKV(t, srv, vaultkv.Options{Mount: mount, Path: "team", Layout: vaultkv.SecretKey})
	changes := []destination.Change{
		{Key: "../../other-team/DB_PASSWORD", Value: "stolen"},
		{Key: "../other-team/API_KEY", Value: "stolen"},
		{Key: "ok/../../x", Value: "stolen"},
		{Key: "OK", Value: "fine"},
	}
	errs, err := kv.Apply(ctx, changes)
	if err != nil || len(errs) != len(changes) {
		t.Fatalf("Apply = %v, %v", errs, err)
	}
	for i, e := range errs[:3] {
		var ke *destination.KeyError
		if !errors.Is(e, destination.ErrInvalidKey) || !errors.As(e, &ke) || ke.Key != changes[i].Key {
			t.Errorf("%q: %v, want a KeyError wrapping ErrInvalidKey", changes[i].Key, e)
		}
	}
	if errs[3] != nil {
		t.Fatalf("the valid change of the batch failed: %v", errs[3])
	}
	if got := allSecrets(t, srv.Client(t), mount); strings.Join(got, ",") != "team/OK" {
		t.Fatalf("the mount holds %v, want only team/OK", got)
	}

	// Options and sync names that would leave their place are refused.
	for _, opt := range []vaultkv.Options{
		{Mount: mount, Path: "team/../../sys", Layout: vaultkv.SecretKey},
		{Mount: mount, Path: "../x"},
		{Mount: mount + "/../sys", Path: "x"},
	} {
		if _, err := vaultkv.New(ctx, srv.Conn(t), &opt); !errors.Is(err, vaultkv.ErrInvalidOptions) {
			t.Errorf("New(%+v) = %v, want ErrInvalidOptions", opt, err)
		}
	}
	if _, err := vaultkv.NewStore(ctx, srv.Conn(t), &vaultkv.StoreOptions{Mount: mount, Path: "a/../.."}); !errors.Is(err, vaultkv.ErrInvalidOptions) {
		t.Errorf("NewStore with a traversal path = %v, want ErrInvalidOptions", err)
	}
	store, err := vaultkv.NewStore(ctx, srv.Conn(t), &vaultkv.StoreOptions{Mount: mount})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.FingerprintKey(ctx); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"../fingerprint-key", "../../team/OK", "/x", "a//b", ""} {
		if _, err := store.Load(ctx, name); !errors.Is(err, destination.ErrInvalidKey) {
			t.Errorf("Load(%q) = %v, want ErrInvalidKey", name, err)
		}
		if err := store.Save(ctx, name, &state.State{}); !errors.Is(err, destination.ErrInvalidKey) {
			t.Errorf("Save(%q) = %v, want ErrInvalidKey", name, err)
		}
	}
	lock, err := store.NewLock(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := lock.TryAcquire(ctx, "../state/x"); !errors.Is(err, destination.ErrInvalidKey) {
		t.Errorf("TryAcquire with a traversal name = %v, want ErrInvalidKey", err)
	}
	if got := allSecrets(t, srv.Client(t), mount); strings.Join(got, ",") != "secretsync/fingerprint-key,team/OK" {
		t.Fatalf("the mount holds %v", got)
	}
}

// A value that is not valid UTF-8 is refused for its change alone, never
// stored with U+FFFD; the other changes of the call are written (issue
// #10, defect 5).
func TestInvalidUTF8ValueRefused(t *testing.T) {
	srv := vaulttest.Get(t)
	ctx := context.Background()
	for _, layout := range layouts {
		t.Run(layout.String(), func(t *testing.T) {
			mount := srv.NewMount(t)
			kv := newKV(t, srv, vaultkv.Options{Mount: mount, Path: "app", Layout: layout})
			changes := []destination.Change{{Key: "BAD", Value: "p\xe4ss"}, {Key: "GOOD", Value: "päss"}}
			errs, err := kv.Apply(ctx, changes)
			if err != nil || len(errs) != 2 {
				t.Fatalf("Apply = %v, %v", errs, err)
			}
			var ke *destination.KeyError
			if !errors.Is(errs[0], destination.ErrInvalidValue) || !errors.As(errs[0], &ke) || ke.Key != "BAD" {
				t.Fatalf("invalid UTF-8 value: %v, want a KeyError wrapping ErrInvalidValue", errs[0])
			}
			if errs[1] != nil {
				t.Fatalf("the valid change of the call: %v", errs[1])
			}
			got := newVaultSideAt(t, srv, mount, layout).snapshot()
			if len(got) != 1 || got["GOOD"] != "päss" {
				t.Fatalf("Vault holds %q, want only GOOD", got)
			}
		})
	}
}

// newVaultSideAt looks at an existing mount as newVaultSide does.
func newVaultSideAt(t *testing.T, srv *vaulttest.Server, mount string, layout vaultkv.Layout) *vaultSide {
	return &vaultSide{t: t, srv: srv, c: srv.Client(t), mount: mount, path: "app", layout: layout}
}
