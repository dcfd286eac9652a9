package vaultkv_test

import (
	"context"
	"errors"
	"fmt"
	"path"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/secretsync/secretsync/destination/destinationtest"
	"github.com/secretsync/secretsync/vaultkv"
	"github.com/secretsync/secretsync/vaultkv/vaulttest"
)

// backdoor changes a KV v2 mount behind the store's back, with the root
// token, as another writer would.
type backdoor struct {
	t     testing.TB
	kv    *api.KVv2
	mount string
	path  string
	field string
}

func newBackdoor(t testing.TB, srv *vaulttest.Server, mount, p, field string) *backdoor {
	return &backdoor{t: t, kv: srv.Client(t).KVv2(mount), mount: mount, path: p, field: field}
}

func (b *backdoor) deleteKey(ctx context.Context, k string) error {
	return b.kv.Delete(ctx, path.Join(b.path, k))
}

func (b *backdoor) getKey(ctx context.Context, k string) (string, bool, error) {
	s, err := b.kv.Get(ctx, path.Join(b.path, k))
	if err != nil {
		if isNotFound(err) {
			return "", false, nil
		}
		return "", false, err
	}
	v, ok := s.Data[b.field].(string)
	return v, ok, nil
}

func isNotFound(err error) bool { return errors.Is(err, api.ErrSecretNotFound) }

func newKV(t testing.TB, srv *vaulttest.Server, opt vaultkv.Options) *vaultkv.KV {
	t.Helper()
	kv, err := vaultkv.New(context.Background(), srv.Conn(t), &opt)
	if err != nil {
		t.Fatalf("vaultkv.New: %v", err)
	}
	return kv
}

func TestConformanceSecretPath(t *testing.T) {
	srv := vaulttest.Get(t)
	for _, casRequired := range []bool{false, true} {
		t.Run(fmt.Sprintf("cas_required=%v", casRequired), func(t *testing.T) {
			destinationtest.Run(t, destinationtest.Harness{
				New: func(t *testing.T) destinationtest.Fixture {
					mount := srv.NewMount(t, vaulttest.MountOptions{CASRequired: casRequired})
					kv := newKV(t, srv, vaultkv.Options{Mount: mount, Path: "apps/web", Layout: vaultkv.SecretPath})
					b := newBackdoor(t, srv, mount, "apps/web", "")
					bd := casBackdoor{b: b, srv: srv, mount: mount}
					return destinationtest.Fixture{Destination: kv, Set: bd.setField, Delete: bd.deleteField}
				},
			})
		})
	}
}

func TestConformanceSecretKey(t *testing.T) {
	srv := vaulttest.Get(t)
	for _, casRequired := range []bool{false, true} {
		t.Run(fmt.Sprintf("cas_required=%v", casRequired), func(t *testing.T) {
			destinationtest.Run(t, destinationtest.Harness{
				New: func(t *testing.T) destinationtest.Fixture {
					mount := srv.NewMount(t, vaulttest.MountOptions{CASRequired: casRequired})
					kv := newKV(t, srv, vaultkv.Options{Mount: mount, Path: "team", Layout: vaultkv.SecretKey, Owner: "conformance"})
					b := newBackdoor(t, srv, mount, "team", "value")
					bd := casBackdoor{b: b, srv: srv, mount: mount}
					return destinationtest.Fixture{
						Destination: kv,
						Set:         bd.setKey, Delete: b.deleteKey,
						SetUnowned: bd.setKey, Get: b.getKey,
					}
				},
			})
		})
	}
}

// casBackdoor writes with the current version as cas, so that it works on
// mounts with cas_required.
type casBackdoor struct {
	b     *backdoor
	srv   *vaulttest.Server
	mount string
}

func (c casBackdoor) write(ctx context.Context, p string, data map[string]any) error {
	cl := c.srv.Client(c.b.t)
	meta, err := cl.KVv2(c.mount).GetMetadata(ctx, p)
	version := 0
	if err == nil && meta != nil {
		version = meta.CurrentVersion
	}
	_, err = cl.Logical().WriteWithContext(ctx, path.Join(c.mount, "data", p), map[string]any{
		"data": data, "options": map[string]any{"cas": version},
	})
	return err
}

func (c casBackdoor) read(ctx context.Context, p string) map[string]any {
	s, err := c.srv.Client(c.b.t).KVv2(c.mount).Get(ctx, p)
	if err != nil || s == nil || s.Data == nil {
		return map[string]any{}
	}
	return s.Data
}

func (c casBackdoor) setField(ctx context.Context, k, v string) error {
	d := c.read(ctx, c.b.path)
	d[k] = v
	return c.write(ctx, c.b.path, d)
}

func (c casBackdoor) deleteField(ctx context.Context, k string) error {
	d := c.read(ctx, c.b.path)
	delete(d, k)
	return c.write(ctx, c.b.path, d)
}

func (c casBackdoor) setKey(ctx context.Context, k, v string) error {
	return c.write(ctx, path.Join(c.b.path, k), map[string]any{c.b.field: v})
}
