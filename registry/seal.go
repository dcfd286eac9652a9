package registry

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"reflect"
	"strings"
	gosync "sync"

	"github.com/secretsync/secretsync/internal/atomicfile"
	"github.com/secretsync/secretsync/state"
)

// ErrNoSealer: a destination whose Config holds a credential cannot be
// kept in Options.Catalog without Options.Sealer, since a catalog never
// holds a credential in plain text. The destination is refused and
// nothing changes.
var ErrNoSealer = errors.New("registry: a credential cannot be persisted without Options.Sealer")

// ErrSealed: a credential kept in the catalog cannot be opened: the
// catalog was sealed by another kind of sealer, the sealer fails, or the
// text was altered.
var ErrSealed = errors.New("registry: cannot open a sealed credential")

// sealedPrefix begins every credential as the catalog keeps it.
const sealedPrefix = "sealed:v1:"

// credentialType is the type whose values the catalog seals.
var credentialType = reflect.TypeFor[Credential]()

// credentialFields calls fn with every Credential field of the struct v
// (addressable), and the field's JSON name, descending into embedded
// structs as encoding/json flattens them.
func credentialFields(v reflect.Value, fn func(name string, c *Credential) error) error {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct && f.Tag.Get("json") == "" {
			if err := credentialFields(v.Field(i), fn); err != nil {
				return err
			}
			continue
		}
		if !f.IsExported() || f.Type != credentialType {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if err := fn(name, v.Field(i).Addr().Interface().(*Credential)); err != nil {
			return err
		}
	}
	return nil
}

// nestedCredential returns the path of a Credential that t holds other
// than as a field of its own (or of an embedded struct): in a slice, a
// map, a pointer or a named struct field, where the catalog cannot seal
// it. "" when there is none.
func nestedCredential(t reflect.Type) string {
	var walk func(t reflect.Type, top bool, seen map[reflect.Type]bool) string
	walk = func(t reflect.Type, top bool, seen map[reflect.Type]bool) string {
		if t == credentialType {
			if top {
				return ""
			}
			return "Credential"
		}
		if seen[t] {
			return ""
		}
		seen[t] = true
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Array:
			if p := walk(t.Elem(), false, seen); p != "" {
				return "[]" + p
			}
		case reflect.Map:
			if p := walk(t.Elem(), false, seen); p != "" {
				return "map." + p
			}
		case reflect.Struct:
			for i := range t.NumField() {
				f := t.Field(i)
				embedded := f.Anonymous && f.Type.Kind() == reflect.Struct && f.Tag.Get("json") == ""
				if p := walk(f.Type, top && (embedded || f.Type == credentialType), seen); p != "" {
					return f.Name + "." + p
				}
			}
		}
		return ""
	}
	return walk(t, true, map[reflect.Type]bool{})
}

// sealer seals and opens the credentials of one catalog with a data key,
// itself sealed by Options.Sealer and kept in the catalog.
type sealer struct {
	ks state.KeySealer

	mu     gosync.Mutex
	sealed string // the data key as the catalog keeps it
	aead   cipher.AEAD
}

// key returns the AEAD of the data key sealed as sealed ("" to make a new
// one) and that sealed text.
func (s *sealer) key(ctx context.Context, kind, sealed string) (cipher.AEAD, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ks == nil {
		return nil, "", ErrNoSealer
	}
	if sealed != "" && sealed == s.sealed {
		return s.aead, s.sealed, nil
	}
	if sealed == "" && s.aead != nil {
		return s.aead, s.sealed, nil
	}
	var key []byte
	if sealed == "" {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, "", err
		}
		var err error
		if sealed, err = s.ks.Seal(ctx, key); err != nil {
			return nil, "", fmt.Errorf("registry: seal the catalog's key with %s: %w", s.ks.Kind(), err)
		}
	} else {
		if kind != s.ks.Kind() {
			return nil, "", fmt.Errorf("%w: the catalog was sealed by a %q sealer, Options.Sealer is %q", ErrSealed, kind, s.ks.Kind())
		}
		var err error
		if key, err = s.ks.Unseal(ctx, sealed); err != nil {
			return nil, "", fmt.Errorf("%w: unseal the catalog's key with %s: %v", ErrSealed, kind, err)
		}
		if len(key) != 32 {
			return nil, "", fmt.Errorf("%w: the catalog's key has %d bytes", ErrSealed, len(key))
		}
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, "", err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, "", err
	}
	s.sealed, s.aead = sealed, aead
	return aead, sealed, nil
}

// seal returns the credential value sealed, bound to where it is kept
// (place): a sealed text copied to another destination or field does not
// open.
func seal(aead cipher.AEAD, place, value string) (string, error) {
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	out := aead.Seal(nonce, nonce, []byte(value), []byte(place))
	return sealedPrefix + base64.RawStdEncoding.EncodeToString(out), nil
}

// open returns the credential sealed at place.
func open(aead cipher.AEAD, place, sealed string) (string, error) {
	b64, ok := strings.CutPrefix(sealed, sealedPrefix)
	if !ok {
		return "", fmt.Errorf("%w: %s is not sealed", ErrSealed, place)
	}
	raw, err := base64.RawStdEncoding.DecodeString(b64)
	if err != nil || len(raw) < aead.NonceSize() {
		return "", fmt.Errorf("%w: %s is not a sealed text", ErrSealed, place)
	}
	out, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], []byte(place))
	if err != nil {
		return "", fmt.Errorf("%w: %s does not open (altered, or sealed for another place)", ErrSealed, place)
	}
	return string(out), nil
}

// KeyFileSealer returns a state.KeySealer whose key is kept in the file at
// path (32 random bytes, base64, mode 0600), made on first use. It is for
// a registry on one host whose catalog should not hold credentials in
// plain text (Options.Sealer): the catalog alone (a backup, a copy) then
// reveals no credential, though the two files together do. A sealer whose
// key is kept elsewhere (vaultkv.Transit) keeps them apart. Kind is
// "key-file".
func KeyFileSealer(path string) state.KeySealer { return &keyFileSealer{path: path} }

type keyFileSealer struct {
	path string
	mu   gosync.Mutex
	aead cipher.AEAD
}

// Kind returns "key-file".
func (k *keyFileSealer) Kind() string { return "key-file" }

func (k *keyFileSealer) load(ctx context.Context) (cipher.AEAD, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.aead != nil {
		return k.aead, nil
	}
	data, err := os.ReadFile(k.path)
	if errors.Is(err, fs.ErrNotExist) {
		data, err = k.create(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("registry: key file %s: %w", k.path, err)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("registry: key file %s does not hold a 32-byte key in base64", k.path)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	if k.aead, err = cipher.NewGCM(block); err != nil {
		return nil, err
	}
	return k.aead, nil
}

// create makes the key file, atomically, under a lock that processes
// opening it at once share, and returns its content: the key another
// process made meanwhile, if one did.
func (k *keyFileSealer) create(ctx context.Context) ([]byte, error) {
	unlock, err := atomicfile.LockWait(ctx, k.path+".lock")
	if err != nil {
		return nil, err
	}
	defer unlock()
	data, err := os.ReadFile(k.path)
	if !errors.Is(err, fs.ErrNotExist) {
		return data, err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	data = []byte(base64.StdEncoding.EncodeToString(key) + "\n")
	if err := atomicfile.Write(k.path, data, 0o600); err != nil {
		return nil, err
	}
	return data, nil
}

// Seal seals key with the key of the file.
func (k *keyFileSealer) Seal(ctx context.Context, key []byte) (string, error) {
	aead, err := k.load(ctx)
	if err != nil {
		return "", err
	}
	return seal(aead, "catalog-key", string(key))
}

// Unseal opens what Seal sealed.
func (k *keyFileSealer) Unseal(ctx context.Context, sealed string) ([]byte, error) {
	aead, err := k.load(ctx)
	if err != nil {
		return nil, err
	}
	s, err := open(aead, "catalog-key", sealed)
	if err != nil {
		return nil, err
	}
	return []byte(s), nil
}
