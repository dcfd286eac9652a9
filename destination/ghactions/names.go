package ghactions

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/secretsync/secretsync/destination"
)

// MaxValueSize is the largest value GitHub keeps in a secret: 48 KB.
const MaxValueSize = 48 * 1024

// reservedPrefix starts the names GitHub keeps for itself.
const reservedPrefix = "GITHUB_"

// NormalizeKey maps a name onto GitHub's rules for secret names, as GitHub
// itself stores them: letters are upper-cased, every other character but
// a digit or '_' becomes '_' (one per character), and a name that starts
// with a digit gets a leading '_'. So "app/db-url" becomes "APP_DB_URL"
// and "1password" "_1PASSWORD". A name that would then start with GITHUB_,
// and an empty name, get an error matching destination.ErrInvalidKey. It
// is deterministic and idempotent, and sends no request.
func (d *Destination) NormalizeKey(key string) (string, error) { return NormalizeKey(key) }

// NormalizeKey is the method of the same name, for use without a
// Destination.
func NormalizeKey(key string) (string, error) {
	if key == "" {
		return "", fmt.Errorf("%w: empty name", destination.ErrInvalidKey)
	}
	var b strings.Builder
	b.Grow(len(key) + 1)
	if c := key[0]; c >= '0' && c <= '9' {
		b.WriteByte('_')
	}
	for _, r := range key {
		switch {
		case r >= 'a' && r <= 'z':
			b.WriteRune(r - 'a' + 'A')
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	n := b.String()
	if strings.HasPrefix(n, reservedPrefix) {
		return "", fmt.Errorf("%w: %q would be named %s, and GitHub reserves the %s prefix", destination.ErrInvalidKey, key, n, reservedPrefix)
	}
	return n, nil
}

// checkName returns an error matching destination.ErrInvalidKey unless
// name is a secret name exactly as GitHub stores it: upper-case letters,
// digits and '_', not starting with a digit nor with GITHUB_. Apply
// never sends another name, so that what it writes is listed back under
// the very name it was given.
func checkName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty name", destination.ErrInvalidKey)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return fmt.Errorf("%w: %q: GitHub secret names are upper-case letters, digits and '_' (see NormalizeKey)", destination.ErrInvalidKey, name)
		}
	}
	switch {
	case name[0] >= '0' && name[0] <= '9':
		return fmt.Errorf("%w: %q: a GitHub secret name cannot start with a digit", destination.ErrInvalidKey, name)
	case strings.HasPrefix(name, reservedPrefix):
		return fmt.Errorf("%w: %q: GitHub reserves the %s prefix", destination.ErrInvalidKey, name, reservedPrefix)
	}
	return nil
}

// checkValue returns an error matching destination.ErrInvalidValue for a
// value GitHub cannot hold exactly: over 48 KB, or not valid UTF-8 (the
// Actions runner decodes secrets as UTF-8 text, so other bytes would not
// reach a workflow as they were).
func checkValue(v string) error {
	switch {
	case len(v) > MaxValueSize:
		return fmt.Errorf("%w: %d bytes, over GitHub's limit of %d (48 KB)", destination.ErrInvalidValue, len(v), MaxValueSize)
	case !utf8.ValidString(v):
		return fmt.Errorf("%w: not valid UTF-8, which a GitHub Actions secret cannot carry exactly", destination.ErrInvalidValue)
	}
	return nil
}
