package vaultkv

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/hashicorp/vault/api"

	"github.com/secretsync/secretsync/connection"
	"github.com/secretsync/secretsync/destination"
)

// Vault's capabilities, as the requests of this package need them.
const (
	capCreate = "create"
	capRead   = "read"
	capUpdate = "update"
	capPatch  = "patch"
	capDelete = "delete"
	capList   = "list"
)

// do runs one request over conn, naming the capability it needs so that a
// permission error names it. Every request of this package goes through
// do, so that every error meaning Vault as a whole cannot serve matches
// destination.ErrUnavailable (see unavailable).
func do(ctx context.Context, conn *connection.Conn, op, p, capability string, fn func(*api.Client) error) error {
	return unavailable(conn.Do(ctx, op, p, capability, fn))
}

// unavailable wraps err so that it also matches destination.ErrUnavailable
// when it says that the server as a whole cannot serve: unreachable (which
// includes no answer within the connection's own timeout while the caller
// still waits), sealed, answering 429 (rate limit) or 502/503/504 after the
// connection's retries. The original error stays in the chain.
func unavailable(err error) error {
	if err == nil || errors.Is(err, destination.ErrUnavailable) {
		return err
	}
	switch {
	case errors.Is(err, connection.ErrUnreachable), errors.Is(err, connection.ErrSealed), errors.Is(err, connection.ErrRateLimited):
		// ErrUnreachable includes the connection's own timeout while the
		// caller's ctx is live.
	default:
		switch connection.Status(err) {
		case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		default:
			return err
		}
	}
	return fmt.Errorf("%w: %w", destination.ErrUnavailable, err)
}

// read reads p; nil data when Vault answers 404 without a body.
func read(ctx context.Context, conn *connection.Conn, p string) (map[string]any, error) {
	var sec *api.Secret
	err := do(ctx, conn, "read", p, capRead, func(c *api.Client) (err error) {
		sec, err = c.Logical().ReadWithContext(ctx, p)
		return err
	})
	if errors.Is(err, connection.ErrPermissionDenied) {
		forgetMount(conn, p)
	}
	if err != nil || sec == nil {
		return nil, err
	}
	return sec.Data, nil
}

// write writes data at p with the capability the write needs ("create"
// for a KV v2 secret without metadata, "update" otherwise) and returns the
// response's data.
func write(ctx context.Context, conn *connection.Conn, p, capability string, data map[string]any) (map[string]any, error) {
	var sec *api.Secret
	err := do(ctx, conn, "write", p, capability, func(c *api.Client) (err error) {
		sec, err = c.Logical().WriteWithContext(ctx, p, data)
		return err
	})
	if err != nil || sec == nil {
		return nil, err
	}
	return sec.Data, nil
}

// patch applies a JSON merge patch to p.
func patch(ctx context.Context, conn *connection.Conn, p string, data map[string]any) error {
	return do(ctx, conn, "patch", p, capPatch, func(c *api.Client) error {
		_, err := c.Logical().JSONMergePatch(ctx, p, data)
		return err
	})
}

// remove deletes p.
func remove(ctx context.Context, conn *connection.Conn, p string) error {
	return do(ctx, conn, "delete", p, capDelete, func(c *api.Client) error {
		_, err := c.Logical().DeleteWithContext(ctx, p)
		return err
	})
}

// list lists p; nil when Vault answers 404. Vault checks the list
// capability on p with a trailing '/', so errors name that path.
func list(ctx context.Context, conn *connection.Conn, p string) ([]string, error) {
	var sec *api.Secret
	err := do(ctx, conn, "list", p+"/", capList, func(c *api.Client) (err error) {
		sec, err = c.Logical().ListWithContext(ctx, p)
		return err
	})
	if (err == nil && sec == nil) || errors.Is(err, connection.ErrPermissionDenied) {
		forgetMount(conn, p)
	}
	if err != nil || sec == nil {
		return nil, err
	}
	return decodeList(sec.Data), nil
}

// outcomeKnown reports whether a write that failed with err is known not
// to have been applied: Vault answered with a client error (other than a
// rate limit), which it sends before changing anything.
func outcomeKnown(err error) bool {
	s := connection.Status(err)
	return s >= 400 && s < 500 && s != http.StatusTooManyRequests
}
