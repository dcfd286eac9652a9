package vaultkv

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// secretState is what one KV v2 read response says about a secret. It is
// the one decoding of KV v2 responses in this package: every read path
// (List in both layouts, the state Store, polling) goes through
// decodeData or decodeMetadata.
type secretState struct {
	// data is the latest version's data, nil when there is none, or when
	// that version is deleted or destroyed. Values are as Vault's JSON
	// decoding left them: strings, json.Number, bool, nil, maps, slices.
	data map[string]any
	// version is the version read: the latest version for a data read,
	// current_version for a metadata read; 0 when there is none.
	version int
	// deleted and destroyed describe the latest version.
	deleted, destroyed bool
	// owner is custom_metadata[OwnerKey], "" when absent.
	owner string
}

// gone reports whether the latest version exists but reads as absent.
func (s secretState) gone() bool { return s.deleted || s.destroyed }

// values returns the data as the opaque strings the engine sees (see text).
func (s secretState) values() map[string]string {
	out := make(map[string]string, len(s.data))
	for k, v := range s.data {
		out[k] = text(v)
	}
	return out
}

// decodeData decodes the data of a read of mount/data/<path> (api.Secret's
// Data; nil for a 404 without a body). Vault answers a read of a deleted or
// destroyed latest version with 404 and the metadata only, which the API
// client returns as a secret whose data is null.
func decodeData(body map[string]any) secretState {
	var s secretState
	if body == nil {
		return s
	}
	meta, _ := body["metadata"].(map[string]any)
	s.version = intOf(meta["version"])
	s.owner = ownerOf(meta["custom_metadata"])
	dt, _ := meta["deletion_time"].(string)
	s.deleted = dt != ""
	s.destroyed, _ = meta["destroyed"].(bool)
	d, _ := body["data"].(map[string]any)
	switch {
	case s.gone():
		return s
	case d == nil:
		// A 404 with metadata but neither marker: treat the version as
		// gone, so that it is never mistaken for an empty secret.
		s.deleted = s.version > 0
		return s
	}
	s.data = d
	return s
}

// decodeMetadata decodes the data of a read of mount/metadata/<path>: the
// current version and the state of that version, and the owner. It holds
// no values.
func decodeMetadata(body map[string]any) secretState {
	var s secretState
	if body == nil {
		return s
	}
	s.version = intOf(body["current_version"])
	s.owner = ownerOf(body["custom_metadata"])
	if versions, ok := body["versions"].(map[string]any); ok {
		if v, ok := versions[strconv.Itoa(s.version)].(map[string]any); ok {
			dt, _ := v["deletion_time"].(string)
			s.deleted = dt != ""
			s.destroyed, _ = v["destroyed"].(bool)
		}
	}
	return s
}

func ownerOf(v any) string {
	cm, _ := v.(map[string]any)
	owner, _ := cm[OwnerKey].(string)
	return owner
}

// intOf reads a non-negative integer that Vault sent as a JSON number; 0
// for anything else.
func intOf(v any) int {
	var n int64
	switch x := v.(type) {
	case json.Number:
		i, err := x.Int64()
		if err != nil {
			return 0
		}
		n = i
	case float64:
		if x != math.Trunc(x) || x > math.MaxInt32 {
			return 0
		}
		n = int64(x)
	case int:
		n = int64(x)
	default:
		return 0
	}
	if n < 0 || n > math.MaxInt32 {
		return 0
	}
	return int(n)
}

// text turns a value read from Vault into the opaque string the engine
// sees: strings as they are, anything else as its JSON text.
func text(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// same reports whether the stored value v reads as s, so that writing s
// would change nothing but the type.
func same(v any, s string) bool { return v != nil && text(v) == s }
