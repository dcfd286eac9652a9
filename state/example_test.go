package state_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/secretsync/secretsync/conflict"
	"github.com/secretsync/secretsync/state"
)

func ExampleNewMemory() {
	ctx := context.Background()
	store := state.NewMemory()

	if _, err := store.Load(ctx, "app-prod"); errors.Is(err, state.ErrNotFound) {
		fmt.Println("no state yet: first sync")
	}

	st := &state.State{Sync: &state.Record{Status: state.Succeeded, Message: "2 keys synced"}}
	if err := store.Save(ctx, "app-prod", st); err != nil {
		log.Fatal(err)
	}
	fmt.Println("saved revision", st.Revision)

	// Two writers load revision 1; the first save wins, the second must
	// load again.
	a, _ := store.Load(ctx, "app-prod")
	b, _ := store.Load(ctx, "app-prod")
	a.Sync.Status = state.Running
	fmt.Println("first save:", store.Save(ctx, "app-prod", a))
	err := store.Save(ctx, "app-prod", b)
	fmt.Println("second save conflicts:", errors.Is(err, state.ErrConflict))
	// Output:
	// no state yet: first sync
	// saved revision 1
	// first save: <nil>
	// second save conflicts: true
}

func ExampleOpenFile() {
	dir, err := os.MkdirTemp("", "secretsync-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "state.json")
	ctx := context.Background()

	store, err := state.OpenFile(path, nil)
	if err != nil {
		log.Fatal(err)
	}
	// The key is made on first use and kept in state.json.key. The engine
	// uses it to fingerprint values; the state file never holds a value.
	key, err := store.FingerprintKey(ctx)
	if err != nil {
		log.Fatal(err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("postgres://user:pass@db/app"))
	var fp conflict.Fingerprint
	mac.Sum(fp[:0])

	st := &state.State{
		Baseline:    map[string]conflict.Fingerprint{"DB_URL": fp},
		Sync:        &state.Record{Status: state.Succeeded, Time: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), RunID: "run-1"},
		Initialized: true,
	}
	if err := store.Save(ctx, "app-prod", st); err != nil {
		log.Fatal(err)
	}
	fmt.Println("saved revision", st.Revision)
	if err := store.Close(); err != nil {
		log.Fatal(err)
	}

	info, err := os.Stat(path)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("state file mode", info.Mode())

	// Another run of the program opens the same file.
	store, err = state.OpenFile(path, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	got, err := store.Load(ctx, "app-prod")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("loaded revision", got.Revision, got.Sync.Status, got.Sync.RunID, "baseline matches:", got.Baseline["DB_URL"] == fp)
	// Output:
	// saved revision 1
	// state file mode -rw-------
	// loaded revision 1 succeeded run-1 baseline matches: true
}

// memorySealer is a state.KeySealer for the example: AES-GCM under a key
// held in memory. A real one keeps its key elsewhere, as vaultkv.Transit
// keeps it in Vault.
type memorySealer struct {
	aead    cipher.AEAD
	unseals int
}

func newMemorySealer() *memorySealer {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	b, _ := aes.NewCipher(k)
	a, _ := cipher.NewGCM(b)
	return &memorySealer{aead: a}
}

func (s *memorySealer) Kind() string { return "memory-aes-gcm" }

func (s *memorySealer) Seal(ctx context.Context, key []byte) (string, error) {
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return base64.StdEncoding.EncodeToString(s.aead.Seal(nonce, nonce, key, nil)), nil
}

func (s *memorySealer) Unseal(ctx context.Context, sealed string) ([]byte, error) {
	s.unseals++
	b, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil || len(b) < s.aead.NonceSize() {
		return nil, errors.New("not a sealed key")
	}
	n := s.aead.NonceSize()
	return s.aead.Open(nil, b[:n], b[n:], nil)
}

func ExampleKeySealer() {
	dir, err := os.MkdirTemp("", "secretsync-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "state.json")
	ctx := context.Background()
	sealer := newMemorySealer()

	store, err := state.OpenFile(path, &state.FileOptions{Sealer: sealer})
	if err != nil {
		log.Fatal(err)
	}
	key, err := store.FingerprintKey(ctx) // made, sealed, written
	if err != nil {
		log.Fatal(err)
	}
	store.Close()

	// The key file holds the sealed key only.
	data, err := os.ReadFile(path + ".key")
	if err != nil {
		log.Fatal(err)
	}
	var file struct {
		Format int    `json:"format"`
		Sealer string `json:"sealer"`
	}
	if err := json.Unmarshal(data, &file); err != nil {
		log.Fatal(err)
	}
	fmt.Println("key file format", file.Format, "sealed by", file.Sealer)
	fmt.Println("key file holds the key:", bytes.Contains(data, key) || bytes.Contains(data, []byte(base64.StdEncoding.EncodeToString(key))))

	// Without the sealer the key cannot be had.
	store, err = state.OpenFile(path, nil)
	if err != nil {
		log.Fatal(err)
	}
	_, err = store.FingerprintKey(ctx)
	fmt.Println("without the sealer:", errors.Is(err, state.ErrSealerMismatch))
	store.Close()

	// With it, each File unseals the key once.
	store, err = state.OpenFile(path, &state.FileOptions{Sealer: sealer})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	sealer.unseals = 0
	for range 3 {
		again, err := store.FingerprintKey(ctx)
		if err != nil || !bytes.Equal(again, key) {
			log.Fatal("another key: ", err)
		}
	}
	fmt.Println("unseals for 3 calls:", sealer.unseals)
	// Output:
	// key file format 1 sealed by memory-aes-gcm
	// key file holds the key: false
	// without the sealer: true
	// unseals for 3 calls: 1
}
