// Package fingerprint computes the HMAC-SHA256 fingerprints that stand for
// secret values in baselines.
package fingerprint

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"hash"

	"github.com/secretsync/secretsync/conflict"
)

// KeySize is the size of a fingerprint key in bytes.
const KeySize = 32

// NewKey returns a new random fingerprint key.
func NewKey() ([]byte, error) {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	return k, nil
}

// ErrKeySize reports a key of the wrong size.
var ErrKeySize = errors.New("fingerprint: key must be 32 bytes")

// Hasher computes fingerprints under one key. It is not safe for concurrent
// use; make one per goroutine.
type Hasher struct {
	mac hash.Hash
	buf []byte
}

// New returns a Hasher for key.
func New(key []byte) (*Hasher, error) {
	if len(key) != KeySize {
		return nil, ErrKeySize
	}
	return &Hasher{mac: hmac.New(sha256.New, key)}, nil
}

// Sum returns the fingerprint of value.
func (h *Hasher) Sum(value string) conflict.Fingerprint {
	h.mac.Reset()
	h.buf = append(h.buf[:0], value...)
	h.mac.Write(h.buf)
	var fp conflict.Fingerprint
	h.mac.Sum(fp[:0])
	return fp
}
