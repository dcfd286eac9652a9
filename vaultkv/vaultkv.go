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
)

// Layout says how keys map onto KV v2 secrets.
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
// sync, in the SecretKey layout. Its value is Options.Owner.
const OwnerKey = "secretsync-owner"

// Options configure a KV. Mount is required, and Path for SecretPath.
type Options struct {
	// Mount is the KV v2 mount, for example "secret".
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
	// AdoptUnowned lets the sync overwrite and delete secrets that lack the
	// ownership marker (SecretKey). Off by default.
	AdoptUnowned bool
	// Destroy destroys the deleted version instead of soft-deleting it
	// (SecretKey).
	Destroy bool
	// DeleteMetadata deletes a secret's metadata and every version
	// (SecretKey). It is not check-and-set: a write racing it between the
	// version check and the delete is lost.
	DeleteMetadata bool
	// Concurrency bounds the reads in flight while listing (SecretKey);
	// 0 means 16.
	Concurrency int
	// PollInterval is how often Notify polls Vault for changes (Vault
	// Community Edition has no change events); 0 means 5 s.
	PollInterval time.Duration
}

// KV is a HashiCorp Vault KV v2 secret store used as a sync source or
// destination. It is safe for concurrent use.
type KV struct {
	conn *connection.Conn
	opt  Options

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
	// unless stale says it must be read again.
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

// New checks that opt.Mount is a KV v2 mount and returns the store. The
// check reads sys/internal/ui/mounts/<mount>, which any token with a
// capability under the mount may read.
func New(ctx context.Context, conn *connection.Conn, opt Options) (*KV, error) {
	opt, err := opt.normalize()
	if err != nil {
		return nil, err
	}
	kv := &KV{conn: conn, opt: opt}
	kv.mu.keys = map[string]keyInfo{}
	if err := kv.checkMount(ctx); err != nil {
		return nil, err
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
	// ErrNotKVv2: the mount is not a KV version 2 mount.
	ErrNotKVv2 = errors.New("vaultkv: not a KV version 2 mount")
)

func (kv *KV) checkMount(ctx context.Context) error {
	return checkMount(ctx, kv.conn, kv.opt.Mount)
}

// checkMount checks that mount is a KV version 2 mount.
func checkMount(ctx context.Context, conn *connection.Conn, mount string) error {
	p := "sys/internal/ui/mounts/" + mount
	body, err := read(ctx, conn, p)
	if errors.Is(err, connection.ErrPermissionDenied) {
		// Vault answers 403 both for a mount that does not exist and for
		// one the token has no capability under.
		return fmt.Errorf("vaultkv: mount %q does not exist, or the token has no capability under it: %w", mount, err)
	}
	if err != nil {
		return fmt.Errorf("vaultkv: check mount %q: %w", mount, err)
	}
	if body == nil {
		return fmt.Errorf("%w: no mount at %q", ErrNotKVv2, mount)
	}
	typ, _ := body["type"].(string)
	version := ""
	if o, ok := body["options"].(map[string]any); ok {
		version, _ = o["version"].(string)
	}
	if typ != "kv" || version != "2" {
		if typ == "kv" {
			typ = "kv version " + strings.TrimSpace(version+" ")
			if version == "" {
				typ = "kv version 1"
			}
		}
		return fmt.Errorf("%w: mount %q is %s", ErrNotKVv2, mount, typ)
	}
	return nil
}

// Capabilities reports that the SecretPath layout writes a round's changes
// in one check-and-set write.
func (kv *KV) Capabilities() destination.Capabilities {
	return destination.Capabilities{Atomic: kv.opt.Layout == SecretPath}
}

// String describes the store.
func (kv *KV) String() string {
	return fmt.Sprintf("vault kv-v2 %s/%s (%s)", kv.opt.Mount, kv.opt.Path, kv.opt.Layout)
}

// List returns every key with its value and version. In the SecretPath
// layout all keys share the secret's version.
func (kv *KV) List(ctx context.Context) (map[string]destination.Secret, error) {
	if kv.opt.Layout == SecretPath {
		return kv.listPath(ctx)
	}
	return kv.listKeys(ctx)
}

// Apply applies changes with check-and-set and returns one result per
// change, in order: nil, or a destination.KeyError wrapping
// destination.ErrConflict (the key changed since it was read),
// destination.ErrNotOwned (SecretKey: a secret without the marker),
// destination.ErrInvalidKey, destination.ErrInvalidValue (a value that is
// not valid UTF-8), or the error of the request. When the call stops part
// way (a cancelled ctx, or Vault unavailable: destination.ErrUnavailable),
// it still returns one result per change together with the call error;
// see "Errors and partial results" in the package documentation.
func (kv *KV) Apply(ctx context.Context, changes []destination.Change) ([]error, error) {
	if err := ctx.Err(); err != nil {
		return stopped(make([]error, len(changes)), changes, 0, err), err
	}
	if kv.opt.Layout == SecretPath {
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
	kv.mu.data, kv.mu.version, kv.mu.known = data, version, true
	kv.mu.Unlock()
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
		// One write carries every change: each gets its error, which says
		// when the write may have landed.
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
	nv := version + 1
	if v := intOf(resp["version"]); v > 0 {
		nv = v
	}
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
