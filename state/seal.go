package state

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/secretsync/secretsync/internal/fingerprint"
)

// KeySealer seals the fingerprint key of a [File] with a key kept
// elsewhere (a Vault Transit key, a KMS key), so that the key file alone is
// of no use: see FileOptions.Sealer. vaultkv.Transit is one.
//
// Implementations must be safe for concurrent use. They must never put the
// key in an error or a log.
type KeySealer interface {
	// Kind names the kind of sealer, for example "vault-transit". It is
	// written in the key file, and a key file sealed by another kind is
	// refused with [ErrSealerMismatch]. It must not be empty.
	Kind() string
	// Seal returns key (32 bytes) sealed, as text (valid UTF-8, for
	// example "vault:v1:…" or base64). The text must not reveal the key.
	Seal(ctx context.Context, key []byte) (sealed string, err error)
	// Unseal returns the key that sealed holds.
	Unseal(ctx context.Context, sealed string) (key []byte, err error)
}

// KeyRewrapper is an optional interface of a [KeySealer]: Rewrap seals
// sealed again under the sealer's newest key version (after a rotation),
// without handing the key to the caller. [File.RewrapKey] uses it when the
// sealer has it, and Unseal then Seal otherwise.
type KeyRewrapper interface {
	Rewrap(ctx context.Context, sealed string) (string, error)
}

// KeyFileFormat is the version of the sealed key file layout (see "Sealed
// key" on [File]).
const KeyFileFormat = 1

// Errors of a sealed fingerprint key.
var (
	// ErrSealer: the key sealer failed, so the fingerprint key cannot be
	// used: access to the sealing key was lost (denied, deleted, server
	// unreachable or sealed) or the sealed key cannot be opened with it.
	// It comes inside a [*SealError]. The key file is left as it is; the
	// store never makes a new key in its place.
	ErrSealer = errors.New("state: fingerprint key sealer failed")
	// ErrSealerMismatch: the key file is sealed but no FileOptions.Sealer
	// is configured, or one of another kind; or RewrapKey was called on a
	// File without a sealer.
	ErrSealerMismatch = errors.New("state: fingerprint key sealer mismatch")
)

// SealError reports a sealer that failed on the fingerprint key.
// errors.Is(err, ErrSealer) holds for it, and Err is the sealer's error
// (errors.Is and errors.As reach it, for example a Vault permission error).
type SealError struct {
	Path string // the key file
	Kind string // the sealer's kind
	Op   string // "seal", "unseal" or "rewrap"
	Err  error  // the sealer's error
}

func (e *SealError) Error() string {
	return fmt.Sprintf("state: %s: %s the fingerprint key with %s: %v (the key file is left as it is)", e.Path, e.Op, e.Kind, e.Err)
}

// Is reports whether target is [ErrSealer].
func (e *SealError) Is(target error) bool { return target == ErrSealer }

// Unwrap returns the sealer's error.
func (e *SealError) Unwrap() error { return e.Err }

// sealedKeyFile is the content of a sealed key file.
type sealedKeyFile struct {
	Format int    `json:"format"`
	Sealer string `json:"sealer"`
	Sealed string `json:"sealed"`
}

// isSealedKeyFile reports whether data looks like a sealed key file rather
// than a plain key: a plain key is exactly 32 bytes, and a sealed key file is
// always longer and starts with '{'.
func isSealedKeyFile(data []byte) bool {
	return len(data) != fingerprint.KeySize && bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte("{"))
}

// decodeSealedKeyFile parses a sealed key file at path.
func decodeSealedKeyFile(path string, data []byte) (*sealedKeyFile, error) {
	var k sealedKeyFile
	if err := json.Unmarshal(data, &k); err != nil {
		return nil, &CorruptError{Path: path, Reason: "not a valid sealed key file", Err: err}
	}
	if k.Format != KeyFileFormat {
		return nil, &CorruptError{Path: path, Reason: fmt.Sprintf("sealed key file format %d, this version reads format %d", k.Format, KeyFileFormat), Err: ErrUnknownFormat}
	}
	if k.Sealer == "" || k.Sealed == "" {
		return nil, &CorruptError{Path: path, Reason: "sealed key file without its sealer or sealed key"}
	}
	return &k, nil
}

// encodeSealedKeyFile returns the content of a sealed key file.
func encodeSealedKeyFile(kind, sealed string) ([]byte, error) {
	b, err := encodeJSON(sealedKeyFile{Format: KeyFileFormat, Sealer: kind, Sealed: sealed})
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// sealErr wraps a sealer's error; a done ctx is returned as it is.
func (f *File) sealErr(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return &SealError{Path: f.keyPath, Kind: f.sealer.Kind(), Op: op, Err: err}
}

// unseal opens a sealed key file's content with the File's sealer.
func (f *File) unseal(ctx context.Context, k *sealedKeyFile) ([]byte, error) {
	if f.sealer == nil {
		return nil, fmt.Errorf("state: %s: the fingerprint key is sealed by %q but FileOptions.Sealer is not set: %w", f.keyPath, k.Sealer, ErrSealerMismatch)
	}
	if kind := f.sealer.Kind(); kind != k.Sealer {
		return nil, fmt.Errorf("state: %s: the fingerprint key is sealed by %q but FileOptions.Sealer is %q: %w", f.keyPath, k.Sealer, kind, ErrSealerMismatch)
	}
	key, err := f.sealer.Unseal(ctx, k.Sealed)
	if err != nil {
		return nil, f.sealErr(ctx, "unseal", err)
	}
	if len(key) != fingerprint.KeySize {
		clear(key)
		return nil, &CorruptError{Path: f.keyPath, Reason: fmt.Sprintf("the sealed fingerprint key unseals to %d bytes, want %d", len(key), fingerprint.KeySize), Err: fingerprint.ErrKeySize}
	}
	return key, nil
}

// checkSealed makes sure that sealed, from op, is text that unseals to key,
// before it replaces a key file: a sealer that returned something else would
// lose the key.
func (f *File) checkSealed(ctx context.Context, op, sealed string, key []byte) error {
	if sealed == "" || !utf8.ValidString(sealed) {
		return f.sealErr(ctx, op, errors.New("the sealer returned an empty or non-UTF-8 sealed key"))
	}
	back, err := f.sealer.Unseal(ctx, sealed)
	if err != nil {
		return f.sealErr(ctx, op, fmt.Errorf("checking the new sealed key: %w", err))
	}
	defer clear(back)
	if subtle.ConstantTimeCompare(back, key) != 1 {
		return f.sealErr(ctx, op, errors.New("the new sealed key does not unseal to the key"))
	}
	return nil
}

// writeSealed seals key, checks the result and replaces the key file with it.
func (f *File) writeSealed(ctx context.Context, key []byte) error {
	sealed, err := f.sealer.Seal(ctx, key)
	if err != nil {
		return f.sealErr(ctx, "seal", err)
	}
	if err := f.checkSealed(ctx, "seal", sealed, key); err != nil {
		return err
	}
	data, err := encodeSealedKeyFile(f.sealer.Kind(), sealed)
	if err != nil {
		return err
	}
	return f.writeKeyFile(data)
}

// RewrapKey seals the fingerprint key again under the sealer's newest key
// version, after the sealing key was rotated (for Vault Transit: after
// transit/keys/<name>/rotate, so that the key file moves from vault:v1 to
// vault:v2 and min_decryption_version can be raised). It uses the sealer's
// Rewrap when it is a [KeyRewrapper], and Unseal then Seal otherwise. The
// new sealed key is checked to unseal to the same key, then the key file is
// replaced atomically (through a symbolic link, its target). A key file
// that is still plain is sealed, as FingerprintKey does; a missing one is
// made when the state holds no baselines.
//
// Without FileOptions.Sealer it returns an error wrapping
// [ErrSealerMismatch]. A sealer failure is a [*SealError] and leaves the
// key file as it was. A done ctx returns ctx.Err() before any I/O; after
// Close, [ErrClosed]. Calling it when nothing was rotated is harmless: the
// file is rewritten only if the sealed key changed.
func (f *File) RewrapKey(ctx context.Context) error {
	f.keyMu.Lock()
	defer f.keyMu.Unlock()
	if f.sealer == nil {
		return fmt.Errorf("state: rewrap key: FileOptions.Sealer is not set: %w", ErrSealerMismatch)
	}
	key, err := f.loadKey(ctx)
	if err != nil {
		return err
	}
	defer clear(key)
	data, err := readKeyFile(f.keyPath)
	if err != nil {
		return err
	}
	k, err := decodeSealedKeyFile(f.keyPath, data)
	if err != nil {
		return err
	}
	var sealed string
	if rw, ok := f.sealer.(KeyRewrapper); ok {
		sealed, err = rw.Rewrap(ctx, k.Sealed)
	} else {
		sealed, err = f.sealer.Seal(ctx, key)
	}
	if err != nil {
		return f.sealErr(ctx, "rewrap", err)
	}
	if sealed == k.Sealed {
		return nil
	}
	if err := f.checkSealed(ctx, "rewrap", sealed, key); err != nil {
		return err
	}
	out, err := encodeSealedKeyFile(f.sealer.Kind(), sealed)
	if err != nil {
		return err
	}
	if err := f.writeKeyFile(out); err != nil {
		return fmt.Errorf("state: rewrap key: %w", err)
	}
	return nil
}
