// Package keyschema maps source keys to destination keys with a template, and
// back.
//
// A template such as "APP_{{secretKey}}" or "{{environment}}/{{secretKey}}"
// holds the placeholder {{secretKey}} exactly once, the placeholder
// {{environment}} any number of times, and literal characters from the set
// letters, digits, '_', '-', '.' and '/'. Nothing else may appear inside
// braces, and a lone brace is an error.
//
// [Schema.Render] builds the destination key of a secret key;
// [Schema.Match] is its exact inverse: it recovers the secret key from a
// destination key, or reports that the destination key does not match the
// template. A destination key that does not match is unmanaged: a sync never
// writes or deletes it.
//
// Secret keys and environments use the same character set as literals
// (see [ValidKey]); a secret key is never empty. For a fixed environment,
// Render is one-to-one, so two keys of one sync never share a destination
// key. Two syncs that share a destination can still claim the same
// destination key (one's "EU_X" in "prod" and the other's "X" in "prod_EU"
// under "{{environment}}_{{secretKey}}"): [Overlap] detects that.
package keyschema

import (
	"errors"
	"fmt"
	"strings"
)

// Placeholders.
const (
	SecretKey   = "{{secretKey}}"
	Environment = "{{environment}}"
)

// MaxKeyLen is the longest secret key, environment or destination key, in
// bytes.
const MaxKeyLen = 512

// ErrInvalidKey reports a secret key or environment outside the documented
// character set, empty, or longer than MaxKeyLen.
var ErrInvalidKey = errors.New("keyschema: invalid key")

// ParseError reports a template that cannot be parsed.
type ParseError struct {
	Template string
	// Pos is the byte offset in Template where the problem is.
	Pos    int
	Reason string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("keyschema: template %q at position %d: %s", e.Template, e.Pos, e.Reason)
}

// KeyError reports a secret key or environment that cannot be used. It wraps
// ErrInvalidKey.
type KeyError struct {
	What   string // "secret key" or "environment"
	Key    string
	Reason string
}

func (e *KeyError) Error() string {
	return fmt.Sprintf("keyschema: %s %q: %s", e.What, e.Key, e.Reason)
}

// Unwrap returns ErrInvalidKey.
func (e *KeyError) Unwrap() error { return ErrInvalidKey }

// CollisionError reports two secret keys that would be written to one
// destination key.
type CollisionError struct {
	DestinationKey string
	// Keys are the two secret keys, each with the environment it was
	// rendered in.
	Keys         [2]string
	Environments [2]string
}

func (e *CollisionError) Error() string {
	return fmt.Sprintf("keyschema: secret keys %q (environment %q) and %q (environment %q) both map to destination key %q",
		e.Keys[0], e.Environments[0], e.Keys[1], e.Environments[1], e.DestinationKey)
}

type part struct {
	lit string // literal text, when neither flag is set
	key bool
	env bool
}

// Schema is a parsed template. The zero value is not usable; get one from
// Parse or MustParse. A Schema is immutable and safe for concurrent use.
type Schema struct {
	text  string
	parts []part
	env   bool
}

// Parse parses a template. The error, a *ParseError, says what is wrong and
// at which byte offset.
func Parse(template string) (*Schema, error) {
	s := &Schema{text: template}
	bad := func(pos int, format string, args ...any) (*Schema, error) {
		return nil, &ParseError{Template: template, Pos: pos, Reason: fmt.Sprintf(format, args...)}
	}
	if len(template) > MaxKeyLen {
		return bad(MaxKeyLen, "longer than %d bytes", MaxKeyLen)
	}
	keyAt := -1
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			s.parts = append(s.parts, part{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(template); {
		c := template[i]
		switch {
		case strings.HasPrefix(template[i:], SecretKey):
			if keyAt >= 0 {
				return bad(i, "%s appears again (first at %d); it must appear exactly once", SecretKey, keyAt)
			}
			flush()
			keyAt = i
			s.parts = append(s.parts, part{key: true})
			i += len(SecretKey)
		case strings.HasPrefix(template[i:], Environment):
			flush()
			s.env = true
			s.parts = append(s.parts, part{env: true})
			i += len(Environment)
		case c == '{' || c == '}':
			if strings.HasPrefix(template[i:], "{{") {
				end := strings.Index(template[i:], "}}")
				if end < 0 {
					return bad(i, "unclosed placeholder")
				}
				return bad(i, "unknown placeholder %q; only %s and %s exist", template[i:i+end+2], SecretKey, Environment)
			}
			return bad(i, "lone %q; placeholders are written %s and %s", c, SecretKey, Environment)
		case validChar(c):
			lit.WriteByte(c)
			i++
		default:
			return bad(i, "character %q is not allowed; literals may use letters, digits, '_', '-', '.' and '/'", rune(c))
		}
	}
	flush()
	if keyAt < 0 {
		return bad(len(template), "%s is missing; it must appear exactly once", SecretKey)
	}
	return s, nil
}

// MustParse is like Parse but panics on an error. It is meant for templates
// that are constants of the program.
func MustParse(template string) *Schema {
	s, err := Parse(template)
	if err != nil {
		panic(err)
	}
	return s
}

// String returns the template.
func (s *Schema) String() string { return s.text }

// UsesEnvironment reports whether the template holds {{environment}}.
func (s *Schema) UsesEnvironment() bool { return s.env }

// Render returns the destination key of secretKey in environment. The error
// wraps ErrInvalidKey when the key or the environment cannot be used.
func (s *Schema) Render(secretKey, environment string) (string, error) {
	b, err := s.Bind(environment)
	if err != nil {
		return "", err
	}
	return b.Render(secretKey)
}

// Match returns the secret key whose destination key in environment is
// destinationKey, and false when destinationKey does not match the template
// (it is then unmanaged).
func (s *Schema) Match(destinationKey, environment string) (string, bool) {
	b, err := s.Bind(environment)
	if err != nil {
		return "", false
	}
	return b.Match(destinationKey)
}

// Bind fixes the environment, checking it once, and returns a Bound schema
// whose Render and Match cost one string concatenation or comparison. An
// environment must be a valid key (see ValidKey) when the template uses it;
// when it does not, the environment may be empty but must otherwise be valid
// too, so that a mistake is not silently ignored.
func (s *Schema) Bind(environment string) (Bound, error) {
	if environment == "" && s.env {
		return Bound{}, &KeyError{What: "environment", Reason: "empty, and the template " + s.text + " uses " + Environment}
	}
	if environment != "" {
		if reason := checkKey(environment); reason != "" {
			return Bound{}, &KeyError{What: "environment", Key: environment, Reason: reason}
		}
	}
	var pre, suf strings.Builder
	cur := &pre
	for _, p := range s.parts {
		switch {
		case p.key:
			cur = &suf
		case p.env:
			cur.WriteString(environment)
		default:
			cur.WriteString(p.lit)
		}
	}
	return Bound{schema: s, env: environment, prefix: pre.String(), suffix: suf.String()}, nil
}

// Bound is a Schema with its environment fixed. The zero value maps every
// key to itself. A Bound is immutable and safe for concurrent use.
type Bound struct {
	schema         *Schema
	env            string
	prefix, suffix string
}

// Environment returns the bound environment.
func (b Bound) Environment() string { return b.env }

// Schema returns the schema that was bound, or nil for the zero Bound.
func (b Bound) Schema() *Schema { return b.schema }

// Render returns the destination key of secretKey. The error is a *KeyError
// (wrapping ErrInvalidKey) when the key is empty, too long, or has a
// character outside the documented set.
func (b Bound) Render(secretKey string) (string, error) {
	if reason := checkKey(secretKey); reason != "" {
		return "", &KeyError{What: "secret key", Key: secretKey, Reason: reason}
	}
	dk := b.prefix + secretKey + b.suffix
	if len(dk) > MaxKeyLen {
		return "", &KeyError{What: "secret key", Key: secretKey, Reason: fmt.Sprintf("its destination key would be longer than %d bytes", MaxKeyLen)}
	}
	return dk, nil
}

// Match returns the secret key whose destination key is destinationKey, and
// false when destinationKey does not match (it is then unmanaged). For every
// key k that Render accepts, Match(Render(k)) returns k, true; and whenever
// Match returns k, true, Render(k) returns destinationKey.
func (b Bound) Match(destinationKey string) (string, bool) {
	if len(destinationKey) > MaxKeyLen ||
		!strings.HasPrefix(destinationKey, b.prefix) || !strings.HasSuffix(destinationKey, b.suffix) ||
		len(destinationKey) <= len(b.prefix)+len(b.suffix) {
		return "", false
	}
	k := destinationKey[len(b.prefix) : len(destinationKey)-len(b.suffix)]
	if checkKey(k) != "" {
		return "", false
	}
	return k, true
}

// Overlap reports whether two bound schemas (two syncs sharing a
// destination, usually one template in two environments) can claim the same
// destination key. It returns nil when they cannot, and otherwise a
// *CollisionError with an example: a destination key and the secret key
// each sync would map to it. Syncs that overlap would write, and delete,
// each other's keys, so they should not share a destination.
func Overlap(a, b Bound) error {
	// a matches exactly the keys prefixA + K + suffixA with K a valid,
	// non-empty key, and likewise b. Prefixes and suffixes are made of
	// valid characters, so the two sets meet exactly when one prefix
	// extends the other and one suffix extends the other.
	pre, ok := longer(a.prefix, b.prefix, strings.HasPrefix)
	if !ok {
		return nil
	}
	suf, ok := longer(a.suffix, b.suffix, strings.HasSuffix)
	if !ok {
		return nil
	}
	dk := pre + "X" + suf
	ka, okA := a.Match(dk)
	kb, okB := b.Match(dk)
	if !okA || !okB {
		return nil // too long to be a key at all
	}
	return &CollisionError{DestinationKey: dk, Keys: [2]string{ka, kb}, Environments: [2]string{a.env, b.env}}
}

// longer returns the longer of x and y when it extends the other by has.
func longer(x, y string, has func(s, affix string) bool) (string, bool) {
	if len(x) < len(y) {
		x, y = y, x
	}
	return x, has(x, y)
}

// ValidKey reports whether k can be a secret key or an environment: not
// empty, at most MaxKeyLen bytes, and made of letters (ASCII), digits, '_',
// '-', '.' and '/'.
func ValidKey(k string) bool { return checkKey(k) == "" }

func checkKey(k string) string {
	if k == "" {
		return "empty"
	}
	if len(k) > MaxKeyLen {
		return fmt.Sprintf("longer than %d bytes", MaxKeyLen)
	}
	for i := 0; i < len(k); i++ {
		if !validChar(k[i]) {
			return fmt.Sprintf("character %q at position %d is not allowed (letters, digits, '_', '-', '.', '/')", rune(k[i]), i)
		}
	}
	return ""
}

func validChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '_' || c == '-' || c == '.' || c == '/'
}
