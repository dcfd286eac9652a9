package gcpsm

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"

	"github.com/secretsync/secretsync/destination"
)

// The labels that mark the secrets a Destination creates.
const (
	// LabelManagedBy is set to ManagedByValue on every secret the
	// destination creates.
	LabelManagedBy = "managed-by"
	// ManagedByValue is the value of LabelManagedBy.
	ManagedByValue = "secretsync"
	// LabelOwner holds the owner (the association) of the secret, made
	// label-safe by OwnerLabel. It is absent for Owner "".
	LabelOwner = "secretsync-owner"
)

// Limits of Secret Manager.
const (
	// MaxSecretID is the longest secret ID.
	MaxSecretID = 255
	// MaxPayload is the largest value, in bytes.
	MaxPayload = 64 << 10
	// MaxLabels is the most labels a secret can have.
	MaxLabels = 64
)

var (
	secretIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)
	// Label rules as the API reference states them.
	labelKeyPattern   = regexp.MustCompile(`^[\p{Ll}\p{Lo}][\p{Ll}\p{Lo}\p{N}_-]{0,62}$`)
	labelValuePattern = regexp.MustCompile(`^[\p{Ll}\p{Lo}\p{N}_-]{0,63}$`)
	asciiLabelValue   = regexp.MustCompile(`^[a-z0-9_-]{0,63}$`)
)

// checkID reports whether key is a valid secret ID: 1 to 255 letters,
// digits, '-' and '_'. Such an ID has no '/' and no '.', so it cannot
// name anything but one secret of the project.
func checkID(key string) error {
	if err := destination.CheckKey(key); err != nil {
		return err
	}
	if !secretIDPattern.MatchString(key) {
		if len(key) > MaxSecretID {
			return fmt.Errorf("%w: %d bytes, more than the %d of a secret ID", destination.ErrInvalidKey, len(key), MaxSecretID)
		}
		return fmt.Errorf("%w: %q has characters other than letters, digits, '-' and '_'", destination.ErrInvalidKey, key)
	}
	return nil
}

// NormalizeKey maps key onto Secret Manager's secret IDs: every character
// other than an ASCII letter, a digit, '-' or '_' becomes '_' (so
// "vault/kv_1a2b/app/prod" becomes "vault_kv_1a2b_app_prod", and a
// multi-byte character one '_'). It refuses, with an error wrapping
// destination.ErrInvalidKey, a key that is empty or longer than 255
// characters once mapped. Two keys that differ only in the characters it
// replaces map to the same ID: choose a name template that keeps them
// apart.
func NormalizeKey(key string) (string, error) {
	out := strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, strings.ToValidUTF8(key, "\uFFFD"))
	switch {
	case out == "":
		return "", fmt.Errorf("%w: empty key", destination.ErrInvalidKey)
	case len(out) > MaxSecretID:
		return "", fmt.Errorf("%w: %q is %d characters, more than the %d of a secret ID", destination.ErrInvalidKey, out[:32]+"...", len(out), MaxSecretID)
	}
	return out, nil
}

// OwnerLabel returns the value of LabelOwner for owner: owner in lower
// case when that is a valid label value (at most 63 of [a-z0-9_-]), and
// otherwise "h-" and the first 16 hex digits of owner's SHA-256. The
// registry's owners, its sync names (at most 63 of [a-z0-9_-], such as
// "gcp-sm-prod-kv-app-prod"), are kept as they are.
func OwnerLabel(owner string) string {
	if l := strings.ToLower(owner); asciiLabelValue.MatchString(l) {
		return l
	}
	sum := sha256.Sum256([]byte(owner))
	return "h-" + hex.EncodeToString(sum[:8])
}

// checkLabels checks custom labels against Secret Manager's rules and
// the destination's own marker labels.
func checkLabels(labels map[string]string) error {
	if len(labels) > MaxLabels-2 {
		return fmt.Errorf("gcpsm: %d custom labels; a secret has at most %d, and the destination uses 2", len(labels), MaxLabels)
	}
	for k, v := range labels {
		switch {
		case k == LabelManagedBy || k == LabelOwner:
			return fmt.Errorf("gcpsm: custom label %q is reserved for the ownership marker", k)
		case !labelKeyPattern.MatchString(k) || len(k) > 128:
			return fmt.Errorf("gcpsm: custom label key %q is invalid: it must start with a lower-case letter and have 1 to 63 lower-case letters, digits, '_' or '-'", k)
		case !labelValuePattern.MatchString(v) || len(v) > 128:
			return fmt.Errorf("gcpsm: the value of custom label %q is invalid: it must have 0 to 63 lower-case letters, digits, '_' or '-'", k)
		}
	}
	return nil
}
