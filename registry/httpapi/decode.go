package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strings"
	"unicode"

	"github.com/secretsync/secretsync/registry"
)

// ConfigDecoder decodes the JSON body of a create or update request into
// a destination's Config. Its errors are answered with 400: a
// *registry.ConfigError names its field; any other error gets a generic
// message, since its text could hold a value from the body.
type ConfigDecoder func(body []byte) (registry.Config, error)

// Decoder returns the ConfigDecoder of the Config type T: the body is one
// JSON object whose fields are T's (under their JSON names), and a field
// T does not have is refused. An empty body is an empty object.
func Decoder[T registry.Config]() ConfigDecoder {
	return func(body []byte) (registry.Config, error) {
		var c T
		if err := decodeStrict(body, &c); err != nil {
			return nil, err
		}
		return c, nil
	}
}

// builtinTypes returns the decoders of the registry's own types.
func builtinTypes() map[string]ConfigDecoder {
	return map[string]ConfigDecoder{
		registry.TypeAWSSecretsManager: Decoder[registry.AWSSecretsManager](),
		registry.TypeAzureKeyVault:     Decoder[registry.AzureKeyVault](),
		registry.TypeGCPSecretManager:  Decoder[registry.GCPSecretManager](),
		registry.TypeGitHubRepository:  Decoder[registry.GitHubRepository](),
		registry.TypeVercelProject:     Decoder[registry.VercelProject](),
		registry.TypeVaultKV:           Decoder[registry.VaultKV](),
	}
}

// bodyError is a request body that cannot be decoded, described without
// any value from it.
type bodyError struct{ msg string }

func (e *bodyError) Error() string { return e.msg }

// decodeStrict decodes body, one JSON object, into v, refusing unknown
// fields and trailing data. Its errors are *bodyError.
func decodeStrict(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &bodyError{decodeMessage(err)}
	}
	if err := dec.Decode(&json.RawMessage{}); err != io.EOF {
		return &bodyError{"request body holds more than one JSON value"}
	}
	return nil
}

// decodeMessage describes a decoding error without the values it may
// quote.
func decodeMessage(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("request body is not valid JSON (at byte %d)", syn.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "request body is not valid JSON (truncated)"
	case errors.As(err, &typ):
		got, _, _ := strings.Cut(typ.Value, " ") // "number 5" holds the number
		if typ.Field == "" {
			return fmt.Sprintf("request body is a JSON %s, not an object", got)
		}
		return fmt.Sprintf("field %q: a JSON %s where %s belongs", typ.Field, got, jsonKind(typ.Type))
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if len(name) > 80 {
			name = name[:80] + `..."`
		}
		return "unknown field " + name
	}
	return "request body cannot be decoded"
}

// jsonKind names the JSON kind of a Go type.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "a value"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "another type"
}

// quoted matches a Go-quoted string (%q), the way reasons quote a value.
var quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

// configMessage describes a *registry.ConfigError by its field and reason,
// with the values the reason quotes replaced. values are the strings of
// the request body: a reason that still holds one is dropped.
func configMessage(ce *registry.ConfigError, values []string) string {
	reason := quoted.ReplaceAllString(ce.Reason, "the value")
	if holdsAny(reason, values) {
		reason = "invalid"
	}
	if ce.Type == "" {
		return fmt.Sprintf("invalid request: %s: %s", ce.Field, reason)
	}
	return fmt.Sprintf("invalid %s destination: %s: %s", ce.Type, ce.Field, reason)
}

// holdsAny reports whether s holds one of values, or a word of one (a run
// of 5 or more letters and digits): a reason that quotes part of a value
// without quotes.
func holdsAny(s string, values []string) bool {
	for _, v := range values {
		if len(v) >= 3 && strings.Contains(s, v) {
			return true
		}
		words := strings.FieldsFunc(v, func(r rune) bool {
			return !unicode.IsLetter(r) && !unicode.IsDigit(r)
		})
		for _, w := range words {
			if len(w) >= 5 && strings.Contains(s, w) {
				return true
			}
		}
	}
	return false
}

// stringsOf returns every string in a JSON document (keys excepted).
func stringsOf(body []byte) []string {
	var v any
	if json.Unmarshal(body, &v) != nil {
		return nil
	}
	var out []string
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			out = append(out, v)
		case []any:
			for _, e := range v {
				walk(e)
			}
		case map[string]any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(v)
	return out
}
