package registry

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	multierror "github.com/hashicorp/go-multierror"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/sync"
)

// TestStatusOf table-tests the classification of an operation's outcome
// into Vault's statuses: from the types of the errors, never their text.
func TestStatusOf(t *testing.T) {
	cause := errors.New("boom")
	keyErr := func(side, op string, err error) error {
		return &sync.KeyError{Key: "K", DestinationKey: "APP_K", Op: op, Side: side, Err: err}
	}
	dstKey := func(err error) error { return keyErr(sync.SideDestination, "put", err) }
	multi := func(errs ...error) error { return multierror.Append(nil, errs...) }
	unavailable := fmt.Errorf("%w: 503", destination.ErrUnavailable)
	rep := func(t sync.Totals) *sync.Report { return &sync.Report{Totals: t} }

	for _, tt := range []struct {
		name string
		op   string
		rep  *sync.Report
		err  error
		want SyncStatus
		msg  string // a part of the message
	}{
		{"clean round", sync.OpSync, rep(sync.Totals{Created: 2, Unchanged: 1}), nil, StatusSynced, "synced: 2 created, 0 updated, 0 deleted, 1 unchanged"},
		{"keys to retry", sync.OpSync, rep(sync.Totals{Updated: 1, Retries: 2}), nil, StatusPending, "2 key(s) changed during the round"},
		{"conflicts flagged", sync.OpSync, rep(sync.Totals{Conflicts: 1, Retries: 1}), nil, StatusExternalServiceError, "1 conflict(s) flagged"},
		{"conflicts of earlier rounds", sync.OpSync, &sync.Report{Flagged: 2}, nil, StatusExternalServiceError, "2 conflict(s) flagged"},
		{"secret deleted in Vault", sync.OpSync, rep(sync.Totals{Deleted: 2}), nil, StatusUnsynced, "the secret was deleted in Vault (or holds no keys); nothing is synced: 2 deleted"},
		{"secret still deleted", sync.OpSync, rep(sync.Totals{Unmanaged: 3}), nil, StatusUnsynced, "deleted in Vault"},
		{"unsynced", sync.OpRemove, rep(sync.Totals{Deleted: 3}), nil, StatusUnsynced, "3 deleted"},
		{"unsync with keys to retry", sync.OpRemove, rep(sync.Totals{Deleted: 1, Retries: 1}), nil, StatusPending, "remove again"},

		{"source unreadable", sync.OpSync, nil, &sync.SideError{Side: sync.SideSource, Op: sync.OpList, Err: cause}, StatusInternalVaultError, "reading the secret from Vault failed"},
		{"source unavailable", sync.OpSync, nil, &sync.SideError{Side: sync.SideSource, Op: sync.OpList, Err: unavailable}, StatusInternalVaultError, "Vault"},
		{"source cannot be opened", sync.OpSync, nil, &openError{side: sync.SideSource, err: cause}, StatusInternalVaultError, "opening the secret"},

		{"state store", sync.OpSync, nil, &sync.SideError{Side: sync.SideStore, Op: sync.OpSave, Err: cause}, StatusClientSideError, "state store"},
		{"no driver", sync.OpSync, nil, &openError{side: sync.SideDestination, err: fmt.Errorf("%w: gh", ErrNoDriver)}, StatusClientSideError, "no driver"},
		{"driver refuses the config", sync.OpSync, nil, &openError{side: sync.SideDestination, err: cause}, StatusClientSideError, "cannot be opened"},
		{"registry config", sync.OpSync, nil, &ConfigError{Field: "secret_name_template", Reason: "r"}, StatusClientSideError, "configuration"},
		{"sync config", sync.OpSync, nil, &sync.ConfigError{Field: "Name", Reason: "r"}, StatusClientSideError, "configuration"},
		{"mass deletion", sync.OpSync, nil, &sync.MassDeletionError{Side: "destination", Deletes: 2, Managed: 2, Empty: true}, StatusClientSideError, "mass-deletion guard"},
		{"auditor", sync.OpSync, nil, fmt.Errorf("%w: %w", sync.ErrAudit, cause), StatusClientSideError, "auditor"},
		{"source key without a name", sync.OpSync, nil, multi(keyErr(sync.SideSource, "render", cause)), StatusClientSideError, "no name the destination accepts"},
		{"unsafe destination key", sync.OpSync, nil, multi(keyErr(sync.SideDestination, "check", cause)), StatusClientSideError, "refuses a key's name"},
		{"name refused", sync.OpSync, nil, multi(dstKey(destination.ErrInvalidKey)), StatusClientSideError, "refuses a key's name"},
		{"value refused", sync.OpSync, nil, multi(dstKey(destination.ErrInvalidValue)), StatusClientSideError, "cannot hold a value"},

		{"destination down", sync.OpSync, nil, &sync.SideError{Side: sync.SideDestination, Op: sync.OpApply, Err: unavailable}, StatusExternalServiceError, "unavailable"},
		{"destination unlistable", sync.OpSync, nil, &sync.SideError{Side: sync.SideDestination, Op: sync.OpList, Err: cause}, StatusExternalServiceError, "listing the destination"},
		{"destination down at open", sync.OpSync, nil, &openError{side: sync.SideDestination, err: unavailable}, StatusExternalServiceError, "unavailable"},
		{"key refused by the store", sync.OpSync, nil, multi(dstKey(cause)), StatusExternalServiceError, "failed keys"},
		{"entry not ours", sync.OpRemove, nil, multi(dstKey(destination.ErrNotOwned)), StatusExternalServiceError, "not this association's"},
		{"the store's own timeout", sync.OpSync, nil, multi(dstKey(context.DeadlineExceeded)), StatusExternalServiceError, "failed keys"},

		{"cancelled", sync.OpSync, nil, context.Canceled, StatusPending, "cut short"},
		{"deadline", sync.OpRemove, nil, context.DeadlineExceeded, StatusPending, "cut short"},

		// Several failures: the most basic one names the status.
		{"client before external", sync.OpSync, nil, multi(dstKey(cause), dstKey(destination.ErrInvalidKey)), StatusClientSideError, "refuses a key's name"},
		{"store failing after the keys", sync.OpSync, nil, errors.Join(multi(dstKey(cause)), &sync.SideError{Side: sync.SideStore, Op: sync.OpSave, Err: cause}), StatusClientSideError, "state store"},
		{"store failing after a stop", sync.OpSync, nil, errors.Join(&sync.SideError{Side: sync.SideDestination, Op: sync.OpApply, Err: unavailable}, &sync.SideError{Side: sync.SideStore, Op: sync.OpSave, Err: cause}), StatusClientSideError, "state store"},
		{"external before cut short", sync.OpSync, nil, errors.Join(context.Canceled, multi(dstKey(cause))), StatusExternalServiceError, "failed keys"},
		{"vault first", sync.OpSync, nil, errors.Join(&sync.SideError{Side: sync.SideStore, Op: sync.OpSave, Err: cause}, &sync.SideError{Side: sync.SideSource, Op: sync.OpList, Err: cause}), StatusInternalVaultError, "Vault"},
		// A failure takes precedence over what the report counts.
		{"failure with conflicts", sync.OpSync, rep(sync.Totals{Conflicts: 1, Failed: 1}), multi(dstKey(cause)), StatusExternalServiceError, "failed keys"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, msg := statusOf(tt.op, tt.rep, tt.err)
			if got != tt.want || !strings.Contains(msg, tt.msg) {
				t.Errorf("statusOf = %s %q, want %s with %q", got, msg, tt.want, tt.msg)
			}
			if strings.ContainsAny(msg, "\r\n") || msg == "" {
				t.Errorf("the message is not one line: %q", msg)
			}
			if tt.err != nil && !strings.HasSuffix(msg, sync.OneLine(tt.err)) {
				t.Errorf("the message %q does not end with the error's line", msg)
			}
		})
	}
}
