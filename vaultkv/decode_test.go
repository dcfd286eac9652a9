package vaultkv

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"
	"unicode/utf8"

	"github.com/hashicorp/vault/api"
)

func parse(t *testing.T, body []byte) map[string]any {
	t.Helper()
	sec, err := api.ParseSecret(bytes.NewReader(body))
	if err != nil || sec == nil {
		return nil
	}
	return sec.Data
}

// FuzzDecode feeds response bodies (seeded with the real Vault responses
// of testdata) to the decoders: they never panic, a version is never
// negative, a write always has a version, a list holds no
// empty name, a deleted or destroyed version has no data, and string values
// come out exactly as they went in. The input is also used as a value: any valid UTF-8 text
// written by Vault as a JSON string reads back exactly.
func FuzzDecode(f *testing.F) {
	for _, b := range fixtureBodies(f) {
		f.Add(b)
	}
	f.Add([]byte(``))
	f.Add([]byte(`{"data":{"data":{"value":{"nested":{"deep":[1,2.50,"x",null,true]}}},"metadata":{"version":"7","custom_metadata":{"secretsync-owner":3}}}}`))
	f.Add([]byte(`{"data":{"data":{"value":-0.0e-0},"metadata":{"version":-1}}}`))
	f.Add([]byte(`{"data":{"current_version":99999999999999999999,"versions":{"99999999999999999999":{"destroyed":"yes"}}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var raw map[string]any
		if data := parse(t, body); data != nil {
			raw = data
		}
		if v := decodeWrite(raw, 0); v < 1 {
			t.Fatalf("decodeWrite = %d, want a version", v)
		}
		if slices.Contains(decodeList(raw), "") {
			t.Fatal("decodeList returned an empty name")
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
