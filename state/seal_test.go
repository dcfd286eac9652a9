package state

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	gosync "sync"
	"sync/atomic"
	"testing"

	"github.com/secretsync/secretsync/internal/fingerprint"
)

// memSealer is a KeySealer with versioned AES-GCM keys in memory, playing
// a Vault Transit key: sealed keys read "mem:v<version>:<base64>", Rotate
// adds a version, and fail makes every call fail.
type memSealer struct {
	kind string

	mu       gosync.Mutex
	keys     [][]byte // keys[i] is version i+1
	fail     error
	garbage  bool // Seal and Rewrap return something that does not unseal
	seals    atomic.Int64
	unseals  atomic.Int64
	rewraps  atomic.Int64
	unsealOK atomic.Int64
}

var errDenied = errors.New("permission denied on the sealing key")

func newMemSealer() *memSealer {
	s := &memSealer{kind: "mem"}
	s.Rotate()
	return s
}

func (s *memSealer) Kind() string { return s.kind }

func (s *memSealer) Rotate() {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	s.keys = append(s.keys, k)
}

func (s *memSealer) setFail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = err
}

func (s *memSealer) aead(version int) (cipher.AEAD, error) {
	if version < 1 || version > len(s.keys) {
		return nil, fmt.Errorf("no key version %d", version)
	}
	b, err := aes.NewCipher(s.keys[version-1])
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

func (s *memSealer) seal(key []byte) (string, error) {
	if s.fail != nil {
		return "", s.fail
	}
	if s.garbage {
		return "mem:v1:AAAA", nil
	}
	v := len(s.keys)
	a, err := s.aead(v)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, a.NonceSize())
	_, _ = rand.Read(nonce)
	return fmt.Sprintf("mem:v%d:%s", v, base64.StdEncoding.EncodeToString(a.Seal(nonce, nonce, key, nil))), nil
}

func (s *memSealer) unseal(sealed string) ([]byte, error) {
	if s.fail != nil {
		return nil, s.fail
	}
	parts := strings.SplitN(sealed, ":", 3)
	if len(parts) != 3 || parts[0] != "mem" || !strings.HasPrefix(parts[1], "v") {
		return nil, errors.New("not a sealed key")
	}
	v, err := strconv.Atoi(parts[1][1:])
	if err != nil {
		return nil, err
	}
	a, err := s.aead(v)
	if err != nil {
		return nil, err
	}
	ct, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(ct) < a.NonceSize() {
		return nil, errors.New("damaged sealed key")
	}
	return a.Open(nil, ct[:a.NonceSize()], ct[a.NonceSize():], nil)
}

func (s *memSealer) Seal(_ context.Context, key []byte) (string, error) {
	s.seals.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seal(key)
}

func (s *memSealer) Unseal(ctx context.Context, sealed string) ([]byte, error) {
	s.unseals.Add(1)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k, err := s.unseal(sealed)
	if err == nil {
		s.unsealOK.Add(1)
	}
	return k, err
}

func (s *memSealer) Rewrap(_ context.Context, sealed string) (string, error) {
	s.rewraps.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	k, err := s.unseal(sealed)
	if err != nil {
		return "", err
	}
	return s.seal(k)
}

var (
	_ KeySealer    = (*memSealer)(nil)
	_ KeyRewrapper = (*memSealer)(nil)
)

// sealOnly hides Rewrap, for RewrapKey's Unseal-then-Seal path.
type sealOnly struct{ KeySealer }

// readSealedKeyFile parses the sealed key file at path.
func readSealedKeyFile(t *testing.T, path string) sealedKeyFile {
	t.Helper()
	var k sealedKeyFile
	if err := json.Unmarshal(readFile(t, path), &k); err != nil {
		t.Fatalf("key file is not a sealed key file: %v", err)
	}
	return k
}

// mustNotHoldKey fails the test if data holds key in any usual encoding.
func mustNotHoldKey(t *testing.T, data, key []byte) {
	t.Helper()
	for _, enc := range []string{
		string(key),
		base64.StdEncoding.EncodeToString(key), base64.RawStdEncoding.EncodeToString(key),
		base64.URLEncoding.EncodeToString(key), base64.RawURLEncoding.EncodeToString(key),
		hex.EncodeToString(key), strings.ToUpper(hex.EncodeToString(key)),
	} {
		if bytes.Contains(data, []byte(enc)) {
			t.Fatalf("the key file holds the key (%q)", data)
		}
	}
}

// files returns the content of every file in dir.
func files(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, n := range dirNames(t, dir) {
		m[n] = string(readFile(t, filepath.Join(dir, n)))
	}
	return m
}

// symlink makes a symbolic link at link naming target.
func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// mustBeLink fails the test unless path is a symbolic link naming target.
func mustBeLink(t *testing.T, path, target string) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&fs.ModeSymlink == 0 {
		t.Fatalf("%s is no longer a symbolic link (mode %v)", path, fi.Mode())
	}
	if got, err := os.Readlink(path); err != nil || got != target {
		t.Fatalf("%s links to %q (%v), want %q", path, got, err, target)
	}
}

func TestFileSealedKey(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	s := newMemSealer()
	f := openTestFile(t, path, &FileOptions{Sealer: s})
	key, err := f.FingerprintKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	data := readFile(t, path+".key")
	mustNotHoldKey(t, data, key)
	k := readSealedKeyFile(t, path+".key")
	if k.Format != KeyFileFormat || k.Sealer != "mem" || !strings.HasPrefix(k.Sealed, "mem:v1:") {
		t.Fatalf("key file = %s", data)
	}
	if s.seals.Load() != 1 || s.unseals.Load() != 1 {
		t.Errorf("new key: %d seals, %d unseals; want 1 and 1 (the check)", s.seals.Load(), s.unseals.Load())
	}
	if again, err := f.FingerprintKey(ctx); err != nil || !bytes.Equal(again, key) {
		t.Fatalf("second FingerprintKey = %v", err)
	}
	if err := f.Save(ctx, "app", sampleState(t)); err != nil {
		t.Fatal(err)
	}
	if s.seals.Load() != 1 || s.unseals.Load() != 1 {
		t.Errorf("the key was sealed or unsealed again: %d seals, %d unseals", s.seals.Load(), s.unseals.Load())
	}
	f.Close()

	// A new File unseals once, however many callers ask at once.
	g := openTestFile(t, path, &FileOptions{Sealer: s})
	before := s.unseals.Load()
	var wg gosync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := g.FingerprintKey(ctx)
			if err != nil || !bytes.Equal(got, key) {
				t.Errorf("FingerprintKey after reopen = %v, or another key", err)
			}
		}()
	}
	wg.Wait()
	if n := s.unseals.Load() - before; n != 1 {
		t.Errorf("reopened File unsealed %d times, want 1", n)
	}
	if got := readFile(t, path+".key"); !bytes.Equal(got, data) {
		t.Error("reopening rewrote the key file")
	}
}

func TestFileSealedKeyMigration(t *testing.T) { testSealedKeyMigration(t, false) }

// testSealedKeyMigration seals a plain key file in place, with the key file
// a symbolic link into another directory if linked.
func testSealedKeyMigration(t *testing.T, linked bool) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	keyFile := path + ".key"
	if linked {
		keyFile = filepath.Join(t.TempDir(), "fingerprint.key")
		symlink(t, keyFile, path+".key")
	}
	f := openTestFile(t, path, nil)
	key, err := f.FingerprintKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Save(ctx, "app", sampleState(t)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	plain := readFile(t, keyFile)
	state := readFile(t, path)

	// The sealer fails: the plain key file stays, no key is given.
	s := newMemSealer()
	s.setFail(errDenied)
	g := openTestFile(t, path, &FileOptions{Sealer: s})
	if _, err := g.FingerprintKey(ctx); !errors.Is(err, ErrSealer) || !errors.Is(err, errDenied) {
		t.Fatalf("FingerprintKey with a failing sealer = %v, want ErrSealer", err)
	}
	if got := readFile(t, keyFile); !bytes.Equal(got, plain) {
		t.Fatal("a failed migration changed the key file")
	}
	// The write fails: same.
	s.setFail(nil)
	g.failAt = func(step string) error {
		if step == "rename" {
			return errors.New("injected failure")
		}
		return nil
	}
	if _, err := g.FingerprintKey(ctx); err == nil {
		t.Fatal("FingerprintKey succeeded although the sealed key file could not be written")
	}
	if got := readFile(t, keyFile); !bytes.Equal(got, plain) {
		t.Fatal("a failed migration changed the key file")
	}
	g.failAt = nil

	got, err := g.FingerprintKey(ctx)
	if err != nil || !bytes.Equal(got, key) {
		t.Fatalf("FingerprintKey after migration = %v, or another key", err)
	}
	if linked {
		mustBeLink(t, path+".key", keyFile)
	}
	sealed := readFile(t, keyFile)
	mustNotHoldKey(t, sealed, key)
	if k := readSealedKeyFile(t, keyFile); k.Sealer != "mem" {
		t.Fatalf("key file = %s", sealed)
	}
	if got := readFile(t, path); !bytes.Equal(got, state) {
		t.Error("migration changed the state file")
	}
	if got := dirNames(t, dir); !slices.Equal(got, []string{"state.json", "state.json.key", "state.json.lock"}) {
		t.Errorf("directory holds %q", got)
	}
	g.Close()

	h := openTestFile(t, path, &FileOptions{Sealer: s})
	if got, err := h.FingerprintKey(ctx); err != nil || !bytes.Equal(got, key) {
		t.Fatalf("FingerprintKey after reopening = %v, or another key", err)
	}
}

func TestFileSealedKeyLost(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		lose func(s *memSealer) *memSealer // returns the sealer to reopen with
		want error
	}{
		{"access denied", func(s *memSealer) *memSealer { s.setFail(errDenied); return s }, errDenied},
		{"another sealing key", func(*memSealer) *memSealer { return newMemSealer() }, nil},
		{"sealing key deleted", func(s *memSealer) *memSealer {
			s.mu.Lock()
			s.keys = nil
			s.mu.Unlock()
			return s
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "state.json")
			s := newMemSealer()
			f := openTestFile(t, path, &FileOptions{Sealer: s})
			key, err := f.FingerprintKey(ctx)
			if err != nil {
				t.Fatal(err)
			}
			st := sampleState(t)
			if err := f.Save(ctx, "app", st); err != nil {
				t.Fatal(err)
			}
			f.Close()
			before := files(t, dir)

			s2 := tt.lose(s)
			g := openTestFile(t, path, &FileOptions{Sealer: s2})
			for range 2 {
				_, err = g.FingerprintKey(ctx)
				var se *SealError
				if !errors.Is(err, ErrSealer) || !errors.As(err, &se) || se.Op != "unseal" || se.Path != path+".key" || se.Kind != "mem" {
					t.Fatalf("FingerprintKey = %v, want a *SealError for unseal", err)
				}
				if tt.want != nil && !errors.Is(err, tt.want) {
					t.Fatalf("FingerprintKey = %v, want it to wrap %v", err, tt.want)
				}
				if !strings.Contains(err.Error(), path+".key") {
					t.Fatalf("error %q does not name the key file", err)
				}
			}
			if got := files(t, dir); !mapsEqual(got, before) {
				t.Fatal("a lost sealer changed the files")
			}
			if got, err := g.Load(ctx, "app"); err != nil || got.Revision != st.Revision {
				t.Fatalf("Load = %v", err)
			}
			if err := g.RewrapKey(ctx); !errors.Is(err, ErrSealer) {
				t.Fatalf("RewrapKey = %v, want ErrSealer", err)
			}
			if got := files(t, dir); !mapsEqual(got, before) {
				t.Fatal("a failed RewrapKey changed the files")
			}
			if tt.name == "access denied" {
				s.setFail(nil)
				if got, err := g.FingerprintKey(ctx); err != nil || !bytes.Equal(got, key) {
					t.Fatalf("FingerprintKey once access is back = %v, or another key", err)
				}
			}
		})
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestFileSealerMismatch(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	s := newMemSealer()
	f := openTestFile(t, path, &FileOptions{Sealer: s})
	if _, err := f.FingerprintKey(ctx); err != nil {
		t.Fatal(err)
	}
	f.Close()
	before := files(t, dir)

	g := openTestFile(t, path, nil)
	_, err := g.FingerprintKey(ctx)
	if !errors.Is(err, ErrSealerMismatch) || !strings.Contains(err.Error(), `sealed by "mem"`) || !strings.Contains(err.Error(), "Sealer is not set") {
		t.Fatalf("FingerprintKey without a sealer = %v, want ErrSealerMismatch saying so", err)
	}
	if err := g.RewrapKey(ctx); !errors.Is(err, ErrSealerMismatch) {
		t.Fatalf("RewrapKey without a sealer = %v, want ErrSealerMismatch", err)
	}
	g.Close()

	other := newMemSealer()
	other.kind = "other"
	h := openTestFile(t, path, &FileOptions{Sealer: other})
	if _, err := h.FingerprintKey(ctx); !errors.Is(err, ErrSealerMismatch) || !strings.Contains(err.Error(), `"other"`) {
		t.Fatalf("FingerprintKey with another kind of sealer = %v, want ErrSealerMismatch", err)
	}
	if other.unseals.Load() != 0 {
		t.Error("a sealer of another kind was asked to unseal")
	}
	if got := files(t, dir); !mapsEqual(got, before) {
		t.Fatal("the files changed")
	}
}

func TestFileRewrapKey(t *testing.T) {
	ctx := context.Background()
	for _, rewrapper := range []bool{true, false} {
		t.Run(map[bool]string{true: "Rewrap", false: "Unseal and Seal"}[rewrapper], func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "state.json")
			s := newMemSealer()
			var sealer KeySealer = s
			if !rewrapper {
				sealer = sealOnly{s}
			}
			f := openTestFile(t, path, &FileOptions{Sealer: sealer})
			key, err := f.FingerprintKey(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := f.Save(ctx, "app", sampleState(t)); err != nil {
				t.Fatal(err)
			}

			// Nothing rotated: harmless (the sealed key may be new text
			// for the same key at the same version).
			if err := f.RewrapKey(ctx); err != nil {
				t.Fatal(err)
			}
			if k := readSealedKeyFile(t, path+".key"); !strings.HasPrefix(k.Sealed, "mem:v1:") {
				t.Fatalf("RewrapKey without a rotation: key file holds %q", k.Sealed)
			}
			v1 := readFile(t, path+".key")

			s.Rotate()
			// A sealer whose new sealed key does not unseal: refused.
			s.mu.Lock()
			s.garbage = true
			s.mu.Unlock()
			if err := f.RewrapKey(ctx); !errors.Is(err, ErrSealer) {
				t.Fatalf("RewrapKey with a bad new sealed key = %v, want ErrSealer", err)
			}
			s.mu.Lock()
			s.garbage = false
			s.mu.Unlock()
			if got := readFile(t, path+".key"); !bytes.Equal(got, v1) {
				t.Fatal("a refused RewrapKey changed the key file")
			}

			if err := f.RewrapKey(ctx); err != nil {
				t.Fatal(err)
			}
			k := readSealedKeyFile(t, path+".key")
			if !strings.HasPrefix(k.Sealed, "mem:v2:") {
				t.Fatalf("after RewrapKey the key file holds %q, want version 2", k.Sealed)
			}
			if rewrapper && s.rewraps.Load() == 0 {
				t.Error("Rewrap was not used")
			}
			if got, err := f.FingerprintKey(ctx); err != nil || !bytes.Equal(got, key) {
				t.Fatal("the key changed")
			}
			if got := dirNames(t, dir); !slices.Equal(got, []string{"state.json", "state.json.key", "state.json.lock"}) {
				t.Errorf("directory holds %q", got)
			}
			f.Close()

			// Version 1 can go: the key file no longer needs it.
			s.mu.Lock()
			s.keys[0] = make([]byte, 32)
			s.mu.Unlock()
			g := openTestFile(t, path, &FileOptions{Sealer: sealer})
			if got, err := g.FingerprintKey(ctx); err != nil || !bytes.Equal(got, key) {
				t.Fatalf("FingerprintKey after rewrap and reopen = %v, or another key", err)
			}
		})
	}
}

func TestFileSealedKeyFileCorrupt(t *testing.T) {
	ctx := context.Background()
	for _, content := range []string{
		`{`, `{"format":1}`, `{"format":1,"sealer":"mem"}`, `{"format":1,"sealer":"","sealed":"x"}`,
		`{"format":"1","sealer":"mem","sealed":"mem:v1:AAAA"}`, `{"format":2,"sealer":"mem","sealed":"mem:v1:AAAA"}`,
		"  {\"format\":1,\"sealer\":\"mem\",\"sealed\":[]}",
	} {
		dir := t.TempDir()
		path := filepath.Join(dir, "state.json")
		if err := os.WriteFile(path+".key", []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		s := newMemSealer()
		f := openTestFile(t, path, &FileOptions{Sealer: s})
		_, err := f.FingerprintKey(ctx)
		var ce *CorruptError
		if !errors.As(err, &ce) || ce.Path != path+".key" {
			t.Errorf("%s: FingerprintKey = %v, want a *CorruptError for the key file", content, err)
		}
		if strings.Contains(content, `"format":2`) && !errors.Is(err, ErrUnknownFormat) {
			t.Errorf("%s: FingerprintKey = %v, want ErrUnknownFormat", content, err)
		}
		if got := readFile(t, path+".key"); string(got) != content {
			t.Errorf("%s: the key file was changed", content)
		}
	}
}

// A sealed key that unseals to the wrong size is corrupt, not a key.
func TestFileSealedKeyWrongSize(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.json")
	s := newMemSealer()
	sealed, err := s.Seal(ctx, make([]byte, 16))
	if err != nil {
		t.Fatal(err)
	}
	data, _ := encodeSealedKeyFile("mem", sealed)
	if err := os.WriteFile(path+".key", data, 0o600); err != nil {
		t.Fatal(err)
	}
	f := openTestFile(t, path, &FileOptions{Sealer: s})
	if _, err := f.FingerprintKey(ctx); !errors.Is(err, ErrCorrupt) || !errors.Is(err, fingerprint.ErrKeySize) {
		t.Fatalf("FingerprintKey = %v, want a *CorruptError wrapping ErrKeySize", err)
	}
}

func TestFileSealedKeyMissingWithBaselines(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	s := newMemSealer()
	f := openTestFile(t, path, &FileOptions{Sealer: s})
	if _, err := f.FingerprintKey(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.Save(ctx, "app", sampleState(t)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Remove(path + ".key"); err != nil {
		t.Fatal(err)
	}
	seals := s.seals.Load()
	g := openTestFile(t, path, &FileOptions{Sealer: s})
	if _, err := g.FingerprintKey(ctx); !errors.Is(err, ErrCorrupt) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("FingerprintKey = %v, want a missing key file", err)
	}
	if s.seals.Load() != seals {
		t.Error("a new key was sealed")
	}
	if _, err := os.Stat(path + ".key"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a new key file was made: %v", err)
	}
}

func TestFileSealedKeyContext(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	s := newMemSealer()
	f := openTestFile(t, path, &FileOptions{Sealer: s})
	if _, err := f.FingerprintKey(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.Close()
	g := openTestFile(t, path, &FileOptions{Sealer: s})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := g.FingerprintKey(ctx); err != context.Canceled {
		t.Fatalf("FingerprintKey with a cancelled ctx = %v, want context.Canceled as it is", err)
	}
	if err := g.RewrapKey(ctx); err != context.Canceled {
		t.Fatalf("RewrapKey with a cancelled ctx = %v, want context.Canceled as it is", err)
	}
}

func TestOpenFileSealerOptions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	if _, err := OpenFile(path, &FileOptions{Key: make([]byte, 32), Sealer: newMemSealer()}); err == nil {
		t.Error("OpenFile with both Key and Sealer succeeded")
	}
	s := newMemSealer()
	s.kind = ""
	if _, err := OpenFile(path, &FileOptions{Sealer: s}); err == nil {
		t.Error("OpenFile with a sealer of empty Kind succeeded")
	}
	if g, err := OpenFile(path, nil); err != nil {
		t.Fatalf("the lock was kept after a refused OpenFile: %v", err)
	} else {
		g.Close()
	}
}
