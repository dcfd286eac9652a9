package vaultkv

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/hashicorp/vault/api"
)

// Responses of a real Vault 1.19 (KV v2), as the tests' server sent them.
var vaultResponses = []string{
	// A data read: string, number, big number, bool, null, nested values, NUL
	// and control bytes; custom metadata with the owner and another field.
	`{"request_id":"ada0ea92-b4e6-e93f-f6e7-fea98c175267","lease_id":"","renewable":false,"lease_duration":0,"data":{"data":{"a":"x","b":true,"big":12345678901234567000,"n":1.5,"nul":null,"o":{"k":["v",2]},"u":"päss\u0000\u0007"},"metadata":{"created_time":"2026-11-23T15:06:08.42738542Z","custom_metadata":{"secretsync-owner":"me","team":"payments"},"deletion_time":"","destroyed":false,"version":1}},"wrap_info":null,"warnings":null,"auth":null,"mount_type":"kv"}`,
	// A soft-deleted latest version (404 with metadata).
	`{"request_id":"a98ab96c-585d-2293-bdd2-9354ec52f0da","lease_id":"","renewable":false,"lease_duration":0,"data":{"data":null,"metadata":{"created_time":"2026-11-23T15:06:08.449410346Z","custom_metadata":null,"deletion_time":"2026-11-23T15:06:08.456444174Z","destroyed":false,"version":1}},"wrap_info":null,"warnings":null,"auth":null,"mount_type":""}`,
	// A destroyed latest version.
	`{"request_id":"d31bf7a3-b2f7-844c-62c9-d86432d355f7","lease_id":"","renewable":false,"lease_duration":0,"data":{"data":null,"metadata":{"created_time":"2026-11-23T15:06:08.470015031Z","custom_metadata":null,"deletion_time":"","destroyed":true,"version":1}},"wrap_info":null,"warnings":null,"auth":null,"mount_type":""}`,
	// Metadata reads: deleted and destroyed current versions.
	`{"request_id":"8149daff-4d13-63c2-c0fa-96d9b57554a8","lease_id":"","renewable":false,"lease_duration":0,"data":{"cas_required":false,"created_time":"2026-11-23T15:06:08.449410346Z","current_version":1,"custom_metadata":null,"delete_version_after":"0s","max_versions":0,"oldest_version":0,"updated_time":"2026-11-23T15:06:08.449410346Z","versions":{"1":{"created_time":"2026-11-23T15:06:08.449410346Z","deletion_time":"2026-11-23T15:06:08.456444174Z","destroyed":false}}},"wrap_info":null,"warnings":null,"auth":null,"mount_type":"kv"}`,
	`{"request_id":"2afa23c1-83f0-0e47-60fb-a8e6bf3e4d0a","lease_id":"","renewable":false,"lease_duration":0,"data":{"cas_required":false,"created_time":"2026-11-23T15:06:08.470015031Z","current_version":1,"custom_metadata":null,"delete_version_after":"0s","max_versions":0,"oldest_version":0,"updated_time":"2026-11-23T15:06:08.470015031Z","versions":{"1":{"created_time":"2026-11-23T15:06:08.470015031Z","deletion_time":"","destroyed":true}}},"wrap_info":null,"warnings":null,"auth":null,"mount_type":"kv"}`,
	// Metadata of a secret with custom metadata and no version yet.
	`{"request_id":"5c0e4f8b-8a55-1b2c-77aa-0d6b8f0e2d11","lease_id":"","renewable":false,"lease_duration":0,"data":{"cas_required":false,"created_time":"2026-11-23T15:06:04.594166289Z","current_version":0,"custom_metadata":{"team":"payments"},"delete_version_after":"0s","max_versions":0,"oldest_version":0,"updated_time":"2026-11-23T15:06:04.594166289Z","versions":{}},"wrap_info":null,"warnings":null,"auth":null,"mount_type":"kv"}`,
	// A 404 without metadata.
	`{"errors":[]}`,
	``,
}

func parse(t *testing.T, body []byte) map[string]any {
	t.Helper()
	sec, err := api.ParseSecret(bytes.NewReader(body))
	if err != nil || sec == nil {
		return nil
	}
	return sec.Data
}

func TestDecodeVaultResponses(t *testing.T) {
	tests := []struct {
		meta               bool
		version            int
		deleted, destroyed bool
		owner              string
		values             map[string]string
	}{
		{version: 1, owner: "me", values: map[string]string{
			"a": "x", "b": "true", "big": "12345678901234567000", "n": "1.5", "nul": "null", "o": `{"k":["v",2]}`, "u": "päss\x00\x07",
		}},
		{version: 1, deleted: true},
		{version: 1, destroyed: true},
		{meta: true, version: 1, deleted: true},
		{meta: true, version: 1, destroyed: true},
		{meta: true},
		{},
		{},
	}
	for i, tt := range tests {
		body := parse(t, []byte(vaultResponses[i]))
		st := decodeData(body)
		if tt.meta {
			st = decodeMetadata(body)
		}
		if st.version != tt.version || st.deleted != tt.deleted || st.destroyed != tt.destroyed || st.owner != tt.owner {
			t.Errorf("response %d: decoded %+v, want %+v", i, st, tt)
		}
		if got := st.values(); len(got) != len(tt.values) {
			t.Errorf("response %d: %d values, want %d", i, len(got), len(tt.values))
		} else {
			for k, v := range tt.values {
				if got[k] != v {
					t.Errorf("response %d: %s = %q, want %q", i, k, got[k], v)
				}
			}
		}
	}
}

// FuzzDecode feeds response bodies (seeded with real Vault responses) to
// both decoders: they never panic, a version is never negative, a deleted
// or destroyed version has no data, and string values come out exactly as
// they went in. The input is also used as a value: any valid UTF-8 text
// written by Vault as a JSON string reads back exactly.
func FuzzDecode(f *testing.F) {
	for _, r := range vaultResponses {
		f.Add([]byte(r))
	}
	f.Add([]byte(`{"data":{"data":{"value":{"nested":{"deep":[1,2.50,"x",null,true]}}},"metadata":{"version":"7","custom_metadata":{"secretsync-owner":3}}}}`))
	f.Add([]byte(`{"data":{"data":{"value":-0.0e-0},"metadata":{"version":-1}}}`))
	f.Add([]byte(`{"data":{"current_version":99999999999999999999,"versions":{"99999999999999999999":{"destroyed":"yes"}}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var raw map[string]any
		if data := parse(t, body); data != nil {
			raw = data
		}
		for _, st := range []secretState{decodeData(raw), decodeMetadata(raw)} {
			if st.version < 0 {
				t.Fatalf("negative version %d", st.version)
			}
			if st.gone() && st.data != nil {
				t.Fatal("a deleted or destroyed version has data")
			}
			vals := st.values()
			for k, v := range st.data {
				if s, ok := v.(string); ok && vals[k] != s {
					t.Fatalf("string value of %q changed", k)
				}
				// Non-string values are JSON text that reads back as itself.
				if _, ok := v.(string); !ok {
					var back any
					dec := json.NewDecoder(bytes.NewReader([]byte(vals[k])))
					dec.UseNumber()
					if err := dec.Decode(&back); err != nil || text(back) != vals[k] {
						t.Fatalf("JSON text of %q does not read back as itself", k)
					}
				}
			}
		}
		// The input as a value, written by Vault as a JSON string.
		if !utf8.Valid(body) {
			return
		}
		resp, err := json.Marshal(map[string]any{"data": map[string]any{
			"data":     map[string]any{"value": string(body)},
			"metadata": map[string]any{"version": 3, "deletion_time": "", "destroyed": false},
		}})
		if err != nil {
			t.Fatal(err)
		}
		st := decodeData(parse(t, resp))
		if got := st.values()["value"]; got != string(body) || st.version != 3 || st.gone() {
			t.Fatalf("value of %d bytes read back as %d bytes (version %d)", len(body), len(got), st.version)
		}
	})
}
