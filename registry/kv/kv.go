// Package kv connects the registry to HashiCorp Vault KV: the source of
// every association (SecretSource, which reads each associated KV v2
// secret) and the driver of the vault-kv destination type (Driver).
//
// It lives beside the registry, not in package vaultkv, so that every
// import points down: vaultkv and sync know nothing of the registry, and
// the registry knows nothing of Vault.
//
// # Vault policy
//
// SecretSource reads each associated secret as vaultkv's SecretPath layout
// does; Driver writes as vaultkv with the Config's layout. vaultkv.Policy
// gives the exact paths and capabilities of both.
package kv

import (
	"cmp"
	"context"
	"fmt"

	"github.com/secretsync/secretsync/connection"
	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/registry"
	"github.com/secretsync/secretsync/vaultkv"
)

// A vaultkv.KV names its mount's accessor for the registry's name
// templates.
var _ registry.MountAccessor = (*vaultkv.KV)(nil)

// Driver returns the registry.Driver of the vault-kv destination type
// (registry.VaultKV): it opens a vaultkv destination over the connection
// that the Config names, one of conns, with owner as the ownership marker
// (empty means the Target's Owner, or "secretsync" when that is empty
// too). A Config naming no connection of conns fails with an error
// matching vaultkv.ErrInvalidOptions.
//
// The returned Driver is safe for concurrent use; it holds conns and
// opens a new vaultkv.KV on each call.
func Driver(conns map[string]*connection.Conn, owner string) registry.Driver {
	return func(ctx context.Context, t registry.Target) (destination.Destination, error) {
		cfg, owner := t.Config, cmp.Or(owner, t.Owner)
		c, ok := cfg.(registry.VaultKV)
		if !ok {
			return nil, fmt.Errorf("kv: driver got a %s config", cfg.Type())
		}
		conn := conns[c.Connection]
		if conn == nil {
			return nil, fmt.Errorf("kv: %w: no connection %q", vaultkv.ErrInvalidOptions, c.Connection)
		}
		var layout vaultkv.Layout
		if c.Layout != "" {
			if err := layout.UnmarshalText([]byte(c.Layout)); err != nil {
				return nil, err
			}
		}
		return vaultkv.New(ctx, conn, &vaultkv.Options{Mount: c.Mount, Path: c.Path, Layout: layout, Owner: owner})
	}
}

// SecretSource returns the registry.SourceFunc that reads each associated
// secret over conn, with its keys as the fields of the secret (the
// vaultkv.SecretPath layout). The sources it opens report their mount's
// accessor (registry.MountAccessor).
func SecretSource(conn *connection.Conn) registry.SourceFunc {
	return func(ctx context.Context, mount, secret string) (destination.Reader, error) {
		return vaultkv.New(ctx, conn, &vaultkv.Options{Mount: mount, Path: secret, Layout: vaultkv.SecretPath})
	}
}
