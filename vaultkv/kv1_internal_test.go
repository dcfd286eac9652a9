package vaultkv

import (
	"errors"
	"regexp"
	"testing"

	"github.com/secretsync/secretsync/destination"
)

// Answers of sys/internal/ui/mounts/<mount> from a real Vault 1.19
// (trimmed of request ids), and what they say.
func TestDecodeMount(t *testing.T) {
	for _, tt := range []struct {
		name, body string
		want       mountInfo
	}{
		{"kv v1 with options", `{"data":{"accessor":"kv_a4091f8f","options":{"version":"1"},"path":"v1a/","type":"kv"}}`, mountInfo{typ: "kv", version: 1, accessor: "kv_a4091f8f"}},
		{"kv without options", `{"data":{"accessor":"kv_6e627f66","options":{},"path":"v1b/","type":"kv"}}`, mountInfo{typ: "kv", version: 1, accessor: "kv_6e627f66"}},
		{"kv with null options", `{"data":{"accessor":"kv_1","options":null,"type":"kv"}}`, mountInfo{typ: "kv", version: 1, accessor: "kv_1"}},
		{"kv v2", `{"data":{"accessor":"kv_2","options":{"version":"2"},"type":"kv"}}`, mountInfo{typ: "kv", version: 2, accessor: "kv_2"}},
		{"kv of an unknown version", `{"data":{"accessor":"kv_3","options":{"version":"3"},"type":"kv"}}`, mountInfo{typ: "kv", accessor: "kv_3"}},
		{"transit", `{"data":{"accessor":"transit_1","options":null,"type":"transit"}}`, mountInfo{typ: "transit", accessor: "transit_1"}},
		{"no mount", `{"errors":[]}`, mountInfo{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := decodeMount(parse(t, []byte(tt.body))); got != tt.want {
				t.Fatalf("decodeMount = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestMountErrorMatches(t *testing.T) {
	for _, tt := range []struct {
		err        *MountError
		notKV, msg string
	}{
		{&MountError{Mount: "m", Type: "kv", Version: 1, Need: "x"}, "", `vaultkv: mount "m" is KV version 1; need x`},
		{&MountError{Mount: "m", Type: "transit", Need: "x"}, "yes", `vaultkv: mount "m" is transit; need x`},
		{&MountError{Mount: "m", Need: "x"}, "yes", `vaultkv: mount "m" does not exist; need x`},
	} {
		var err error = tt.err
		if !errors.Is(err, ErrNotKVv2) || errors.Is(err, ErrNotKV) != (tt.notKV != "") || err.Error() != tt.msg {
			t.Errorf("%+v: %q, ErrNotKVv2 %v, ErrNotKV %v", tt.err, err, errors.Is(err, ErrNotKVv2), errors.Is(err, ErrNotKV))
		}
	}
}

// A KV v1 version is 24 hex digits, the same for the same value in one KV,
// different in another KV (another salt), and never the value's plain
// SHA-256.
func TestFingerprintSalted(t *testing.T) {
	a, b := &KV{opt: Options{Mount: "m", Layout: SecretKey}}, &KV{opt: Options{Mount: "m", Layout: SecretKey}}
	for _, kv := range []*KV{a, b} {
		var err error
		if kv.opt, err = kv.opt.normalize(); err != nil {
			t.Fatal(err)
		}
		if err := kv.initV1(); err != nil {
			t.Fatal(err)
		}
	}
	hex24 := regexp.MustCompile(`^[0-9a-f]{24}$`)
	v := a.fingerprint("hunter2")
	switch {
	case !hex24.MatchString(v):
		t.Fatalf("version %q is not 24 hex digits", v)
	case a.fingerprint("hunter2") != v:
		t.Fatal("the same value gave two versions")
	case a.fingerprint("hunter3") == v:
		t.Fatal("two values gave one version")
	case b.fingerprint("hunter2") == v:
		t.Fatal("two KVs gave the same version: the salt is not per KV")
	case v == "f52fbd32b2b3b86ff88ef6c4": // SHA-256("hunter2"), truncated
		t.Fatal("the version is the unsalted hash")
	}
}

func TestCheckNameV1(t *testing.T) {
	for _, k := range []string{"..", "a..b", "..\\x", "x/..y", "...", "a/b.."} {
		if err := checkNameV1(k); !errors.Is(err, destination.ErrInvalidKey) {
			t.Errorf("%q: %v, want ErrInvalidKey", k, err)
		}
	}
	for _, k := range []string{"a.b", "a/.b", "x.", ".env", "data/K"} {
		if err := checkNameV1(k); err != nil {
			t.Errorf("%q: %v", k, err)
		}
	}
}
