package vaultkv

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/hashicorp/vault/api"

	"github.com/secretsync/secretsync/connection"
	"github.com/secretsync/secretsync/state"
)

// TransitKind is the Kind of a [Transit] sealer, written in the key files
// it seals.
const TransitKind = "vault-transit"

// Errors of [Transit], besides those of package connection (a token that
// lacks a capability gives connection.ErrPermissionDenied, naming the path
// and the capability).
var (
	// ErrTransitKeyNotFound: the Transit key does not exist (never created,
	// or deleted), or there is no Transit mount at TransitOptions.Mount.
	ErrTransitKeyNotFound = errors.New("vaultkv: transit key not found")
	// ErrTransitCiphertext: Vault refused to decrypt or rewrap the
	// ciphertext with the key: it was made by another key, it is damaged,
	// or its version is below the key's min_decryption_version.
	ErrTransitCiphertext = errors.New("vaultkv: transit ciphertext cannot be opened")
)

// TransitOptions configure a [Transit] sealer.
type TransitOptions struct {
	// Mount is the Transit secrets engine's mount; default "transit".
	Mount string
	// Key is the name of the Transit key; required. It must exist:
	// Transit does not create it with the policy below.
	Key string
}

// Transit is a state.KeySealer (and state.KeyRewrapper) that seals the
// fingerprint key of a state.File with a Vault Transit key, so that the key
// file holds only Transit ciphertext ("vault:v1:…") and the key is usable
// only while Vault lets this connection decrypt it. This is the VaultTerm
// "Transit-sealed master key", for secretsync's own state:
//
//	sealer, err := vaultkv.NewTransit(conn, vaultkv.TransitOptions{Key: "secretsync-state"})
//	store, err := state.OpenFile(path, &state.FileOptions{Sealer: sealer})
//
// Seal is transit/encrypt, Unseal is transit/decrypt and Rewrap is
// transit/rewrap, each one request (plus the connection's retries). The
// plaintext travels base64-encoded in the request or response body only;
// it is never in an error or a log.
//
// # Setting up
//
//	vault secrets enable transit
//	vault write -f transit/keys/secretsync-state
//
// After `vault write -f transit/keys/secretsync-state/rotate`, call
// state.File.RewrapKey to move the key file to the newest version; then
// min_decryption_version can be raised.
//
// # Vault policy
//
// Policy gives it (PolicySpec.Transit). With Mount "transit" and Key
// "secretsync-state":
//
//	path "transit/decrypt/secretsync-state" { capabilities = ["update"] }
//	path "transit/encrypt/secretsync-state" { capabilities = ["update"] }
//	path "transit/rewrap/secretsync-state"  { capabilities = ["update"] }  # File.RewrapKey
//
// encrypt is used when the key file is made or a plain one is sealed,
// decrypt once per process (and to check each new ciphertext), rewrap by
// RewrapKey. No "create" is granted on encrypt, so a misspelt key name is
// an error rather than a new key. Rotating the key
// (transit/keys/<key>/rotate) is for operators; the library never needs it.
//
// # Errors
//
// A missing key or mount gives [ErrTransitKeyNotFound], a ciphertext the
// key cannot open [ErrTransitCiphertext], a token without the capability
// connection.ErrPermissionDenied (its *connection.Error names the path and
// the capability); each error names the mount and the key. state.File wraps
// them in a *state.SealError.
//
// A Transit is safe for concurrent use.
type Transit struct {
	conn       *connection.Conn
	mount, key string
}

var (
	_ state.KeySealer    = (*Transit)(nil)
	_ state.KeyRewrapper = (*Transit)(nil)
)

// NewTransit returns a Transit sealer using conn. It does no I/O: a missing
// key or a missing capability shows on first use. It returns an error
// wrapping ErrInvalidOptions for an empty Key or a name with an empty, "."
// or ".." path segment (and a Key with a '/').
// A nil options means the zero TransitOptions.
func NewTransit(conn *connection.Conn, options *TransitOptions) (*Transit, error) {
	var opt TransitOptions
	if options != nil {
		opt = *options
	}
	if conn == nil {
		return nil, fmt.Errorf("vaultkv: %w: NewTransit: nil connection", ErrInvalidOptions)
	}
	opt, err := opt.normalize()
	if err != nil {
		return nil, err
	}
	return &Transit{conn: conn, mount: opt.Mount, key: opt.Key}, nil
}

// normalize fills in the default mount and checks the names.
func (opt TransitOptions) normalize() (TransitOptions, error) {
	opt.Mount = strings.Trim(opt.Mount, "/")
	if opt.Mount == "" {
		opt.Mount = "transit"
	}
	if checkName(opt.Mount) != nil {
		return opt, fmt.Errorf("vaultkv: %w: TransitOptions.Mount %q", ErrInvalidOptions, opt.Mount)
	}
	if checkName(opt.Key) != nil || strings.Contains(opt.Key, "/") {
		return opt, fmt.Errorf("vaultkv: %w: TransitOptions.Key %q (a Transit key name, without '/')", ErrInvalidOptions, opt.Key)
	}
	return opt, nil
}

// Kind returns [TransitKind].
func (t *Transit) Kind() string { return TransitKind }

// String names the mount and the key.
func (t *Transit) String() string {
	return fmt.Sprintf("vault transit key %q in mount %q", t.key, t.mount)
}

// Seal encrypts key with the Transit key and returns the ciphertext.
func (t *Transit) Seal(ctx context.Context, key []byte) (string, error) {
	data, err := t.do(ctx, "encrypt", map[string]any{"plaintext": base64.StdEncoding.EncodeToString(key)})
	if err != nil {
		return "", err
	}
	return t.ciphertext("encrypt", data)
}

// Unseal decrypts sealed, a ciphertext made by Seal or Rewrap.
func (t *Transit) Unseal(ctx context.Context, sealed string) ([]byte, error) {
	data, err := t.do(ctx, "decrypt", map[string]any{"ciphertext": sealed})
	if err != nil {
		return nil, err
	}
	enc, _ := data["plaintext"].(string)
	key, err := base64.StdEncoding.DecodeString(enc)
	if err != nil || enc == "" {
		return nil, fmt.Errorf("vaultkv: transit decrypt %s: the answer holds no base64 plaintext", t.path("decrypt"))
	}
	return key, nil
}

// Rewrap re-encrypts sealed under the newest version of the Transit key,
// inside Vault: the plaintext is not returned.
func (t *Transit) Rewrap(ctx context.Context, sealed string) (string, error) {
	data, err := t.do(ctx, "rewrap", map[string]any{"ciphertext": sealed})
	if err != nil {
		return "", err
	}
	return t.ciphertext("rewrap", data)
}

func (t *Transit) path(op string) string { return t.mount + "/" + op + "/" + t.key }

func (t *Transit) ciphertext(op string, data map[string]any) (string, error) {
	ct, _ := data["ciphertext"].(string)
	if !strings.HasPrefix(ct, "vault:v") {
		return "", fmt.Errorf("vaultkv: transit %s %s: the answer holds no ciphertext", op, t.path(op))
	}
	return ct, nil
}

// do writes body to <mount>/<op>/<key> and returns the answer's data, with
// the error classified.
func (t *Transit) do(ctx context.Context, op string, body map[string]any) (map[string]any, error) {
	p := t.path(op)
	var (
		sec *api.Secret
		raw error // the last unclassified error, for Vault's messages
	)
	err := t.conn.Do(ctx, op, p, "update", func(c *api.Client) error {
		sec, raw = c.Logical().WriteWithContext(ctx, p, body)
		return raw
	})
	if err != nil {
		return nil, t.classify(op, p, raw, err)
	}
	if sec == nil || sec.Data == nil {
		return nil, fmt.Errorf("vaultkv: transit %s %s: empty answer", op, p)
	}
	return sec.Data, nil
}

// classify names the mount and key in err (from conn.Do), and adds the
// sentinel of this file that fits Vault's answer raw.
func (t *Transit) classify(op, p string, raw, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var re *api.ResponseError
	if !errors.As(raw, &re) {
		return fmt.Errorf("vaultkv: transit %s with %s: %w", op, t, err)
	}
	msg := strings.ToLower(strings.Join(re.Errors, "; "))
	switch {
	case re.StatusCode == http.StatusForbidden && errors.Is(err, connection.ErrPermissionDenied):
		if op == "encrypt" {
			// Vault treats encrypting with a missing key as creating it,
			// which needs "create": a 403 here may mean that the key
			// does not exist.
			return fmt.Errorf("vaultkv: transit %s with %s (or the key does not exist, which encrypting with only \"update\" cannot create): %w", op, t, err)
		}
		return fmt.Errorf("vaultkv: transit %s with %s: %w", op, t, err)
	case re.StatusCode == http.StatusNotFound && strings.Contains(msg, "no handler for route"):
		return &transitError{ErrTransitKeyNotFound, err,
			fmt.Sprintf("vaultkv: transit %s %s (capability \"update\"): no transit mount %q", op, p, t.mount)}
	case re.StatusCode == http.StatusBadRequest && strings.Contains(msg, "key not found"):
		return &transitError{ErrTransitKeyNotFound, err,
			fmt.Sprintf("vaultkv: transit %s %s (capability \"update\"): key %q does not exist in mount %q", op, p, t.key, t.mount)}
	case re.StatusCode == http.StatusBadRequest && (strings.Contains(msg, "cipher") || strings.Contains(msg, "too old") || strings.Contains(msg, "too new") || strings.Contains(msg, "authentication failed")):
		return &transitError{ErrTransitCiphertext, err,
			fmt.Sprintf("vaultkv: transit %s %s: the ciphertext cannot be opened with key %q in mount %q (made by another key, damaged, or below its min_decryption_version)", op, p, t.key, t.mount)}
	}
	return fmt.Errorf("vaultkv: transit %s with %s: %w", op, t, err)
}

// transitError is a classified Transit failure: errors.Is finds both the
// sentinel and the connection's error (a *connection.Error).
type transitError struct {
	sentinel, err error
	msg           string
}

func (e *transitError) Error() string { return e.msg + ": " + e.err.Error() }

func (e *transitError) Unwrap() []error { return []error{e.sentinel, e.err} }
