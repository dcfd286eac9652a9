package vaultkv

// KV version 1: no versions, no check-and-set, no metadata. Reads are GET
// mount/<path>, writes POST mount/<path> (the whole secret), deletes
// DELETE mount/<path> (permanent), lists LIST mount/<path>/. See "KV
// version 1" in the package documentation for what this gives and what it
// cannot.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"strings"

	"github.com/secretsync/secretsync/destination"
)

const (
	// fingerprintBytes is how much of the SHA-256 a KV v1 version keeps:
	// 96 bits, so that an out-of-band change goes unnoticed by a collision
	// with odds of 2^-96.
	fingerprintBytes = 12
)

// initV1 prepares kv for a KV version 1 mount: the salt of its
// fingerprints, and the options only KV v1 uses.
func (kv *KV) initV1() error {
	if err := checkNameV1(kv.opt.Path); err != nil {
		return invalidOption("Path", err)
	}
	if kv.opt.Layout == SecretKey && kv.opt.OwnerField == kv.opt.Field {
		return fmt.Errorf("vaultkv: %w: OwnerField and Field are both %q (on KV v1 the ownership marker is a field of the secret beside the value)", ErrInvalidOptions, kv.opt.Field)
	}
	kv.salt = make([]byte, 32)
	if _, err := rand.Read(kv.salt); err != nil {
		return fmt.Errorf("vaultkv: fingerprint salt: %w", err)
	}
	return nil
}

// fingerprint returns the version that a KV v1 store lists for value: the
// first 96 bits of SHA-256(salt || value), in hex, where salt is 32
// random bytes drawn by New and kept in memory only. Versions end up in
// logs and errors (a Change prints its Expect); without the salt nobody
// can test a guess of the value against one. The other side of the coin:
// a version means something only to the KV that listed it, and a value
// changed and changed back lists the version it had.
func (kv *KV) fingerprint(value string) string {
	h := sha256.New()
	h.Write(kv.salt)
	h.Write([]byte(value))
	return hex.EncodeToString(h.Sum(nil)[:fingerprintBytes])
}

// checkNameV1 refuses, beyond checkName, a name with ".." anywhere in it
// ("a..b", `..\x`): KV v1 keeps a secret under its path as the storage
// key, and Vault's storage refuses any key holding ".." as a relative
// path. The error wraps destination.ErrInvalidKey.
func checkNameV1(name string) error {
	if strings.Contains(name, "..") {
		return fmt.Errorf("%w: %q holds \"..\", which KV version 1 refuses in a path", destination.ErrInvalidKey, name)
	}
	return nil
}

// v1Path returns mount/<Path>/<key>, or mount/<Path> for an empty key. A
// non-empty key must have passed checkName (see keyPath).
func (kv *KV) v1Path(key string) string { return kv.keyPath("", key) }

// readV1 reads the secret at p: its fields, nil when there is none.
func (kv *KV) readV1(ctx context.Context, p string) (map[string]any, error) {
	data, err := read(ctx, kv.conn, p)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		return nil, fmt.Errorf("vaultkv: read %s: %w", p, err)
	}
	return data, nil
}

// signatureV1 returns a salted fingerprint of the whole secret at p, for
// Poll: it changes whenever any field does. "absent" when there is none.
func (kv *KV) signatureV1(ctx context.Context, p string) (string, error) {
	data, err := kv.readV1(ctx, p)
	if err != nil || data == nil {
		return "absent", err
	}
	b, err := json.Marshal(data) // map keys sorted: deterministic
	if err != nil {
		return "", fmt.Errorf("vaultkv: poll %s: %w", p, err)
	}
	return kv.fingerprint(string(b)), nil
}

// listPathV1 lists the fields of the secret at Mount/Path.
func (kv *KV) listPathV1(ctx context.Context) (map[string]destination.Secret, error) {
	data, err := kv.readV1(ctx, kv.v1Path(""))
	if err != nil {
		return nil, err
	}
	out := make(map[string]destination.Secret, len(data))
	for k, v := range data {
		val := text(v)
		out[k] = destination.Secret{Value: val, Version: kv.fingerprint(val)}
	}
	return out, nil
}

// applyPathV1 applies every change in one write of the whole secret,
// after reading it again: the read just before the write is what each
// change's Expect is checked against.
func (kv *KV) applyPathV1(ctx context.Context, changes []destination.Change) ([]error, error) {
	errs := make([]error, len(changes))
	unlock, err := kv.locks.Lock(ctx, "")
	if err != nil {
		return stopped(errs, changes, 0, err), err
	}
	defer unlock()
	p := kv.v1Path("")
	data, err := kv.readV1(ctx, p)
	if err != nil {
		return stopped(errs, changes, 0, err), err
	}
	next := maps.Clone(data)
	if next == nil {
		next = map[string]any{}
	}
	carried := make([]bool, len(changes))
	writes := 0
	for i, c := range changes {
		if err := checkField(c.Key); err != nil {
			errs[i] = &destination.KeyError{Op: opOf(c), Key: c.Key, Err: err}
			continue
		}
		if err := checkValue(c); err != nil {
			errs[i] = &destination.KeyError{Op: opOf(c), Key: c.Key, Err: err}
			continue
		}
		old, exists := data[c.Key]
		switch {
		case c.Delete && !exists:
			// already gone
		case c.Expect == "" && exists, c.Expect != "" && (!exists || c.Expect != kv.fingerprint(text(old))):
			errs[i] = &destination.KeyError{Op: opOf(c), Key: c.Key, Err: destination.ErrConflict}
		case c.Delete:
			delete(next, c.Key)
			carried[i] = true
			writes++
		case !same(old, c.Value) || !exists:
			next[c.Key] = c.Value
			carried[i] = true
			writes++
		}
	}
	if writes == 0 {
		return errs, nil
	}
	switch {
	case len(next) == 0:
		// KV v1 refuses a secret without fields: the last one goes with
		// the secret.
		err = remove(ctx, kv.conn, p)
	case data == nil:
		_, err = write(ctx, kv.conn, p, capCreate, next)
	default:
		_, err = write(ctx, kv.conn, p, capUpdate, next)
	}
	if err == nil {
		return errs, nil
	}
	// One request carries every change: each gets its error.
	return failCarried(ctx, errs, changes, carried, p, err)
}

// listKeysV1 lists every secret under the prefix, recursively, and reads
// each. It stops at the first error, cancelling the reads in flight.
func (kv *KV) listKeysV1(ctx context.Context) (map[string]destination.Secret, error) {
	keys, err := kv.walk(ctx, "")
	if err != nil {
		return nil, err
	}
	secrets := make([]map[string]any, len(keys))
	if err := kv.each(ctx, keys, func(ctx context.Context, i int, k string) (err error) {
		secrets[i], err = kv.readV1(ctx, kv.v1Path(k))
		return err
	}); err != nil {
		return nil, err
	}
	out := make(map[string]destination.Secret, len(keys))
	for i, k := range keys {
		if secrets[i] == nil {
			continue // deleted since the LIST
		}
		val := text(secrets[i][kv.opt.Field])
		out[k] = destination.Secret{Value: val, Version: kv.fingerprint(val)}
	}
	return out, nil
}

// ownedV1 reports whether a KV v1 secret's data carries this sync's
// ownership marker.
func (kv *KV) ownedV1(data map[string]any) bool {
	owner, _ := data[kv.opt.OwnerField].(string)
	return owner == kv.opt.Owner
}

// putKeyV1 writes one secret: read it again, check Expect and the marker,
// write the value and the marker together (one request, so that no crash
// leaves a secret of ours without its marker), keeping its other fields.
func (kv *KV) putKeyV1(ctx context.Context, c destination.Change) error {
	unlock, err := kv.locks.Lock(ctx, c.Key)
	if err != nil {
		return err
	}
	defer unlock()
	p := kv.v1Path(c.Key)
	data, err := kv.readV1(ctx, p)
	if err != nil {
		return err
	}
	exists := data != nil
	switch {
	case c.Expect == "" && exists:
		return destination.ErrConflict
	case c.Expect != "" && (!exists || c.Expect != kv.fingerprint(text(data[kv.opt.Field]))):
		return destination.ErrConflict
	case exists && !kv.ownedV1(data) && !kv.opt.AdoptUnowned:
		return destination.ErrNotOwned
	case exists && kv.ownedV1(data) && same(data[kv.opt.Field], c.Value):
		return nil // nothing would change
	}
	next := maps.Clone(data)
	if next == nil {
		next = map[string]any{}
	}
	next[kv.opt.Field] = c.Value
	next[kv.opt.OwnerField] = kv.opt.Owner
	capability := capUpdate
	if !exists {
		capability = capCreate
	}
	_, err = write(ctx, kv.conn, p, capability, next)
	return err
}

// deleteKeyV1 deletes one secret, permanently, after reading it again to
// check Expect and the marker.
func (kv *KV) deleteKeyV1(ctx context.Context, c destination.Change) error {
	unlock, err := kv.locks.Lock(ctx, c.Key)
	if err != nil {
		return err
	}
	defer unlock()
	p := kv.v1Path(c.Key)
	data, err := kv.readV1(ctx, p)
	if err != nil {
		return err
	}
	// Expect first, as for a put: a secret that another writer replaced
	// (dropping the marker, as `vault kv put` does) is a change since it
	// was read, and the engine reads it again.
	switch {
	case data == nil:
		return nil // already gone
	case c.Expect != kv.fingerprint(text(data[kv.opt.Field])):
		return destination.ErrConflict
	case !kv.ownedV1(data) && !kv.opt.AdoptUnowned:
		return destination.ErrNotOwned
	}
	return remove(ctx, kv.conn, p)
}
