// Package env is a read-only side of a sync over environment variables, for
// command-line programs: the variables whose names start with a prefix,
// such as APP_, become the keys of a source, the prefix removed.
//
//	src, err := env.FromOS("APP_", nil) // APP_DB_PASSWORD is the key DB_PASSWORD
//	s, err := sync.New(sync.Config{Name: "ci", Source: src, Destination: vault})
//
// # No hidden environment reads
//
// A Source reads the environment once, when it is made, and only where the
// caller says so: [New] takes the variables as a slice of "NAME=value"
// entries (os.Environ's form, or a command's Env), and [FromOS] calls
// os.Environ itself, at that call and never later. List returns that
// snapshot; changes to the environment after it was made are not seen.
//
// # Versions
//
// The version of a key is a digest of the key and its value: 16 hex digits
// of HMAC-SHA-256 under a random key made with the Source. A key has the
// same version for as long as its value is the same, in one Source; the
// version never contains the value, and the random key keeps versions
// (which the engine may log) from being used to test guesses of a value.
// The versions of one Source mean nothing to another.
//
// # Concurrency
//
// A *Source is immutable once made and safe for concurrent use.
package env

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"strings"

	"github.com/secretsync/secretsync/destination"
)

// ErrInvalidPrefix reports a prefix that is empty or holds '=' or a NUL.
// A prefix is required so that a sync never takes the whole environment
// (PATH, HOME, the shell's own variables) by mistake.
var ErrInvalidPrefix = errors.New("env: invalid prefix: it must be non-empty, without '=' or NUL")

// Options are the optional parts of a Source.
type Options struct {
	// KeepPrefix keeps the prefix in keys: APP_DB_PASSWORD is the key
	// APP_DB_PASSWORD rather than DB_PASSWORD.
	KeepPrefix bool
}

// Source is a destination.Reader over a snapshot of environment variables
// whose names start with a prefix. Make it with New or FromOS.
type Source struct {
	prefix  string
	secrets map[string]destination.Secret
}

var _ destination.Reader = (*Source)(nil)

// New returns a Source over the variables of environ, a list of
// "NAME=value" entries as os.Environ returns, whose names start with
// prefix. Each such variable is a key: its name without the prefix, or
// with it when opts.KeepPrefix is set. A variable named just the prefix,
// and an entry without '=', are left out. When a name appears more than
// once, the last entry counts, as with exec.Cmd's Env. opts may be nil.
//
// New copies what it needs: later changes to environ are not seen. It
// returns an error wrapping ErrInvalidPrefix for an empty prefix or one
// holding '=' or a NUL.
func New(environ []string, prefix string, opts *Options) (*Source, error) {
	if prefix == "" || strings.ContainsAny(prefix, "=\x00") {
		return nil, fmt.Errorf("%w (got %d bytes)", ErrInvalidPrefix, len(prefix))
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	verKey := make([]byte, 32)
	if _, err := rand.Read(verKey); err != nil {
		return nil, fmt.Errorf("env: version key: %w", err)
	}
	s := &Source{prefix: prefix, secrets: make(map[string]destination.Secret)}
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, prefix) || name == prefix {
			continue
		}
		key := name
		if !o.KeepPrefix {
			key = strings.TrimPrefix(name, prefix)
		}
		s.secrets[key] = destination.Secret{Value: value, Version: version(verKey, key, value)}
	}
	return s, nil
}

// FromOS is New over os.Environ(), read at this call and never again.
func FromOS(prefix string, opts *Options) (*Source, error) {
	return New(os.Environ(), prefix, opts)
}

// version returns the version of key holding value.
func version(verKey []byte, key, value string) string {
	mac := hmac.New(sha256.New, verKey)
	mac.Write([]byte(key))
	mac.Write([]byte{0})
	mac.Write([]byte(value))
	return hex.EncodeToString(mac.Sum(nil)[:8])
}

// List returns every key of the snapshot with its value and version, in a
// map of the caller's own, or ctx's error when ctx has ended.
func (s *Source) List(ctx context.Context) (map[string]destination.Secret, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return maps.Clone(s.secrets), nil
}

// Len returns how many variables the Source holds.
func (s *Source) Len() int { return len(s.secrets) }

// String describes the Source by its prefix and size, never a value.
func (s *Source) String() string {
	return fmt.Sprintf("env.Source(%q, %d variables)", s.prefix, len(s.secrets))
}

// GoString is like String, so that %#v prints no value either.
func (s *Source) GoString() string { return s.String() }

// Format prints the Source as String does for every verb, so that %v and
// %+v print no value either.
func (s *Source) Format(f fmt.State, verb rune) { fmt.Fprint(f, s.String()) }
