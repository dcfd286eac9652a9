package httpapi

import (
	"context"
	"errors"

	"github.com/secretsync/secretsync/destination/registry"
)

// This file holds what depends on the registry's version: how a
// destination is deleted, and how its statuses are named.

// canPurge tells whether the registry can purge a destination.
const canPurge = false

// errNoPurge is the answer to a purge while the registry cannot purge.
var errNoPurge = errors.New("purge is not supported by this registry; remove the associations first")

// deleteDestination deletes the destination typ/name, unsyncing its
// associations first with purge.
func deleteDestination(ctx context.Context, reg *registry.Registry, typ, name string, purge bool) error {
	if purge {
		return errNoPurge
	}
	return reg.Delete(ctx, typ, name)
}

// vaultStatus returns the name Vault gives to an association's status.
func vaultStatus(s registry.SyncStatus) string {
	switch string(s) {
	case "SYNCING":
		return "PENDING"
	case "FAILED", "CONFLICT":
		return "EXTERNAL_SERVICE_ERROR"
	}
	return string(s)
}
