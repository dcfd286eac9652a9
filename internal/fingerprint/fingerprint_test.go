package fingerprint

import (
	"bytes"
	"errors"
	"testing"
)

func mustHasher(t *testing.T, key []byte) *Hasher {
	t.Helper()
	h, err := New(key)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestSum(t *testing.T) {
	k1 := bytes.Repeat([]byte{1}, KeySize)
	k2 := bytes.Repeat([]byte{2}, KeySize)
	h1, h1b, h2 := mustHasher(t, k1), mustHasher(t, k1), mustHasher(t, k2)

	for _, v := range []string{"", "a", "secret value", "\x00\xff"} {
		if h1.Sum(v) != h1b.Sum(v) {
			t.Errorf("same key, same value %q: different fingerprints", v)
		}
		if h1.Sum(v) != h1.Sum(v) {
			t.Errorf("value %q: Sum is not repeatable on one Hasher", v)
		}
		if h1.Sum(v) == h2.Sum(v) {
			t.Errorf("different keys, value %q: same fingerprint", v)
		}
	}
	if h1.Sum("a") == h1.Sum("b") || h1.Sum("") == h1.Sum("\x00") || h1.Sum("ab") == h1.Sum("abc") {
		t.Error("different values: same fingerprint")
	}
}

func TestNewKey(t *testing.T) {
	a, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != KeySize || len(b) != KeySize {
		t.Fatalf("key sizes %d, %d; want %d", len(a), len(b), KeySize)
	}
	if bytes.Equal(a, b) {
		t.Fatal("two new keys are equal")
	}
	mustHasher(t, a)
}

func TestKeySize(t *testing.T) {
	for _, n := range []int{0, 1, 16, 31, 33, 64} {
		if _, err := New(make([]byte, n)); !errors.Is(err, ErrKeySize) {
			t.Errorf("New with a %d-byte key = %v, want ErrKeySize", n, err)
		}
	}
	if _, err := New(nil); !errors.Is(err, ErrKeySize) {
		t.Errorf("New(nil) = %v, want ErrKeySize", err)
	}
}
