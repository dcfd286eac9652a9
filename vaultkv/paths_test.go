package vaultkv

import (
	"errors"
	"path"
	"strings"
	"testing"

	"github.com/secretsync/secretsync/destination"
)

func TestOptionsRefuseEscapingPaths(t *testing.T) {
	for _, opt := range []Options{
		{Mount: "secret", Path: "a/../../other"},
		{Mount: "secret", Path: "a//b"},
		{Mount: "secret", Path: "./app"},
		{Mount: "..", Path: "app"},
		{Mount: "secret/../sys", Path: "app"},
		{Mount: "secret", Path: "app\n"},
		{Mount: "secret", Path: "app\xff"},
		{Mount: "secret", Path: "app", Field: "v\xff"},
		{Mount: "secret", Layout: SecretKey, Path: ".."},
	} {
		if _, err := opt.normalize(); !errors.Is(err, ErrInvalidOptions) || !errors.Is(err, destination.ErrInvalidKey) {
			t.Errorf("%+v: %v, want ErrInvalidOptions and ErrInvalidKey", opt, err)
		}
	}
	for _, opt := range []StoreOptions{{Mount: "secret", Path: "../x"}, {Mount: "a//b"}} {
		if _, err := opt.normalize(); !errors.Is(err, ErrInvalidOptions) || !errors.Is(err, destination.ErrInvalidKey) {
			t.Errorf("%+v: %v, want ErrInvalidOptions and ErrInvalidKey", opt, err)
		}
	}
	// Leading and trailing slashes are trimmed, as before.
	opt, err := Options{Mount: "/secret/", Path: "/team/app/", Layout: SecretKey}.normalize()
	if err != nil || opt.Mount != "secret" || opt.Path != "team/app" {
		t.Fatalf("normalize = %+v, %v", opt, err)
	}
}

// FuzzKeyPath checks, for any mount, path and key, that either the options
// or the key are refused, or every path built for the key (data, metadata,
// delete, destroy, and KV v1's own) is clean and is exactly
// mount/<kind>/<path>/ (mount/<path>/ for KV v1) followed by the key: no
// key makes a request leave its prefix.
func FuzzKeyPath(f *testing.F) {
	for _, seed := range [][3]string{
		{"secret", "team", "DB_PASSWORD"},
		{"secret", "team", "../../other-team/DB_PASSWORD"},
		{"secret", "", "../sys/policy"},
		{"secret/", "/team/", "a//b"},
		{"kv", "team", "a/./b"},
		{"kv", "team", "/x"},
		{"kv", "team", "x/"},
		{"kv", "team", "nested/path/KEY"},
		{"kv", "a/b", "ü/ñ/%2e%2e"},
		{"kv", "team", "..."},
		{"kv", "team", "a\\..\\b"},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}
	f.Fuzz(func(t *testing.T, mount, p, key string) {
		opt, err := Options{Mount: mount, Path: p, Layout: SecretKey}.normalize()
		if err != nil {
			return
		}
		if checkName(key) != nil {
			return
		}
		kv := &KV{opt: opt}
		// "": KV v1, whose paths have no kind.
		for _, kind := range []string{kindData, kindMetadata, kindDelete, kindDestroy, ""} {
			prefix := opt.Mount + "/" + kind + "/"
			if kind == "" {
				prefix = opt.Mount + "/"
			}
			if opt.Path != "" {
				prefix += opt.Path + "/"
			}
			got := kv.keyPath(kind, key)
			if got != prefix+key {
				t.Fatalf("key %q: %s path %q, want %q", key, kind, got, prefix+key)
			}
			if path.Clean(got) != got || strings.Contains(got, "//") {
				t.Fatalf("key %q: %s path %q is not clean", key, kind, got)
			}
			for _, seg := range strings.Split(got, "/") {
				if seg == "." || seg == ".." || seg == "" {
					t.Fatalf("key %q: %s path %q has a %q segment", key, kind, got, seg)
				}
			}
		}
	})
}
