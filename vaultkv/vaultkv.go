package vaultkv

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	gosync "sync"
	"time"

	"github.com/secretsync/secretsync/connection"
	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/internal/keylock"
)

// Layout says how keys map onto KV secrets.
type Layout uint8

// Layouts. The zero value is SecretPath.
const (
	// SecretPath keeps every key as a field of one secret at Mount/Path.
	// Fields this sync does not manage are preserved.
	SecretPath Layout = iota
	// SecretKey keeps one secret per key under Mount/Path/, the value in
	// Field, and an ownership marker in custom_metadata.
	SecretKey
)

// String returns "secret-path" or "secret-key".
func (l Layout) String() string {
	switch l {
	case SecretPath:
		return "secret-path"
	case SecretKey:
		return "secret-key"
	}
	return fmt.Sprintf("layout(%d)", uint8(l))
}

// MarshalText encodes the layout by name.
func (l Layout) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText decodes "secret-path" or "secret-key".
func (l *Layout) UnmarshalText(b []byte) error {
	switch string(b) {
	case "secret-path":
		*l = SecretPath
	case "secret-key":
		*l = SecretKey
	default:
		return fmt.Errorf("vaultkv: unknown layout %q (want secret-path or secret-key)", b)
	}
	return nil
}

// OwnerKey is the custom_metadata key that marks a secret as owned by a
// sync, in the SecretKey layout on a KV v2 mount. Its value is
// Options.Owner. On a KV v1 mount, which has no custom_metadata, the
// marker is a field of the secret's data, named by Options.OwnerField
// (default OwnerKey too).
const OwnerKey = "secretsync-owner"

// Options configure a KV. Mount is required, and Path for SecretPath.
type Options struct {
	// Mount is the KV mount, for example "secret". New detects its
	// version (1 or 2).
	Mount string
	// Path is the secret (SecretPath) or the prefix under which secrets
	// live (SecretKey; empty means the whole mount).
	Path   string
	Layout Layout
	// Field holds the value in the SecretKey layout; "" means "value".
	Field string
	// Owner is the ownership marker's value; "" means "secretsync". Use the
	// sync's name so that two syncs never take each other's secrets.
	Owner string
	// OwnerField is the data field that holds the ownership marker on a
	// KV v1 mount in the SecretKey layout (KV v1 has no custom_metadata);
	// "" means OwnerKey. It must differ from Field. Ignored on KV v2.
	OwnerField string
	// AdoptUnowned lets the sync overwrite and delete secrets that lack the
	// ownership marker (SecretKey). Off by default.
	AdoptUnowned bool
	// Destroy destroys the deleted version instead of soft-deleting it
	// (SecretKey). On KV v1 every delete is permanent, with or without it.
	Destroy bool
	// DeleteMetadata deletes a secret's metadata and every version
	// (SecretKey). It is not check-and-set: a write racing it between the
	// version check and the delete is lost. On KV v1 every delete is
	// permanent, with or without it.
	DeleteMetadata bool
	// Concurrency bounds the reads in flight while listing (SecretKey);
	// 0 means 16.
	Concurrency int
	// PollInterval is how often Notify polls Vault for changes (Vault
	// Community Edition has no change events); 0 means 5 s.
	PollInterval time.Duration
}

// KV is a HashiCorp Vault KV secret store (a version 2 or a version 1
// mount) used as a sync source or destination. It is safe for concurrent
// use.
type KV struct {
	conn *connection.Conn
	opt  Options
	// mount is what New read of the mount.
	mount mountInfo
	// KV v1 only: salt keys the fingerprints listed as versions, and
	// locks serializes the read-check-write of each key (of the secret,
	// in the SecretPath layout: key "") among the calls of this KV, so
	// that two of its own writers never overwrite each other; other
	// processes are not held back (see "KV version 1" in the package
	// documentation).
	salt  []byte
	locks keylock.Map

	mu sync_
}

type sync_ struct {
	gosync.Mutex
	// SecretPath: the data and version last read or written.
	data    map[string]any
	version int // 0: no secret (or none read yet)
	known   bool
	// SecretKey: per key, what was last read or written. After a List,
	// listed is set and a key missing from keys is known to be absent,
	// unless stale says it must be read again. Made at the first use: a
	// SecretPath KV never needs it.
	keys   map[string]keyInfo
	listed bool
	stale  map[string]bool
}

type keyInfo struct {
	version int            // current version; with deleted, of the deleted version
	deleted bool           // the latest version is deleted or destroyed
	owned   bool           // carries the marker
	data    map[string]any // the secret's data (to preserve other fields)
}

var (
	_ destination.Destination = (*KV)(nil)
	_ destination.Describer   = (*KV)(nil)
)

// New checks that options.Mount is a KV mount, detects its version, and
// returns the store. The check reads sys/internal/ui/mounts/<mount>, which
// any token with a capability under the mount may read, once per
// connection: the KVs and stores made on one connection share one read,
// and a KV mount's answer serves those made within the next minute. A
// mount that is not KV gives a *MountError (matching ErrNotKV); options that cannot be
// used give ErrInvalidOptions.
// A nil options means the zero Options.
func New(ctx context.Context, conn *connection.Conn, options *Options) (*KV, error) {
	var opt Options
	if options != nil {
		opt = *options
	}
	opt, err := opt.normalize()
	if err != nil {
		return nil, err
	}
	kv := &KV{conn: conn, opt: opt}
	m, err := checkMount(ctx, conn, opt.Mount)
	if err != nil {
		return nil, err
	}
	if m.typ != "kv" || (m.version != 1 && m.version != 2) {
		return nil, &MountError{Mount: opt.Mount, Type: m.typ, Version: m.version, Need: "a KV mount (version 1 or 2)"}
	}
	kv.mount = m
	if m.version == 1 {
		if err := kv.initV1(); err != nil {
			return nil, err
		}
	}
	return kv, nil
}

// Sentinel errors of this package.
var (
	// ErrInvalidOptions: New, NewStore, NewLock or Policy was given
	// unusable options. A Mount or Path that would make a request leave
	// its place (see destination.CheckKey) gives an error that matches
	// destination.ErrInvalidKey too.
	ErrInvalidOptions = errors.New("invalid options")
	// ErrNotKV: there is no mount at the path, or it is not a KV mount
	// (New, NewStore). The error is a *MountError.
	ErrNotKV = errors.New("vaultkv: not a KV mount")
	// ErrNotKVv2: the mount is not a KV version 2 mount. NewStore needs
	// one (its saves are check-and-set); New accepts KV version 1 too.
	// The error is a *MountError.
	ErrNotKVv2 = errors.New("vaultkv: not a KV version 2 mount")
)

// MountError is the error of New and NewStore for a mount that cannot
// serve them: no mount or not a KV mount (New, NewStore), or a KV version
// 1 mount (NewStore, whose saves need check-and-set). It always matches
// ErrNotKVv2, and ErrNotKV too when the mount is not KV. Retrying is not
// useful.
type MountError struct {
	// Mount is the mount's path, as configured.
	Mount string
	// Type is the mount's type ("kv", "transit", ...); "" when there is no
	// mount at the path.
	Type string
	// Version is the KV version (1 or 2); 0 when the mount is not KV.
	Version int
	// Need says what the caller needed, for example "a KV version 2 mount
	// (the state store's saves are check-and-set)".
	Need string
}

// Error says which mount, what it is, and what was needed.
func (e *MountError) Error() string {
	is := "is " + e.Type
	switch {
	case e.Type == "":
		is = "does not exist"
	case e.Type == "kv":
		is = fmt.Sprintf("is KV version %d", e.Version)
	}
	return fmt.Sprintf("vaultkv: mount %q %s; need %s", e.Mount, is, e.Need)
}

// Unwrap returns ErrNotKVv2, and ErrNotKV when the mount is not KV.
func (e *MountError) Unwrap() []error {
	if e.Type != "kv" {
		return []error{ErrNotKV, ErrNotKVv2}
	}
	return []error{ErrNotKVv2}
}

// readMount reads what Vault says of mount, through
// sys/internal/ui/mounts/<mount>, which any token with a capability under
// the mount may read.
func readMount(ctx context.Context, conn *connection.Conn, mount string) (mountInfo, error) {
	p := "sys/internal/ui/mounts/" + mount
	body, err := read(ctx, conn, p)
	if errors.Is(err, connection.ErrPermissionDenied) {
		// Vault answers 403 both for a mount that does not exist and for
		// one the token has no capability under.
		return mountInfo{}, fmt.Errorf("vaultkv: mount %q does not exist, or the token has no capability under it: %w", mount, err)
	}
	if err != nil {
		return mountInfo{}, fmt.Errorf("vaultkv: check mount %q: %w", mount, err)
	}
	return decodeMount(body), nil
}

// MountAccessor returns the accessor of the KV mount (for example
// "kv_1a2b3c4d"), as Vault reported it when New checked the mount. Unlike
// the mount's path, it survives a remount, which is why package registry's
// name templates offer it as {{ .MountAccessor }}.
func (kv *KV) MountAccessor() string { return kv.mount.accessor }

// KVVersion returns the version of the KV mount, 1 or 2, as New detected
// it; PolicySpec's KVAccess.Version takes it.
func (kv *KV) KVVersion() int { return kv.mount.version }

// Capabilities reports that the SecretPath layout writes a round's changes
// in one write, and that a KV v1 mount has no check-and-set.
func (kv *KV) Capabilities() destination.Capabilities {
	return destination.Capabilities{Atomic: kv.opt.Layout == SecretPath, NoCheckAndSet: kv.v1()}
}

// v1 reports a KV version 1 mount.
func (kv *KV) v1() bool { return kv.mount.version == 1 }

// String describes the store.
func (kv *KV) String() string {
	return fmt.Sprintf("vault kv-v%d %s/%s (%s)", kv.mount.version, kv.opt.Mount, kv.opt.Path, kv.opt.Layout)
}

// List returns every key with its value and version. On KV v2, in the
// SecretPath layout all keys share the secret's version. On KV v1 each
// key's version is a fingerprint of its value (see "KV version 1" in the
// package documentation).
func (kv *KV) List(ctx context.Context) (map[string]destination.Secret, error) {
	switch {
	case kv.v1() && kv.opt.Layout == SecretPath:
		return kv.listPathV1(ctx)
	case kv.v1():
		return kv.listKeysV1(ctx)
	case kv.opt.Layout == SecretPath:
		return kv.listPath(ctx)
	}
	return kv.listKeys(ctx)
}

// Apply applies changes with check-and-set (on KV v1: checked by a read
// just before the write, see "KV version 1" in the package documentation)
// and returns one result per change, in order: nil, or a
// destination.KeyError wrapping destination.ErrConflict (the key changed
// since it was read), destination.ErrNotOwned (SecretKey: a secret
// without the marker),
// destination.ErrInvalidKey, destination.ErrInvalidValue (a value that is
// not valid UTF-8), or the error of the request. When the call stops part
// way (a cancelled ctx, or Vault unavailable: destination.ErrUnavailable),
// it still returns one result per change together with the call error;
// see "Errors and partial results" in the package documentation.
func (kv *KV) Apply(ctx context.Context, changes []destination.Change) ([]error, error) {
	if err := ctx.Err(); err != nil {
		return stopped(make([]error, len(changes)), changes, 0, err), err
	}
	switch {
	case kv.v1() && kv.opt.Layout == SecretPath:
		return kv.applyPathV1(ctx, changes)
	case kv.opt.Layout == SecretPath:
		return kv.applyPath(ctx, changes)
	}
	return kv.applyKeys(ctx, changes)
}

// readSecret reads mount/data/p.
func (kv *KV) readSecret(ctx context.Context, p string) (secretState, error) {
	body, err := read(ctx, kv.conn, p)
	if err != nil {
		return secretState{}, err
	}
	return decodeData(body), nil
}

func (kv *KV) listPath(ctx context.Context) (map[string]destination.Secret, error) {
	p := kv.dataPath("")
	st, err := kv.readSecret(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("vaultkv: list %s: %w", p, err)
	}
	data, version := st.data, st.version
	kv.mu.Lock()
	vanished := kv.mu.known && kv.mu.version > 0 && version == 0
	kv.mu.data, kv.mu.version, kv.mu.known = data, version, true
	kv.mu.Unlock()
	if vanished {
		// A disabled mount reads as a secret that is gone: the next New
		// on this connection checks the mount again.
		forgetMount(kv.conn, p)
	}
	out := make(map[string]destination.Secret, len(data))
	v := strconv.Itoa(version)
	for k, val := range data {
		out[k] = destination.Secret{Value: text(val), Version: v}
	}
	return out, nil
}

// applyPath applies every change in one check-and-set write of the secret.
func (kv *KV) applyPath(ctx context.Context, changes []destination.Change) ([]error, error) {
	errs := make([]error, len(changes))
	kv.mu.Lock()
	known, data, version := kv.mu.known, kv.mu.data, kv.mu.version
	kv.mu.Unlock()
	p := kv.dataPath("")
	if !known {
		st, err := kv.readSecret(ctx, p)
		if err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return stopped(errs, changes, 0, cerr), cerr
			}
			err = fmt.Errorf("vaultkv: read %s: %w", p, err)
			return stopped(errs, changes, 0, err), err
		}
		data, version = st.data, st.version
	}
	cur := strconv.Itoa(version)
	next := make(map[string]any, len(data)+len(changes))
	for k, v := range data {
		next[k] = v
	}
	carried := make([]bool, len(changes)) // changes that the write carries
	writes := 0
	for i, c := range changes {
		old, exists := data[c.Key]
		if err := checkField(c.Key); err != nil {
			errs[i] = &destination.KeyError{Op: opOf(c), Key: c.Key, Err: err}
			continue
		}
		if err := checkValue(c); err != nil {
			errs[i] = &destination.KeyError{Op: opOf(c), Key: c.Key, Err: err}
			continue
		}
		switch {
		case c.Delete && !exists:
			// already gone
		case c.Expect == "" && exists, c.Expect != "" && (!exists || c.Expect != cur):
			errs[i] = &destination.KeyError{Op: opOf(c), Key: c.Key, Err: destination.ErrConflict}
		case c.Delete:
			delete(next, c.Key)
			carried[i] = true
			writes++
		default:
			if !same(old, c.Value) || !exists {
				next[c.Key] = c.Value
				carried[i] = true
				writes++
			}
		}
	}
	if writes == 0 {
		return errs, nil
	}
	capability := capUpdate
	if version == 0 {
		capability = capCreate // no secret yet (as far as the read showed)
	}
	resp, err := write(ctx, kv.conn, p, capability, map[string]any{"data": next, "options": map[string]any{"cas": version}})
	if err != nil {
		kv.forget()
		if isCASMismatch(err) {
			for i := range errs {
				if errs[i] == nil && !(changes[i].Delete && data[changes[i].Key] == nil) {
					errs[i] = &destination.KeyError{Op: opOf(changes[i]), Key: changes[i].Key, Err: destination.ErrConflict}
				}
			}
			return errs, nil
		}
		// One write carries every change: each gets its error.
		return failCarried(ctx, errs, changes, carried, p, err)
	}
	nv := decodeWrite(resp, version)
	kv.mu.Lock()
	kv.mu.data, kv.mu.version, kv.mu.known = next, nv, true
	kv.mu.Unlock()
	return errs, nil
}

// stopped gives every change from i on the error that stopped the call
// before it was attempted, and returns errs.
func stopped(errs []error, changes []destination.Change, i int, err error) []error {
	for j := i; j < len(changes); j++ {
		errs[j] = &destination.KeyError{Op: opOf(changes[j]), Key: changes[j].Key, Err: err}
	}
	return errs
}

func (kv *KV) forget() {
	kv.mu.Lock()
	kv.mu.known = false
	kv.mu.Unlock()
}

// failCarried fails the changes that one whole-secret write at p carried
// (carried[i]) with the error err of that write: each gets it as a
// *destination.KeyError that says whether the write may have landed. It
// returns errs and the call's error: ctx's when ctx is done, else one
// naming p.
func failCarried(ctx context.Context, errs []error, changes []destination.Change, carried []bool, p string, err error) ([]error, error) {
	perChange := err
	if !outcomeKnown(err) {
		perChange = fmt.Errorf("%w (the write may have been applied)", err)
	}
	for i := range changes {
		if carried[i] {
			errs[i] = &destination.KeyError{Op: opOf(changes[i]), Key: changes[i].Key, Err: perChange}
		}
	}
	if cerr := ctx.Err(); cerr != nil {
		return errs, cerr
	}
	return errs, fmt.Errorf("vaultkv: write %s: %w", p, err)
}

func opOf(c destination.Change) string {
	if c.Delete {
		return "delete"
	}
	return "put"
}

// isCASMismatch reports Vault's answer to a write whose cas did not match.
func isCASMismatch(err error) bool {
	if connection.Status(err) != http.StatusBadRequest {
		return false
	}
	s := err.Error()
	return strings.Contains(s, "check-and-set") || strings.Contains(s, "did not match the current version")
}
