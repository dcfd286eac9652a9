package vaultkv

import (
	"cmp"
	"context"
	"fmt"

	"github.com/secretsync/secretsync/connection"
	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/registry"
)

// A KV names its mount's accessor for the registry's name templates.
var _ registry.MountAccessor = (*KV)(nil)

// Driver returns the registry.Driver of the vault-kv destination type
// (registry.VaultKV): it opens the destination over the connection that
// the Config names, one of conns, with owner as the ownership marker
// (empty means the Target's Owner, or "secretsync" when that is empty too).
func Driver(conns map[string]*connection.Conn, owner string) registry.Driver {
	return func(ctx context.Context, t registry.Target) (destination.Destination, error) {
		cfg, owner := t.Config, cmp.Or(owner, t.Owner)
		c, ok := cfg.(registry.VaultKV)
		if !ok {
			return nil, fmt.Errorf("vaultkv: driver got a %s config", cfg.Type())
		}
		conn := conns[c.Connection]
		if conn == nil {
			return nil, fmt.Errorf("vaultkv: %w: no connection %q", ErrInvalidOptions, c.Connection)
		}
		var layout Layout
		if c.Layout != "" {
			if err := layout.UnmarshalText([]byte(c.Layout)); err != nil {
				return nil, err
			}
		}
		return New(ctx, conn, Options{Mount: c.Mount, Path: c.Path, Layout: layout, Owner: owner})
	}
}

// SecretSource returns the registry.SourceFunc that reads each associated
// secret over conn, with its keys as the fields of the secret (the
// SecretPath layout).
func SecretSource(conn *connection.Conn) registry.SourceFunc {
	return func(ctx context.Context, mount, secret string) (destination.Reader, error) {
		return New(ctx, conn, Options{Mount: mount, Path: secret, Layout: SecretPath})
	}
}
