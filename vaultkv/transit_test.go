package vaultkv_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/secretsync/secretsync/conflict"
	"github.com/secretsync/secretsync/connection"
	"github.com/secretsync/secretsync/state"
	"github.com/secretsync/secretsync/vaultkv"
	"github.com/secretsync/secretsync/vaultkv/vaulttest"
)

// transitKey enables a Transit mount with a fresh name and makes a key in
// it, both removed when the test ends.
func transitKey(t *testing.T, srv *vaulttest.Server) (mount, key string) {
	t.Helper()
	ctx := context.Background()
	c := srv.Client(t)
	mount = fmt.Sprintf("transit-%d", time.Now().UnixNano())
	if err := c.Sys().MountWithContext(ctx, mount, &api.MountInput{Type: "transit"}); err != nil {
		t.Fatalf("enable transit: %v", err)
	}
	t.Cleanup(func() { _ = c.Sys().UnmountWithContext(context.Background(), mount) })
	key = "secretsync-state"
	if _, err := c.Logical().WriteWithContext(ctx, mount+"/keys/"+key, nil); err != nil {
		t.Fatalf("create transit key: %v", err)
	}
	return mount, key
}

// transitPolicy is the policy that Policy gives for the Transit key, less
// the operations not in ops (default: every operation).
func transitPolicy(mount, key string, ops ...string) string {
	if len(ops) == 0 {
		ops = []string{"encrypt", "decrypt", "rewrap"}
	}
	hcl, err := vaultkv.Policy(vaultkv.PolicySpec{Transit: []vaultkv.TransitAccess{{Options: vaultkv.TransitOptions{Mount: mount, Key: key}, Rewrap: true}}})
	if err != nil {
		panic(err)
	}
	blocks := strings.SplitAfter(hcl, "}\n")
	var b strings.Builder
	for _, blk := range blocks {
		for _, op := range ops {
			if strings.Contains(blk, fmt.Sprintf("%q", mount+"/"+op+"/"+key)) {
				b.WriteString(blk)
			}
		}
	}
	if strings.Count(b.String(), "path ") != len(ops) {
		panic("Policy does not give every Transit operation: " + hcl)
	}
	return b.String()
}

// tokenConn returns a connection through addr with a new token holding
// policy (and Vault's default policy).
func tokenConn(t *testing.T, srv *vaulttest.Server, addr, policy string) *connection.Conn {
	t.Helper()
	name := srv.Policy(t, policy)
	sec, err := srv.Client(t).Auth().Token().CreateWithContext(context.Background(), &api.TokenCreateRequest{Policies: []string{name}})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := connection.New(context.Background(), connection.Config{
		Address: addr,
		Token:   &connection.Token{Token: connection.Credential{Value: sec.Auth.ClientToken}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func newTransit(t *testing.T, conn *connection.Conn, mount, key string) *vaultkv.Transit {
	t.Helper()
	tr, err := vaultkv.NewTransit(conn, &vaultkv.TransitOptions{Mount: mount, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func openFile(t *testing.T, path string, opts *state.FileOptions) *state.File {
	t.Helper()
	f, err := state.OpenFile(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// sealedKeyFile parses a sealed key file.
func sealedKeyFile(t *testing.T, path string) (kind, sealed string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		Format int    `json:"format"`
		Sealer string `json:"sealer"`
		Sealed string `json:"sealed"`
	}
	if err := json.Unmarshal(data, &k); err != nil || k.Format != state.KeyFileFormat {
		t.Fatalf("key file is not a sealed key file (%v): %q", err, data)
	}
	return k.Sealer, k.Sealed
}

// snapshot returns the content of every file in dir.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = string(b)
	}
	return m
}

func sameFiles(t *testing.T, dir string, want map[string]string) {
	t.Helper()
	got := snapshot(t, dir)
	if len(got) != len(want) {
		t.Fatalf("directory holds %d files, want %d", len(got), len(want))
	}
	for n, w := range want {
		if got[n] != w {
			t.Fatalf("%s changed on disk", n)
		}
	}
}

// sealedState makes a state file with baselines and a Transit-sealed key in
// a new directory, through conn, and returns the directory, the state
// file's path and the key.
func sealedState(t *testing.T, conn *connection.Conn, mount, key string) (dir, path string, fpKey []byte) {
	t.Helper()
	ctx := context.Background()
	dir = t.TempDir()
	path = filepath.Join(dir, "state.json")
	f, err := state.OpenFile(path, &state.FileOptions{Sealer: newTransit(t, conn, mount, key)})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fpKey, err = f.FingerprintKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var fp conflict.Fingerprint
	copy(fp[:], bytes.Repeat([]byte{1}, len(fp)))
	if err := f.Save(ctx, "app", &state.State{Baseline: map[string]conflict.Fingerprint{"DB_URL": fp}, Initialized: true}); err != nil {
		t.Fatal(err)
	}
	return dir, path, fpKey
}

func TestTransitSealedState(t *testing.T) {
	ctx := context.Background()
	srv := vaulttest.Get(t)
	root := srv.Client(t)
	mount, key := transitKey(t, srv)
	cnt := srv.RequestProxy(t)
	// A token with exactly the documented policy.
	conn := tokenConn(t, srv, cnt.URL(), transitPolicy(mount, key))
	decrypt, encrypt, rewrap := mount+"/decrypt/"+key, mount+"/encrypt/"+key, mount+"/rewrap/"+key

	_, path, fpKey := sealedState(t, conn, mount, key)

	// The key file holds Transit ciphertext only.
	data, err := os.ReadFile(path + ".key")
	if err != nil {
		t.Fatal(err)
	}
	for _, enc := range []string{string(fpKey), base64.StdEncoding.EncodeToString(fpKey), base64.RawStdEncoding.EncodeToString(fpKey),
		base64.URLEncoding.EncodeToString(fpKey), base64.RawURLEncoding.EncodeToString(fpKey), hex.EncodeToString(fpKey)} {
		if bytes.Contains(data, []byte(enc)) {
			t.Fatalf("the key file holds the key: %q", data)
		}
	}
	kind, sealed := sealedKeyFile(t, path+".key")
	if kind != vaultkv.TransitKind || !strings.HasPrefix(sealed, "vault:v1:") {
		t.Fatalf("key file: sealer %q, sealed %q; want %q and vault:v1:…", kind, sealed, vaultkv.TransitKind)
	}
	sec, err := root.Logical().WriteWithContext(ctx, decrypt, map[string]any{"ciphertext": sealed})
	if err != nil || sec.Data["plaintext"] != base64.StdEncoding.EncodeToString(fpKey) {
		t.Fatalf("Transit does not decrypt the key file to the key: %v", err)
	}

	// A new File unseals once, however many callers ask.
	before := cnt.Count(decrypt)
	encBefore := cnt.Count(encrypt)
	f := openFile(t, path, &state.FileOptions{Sealer: newTransit(t, conn, mount, key)})
	var wg gosync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if got, err := f.FingerprintKey(ctx); err != nil || !bytes.Equal(got, fpKey) {
				t.Errorf("FingerprintKey after reopening = %v, or another key", err)
			}
		}()
	}
	wg.Wait()
	if n := cnt.Count(decrypt) - before; n != 1 {
		t.Errorf("reopening made %d decrypt requests, want 1", n)
	}
	if n := cnt.Count(encrypt) - encBefore; n != 0 {
		t.Errorf("reopening made %d encrypt requests, want 0", n)
	}

	// Rotate the Transit key, rewrap: the key file moves to v2, and v1 can
	// then be refused by Vault.
	if _, err := root.Logical().WriteWithContext(ctx, mount+"/keys/"+key+"/rotate", nil); err != nil {
		t.Fatal(err)
	}
	if err := f.RewrapKey(ctx); err != nil {
		t.Fatal(err)
	}
	if cnt.Count(rewrap) != 1 {
		t.Errorf("RewrapKey made %d rewrap requests, want 1", cnt.Count(rewrap))
	}
	if _, sealed := sealedKeyFile(t, path+".key"); !strings.HasPrefix(sealed, "vault:v2:") {
		t.Fatalf("after RewrapKey the key file holds %q, want vault:v2:…", sealed)
	}
	f.Close()
	if _, err := root.Logical().WriteWithContext(ctx, mount+"/keys/"+key+"/config", map[string]any{"min_decryption_version": 2}); err != nil {
		t.Fatal(err)
	}
	g := openFile(t, path, &state.FileOptions{Sealer: newTransit(t, conn, mount, key)})
	if got, err := g.FingerprintKey(ctx); err != nil || !bytes.Equal(got, fpKey) {
		t.Fatalf("FingerprintKey after rewrap and min_decryption_version 2 = %v, or another key", err)
	}
	if st, err := g.Load(ctx, "app"); err != nil || len(st.Baseline) != 1 {
		t.Fatalf("Load after rewrap = %v", err)
	}
}

func TestTransitLostAccess(t *testing.T) {
	ctx := context.Background()
	srv := vaulttest.Get(t)
	root := srv.Client(t)

	tests := []struct {
		name string
		// lose breaks access and returns the connection and sealer to
		// reopen with.
		lose func(t *testing.T, mount, key string) *vaultkv.Transit
		want error
		// path and capability that the error must name.
		path func(mount, key string) string
	}{
		{"key deleted", func(t *testing.T, mount, key string) *vaultkv.Transit {
			if _, err := root.Logical().WriteWithContext(ctx, mount+"/keys/"+key+"/config", map[string]any{"deletion_allowed": true}); err != nil {
				t.Fatal(err)
			}
			if _, err := root.Logical().DeleteWithContext(ctx, mount+"/keys/"+key); err != nil {
				t.Fatal(err)
			}
			return newTransit(t, tokenConn(t, srv, srv.Addr, transitPolicy(mount, key)), mount, key)
		}, vaultkv.ErrTransitKeyNotFound, func(mount, key string) string { return mount + "/decrypt/" + key }},
		{"policy without decrypt", func(t *testing.T, mount, key string) *vaultkv.Transit {
			return newTransit(t, tokenConn(t, srv, srv.Addr, transitPolicy(mount, key, "encrypt", "rewrap")), mount, key)
		}, connection.ErrPermissionDenied, func(mount, key string) string { return mount + "/decrypt/" + key }},
		{"another transit key", func(t *testing.T, mount, key string) *vaultkv.Transit {
			if _, err := root.Logical().WriteWithContext(ctx, mount+"/keys/other", nil); err != nil {
				t.Fatal(err)
			}
			return newTransit(t, tokenConn(t, srv, srv.Addr, transitPolicy(mount, "other")), mount, "other")
		}, vaultkv.ErrTransitCiphertext, func(mount, _ string) string { return mount + "/decrypt/other" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mount, key := transitKey(t, srv)
			conn := tokenConn(t, srv, srv.Addr, transitPolicy(mount, key))
			dir, path, fpKey := sealedState(t, conn, mount, key)
			before := snapshot(t, dir)

			sealer := tt.lose(t, mount, key)
			f := openFile(t, path, &state.FileOptions{Sealer: sealer})
			for range 2 {
				got, err := f.FingerprintKey(ctx)
				if got != nil {
					t.Fatal("FingerprintKey returned a key")
				}
				var se *state.SealError
				if !errors.Is(err, state.ErrSealer) || !errors.As(err, &se) || se.Op != "unseal" || !errors.Is(err, tt.want) {
					t.Fatalf("FingerprintKey = %v; want a *state.SealError wrapping %v", err, tt.want)
				}
				p := tt.path(mount, key)
				if msg := err.Error(); !strings.Contains(msg, p) || (tt.want != vaultkv.ErrTransitCiphertext && !strings.Contains(msg, `"update"`)) {
					t.Fatalf("error %q does not name %s and the \"update\" capability", msg, p)
				}
				if strings.Contains(err.Error(), base64.StdEncoding.EncodeToString(fpKey)) {
					t.Fatal("the error holds the key")
				}
				if tt.want == connection.ErrPermissionDenied {
					var ce *connection.Error
					if !errors.As(err, &ce) || ce.Path != p || ce.Capability != "update" {
						t.Fatalf("FingerprintKey = %v; want a *connection.Error for %s and update", err, p)
					}
				}
			}
			if err := f.RewrapKey(ctx); !errors.Is(err, state.ErrSealer) {
				t.Fatalf("RewrapKey = %v, want state.ErrSealer", err)
			}
			if _, err := f.Load(ctx, "app"); err != nil {
				t.Fatalf("Load = %v", err)
			}
			f.Close()
			sameFiles(t, dir, before)
		})
	}
}

// A key name that does not exist is never created, and no key file is made.
func TestTransitMissingKey(t *testing.T) {
	ctx := context.Background()
	srv := vaulttest.Get(t)
	mount, _ := transitKey(t, srv)
	conn := tokenConn(t, srv, srv.Addr, transitPolicy(mount, "missing"))
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	f := openFile(t, path, &state.FileOptions{Sealer: newTransit(t, conn, mount, "missing")})
	_, err := f.FingerprintKey(ctx)
	if !errors.Is(err, state.ErrSealer) || !strings.Contains(err.Error(), mount+"/encrypt/missing") || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("FingerprintKey with a missing Transit key = %v", err)
	}
	if _, err := os.Stat(path + ".key"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a key file was made: %v", err)
	}
	if sec, err := srv.Client(t).Logical().ReadWithContext(ctx, mount+"/keys/missing"); err != nil || sec != nil {
		t.Fatalf("the Transit key was created (%v)", err)
	}
}

// A plain key file is sealed in place with Transit and keeps its key.
func TestTransitMigration(t *testing.T) {
	ctx := context.Background()
	srv := vaulttest.Get(t)
	mount, key := transitKey(t, srv)
	conn := tokenConn(t, srv, srv.Addr, transitPolicy(mount, key))
	path := filepath.Join(t.TempDir(), "state.json")
	f := openFile(t, path, nil)
	fpKey, err := f.FingerprintKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	g := openFile(t, path, &state.FileOptions{Sealer: newTransit(t, conn, mount, key)})
	if got, err := g.FingerprintKey(ctx); err != nil || !bytes.Equal(got, fpKey) {
		t.Fatalf("FingerprintKey with Transit on a plain key file = %v, or another key", err)
	}
	if kind, sealed := sealedKeyFile(t, path+".key"); kind != vaultkv.TransitKind || !strings.HasPrefix(sealed, "vault:v1:") {
		t.Fatalf("key file not sealed: %q %q", kind, sealed)
	}
}

func TestNewTransitOptions(t *testing.T) {
	conn, err := connection.New(context.Background(), connection.Config{Address: "http://127.0.0.1:1", Token: &connection.Token{Token: connection.Credential{Value: "x"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []vaultkv.TransitOptions{
		{}, {Key: "a/b"}, {Key: ".."}, {Key: "k", Mount: "a//b"}, {Key: "k", Mount: "../sys"},
	} {
		if _, err := vaultkv.NewTransit(conn, &o); !errors.Is(err, vaultkv.ErrInvalidOptions) {
			t.Errorf("NewTransit(%+v) = %v, want ErrInvalidOptions", o, err)
		}
	}
	tr, err := vaultkv.NewTransit(conn, &vaultkv.TransitOptions{Key: "k"})
	if err != nil || tr.Kind() != vaultkv.TransitKind || !strings.Contains(tr.String(), `"transit"`) {
		t.Fatalf("NewTransit with the default mount = %v, %v", tr, err)
	}
}
