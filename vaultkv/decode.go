package vaultkv

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// This file is the one decoding of Vault's responses in this package, pure
// functions of a response's data (api.Secret's Data): every read path
// (List in both layouts, the state Store, polling) goes through decodeData
// or decodeMetadata, every KV v2 write through decodeWrite, every LIST
// through decodeList, and the mount check through decodeMount. They are
// table-tested on responses captured from a real Vault in
// testdata/vault-1.19 (see decode_fixtures_test.go), and fuzzed.

// secretState is what one KV v2 read response says about a secret.
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

// decodeWrite returns the version that a KV v2 write of mount/data/<path>
// with check-and-set cas created: the response's metadata version, or
// cas+1 when the response does not say (a body Vault did not send, or a
// proxy that dropped it).
func decodeWrite(body map[string]any, cas int) int {
	if v := intOf(body["version"]); v > 0 {
		return v
	}
	return cas + 1
}

// decodeList returns the names of a LIST response (nil data for a 404):
// secrets, and folders with a trailing '/'. Empty and non-string names are
// dropped.
func decodeList(body map[string]any) []string {
	raw, _ := body["keys"].([]any)
	out := make([]string, 0, len(raw))
	for _, r := range raw {
		if name, _ := r.(string); name != "" {
			out = append(out, name)
		}
	}
	return out
}

// mountInfo is what sys/internal/ui/mounts says of a mount.
type mountInfo struct {
	typ      string // "" when there is no mount
	version  int    // KV version: 1 or 2; 0 when not KV (or unknown)
	accessor string
}

// decodeMount decodes the data of a read of sys/internal/ui/mounts/<mount>
// (nil when there is no mount). A KV mount without a version option (or
// with "1") is KV version 1, as Vault reads it.
func decodeMount(body map[string]any) mountInfo {
	var m mountInfo
	if body == nil {
		return m
	}
	m.typ, _ = body["type"].(string)
	m.accessor, _ = body["accessor"].(string)
	if m.typ != "kv" {
		return m
	}
	version := ""
	if o, ok := body["options"].(map[string]any); ok {
		version, _ = o["version"].(string)
	}
	switch version {
	case "", "1":
		m.version = 1
	case "2":
		m.version = 2
	}
	return m
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
