package vaultkv

import (
	"fmt"
	"path"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/secretsync/secretsync/destination"
)

// checkName reports whether name can be used as part of a Vault request
// path below a prefix without leaving it: destination.CheckKey (no empty,
// "." or ".." segment, no leading '/'), and valid UTF-8 made of printable
// characters only, since Vault refuses a request path with any other
// (and the API client would send invalid UTF-8 altered). The error wraps
// destination.ErrInvalidKey.
func checkName(name string) error {
	if err := destination.CheckKey(name); err != nil {
		return err
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("%w: %q is not valid UTF-8", destination.ErrInvalidKey, name)
	}
	if i := strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }); i >= 0 {
		return fmt.Errorf("%w: %q has a character that Vault refuses in a path (%U)", destination.ErrInvalidKey, name, []rune(name[i:])[0])
	}
	return nil
}

// checkField reports whether name can be a field of a secret (the
// SecretPath layout): Vault keeps fields as JSON object keys, which hold
// any valid UTF-8 text, but not other bytes exactly.
func checkField(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty key", destination.ErrInvalidKey)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: %q is not valid UTF-8, which a Vault secret's field cannot hold exactly", destination.ErrInvalidKey, name)
	}
	return nil
}

// checkValue refuses a put whose value Vault cannot hold exactly: Vault
// keeps values as JSON strings, which hold valid UTF-8 only (the API
// client would replace every invalid byte with U+FFFD). The error wraps
// destination.ErrInvalidValue and never holds the value.
func checkValue(c destination.Change) error {
	if c.Delete || utf8.ValidString(c.Value) {
		return nil
	}
	return fmt.Errorf("%w: the value is not valid UTF-8, and a Vault secret holds JSON strings", destination.ErrInvalidValue)
}

// invalidOption returns the error for an unusable option.
func invalidOption(field string, err error) error {
	return fmt.Errorf("vaultkv: %w: %s: %w", ErrInvalidOptions, field, err)
}

// normalize checks opt without I/O and fills in the defaults. Mount and
// Path lose their leading and trailing '/', and must then pass checkName,
// so that every path built from them is clean and stays under the mount.
func (opt Options) normalize() (Options, error) {
	opt.Mount = strings.Trim(opt.Mount, "/")
	opt.Path = strings.Trim(opt.Path, "/")
	switch {
	case opt.Mount == "":
		return opt, fmt.Errorf("vaultkv: %w: Mount is missing", ErrInvalidOptions)
	case opt.Layout > SecretKey:
		return opt, fmt.Errorf("vaultkv: %w: unknown layout %d", ErrInvalidOptions, opt.Layout)
	case opt.Layout == SecretPath && opt.Path == "":
		return opt, fmt.Errorf("vaultkv: %w: Path is missing (the secret-path layout needs the secret's path)", ErrInvalidOptions)
	}
	if err := checkName(opt.Mount); err != nil {
		return opt, invalidOption("Mount", err)
	}
	if opt.Path != "" {
		if err := checkName(opt.Path); err != nil {
			return opt, invalidOption("Path", err)
		}
	}
	if opt.Field == "" {
		opt.Field = "value"
	}
	if err := checkField(opt.Field); err != nil {
		return opt, invalidOption("Field", err)
	}
	if opt.Owner == "" {
		opt.Owner = "secretsync"
	}
	if opt.OwnerField == "" {
		opt.OwnerField = OwnerKey
	}
	if err := checkField(opt.OwnerField); err != nil {
		return opt, invalidOption("OwnerField", err)
	}
	// Vault's limit on a custom_metadata value.
	if !utf8.ValidString(opt.Owner) || len(opt.Owner) > 512 {
		return opt, fmt.Errorf("vaultkv: %w: Owner must be valid UTF-8 of at most 512 bytes", ErrInvalidOptions)
	}
	if opt.Concurrency <= 0 {
		opt.Concurrency = 16
	}
	if opt.PollInterval <= 0 {
		opt.PollInterval = 5 * time.Second
	}
	return opt, nil
}

// normalize checks opt without I/O and fills in the defaults, as
// Options.normalize does.
func (opt StoreOptions) normalize() (StoreOptions, error) {
	opt.Mount = strings.Trim(opt.Mount, "/")
	opt.Path = strings.Trim(opt.Path, "/")
	if opt.Mount == "" {
		return opt, fmt.Errorf("vaultkv: %w: StoreOptions.Mount is missing", ErrInvalidOptions)
	}
	if opt.Path == "" {
		opt.Path = "secretsync"
	}
	if err := checkName(opt.Mount); err != nil {
		return opt, invalidOption("StoreOptions.Mount", err)
	}
	if err := checkName(opt.Path); err != nil {
		return opt, invalidOption("StoreOptions.Path", err)
	}
	return opt, nil
}

// Kinds of KV v2 paths: mount/<kind>/<path>.
const (
	kindData     = "data"
	kindMetadata = "metadata"
	kindDelete   = "delete"
	kindDestroy  = "destroy"
)

// keyPath returns mount/<kind>/<Path>/<key>, or mount/<kind>/<Path> for
// an empty key; with an empty kind (KV v1), mount/<Path>/<key>. A non-empty key must have passed checkName: with Mount and
// Path checked by normalize, the result is then clean and is exactly the
// prefix followed by the key (FuzzKeyPath checks it).
func (kv *KV) keyPath(kind, key string) string {
	return path.Join(kv.opt.Mount, kind, kv.opt.Path, key)
}

func (kv *KV) dataPath(key string) string { return kv.keyPath(kindData, key) }

func (kv *KV) metaPath(key string) string { return kv.keyPath(kindMetadata, key) }
