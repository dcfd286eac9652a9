package awssm

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/secretsync/secretsync/destination"
)

// Apply applies each change to the secret its key names, in order (see
// the package documentation for the requests each takes and the race
// that remains). Each result is nil, or a *destination.KeyError wrapping
// destination.ErrConflict, ErrNotOwned, ErrInvalidKey, ErrInvalidValue,
// ErrUnavailable or the SDK's error (AccessDeniedException among them).
// Apply stops at a cancelled ctx, at the first error matching
// destination.ErrUnavailable, at credentials AWS refuses, or when the
// Destination is closed: the changes applied before keep their nil
// result, the change in flight gets its error, the others the stopping
// error, which is also returned as the call's error.
func (d *Destination) Apply(ctx context.Context, changes []destination.Change) ([]error, error) {
	return destination.ApplyEach(ctx, changes, d.apply, stops)
}

// stops reports an error after which no other change can succeed
// either: a closed Destination, or credentials AWS refuses.
func stops(err error) bool { return errors.Is(err, errClosed) || errors.Is(err, errRefused) }

func (d *Destination) apply(ctx context.Context, c destination.Change) error {
	if d.closed.Load() {
		return errClosed
	}
	if err := CheckKey(c.Key); err != nil {
		return err
	}
	if !c.Delete {
		if err := checkValue(c.Value); err != nil {
			return err
		}
	}
	unlock, err := d.locks.Lock(ctx, c.Key)
	if err != nil {
		return err
	}
	defer unlock()
	switch {
	case c.Delete:
		return d.delete(ctx, c)
	case c.Expect == "":
		return d.create(ctx, c)
	default:
		return d.update(ctx, c)
	}
}

// CheckKey reports whether key can name a secret: destination.CheckKey's
// rules (no empty, "." or ".." segment, no leading '/'), then AWS's: 1 to
// 512 bytes of ASCII letters, digits and /_+=.@-. The error wraps
// destination.ErrInvalidKey.
func CheckKey(key string) error {
	if err := destination.CheckKey(key); err != nil {
		return err
	}
	if len(key) > MaxNameLength {
		return fmt.Errorf("%w: %d bytes, longer than AWS's %d", destination.ErrInvalidKey, len(key), MaxNameLength)
	}
	if i := strings.IndexFunc(key, func(r rune) bool { return !nameChar(r) }); i >= 0 {
		return fmt.Errorf("%w: %q has a character AWS does not allow in a secret name (letters, digits and /_+=.@- only)", destination.ErrInvalidKey, key)
	}
	return nil
}

func nameChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/_+=.@-", r)
}

// NormalizeKey maps key onto AWS's naming rules: every character AWS does
// not allow becomes '_', empty path segments are dropped (so a leading,
// trailing or doubled '/' goes), and a "." or ".." segment becomes "_" or
// "__". A key that is empty afterwards, or longer than MaxNameLength, is
// refused with an error wrapping destination.ErrInvalidKey. It is
// deterministic and idempotent.
func NormalizeKey(key string) (string, error) {
	mapped := strings.Map(func(r rune) rune {
		if nameChar(r) {
			return r
		}
		return '_'
	}, strings.ToValidUTF8(key, "_"))
	var segs []string
	for seg := range strings.SplitSeq(mapped, "/") {
		switch seg {
		case "":
			continue
		case ".":
			seg = "_"
		case "..":
			seg = "__"
		}
		segs = append(segs, seg)
	}
	out := strings.Join(segs, "/")
	if err := CheckKey(out); err != nil {
		return "", err
	}
	return out, nil
}

// NormalizeKey implements destination.KeyNormalizer with the package's
// NormalizeKey.
func (d *Destination) NormalizeKey(key string) (string, error) { return NormalizeKey(key) }

// checkValue refuses a value that a SecretString cannot hold exactly.
func checkValue(v string) error {
	switch {
	case v == "":
		return fmt.Errorf("%w: empty; a SecretString holds 1 to %d bytes", destination.ErrInvalidValue, MaxValueBytes)
	case len(v) > MaxValueBytes:
		return fmt.Errorf("%w: %d bytes; a SecretString holds at most %d", destination.ErrInvalidValue, len(v), MaxValueBytes)
	case !utf8.ValidString(v):
		return fmt.Errorf("%w: not valid UTF-8, which a SecretString (JSON text) cannot carry", destination.ErrInvalidValue)
	}
	return nil
}

// newToken returns a ClientRequestToken: a random UUID (version 4). The
// SDK sends it again on each retry, so that a retried write makes one
// version.
func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

var (
	errAbsent  = fmt.Errorf("%w: the secret does not exist (or is scheduled for deletion)", destination.ErrConflict)
	errChanged = fmt.Errorf("%w: the secret's current version is not the one read", destination.ErrConflict)
	errExists  = fmt.Errorf("%w: the secret exists", destination.ErrConflict)
	errNotOurs = fmt.Errorf("%w: the secret lacks the tags %s=%s and %s of this sync", destination.ErrNotOwned, TagManagedBy, ManagedByValue, TagOwner)
)

// create writes a key that must not exist: one CreateSecret with the
// marker. When the name is taken, DescribeSecret tells why: a secret of
// ours (a conflict, unless it is our own create carried out on an
// earlier attempt), one of ours scheduled for deletion (restored, then
// written), or someone else's (ErrNotOwned).
func (d *Destination) create(ctx context.Context, c destination.Change) error {
	token := newToken()
	_, err := d.client.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name:               aws.String(c.Key),
		SecretString:       aws.String(c.Value),
		ClientRequestToken: aws.String(token),
		Tags:               d.tags,
	})
	if err == nil {
		return nil
	}
	var exists *types.ResourceExistsException
	var invalid *types.InvalidRequestException // the name is scheduled for deletion
	if !errors.As(err, &exists) && !errors.As(err, &invalid) {
		return d.fail(ctx, "create", err)
	}
	desc, err := d.describe(ctx, c.Key)
	switch {
	case isNotFound(err):
		return fmt.Errorf("%w: the secret was deleted while being created", destination.ErrConflict)
	case err != nil:
		return err
	case !d.owns(desc.Tags):
		return errNotOurs
	}
	cur := current(desc.VersionIdsToStages, stageCurrent)
	if desc.DeletedDate == nil {
		switch cur {
		case token:
			return nil // an earlier attempt of this create was carried out
		case "":
			// Ours, with no value yet: absent as far as List goes.
			return d.put(ctx, c.Key, c.Value, "", desc.Tags)
		}
		return errExists
	}
	// Ours, scheduled for deletion: the name can only be used again once
	// the secret is restored.
	if _, err := d.client.RestoreSecret(ctx, &secretsmanager.RestoreSecretInput{SecretId: aws.String(c.Key)}); err != nil {
		return d.fail(ctx, "restore", err)
	}
	if err := d.put(ctx, c.Key, c.Value, cur, desc.Tags); err != nil {
		// Schedule it for deletion again rather than leave the old value
		// visible; best effort (see the package documentation).
		if !errors.Is(err, destination.ErrConflict) {
			cctx, cancel := cleanupContext(ctx)
			defer cancel()
			_, _ = d.client.DeleteSecret(cctx, d.deleteInput(c.Key))
		}
		return err
	}
	return nil
}

// update writes a key whose current version must be c.Expect: it reads
// the secret's versions and tags just before the write, and put checks
// the version replaced just after.
func (d *Destination) update(ctx context.Context, c destination.Change) error {
	desc, err := d.describe(ctx, c.Key)
	switch {
	case isNotFound(err):
		return errAbsent
	case err != nil:
		return err
	case !d.owns(desc.Tags):
		return errNotOurs
	case desc.DeletedDate != nil:
		return errAbsent
	case current(desc.VersionIdsToStages, stageCurrent) != c.Expect:
		return errChanged
	}
	return d.put(ctx, c.Key, c.Value, c.Expect, desc.Tags)
}

// put adds a version with PutSecretValue and a fresh ClientRequestToken,
// after putting back Options.Tags when tags lack them; then it checks with
// DescribeSecret that the new version is AWSCURRENT and that the version it
// replaced (now AWSPREVIOUS) is replaced, the version read before.
func (d *Destination) put(ctx context.Context, key, value, replaced string, tags []types.Tag) error {
	if err := d.syncTags(ctx, key, tags); err != nil {
		return err
	}
	token := newToken()
	out, err := d.client.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId:           aws.String(key),
		SecretString:       aws.String(value),
		ClientRequestToken: aws.String(token),
	})
	if err != nil {
		var invalid *types.InvalidRequestException
		if isNotFound(err) || errors.As(err, &invalid) {
			return errAbsent
		}
		return d.fail(ctx, "put", err)
	}
	if v := aws.ToString(out.VersionId); v != token {
		return fmt.Errorf("awssm: put: AWS answered version %q for the request token %q", v, token)
	}
	after, err := d.describe(ctx, key)
	if err != nil {
		if isNotFound(err) {
			return fmt.Errorf("%w: the secret was deleted just after the write", destination.ErrConflict)
		}
		return fmt.Errorf("%w: written, but the version it replaced could not be checked: %w", destination.ErrConflict, err)
	}
	switch {
	case current(after.VersionIdsToStages, stageCurrent) != token:
		return fmt.Errorf("%w: written, then replaced by another writer", destination.ErrConflict)
	case current(after.VersionIdsToStages, stagePrevious) != replaced:
		return fmt.Errorf("%w: written, but over a version another writer made after the read", destination.ErrConflict)
	}
	return nil
}

// syncTags puts Options.Tags on the secret key when tags lack one of them
// or hold another value; other tags are left alone.
func (d *Destination) syncTags(ctx context.Context, key string, tags []types.Tag) error {
	have := make(map[string]string, len(tags))
	for _, t := range tags {
		have[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	var missing []types.Tag
	for _, t := range d.tags[2:] { // Options.Tags; the marker is there, or the secret is not ours
		if v, ok := have[aws.ToString(t.Key)]; !ok || v != aws.ToString(t.Value) {
			missing = append(missing, t)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if _, err := d.client.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String(key), Tags: missing}); err != nil {
		return d.fail(ctx, "tag", err)
	}
	return nil
}

// delete deletes a key whose current version must be c.Expect (a key
// already gone is a success): DescribeSecret, DeleteSecret with the
// recovery window or without recovery, and, with a recovery window,
// DescribeSecret again to check that no version came in between: if one
// did, the secret is restored and the change is a conflict.
func (d *Destination) delete(ctx context.Context, c destination.Change) error {
	desc, err := d.describe(ctx, c.Key)
	switch {
	case isNotFound(err):
		return nil
	case err != nil:
		return err
	case !d.owns(desc.Tags):
		return errNotOurs
	case desc.DeletedDate != nil:
		return nil
	case current(desc.VersionIdsToStages, stageCurrent) != c.Expect:
		return errChanged
	}
	if _, err := d.client.DeleteSecret(ctx, d.deleteInput(c.Key)); err != nil {
		var invalid *types.InvalidRequestException // scheduled for deletion meanwhile
		if isNotFound(err) || errors.As(err, &invalid) {
			return nil
		}
		return d.fail(ctx, "delete", err)
	}
	if d.force {
		return nil
	}
	after, err := d.describe(ctx, c.Key)
	if err != nil || len(after.VersionIdsToStages) == 0 {
		return nil // the deletion is done; nothing to compare with
	}
	if current(after.VersionIdsToStages, stageCurrent) != c.Expect {
		cctx, cancel := cleanupContext(ctx)
		defer cancel()
		if _, err := d.client.RestoreSecret(cctx, &secretsmanager.RestoreSecretInput{SecretId: aws.String(c.Key)}); err != nil {
			return fmt.Errorf("%w: another writer wrote the secret just before its deletion, and restoring it failed: %w", destination.ErrConflict, d.fail(cctx, "restore", err))
		}
		return fmt.Errorf("%w: another writer wrote the secret just before its deletion; it was restored", destination.ErrConflict)
	}
	return nil
}

// cleanupContext is the context of a request that undoes part of a
// change: it runs even when ctx was cancelled meanwhile, for at most
// cleanupTimeout.
func cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
}

const cleanupTimeout = 30 * time.Second

func (d *Destination) deleteInput(key string) *secretsmanager.DeleteSecretInput {
	in := &secretsmanager.DeleteSecretInput{SecretId: aws.String(key)}
	if d.force {
		in.ForceDeleteWithoutRecovery = aws.Bool(true)
	} else {
		in.RecoveryWindowInDays = aws.Int64(d.recovery)
	}
	return in
}

func (d *Destination) describe(ctx context.Context, key string) (*secretsmanager.DescribeSecretOutput, error) {
	out, err := d.client.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(key)})
	if err != nil {
		if isNotFound(err) {
			return nil, err
		}
		return nil, d.fail(ctx, "describe", err)
	}
	return out, nil
}

func isNotFound(err error) bool {
	var nf *types.ResourceNotFoundException
	return errors.As(err, &nf)
}
